"""Read queries behind the analysts' commands (search, show, history, diff, images, export, stats).

Everything here only reads. Every value that comes from the user is a bound parameter; the only
text formatted into SQL is chosen from fixed tables of column and table names below. List columns
stored as JSON text (authors, tags, changed_fields, diff, stats) are decoded on the way out, so the
commands and their ``--json`` output never see the storage format.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

from db.sql import NOT_ARCHIVED
from db.sql import where as sql_where

if TYPE_CHECKING:
    import sqlite_utils

# Search hits carry these around each matched term; the CLI swaps them for its own markers (ANSI
# on a terminal, ``**`` elsewhere). Control characters cannot occur in the cleaned, scraped text.
HIT_START, HIT_END = "\x02", "\x03"
SNIPPET_TOKENS = 16
# bm25 weights in FTS column order (title, subtitle, body_text, captions): a word in a title says
# more about what a story is about than the same word deep in a transcript.
BM25_WEIGHTS = (10.0, 5.0, 1.0, 2.0)

JSON_COLUMNS = {
    "stories": ("authors", "tags"),
    "images": (),
    "events": ("changed_fields", "diff"),
}
EXPORT_ORDER = {"stories": "s.id", "images": "i.media_id", "events": "e.id"}

# Messages SQLite gives for a MATCH expression it cannot read; anything else is a real failure.
_FTS_ERRORS = ("fts5:", "unterminated string", "no such column", "unknown special query")


class SearchQueryError(ValueError):
    """The FTS5 query text does not parse; the message says why in SQLite's words."""


# -- search -----------------------------------------------------------------------------------------


def search_stories(
    db: sqlite_utils.Database,
    query: str,
    *,
    kind: str | None = None,
    since: str | None = None,
    limit: int = 20,
    all_versions: bool = False,
) -> list[dict[str, Any]]:
    """Stories matching an FTS5 query, best first (bm25: lower is better), with a highlighted snippet.

    Each hit names the story's status and the version it matched (its first and last seen, and
    whether it is the current one). With ``all_versions`` the versions a story has moved on from
    are searched too (``story_versions_fts``), so text edited out of a story is found: such a hit
    carries that version's title and snippet. A story can then appear once per matching version.

    ``since`` is an ISO date compared with ``published`` as text, which works for both the date and
    date-time forms the site prints.

    Cost: bm25 has to score every match (FTS5 has no top-k shortcut), 1-2 µs each, so the ranking
    pass reads nothing but the index: no ``stories`` row per match (a lookup each, as costly as the
    scoring), filters as sets of ids taken once from the ``kind`` and ``published`` indexes (only
    the stories they keep are scored), and neither snippets nor a count of all matches. Only the
    page of results shown then joins ``stories`` and gets its snippets. The past-versions index
    holds only edited-out versions, a small share of the archive, so its matches are joined directly.
    """
    params: dict[str, Any] = {"query": query, "limit": limit, "start": HIT_START, "end": HIT_END,
                              "kind": kind, "since": since}
    try:
        hits = _dicts(db.execute(_current_sql(kind, since), params))
        if all_versions:
            hits = sorted(hits + _dicts(db.execute(_PAST_SQL, params)),
                          key=lambda h: (h["rank"], h["id"], -h["version"]))[:limit]
    except sqlite3.OperationalError as exc:
        if _query_problem(str(exc), query):
            raise SearchQueryError(str(exc)) from exc
        raise
    for hit in hits:
        hit["current"] = bool(hit["current"])
    return hits


