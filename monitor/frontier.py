"""The budgeted crawl frontier: which pages one slice of the daemon fetches, and why.

At the live site's size (about 100,000 stories and 300,000 photo pages, fetched politely at about
one request a second) whole-mode runs cannot keep up: a sweep takes days and every discovery waits
behind it. The frontier spends one request budget (``requests_per_hour`` on average, never more than
``burst`` in one slice or over one burst/rate window) by priority:

1. feeds and the first listing pages every ``index_interval_minutes``, before anything else;
2. revisits by expected change rate: pages awaiting removal confirmation first, then fresh pages
   due, then listing candidates, then the other pages whose revisit is due. A page's rate blends a
   prior by age (stories are edited mostly in their first days) with its own history past the fresh
   window, estimated as Cho & Garcia-Molina do from n checks that saw X changes:
   ``-ln((n - X + 0.5) / (n + 0.5)) / mean interval``.
   Revisits are shared two ways (``even_share``): part spread evenly over every revisited page, part
   by ``scale / sqrt(rate)``, the allocation that minimizes the *mean* time from a change to its
   detection. By sqrt alone the p95 suffered: a year of monthly checks sees most pages never change,
   yet those hold about half the edits, and sqrt left them for weeks; the even part bounds every
   interval. Both parts are sized from the archive (``census``) so the revisits fit their share of
   the budget; pages under ``fresh_days`` are never left longer than
   ``fresh_max_interval_hours`` and no page longer than the verification period. The prior's floor
   is the change rate the archive's own checks saw for the page type (the census). A photo page
   whose caption a live story shows (``BAND_ON_STORY``) is no revisit: the story's content includes
   its captions, so the story's revisits see a caption edit first;
3. a verification pass, least recently verified first, paced on its backlog (pages not verified for
   ``VERIFY_BACKLOG`` of ``verify_days``) so every page is verified within the period; pages the
   revisits fetch often never join the backlog. What the slice has left goes to the revisits due
   next: ahead of their time they shorten every page's wait, where verification ahead of its pace
   went to photo pages (all edits p95 at the live site's size: see bench/README.md). Photo pages
   whose caption a live story shows have a longer period (``on_story_verify_days``, 90 days): it frees
   requests for revisits (at 300,000 photo pages, 90 days instead of 30 frees 6,700 a day), at the
   cost of a change only the photo page shows (a photo removed without its story) waiting longer;
4. a walk of the listings within ``enumerate_days`` reading one page in ``listing_stride``, and the
   pages between two whose count of stories between them differs from the learned order's
   (``monitor.listings``): a story gone from between two shown neighbours (and its photo pages)
   becomes a removal *candidate*, fetched soon. Only its own 404/410, seen on two runs as for any
   page (``monitor.changes``), ever removes it.

Every function takes the time as an argument: the daemon passes the wall clock, the time-to-alert
benchmark a simulated one, and both run this same code over the same ``frontier`` table.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from core.clock import parse_stamp, stamp
from core.config import FrontierConfig
from db import frontier as store
from db.frontier import (
    BAND_ON_STORY,
    URGENCY_CANDIDATE,
    URGENCY_CONFIRM,
    URGENCY_NONE,
    URGENCY_UNARCHIVED,
    FrontierRow,
)
from monitor import listings

logger = logging.getLogger(__name__)

ANSWERED = frozenset({"ok", "not_modified"})
ABSENT = frozenset({"not_found", "gone"})
NEW_PAGE_RESERVE = 20  # requests kept for the new stories and photos an index check leads to
CENSUS_EVERY = timedelta(hours=3)  # a scan of the table (about 0.2 s at 400,000 pages); what it counts moves slowly
CENSUS_SMALL = 10_000  # below this many pages the census scan costs nothing: it is taken every slice
REMOVED_RECHECK = 1 / 6  # a removed page is fetched again this share of the verification period later
# The verification pass: pages not verified for VERIFY_BACKLOG of the period are its backlog, spread over
# VERIFY_PACE of the period, so each is verified by about (1 - VERIFY_BACKLOG + VERIFY_PACE) of it (95%);
# pages the revisits fetch often never join the backlog and cost the pass nothing.
VERIFY_BACKLOG = 0.5
VERIFY_PACE = 0.45
FRESH_BAND = 2  # ``band``: pages under fresh_days
REVISIT_SHARE = 0.9  # of the budget left for revisits, the rest kept for urgent work (see ``census``)


# -- budget -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """A token bucket read from the request log: over any window of ``window`` the crawler may spend
    ``rate * window`` requests, and one slice at most ``burst``. Stateless, so a restarted daemon
    (or a crash mid-slice) cannot overspend: what was spent is counted from the fetches themselves."""

    requests_per_hour: float
    burst: int
    slice_minutes: float

    @classmethod
    def from_config(cls, config: FrontierConfig) -> Budget:
        return cls(config.requests_per_hour, config.burst, config.slice_minutes)

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=max(self.slice_minutes * 60, self.burst / self.requests_per_hour * 3600))

    @property
    def lookback(self) -> timedelta:
        """How far back spent requests count against the next slice: the slice's own requests land in
        the next ``slice_minutes``, so the window that ends with them began ``window - slice`` ago."""
        return self.window - timedelta(minutes=self.slice_minutes)

    def allowance(self, used_in_lookback: int) -> int:
        """Requests the next slice may spend, given those spent within ``lookback``: steady state is
        ``rate * slice`` a slice; after a quiet spell, up to ``burst`` at once."""
        refill = int(self.requests_per_hour * self.window.total_seconds() / 3600)
        return max(0, min(self.burst, refill - used_in_lookback))

    def per_slice(self) -> float:
        return self.requests_per_hour * self.slice_minutes / 60


# -- change rate ------------------------------------------------------------------------------------


def age_days(published: str | None, now: datetime) -> float | None:
    if not published:
        return None
    try:
        return max(0.0, (now - parse_stamp(published)).total_seconds() / 86400)
    except ValueError:
        return None


def prior_rate(age: float | None, config: FrontierConfig, floor: float | None = None) -> float:
    """Expected changes a day at this age: high at publication, halving every ``prior_halflife_days``,
    down to ``floor``: the rate the archive's own checks of pages of this type saw (the census), or
    ``prior_old_rate`` before there is any history."""
    base = config.prior_old_rate if floor is None else floor
    if age is None:
        return base
    return base + config.prior_fresh_rate * 0.5 ** (age / config.prior_halflife_days)


def cho_garcia_molina(checks: int, changes: int, observed_days: float) -> float | None:
    """Changes a day from ``checks`` regular checks of which ``changes`` saw a change (Cho & Garcia-Molina,
    "Estimating frequency of change", 2003): unbiased where the naive X/T undercounts changes that
    happened twice between checks, and finite when every check saw a change."""
    if checks <= 0 or observed_days <= 0:
        return None
    changes = min(changes, checks)
    return -math.log((checks - changes + 0.5) / (checks + 0.5)) / (observed_days / checks)


def estimated_rate(row: FrontierRow, now: datetime, config: FrontierConfig, floor: float | None = None) -> float:
    """The age prior, and the page's own history weighted by how much of it there is."""
    prior = prior_rate(age_days(row.published, now), config, floor)
    history = cho_garcia_molina(row.checks, row.changes, row.observed_days)
    if history is None:
        return prior
    weight = config.prior_weight
    return max((weight * prior + row.checks * history) / (weight + row.checks), 1e-6)


