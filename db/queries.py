"""Read queries over the archive, shared by the crawler (what to fetch) and the monitor (what changed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from core.clock import stamp
from core.urls import index_key
from db.rows import read_raw
from db.sql import NOT_ARCHIVED


@dataclass(frozen=True)
class KnownPage:
    page_type: str  # story | photo
    id: int
    url: str
    kind: str | None = None


def known_ids(db: sqlite_utils.Database, page_type: str) -> set[int]:
    """Ids of archived stories (page_type story) or images (photo)."""
    if page_type == "story":
        return {row[0] for row in db.execute("SELECT id FROM stories")}
    return {row[0] for row in db.execute("SELECT media_id FROM images WHERE source = 'photo_page'")}


def all_known_pages(db: sqlite_utils.Database) -> list[KnownPage]:
    """Every archived story and photo page: the sweep visits them all, removed ones included."""
    rows = db.execute("SELECT id, url, kind FROM stories ORDER BY id")
    stories = [KnownPage("story", r[0], r[1], r[2]) for r in rows]
    photos = [
        KnownPage("photo", r[0], r[1])
        for r in db.execute("SELECT media_id, page_url FROM images WHERE page_url IS NOT NULL ORDER BY media_id")
    ]
    return stories + photos


def pages_heard_of(db: sqlite_utils.Database, *, include_gone: bool = False) -> list[KnownPage]:
    """Story and photo pages the archive has heard of and not archived yet, oldest first.

    Confirmed-gone ones (a 404/410 on two runs) are left out unless ``include_gone``: the sweep looks
    at those again, as it looks at removed stories. ``url`` may be empty for a photo page named only
    by its media id (the spider builds its URL)."""
    sql = f"SELECT page_type, id, url FROM known_pages k WHERE {NOT_ARCHIVED}"
    if not include_gone:
        sql += " AND gone_at IS NULL"
    rows = db.execute(sql + " ORDER BY first_heard, page_type DESC, id")
    return [KnownPage(page_type, page_id, url or "") for page_type, page_id, url in rows]




def due_for_revisit(
    db: sqlite_utils.Database,
    *,
    now: datetime,
    fresh_days: float,
    fresh_interval_hours: float,
    recent_days: float,
    recent_interval_hours: float,
    old_interval_hours: float,
    limit: int | None = None,
) -> list[KnownPage]:
    """Stories whose age says they are due: fresh ones often, old ones rarely.

    Stories awaiting removal confirmation (``missing``) are always due, so a 404 is confirmed or
    cleared on the next run. Confirmed removals are left to the sweep. Most overdue first.

    A story last fetched "after" ``now`` is due too: the clock was set back, and trusting the stamp
    would stall its revisits for as long as the jump (a day back, no revisit for a day).
    """
    fresh_since = stamp(now - timedelta(days=fresh_days))
    recent_since = stamp(now - timedelta(days=recent_days))
    sql = """
        SELECT id, url, kind FROM stories
        WHERE status = 'missing'
           OR (status = 'live' AND (last_fetched IS NULL OR last_fetched > :now OR last_fetched <= CASE
                 WHEN COALESCE(published, first_seen) >= :fresh_since THEN :fresh_cut
                 WHEN COALESCE(published, first_seen) >= :recent_since THEN :recent_cut
                 ELSE :old_cut END))
        ORDER BY status = 'missing' DESC, last_fetched ASC
    """
    params: dict[str, Any] = {
        "now": stamp(now),
        "fresh_since": fresh_since[:10],
        "recent_since": recent_since[:10],
        "fresh_cut": stamp(now - timedelta(hours=fresh_interval_hours)),
        "recent_cut": stamp(now - timedelta(hours=recent_interval_hours)),
        "old_cut": stamp(now - timedelta(hours=old_interval_hours)),
    }
    if limit:
        sql += " LIMIT :limit"
        params["limit"] = limit
    return [KnownPage("story", r[0], r[1], r[2]) for r in db.execute(sql, params)]


def story_media_ids(db: sqlite_utils.Database, story_ids: list[int]) -> list[KnownPage]:
    """Photo pages of the given stories' images (revisits check their photos too)."""
    if not story_ids:
        return []
    marks = ",".join("?" * len(story_ids))
    rows = db.execute(
        f"""SELECT DISTINCT i.media_id, i.page_url FROM story_images si JOIN images i ON i.media_id = si.media_id
            WHERE si.story_id IN ({marks}) AND i.page_url IS NOT NULL""",
        story_ids,
    )
    return [KnownPage("photo", r[0], r[1]) for r in rows]


