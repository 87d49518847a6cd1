"""Queries behind change detection and the events table."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from db.sql import where

SUBJECT_TABLES = {  # page type -> (state table, its key, versions table, the versions table's key)
    "story": ("stories", "id", "story_versions", "story_id"),
    "photo": ("images", "media_id", "image_versions", "media_id"),
}
GOOD_OUTCOMES = ("ok", "not_modified")
REMOVAL_OUTCOMES = ("not_found", "gone")


@dataclass
class SubjectFetch:
    """The decisive fetch of one page in one run (a good answer beats a failed retry)."""

    page_type: str
    subject_id: int
    outcome: str
    parse_status: str | None
    version: int | None
    url: str
    fetch_id: int
    fetched_at: str


def run_subject_fetches(db: sqlite_utils.Database, run_id: int, *, latest_wins: bool = False) -> list[SubjectFetch]:
    """Each page's decisive fetch in the run. In a crawl a good answer beats a failed retry; in an
    import (``latest_wins``), whose captures span months, the newest capture is the page's state.
    Imported captures older than what the archive already knew (``historical``) decide nothing."""
    order = "fetched_at, id" if latest_wins else "id"
    rows = db.execute(
        f"""SELECT page_type, subject_id, outcome, parse_status, version, url, id, fetched_at FROM fetches
            WHERE run_id = ? AND page_type IN ('story', 'photo') AND subject_id IS NOT NULL AND historical = 0
            ORDER BY {order}""",
        [run_id],
    ).fetchall()
    decisive: dict[tuple[str, int], SubjectFetch] = {}
    for row in rows:
        fetch = SubjectFetch(*row)
        key = (fetch.page_type, fetch.subject_id)
        earlier = decisive.get(key)
        if earlier is None or latest_wins or _rank(fetch) >= _rank(earlier):
            decisive[key] = fetch
    return list(decisive.values())


def _rank(fetch: SubjectFetch) -> int:
    if fetch.outcome in GOOD_OUTCOMES and fetch.version is not None:
        return 3
    if fetch.outcome in REMOVAL_OUTCOMES:
        return 2
    return 1


def run_fetch_counts(db: sqlite_utils.Database, run_id: int) -> dict[str, int]:
    """Outcome counts of a run's fetches, and of its story pages: 200s, 200s that parsed by the template,
    200s that only the generic extractor read, and 304s."""
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
    # story_parsed: parsed by the template; a page only the generic extractor could read (story_generic)
    # is archived, but counts against the parser's health.
    counts["story_ok"], counts["story_parsed"], counts["story_not_modified"], counts["story_generic"] = (
        n or 0 for n in story)
    return counts


def previous_version(db: sqlite_utils.Database, page_type: str, subject_id: int, run_id: int) -> int | None:
    """The version this page showed on its last good fetch before the run."""
    row = db.execute(
        """SELECT version FROM fetches WHERE page_type = ? AND subject_id = ? AND run_id < ? AND version IS NOT NULL
           AND historical = 0 ORDER BY id DESC LIMIT 1""",
        [page_type, subject_id, run_id],
    ).fetchone()
    return row[0] if row else None


def recent_versions(
    db: sqlite_utils.Database, page_type: str, subject_id: int, run_id: int, count: int = 3
) -> list[int]:
    """The page's last ``count`` distinct versions before the run, oldest first (repeats collapsed)."""
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


def version_record(db: sqlite_utils.Database, page_type: str, subject_id: int, version: int) -> dict[str, Any]:
    _, _, versions, key = SUBJECT_TABLES[page_type]
    row = db.execute(f"SELECT record FROM {versions} WHERE {key} = ? AND version = ?", [subject_id, version]).fetchone()
    return json.loads(row[0]) if row else {}


def subject_state(db: sqlite_utils.Database, page_type: str, subject_id: int) -> dict[str, Any] | None:
    table, key, _, _ = SUBJECT_TABLES[page_type]
    row = db.execute(f"SELECT * FROM {table} WHERE {key} = ?", [subject_id])
    columns = [c[0] for c in row.description]
    found = row.fetchone()
    return dict(zip(columns, found, strict=True)) if found else None


