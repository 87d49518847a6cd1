"""Time to alert: how long a change on the site waits before a run reports it, at a polite budget.

Why: a monitor exists to tell people about a change soon after it happens without hammering the
site. This drives the product's OWN frontier code (``monitor.frontier``: ``plan_slice`` picks every
slice's batch with the indexed queries of ``db.frontier`` from a real SQLite archive made by
``db.schema.connect`` and filled to the model's size; ``record_observations`` and
``record_listing`` update it after each slice) with a simulated clock against a model of the site
(``bench/ttamodel.py``), and compares it at the same budget with two baselines simulated in memory:

- ``today``: the former default jobs, one crawl at a time: discover every 30 min, revisit every 2 h
  (stories under 7 days every 6 h, under 90 days every 72 h, older every 30 days, missing ones
  always, with their photos), a sweep of every page at 03:00; a job firing during a crawl waits for it;
- ``uniform``: the same slices, budget and index checks as the frontier, the rest a round robin over
  all pages (pages awaiting removal confirmation first, as in the frontier).

Two more figures say what any policy could reach (``bench/tta_oracle.py``): the ``oracle``, simulated
at the same budget and fixed costs, revisiting old stories by their true change rates; and the
information bound, the least all-edits p95 of any fixed revisit allocation ranking stories by the
monitor's estimates (a year of monthly checks), by the true rates, and by nothing.

Every approach fetches at the budget's rate. A change is detected by the first fetch that shows it and
reported when that run ends (runs are the unit of events and mails); a removal when the run of its
second 404/410 on a later run ends, as ``monitor.changes`` confirms it. Simulated in memory: the site,
the fetches' answers and that two-runs rule. The product's code: every choice of what to fetch and
every update of the frontier's state. Parameters of the model: see ``--help``.

Latencies of changes still undetected at the end count as the time they waited (a lower bound), so a
approach that misses changes cannot look faster for it; the number undetected is printed too.

    .venv/bin/python bench/time_to_alert.py                      # 100,000 stories, 300,000 photos, 30 days
    .venv/bin/python bench/time_to_alert.py --stories 2000 --photos 6000 --days 3   # a quick look
    .venv/bin/python bench/time_to_alert.py --end-to-end         # real daemon, real HTTP, one day, small
    .venv/bin/python bench/time_to_alert.py --on-story-verify-days 90 --enumerate-days 3   # a trade-off
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tta_oracle import bound_lines, fixed_costs, run_oracle  # noqa: E402
from ttamodel import DAY, KINDS, Change, Key, Site  # noqa: E402

from core.config import FrontierConfig  # noqa: E402
from db import frontier as store  # noqa: E402
from db.frontier import FrontierRow  # noqa: E402
from db.schema import connect  # noqa: E402
from monitor import frontier as policy  # noqa: E402
from monitor import listings  # noqa: E402
from monitor.listings import ListingPage  # noqa: E402

START = datetime(2026, 1, 5, tzinfo=UTC)
INDEX_COST = 4 + len(KINDS) * 3  # four feeds and three listing pages of each kind, as ``discover`` reads them
KINDS_OF_CHANGE = ("new", "fresh-edit", "old-edit", "related", "removal", "restoration")
UNITS = {"new": ("m", 60), "fresh-edit": ("h", 3600), "old-edit": ("d", DAY), "related": ("d", DAY),
         "removal": ("d", DAY), "restoration": ("d", DAY), "all-edits": ("h", 3600)}


def iso(seconds: float) -> str:
    return policy.stamp(START + timedelta(seconds=seconds))


@cache  # filled by build_archive for every page, before the RSS is first read
def published_day(seconds: float) -> str:
    """A page's publication date as the archive stores it (asked for at every fetch of the page)."""
    return iso(seconds)[:10]


def open_archive(path: str) -> Any:
    """The product's archive (``db.schema.connect``), without waiting for the disk at each commit: the
    simulation measures simulated latencies, and a crash only loses the temporary archive."""
    db = connect(path)
    db.execute("PRAGMA synchronous=OFF")
    return db