def revisit_interval(rate: float, age: float | None, scale: float, config: FrontierConfig,
                     even_days: float | None = None) -> timedelta:
    """``scale / sqrt(rate)`` days, within [min interval, verification period]; fresh pages capped.

    With ``even_days`` (``census``: the even share of the budget spread over every revisited page) the
    page is revisited at the sum of both frequencies, ``sqrt(rate) / scale + 1 / even_days``: the
    even part bounds the interval of a page whose history says little, the sqrt part still sends the
    pages seen changing round sooner."""
    by_rate = math.sqrt(max(rate, 1e-9)) / scale if scale > 0 else math.inf  # scale 0: an empty archive
    frequency = by_rate + (1 / even_days if even_days else 0.0)
    hours = min(24 / frequency, config.verify_days * 24)
    if age is not None and age < config.fresh_days:
        hours = min(hours, config.fresh_max_interval_hours)
    return timedelta(hours=max(hours, config.min_interval_hours))


def revisit_scale(root_rate_sum: float, revisits_per_day: float) -> float:
    """The ``scale`` that makes ``sum(1 / interval)`` equal the revisit share of the budget."""
    return root_rate_sum / max(revisits_per_day, 1.0)


def even_interval(revisited: int, revisits_per_day: float) -> float | None:
    """Days between revisits that spend ``revisits_per_day`` evenly over ``revisited`` pages (None: no share)."""
    return revisited / revisits_per_day if revisits_per_day > 0 and revisited > 0 else None


