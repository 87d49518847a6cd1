"""Questions about one run, as change detection and run health ask them.

Each function answers one question about what a run fetched, found or how it ended, in the words
``monitor/changes.py`` and ``monitor/health.py`` decide with; the decisions themselves (which fetch
of a page decides, whether a run is healthy) stay there. One write belongs here too: the run's
record that its detection committed (``mark_run_detected``). Pages of types other than story and
photo (feeds, listings) are never the subject of a change, so the per-page questions leave them out.

Imported history: a fetch of an import run (``runs.mode = 'import'``) is a capture, dated by when it
was captured. A capture older than what the archive already knew of its page is stored with
``fetches.historical = 1``: it adds history and decides nothing, so the questions about a run's
pages leave it out.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

import sqlite_utils


@dataclass
class SubjectFetch:
    """One fetch of a story or photo page in a run."""

    page_type: str
    subject_id: int
    outcome: str
    parse_status: str | None
    version: int | None
    url: str
    fetch_id: int
    fetched_at: str


# -- what kind of run it was, and where detection stands ---------------------------------------------


def was_import_run(db: sqlite_utils.Database, run_id: int) -> bool:
    """Was the run a ``defwatch import`` (its captures are history, never news)?"""
    row = db.execute("SELECT mode FROM runs WHERE id = ?", [run_id]).fetchone()
    return bool(row) and row[0] == "import"


def crawl_finished_before(db: sqlite_utils.Database, run_id: int) -> bool:
    """Did a crawl before ``run_id`` finish (status ``ok``)? An import is no crawl of the site."""
    sql = "SELECT 1 FROM runs WHERE id < ? AND status = 'ok' AND mode != 'import' LIMIT 1"
    return db.execute(sql, [run_id]).fetchone() is not None


def runs_awaiting_detection(db: sqlite_utils.Database, before: int) -> list[int]:
    """Which finished runs before ``before`` never committed their change detection (the process
    died first)? Oldest first; runs still ``running`` are not counted: their process may be alive."""
    rows = db.execute(
        "SELECT id FROM runs WHERE detected_at IS NULL AND status != 'running' AND id < ? ORDER BY id", [before]
    ).fetchall()
    return [row[0] for row in rows]


def mark_run_detected(db: sqlite_utils.Database, run_id: int, at: str) -> None:
    """Record that the run's change detection committed (call inside detection's transaction)."""
    db.execute("UPDATE runs SET detected_at = ? WHERE id = ?", [at, run_id])


def run_end_time(db: sqlite_utils.Database, run_id: int) -> str | None:
    """When did the run end (when it started, if it never recorded an end)?"""
    row = db.execute("SELECT COALESCE(ended_at, started_at) FROM runs WHERE id = ?", [run_id]).fetchone()
    return row[0] if row else None


# -- what the run fetched ------------------------------------------------------------------------------


def page_fetches_in_run(
    db: sqlite_utils.Database, run_id: int, *, capture_order: bool = False
) -> list[SubjectFetch]:
    """Which story and photo pages did the run fetch, and how did each fetch end? Every fetch, in the
    order the run made them, or with ``capture_order`` (an import's captures span months) oldest
    capture first. Imported captures older than the page's known state (``historical``) are left out."""
    order = "fetched_at, id" if capture_order else "id"
    rows = db.execute(
        f"""SELECT page_type, subject_id, outcome, parse_status, version, url, id, fetched_at FROM fetches
            WHERE run_id = ? AND page_type IN ('story', 'photo') AND subject_id IS NOT NULL AND historical = 0
            ORDER BY {order}""",
        [run_id],
    ).fetchall()
    return [SubjectFetch(*row) for row in rows]


def capture_time_in_run(
    db: sqlite_utils.Database, run_id: int, subject_type: str, subject_id: int | None
) -> str | None:
    """When was the run's newest capture of this story or image taken (an import dates its events so)?
    ``subject_type`` is an event's (``story``, ``image``); anything else has no capture."""
    page_type = {"story": "story", "image": "photo"}.get(subject_type)
    if page_type is None or subject_id is None:
        return None
    row = db.execute(
        "SELECT MAX(fetched_at) FROM fetches WHERE run_id = ? AND page_type = ? AND subject_id = ?",
        [run_id, page_type, subject_id],
    ).fetchone()
    return row[0] if row else None


def fetch_counts(db: sqlite_utils.Database, run_id: int) -> dict[str, int]:
    """How did the run's fetches end? Counts by outcome and ``total``, and of its story pages:
    ``story_ok`` (200s), ``story_parsed`` (200s the page's template read), ``story_generic`` (200s only
    the generic extractor read: archived, but they count against the parser's health) and
    ``story_not_modified`` (304s)."""
    counts = {
        row[0]: row[1]
        for row in db.execute("SELECT outcome, COUNT(*) FROM fetches WHERE run_id = ? GROUP BY outcome", [run_id])
    }
    story = db.execute(
        """SELECT SUM(outcome = 'ok'), SUM(outcome = 'ok' AND parse_status = 'parsed'), SUM(outcome = 'not_modified'),
                  SUM(outcome = 'ok' AND parse_status = 'generic')
           FROM fetches WHERE run_id = ? AND page_type = 'story'""",
        [run_id],
    ).fetchone()
    counts["total"] = sum(counts.values())
    counts["story_ok"], counts["story_parsed"], counts["story_not_modified"], counts["story_generic"] = (
        n or 0 for n in story)
    return counts


def fetch_statuses(db: sqlite_utils.Database, run_id: int, outcomes: tuple[str, ...]) -> dict[str, int]:
    """How did the run's fetches with these outcomes end? ``HTTP 403``, ``timeout`` ... -> count, most first."""
    marks = ", ".join("?" * len(outcomes))
    rows = db.execute(
        f"""SELECT CASE WHEN status IS NOT NULL AND status != 200 THEN 'HTTP ' || status
                        ELSE COALESCE(error, 'no answer') END AS what, COUNT(*) AS n
            FROM fetches WHERE run_id = ? AND outcome IN ({marks}) GROUP BY what ORDER BY n DESC, what""",
        [run_id, *outcomes],
    ).fetchall()
    return {what: n for what, n in rows}


def first_refusal(db: sqlite_utils.Database, run_id: int) -> tuple[int | None, str | None, bytes | None]:
    """What did the run's first refused request get? Its status, block reason and stored body."""
    row = db.execute(
        """SELECT f.status, f.error, r.content FROM fetches f LEFT JOIN raw_pages r ON r.sha256 = f.sha256
           WHERE f.run_id = ? AND f.outcome = 'blocked' ORDER BY f.id LIMIT 1""",
        [run_id],
    ).fetchone()
    if row is None:
        return None, None, None
    status, reason, content = row
    return status, reason, zlib.decompress(content) if content else None


# -- what the run archived for the first time, or changed ------------------------------------------------


def images_first_archived_in_run(db: sqlite_utils.Database, run_id: int) -> list[dict[str, Any]]:
    """Which images did the run archive for the first time (those arriving with a new story too), and
    which stories show each (``story_ids``, in story order)?"""
    rows = db.execute(
        """SELECT i.media_id, i.page_url, i.title, i.caption, i.credit, i.virin, i.source,
                  (SELECT json_group_array(story_id) FROM (SELECT story_id FROM story_images si
                   WHERE si.media_id = i.media_id ORDER BY story_id)) AS story_ids
           FROM images i WHERE i.first_run_id = :run ORDER BY i.media_id""",
        {"run": run_id},
    )
    columns = [c[0] for c in rows.description]
    found = [dict(zip(columns, r, strict=True)) for r in rows.fetchall()]
    for image in found:
        image["story_ids"] = json.loads(image["story_ids"] or "[]")
    return found


def related_links_changed_in_run(db: sqlite_utils.Database, run_id: int) -> list[dict[str, Any]]:
    """Which related links did the run add or remove (``change``), on stories that existed before it?
    Each with its story's title and URL, by story then related id."""
    rows = db.execute(
        """SELECT r.story_id, r.related_id, r.url, r.title,
                  CASE WHEN r.removed_run_id = :run THEN 'removed' ELSE 'added' END AS change,
                  s.title AS story_title, s.url AS story_url
           FROM related_links r JOIN stories s ON s.id = r.story_id
           WHERE (r.first_run_id = :run OR r.removed_run_id = :run) AND s.first_run_id != :run
           ORDER BY r.story_id, r.related_id""",
        {"run": run_id},
    )
    columns = [c[0] for c in rows.description]
    return [dict(zip(columns, r, strict=True)) for r in rows.fetchall()]
