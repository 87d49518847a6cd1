"""Every query behind alert emails: unalerted events and the outbox state machine.

An outbox row moves ``pending -> sending -> sent`` (or back to ``pending`` with a later
``next_attempt_at``, or on to ``failed``). Each step is its own committed transaction, so a crash
leaves the row in a state that says exactly how far the mail got.

While a row is ``sending``, ``next_attempt_at`` holds the *lease expiry*: the time after which the
sender is presumed dead and the row may be claimed again. Reusing the column keeps the schema as
it is and keeps the ``outbox_status(status, next_attempt_at)`` index useful for both questions
("which pending mails are due?" and "which sends were abandoned?"). ``claimed_by`` names the
sending process, so a sender known to be dead (kill -9 mid-send) does not make its mail wait out
the lease; and a retry time or lease further ahead than it can ever be set was set before the wall
clock went back, and is not waited for either.

Times are ISO 8601 UTC strings with a ``Z`` (the archive's format), so they compare as text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlite_utils

from core.process import process_gone, process_token

STATUSES = ("pending", "sending", "sent", "failed")

# Operator trouble first, then single removals, then the digests: the most urgent mail leaves
# first when an outage has let a queue build up.
_PRIORITY = "CASE kind WHEN 'operator' THEN 0 WHEN 'immediate' THEN 1 WHEN 'test' THEN 2 ELSE 3 END"


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction that takes the write lock up front (BEGIN IMMEDIATE).

    Taking the lock first means a read-then-write step (select events, then mark them) cannot be
    interleaved with another writer, which is what makes queueing idempotent under concurrency.
    Inside a caller's transaction it becomes a savepoint, so the caller decides when to commit.
    """
    conn = db.conn
    if conn.in_transaction:
        conn.execute("SAVEPOINT defwatch_outbox")
        try:
            yield db
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO SAVEPOINT defwatch_outbox")
                conn.execute("RELEASE SAVEPOINT defwatch_outbox")
            raise
        conn.execute("RELEASE SAVEPOINT defwatch_outbox")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# --- events -----------------------------------------------------------------------------------


def unalerted_events(db: sqlite_utils.Database, run_id: int | None = None) -> list[dict[str, Any]]:
    """Events not yet put in a mail and not held back by parser health, oldest first.

    With ``run_id`` only that run's events. Without it, events of every run that has finished
    (or of no run): a crawl still writing events is left to its own ``queue_run_alerts`` call,
    so a background sweep never splits one run's digest in two. Imported history (``imported``)
    is never mailed: it is not news, whenever it was imported.
    """
    base = "SELECT e.* FROM events e WHERE e.alerted_at IS NULL AND e.held = 0 AND e.imported = 0"
    if run_id is not None:
        return list(db.query(base + " AND e.run_id = ? ORDER BY e.id", [run_id]))
    sql = (
        base + " AND (e.run_id IS NULL OR EXISTS ("
        "SELECT 1 FROM runs r WHERE r.id = e.run_id AND r.status != 'running')) ORDER BY e.id"
    )
    return list(db.query(sql))


def mark_alerted(db: sqlite_utils.Database, event_ids: Sequence[int], at: str) -> int:
    """Stamp events as mailed; only untouched ones, so a concurrent writer cannot double-mark."""
    cursor = db.execute(
        "UPDATE events SET alerted_at = ? WHERE alerted_at IS NULL"
        " AND id IN (SELECT value FROM json_each(?))",
        [at, json.dumps(list(event_ids))],
    )
    return cursor.rowcount


# --- outbox -----------------------------------------------------------------------------------


def insert_mail(
    db: sqlite_utils.Database,
    *,
    message_id: str,
    kind: str,
    run_id: int | None,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    body_text: str,
    body_html: str | None,
    created_at: str,
) -> int:
    """Queue one fully rendered mail; a retry later sends exactly these bytes of content."""
    cursor = db.execute(
        "INSERT INTO outbox (message_id, kind, run_id, sender, recipients, subject, body_text,"
        " body_html, status, attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)",
        [message_id, kind, run_id, sender, json.dumps(list(recipients)), subject, body_text,
         body_html, created_at],
    )
    return int(cursor.lastrowid)


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row["recipients"] = json.loads(row["recipients"]) if row.get("recipients") else []
    return row


def get_mail(db: sqlite_utils.Database, mail_id: int) -> dict[str, Any] | None:
    """One outbox row with ``recipients`` decoded to a list."""
    rows = list(db.query("SELECT * FROM outbox WHERE id = ?", [mail_id]))
    return _decode(rows[0]) if rows else None