# -- observations -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """One fetch of a story or photo page, as the frontier needs it."""

    page_type: str
    subject_id: int
    url: str
    outcome: str  # ok | not_modified | not_found | gone | blocked | error
    at: datetime
    version: int | None = None  # the version it showed (ok, not_modified)
    status: str = "live"  # the page's status after change detection: live | missing | removed
    kind: str | None = None
    published: str | None = None


def observe(row: FrontierRow | None, seen: Observation, scale: float, config: FrontierConfig, *,
            on_story: bool = False, floor: float | None = None, even_days: float | None = None) -> FrontierRow:
    """The page's next state after one fetch: history, estimate, next due time and urgency.

    ``on_story``: a photo page whose caption a live story shows. A story's content includes its inline
    captions, so the story's revisits see a caption edit (and alert on it); fetching the photo page
    by its own rate as well would spend three requests of four on 300,000 photo pages for edits the
    100,000 stories already show. Such a page is left to the verification pass."""
    now, ts = seen.at, stamp(seen.at)
    if row is None:
        row = FrontierRow(seen.page_type, seen.subject_id, seen.url, due_at=ts, added_at=ts, version=seen.version)
    row.url = seen.url or row.url
    row.kind = seen.kind or row.kind
    row.published = seen.published or row.published
    row.last_checked = ts
    age = age_days(row.published, now)
    if seen.outcome in ANSWERED:
        _count_history(row, seen, age, config)
        row.version = seen.version if seen.version is not None else row.version
        row.verified_at, row.urgency = ts, URGENCY_NONE
        row.change_rate = estimated_rate(row, now, config, floor)
        interval = (timedelta(days=on_story_period(config)) if on_story
                    else revisit_interval(row.change_rate, age, scale, config, even_days))
        row.due_at = stamp(now + interval)
        row.band = BAND_ON_STORY if on_story else band(row, age, config)
    elif seen.outcome in ABSENT:
        row.verified_at = ts
        if seen.status == "removed":  # confirmed: looked at again for its return, well within the period
            row.urgency, row.due_at = URGENCY_NONE, stamp(now + timedelta(days=config.verify_days * REMOVED_RECHECK))
            row.band = band(row, age, config)  # a revisit even for a photo page: no live story shows it now
        elif row.urgency != URGENCY_CONFIRM:  # a first 404/410: confirmed or cleared by the next run
            row.urgency, row.due_at = URGENCY_CONFIRM, ts
        else:  # still missing after another run ([monitor] removal_delay_hours): ask again later, not every slice
            row.due_at = stamp(now + timedelta(minutes=config.retry_minutes))
    else:  # blocked, 5xx, timeout: says nothing about the page; try again later, urgency kept
        row.due_at = stamp(now + timedelta(minutes=config.retry_minutes))
    return row


def on_story_period(config: FrontierConfig) -> float:
    """Days within which a photo page whose caption a live story shows is verified (``on_story_verify_days``)."""
    return config.on_story_verify_days or config.verify_days


def band(row: FrontierRow, age: float | None, config: FrontierConfig) -> int:
    """Which due revisits go first when not all fit the budget (a backlog after downtime, or right after
    the migration made every page due): fresh pages, then pages seen changing, then the rest
    (``BAND_ON_STORY``, photo pages whose story shows their caption, are never revisits)."""
    if age is not None and age < config.fresh_days:
        return FRESH_BAND
    return 1 if row.changes > 0 else 0


def _count_history(row: FrontierRow, seen: Observation, age: float | None, config: FrontierConfig) -> None:
    """Count a check past the fresh window: first-days edits say little about a page's later years."""
    if row.verified_at is None or (age is not None and age < config.fresh_days):
        return
    elapsed = (seen.at - parse_stamp(row.verified_at)).total_seconds() / 86400
    if elapsed <= 0:
        return
    row.checks += 1
    row.observed_days += elapsed
    if row.version is not None and seen.version is not None and seen.version != row.version:
        row.changes += 1


