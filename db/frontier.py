"""The frontier table's queries: pick what is due, store what a fetch taught, read the totals.

Every pick is one short range of an index (``frontier_due`` on (urgency, due_at), ``frontier_verified``
on verified_at), so choosing a slice's batch costs the same at 400 pages or 400,000. The policy that
decides *when* a page is due lives in ``monitor.frontier``; this module only moves rows.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

import sqlite_utils

URGENCY_CONFIRM = 3  # answered 404/410 once: its removal waits for a second one on a later run
URGENCY_UNARCHIVED = 2  # known (linked) but not archived yet
URGENCY_CANDIDATE = 1  # gone from its listing: fetched soon, removed only by its own 404/410
URGENCY_NONE = 0
# A photo page whose caption a live story shows: the story's revisits see its edits first, so the page
# itself is left to the verification pass (``pick_due`` takes bands 2, 1, 0 only).
BAND_ON_STORY = -1


@dataclass
class FrontierRow:
    """One page's revisit state (a row of ``frontier``)."""

    page_type: str
    subject_id: int
    url: str
    kind: str | None = None
    published: str | None = None
    urgency: int = URGENCY_NONE
    due_at: str = ""
    change_rate: float | None = None
    checks: int = 0
    changes: int = 0
    observed_days: float = 0.0
    version: int | None = None
    last_checked: str | None = None
    verified_at: str | None = None
    listed_at: str | None = None
    added_at: str | None = None
    band: int = 0  # among due revisits, higher first (monitor.frontier.band)


COLUMNS = tuple(f.name for f in fields(FrontierRow))
_AS_TUPLE = attrgetter(*COLUMNS)  # dataclasses.astuple deep-copies every value: most of a slice's cost
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM frontier"


def _rows(cursor: Any) -> list[FrontierRow]:
    return [FrontierRow(*row) for row in cursor]


def _has_known_pages(db: sqlite_utils.Database) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'known_pages'").fetchone() is not None


def count_unarchived(db: sqlite_utils.Database) -> int:
    """Pages heard of, neither archived nor confirmed gone (``known_pages``, issue 15)."""
    if not _has_known_pages(db):
        return 0
    return db.execute("SELECT COUNT(*) FROM known_pages WHERE archived_at IS NULL AND gone_at IS NULL").fetchone()[0]


ALL_URGENCIES = (URGENCY_CONFIRM, URGENCY_UNARCHIVED, URGENCY_CANDIDATE)


def pick_urgent(db: sqlite_utils.Database, now: str, limit: int,
                urgencies: Sequence[int] = ALL_URGENCIES) -> list[FrontierRow]:
    """Due pages with an urgency, highest first (removal confirmation, unarchived, listing candidates)."""
    return _pick_in_order(db, "urgency = ?", [[u] for u in urgencies], now, limit)


def pick_unarchived(db: sqlite_utils.Database, retry_before: str, limit: int) -> list[tuple[str, int, str | None]]:
    """(page_type, id, url) of pages heard of but never archived (``known_pages``, issue 15, when the
    archive has it), oldest first; one that failed is asked again only after ``retry_before``."""
    if limit <= 0 or not _has_known_pages(db):
        return []
    return db.execute(
        """SELECT page_type, id, url FROM known_pages
           WHERE archived_at IS NULL AND gone_at IS NULL AND (last_attempt IS NULL OR last_attempt < ?)
           ORDER BY first_heard LIMIT ?""", [retry_before, limit]).fetchall()


def pick_due(db: sqlite_utils.Database, now: str, limit: int, bands: Sequence[int] = (2, 1, 0)) -> list[FrontierRow]:
    """Revisits whose time has come: the highest band first (fresh, then pages that changed before),
    most overdue first within a band, so a backlog of cold pages never holds back the ones that change."""
    return _pick_in_order(db, "urgency = 0 AND band = ?", [[b] for b in bands], now, limit)