def is_baseline(db: sqlite_utils.Database, run_id: int) -> bool:
    """True for the first run that archived anything: it records the site, it does not announce it.

    Imported history (``defwatch import``, runs of mode ``import``) holds the few pages some archive
    captured, not the site: a first crawl after it is still the baseline, or it would announce every
    story the import lacked as new."""
    row = db.execute(
        """SELECT 1 FROM runs r WHERE r.id < ? AND r.mode != 'import'
           AND EXISTS (SELECT 1 FROM fetches f WHERE f.run_id = r.id AND f.page_type = 'story'
                       AND f.version IS NOT NULL) LIMIT 1""",
        [run_id],
    ).fetchone()
    return row is None


def stored_run_stats(db: sqlite_utils.Database, run_id: int) -> dict[str, int]:
    """A run's counters as the archive holds them, keyed like the crawl's stats (``defwatch/...``).

    For a run whose writer failed (a full disk): the crawl counted answers whose batch was then
    rolled back, so only the archive can say what the run really stored."""
    stats = {"defwatch/fetches": 0}
    for outcome, count in db.execute("SELECT outcome, COUNT(*) FROM fetches WHERE run_id = ? GROUP BY outcome",
                                     [run_id]):
        stats[f"defwatch/outcome/{outcome}"] = count
        stats["defwatch/fetches"] += count
    for page_type, table in (("story", "story_versions"), ("photo", "image_versions")):
        count = db.execute(f"SELECT COUNT(*) FROM {table} WHERE first_run_id = ?", [run_id]).fetchone()[0]
        if count:
            stats[f"defwatch/new_versions/{page_type}"] = count
    return stats


def index_next_pages(db: sqlite_utils.Database) -> dict[str, str]:
    """Listing page key -> its next page's key, as last parsed: a 304 listing is still followed."""
    rows = db.execute("SELECT key, next_page FROM index_pages WHERE next_page IS NOT NULL")
    return {key: next_page for key, next_page in rows}


def index_body(db: sqlite_utils.Database, url: str) -> bytes | None:
    """The last parsed copy of a feed or listing page: what a 304 for it still lists."""
    row = db.execute("SELECT raw_sha256 FROM index_pages WHERE key = ?", [index_key(url)]).fetchone()
    return read_raw(db, row[0]) if row else None


def story_links(db: sqlite_utils.Database, story_id: int) -> tuple[list[tuple[str, int]], list[tuple[str | None, int]]]:
    """What the stored copy of a story links to: its current related stories and inline photos.

    A 304 story is not parsed again; this is what its last parse stored (``related_links`` still
    listed, ``story_images``), so the pages it leads to are followed as if it had been."""
    related = [(url, related_id) for related_id, url in db.execute(
        "SELECT related_id, url FROM related_links WHERE story_id = ? AND removed_at IS NULL AND url IS NOT NULL"
        " ORDER BY first_seen, related_id", [story_id])]
    photos = [(page_url, media_id) for media_id, page_url in db.execute(
        """SELECT si.media_id, i.page_url FROM story_images si JOIN images i ON i.media_id = si.media_id
           WHERE si.story_id = ? ORDER BY si.position""", [story_id])]
    return related, photos


def validators(db: sqlite_utils.Database) -> dict[tuple[str, Any], tuple[str | None, str | None]]:
    """Stored ETag/Last-Modified of every archived page, feed and listing, for conditional GET.

    Keys are ``(page_type, id)`` for stories and photos and ``("index", path?query)`` for feeds
    and listings.
    """
    found: dict[tuple[str, Any], tuple[str | None, str | None]] = {}
    for key_, etag, last_modified in db.execute(
        "SELECT key, etag, last_modified FROM index_pages WHERE etag IS NOT NULL OR last_modified IS NOT NULL"
    ):
        found[("index", key_)] = (etag, last_modified)
    for page_type, table, key in (("story", "stories", "id"), ("photo", "images", "media_id")):
        rows = db.execute(
            f"SELECT {key}, etag, last_modified FROM {table} WHERE etag IS NOT NULL OR last_modified IS NOT NULL"
        )
        for subject_id, etag, last_modified in rows:
            found[(page_type, subject_id)] = (etag, last_modified)
    return found