def record_observations(db: sqlite_utils.Database, observations: Sequence[Observation], config: FrontierConfig) -> None:
    """Apply a run's fetches to their rows (new pages enter the frontier here)."""
    if not observations:
        return
    census = store.state(db, "census") or {}
    scale = float(census.get("scale", 1.0))
    even_days = census.get("even_days")
    floors = census.get("observed_rate", {})
    rows = store.load_rows(db, {(o.page_type, o.subject_id) for o in observations})
    on_story = store.shown_on_stories(db, sorted({o.subject_id for o in observations if o.page_type == "photo"}))
    for seen in observations:  # in fetch order: a page fetched twice ends in its last state
        key = (seen.page_type, seen.subject_id)
        rows[key] = observe(rows.get(key), seen, scale, config, floor=floors.get(seen.page_type), even_days=even_days,
                            on_story=seen.page_type == "photo" and seen.subject_id in on_story)
    store.save_rows(db, list(rows.values()))


# -- listing enumeration ------------------------------------------------------------------------------


def record_listing(db: sqlite_utils.Database, kind: str, page: int, story_ids: Sequence[int], *, last: bool,
                   at: datetime) -> int:
    """One listing page fetched alone (``monitor.listings.record`` takes a run's pages of a kind together)."""
    return listings.record(db, kind, [listings.ListingPage(page, list(story_ids), last)], at)


# -- slices -------------------------------------------------------------------------------------------


@dataclass
class SlicePlan:
    """What one slice fetches: the index pages (when due), pages in priority order, listing pages."""

    at: datetime
    allowance: int
    index: bool = False
    pages: list[FrontierRow] = field(default_factory=list)
    listings: list[tuple[str, int]] = field(default_factory=list)
    tiers: dict[str, int] = field(default_factory=dict)
    pick_ms: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.pages) + len(self.listings)


def plan_slice(db: sqlite_utils.Database, config: FrontierConfig, now: datetime, *, used_in_lookback: int,
               index_cost: int, listing_kinds: Sequence[str]) -> SlicePlan:
    """Choose one slice's requests and advance the frontier's shared state (index time, listing cursors)."""
    budget = Budget.from_config(config)
    counts = census(db, config, now, index_cost)
    plan = SlicePlan(now, budget.allowance(used_in_lookback))
    remaining = plan.allowance
    index_at = store.state(db, "index_at")
    tolerance = timedelta(minutes=min(config.slice_minutes, config.index_interval_minutes) / 2)
    if remaining > 0 and (index_at is None or
                          now >= parse_stamp(index_at) + timedelta(minutes=config.index_interval_minutes) - tolerance):
        plan.index = True
        remaining -= min(remaining, index_cost + NEW_PAGE_RESERVE)
        store.set_state(db, "index_at", stamp(now))
    slices_per_day = 24 * 60 / config.slice_minutes
    verify_per_day = counts.get("verify_per_day", counts["verify_backlog"] / (VERIFY_PACE * config.verify_days))
    verify_quota = min(remaining, math.ceil(verify_per_day / slices_per_day))
    walk_share = listings.walk_pages_per_day(db, counts, listing_kinds, config.enumerate_days) / slices_per_day
    plan.listings = listings.advance(db, walk_share, counts, listing_kinds, now, config.listing_stride,
                                     room=remaining - verify_quota)  # what they leave goes to revisits
    enumerate_quota = len(plan.listings)
    started = time.perf_counter()
    ts = stamp(now)
    left = remaining - verify_quota - enumerate_quota
    urgent = store.pick_urgent(db, ts, left, (URGENCY_CONFIRM,))
    urgent += _unarchived(db, now - timedelta(minutes=config.retry_minutes), left - len(urgent))
    # Fresh pages before listing candidates: a walk's end can make hundreds of candidates at once, and
    # behind them the week-old stories, the ones edited most, waited hours (fresh edits p95 4.9 h).
    fresh = store.pick_due(db, ts, left - len(urgent), bands=(FRESH_BAND,))
    urgent += store.pick_urgent(db, ts, left - len(urgent) - len(fresh), (URGENCY_UNARCHIVED, URGENCY_CANDIDATE))
    due = fresh + store.pick_due(db, ts, left - len(urgent) - len(fresh), bands=(1, 0))
    picked = {(r.page_type, r.subject_id) for r in urgent + due}
    verify = store.pick_least_verified(db, min(verify_quota, remaining - enumerate_quota - len(picked)), picked)
    picked |= {(r.page_type, r.subject_id) for r in verify}
    ahead = store.pick_next_due(db, remaining - enumerate_quota - len(picked), picked)
    plan.pick_ms = (time.perf_counter() - started) * 1000
    plan.pages = urgent + due + verify + ahead
    plan.tiers = {"index": index_cost if plan.index else 0, "urgent": len(urgent), "due": len(due),
                  "verify": len(verify), "ahead": len(ahead), "enumerate": len(plan.listings)}
    return plan