def scratch_dir() -> str | None:
    """Where the temporary archive goes: memory-backed /dev/shm when there is one (the table fits)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


# -- what every approach shares ---------------------------------------------------------------------


@dataclass
class Approach:
    """One way of spending the budget, crawling its own copy of the site."""

    name: str
    site: Site
    rate: float  # requests a second
    requests: int = 0
    runs: int = 0
    false_removals: int = 0
    removal_state: dict[Key, tuple[str, int]] = field(default_factory=dict)  # missing|removed, run number
    notes: dict[str, float] = field(default_factory=dict)
    known: dict[int, float] = field(default_factory=dict)  # frontier: each old story's change_rate before the run

    def visit(self, key: Key, at: float, found: list[int]) -> tuple[str, int, str]:
        """Fetch ``key`` at ``at`` in run ``self.runs``: (outcome, version, status after detection)."""
        self.requests += 1
        outcome, version = self.site.fetch(key, at)
        state = self.removal_state.get(key)
        if outcome == "ok":
            found += self.site.seen(key)
            self.removal_state.pop(key, None)
            return outcome, version, "live"
        if outcome != "not_found":
            return outcome, version, state[0] if state else "live"
        if state is None:
            self.removal_state[key] = ("missing", self.runs)
            return outcome, version, "missing"
        if state[0] == "missing" and self.runs > state[1]:
            self.removal_state[key] = ("removed", self.runs)
            removal = self.site.pending_removal(key)
            if removal is None and not self.site.pages[key].removed:
                self.false_removals += 1
            elif removal is not None:
                found.append(removal)
            return outcome, version, "removed"
        return outcome, version, state[0]

    def end_run(self, end: float, found: list[int]) -> None:
        for cid in found:
            change = self.site.changes[cid]
            if change.detected is None:
                change.detected = end


class Ledger:
    """Requests spent, as (start, end, count) spans spread evenly: what ``fetches.fetched_at`` tells the
    product's budget (``db.frontier.requests_since``)."""

    def __init__(self) -> None:
        self.spans: deque[tuple[float, float, int]] = deque()

    def add(self, start: float, end: float, count: int) -> None:
        self.spans.append((start, end, count))

    def used(self, since: float, until: float) -> int:
        while self.spans and self.spans[0][1] <= since:
            self.spans.popleft()
        total = 0.0
        for start, end, count in self.spans:
            if end <= start:
                total += count if since < start <= until else 0
            else:
                total += count * max(0.0, min(end, until) - max(start, since)) / (end - start)
        return round(total)


def index_check(approach: Approach, start: float, since: float, until: float, index_cost: int,
                found: list[int]) -> tuple[float, list[tuple[int, list[Key], float]]]:
    """The feeds and first listing pages (``index_cost`` requests), then every story they show as
    published since the last check with its photo pages; returns the end time and, per story, its
    pages and when their fetch ended."""
    clock = start + index_cost / approach.rate
    approach.requests += index_cost
    published = []
    for story in approach.site.published_between(since, until):
        keys = approach.site.story_and_photos(story)
        clock = run_fetch_list(approach, clock, keys, found)
        published.append((story, keys, clock))
    return clock, published


def run_fetch_list(approach: Approach, start: float, keys: list[Key], found: list[int]) -> float:
    """Fetch ``keys`` one after another from ``start`` at the budget's rate; returns the end time."""
    t = start
    for key in keys:
        approach.visit(key, t, found)
        t += 1 / approach.rate
    return t


# -- the product's frontier ---------------------------------------------------------------------------


