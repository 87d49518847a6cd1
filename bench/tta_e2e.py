"""``bench/time_to_alert.py --end-to-end``: the same frontier end to end, at reduced scale.

The real daemon (``defwatch run``, a child process) fires ``frontier`` slices, each a real
``defwatch crawl --mode frontier`` child crawling the sample site (synthetic stories) over real HTTP;
the change model is applied to the sample site through its change API while it runs. Time is
simulated by speeding up every time stamp defwatch takes (``DEFWATCH_TEST_CLOCK_SPEED``, a test hook
of ``db.archive.wall_clock``): at ``--e2e-speed 60`` a simulated day takes 24 real minutes and a
5-minute slice fires every 5 real seconds (the scheduler itself runs on the real clock, so its
interval is divided by the speed). Latencies are read from the archive's events (``detected_at``).

The budget is scaled with the site (``--e2e-requests-per-hour``, simulated hours) because the index
check (feeds and first listing pages) does not shrink with it; the verification period and listing
walk are scaled to the simulated span. The daemon's RSS is read from /proc at its first and last slice.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ttamodel import poisson

from samplesite import SampleSite

ROOT = Path(__file__).resolve().parent.parent
HOUR = 3600.0


@dataclass
class Applied:
    kind: str  # new | fresh-edit | old-edit | related | removal | restoration
    at: datetime  # simulated time it was applied
    event: str  # the event kind that reports it
    subject: int


def add_e2e_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--e2e-stories", type=int, default=400, help="synthetic stories of the sample site (end to end)")
    p.add_argument("--e2e-hours", type=float, default=24.0, help="simulated hours (end to end)")
    p.add_argument("--e2e-speed", type=float, default=60.0, help="simulated seconds per real second (end to end)")
    p.add_argument("--e2e-requests-per-hour", type=float, default=600.0,
                   help="budget in simulated hours at the reduced scale (end to end)")


def run_end_to_end(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    scale = args.e2e_stories / args.stories
    with tempfile.TemporaryDirectory(prefix="defwatch-tta-e2e-") as tmp, SampleSite(synthetic=args.e2e_stories) as site:
        db = Path(tmp) / "e2e.db"
        config = Path(tmp) / "defwatch.toml"
        slice_minutes = 5.0
        config.write_text(_config(args, slice_minutes), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEFWATCH_")}
        env |= {"DEFWATCH_CONFIG": str(config), "DEFWATCH_DB": str(db), "DEFWATCH_SITE": site.base_url,
                "PYTHONPATH": str(ROOT)}
        baseline = subprocess.run([sys.executable, "-m", "defwatch", "crawl", "--mode", "full", "--no-mail"],
                                  env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
        if baseline.returncode != 0:
            print(f"baseline crawl failed: {baseline.stderr[-2000:]}", file=sys.stderr)
            return 1
        epoch = time.time()
        env |= {"DEFWATCH_TEST_CLOCK_SPEED": str(args.e2e_speed), "DEFWATCH_TEST_CLOCK_EPOCH": repr(epoch)}
        start = datetime.fromtimestamp(epoch, UTC)
        daemon = subprocess.Popen([sys.executable, "-m", "defwatch", "run"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            applied, rss = _drive(site, db, args, rng, scale, epoch, start, daemon.pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            _out, err = daemon.communicate(timeout=120)
        return _report(db, args, applied, rss, start, daemon.returncode, err)


def _config(args: argparse.Namespace, slice_minutes: float) -> str:
    days = args.e2e_hours / 24
    return f"""[crawl]
polite = false

[frontier]
requests_per_hour = {args.e2e_requests_per_hour}
slice_minutes = {slice_minutes}
verify_days = {max(days, 0.1):.4f}
enumerate_days = {max(days / 4, 0.02):.4f}

