"""Digests per subscriber (``[[subscribers]]``): their event kinds, sections, keywords and cadence.

``[alerts] recipients`` / ``DEFWATCH_ALERT_TO`` keep the run digest with everything (``monitor.compose``,
stamped on ``events.alerted_at``). A subscriber instead has its own ledger, ``subscriber_events``:
each event reaches a subscriber at most once, in the digest that carried it, or is recorded as left
out by its filter. So a daily subscriber's digest gathers exactly what came since its last one,
held events released late included, and a restart or a second flush never sends anything twice.

A subscriber gets the events detected after it first appeared in the configuration
(``subscribers.since_event_id``), not the archive's whole history. An ``each_run`` digest goes as
soon as a run has matching changes; ``hourly`` and ``daily`` ones once an hour or a day has passed
since the last (or since the subscription), whenever the daemon's flush job next runs.

With ``at`` (e.g. ``"07:00"`` in ``timezone``) a daily digest instead goes with the first run at or
after 07:00 on the reader's clock whose last digest was before it: runs every few minutes would
otherwise push it later each day. That first run uses up the day's time even when it has nothing to
send (``last_digest_at`` is stamped then), so a change found at 10:00 waits for the next 07:00
digest instead of going alone at 10:00. Events are gathered by the ledger, never by time, so a
daemon down for days sends one digest with everything it missed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlite_utils

from core.clock import as_utc, parse_stamp
from core.clock import stamp as clock_stamp
from core.config import digest_time
from db import outbox
from monitor import digest

if TYPE_CHECKING:
    from core.config import AlertConfig, SubscriberConfig

PERIODS = {"each_run": timedelta(0), "hourly": timedelta(hours=1), "daily": timedelta(days=1)}
CADENCE_WORDS = {"each_run": "after each crawl that finds changes", "hourly": "at most once an hour",
                 "daily": "once a day"}


def queue_subscriber_digests(
    db: sqlite_utils.Database, alerts: AlertConfig, subscribers: Sequence[SubscriberConfig],
    now: datetime | None = None, *, current_run: int | None = None,
) -> list[int]:
    """Queue each subscriber's digest if it is due and has matching events; return the outbox ids.

    ``current_run`` is the run calling (still ``running``): its events count as finished.
    """
    from monitor.compose import _digest_mail

    moment = as_utc(now)
    stamp = clock_stamp(moment)
    ids = []
    with outbox.write_transaction(db):
        register(db, subscribers, stamp)
        for sub in subscribers:
            row = db.execute("SELECT since_event_id, added_at, last_digest_at FROM subscribers WHERE address = ?",
                             [sub.address]).fetchone()
            pending = _pending(db, sub.address, row[0], current_run)
            chosen = wanted(db, sub, pending)
            left_out = [e["id"] for e in pending if e["id"] not in {c["id"] for c in chosen}]
            _record(db, sub.address, left_out, None, stamp)
            if not due(sub, row[2] or row[1], moment):
                continue
            if chosen:
                mail = _digest_mail(chosen, alerts, recipients=[sub.address], note=describe(sub))
                mail_id = outbox.insert_mail(db, created_at=stamp, **mail)
                _record(db, sub.address, [e["id"] for e in chosen], mail_id, stamp)
                ids.append(mail_id)
            if chosen or sub.at:  # a time of day is used up by its first run, even with nothing to send
                db.execute("UPDATE subscribers SET last_digest_at = ? WHERE address = ?", [stamp, sub.address])
    return ids


def register(db: sqlite_utils.Database, subscribers: Iterable[SubscriberConfig], stamp: str) -> None:
    """Remember when each subscriber first appeared: it is owed the events from then on."""
    for sub in subscribers:
        db.execute(
            """INSERT OR IGNORE INTO subscribers (address, since_event_id, added_at)
               VALUES (?, (SELECT COALESCE(MAX(id), 0) FROM events), ?)""",
            [sub.address, stamp],
        )


def due(sub: SubscriberConfig, last: str, moment: datetime) -> bool:
    """Whether a digest last queued at ``last`` is followed by another at ``moment``."""
    if sub.at:
        return parse_stamp(last) < latest_digest_time(sub, moment)
    return moment - parse_stamp(last) >= PERIODS[sub.cadence]


def latest_digest_time(sub: SubscriberConfig, moment: datetime) -> datetime:
    """The last time at or before ``moment`` that ``sub``'s ``at`` names on its clock, in UTC.

    A daily time skipped by a daylight saving change (02:30 on the day clocks go from 02:00 to 03:00)
    falls an hour later that day; one that happens twice (01:30 when they go back) counts once, the
    first time."""
    zone = ZoneInfo(sub.timezone)
    at = digest_time(sub.cadence, sub.at)
    local = moment.astimezone(zone)
    if sub.cadence == "hourly":
        slot = local.replace(minute=at.minute, second=0, microsecond=0).astimezone(UTC)
        return slot if slot <= moment else slot - timedelta(hours=1)
    slot = datetime.combine(local.date(), at, tzinfo=zone).astimezone(UTC)
    if slot > moment:
        slot = datetime.combine(local.date() - timedelta(days=1), at, tzinfo=zone).astimezone(UTC)
    return slot


def wanted(db: sqlite_utils.Database, sub: SubscriberConfig, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events ``sub`` asked for; photos ride along beneath a story it gets."""
    chosen = [e for e in events if _matches(db, sub, e)]
    stories = {e["subject_id"] for e in chosen if e["subject_type"] == "story"}
    riders = [e for e in events if e not in chosen and e["kind"].startswith("image_")
              and stories & set(digest.parse(e)["details"].get("story_ids") or [])]
    return sorted(chosen + riders, key=lambda e: e["id"])


