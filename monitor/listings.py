"""Listing checks: noticing stories gone from the site's listings at a fraction of a request per page.

A listing shows one kind's stories newest first, ``size`` to a page. Two facts spare most of its pages:

- the items of one page are neighbours on the site, and so are the last item of page p and the first
  of page p + 1 when both are fetched in the same run. Every archived story that the learned order
  (``frontier.listing_key``) places between two neighbours, and that the site does not show, is gone
  from the listing: it becomes a removal candidate (its own 404/410, twice, still decides);
- between the last item of page p and the first of page q, fetched in the same run, the site shows
  exactly ``(q - p - 1) * size`` stories. When the learned order holds exactly that many listed stories
  between the two, none of them left, and the pages between need no fetch.

A story shown again after it was found gone is a candidate too: fetched soon, its 200 says it was restored.

So a walk reads every ``listing_stride``-th page, a few pages of a kind at a time (a *chain*, whose first
page repeats the previous chain's last so that no gap goes unchecked). A gap whose count differs becomes
a *span*, fetched whole in the next slice, where the neighbour rule names the stories that left.

The order is learned from the pages themselves: a kind's first walk reads every page (stride 1) and
gives each story a key between its neighbours'; a story seen later without one (a new story on page 1,
a restored one) is keyed between the neighbours it is shown with. A shown order that contradicts the
learned one makes the kind forget it and walk every page again. A count is fooled only when, within one
gap and between two checks, a story leaves and one the order does not know arrives; every
``FULL_WALK_EVERY``-th walk reads every page as a safety net.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

import sqlite_utils

from core.clock import stamp
from db import frontier as store

logger = logging.getLogger(__name__)

LISTING_PAGE_SIZE = 10  # items per listing page on the site, until a page says otherwise
MAX_CANDIDATE_SHARE = 0.10  # more unlisted stories than this says the walk or the parser broke, not the site
FULL_WALK_EVERY = 10  # every this many walks of a kind read every page (the counts' safety net)
CHAIN_MIN = 8  # a kind's walk pages are fetched this many at a time at least (one more repeats the last)
SPAN_TRIES = 3  # a span whose pages keep failing is given up (the next walk checks its gap again)


@dataclass(frozen=True)
class ListingPage:
    """One fetched listing page: its number, the stories it shows in order, and whether it is the end."""

    page: int
    story_ids: list[int]
    last: bool


# -- the walk's plan -----------------------------------------------------------------------------------


def cursor(db: sqlite_utils.Database, kind: str) -> dict[str, Any]:
    """A kind's walk: next page, stride, pages owed (credit), spans to fetch, what is learned."""
    defaults: dict[str, Any] = {"next": 1, "cycle_start": None, "credit": 0.0, "stride": 1, "keyed": False,
                                "walks": 0, "spans": [], "size": LISTING_PAGE_SIZE, "last": None, "floor": None,
                                "top": None}
    return defaults | (store.state(db, f"listing:{kind}") or {})


def _save(db: sqlite_utils.Database, kind: str, walk: dict[str, Any]) -> None:
    store.set_state(db, f"listing:{kind}", walk)


def _pages(stories: int, walk: dict[str, Any]) -> int:
    return math.ceil(stories / max(1, walk["size"]))


def walk_pages_per_day(db: sqlite_utils.Database, census: dict[str, Any], kinds: Iterable[str],
                       enumerate_days: float) -> float:
    """Walk pages a day: each kind's listing within ``enumerate_days``, at its walk's stride."""
    total = 0.0
    for kind in kinds:
        walk = cursor(db, kind)
        total += _pages(census.get("stories_by_kind", {}).get(kind, 0), walk) / walk["stride"]
    return total * (CHAIN_MIN + 1) / CHAIN_MIN / enumerate_days  # each chain repeats the last page of the one before