def _current_sql(kind: str | None, since: str | None) -> str:
    # ``+rowid`` keeps the filters out of FTS5's plan (offered as rowid constraints, they could become a
    # lookup per id): they stay a check on the scan against an id list built once from the index.
    restrict = ""
    if kind:
        restrict += " AND +stories_fts.rowid IN (SELECT id FROM stories WHERE kind = :kind)"
    if since:
        restrict += " AND +stories_fts.rowid IN (SELECT id FROM stories WHERE published >= :since)"
    # Then the page: one more pass over the matches (no scoring, cheaper than a query per id, which
    # would expand a prefix or walk a phrase's doclists again each time), snippets for the page only.
    # CROSS JOIN keeps that order: the FTS scan first, ``top`` and ``stories`` looked up per page row.
    return f"""
        WITH top AS (
            SELECT stories_fts.rowid AS id, bm25(stories_fts, {_WEIGHTS}) AS rank
            FROM stories_fts
            WHERE stories_fts MATCH :query{restrict}
            ORDER BY rank, stories_fts.rowid
            LIMIT :limit)
        SELECT s.id, s.kind, s.title, s.url, s.published,
               snippet(stories_fts, -1, :start, :end, '…', {SNIPPET_TOKENS}) AS snippet, top.rank,
               {_HIT_COLUMNS}, 1 AS current
        FROM stories_fts CROSS JOIN top CROSS JOIN stories s
             LEFT JOIN story_versions v ON v.story_id = s.id AND v.version = s.current_version
        WHERE stories_fts MATCH :query AND +stories_fts.rowid IN (SELECT id FROM top)
          AND top.id = +stories_fts.rowid AND s.id = top.id
        ORDER BY top.rank, top.id"""


_WEIGHTS = ", ".join(str(w) for w in BM25_WEIGHTS)
_HIT_COLUMNS = ("s.status, s.missing_since, s.removed_at, s.current_version, "
                "coalesce(v.version, s.current_version) AS version, v.first_seen, v.last_seen")
# Past versions: ranked with the story filters joined in (the index is small), the page then
# snippeted. A version that became current again (a story reverted) is found through stories_fts.
_PAST_SQL = f"""
    WITH top AS (
        SELECT f.rowid AS vid, bm25(story_versions_fts, {_WEIGHTS}) AS rank
        FROM story_versions_fts AS f CROSS JOIN story_versions v CROSS JOIN stories s
        WHERE story_versions_fts MATCH :query AND v.id = f.rowid AND s.id = v.story_id
          AND v.version IS NOT s.current_version
          AND (:kind IS NULL OR s.kind = :kind) AND (:since IS NULL OR s.published >= :since)
        ORDER BY rank, f.rowid
        LIMIT :limit)
    SELECT s.id, s.kind, v.title, s.url, s.published,
           snippet(story_versions_fts, -1, :start, :end, '…', {SNIPPET_TOKENS}) AS snippet, top.rank,
           {_HIT_COLUMNS}, 0 AS current
    FROM story_versions_fts CROSS JOIN top CROSS JOIN story_versions v CROSS JOIN stories s
    WHERE story_versions_fts MATCH :query AND +story_versions_fts.rowid IN (SELECT vid FROM top)
      AND top.vid = +story_versions_fts.rowid AND v.id = top.vid AND s.id = v.story_id
    ORDER BY top.rank, top.vid"""


def _query_problem(message: str, query: str) -> bool:
    """True when SQLite's error is about the MATCH text; "no such column" only when the query names
    the column (``byline:x``, ``Indo-Pacific``), not when the archive lacks one a query selects."""
    if message.startswith("no such column: "):
        return message.removeprefix("no such column: ").lower() in query.lower()
    return message.startswith(_FTS_ERRORS)


def has_table(db: sqlite_utils.Database, name: str) -> bool:
    """An archive opened read-only is not migrated: an older one may lack a later table."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [name]).fetchone() is not None


# -- stories ----------------------------------------------------------------------------------------


def story(db: sqlite_utils.Database, story_id: int) -> dict[str, Any] | None:
    """The story's current state as the ``stories`` row, list columns decoded."""
    rows = _dicts(db.execute("SELECT * FROM stories WHERE id = ?", [story_id]))
    return _decode(rows[0], JSON_COLUMNS["stories"]) if rows else None