def _pick_in_order(db: sqlite_utils.Database, where: str, groups: Sequence[list[int]], now: str,
                   limit: int) -> list[FrontierRow]:
    """Due rows of each group in turn, most overdue first within a group: one index range each."""
    picked: list[FrontierRow] = []
    for values in groups:
        if len(picked) >= limit:
            break
        picked += _rows(db.execute(f"{_SELECT} WHERE {where} AND due_at <= ? ORDER BY due_at LIMIT ?",
                                   [*values, now, limit - len(picked)]))
    return picked


def pick_next_due(db: sqlite_utils.Database, limit: int, exclude: set[tuple[str, int]]) -> list[FrontierRow]:
    """Revisits due soonest (not yet due), for budget nothing else wants: spent ahead of their time they
    shorten every page's wait a little, where verification ahead of its pace would go to photo pages."""
    if limit <= 0:
        return []
    picked: list[FrontierRow] = []
    for band in (2, 1, 0):
        rows = _rows(db.execute(f"{_SELECT} WHERE urgency = 0 AND band = ? ORDER BY due_at LIMIT ?",
                                [band, limit + len(exclude)]))
        picked += [r for r in rows if (r.page_type, r.subject_id) not in exclude]
    return sorted(picked, key=attrgetter("due_at"))[:limit]


def pick_least_verified(db: sqlite_utils.Database, limit: int, exclude: set[tuple[str, int]]) -> list[FrontierRow]:
    """The verification pass: pages the site has not answered for the longest (never first)."""
    if limit <= 0:
        return []
    rows = _rows(db.execute(f"{_SELECT} ORDER BY verified_at LIMIT ?", [limit + len(exclude)]))
    return [r for r in rows if (r.page_type, r.subject_id) not in exclude][:limit]


def load_rows(db: sqlite_utils.Database, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], FrontierRow]:
    """Rows by (page_type, subject_id), for the pages a run fetched."""
    found: dict[tuple[str, int], FrontierRow] = {}
    by_type: dict[str, list[int]] = {}
    for page_type, subject_id in keys:
        by_type.setdefault(page_type, []).append(subject_id)
    for page_type, ids in by_type.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in _rows(db.execute(f"{_SELECT} WHERE page_type = ? AND subject_id IN ({marks})",
                                        [page_type, *chunk])):
                found[(row.page_type, row.subject_id)] = row
    return found


# An upsert, not INSERT OR REPLACE: a replace deletes the row and inserts it again, rewriting every index
# entry; an update rewrites only the entries whose columns changed (2 to 3 times faster at 400,000 pages).
_UPSERT = (f"INSERT INTO frontier ({', '.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))}) "
           f"ON CONFLICT (page_type, subject_id) DO UPDATE SET "
           + ", ".join(f"{name} = excluded.{name}" for name in COLUMNS[2:]))


def save_rows(db: sqlite_utils.Database, rows: Sequence[FrontierRow]) -> None:
    """Insert or update rows (one statement per row, one transaction for all)."""
    if not rows:
        return
    with db.atomic():
        db.conn.executemany(_UPSERT, [_AS_TUPLE(r) for r in rows])


def mark_listed(db: sqlite_utils.Database, story_ids: Sequence[int], at: str) -> None:
    """A listing page showed these stories: they are on the site's listings as of ``at`` (the caller's
    transaction; one per listing page would cost more than the update)."""
    for start in range(0, len(story_ids), 500):
        chunk = list(story_ids[start:start + 500])
        marks = ",".join("?" * len(chunk))
        db.conn.execute(f"UPDATE frontier SET listed_at = ?, delisted_at = NULL "
                        f"WHERE page_type = 'story' AND subject_id IN ({marks})", [at, *chunk])


def unlisted_stories(db: sqlite_utils.Database, kind: str, cycle_start: str) -> list[int]:
    """Stories of ``kind`` archived before a listing walk began that the walk never showed."""
    rows = db.execute(
        """SELECT subject_id FROM frontier WHERE kind = ? AND page_type = 'story' AND +urgency = 0
             AND (listed_at IS NULL OR listed_at < ?) AND added_at < ?""",
        [kind, cycle_start, cycle_start])
    return [r[0] for r in rows]