def advance(db: sqlite_utils.Database, quota: float, census: dict[str, Any], kinds: Sequence[str], at: datetime,
            stride: int, room: int) -> list[tuple[str, int]]:
    """At most ``room`` listing pages: pending spans, each whole, within half of it (a removal wave's spans
    cannot hold every revisit back); then the walk's next chains: ``quota`` pages a slice shared between
    kinds by their walk pages (a kind's share is carried over until it makes a chain)."""
    span_budget = room // 2
    walks = {kind: cursor(db, kind) for kind in kinds}
    pages = {kind: _pages(census.get("stories_by_kind", {}).get(kind, 0), walk) for kind, walk in walks.items()}
    weights = {kind: pages[kind] / walks[kind]["stride"] for kind in kinds}
    total = sum(weights.values())
    chosen: list[tuple[str, int]] = []
    for kind, walk in walks.items():
        spans = _spans(walk, kind, span_budget)
        span_budget -= len(spans)
        chosen += spans
        if pages[kind]:
            walk["credit"] += max(0.0, quota) * weights[kind] / total
            chosen += _chain(walk, kind, pages[kind], at, stride, room - len(chosen))
        _save(db, kind, walk)
    return chosen


def _spans(walk: dict[str, Any], kind: str, budget: int) -> list[tuple[str, int]]:
    """The spans that fit ``budget``, each whole; one fetched ``SPAN_TRIES`` times without all its pages
    answering is given up (the next walk checks its gap again)."""
    chosen: list[tuple[str, int]] = []
    kept = []
    for p, q, tries in walk["spans"]:
        if q - p + 1 > budget - len(chosen):
            kept.append([p, q, tries])
            continue
        chosen += [(kind, page) for page in range(p, q + 1)]
        if tries + 1 < SPAN_TRIES:
            kept.append([p, q, tries + 1])
    walk["spans"] = kept
    return chosen


def _chain(walk: dict[str, Any], kind: str, pages: int, at: datetime, stride: int,
           room: int) -> list[tuple[str, int]]:
    if walk["next"] > pages + 2 * max(walk["stride"], CHAIN_MIN):  # the walk's end was never seen (failed fetches)
        walk |= {"next": 1, "cycle_start": None, "last": None}
    if walk["next"] == 1 and walk["cycle_start"] is None:
        full = not walk["keyed"] or (walk["walks"] + 1) % FULL_WALK_EVERY == 0
        walk |= {"stride": 1 if full else stride, "floor": None}
    count = min(int(walk["credit"]), room)
    overlap = [walk["last"]] if walk["last"] and walk["next"] > 1 else []  # paid from the credit too
    if count < min(CHAIN_MIN, math.ceil(pages / walk["stride"])) or count <= len(overlap):
        return []
    if walk["next"] == 1:
        walk["cycle_start"] = stamp(at)
    chain = [walk["next"] + i * walk["stride"] for i in range(count - len(overlap))]
    # one page at or past the end as the archive counts it, not more (the site's end may lie further on)
    chain = [page for page in chain if page - walk["stride"] < pages] or chain[:1]
    walk["credit"] -= len(overlap) + len(chain)
    walk |= {"next": chain[-1] + walk["stride"], "last": chain[-1]}
    return [(kind, page) for page in overlap + chain]


# -- what a run's listing pages show ------------------------------------------------------------------