def story_versions(db: sqlite_utils.Database, story_id: int) -> list[dict[str, Any]]:
    """Every stored version, oldest first, each with its parsed record decoded."""
    return _story_version_rows(db, "story_id = ?", [story_id])


def story_version(db: sqlite_utils.Database, story_id: int, version: int) -> dict[str, Any] | None:
    rows = _story_version_rows(db, "story_id = ? AND version = ?", [story_id, version])
    return rows[0] if rows else None


def story_version_at(db: sqlite_utils.Database, story_id: int, at: str) -> int | None:
    """The version that was current at ``at`` (an archive time): the one the last fetch before then
    showed. Fetches, not first-seen dates, because a story can go back to an older version."""
    row = db.execute(
        """SELECT version FROM fetches WHERE page_type = 'story' AND subject_id = ? AND version IS NOT NULL
             AND fetched_at <= ? ORDER BY id DESC LIMIT 1""", [story_id, at]).fetchone()
    if row is None:  # fetch rows pruned or never written (an import): the versions' own dates
        row = db.execute("""SELECT version FROM story_versions WHERE story_id = ? AND first_seen <= ?
                            ORDER BY first_seen DESC, version DESC LIMIT 1""", [story_id, at]).fetchone()
    return int(row[0]) if row else None


def _story_version_rows(db: sqlite_utils.Database, where: str, params: list[Any]) -> list[dict[str, Any]]:
    rows = _dicts(db.execute(
        f"""SELECT version, content_hash, title, record, parser_version, first_seen, last_seen,
                   first_run_id, last_run_id, fetch_id, raw_sha256
            FROM story_versions WHERE {where} ORDER BY version""",
        params,
    ))
    for row in rows:
        row["record"] = json.loads(row["record"])
    return rows


def story_images(db: sqlite_utils.Database, story_id: int) -> list[dict[str, Any]]:
    """The story's current images in page order, with their VIRIN fields."""
    return _dicts(db.execute(
        """SELECT si.position, i.media_id, i.title, i.caption, i.credit, i.alt, i.src, i.download_url,
                  i.page_url, i.size_bytes, i.virin, i.virin_shot_date, i.virin_branch_code, i.virin_branch,
                  i.virin_originator_id, i.virin_sequence, i.virin_suffix, i.status
           FROM story_images si JOIN images i ON i.media_id = si.media_id
           WHERE si.story_id = ? ORDER BY si.position""",
        [story_id],
    ))


def related_links(db: sqlite_utils.Database, story_id: int) -> list[dict[str, Any]]:
    """Every related link the story ever listed; ones it no longer lists carry ``removed_at``."""
    rows = _dicts(db.execute(
        """SELECT r.related_id, r.url, r.title, r.first_seen, r.last_seen, r.removed_at,
                  EXISTS (SELECT 1 FROM stories s WHERE s.id = r.related_id) AS archived
           FROM related_links r WHERE r.story_id = ?
           ORDER BY r.removed_at IS NOT NULL, r.first_seen, r.related_id""",
        [story_id],
    ))
    for row in rows:
        row["removed"] = row["removed_at"] is not None
        row["archived"] = bool(row["archived"])
    return rows


# -- images -----------------------------------------------------------------------------------------


def image(db: sqlite_utils.Database, media_id: int) -> dict[str, Any] | None:
    rows = _dicts(db.execute("SELECT * FROM images WHERE media_id = ?", [media_id]))
    return rows[0] if rows else None


def image_versions(db: sqlite_utils.Database, media_id: int) -> list[dict[str, Any]]:
    """Versions of the image's photo page, oldest first (none for an image only seen inline)."""
    rows = _dicts(db.execute(
        """SELECT version, content_hash, title, caption, credit, record, parser_version, first_seen, last_seen,
                  first_run_id, last_run_id, fetch_id
           FROM image_versions WHERE media_id = ? ORDER BY version""",
        [media_id],
    ))
    for row in rows:
        row["record"] = json.loads(row["record"])
    return rows