def mark_candidates(db: sqlite_utils.Database, story_ids: Sequence[int], due_at: str) -> int:
    """Stories gone from their listing, and their photo pages, become removal candidates (urgency 1).

    A candidate is only fetched sooner: its removal still needs its own 404/410 (twice, on two runs)."""
    marked = 0
    with db.atomic():
        for start in range(0, len(story_ids), 500):
            chunk = list(story_ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            photos = [r[0] for r in db.execute(
                f"SELECT DISTINCT media_id FROM story_images WHERE story_id IN ({marks})", chunk)]
            # One primary-key lookup per page: an OR of both page types in one UPDATE scanned the table
            # (0.5 s at 400,000 pages), once per listing check that found a story gone.
            for page_type, ids in (("story", chunk), ("photo", photos)):
                marked += sum(db.execute(
                    f"UPDATE frontier SET urgency = {URGENCY_CANDIDATE}, due_at = ? "
                    f"WHERE page_type = ? AND subject_id IN ({','.join('?' * len(part))}) AND +urgency = 0",
                    [due_at, page_type, *part]).rowcount for part in _chunks(ids, 500))
    return marked


def _chunks(values: Sequence[int], size: int) -> list[Sequence[int]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


# -- the listing order (``listing_key``, ``monitor.listings``) --------------------------------------------
# Every query below is one range of ``frontier_listing`` (kind, listing_key) over stories still listed.


def listing_keys(db: sqlite_utils.Database, story_ids: Sequence[int]) -> dict[int, float | None]:
    """Archived stories among ``story_ids`` and their place in their listing (None: not learned yet)."""
    found: dict[int, float | None] = {}
    for start in range(0, len(story_ids), 500):
        chunk = list(story_ids[start:start + 500])
        found.update(db.execute(f"SELECT subject_id, listing_key FROM frontier WHERE page_type = 'story' "
                                f"AND subject_id IN ({','.join('?' * len(chunk))})", chunk).fetchall())
    return found


def _key_range(kind: str, low: float | None, high: float | None) -> tuple[str, list[Any]]:
    ends = [(term, key) for term, key in (("listing_key > ?", low), ("listing_key < ?", high)) if key is not None]
    where = ["kind = ?", "delisted_at IS NULL", "listing_key IS NOT NULL", *(term for term, _ in ends)]
    return " AND ".join(where), [kind, *(key for _, key in ends)]


def listed_between(db: sqlite_utils.Database, kind: str, low: float | None, high: float | None) -> list[int]:
    """Stories of ``kind`` still taken as listed whose place lies strictly between two keys (None: no end)."""
    where, values = _key_range(kind, low, high)
    return [r[0] for r in db.execute(f"SELECT subject_id FROM frontier WHERE {where}", values)]


def count_listed_between(db: sqlite_utils.Database, kind: str, low: float | None, high: float | None) -> int:
    where, values = _key_range(kind, low, high)
    return db.execute(f"SELECT COUNT(*) FROM frontier WHERE {where}", values).fetchone()[0]


def neighbour_key(db: sqlite_utils.Database, kind: str, key: float, *, above: bool) -> float | None:
    """The nearest key of a listed story above (newer) or below (older) ``key``."""
    where, values = _key_range(kind, key if above else None, None if above else key)
    order = "ASC" if above else "DESC"
    row = db.execute(f"SELECT listing_key FROM frontier WHERE {where} ORDER BY listing_key {order} LIMIT 1",
                     values).fetchone()
    return row[0] if row else None


def set_listing_keys(db: sqlite_utils.Database, keys: dict[int, float]) -> None:
    db.conn.executemany("UPDATE frontier SET listing_key = ? WHERE page_type = 'story' AND subject_id = ?",
                        [(key, story) for story, key in keys.items()])


def delisted_among(db: sqlite_utils.Database, story_ids: Sequence[int]) -> list[int]:
    """Stories among ``story_ids`` that a listing check had found gone from their listing."""
    found: list[int] = []
    for part in _chunks(story_ids, 500):
        found += [r[0] for r in db.execute(
            f"SELECT subject_id FROM frontier WHERE page_type = 'story' AND subject_id IN ({','.join('?' * len(part))})"
            " AND delisted_at IS NOT NULL", list(part))]
    return found


def mark_delisted(db: sqlite_utils.Database, story_ids: Sequence[int], at: str) -> None:
    """A listing check found these stories gone from their listing (their place is kept for their return)."""
    db.conn.executemany("UPDATE frontier SET delisted_at = ? WHERE page_type = 'story' AND subject_id = ?",
                        [(at, story) for story in story_ids])


def stories_of_kind(db: sqlite_utils.Database, kind: str) -> int:
    return db.execute("SELECT COUNT(*) FROM frontier WHERE kind = ?", [kind]).fetchone()[0]


def forget_listing_order(db: sqlite_utils.Database, kind: str) -> None:
    """The site's order contradicted the learned one: learn it again from a walk of every page."""
    db.execute("UPDATE frontier SET listing_key = NULL WHERE kind = ?", [kind])


def unkeyed_listed_since(db: sqlite_utils.Database, kind: str, since: str) -> int:
    """Stories of ``kind`` a listing showed since ``since`` whose place was not learned."""
    return db.execute("SELECT COUNT(*) FROM frontier WHERE kind = ? AND listed_at >= ? AND listing_key IS NULL",
                      [kind, since]).fetchone()[0]


def state(db: sqlite_utils.Database, key: str) -> Any:
    row = db.execute("SELECT value FROM frontier_state WHERE key = ?", [key]).fetchone()
    return json.loads(row[0]) if row else None


def set_state(db: sqlite_utils.Database, key: str, value: Any) -> None:
    db.execute("INSERT OR REPLACE INTO frontier_state (key, value) VALUES (?, ?)", [key, json.dumps(value)])


def census(db: sqlite_utils.Database, old_rate: float, verified_before: str,
           on_story_verified_before: str | None = None) -> dict[str, Any]:
    """Page count, stories per kind, the pages revisited by rate and the sum of their sqrt(change rate), the
    changes a day each page type showed over its checks, and the pages not verified since
    ``verified_before`` (photo pages a live story shows: since ``on_story_verified_before``, when their
    period is another): one scan, done every few hours (``monitor.frontier.CENSUS_EVERY``)."""
    # One sequential scan of the table with every total as a conditional sum: through ``frontier_due``
    # (``WHERE urgency = 0``) SQLite looked each row up by rowid, 13 times slower at 400,000 pages (2.3 s
    # against 0.18 s), and a GROUP BY page_type sorts the whole table.
    sql = f"""SELECT TOTAL(urgency = 0),
                     TOTAL(CASE WHEN urgency = 0 AND band != {BAND_ON_STORY} THEN sqrt(COALESCE(change_rate, ?)) END),
                     TOTAL(urgency = 0 AND band != {BAND_ON_STORY}),
                     TOTAL(CASE WHEN page_type = 'story' THEN changes END),
                     TOTAL(CASE WHEN page_type = 'story' THEN observed_days END),
                     TOTAL(CASE WHEN page_type = 'photo' THEN changes END),
                     TOTAL(CASE WHEN page_type = 'photo' THEN observed_days END),
                     TOTAL(CASE WHEN band = {BAND_ON_STORY} AND (verified_at IS NULL OR verified_at < ?) THEN 1 END),
                     TOTAL(CASE WHEN band = {BAND_ON_STORY} AND (verified_at IS NULL OR verified_at < ?) THEN 1 END)
              FROM frontier"""
    values = [old_rate, verified_before, on_story_verified_before or verified_before]
    try:
        pages, root_sum, revisited, *history, on_story_regular, on_story = db.execute(sql, values).fetchone()
    except sqlite3.OperationalError:  # an SQLite built without its math functions
        db.conn.create_function("sqrt", 1, math.sqrt, deterministic=True)
        pages, root_sum, revisited, *history, on_story_regular, on_story = db.execute(sql, values).fetchone()
    # Only stories have a kind: counted from ``frontier_listed`` alone (with page_type = 'story' SQLite
    # looked up each of 100,000 rows).
    by_kind = dict(db.execute("SELECT kind, COUNT(*) FROM frontier WHERE kind IS NOT NULL GROUP BY kind"))
    observed = {page_type: changes / days for page_type, changes, days in
                (("story", *history[:2]), ("photo", *history[2:])) if days > 0}
    backlog = db.execute("SELECT COUNT(*) FROM frontier WHERE verified_at IS NULL OR verified_at < ?",
                         [verified_before]).fetchone()[0]
    return {"pages": int(pages), "root_rate_sum": root_sum, "revisited": int(revisited), "stories_by_kind": by_kind,
            "observed_rate": observed, "verify_backlog": backlog - int(on_story_regular) + int(on_story),
            "verify_backlog_on_story": int(on_story)}


def shown_on_stories(db: sqlite_utils.Database, media_ids: Sequence[int]) -> set[int]:
    """Photo pages among ``media_ids`` whose caption a story not removed shows (``story_images_media``)."""
    found: set[int] = set()
    for start in range(0, len(media_ids), 500):
        chunk = list(media_ids[start:start + 500])
        found.update(row[0] for row in db.execute(
            f"""SELECT si.media_id FROM story_images si JOIN stories s ON s.id = si.story_id
                WHERE si.media_id IN ({",".join("?" * len(chunk))}) AND s.status != 'removed'""", chunk))
    return found


def requests_since(db: sqlite_utils.Database, since: str) -> int:
    """Requests the crawler made since ``since`` (every fetch row is one request; ``fetches_time``)."""
    return db.execute("SELECT COUNT(*) FROM fetches WHERE fetched_at >= ?", [since]).fetchone()[0]


def verified_since(db: sqlite_utils.Database, since: str) -> int:
    """Pages the site answered for since ``since`` (``frontier_verified``)."""
    return db.execute("SELECT COUNT(*) FROM frontier WHERE verified_at >= ?", [since]).fetchone()[0]


def run_fetches(db: sqlite_utils.Database, run_id: int) -> list[tuple[Any, ...]]:
    """(page_type, subject_id, url, outcome, version, fetched_at, sha256, content_type) of a run, in order."""
    return db.execute(
        """SELECT page_type, subject_id, url, outcome, version, fetched_at, sha256, NULL FROM fetches
           WHERE run_id = ? AND page_type IN ('story', 'photo', 'listing') ORDER BY id""", [run_id]).fetchall()


def page_facts(db: sqlite_utils.Database, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], tuple[Any, ...]]:
    """(url, kind, published, status, current_version) of archived stories and photo pages."""
    facts: dict[tuple[str, int], tuple[Any, ...]] = {}
    stories = [i for t, i in keys if t == "story"]
    photos = [i for t, i in keys if t == "photo"]
    for page_type, ids, sql in (
        ("story", stories, "SELECT id, url, kind, published, status, current_version FROM stories WHERE id IN ({})"),
        ("photo", photos, "SELECT media_id, page_url, NULL, published, status, current_version FROM images "
                          "WHERE page_url IS NOT NULL AND media_id IN ({})"),
    ):
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for row in db.execute(sql.format(",".join("?" * len(chunk))), chunk):
                facts[(page_type, row[0])] = tuple(row[1:])
    return facts


def totals(db: sqlite_utils.Database, now: str) -> dict[str, Any]:
    """What ``defwatch stats`` shows of the frontier; index-only counts and two ends of an index."""
    count = db.execute("SELECT COUNT(*) FROM frontier").fetchone()[0]
    due = db.execute("SELECT COUNT(*) FROM frontier WHERE urgency = 0 AND band IN (0, 1, 2) AND due_at <= ?",
                     [now]).fetchone()[0]
    urgent = dict(db.execute("SELECT urgency, COUNT(*) FROM frontier WHERE urgency > 0 GROUP BY urgency"))
    never = db.execute("SELECT COUNT(*) FROM frontier WHERE verified_at IS NULL").fetchone()[0]
    unarchived = count_unarchived(db)
    oldest = db.execute("SELECT MIN(verified_at) FROM frontier WHERE verified_at IS NOT NULL").fetchone()[0]
    return {"pages": count, "due": due + sum(urgent.values()), "due_revisits": due,
            "awaiting_confirmation": urgent.get(URGENCY_CONFIRM, 0), "unarchived": unarchived,
            "listing_candidates": urgent.get(URGENCY_CANDIDATE, 0), "never_verified": never,
            "oldest_verified_at": oldest}