def build_archive(site: Site, config: FrontierConfig, path: str) -> object:
    """A real archive of the model's size: stories, photo pages, story_images, and the frontier with a
    year of history (monthly checks that saw each page's true change rate)."""
    db = open_archive(path)
    rng = random.Random(site.args.seed + 2)
    stories = [(k[1], p) for k, p in site.pages.items() if k[0] == "story"]
    photos = [(k[1], p) for k, p in site.pages.items() if k[0] == "photo"]
    seen = iso(-DAY)
    with db.atomic():
        db.conn.executemany(
            "INSERT INTO stories (id, kind, url, published, status, first_seen, last_seen) VALUES (?,?,?,?,?,?,?)",
            [(i, p.kind, f"/Article/{i}/", iso(p.published)[:10], "live", seen, seen) for i, p in stories])
        db.conn.executemany(
            "INSERT INTO images (media_id, page_url, source, status, first_seen, last_seen) VALUES (?,?,?,?,?,?)",
            [(m, f"/igphoto/{m}/", "photo_page", "live", seen, seen) for m, _ in photos])
        db.conn.executemany(
            "INSERT INTO story_images (story_id, media_id, position, first_seen, last_seen) VALUES (?,?,0,?,?)",
            [(p.story, m, seen, seen) for m, p in photos])
    rows = []
    for (page_type, sid), page in site.pages.items():
        age = -page.published / DAY
        history = age >= 7 + 360
        rate = site.true_rate((page_type, sid))
        if page_type == "story":  # its inline captions are part of its content: their edits were seen too
            rate += sum(site.true_rate(("photo", m)) for m in page.photos)
        changes = sum(rng.random() < 1 - math.exp(-rate * 30) for _ in range(12)) if history else 0
        verified = iso(-rng.uniform(0, config.verify_days * DAY))
        row = FrontierRow(page_type, sid, f"/{page_type}/{sid}/", page.kind, published_day(page.published), 0, verified,
                          None, 12 if history else 0, changes, 360.0 if history else 0.0, 1, verified, verified,
                          seen if page_type == "story" else None, iso(min(page.published, -DAY)))
        row.band = policy.BAND_ON_STORY if page_type == "photo" else policy.band(row, age, config)
        rows.append(row)
    store.save_rows(db, rows)
    floors = policy.census(db, config, START, INDEX_COST)["observed_rate"]  # what a year of checks saw, per page type
    for row in rows:  # the state ``monitor.frontier.observe`` leaves after each page's last check
        row.change_rate = policy.estimated_rate(row, START, config, floors.get(row.page_type))
    with db.atomic():
        db.conn.executemany("UPDATE frontier SET change_rate = ? WHERE page_type = ? AND subject_id = ?",
                            [(r.change_rate, r.page_type, r.subject_id) for r in rows])
        db.execute("DELETE FROM frontier_state WHERE key = 'census'")
    # The frontier as a daemon that ran it for months leaves it (the baselines start in their steady state
    # too): each page last fetched at a uniform point of its own revisit interval, not of the 30 days.
    # Starting from monthly verification alone, three stories in four would be overdue on day 0 and the
    # 30 days would measure how the frontier works off that backlog. Two rounds: the intervals depend on
    # the census, whose verification backlog depends on when pages were last verified.
    for _ in range(2):
        counted = policy.census(db, config, START, INDEX_COST)
        for row in rows:
            interval = _interval(row, counted["scale"], config, counted.get("even_days"))
            last = START - interval * rng.random()
            row.verified_at = row.last_checked = policy.stamp(last)
            row.due_at = policy.stamp(last + interval)
        with db.atomic():
            db.conn.executemany("UPDATE frontier SET verified_at = ?, last_checked = ?, due_at = ? "
                                "WHERE page_type = ? AND subject_id = ?",
                                [(r.verified_at, r.last_checked, r.due_at, r.page_type, r.subject_id) for r in rows])
            db.execute("DELETE FROM frontier_state WHERE key = 'census'")
    policy.census(db, config, START, INDEX_COST)
    return db


def _interval(row: FrontierRow, scale: float, config: FrontierConfig, even_days: float | None) -> timedelta:
    """The revisit interval ``monitor.frontier.observe`` gives the page after an answered fetch."""
    if row.band == policy.BAND_ON_STORY:
        return timedelta(days=policy.on_story_period(config))
    return policy.revisit_interval(row.change_rate, policy.age_days(row.published, START), scale,  # type: ignore[arg-type]
                                   config, even_days)