def image_stories(db: sqlite_utils.Database, media_id: int) -> list[dict[str, Any]]:
    """Stories that currently show the image."""
    return _dicts(db.execute(
        """SELECT s.id, s.kind, s.title, s.url, si.position FROM story_images si JOIN stories s ON s.id = si.story_id
           WHERE si.media_id = ? ORDER BY s.id""",
        [media_id],
    ))


def find_images(
    db: sqlite_utils.Database,
    *,
    virin_pattern: str | None = None,
    branch: str | None = None,
    shot_from: str | None = None,
    shot_to: str | None = None,
    credit: str | None = None,
    limit: int = 0,
) -> list[dict[str, Any]]:
    """Images by VIRIN metadata, newest shot first.

    The VIRIN pattern uses ``*`` and ``?`` wildcards and ignores case (VIRINs are printed in both);
    ``credit`` matches a part of the credit line. Each row lists the stories showing the image.
    """
    clause, params = sql_where(
        ("i.virin LIKE ? ESCAPE '\\'", wildcard_to_like(virin_pattern) if virin_pattern else None),
        ("UPPER(i.virin_branch_code) = UPPER(?)", branch),
        ("i.virin_shot_date >= ?", shot_from),
        ("i.virin_shot_date <= ?", shot_to),
        ("i.credit LIKE ? ESCAPE '\\'", f"%{_like_escape(credit)}%" if credit else None),
    )
    sql = f"""SELECT i.media_id, i.virin, i.virin_shot_date, i.virin_branch_code, i.virin_branch,
                     i.virin_originator_id, i.virin_sequence, i.virin_suffix, i.title, i.caption, i.credit,
                     i.size_bytes, i.page_url, i.download_url, i.source, i.status, i.first_seen,
                     (SELECT json_group_array(story_id) FROM
                        (SELECT story_id FROM story_images si WHERE si.media_id = i.media_id ORDER BY story_id))
                       AS story_ids
              FROM images i {clause}
              ORDER BY i.virin_shot_date IS NULL, i.virin_shot_date DESC, i.media_id"""
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    rows = _dicts(db.execute(sql, params))
    return [_decode(row, ("story_ids",)) for row in rows]


def wildcard_to_like(pattern: str) -> str:
    """``231111-F-*`` -> ``231111-F-%``: shell-style wildcards, with LIKE's own ``%`` and ``_`` literal."""
    return _like_escape(pattern).replace("*", "%").replace("?", "_")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- export -----------------------------------------------------------------------------------------

_EXPORT_SQL = {
    # A story or image is exported when it was archived, changed content or was removed since the
    # date: what an incremental export needs to bring a copy up to date.
    "stories": """SELECT s.* FROM stories s
                  LEFT JOIN story_versions v ON v.story_id = s.id AND v.version = s.current_version
                  WHERE :since IS NULL OR s.first_seen >= :since OR v.first_seen >= :since
                     OR s.removed_at >= :since""",
    "images": """SELECT i.* FROM images i
                 LEFT JOIN image_versions v ON v.media_id = i.media_id AND v.version = i.current_version
                 WHERE :since IS NULL OR i.first_seen >= :since OR v.first_seen >= :since
                    OR i.removed_at >= :since""",
    "events": "SELECT e.* FROM events e WHERE :since IS NULL OR e.detected_at >= :since",
}


def export_rows(db: sqlite_utils.Database, table: str, since: str | None = None) -> Iterator[dict[str, Any]]:
    """Rows of one table in key order, streamed (an archive can outgrow memory), JSON columns decoded."""
    cursor = db.execute(f"{_EXPORT_SQL[table]} ORDER BY {EXPORT_ORDER[table]}", {"since": since})
    columns = [c[0] for c in cursor.description]
    for row in cursor:
        yield _decode(dict(zip(columns, row, strict=True)), JSON_COLUMNS[table])


def export_columns(db: sqlite_utils.Database, table: str) -> list[str]:
    """Column names in table order, so a CSV of an empty selection still has its header."""
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


# -- stats ------------------------------------------------------------------------------------------