def record(db: sqlite_utils.Database, kind: str, fetched: Sequence[ListingPage], at: datetime,
           walked: set[int] | None = None) -> int:
    """Apply one run's listing pages of ``kind`` (fetched together): mark their stories listed, find the
    stories gone from between neighbours, check the gaps between the pages by count, learn the places
    of stories shown without one, and end the walk at its last page. Returns pages made candidates."""
    ts = stamp(at)
    walk = cursor(db, kind)
    pages = sorted({p.page: p for p in fetched}.values(), key=lambda p: p.page)
    shown = [story for p in pages for story in p.story_ids]
    returned = store.delisted_among(db, shown)  # back on the listing: restored, fetched soon to say so
    store.mark_listed(db, shown, ts)
    walk["size"] = max([len(p.story_ids) for p in pages if not p.last] + [0]) or walk["size"]
    keys = store.listing_keys(db, shown)
    keys |= dict.fromkeys(returned)  # placed again from their neighbours: a restored story may come back re-dated
    runs = _runs(pages)
    sequences = [_sequence(run) for run in runs]
    if not all(_in_order(items, keys) for items in sequences):
        return _forget(db, kind, walk, "the listing's order contradicts the learned one")
    gone = {story for run, items in zip(runs, sequences, strict=True) for story in _gaps(db, kind, run, items, keys)}
    gone -= set(shown)
    if len(gone) > max(50, MAX_CANDIDATE_SHARE * store.stories_of_kind(db, kind)):
        return _forget(db, kind, walk, f"{len(gone)} stories gone from between the {len(shown)} shown")
    store.mark_delisted(db, sorted(gone), ts)
    made = store.mark_candidates(db, sorted(gone | set(returned)), ts) if gone or returned else 0
    for run, items in zip(runs, sequences, strict=True):
        _learn(db, kind, run, items, keys, walk)
    walk["spans"] += [[p, q, 0] for p, q in _unchecked_gaps(db, kind, runs, keys, walk["size"])
                      if [p, q] not in [s[:2] for s in walk["spans"]]]
    fetched_pages = {p.page for p in pages}
    walk["spans"] = [s for s in walk["spans"] if not set(range(s[0], s[1] + 1)) <= fetched_pages]
    ends = [p.page for p in pages if p.last and (walked is None or p.page in walked)]
    if ends and walk["cycle_start"] and ends[0] < walk["next"]:
        made += _end_walk(db, kind, walk)
    _save(db, kind, walk)
    return made


def _forget(db: sqlite_utils.Database, kind: str, walk: dict[str, Any], why: str) -> int:
    logger.warning("listing of %s: %s; taken as a broken walk or parser, not as removals: no candidates "
                   "marked, its order will be learned again by a walk of every page", kind, why)
    store.forget_listing_order(db, kind)
    walk |= {"keyed": False, "spans": [], "next": 1, "cycle_start": None, "last": None, "floor": None}
    _save(db, kind, walk)
    return 0


def _end_walk(db: sqlite_utils.Database, kind: str, walk: dict[str, Any]) -> int:
    """A walk of every page also makes candidates of the stories it never showed (those without a place
    in the order, which no neighbour rule can name); it leaves the kind keyed if it keyed them all."""
    made = 0
    if walk["stride"] == 1:
        made = _unlisted(db, kind, walk["cycle_start"])
        walk["keyed"] = store.unkeyed_listed_since(db, kind, walk["cycle_start"]) == 0
    walk |= {"next": 1, "cycle_start": None, "last": None, "floor": None, "walks": walk["walks"] + 1}
    return made


def _unlisted(db: sqlite_utils.Database, kind: str, cycle_start: str) -> int:
    unlisted = store.unlisted_stories(db, kind, cycle_start)
    if len(unlisted) > max(50, MAX_CANDIDATE_SHARE * store.stories_of_kind(db, kind)):
        logger.warning("listing walk of %s missed %d stories: taken as a broken walk or parser, "
                       "not as removals; no candidates marked", kind, len(unlisted))
        return 0
    store.mark_delisted(db, unlisted, cycle_start)
    return store.mark_candidates(db, unlisted, cycle_start)


def _runs(pages: Sequence[ListingPage]) -> list[list[ListingPage]]:
    """Pages in runs of consecutive numbers: within a run every item's neighbour was fetched too."""
    runs: list[list[ListingPage]] = []
    for page in pages:
        if runs and page.page == runs[-1][-1].page + 1 and not runs[-1][-1].last:
            runs[-1].append(page)
        else:
            runs.append([page])
    return runs


def _sequence(run: Sequence[ListingPage]) -> list[int]:
    """A run's stories in order, each once (a story published between two fetches pushes one item from
    the bottom of a page to the top of the next)."""
    seen: set[int] = set()
    return [s for p in run for s in p.story_ids if not (s in seen or seen.add(s))]  # type: ignore[func-returns-value]


def _in_order(items: Sequence[int], keys: dict[int, float | None]) -> bool:
    placed = [keys[s] for s in items if keys.get(s) is not None]
    return all(a > b for a, b in pairwise(placed))  # type: ignore[operator]