def describe(sub: SubscriberConfig) -> str:
    """What the subscriber asked for, in the words of its mail."""
    kinds = ", ".join(k.replace("_", " ") for k in sub.events) or "every kind of change"
    sections = ", ".join(sub.sections) or "all sections"
    words = ", ".join(f'"{w}"' for w in sub.keywords)
    return (f"Your subscription ({sub.address}): {kinds}; {sections}" + (f"; mentioning {words}" if words else "")
            + f"; a digest {_when(sub)}.")


def _when(sub: SubscriberConfig) -> str:
    """``once a day at 07:00, America/New_York time``, or the cadence's words without ``at``."""
    if not sub.at:
        return CADENCE_WORDS[sub.cadence]
    every = "once a day" if sub.cadence == "daily" else "once an hour"
    return f"{every} at {sub.at}, {sub.timezone} time"


def _matches(db: sqlite_utils.Database, sub: SubscriberConfig, event: dict[str, Any]) -> bool:
    if sub.events and event["kind"] not in sub.events:
        return False
    parsed = digest.parse(event)
    stories = _stories(db, event, parsed)
    if sub.sections and not {s["kind"] for s in stories} & set(sub.sections):
        return False
    if not sub.keywords:
        return True
    text = " ".join([_text_of(parsed), *(s["title"] or "" for s in stories)])
    return any(re.search(rf"(?<!\w){re.escape(word.strip())}(?!\w)", text, re.I) for word in sub.keywords)


def _stories(db: sqlite_utils.Database, event: dict[str, Any], parsed: dict[str, Any]) -> list[dict[str, Any]]:
    """The stories an event is about: its own subject, or the stories that show its photo."""
    ids = [event["subject_id"]] if event["subject_type"] == "story" else parsed["details"].get("story_ids") or []
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    rows = db.execute(f"SELECT kind, title FROM stories WHERE id IN ({marks})", list(ids)).fetchall()
    return [{"kind": kind, "title": title} for kind, title in rows]


def _text_of(value: Any) -> str:
    """Every string in an event (title, summary, opening, diff): what a keyword is looked for in."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(_text_of(v) for k, v in value.items() if k not in ("url", "detected_at", "alerted_at"))
    if isinstance(value, list):
        return " ".join(_text_of(v) for v in value)
    return ""


def _pending(db: sqlite_utils.Database, address: str, since: int, current_run: int | None
             ) -> list[dict[str, Any]]:
    """Subscriber events after ``since`` not yet given to ``address``, of finished runs, not held, not
    imported history (never news)."""
    return list(db.query(
        """SELECT e.* FROM events e WHERE e.audience = 'subscriber' AND e.held = 0 AND e.imported = 0
             AND e.id > :since
             AND NOT EXISTS (SELECT 1 FROM subscriber_events s WHERE s.address = :address AND s.event_id = e.id)
             AND (e.run_id IS NULL OR e.run_id = :current
                  OR EXISTS (SELECT 1 FROM runs r WHERE r.id = e.run_id AND r.status != 'running'))
           ORDER BY e.id""",
        {"since": since, "address": address, "current": current_run},
    ))


def _record(db: sqlite_utils.Database, address: str, event_ids: list[int], mail_id: int | None, stamp: str) -> None:
    db.conn.executemany(
        "INSERT OR IGNORE INTO subscriber_events (address, event_id, outbox_id, queued_at) VALUES (?, ?, ?, ?)",
        [(address, event_id, mail_id, stamp) for event_id in event_ids],
    )