def set_status(db: sqlite_utils.Database, page_type: str, subject_id: int, status: str, now: str) -> None:
    """Move a page between live, missing and removed; the timestamps follow the status."""
    table, key, _, _ = SUBJECT_TABLES[page_type]
    if status == "live":
        sql = f"UPDATE {table} SET status = 'live', missing_since = NULL, removed_at = NULL WHERE {key} = ?"
        db.execute(sql, [subject_id])
    elif status == "missing":
        db.execute(f"UPDATE {table} SET status = 'missing', missing_since = ? WHERE {key} = ?", [now, subject_id])
    else:
        db.execute(f"UPDATE {table} SET status = 'removed', removed_at = ? WHERE {key} = ?", [now, subject_id])


def removal_runs(db: sqlite_utils.Database, page_type: str, subject_id: int, run_id: int) -> list[int]:
    """Runs up to ``run_id`` that got a 404/410 for the page since its last good answer, oldest first.

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


def first_absence_time(db: sqlite_utils.Database, page_type: str, subject_id: int, run_id: int) -> str | None:
    """When the run first got a 404/410 for the page (the start of an absence, for ``removal_delay_hours``)."""
    row = db.execute(
        """SELECT MIN(fetched_at) FROM fetches WHERE page_type = ? AND subject_id = ? AND run_id = ?
           AND outcome IN ('not_found', 'gone')""",
        [page_type, subject_id, run_id],
    ).fetchone()
    return row[0] if row else None


def runs_needing_detection(db: sqlite_utils.Database, before: int) -> list[int]:
    """Finished runs before ``before`` whose change detection never committed (the process died first)."""
    rows = db.execute(
        "SELECT id FROM runs WHERE detected_at IS NULL AND status != 'running' AND id < ? ORDER BY id", [before]
    ).fetchall()
    return [row[0] for row in rows]


def completed_run_before(db: sqlite_utils.Database, run_id: int) -> bool:
    """Whether a crawl before ``run_id`` finished (status ``ok``); an import is no crawl of the site."""
    sql = "SELECT 1 FROM runs WHERE id < ? AND status = 'ok' AND mode != 'import' LIMIT 1"
    return db.execute(sql, [run_id]).fetchone() is not None


def is_import_run(db: sqlite_utils.Database, run_id: int) -> bool:
    """A ``defwatch import`` run: its events are history, never news."""
    row = db.execute("SELECT mode FROM runs WHERE id = ?", [run_id]).fetchone()
    return bool(row) and row[0] == "import"


def subject_seen_at(db: sqlite_utils.Database, run_id: int, subject_type: str, subject_id: int | None) -> str | None:
    """When the run's newest capture of a story or image was taken (imported events are dated by it)."""
    page_type = {"story": "story", "image": "photo"}.get(subject_type)
    if page_type is None or subject_id is None:
        return None
    row = db.execute(
        "SELECT MAX(fetched_at) FROM fetches WHERE run_id = ? AND page_type = ? AND subject_id = ?",
        [run_id, page_type, subject_id],
    ).fetchone()
    return row[0] if row else None


def mark_detected(db: sqlite_utils.Database, run_id: int, at: str) -> None:
    db.execute("UPDATE runs SET detected_at = ? WHERE id = ?", [at, run_id])


def last_detected_at(db: sqlite_utils.Database) -> str | None:
    return db.execute("SELECT MAX(detected_at) FROM events").fetchone()[0]


def new_images(db: sqlite_utils.Database, run_id: int) -> list[dict[str, Any]]:
    """Every image first archived in the run, those arriving with a new story included, and the
    stories that show it (``story_ids``, in story order)."""
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


def image_story_ids(db: sqlite_utils.Database, media_id: int) -> list[int]:
    """The stories that show the image now."""
    rows = db.execute("SELECT story_id FROM story_images WHERE media_id = ? ORDER BY story_id", [media_id])
    return [row[0] for row in rows.fetchall()]


def related_changes(db: sqlite_utils.Database, run_id: int) -> list[dict[str, Any]]:
    """Related links added or removed in the run, on stories that existed before it."""
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


def insert_event(db: sqlite_utils.Database, event: dict[str, Any]) -> int | None:
    """Insert unless the run already has this event for this subject (detection is re-runnable)."""
    values = dict(event)
    for key in ("changed_fields", "diff", "details"):
        if values.get(key) is not None and not isinstance(values[key], str):
            values[key] = json.dumps(values[key], ensure_ascii=False)
    columns = ", ".join(values)
    marks = ", ".join("?" * len(values))
    cursor = db.execute(f"INSERT OR IGNORE INTO events ({columns}) VALUES ({marks})", list(values.values()))
    return int(cursor.lastrowid) if cursor.rowcount else None


