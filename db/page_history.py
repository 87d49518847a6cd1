"""Questions about one story or photo page's past, as change detection asks them.

A page is named by its fetch's ``page_type`` (``story`` or ``photo``) and id; its state lives in
``stories`` or ``images`` and its versions in ``story_versions`` or ``image_versions``. The page's
past is read from its fetches in fetch order (``fetches.id``), never by time stamp: a wall clock set
back must not reorder what was seen. Imported captures older than the page's known state
(``fetches.historical = 1``) are history only: "before the run" and "since its last answer" never
count them. The one write here moves a page between ``live``, ``missing`` and ``removed``.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

SUBJECT_TABLES = {  # page type -> (state table, its key, versions table, the versions table's key)
    "story": ("stories", "id", "story_versions", "story_id"),
    "photo": ("images", "media_id", "image_versions", "media_id"),
}


# -- the page now ------------------------------------------------------------------------------------


def page_state(db: sqlite_utils.Database, page_type: str, subject_id: int) -> dict[str, Any] | None:
    """What does the archive hold for the page now (its ``stories`` or ``images`` row)? None: never archived."""
    table, key, _, _ = SUBJECT_TABLES[page_type]
    row = db.execute(f"SELECT * FROM {table} WHERE {key} = ?", [subject_id])
    columns = [c[0] for c in row.description]
    found = row.fetchone()
    return dict(zip(columns, found, strict=True)) if found else None


def set_page_status(db: sqlite_utils.Database, page_type: str, subject_id: int, status: str, at: str) -> None:
    """Move a page between live, missing and removed; ``missing_since``/``removed_at`` follow the status."""
    table, key, _, _ = SUBJECT_TABLES[page_type]
    if status == "live":
        sql = f"UPDATE {table} SET status = 'live', missing_since = NULL, removed_at = NULL WHERE {key} = ?"
        db.execute(sql, [subject_id])
    elif status == "missing":
        db.execute(f"UPDATE {table} SET status = 'missing', missing_since = ? WHERE {key} = ?", [at, subject_id])
    else:
        db.execute(f"UPDATE {table} SET status = 'removed', removed_at = ? WHERE {key} = ?", [at, subject_id])


def stories_showing_image(db: sqlite_utils.Database, media_id: int) -> list[int]:
    """Which stories show the image now? In story order."""
    rows = db.execute("SELECT story_id FROM story_images WHERE media_id = ? ORDER BY story_id", [media_id])
    return [row[0] for row in rows.fetchall()]


# -- its versions ------------------------------------------------------------------------------------


def version_record(db: sqlite_utils.Database, page_type: str, subject_id: int, version: int) -> dict[str, Any]:
    """What did this version of the page say (its stored record; empty if there is no such version)?"""
    _, _, versions, key = SUBJECT_TABLES[page_type]
    row = db.execute(f"SELECT record FROM {versions} WHERE {key} = ? AND version = ?", [subject_id, version]).fetchone()
    return json.loads(row[0]) if row else {}


def version_before_run(db: sqlite_utils.Database, page_type: str, subject_id: int, run_id: int) -> int | None:
    """Which version did the page show on its last good fetch (one that read a version) before the run?
    None: no run before this one read it."""
    row = db.execute(
        """SELECT version FROM fetches WHERE page_type = ? AND subject_id = ? AND run_id < ? AND version IS NOT NULL
           AND historical = 0 ORDER BY id DESC LIMIT 1""",
        [page_type, subject_id, run_id],
    ).fetchone()
    return row[0] if row else None


def versions_shown_before_run(
    db: sqlite_utils.Database, page_type: str, subject_id: int, run_id: int, count: int = 3
) -> list[int]:
    """Which versions did the page show last before the run? The last ``count`` in the order it showed
    them, oldest first, a version seen on several fetches in a row counted once (A, A, B, A -> A, B, A)."""
    rows = db.execute(
        """SELECT version FROM fetches WHERE page_type = ? AND subject_id = ? AND run_id < ? AND version IS NOT NULL
           AND historical = 0 ORDER BY id DESC LIMIT 50""",
        [page_type, subject_id, run_id],
    ).fetchall()
    history: list[int] = []
    for (version,) in rows:
        if not history or history[-1] != version:
            history.append(version)
        if len(history) == count:
            break
    return history[::-1]


# -- its absences ------------------------------------------------------------------------------------


def runs_absent_since_last_answer(
    db: sqlite_utils.Database, page_type: str, subject_id: int, run_id: int
) -> list[int]:
    """Which runs, up to ``run_id``, got a 404/410 for the page after its last good answer? Oldest first.

    Counted by fetch order, not by time: a wall clock set back after the first 404 must not make the
    later ones look older than the absence itself (the removal would then never be confirmed), and
    a run whose detection is caught up later counts only what had been seen by then.
    """
    rows = db.execute(
        """SELECT DISTINCT run_id FROM fetches
           WHERE page_type = :type AND subject_id = :id AND run_id <= :run AND outcome IN ('not_found', 'gone')
             AND historical = 0
             AND id > COALESCE((SELECT MAX(id) FROM fetches WHERE page_type = :type AND subject_id = :id
                                AND run_id <= :run AND outcome IN ('ok', 'not_modified') AND version IS NOT NULL
                                AND historical = 0), 0)
           ORDER BY run_id""",
        {"type": page_type, "id": subject_id, "run": run_id},
    ).fetchall()
    return [row[0] for row in rows]


def first_absence_in_run(db: sqlite_utils.Database, page_type: str, subject_id: int, run_id: int) -> str | None:
    """When did the run first get a 404/410 for the page (as fetched: the start of an absence)?"""
    row = db.execute(
        """SELECT MIN(fetched_at) FROM fetches WHERE page_type = ? AND subject_id = ? AND run_id = ?
           AND outcome IN ('not_found', 'gone')""",
        [page_type, subject_id, run_id],
    ).fetchone()
    return row[0] if row else None
