"""The frontier around one run: plan a ``--mode frontier`` slice before the crawl, learn from every
run's fetches after its change detection (whatever its mode, so one-off crawls teach it too)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sqlite_utils

from core.clock import parse_stamp, stamp
from core.config import Config
from core.records import Listing
from core.urls import LISTING_BY_KIND, classify_url, index_key
from crawler.parsers import parse_page
from db import frontier as store
from db.rows import read_raw
from monitor import listings
from monitor.frontier import ABSENT, ANSWERED, Budget, Observation, SlicePlan, plan_slice
from monitor.frontier import record_observations as apply_observations
from monitor.listings import ListingPage

logger = logging.getLogger(__name__)
CHUNK = 5000  # fetches applied to the frontier at a time


def plan_run(db: sqlite_utils.Database, config: Config, now: datetime, run_id: int) -> SlicePlan:
    """This run's slice: the budget left in the window, the index pages when due, the picked pages."""
    budget = Budget.from_config(config.frontier)
    used = store.requests_since(db, stamp(now - budget.lookback))
    index_cost = len(config.crawl.feeds) + len(LISTING_BY_KIND) * max(1, config.crawl.discover_listing_pages)
    with db.atomic():
        plan = plan_slice(db, config.frontier, now, used_in_lookback=used, index_cost=index_cost,
                          listing_kinds=list(LISTING_BY_KIND))
        store.set_state(db, "slice", {"run_id": run_id, "at": stamp(now), "allowance": plan.allowance,
                                      "tiers": plan.tiers, "pick_ms": round(plan.pick_ms, 2),
                                      "listings": plan.listings})
    logger.info("frontier slice for run %s: allowance %d, %s (picked in %.1f ms)", run_id, plan.allowance,
                plan.tiers, plan.pick_ms)
    return plan


def slice_spider_args(db: sqlite_utils.Database, config: Config, now: datetime, run_id: int) -> dict[str, Any]:
    """The spider arguments of a ``--mode frontier`` run, planned from the archive at the run's start:
    the same for a local crawl (``monitor.run``) and a distributed writer's seed (its workers share them)."""
    from db.queries import KnownPage

    plan = plan_run(db, config, now, run_id)
    pages = [KnownPage(row.page_type, row.subject_id, row.url, row.kind) for row in plan.pages]
    return {"frontier_pages": pages, "frontier_index": plan.index, "frontier_listings": plan.listings}


def record_run(db: sqlite_utils.Database, run_id: int, config: Config) -> int:
    """Teach the frontier what run ``run_id`` fetched; returns the number of new removal candidates.

    In chunks of fetches, so a one-off sweep of the whole archive does not hold 400,000 rows at once."""
    fetches = store.run_fetches(db, run_id)
    pages = [f for f in fetches if f[0] in ("story", "photo") and f[1] is not None]
    with db.atomic():
        for start in range(0, len(pages), CHUNK):
            apply_observations(db, _observations(db, pages[start:start + CHUNK]), config.frontier)
        return _record_listings(db, run_id, [f for f in fetches if f[0] == "listing"], config)


def _observations(db: sqlite_utils.Database, pages: list[tuple]) -> list[Observation]:
    facts = store.page_facts(db, {(f[0], f[1]) for f in pages})
    observations = []
    for page_type, subject_id, url, outcome, version, fetched_at, _sha, _ctype in pages:
        fact = facts.get((page_type, subject_id))
        if fact is None:
            continue  # never archived (a 404 or an error before any good fetch): nothing to revisit
        page_url, kind, published, status, current = fact
        shown = version if version is not None else (current if outcome in ANSWERED else None)
        observations.append(Observation(page_type, subject_id, page_url or url, outcome, parse_stamp(fetched_at),
                                        shown, status, kind, published))
    return observations


def _record_listings(db: sqlite_utils.Database, run_id: int, fetches: list[tuple], config: Config) -> int:
    """Listing pages of the run, a kind's together (``monitor.listings``): their stories are listed, gaps
    between them checked; a walked kind's last page ends its walk."""
    plan = store.state(db, "slice") or {}
    walked = {(kind, page) for kind, page in plan.get("listings", [])} if plan.get("run_id") == run_id else set()
    by_kind: dict[str, list[ListingPage]] = {}
    at: dict[str, datetime] = {}
    for _type, _id, url, outcome, _version, fetched_at, sha, _ctype in fetches:
        kind, page = _listing_ref(url)
        if kind is None:
            continue
        if outcome in ABSENT:
            ids, last = [], True
        elif outcome in ANSWERED:
            listing = _listing(db, url, sha)
            if listing is None:
                continue
            ids, last = [item.id for item in listing.items], not listing.items or not listing.next_page
        else:
            continue  # blocked or failed: neither a page of stories nor the end of the walk
        by_kind.setdefault(kind, []).append(ListingPage(page, ids, last))
        at[kind] = parse_stamp(fetched_at)
    return sum(listings.record(db, kind, pages, at[kind], walked={p for k, p in walked if k == kind})
               for kind, pages in by_kind.items())


def _listing_ref(url: str) -> tuple[str | None, int]:
    ref = classify_url(url)
    if ref.type != "listing" or ref.kind is None:
        return None, 0
    pages = parse_qs(urlsplit(url).query).get("Page") or parse_qs(urlsplit(url).query).get("page") or ["1"]
    try:
        return ref.kind, int(pages[0])
    except ValueError:
        return ref.kind, 1


def _listing(db: sqlite_utils.Database, url: str, sha: str | None) -> Listing | None:
    """The listing as fetched (its body), or for a 304 as last parsed."""
    body = read_raw(db, sha) if sha else None
    if body is None:
        row = db.execute("SELECT raw_sha256 FROM index_pages WHERE key = ?", [index_key(url)]).fetchone()
        body = read_raw(db, row[0]) if row and row[0] else None
    if body is None:
        return None
    record = parse_page(body, url, "text/html")
    return record if isinstance(record, Listing) else None