def hold_run_events(db: sqlite_utils.Database, run_id: int) -> None:
    db.execute("UPDATE events SET held = 1 WHERE run_id = ? AND audience = 'subscriber'", [run_id])


def release_held_events(db: sqlite_utils.Database) -> int:
    return db.execute("UPDATE events SET held = 0 WHERE held = 1").rowcount


def list_events(
    db: sqlite_utils.Database, *, since: str | None = None, kind: str | None = None, run_id: int | None = None
) -> list[dict[str, Any]]:
    """Events newest last, for ``defwatch changes`` and the demo."""
    clause, params = where(("detected_at >= ?", since), ("kind = ?", kind), ("run_id = ?", run_id))
    rows = db.execute(f"SELECT * FROM events {clause} ORDER BY id", params)
    columns = [c[0] for c in rows.description]
    events = []
    for row in rows.fetchall():
        event = dict(zip(columns, row, strict=True))
        event["changed_fields"] = json.loads(event["changed_fields"]) if event["changed_fields"] else []
        event["diff"] = json.loads(event["diff"]) if event["diff"] else None
        event["details"] = json.loads(event["details"]) if event.get("details") else None
        events.append(event)
    return events


# -- run health, for operator events ---------------------------------------------------------------

HEALTH_FAMILIES = {  # problem -> the event that opens it and the one that closes it
    "blocked": ("crawl_blocked", "crawl_unblocked"),
    "failed": ("crawl_failed", "crawl_recovered"),
    "degraded": ("parser_degraded", "parser_recovered"),
}


def open_health_problems(db: sqlite_utils.Database, before: int) -> dict[str, dict[str, Any]]:
    """Each run-health problem whose latest event before run ``before`` opened it, with that event.

    A problem stays open until an event closes it, however many inconclusive runs (a crawl stopped
    after two pages) fall in between: the operator hears of the block once and of its end once.
    """
    problems = {}
    for problem, (opened, closed) in HEALTH_FAMILIES.items():
        row = db.execute(
            """SELECT kind, run_id, detected_at FROM events WHERE kind IN (?, ?) AND run_id < ?
               ORDER BY run_id DESC, id DESC LIMIT 1""",
            [opened, closed, before],
        ).fetchone()
        if row and row[0] == opened:
            first = db.execute(  # the run that opened it: an older archive may hold one event per run
                """SELECT MIN(run_id) FROM events WHERE kind = ? AND run_id <= ? AND run_id > COALESCE(
                     (SELECT MAX(run_id) FROM events WHERE kind = ? AND run_id < ?), 0)""",
                [opened, row[1], closed, row[1]],
            ).fetchone()[0]
            problems[problem] = {"run_id": first or row[1], "detected_at": row[2]}
    return problems


def run_statuses(db: sqlite_utils.Database, run_id: int, outcomes: tuple[str, ...]) -> dict[str, int]:
    """How the run's fetches with these outcomes ended: ``HTTP 403``, ``timeout`` ... -> count, most first."""
    marks = ", ".join("?" * len(outcomes))
    rows = db.execute(
        f"""SELECT CASE WHEN status IS NOT NULL AND status != 200 THEN 'HTTP ' || status
                        ELSE COALESCE(error, 'no answer') END AS what, COUNT(*) AS n
            FROM fetches WHERE run_id = ? AND outcome IN ({marks}) GROUP BY what ORDER BY n DESC, what""",
        [run_id, *outcomes],
    ).fetchall()
    return {what: n for what, n in rows}


def run_block_page(db: sqlite_utils.Database, run_id: int) -> tuple[int | None, str | None, bytes | None]:
    """The status, block reason and stored body of the run's first refused request."""
    row = db.execute(
        """SELECT f.status, f.error, r.content FROM fetches f LEFT JOIN raw_pages r ON r.sha256 = f.sha256
           WHERE f.run_id = ? AND f.outcome = 'blocked' ORDER BY f.id LIMIT 1""",
        [run_id],
    ).fetchone()
    if row is None:
        return None, None, None
    status, reason, content = row
    return status, reason, zlib.decompress(content) if content else None


def run_finished_at(db: sqlite_utils.Database, run_id: int) -> str | None:
    row = db.execute("SELECT COALESCE(ended_at, started_at) FROM runs WHERE id = ?", [run_id]).fetchone()
    return row[0] if row else None


def held_event_count(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT COUNT(*) FROM events WHERE held = 1").fetchone()[0]
