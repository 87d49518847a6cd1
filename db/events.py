"""The events table: store change events, list them, hold and release them.

This is the table's API for everything that writes or reads events (change detection, the CLI's
``changes``, the demo, the benchmarks, the tests), plus the two questions detection asks of the
events already recorded: when the newest was detected, and whether a run-health problem is open.
The questions detection asks of the archive itself live by subject: ``db/runs.py`` (what a run
fetched, found and how it ended) and ``db/page_history.py`` (one page's state, versions and absences).
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from db.sql import where


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
    """Hold the run's subscriber events: a degraded parser's events wait until it recovers."""
    db.execute("UPDATE events SET held = 1 WHERE run_id = ? AND audience = 'subscriber'", [run_id])


def release_held_events(db: sqlite_utils.Database) -> int:
    """Release every held event (the parser is healthy again); how many were held."""
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


def held_event_count(db: sqlite_utils.Database) -> int:
    """How many subscriber events are held (until the parser recovers)?"""
    return db.execute("SELECT COUNT(*) FROM events WHERE held = 1").fetchone()[0]


def latest_detection_time(db: sqlite_utils.Database) -> str | None:
    """When was the newest event detected? None: no event yet."""
    return db.execute("SELECT MAX(detected_at) FROM events").fetchone()[0]


def problem_open_since(db: sqlite_utils.Database, opened_by: str, closed_by: str, *, before: int
                       ) -> dict[str, Any] | None:
    """Is a run-health problem open before run ``before``: was the latest of its two event kinds the
    one that opens it? If so, the run that opened it (``run_id``) and when that event was detected;
    None if the problem is closed or never happened.

    The opening run is the first with the opening kind since the last closing event: an older
    archive may hold one opening event per run of a long problem.
    """
    row = db.execute(
        """SELECT kind, run_id, detected_at FROM events WHERE kind IN (?, ?) AND run_id < ?
           ORDER BY run_id DESC, id DESC LIMIT 1""",
        [opened_by, closed_by, before],
    ).fetchone()
    if not row or row[0] != opened_by:
        return None
    first = db.execute(
        """SELECT MIN(run_id) FROM events WHERE kind = ? AND run_id <= ? AND run_id > COALESCE(
             (SELECT MAX(run_id) FROM events WHERE kind = ? AND run_id < ?), 0)""",
        [opened_by, row[1], closed_by, row[1]],
    ).fetchone()[0]
    return {"run_id": first or row[1], "detected_at": row[2]}