def run_frontier(args: argparse.Namespace, config: FrontierConfig, db_path: str) -> Approach:
    site = Site(args)
    approach = Approach("frontier", site, config.requests_per_hour / 3600)
    built = time.perf_counter()
    db = build_archive(site, config, db_path)
    approach.notes["archive_build_s"] = time.perf_counter() - built
    approach.known = dict(db.execute(  # type: ignore[attr-defined]  # what the monitor knows: the information bound's ranking
        "SELECT subject_id, change_rate FROM frontier WHERE page_type = 'story'").fetchall())
    slice_s, end_s = config.slice_minutes * 60, args.days * DAY
    lookback = policy.Budget.from_config(config).lookback.total_seconds()
    spent = Ledger()
    picks: list[float] = []
    tiers: dict[str, int] = {}  # requests planned by tier (plan_slice), over the whole run
    rss_start = resident_kb()
    last_index, t = 0.0, 0.0
    started = time.perf_counter()
    while t < end_s:
        with db.atomic():  # type: ignore[attr-defined]  # as monitor.frontier_runs.plan_run does
            plan = policy.plan_slice(db, config, START + timedelta(seconds=t),
                                     used_in_lookback=spent.used(t - lookback, t), index_cost=INDEX_COST,
                                     listing_kinds=KINDS)
        picks.append(plan.pick_ms)
        for tier, count in plan.tiers.items():
            tiers[tier] = tiers.get(tier, 0) + count
        approach.runs += 1
        before, found, observations = approach.requests, [], []
        clock = t
        if plan.index:
            approach.requests += INDEX_COST
            clock += INDEX_COST / approach.rate
            for story in site.published_between(last_index, t):
                for key in site.story_and_photos(story):
                    observations.append(_observe(approach, key, clock, found))
                    clock += 1 / approach.rate
                _archive_story(db, site, story, clock)
            last_index = t
        for row in plan.pages:
            observations.append(_observe(approach, (row.page_type, row.subject_id), clock, found))
            clock += 1 / approach.rate
        walked = []
        for kind, number in plan.listings:
            approach.requests += 1
            if site.answer_rng.random() >= args.error_rate:  # a failed listing page is a hole in the walk
                walked.append((kind, number, *site.listing(kind, number, clock), clock))
            clock += 1 / approach.rate
        approach.end_run(clock, found)
        with db.atomic():  # type: ignore[attr-defined]  # as monitor.frontier_runs.record_run does
            policy.record_observations(db, observations, config)
            for kind in dict.fromkeys(k for k, *_ in walked):  # a kind's pages of the slice together
                pages = [ListingPage(number, ids, last) for k, number, ids, last, _at in walked if k == kind]
                listings.record(db, kind, pages, START + timedelta(seconds=clock))
        spent.add(t, clock, approach.requests - before)
        if int(t // DAY) != int(max(t + slice_s, clock) // DAY):
            print(f"frontier: day {int(t // DAY) + 1} of {args.days:g} simulated, "
                  f"{time.perf_counter() - started:.0f} s, RSS {resident_kb() / 1024:.0f} MB",
                  file=sys.stderr, flush=True)
        t = max(t + slice_s, clock)
    site.advance(end_s)
    approach.notes |= {"sim_s": time.perf_counter() - started, "pick_ms_p95": percentile(picks, 95),
                       "pick_ms_max": max(picks), "rss_start_kb": rss_start, "rss_end_kb": resident_kb(),
                       "candidates_live": _live_candidates(db, site)}
    approach.notes |= {f"tier_{tier}": count / args.days for tier, count in tiers.items()}
    db.conn.close()  # type: ignore[attr-defined]
    return approach


def _archive_story(db: Any, site: Site, story: int, at: float) -> None:
    """The rows the archive writes when a run stores a new story and its photos (what the frontier reads of
    it: the story, and which photo pages it shows)."""
    page, seen = site.pages[("story", story)], iso(at)
    with db.atomic():
        db.execute("INSERT OR IGNORE INTO stories (id, kind, url, published, status, first_seen, last_seen) "
                   "VALUES (?,?,?,?,?,?,?)", [story, page.kind, f"/Article/{story}/", published_day(page.published),
                                              "live", seen, seen])
        db.conn.executemany("INSERT OR IGNORE INTO images (media_id, page_url, source, status, first_seen, last_seen) "
                            "VALUES (?,?,?,?,?,?)", [(m, f"/igphoto/{m}/", "photo_page", "live", seen, seen)
                                                     for m in page.photos])
        db.conn.executemany("INSERT OR IGNORE INTO story_images (story_id, media_id, position, first_seen, last_seen) "
                            "VALUES (?,?,0,?,?)", [(story, m, seen, seen) for m in page.photos])


def resident_kb() -> int:
    """This process's resident set now (``VmRSS``; ``ru_maxrss`` only ever grows, so it cannot show growth)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _observe(approach: Approach, key: Key, at: float, found: list[int]) -> policy.Observation:
    outcome, version, status = approach.visit(key, at, found)
    page = approach.site.pages[key]
    return policy.Observation(key[0], key[1], f"/{key[0]}/{key[1]}/", outcome, START + timedelta(seconds=at),
                              version or None, status, page.kind, published_day(page.published))


def _live_candidates(db: object, site: Site) -> int:
    """Listing candidates at the end that are live on the site (each costs one fetch, never a removal)."""
    rows = db.execute("SELECT page_type, subject_id FROM frontier WHERE urgency = 1").fetchall()  # type: ignore[attr-defined]
    return sum(1 for t, i in rows if (t, i) in site.pages and not site.pages[(t, i)].removed)


# -- baselines ------------------------------------------------------------------------------------------


def run_uniform(args: argparse.Namespace, config: FrontierConfig) -> Approach:
    """Same slices, budget and index checks; the rest a round robin over every page."""
    site = Site(args)
    approach = Approach("uniform", site, config.requests_per_hour / 3600)
    budget = policy.Budget.from_config(config)
    order: list[Key] = sorted(site.pages, key=lambda k: (k[0] != "story", k[1]))
    slice_s, end_s, lookback = config.slice_minutes * 60, args.days * DAY, budget.lookback.total_seconds()
    spent = Ledger()
    cursor, last_index, next_index, t = 0, 0.0, 0.0, 0.0
    while t < end_s:
        allowance = budget.allowance(spent.used(t - lookback, t))
        approach.runs += 1
        before, found, clock = approach.requests, [], t
        if allowance and t >= next_index:
            clock, published = index_check(approach, clock, last_index, t, INDEX_COST, found)
            order += [key for _, keys, _ in published for key in keys]
            last_index, next_index = t, t + config.index_interval_minutes * 60
        left = allowance - (approach.requests - before)
        confirm = [k for k, (state, run) in approach.removal_state.items() if state == "missing"][:max(0, left)]
        clock = run_fetch_list(approach, clock, confirm, found)
        left -= len(confirm)
        batch = [order[(cursor + i) % len(order)] for i in range(max(0, left))]
        cursor = (cursor + len(batch)) % len(order)
        clock = run_fetch_list(approach, clock, batch, found)
        approach.end_run(clock, found)
        spent.add(t, clock, approach.requests - before)
        t = max(t + slice_s, clock)
    site.advance(end_s)
    return approach


def run_today(args: argparse.Namespace, config: FrontierConfig) -> Approach:
    """The former default jobs, one crawl at a time, at the same request rate."""
    site = Site(args)
    approach = Approach("today", site, config.requests_per_hour / 3600)
    end_s = args.days * DAY
    rng = random.Random(args.seed + 3)
    last_fetched = {k: -rng.uniform(0, 30 * DAY) for k in site.pages}
    firings = sorted([(i * 1800.0, 0, "discover") for i in range(int(end_s // 1800) + 1)]
                     + [(i * 7200.0, 1, "revisit") for i in range(int(end_s // 7200) + 1)]
                     + [(d * DAY + 3 * 3600, 2, "sweep") for d in range(int(args.days) + 1)])
    pending: dict[str, float] = {}
    free_at, running, last_index = 0.0, "", 0.0
    for fired, _, job in firings:
        if fired >= end_s:
            break
        while pending and free_at <= fired:  # the slot freed before this firing: run what waited
            name = next(iter(pending))
            del pending[name]
            free_at, last_index = _run_job(approach, name, free_at, last_fetched, last_index)
            running = name
        if free_at <= fired:
            free_at, last_index = _run_job(approach, job, fired, last_fetched, last_index)
            running = job
        elif job != running and job not in pending:
            pending[job] = fired
    site.advance(end_s)
    return approach


def _run_job(approach: Approach, job: str, start: float, last_fetched: dict[Key, float],
             last_index: float) -> tuple[float, float]:
    site, found = approach.site, []
    approach.runs += 1
    if job == "discover":
        approach.requests += INDEX_COST
        clock = start + INDEX_COST / approach.rate
        keys = []
        for story in site.published_between(last_index, start):
            keys += site.story_and_photos(story)
        last_index = start
    elif job == "revisit":
        clock, keys = start, _due_today(approach, start, last_fetched)
    else:
        clock, keys = start, [k for k in site.pages if k in last_fetched]
    for key in keys:
        approach.visit(key, clock, found)
        last_fetched[key] = clock
        clock += 1 / approach.rate
    approach.end_run(clock, found)
    return clock, last_index


def _due_today(approach: Approach, now: float, last_fetched: dict[Key, float]) -> list[Key]:
    """``db.queries.due_for_revisit`` with the former defaults, and the due stories' photos."""
    site = approach.site
    due = []
    for key, fetched in last_fetched.items():
        if key[0] != "story":
            continue
        age = (now - site.pages[key].published) / DAY
        interval = 6 * 3600 if age < 7 else 72 * 3600 if age < 90 else 720 * 3600
        missing = approach.removal_state.get(key, ("",))[0] == "missing"
        if missing or now - fetched >= interval:
            due.append((not missing, fetched, key))
    keys = [key for _, _, key in sorted(due)]
    return keys + [("photo", m) for key in keys for m in site.pages[key].photos]


# -- figures ----------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def latencies(approach: Approach, end_s: float) -> dict[str, tuple[list[float], int]]:
    """Per kind of change: latencies in seconds (undetected ones: their wait so far), and how many undetected."""
    found: dict[str, tuple[list[float], int]] = {k: ([], 0) for k in (*KINDS_OF_CHANGE, "all-edits")}
    for change in approach.site.changes:
        if change.moot or change.kind == "edit" or change.at >= end_s:
            continue
        wait = (change.detected if change.detected is not None else end_s) - change.at
        kinds = [change.kind] + (["all-edits"] if change.kind in ("fresh-edit", "old-edit", "related") else [])
        for kind in kinds:
            values, missed = found[kind]
            values.append(wait)
            found[kind] = (values, missed + (change.detected is None))
    return found


def edit_class(approach: Approach, change: Change) -> str:
    """fresh/old/related, on a story's own text or on a photo's caption (shown on its story too)."""
    where = "caption" if change.pages[0][0] == "photo" else "story"
    return f"{change.kind}:{where}"


def tail_of_edits(approach: Approach, end_s: float, p95: float) -> dict[str, int]:
    """Which edits wait longer than the all-edits p95: what a policy must fetch sooner to lower it."""
    tail: dict[str, int] = {}
    for change in approach.site.changes:
        if change.moot or change.kind not in ("fresh-edit", "old-edit", "related") or change.at >= end_s:
            continue
        if (change.detected if change.detected is not None else end_s) - change.at >= p95:
            tail[edit_class(approach, change)] = tail.get(edit_class(approach, change), 0) + 1
    return dict(sorted(tail.items(), key=lambda item: -item[1]))


def report(approach: Approach, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    end_s = args.days * DAY
    table = latencies(approach, end_s)
    print(f"\n{approach.name}: {approach.requests / args.days:,.0f} requests/day, {approach.runs} runs, "
          f"false removals {approach.false_removals}")
    print(f"  {'change':<12} {'count':>7} {'p50':>9} {'p95':>9} {'max':>9} {'undetected':>11}")
    figures = {}
    for kind, (values, missed) in table.items():
        unit, scale = UNITS[kind]
        p50, p95, top = (percentile(values, 50) / scale, percentile(values, 95) / scale,
                         (max(values) if values else float("nan")) / scale)
        figures[kind] = {"p50": p50, "p95": p95, "max": top, "count": len(values), "undetected": missed}
        print(f"  {kind:<12} {len(values):>7} {p50:>8.2f}{unit} {p95:>8.2f}{unit} {top:>8.2f}{unit} {missed:>11}")
    tail = tail_of_edits(approach, end_s, figures["all-edits"]["p95"] * 3600)
    print("  edits at or over the all-edits p95: " + (", ".join(f"{k} {n}" for k, n in tail.items()) or "none"))
    return figures


# -- main -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = FrontierConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--stories", type=int, default=100_000, help="stories archived at the start")
    p.add_argument("--photos", type=int, default=300_000, help="photo pages archived at the start")
    p.add_argument("--days", type=float, default=30.0, help="simulated days")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--new-per-day", type=float, default=20.0, help="new stories a day (Poisson)")
    p.add_argument("--photos-per-story", type=float, default=3.0, help="mean photos of a new story (Poisson)")
    p.add_argument("--fresh-edits", type=float, default=1.5, help="mean edits of a new story (Poisson)")
    p.add_argument("--fresh-edit-hours", type=float, default=12.0,
                   help="mean time from publication to an edit (exponential: 98%% within 48 h)")
    p.add_argument("--caption-share", type=float, default=0.3, help="share of a new story's edits on a caption")
    p.add_argument("--old-edits-per-day", type=float, default=30.0, help="edits of old stories a day")
    p.add_argument("--caption-edits-per-day", type=float, default=20.0, help="caption edits of old photos a day")
    p.add_argument("--related-per-day", type=float, default=10.0, help="related stories added to old stories a day")
    p.add_argument("--propensity-shape", type=float, default=0.2,
                   help="shape of the Gamma per-page change propensity (small: a few pages take most edits)")
    p.add_argument("--wave-start", type=float, default=8.0, help="day the removal wave starts")
    p.add_argument("--wave-days", type=float, default=7.0, help="days the removal wave lasts")
    p.add_argument("--wave-pages", type=int, default=5000, help="pages removed (old stories with their photos)")
    p.add_argument("--restore-share", type=float, default=0.1, help="share of removed stories restored later")
    p.add_argument("--restore-start", type=float, default=18.0, help="first day of restorations")
    p.add_argument("--error-rate", type=float, default=0.003, help="share of fetches that fail (5xx, timeout)")
    p.add_argument("--requests-per-hour", type=float, default=defaults.requests_per_hour,
                   help="the budget ([frontier] requests_per_hour); the same for every approach")
    p.add_argument("--even-share", type=float, default=defaults.even_share,
                   help="[frontier] even_share: revisits spread evenly, the rest by sqrt(rate)")
    p.add_argument("--verify-days", type=float, default=defaults.verify_days,
                   help="[frontier] verify_days: every page fetched within it (a trade-off to measure)")
    p.add_argument("--on-story-verify-days", type=float, default=defaults.on_story_verify_days,
                   help="[frontier] on_story_verify_days: photo pages a live story shows verified within it "
                        "(0: verify_days; a trade-off to measure)")
    p.add_argument("--enumerate-days", type=float, default=defaults.enumerate_days,
                   help="[frontier] enumerate_days: the listing walk's period (a trade-off to measure)")
    p.add_argument("--listing-stride", type=int, default=defaults.listing_stride,
                   help="[frontier] listing_stride: the walk reads one listing page in this many")
    p.add_argument("--db", help="archive file for the frontier (default: a temporary one)")
    p.add_argument("--skip-today", action="store_true", help="leave out today's schedule (slowest to simulate)")
    p.add_argument("--measure-pick", type=int, default=0, metavar="N",
                   help="only build the archive at the model's size and time N slice plans (no simulation)")
    p.add_argument("--end-to-end", action="store_true",
                   help="run the real daemon against the sample site over real HTTP (see bench/tta_e2e.py)")
    from tta_e2e import add_e2e_options

    add_e2e_options(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.end_to_end:
        from tta_e2e import run_end_to_end

        return run_end_to_end(args)
    config = FrontierConfig(requests_per_hour=args.requests_per_hour, even_share=args.even_share,
                            verify_days=args.verify_days, enumerate_days=args.enumerate_days,
                            on_story_verify_days=args.on_story_verify_days, listing_stride=args.listing_stride)
    if args.measure_pick:
        return measure_pick(args, config)
    print(f"model: {args.stories:,} stories, {args.photos:,} photo pages, {args.days:g} days, budget "
          f"{args.requests_per_hour / 3600:.2f} req/s ({args.requests_per_hour * 24:,.0f}/day), slices of "
          f"{config.slice_minutes:g} min, index every {config.index_interval_minutes:g} min; frontier: even share "
          f"{config.even_share:g}, verification within {config.verify_days:g} d (photo pages a live story shows: "
          f"{policy.on_story_period(config):g} d), listing walk every "
          f"{config.enumerate_days:g} d reading one listing page in {config.listing_stride}")
    with tempfile.TemporaryDirectory(prefix="defwatch-tta-", dir=scratch_dir()) as tmp:
        frontier = run_frontier(args, config, args.db or str(Path(tmp) / "frontier.db"))
    notes = frontier.notes
    print(f"frontier (product code over a real SQLite archive of {args.stories + args.photos:,} pages): "
          f"archive built in {notes['archive_build_s']:.0f} s, simulated in {notes['sim_s']:.0f} s; picking a "
          f"batch p95 {notes['pick_ms_p95']:.1f} ms, max {notes['pick_ms_max']:.1f} ms; process RSS "
          f"after the build {notes['rss_start_kb'] / 1024:.0f} MB, at the end {notes['rss_end_kb'] / 1024:.0f} MB "
          f"({(notes['rss_end_kb'] / notes['rss_start_kb'] - 1) * 100:+.1f}%); live pages left as "
          f"listing candidates at the end {notes['candidates_live']:.0f}")
    print("frontier requests a day by tier (plan_slice): " + ", ".join(
        f"{key[5:]} {value:,.0f}" for key, value in notes.items() if key.startswith("tier_")))
    ours = report(frontier, args)
    started = time.perf_counter()
    uniform = report(run_uniform(args, config), args)
    print(f"  (simulated in {time.perf_counter() - started:.0f} s)")
    if not args.skip_today:
        started = time.perf_counter()
        report(run_today(args, config), args)
        print(f"  (simulated in {time.perf_counter() - started:.0f} s)")
    started = time.perf_counter()
    old_share = (ours["old-edit"]["count"] + ours["related"]["count"]) / max(1, ours["all-edits"]["count"])
    oracle_approach, aim = run_oracle(args, config, INDEX_COST, old_share)
    oracle = report(oracle_approach, args)
    print(f"  (simulated in {time.perf_counter() - started:.0f} s; old stories revisited by the true rates, the "
          f"highest every {aim * 24:.0f} h, the others every {config.verify_days:g} d; the listing walk's requests "
          f"spent but not read, so its removals are not comparable)")
    ratio = uniform["all-edits"]["p95"] / ours["all-edits"]["p95"] if ours["all-edits"]["p95"] else float("nan")
    print(f"\nall edits p95: frontier {ours['all-edits']['p95']:.1f} h, uniform {uniform['all-edits']['p95']:.1f} h "
          f"({ratio:.1f}x lower); oracle {oracle['all-edits']['p95']:.1f} h "
          f"({uniform['all-edits']['p95'] / oracle['all-edits']['p95']:.1f}x lower); target "
          f"{uniform['all-edits']['p95'] / 3:.1f} h (3x lower)")
    for line in bound_lines(frontier.site, frontier.known, fixed_costs(args, config, INDEX_COST), config,
                            args.days, old_share):
        print(line)
    print(restoration_line(ours["restoration"], args, config))
    print(summary_line(ours, uniform, frontier.requests / args.days))
    return 0


def measure_pick(args: argparse.Namespace, config: FrontierConfig) -> int:
    """Time ``plan_slice`` (and its pick queries alone) over the archive at the model's size."""
    with tempfile.TemporaryDirectory(prefix="defwatch-tta-") as tmp:  # on disk, as a daemon's archive
        site = Site(args)
        started = time.perf_counter()
        db = build_archive(site, config, args.db or str(Path(tmp) / "frontier.db"))
        built = time.perf_counter() - started
        pages = db.execute("SELECT COUNT(*) FROM frontier").fetchone()[0]  # type: ignore[attr-defined]
        plans, picks = [], []
        for i in range(args.measure_pick):
            now = START + timedelta(minutes=5 * i)
            started = time.perf_counter()
            with db.atomic():  # type: ignore[attr-defined]
                plan = policy.plan_slice(db, config, now, used_in_lookback=150, index_cost=INDEX_COST,
                                         listing_kinds=KINDS)
            plans.append((time.perf_counter() - started) * 1000)
            picks.append(plan.pick_ms)
        started = time.perf_counter()
        policy.census(db, config, START + timedelta(days=1))
        census_ms = (time.perf_counter() - started) * 1000
        db.conn.close()  # type: ignore[attr-defined]
    print(f"archive of {pages:,} frontier pages built in {built:.0f} s; {args.measure_pick} slices of "
          f"{plan.requests} requests: picking the batch p50 {percentile(picks, 50):.1f} ms, p95 "
          f"{percentile(picks, 95):.1f} ms, max {max(picks):.1f} ms; whole plan (state, cursors, the 3-hourly census "
          f"included) p95 {percentile(plans, 95):.1f} ms, max {max(plans):.1f} ms; census alone {census_ms:.0f} ms")
    return 0


def restoration_line(figures: dict[str, float], args: argparse.Namespace, config: FrontierConfig) -> str:
    """Restorations against the issue's target: seen within the verification period (undetected ones
    count as the time they waited, so a restoration never seen can never look in time)."""
    if not figures["count"]:
        return "restorations (frontier): none in the simulated period"
    within = figures["max"] <= config.verify_days
    return (f"restorations (frontier): {figures['count']:.0f}, p50 {figures['p50']:.1f}d, p95 {figures['p95']:.1f}d, "
            f"max {figures['max']:.1f}d, not yet detected {figures['undetected']:.0f}; they start on day "
            f"{args.restore_start:g} of {args.days:g}; verification period {config.verify_days:g}d: "
            f"{'all within it' if within else 'NOT all within it'}")


def summary_line(ours: dict[str, dict[str, float]], uniform: dict[str, dict[str, float]], per_day: float) -> str:
    return (f"time-to-alert: new p95 {ours['new']['p95']:.0f}m, fresh-edit p95 {ours['fresh-edit']['p95']:.1f}h, "
            f"old-edit p95 {ours['old-edit']['p95']:.1f}d, removal p95 {ours['removal']['p95']:.1f}d, "
            f"requests/day {per_day:,.0f}; uniform: new p95 {uniform['new']['p95']:.0f}m, fresh-edit p95 "
            f"{uniform['fresh-edit']['p95']:.1f}h, removal p95 {uniform['removal']['p95']:.1f}d")


if __name__ == "__main__":
    sys.exit(main())
