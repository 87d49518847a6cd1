"""Delivering the mails queued in the ``outbox`` table over SMTP (composing them is ``monitor.compose``).

``flush_outbox`` sends every due mail once; ``build_message`` turns a stored outbox row into an
``EmailMessage``, ``send_message`` hands it to one SMTP server, ``describe_error`` turns a failure
into a one-line reason that is safe to store and log (the password never appears in it).

Delivery is at-least-once with a stable Message-ID, not at-most-once; see ``flush_outbox``.
"""

from __future__ import annotations

import base64
import logging
import smtplib
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, Any

import sqlite_utils

from core.clock import as_utc, parse_stamp, stamp
from core.constants import SECURITY_MODES
from db import outbox
from monitor.compose import check_address, sanitize_header

if TYPE_CHECKING:
    from core.config import AlertConfig, SmtpConfig

log = logging.getLogger("defwatch.alerts")

MAX_BACKOFF = timedelta(hours=6)
MIN_LEASE = timedelta(minutes=15)
CLOCK_SLACK = timedelta(minutes=1)  # flushes with slightly different clocks are not a clock jump

Refused = dict[str, tuple[int, str]]
# Non-ASCII bodies go out quoted-printable or base64, never raw 8bit: smtplib does not ask for
# 8BITMIME, and a relay without it may mangle or bounce 8bit data.
MAIL_POLICY = policy.default.clone(cte_type="7bit")


@dataclass(frozen=True)
class FlushResult:
    """What one flush did: mails delivered, mails given up, mails still waiting in the outbox."""

    sent: int = 0
    failed: int = 0
    pending: int = 0


def build_message(mail: Mapping[str, Any]) -> EmailMessage:
    """The MIME message for an outbox row; the same row always gives the same message.

    ``Date`` is the queue time and ``Message-ID`` the stored one, so a retry is byte-for-byte
    the mail that was meant to leave first, and receivers can drop a duplicate by its ID.
    """
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["Subject"] = sanitize_header(mail["subject"], limit=998)
    msg["From"] = check_address(mail["sender"])
    msg["To"] = ", ".join(check_address(a) for a in mail["recipients"])
    msg["Date"] = format_datetime(parse_stamp(mail["created_at"]))
    msg["Message-ID"] = mail["message_id"]
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    msg["X-Defwatch-Kind"] = mail["kind"]
    msg.set_content(mail["body_text"])
    if mail.get("body_html"):
        msg.add_alternative(mail["body_html"], subtype="html")
    return msg


def send_message(msg: EmailMessage, smtp: SmtpConfig) -> Refused:
    """Deliver ``msg`` to the addresses in its headers; return the recipients the server refused.

    Like smtplib, a partial refusal is returned, not raised; unlike smtplib a refusal of *every*
    recipient is returned too, so the caller has one place to sort 4xx from 5xx per address.
    Any other failure raises. QUIT happens after the server has accepted the data, so a failing
    QUIT is ignored: reporting it would make the caller send an already delivered mail again.
    """
    conn = _connect(smtp)
    try:
        _prepare(conn, smtp)
        try:
            refused = conn.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients
    finally:
        _close_quietly(conn)
    return {addr: (code, _text(reply)) for addr, (code, reply) in refused.items()}


def _connect(smtp: SmtpConfig) -> smtplib.SMTP:
    """Open the connection in the configured mode; never fall back to plain text on its own."""
    if smtp.security not in SECURITY_MODES:
        raise ValueError(f"SMTP security must be one of {', '.join(SECURITY_MODES)}, not {smtp.security!r}")
    local = "localhost"  # our EHLO name: getfqdn() can stall on DNS where there is no network
    if smtp.security == "ssl":
        context = ssl.create_default_context()
        return smtplib.SMTP_SSL(smtp.host, smtp.port, local_hostname=local, timeout=smtp.timeout,
                                context=context)
    return smtplib.SMTP(smtp.host, smtp.port, local_hostname=local, timeout=smtp.timeout)


def _prepare(conn: smtplib.SMTP, smtp: SmtpConfig) -> None:
    conn.ehlo()
    if smtp.security == "starttls":
        # Raises SMTPNotSupportedError when the server does not offer STARTTLS.
        conn.starttls(context=ssl.create_default_context())
        conn.ehlo()
    if smtp.user:
        conn.login(smtp.user, smtp.password or "")