def list_outbox(db: sqlite_utils.Database, status: str | None = None) -> list[dict[str, Any]]:
    """Outbox rows (all, or one status) in queue order, with ``recipients`` as a list."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown outbox status {status!r}; expected one of {', '.join(STATUSES)}")
    if status is None:
        rows = db.query("SELECT * FROM outbox ORDER BY id")
    else:
        rows = db.query("SELECT * FROM outbox WHERE status = ? ORDER BY id", [status])
    return [_decode(row) for row in rows]


def due_mail_ids(
    db: sqlite_utils.Database, now: str, *, retry_horizon: str | None = None, lease_horizon: str | None = None
) -> list[int]:
    """Mails to try now (see ``claimable``), most urgent first."""
    sql = (
        "SELECT id, status, next_attempt_at, claimed_by FROM outbox WHERE status IN ('pending', 'sending')"
        f" ORDER BY {_PRIORITY}, id"
    )
    return [row[0] for row in db.execute(sql).fetchall() if claimable(row[1:], now, retry_horizon, lease_horizon)]


def claimable(
    row: Sequence[Any], now: str, retry_horizon: str | None = None, lease_horizon: str | None = None
) -> bool:
    """Whether a mail (``status, next_attempt_at, claimed_by``) may be claimed at ``now``.

    ``pending``: when its retry time has come. ``sending``: when its sender is certainly dead (same
    machine, pid gone: ``core.process.process_gone``), or its lease has expired. The horizons are the
    latest time a retry or a lease can legitimately be set to from ``now`` (the longest backoff, one
    lease): a time beyond that was set before the wall clock went back (an NTP step, a restored VM)
    and is not waited for, or a mail could wait a day for a one-minute backoff.
    """
    status, next_attempt_at, claimed_by = row
    if status == "pending":
        return next_attempt_at is None or next_attempt_at <= now or (
            retry_horizon is not None and next_attempt_at > retry_horizon)
    if status != "sending":
        return False
    if process_gone(claimed_by):
        return True
    return next_attempt_at is None or next_attempt_at <= now or (
        lease_horizon is not None and next_attempt_at > lease_horizon)


def claim(
    db: sqlite_utils.Database, mail_id: int, now: str, lease_until: str, *,
    retry_horizon: str | None = None, lease_horizon: str | None = None,
) -> dict[str, Any] | None:
    """Mark one due mail ``sending`` and commit, before any byte goes to the SMTP server.

    The write transaction (BEGIN IMMEDIATE) is the lock: the row is judged and updated with no other
    writer in between, so of two flushers racing for a row only one gets it. ``claimed_by`` records
    this process. ``attempts`` counts started attempts, so a process that keeps dying mid-send still
    runs out of attempts instead of looping forever. Returns the claimed row, with ``reclaimed``
    True when it was taken over from a dead sender or an expired lease; None if not claimable.
    """
    with write_transaction(db):
        before = db.execute(
            "SELECT status, next_attempt_at, claimed_by FROM outbox WHERE id = ?", [mail_id]).fetchone()
        if before is None or not claimable(before, now, retry_horizon, lease_horizon):
            return None
        db.execute(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?, claimed_by = ?"
            " WHERE id = ?",
            [lease_until, process_token(), mail_id],
        )
        mail = get_mail(db, mail_id)
    if mail is not None:
        mail["reclaimed"] = before[0] == "sending"
    return mail


def mark_sent(db: sqlite_utils.Database, mail_id: int, at: str, note: str | None = None) -> None:
    """The server took the mail. ``note`` records recipients it refused for good, if any."""
    with write_transaction(db):
        db.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?, next_attempt_at = NULL, claimed_by = NULL,"
            " last_error = COALESCE(?, last_error) WHERE id = ?",
            [at, note, mail_id],
        )


def mark_retry(
    db: sqlite_utils.Database,
    mail_id: int,
    error: str,
    next_attempt_at: str,
    recipients: Sequence[str] | None = None,
) -> None:
    """Back to ``pending`` for a later attempt; ``recipients`` narrows who is still owed the mail."""
    with write_transaction(db):
        db.execute(
            "UPDATE outbox SET status = 'pending', last_error = ?, next_attempt_at = ?, claimed_by = NULL,"
            " recipients = COALESCE(?, recipients) WHERE id = ?",
            [error, next_attempt_at, json.dumps(list(recipients)) if recipients else None, mail_id],
        )


def mark_failed(db: sqlite_utils.Database, mail_id: int, error: str) -> None:
    """Give up on a mail; it stays in the outbox with its last error for the operator."""
    with write_transaction(db):
        db.execute(
            "UPDATE outbox SET status = 'failed', last_error = ?, next_attempt_at = NULL, claimed_by = NULL"
            " WHERE id = ?",
            [error, mail_id],
        )


def count_waiting(db: sqlite_utils.Database) -> int:
    """Mails not yet delivered nor given up (pending, or sending under a live lease)."""
    row = db.execute("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')").fetchone()
    return int(row[0])


def retry_now(db: sqlite_utils.Database) -> int:
    """Make every pending mail due at once: an operator's explicit flush does not wait out the backoff."""
    with db.atomic():
        return db.execute("UPDATE outbox SET next_attempt_at = NULL WHERE status = 'pending'").rowcount