def archive_stats(db: sqlite_utils.Database, *, runs: int = 10) -> dict[str, Any]:
    """Counts over the whole archive, and the last runs newest first."""
    return {
        "stories": {
            "total": _scalar(db, "SELECT COUNT(*) FROM stories"),
            "by_kind": _counts(db, "SELECT kind, COUNT(*) FROM stories GROUP BY kind"),
            "by_status": _counts(db, "SELECT status, COUNT(*) FROM stories GROUP BY status"),
        },
        "versions": {
            "story": _scalar(db, "SELECT COUNT(*) FROM story_versions"),
            "image": _scalar(db, "SELECT COUNT(*) FROM image_versions"),
        },
        "images": {
            "total": _scalar(db, "SELECT COUNT(*) FROM images"),
            "by_source": _counts(db, "SELECT source, COUNT(*) FROM images GROUP BY source"),
            "by_status": _counts(db, "SELECT status, COUNT(*) FROM images GROUP BY status"),
        },
        "events": {
            "total": _scalar(db, "SELECT COUNT(*) FROM events"),
            "by_kind": _counts(db, "SELECT kind, COUNT(*) FROM events GROUP BY kind"),
            "by_week": _events_by_week(db),
        },
        "runs": last_runs(db, runs),
        "known_pages": known_not_archived(db),
    }


def known_not_archived(db: sqlite_utils.Database) -> dict[str, Any]:
    """Pages the archive has heard of and not archived yet (still due), and the oldest of them.

    A count that stays up, or an oldest page that keeps its age, says the monitor cannot reach part of
    the site (a block, a failing page); ``confirmed_gone`` are the ones a 404/410 on two runs retired."""
    due = f"FROM known_pages k WHERE {NOT_ARCHIVED} AND k.gone_at IS NULL"
    oldest = _dicts(db.execute(
        f"""SELECT page_type, id, url, heard_from, first_heard, attempts, last_attempt, last_outcome {due}
            ORDER BY first_heard, page_type DESC, id LIMIT 1"""))
    return {
        "not_archived": _scalar(db, f"SELECT COUNT(*) {due}"),
        "by_type": _counts(db, f"SELECT page_type, COUNT(*) {due} GROUP BY page_type"),
        "confirmed_gone": _scalar(db, f"SELECT COUNT(*) FROM known_pages k WHERE {NOT_ARCHIVED}"
                                      " AND k.gone_at IS NOT NULL"),
        "oldest": oldest[0] if oldest else None,
    }


def last_runs(db: sqlite_utils.Database, limit: int) -> list[dict[str, Any]]:
    rows = _dicts(db.execute(
        """SELECT id, mode, site, status, started_at, ended_at,
                  ROUND((julianday(ended_at) - julianday(started_at)) * 86400, 1) AS duration_s, stats
           FROM runs ORDER BY id DESC LIMIT ?""",
        [limit],
    ))
    return [_decode(row, ("stats",)) for row in rows]


def _events_by_week(db: sqlite_utils.Database) -> dict[str, int]:
    """Events per ISO week (``2026-W03``); SQLite's ``%W`` is not the ISO week, so Python counts."""
    weeks: Counter[str] = Counter()
    for day, count in db.execute("SELECT substr(detected_at, 1, 10), COUNT(*) FROM events GROUP BY 1"):
        year, week, _ = date.fromisoformat(day).isocalendar()
        weeks[f"{year}-W{week:02d}"] += count
    return dict(sorted(weeks.items()))


# -- helpers ----------------------------------------------------------------------------------------


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _decode(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    for name in columns:
        if isinstance(row.get(name), str):
            row[name] = json.loads(row[name])
    return row


def _scalar(db: sqlite_utils.Database, sql: str) -> int:
    return int(db.execute(sql).fetchone()[0])


def _counts(db: sqlite_utils.Database, sql: str) -> dict[str, int]:
    return {str(key): int(count) for key, count in db.execute(sql)}