def _close_quietly(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def format_refused(refused: Refused) -> str:
    """``addr: 550 reason; ...`` for last_error."""
    return "; ".join(f"{addr}: {code} {reply}" for addr, (code, reply) in sorted(refused.items()))


def describe_error(exc: BaseException, smtp: SmtpConfig) -> str:
    """A one-line reason for last_error and the log, with every form of the password masked."""
    where = f"{smtp.host}:{smtp.port}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        text = f"authentication as {smtp.user!r} failed at {where}: {exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        text = f"{where} (security={smtp.security}): {exc}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        text = f"{where} closed the connection: {exc}"
    elif isinstance(exc, ssl.SSLError):
        hint = "implicit TLS, usually port 465" if smtp.security == "ssl" else "STARTTLS"
        text = (f"TLS with {where} failed (security={smtp.security}): {exc.reason or exc};"
                f" is this port really {hint}?")
    elif isinstance(exc, (socket.timeout, TimeoutError)):
        text = f"no answer from {where} within {smtp.timeout:g} s"
    elif isinstance(exc, OSError):
        text = f"cannot connect to {where} (security={smtp.security}): {exc.strerror or exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact(sanitize_header(text, limit=1000), smtp)


def redact(text: str, smtp: SmtpConfig) -> str:
    """Mask the SMTP password in any text bound for the outbox or the log."""
    return scrub(text, _secret_forms(smtp))


def _secret_forms(smtp: SmtpConfig) -> list[str]:
    """The password as typed and as it travels in AUTH PLAIN/LOGIN, any of which a server may echo."""
    if not smtp.password:
        return []
    raw = smtp.password.encode()
    plain = b"\0" + (smtp.user or "").encode() + b"\0" + raw
    return [smtp.password, base64.b64encode(raw).decode(), base64.b64encode(plain).decode()]


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Mask each secret in ``text``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# --- the outbox --------------------------------------------------------------------------------


def sending_lease(smtp: SmtpConfig) -> timedelta:
    """How long a ``sending`` row belongs to the flush that claimed it.

    Long enough to cover a whole slow SMTP conversation (connect, TLS, AUTH, DATA each up to
    ``timeout``), so a live sender is never overtaken by a second flush.
    """
    return max(MIN_LEASE, timedelta(seconds=10 * smtp.timeout))


def backoff(alerts: AlertConfig, attempts: int) -> timedelta:
    """Exponential: base, 2 x base, 4 x base ... capped so a long outage still retries hourly-ish."""
    delay = timedelta(seconds=alerts.retry_base_seconds * 2 ** max(0, attempts - 1))
    return min(delay, MAX_BACKOFF)


def flush_outbox(
    db: sqlite_utils.Database, smtp: SmtpConfig, alerts: AlertConfig, now: datetime | None = None
) -> FlushResult:
    """Send every due mail once; never send one twice on purpose.

    Each mail is marked ``sending`` and committed before the SMTP conversation, and ``sent``
    after it. If the process dies in between, the row stays ``sending``: we cannot know whether
    the server got the mail. Two choices exist. At-most-once would mark it failed and risk an
    alert nobody receives; at-least-once sends it again. We choose at-least-once, but only after
    the lease (``sending_lease``) has expired, so a slow live sender is never duplicated, and with
    the same stored Message-ID and Date, so the duplicate is byte-identical and a receiving
    system (or the reader's client) can drop it. A duplicate can only happen if the crash fell
    in the moment between the server's 250 and our commit; a lost alert would be silent. A sender
    known to be dead (same machine, its pid gone) does not hold its mail for the whole lease.
    """
    if db.conn.in_transaction:
        raise RuntimeError("flush_outbox needs its own transactions: 'sending' must be committed before SMTP")
    moment = as_utc(now)
    sent = failed = 0
    lease = sending_lease(smtp)
    # Retry times and leases are never set further ahead than these: one that is was set before the
    # wall clock went back, and must not hold a mail for as long as the clock jumped.
    horizons = {"retry_horizon": stamp(moment + MAX_BACKOFF + CLOCK_SLACK),
                "lease_horizon": stamp(moment + lease + CLOCK_SLACK)}
    for mail_id in outbox.due_mail_ids(db, stamp(moment), **horizons):
        mail = outbox.claim(db, mail_id, stamp(moment), stamp(moment + lease), **horizons)
        if mail is None:
            continue  # another flush took it
        status = _attempt(db, mail, smtp, alerts, moment)
        sent += status == "sent"
        failed += status == "failed"
    return FlushResult(sent=sent, failed=failed, pending=outbox.count_waiting(db))


def _attempt(
    db: sqlite_utils.Database, mail: dict[str, Any], smtp: SmtpConfig, alerts: AlertConfig, moment: datetime
) -> str:
    """One delivery attempt of a claimed mail; returns its new status."""
    if mail["attempts"] > alerts.max_attempts:  # only a row reclaimed from a dead sender gets here
        error = f"interrupted while sending, not retried after {alerts.max_attempts} attempts"
        return _fail(db, mail, f"{error}; last error: {mail['last_error']}" if mail["last_error"] else error)
    if mail["reclaimed"]:
        log.warning("outbox %s was left 'sending' by an interrupted flush; sending again as %s",
                    mail["id"], mail["message_id"])
    try:
        refused = send_message(build_message(mail), smtp)
    except Exception as exc:  # every failure is recorded on the row, never lost in a traceback
        return _retry_or_fail(db, mail, alerts, moment, describe_error(exc, smtp))
    return _settle(db, mail, refused, smtp, alerts, moment)


def _settle(
    db: sqlite_utils.Database,
    mail: dict[str, Any],
    refused: Refused,
    smtp: SmtpConfig,
    alerts: AlertConfig,
    moment: datetime,
) -> str:
    """Sort per-recipient answers: 5xx are final, 4xx are retried for those recipients only."""
    def answer(recipient: str) -> tuple[int, str] | None:
        return refused.get(parseaddr(recipient)[1])

    temporary = [r for r in mail["recipients"] if (a := answer(r)) and a[0] < 500]
    delivered = [r for r in mail["recipients"] if answer(r) is None]
    final = {k: v for k, v in refused.items() if v[0] >= 500}
    notes = []
    if final:
        notes.append(f"refused for good: {format_refused(final)}")
    if delivered and (final or temporary):
        notes.append(f"delivered to: {', '.join(delivered)}")
    note = redact("; ".join(notes), smtp) or None
    if temporary:
        deferred = format_refused({k: v for k, v in refused.items() if v[0] < 500})
        error = redact(f"deferred: {deferred}" + (f"; {note}" if note else ""), smtp)
        return _retry_or_fail(db, mail, alerts, moment, error, recipients=temporary)
    if not delivered:
        return _fail(db, mail, f"every recipient refused: {note}")
    outbox.mark_sent(db, mail["id"], stamp(moment), note)
    log.info("outbox %s sent (%s) to %s", mail["id"], mail["message_id"], ", ".join(delivered))
    if note:
        log.warning("outbox %s: %s", mail["id"], note)
    return "sent"


def _retry_or_fail(
    db: sqlite_utils.Database,
    mail: dict[str, Any],
    alerts: AlertConfig,
    moment: datetime,
    error: str,
    recipients: list[str] | None = None,
) -> str:
    """Schedule the next attempt with backoff, or give up after ``max_attempts``.

    ``recipients`` narrows the row to those still owed the mail, so a later attempt never
    reaches someone whose server already accepted it.
    """
    if mail["attempts"] >= alerts.max_attempts:
        return _fail(db, mail, f"{error} (gave up after {mail['attempts']} attempts)")
    retry_at = moment + backoff(alerts, mail["attempts"])
    outbox.mark_retry(db, mail["id"], error, stamp(retry_at), recipients)
    log.warning("outbox %s attempt %s failed, retry at %s: %s", mail["id"], mail["attempts"],
                stamp(retry_at), error)
    return "pending"


def _fail(db: sqlite_utils.Database, mail: dict[str, Any], error: str) -> str:
    outbox.mark_failed(db, mail["id"], error)
    log.error("outbox %s failed for good: %s", mail["id"], error)
    return "failed"