[[jobs]]
name = "frontier"
mode = "frontier"
interval_minutes = {slice_minutes / args.e2e_speed:.5f}
"""


def _drive(site: SampleSite, db: Path, args: argparse.Namespace, rng: random.Random, scale: float, epoch: float,
           start: datetime, pid: int) -> tuple[list[Applied], list[int]]:
    """Apply the change model to the site at its simulated moments until the simulated span is over."""
    span = args.e2e_hours * HOUR
    plan = _schedule(args, rng, scale, span)
    old = [i for i in site.content.ordered_ids(None)]
    old_media = [m for m in _archived_photos(db)]
    applied: list[Applied] = []
    rss: list[int] = []
    fresh: list[tuple[float, int, list[int]]] = []  # (published sim s, story, its media)
    removed: list[int] = []
    while plan:
        at, action = plan.pop(0)
        _sleep_until(epoch + at / args.e2e_speed)
        rss.append(_rss(pid))
        moment = start + timedelta(seconds=at)
        if action == "publish":
            before = set(site.content.images)
            sid = site.publish()
            media = sorted(set(site.content.images) - before)
            fresh.append((at, sid, media))
            applied.append(Applied("new", moment, "story_new", sid))
            for _ in range(poisson(rng, args.fresh_edits)):
                edit_at = at + rng.expovariate(1 / (args.fresh_edit_hours * HOUR))
                if edit_at < span:
                    plan.append((edit_at, f"fresh:{sid}:{','.join(map(str, media))}"))
            plan.sort()
        elif action.startswith("fresh:"):
            _, sid_text, media_text = action.split(":")
            media = [int(m) for m in media_text.split(",") if m]
            if media and rng.random() < args.caption_share:
                target = rng.choice(media)
                site.set_caption(target, f"Caption revised at {moment:%H:%M:%S}.")
                applied.append(Applied("fresh-edit", moment, "image_updated", target))
            else:
                site.edit_paragraph(int(sid_text), 0, f"Updated at {moment:%H:%M:%S}: the story changed.")
                applied.append(Applied("fresh-edit", moment, "story_updated", int(sid_text)))
        elif action == "old-edit":
            story = rng.choice(old)
            site.edit_paragraph(story, 0, f"Corrected at {moment:%H:%M:%S}.")
            applied.append(Applied("old-edit", moment, "story_updated", story))
        elif action == "caption" and old_media:
            media_id = rng.choice(old_media)
            site.set_caption(media_id, f"Caption corrected at {moment:%H:%M:%S}.")
            applied.append(Applied("old-edit", moment, "image_updated", media_id))
        elif action == "related":
            story, other = rng.sample(old, 2)
            site.add_related(story, other)
            applied.append(Applied("related", moment, "related_added", story))
        elif action == "remove":
            story = rng.choice([s for s in old[len(old) // 3:] if s not in removed])
            removed.append(story)
            site.remove(story)
            applied.append(Applied("removal", moment, "story_removed", story))
        elif action == "restore" and removed:
            story = removed.pop(rng.randrange(len(removed)))
            site.restore(story)
            applied.append(Applied("restoration", moment, "story_restored", story))
    _sleep_until(epoch + span / args.e2e_speed)
    rss.append(_rss(pid))
    return applied, [r for r in rss if r]


def _schedule(args: argparse.Namespace, rng: random.Random, scale: float, span: float) -> list[tuple[float, str]]:
    """The model's rates, the old-page trickle and the wave scaled to the site's size, over the span."""
    plan: list[tuple[float, str]] = []
    per_second = {"publish": args.new_per_day / 86400, "old-edit": args.old_edits_per_day * scale / 86400,
                  "caption": args.caption_edits_per_day * scale / 86400,
                  "related": args.related_per_day * scale / 86400}
    for action, rate in per_second.items():
        t = 0.0
        while rate > 0 and (t := t + rng.expovariate(rate)) < span:
            plan.append((t, action))
    stories_removed = max(1, round(args.wave_pages * scale / (1 + args.photos_per_story)))
    for _ in range(stories_removed):
        plan.append((rng.uniform(0.1, 0.5) * span, "remove"))
    for _ in range(max(1, round(stories_removed * args.restore_share))):
        plan.append((rng.uniform(0.6, 0.8) * span, "restore"))
    return sorted(plan)


def _archived_photos(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT media_id FROM images WHERE source = 'photo_page'")]


def _sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _report(db: Path, args: argparse.Namespace, applied: list[Applied], rss: list[int], start: datetime,
            returncode: int | None, err: str) -> int:
    from time_to_alert import UNITS, percentile

    with sqlite3.connect(db) as conn:
        events = conn.execute("SELECT kind, subject_id, detected_at FROM events").fetchall()
        requests = conn.execute("SELECT COUNT(*) FROM fetches WHERE fetched_at >= ?",
                                [start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")]).fetchone()[0]
        runs = conn.execute("SELECT COUNT(*), SUM(status = 'ok') FROM runs WHERE mode = 'frontier'").fetchone()
        removal_events = conn.execute(
            "SELECT kind, subject_id FROM events WHERE kind IN ('story_removed', 'image_removed')").fetchall()
    end = start + timedelta(hours=args.e2e_hours)
    seen: dict[tuple[str, int], list[datetime]] = {}
    for kind, subject, detected in events:
        seen.setdefault((kind, subject), []).append(datetime.fromisoformat(detected.replace("Z", "+00:00")))
    removed = {a.subject for a in applied if a.kind == "removal"}
    false_removals = sum(1 for kind, subject in removal_events if kind != "story_removed" or subject not in removed)
    print(f"end to end: {args.e2e_stories} synthetic stories, {args.e2e_hours:g} simulated hours at "
          f"x{args.e2e_speed:g}; {runs[0]} frontier slices ({runs[1] or 0} ok), "
          f"{requests / (args.e2e_hours / 24):,.0f} requests/day (simulated), budget "
          f"{args.e2e_requests_per_hour:g}/h; daemon exit {returncode}")
    print(f"  {'change':<12} {'count':>6} {'p50':>9} {'p95':>9} {'max':>9} {'undetected':>11}")
    figures: dict[str, float] = {}
    for kind in ("new", "fresh-edit", "old-edit", "related", "removal", "restoration"):
        waits, missed = [], 0
        for change in (a for a in applied if a.kind == kind):
            found = [d for d in seen.get((change.event, change.subject), []) if d >= change.at]
            waits.append(((min(found) if found else end) - change.at).total_seconds())
            missed += not found
        unit, scale = UNITS[kind]
        p95 = percentile(waits, 95) / scale if waits else math.nan
        figures[kind] = p95
        top = max(waits) / scale if waits else math.nan
        print(f"  {kind:<12} {len(waits):>6} {_num(percentile(waits, 50) / scale):>8}{unit} {_num(p95):>8}{unit} "
              f"{_num(top):>8}{unit} {missed:>11}")
    growth = (rss[-1] - rss[0]) / rss[0] if len(rss) > 1 and rss[0] else math.nan
    print(f"  false removals {false_removals} ({len(removal_events)} removal events, {len(removed)} stories removed); "
          f"daemon RSS {rss[0] / 1024 if rss else math.nan:.0f} MB -> {rss[-1] / 1024 if rss else math.nan:.0f} MB "
          f"({growth:+.1%})")
    if returncode != 0:
        print(err[-2000:], file=sys.stderr)
    print(f"time-to-alert (end to end): new p95 {_num(figures['new'], 0)}m, fresh-edit p95 "
          f"{_num(figures['fresh-edit'], 1)}h, old-edit p95 {_num(figures['old-edit'])}d, removal p95 "
          f"{_num(figures['removal'])}d, requests/day {requests / (args.e2e_hours / 24):,.0f}")
    return 0 if returncode == 0 else 1


def _num(value: float, digits: int = 2) -> str:
    """A figure, or ``-`` when there was nothing to measure (no change of that kind in a short run)."""
    return "-" if math.isnan(value) else f"{value:.{digits}f}"