def _gaps(db: sqlite_utils.Database, kind: str, run: Sequence[ListingPage], items: Sequence[int],
          keys: dict[int, float | None]) -> list[int]:
    """Listed stories the order places between two shown neighbours, above page 1's first, below the end."""
    placed = [keys[s] for s in items if keys.get(s) is not None]
    bounds: list[tuple[float | None, float | None]] = [(low, high) for high, low in pairwise(placed)]
    if run[0].page == 1 and (placed or run[-1].last):
        bounds.append((placed[0] if placed else None, None))
    if run[-1].last and placed:
        bounds.append((None, placed[-1]))
    return [story for low, high in bounds for story in store.listed_between(db, kind, low, high)]


def _unchecked_gaps(db: sqlite_utils.Database, kind: str, runs: Sequence[Sequence[ListingPage]],
                    keys: dict[int, float | None], size: int) -> list[tuple[int, int]]:
    """Gaps between runs whose count does not hold: spans (their end pages) to fetch whole."""
    spans = []
    for upper, lower in pairwise(runs):
        top, bottom = upper[-1], lower[0]
        if top.last:
            continue  # the lower run lies past the end
        high = keys.get(top.story_ids[-1]) if len(top.story_ids) == size else None
        low = keys.get(bottom.story_ids[0]) if bottom.story_ids else None
        expected = (bottom.page - top.page - 1) * size
        if high is None or low is None or store.count_listed_between(db, kind, low, high) != expected:
            spans.append((top.page, bottom.page))
    return spans


def _learn(db: sqlite_utils.Database, kind: str, run: Sequence[ListingPage], items: Sequence[int],
           keys: dict[int, float | None], walk: dict[str, Any]) -> None:
    """Give each archived story shown without a place one between its shown neighbours' (or, at a run's
    ends, the learned neighbours' beyond them)."""
    learned: dict[int, float] = {}
    group: list[int] = []
    high: float | None = None
    at_top = run[0].page == 1
    for story in [*items, None]:
        key = keys.get(story) if story is not None else None
        if story is not None and key is None:
            if story in keys:  # archived: it can be placed (an unarchived one is placed once archived)
                group.append(story)
            continue
        if group:
            low = key if story is not None else _below(db, kind, high, run)
            above = high if high is not None or at_top else _above(db, kind, low, walk)
            if at_top and high is None:  # the newest stories: above every place ever given
                low = max(x for x in (low, walk["top"], 0.0) if x is not None)
            learned |= _place(group, above, low, top=at_top and high is None)
            group = []
        if key is not None:
            high = key
    if learned:
        store.set_listing_keys(db, learned)
        keys.update(learned)
        walk["top"] = max([*learned.values(), *([walk["top"]] if walk["top"] is not None else [])])
    placed = [keys[s] for s in items if keys.get(s) is not None]
    if placed and walk["cycle_start"]:
        walk["floor"] = min([walk["floor"], placed[-1]] if walk["floor"] is not None else [placed[-1]])


def _above(db: sqlite_utils.Database, kind: str, low: float | None, walk: dict[str, Any]) -> float | None:
    if low is not None:
        return store.neighbour_key(db, kind, low, above=True)
    return walk["floor"] if walk["stride"] == 1 and walk["cycle_start"] else math.nan  # nan: no place known


def _below(db: sqlite_utils.Database, kind: str, high: float | None, run: Sequence[ListingPage]) -> float | None:
    if high is None or run[-1].last:
        return None
    return store.neighbour_key(db, kind, high, above=False)


def _place(group: Sequence[int], high: float | None, low: float | None, *, top: bool) -> dict[int, float]:
    """Keys for ``group`` (in listing order) strictly between ``high`` and ``low`` (None: open)."""
    n = len(group)
    if high is not None and math.isnan(high):
        return {}
    if high is not None and low is not None:
        return {story: high - (high - low) * (i + 1) / (n + 1) for i, story in enumerate(group)}
    if high is not None:
        return {story: high - (i + 1) for i, story in enumerate(group)}
    if low is not None and top:
        return {story: low + (n - i) for i, story in enumerate(group)}
    return {}