def _unarchived(db: sqlite_utils.Database, retry_before: datetime, limit: int) -> list[FrontierRow]:
    """Pages known but not archived yet (a related link, an inline photo): first after confirmations."""
    from core.urls import photo_page_url

    return [FrontierRow(page_type, subject_id, url or photo_page_url(subject_id), urgency=URGENCY_UNARCHIVED)
            for page_type, subject_id, url in store.pick_unarchived(db, stamp(retry_before), limit)
            if url or page_type == "photo"]


def census(db: sqlite_utils.Database, config: FrontierConfig, now: datetime, index_cost: int = 0) -> dict[str, Any]:
    """Archive size, the revisit scale and the verification backlog, recomputed every ``CENSUS_EVERY``.

    The scale sizes the revisits to ``REVISIT_SHARE`` of what the budget leaves after the index checks
    (as ``plan_slice`` reserves them), the verification backlog and the listing walk: revisits sized to
    all of it left the least urgent band due for ever longer whenever confirmations, candidates and
    retries took their share (old stories waited 9 days at the 95th percentile, not 6); what urgent work
    leaves of it goes to the revisits due next (``plan_slice``)."""
    census = store.state(db, "census")
    fresh = census and "verify_backlog" in census and timedelta(0) <= now - parse_stamp(census["at"]) < CENSUS_EVERY
    if fresh and census["pages"] >= CENSUS_SMALL:  # a small archive (a new one) is counted every slice
        return census
    counted = store.census(db, config.prior_old_rate, stamp(now - timedelta(days=config.verify_days * VERIFY_BACKLOG)),
                           stamp(now - timedelta(days=on_story_period(config) * VERIFY_BACKLOG)))
    slices_per_day = 24 * 60 / config.slice_minutes
    budget_per_day = Budget.from_config(config).per_slice() * slices_per_day
    index_per_day = 24 * 60 / config.index_interval_minutes * (index_cost + NEW_PAGE_RESERVE)
    on_story = counted["verify_backlog_on_story"]  # each part of the backlog paced on its own period
    verify_per_day = ((counted["verify_backlog"] - on_story) / (VERIFY_PACE * config.verify_days)
                      + on_story / (VERIFY_PACE * on_story_period(config)))
    enumerate_per_day = listings.walk_pages_per_day(db, counted, counted["stories_by_kind"], config.enumerate_days)
    revisits_per_day = REVISIT_SHARE * (budget_per_day - index_per_day - verify_per_day - enumerate_per_day)
    by_rate = (1 - config.even_share) * revisits_per_day
    census = {**counted, "at": stamp(now), "verify_per_day": verify_per_day,
              "scale": revisit_scale(counted["root_rate_sum"], by_rate),
              "even_days": even_interval(counted["revisited"], config.even_share * revisits_per_day)}
    store.set_state(db, "census", census)
    return census


def summary(db: sqlite_utils.Database, config: FrontierConfig, now: datetime) -> dict[str, Any]:
    """The frontier for ``defwatch stats``: due pages, budget used, verification age and horizon."""
    totals = store.totals(db, stamp(now))
    budget = Budget.from_config(config)
    used_hour = store.requests_since(db, stamp(now - timedelta(hours=1)))
    used_day = store.requests_since(db, stamp(now - timedelta(days=1)))
    oldest = totals.pop("oldest_verified_at")
    verified_day = store.verified_since(db, stamp(now - timedelta(days=1)))
    return {
        **totals,
        "budget_requests_per_hour": config.requests_per_hour,
        "budget_burst": config.burst,
        "requests_last_hour": used_hour,
        "requests_last_day": used_day,
        "budget_used_share": round(used_hour / config.requests_per_hour, 3) if config.requests_per_hour else None,
        "slice_allowance_now": budget.allowance(store.requests_since(db, stamp(now - budget.lookback))),
        "oldest_verified_at": oldest,
        "oldest_verification_age_hours": round((now - parse_stamp(oldest)).total_seconds() / 3600, 1)
        if oldest else None,
        "verified_last_day": verified_day,
        # at the last day's pace, how long until every page has been verified once more
        "expected_days_to_verify_all": round(totals["pages"] / verified_day, 1) if verified_day else None,
        "verify_days": config.verify_days,
    }
