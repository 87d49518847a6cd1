"""From change events to delivered alert emails, through the ``outbox`` table.

Queueing renders each mail completely (subject, text, HTML, Message-ID) and stores it in the same
transaction that stamps its events ``alerted_at``: an event is in exactly one outbox mail of its
kind or in none, and a crash can never leave one half-queued. Flushing only ever sends what is
stored, so a retry days later is the very mail that first failed.

Delivery is at-least-once with a stable Message-ID, not at-most-once; see ``flush_outbox``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from difflib import SequenceMatcher
from email.utils import make_msgid, parseaddr
from pathlib import Path
from textwrap import TextWrapper
from typing import TYPE_CHECKING, Any

import jinja2
import sqlite_utils

from db import outbox
from db.archive import wall_clock
from monitor import mailer

if TYPE_CHECKING:
    from defwatch.config import AlertConfig, SmtpConfig

log = logging.getLogger("defwatch.alerts")

# Digest sections, in the order a reader wants them.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("story_new", "New stories"),
    ("story_updated", "Updated stories"),
    ("story_removed", "Removed stories"),
    ("story_restored", "Restored stories"),
    ("related_added", "Related stories added"),
    ("related_removed", "Related stories removed"),
    ("image_new", "New images"),
    ("image_updated", "Updated images"),
    ("image_removed", "Removed images"),
    ("image_restored", "Restored images"),
)
# Only a page taken down gets its own mail; a related link dropping off a page is digest news.
IMMEDIATE_KINDS = ("story_removed", "image_removed")
SUBJECT_COUNTS = ("updated", "new", "removed", "restored", "related")
FIELD_ORDER = ("title", "subtitle", "byline", "published", "body", "images", "captions", "tags")
OPERATOR_LABELS = {
    "crawl_failed": "Crawl failed",
    "crawl_blocked": "Crawl blocked",
    "parser_degraded": "Parser degraded",
}

MAX_ITEMS_PER_SECTION = 100  # a first crawl or a long outage must still give a readable mail
MAX_HUNKS_PER_EVENT = 20
MAX_PARAGRAPH_CHARS = 4000
SUBJECT_TITLE_CHARS = 120
SUBJECT_CHARS = 200
MAX_BACKOFF = timedelta(hours=6)
MIN_LEASE = timedelta(minutes=15)
CLOCK_SLACK = timedelta(minutes=1)  # flushes with slightly different clocks are not a clock jump

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class FlushResult:
    """What one flush did: mails delivered, mails given up, mails still waiting in the outbox."""

    sent: int = 0
    failed: int = 0
    pending: int = 0


# --- queueing --------------------------------------------------------------------------------


def queue_run_alerts(
    db: sqlite_utils.Database, run_id: int, alerts: AlertConfig, now: datetime | None = None
) -> list[int]:
    """Queue the mails for one run's unalerted, unheld events; return the new outbox ids.

    Idempotent: the events are stamped in the same transaction, so a second call finds none.
    """
    with outbox.write_transaction(db):
        return _queue(db, outbox.unalerted_events(db, run_id=run_id), alerts, _utc(now))


def queue_pending_alerts(
    db: sqlite_utils.Database, alerts: AlertConfig, now: datetime | None = None
) -> list[int]:
    """Queue mails for every finished run's events still unalerted, e.g. ones released from hold.

    Everything found goes in one digest (and one operator mail) rather than one per run, so a
    backlog after a parser outage or a first configuration of recipients is one mail, not fifty.
    """
    with outbox.write_transaction(db):
        return _queue(db, outbox.unalerted_events(db), alerts, _utc(now))


def queue_test_mail(db: sqlite_utils.Database, alerts: AlertConfig, now: datetime | None = None) -> int:
    """Queue a test mail to every configured recipient; it travels the same path as alerts."""
    recipients = list(dict.fromkeys([*alerts.recipients, *alerts.operator_recipients]))
    if not recipients:
        raise ValueError("no alert recipients configured (set DEFWATCH_ALERT_TO or DEFWATCH_OPERATOR_TO)")
    moment = _utc(now)
    context = {
        "site_name": alerts.site_name,
        "queued_at": outbox.stamp(moment),
        "recipients": alerts.recipients,
        "operator_recipients": alerts.operator_recipients,
    }
    mail = _mail(alerts, "test", None, recipients, f"[defwatch] {alerts.site_name}: test mail",
                 _env.get_template("test.txt").render(context), None)
    with outbox.write_transaction(db):
        return outbox.insert_mail(db, created_at=outbox.stamp(moment), **mail)


def _queue(
    db: sqlite_utils.Database, events: list[dict[str, Any]], alerts: AlertConfig, moment: datetime
) -> list[int]:
    """Render and store the mails for ``events`` and stamp the events they cover."""
    subscriber = [e for e in events if e["audience"] != "operator"]
    operator = [e for e in events if e["audience"] == "operator"]
    mails: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if subscriber and alerts.recipients:
        if alerts.immediate_removals:
            mails += [(_immediate_mail(e, alerts), [e]) for e in subscriber if e["kind"] in IMMEDIATE_KINDS]
        mails.append((_digest_mail(subscriber, alerts), subscriber))
    if operator and alerts.operator_recipients:
        mails.append((_operator_mail(operator, alerts), operator))
    created = outbox.stamp(moment)
    ids = [outbox.insert_mail(db, created_at=created, **mail) for mail, _ in mails]
    outbox.mark_alerted(db, sorted({e["id"] for _, covered in mails for e in covered}), created)
    return ids


def _mail(
    alerts: AlertConfig,
    kind: str,
    run_id: int | None,
    recipients: Sequence[str],
    subject: str,
    body_text: str,
    body_html: str | None,
) -> dict[str, Any]:
    """An outbox row's content. The Message-ID is made once, here, and kept for every retry."""
    sender = mailer.check_address(alerts.sender)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "defwatch.invalid"
    return {
        "message_id": make_msgid(domain=domain),
        "kind": kind,
        "run_id": run_id,
        "sender": sender,
        "recipients": [mailer.check_address(a) for a in recipients],
        "subject": mailer.sanitize_header(subject, SUBJECT_CHARS),
        "body_text": body_text,
        "body_html": body_html,
    }


def _digest_mail(events: list[dict[str, Any]], alerts: AlertConfig) -> dict[str, Any]:
    runs = _runs_label(events)
    subject = f"[defwatch] {_site(alerts)}: {_counts(events)}" + (f" ({runs})" if runs else "")
    heading = f"Changes on {_site(alerts)}" + (f", {runs}" if runs else "")
    context = _digest_context(events, alerts, heading, intro=None)
    text, html = _render_pair("digest", context)
    return _mail(alerts, "digest", _single_run(events), alerts.recipients, subject, text, html)


def _immediate_mail(event: dict[str, Any], alerts: AlertConfig) -> dict[str, Any]:
    what = event["kind"].replace("_", " ")
    title = mailer.sanitize_header(_title(event), SUBJECT_TITLE_CHARS)
    runs = _runs_label([event])
    subject = f"[defwatch] {_site(alerts)}: {what}: {title}" + (f" ({runs})" if runs else "")
    intro = f"This {what.split()[0]} was confirmed removed. The run's digest will list it too."
    context = _digest_context([event], alerts, f"{what.capitalize()} on {_site(alerts)}", intro)
    text, html = _render_pair("digest", context)
    return _mail(alerts, "immediate", event["run_id"], alerts.recipients, subject, text, html)


def _operator_mail(events: list[dict[str, Any]], alerts: AlertConfig) -> dict[str, Any]:
    labels = list(dict.fromkeys(OPERATOR_LABELS.get(e["kind"], e["kind"]).lower() for e in events))
    runs = _runs_label(events)
    subject = f"[defwatch] {_site(alerts)} operator: {', '.join(labels)}" + (f" ({runs})" if runs else "")
    items = [
        {
            "label": OPERATOR_LABELS.get(e["kind"], e["kind"]),
            "summary": mailer.clean_text(e["summary"]),
            "detected_at": _when(e["detected_at"]),
            "run_id": e["run_id"],
            "url": _safe_url(e["url"]),
        }
        for e in events
    ]
    context = {
        "site_name": alerts.site_name,
        "heading": f"defwatch needs attention: {_site(alerts)}" + (f", {runs}" if runs else ""),
        "overview": f"{len(events)} operator event(s).",
        "items": items,
    }
    text, html = _render_pair("operator", context)
    return _mail(alerts, "operator", _single_run(events), alerts.operator_recipients, subject, text, html)


def _render_pair(name: str, context: dict[str, Any]) -> tuple[str, str]:
    return _env.get_template(f"{name}.txt").render(context), _env.get_template(f"{name}.html").render(context)


# --- digest content --------------------------------------------------------------------------


def _digest_context(
    events: list[dict[str, Any]], alerts: AlertConfig, heading: str, intro: str | None
) -> dict[str, Any]:
    known = [kind for kind, _ in SECTIONS]
    labels = dict(SECTIONS) | {k: k.replace("_", " ").capitalize() for k in _kinds(events) if k not in known}
    sections = []
    for kind in [*known, *sorted(set(_kinds(events)) - set(known))]:
        group = [e for e in events if e["kind"] == kind]
        if group:
            sections.append({
                "kind": kind,
                "label": labels[kind],
                "count": len(group),
                "entries": [_item(e) for e in group[:MAX_ITEMS_PER_SECTION]],
                "more": max(0, len(group) - MAX_ITEMS_PER_SECTION),
            })
    return {
        "site_name": alerts.site_name,
        "heading": heading,
        "overview": f"{len(events)} change(s): {_counts(events)}.",
        "intro": intro,
        "sections": sections,
    }


def _item(event: dict[str, Any]) -> dict[str, Any]:
    hunks = _diff_fields(event["diff"])
    return {
        "title": mailer.sanitize_header(_title(event), 300),
        "url": _safe_url(event["url"]),
        "summary": mailer.clean_text(event["summary"]),
        "changed_fields": [str(f) for f in _json(event["changed_fields"], list)],
        "detected_at": _when(event["detected_at"]),
        "run_id": event["run_id"],
        "subject_id": event["subject_id"],
        "diffs": hunks[0],
        "diff_omitted": hunks[1],
    }


def _diff_fields(raw: str | None) -> tuple[list[dict[str, Any]], int]:
    """The stored field diff as display data, at most MAX_HUNKS_PER_EVENT passages in all."""
    diff = _json(raw, dict)
    order = [f for f in FIELD_ORDER if f in diff] + sorted(f for f in diff if f not in FIELD_ORDER)
    fields, budget, omitted = [], MAX_HUNKS_PER_EVENT, 0
    for name in order:
        ops = [op for op in diff[name] if isinstance(op, dict) and op.get("op") != "equal"] \
            if isinstance(diff[name], list) else []
        shown, omitted = ops[:budget], omitted + max(0, len(ops) - budget)
        budget -= len(shown)
        if shown:
            fields.append({"field": name, "label": name.replace("_", " ").capitalize(),
                           "hunks": [_hunk(op) for op in shown]})
    return fields, omitted


def _hunk(op: dict[str, Any]) -> dict[str, Any]:
    old = [_paragraph(p) for p in op.get("old") or [] if p is not None]
    new = [_paragraph(p) for p in op.get("new") or [] if p is not None]
    lines = [line for p in old for line in _wrap(p, "- ")] + [line for p in new for line in _wrap(p, "+ ")]
    return {"text_lines": lines, "html_paras": _html_paragraphs(old, new)}


def _paragraph(value: Any) -> str:
    text = " ".join(mailer.clean_text(str(value)).split())
    return text if len(text) <= MAX_PARAGRAPH_CHARS else text[: MAX_PARAGRAPH_CHARS - 1] + "…"


def _wrap(paragraph: str, marker: str) -> list[str]:
    """``- old`` / ``+ new`` lines, wrapped for plain-text readers, continuation lines indented."""
    wrapper = TextWrapper(width=78, initial_indent="    " + marker, subsequent_indent="      ",
                          break_long_words=False, break_on_hyphens=False)
    return wrapper.wrap(paragraph) or ["    " + marker.rstrip()]


def _html_paragraphs(old: list[str], new: list[str]) -> list[dict[str, Any]]:
    """Pair old and new paragraphs in order; similar pairs get inline word-level marks."""
    paras = []
    for index in range(max(len(old), len(new))):
        before = old[index] if index < len(old) else None
        after = new[index] if index < len(new) else None
        if before is not None and after is not None and _similar(before, after):
            paras.append({"cls": "changed", "segments": _word_segments(before, after)})
            continue
        if before is not None:
            paras.append({"cls": "deleted", "segments": [("del", before)]})
        if after is not None:
            paras.append({"cls": "inserted", "segments": [("ins", after)]})
    return paras


_TOKEN = re.compile(r"\w+|[^\w\s]+|\s+")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _similar(old: str, new: str) -> bool:
    """Word marks only help when most words survive; otherwise show old and new whole."""
    return SequenceMatcher(None, _tokens(old), _tokens(new), autojunk=False).ratio() >= 0.4


def _word_segments(old: str, new: str) -> list[tuple[str, str]]:
    """``("", same) / ("del", gone) / ("ins", added)`` runs between two versions of a paragraph.

    A lone space between two changes is folded into them, so "a b" -> "x y" reads as one
    replacement rather than a chequerboard of one-word marks.
    """
    a, b = _tokens(old), _tokens(new)
    ops = [[tag == "equal", "".join(a[i1:i2]), "".join(b[j1:j2])]
           for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes()]
    for i in range(1, len(ops) - 1):
        if ops[i][0] and not ops[i][1].strip() and not ops[i - 1][0] and not ops[i + 1][0]:
            ops[i][0] = False
    merged: list[list[Any]] = []
    for op in ops:
        if merged and not op[0] and not merged[-1][0]:
            merged[-1][1] += op[1]
            merged[-1][2] += op[2]
        else:
            merged.append(op)
    segments: list[tuple[str, str]] = []
    for equal, before, after in merged:
        if equal:
            segments.append(("", before))
            continue
        segments += [("del", before)] if before else []
        segments += [("ins", after)] if after else []
    return segments


# --- small helpers ---------------------------------------------------------------------------


def _counts(events: Iterable[dict[str, Any]]) -> str:
    """``2 updated, 1 new, 1 removed``: the subject's summary, most interesting first."""
    counts: dict[str, int] = {}
    for event in events:
        kind = event["kind"]
        verb = "related" if kind.startswith("related_") else kind.rpartition("_")[2]
        counts[verb] = counts.get(verb, 0) + 1
    order = [*SUBJECT_COUNTS, *sorted(set(counts) - set(SUBJECT_COUNTS))]
    return ", ".join(f"{counts[v]} {v}" for v in order if v in counts)


def _kinds(events: Iterable[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(e["kind"] for e in events))


def _runs_label(events: Iterable[dict[str, Any]]) -> str:
    runs = sorted({e["run_id"] for e in events if e["run_id"] is not None})
    if not runs:
        return ""
    return f"run {runs[0]}" if len(runs) == 1 else f"runs {runs[0]}–{runs[-1]}"


def _single_run(events: Iterable[dict[str, Any]]) -> int | None:
    runs = {e["run_id"] for e in events}
    return runs.pop() if len(runs) == 1 else None


def _site(alerts: AlertConfig) -> str:
    return mailer.sanitize_header(alerts.site_name, 60)


def _title(event: dict[str, Any]) -> str:
    title = " ".join((event["title"] or "").split())
    return title or f"{event['subject_type']} {event['subject_id']}"


def _safe_url(url: str | None) -> str | None:
    """Only web links become links: a scraped ``javascript:`` URL must not reach an href."""
    url = (url or "").strip()
    return url if re.match(r"https?://[^\s<>\"]+$", url) else None


def _json(raw: str | None, kind: type) -> Any:
    """Decode a JSON column, tolerating junk: one bad event must not block the whole digest."""
    try:
        value = json.loads(raw) if raw else kind()
    except (TypeError, ValueError):
        return kind()
    return value if isinstance(value, kind) else kind()


def _when(stamp: str | None) -> str:
    """``2025-03-04 15:02 UTC`` for readers; whatever was stored if it does not parse."""
    try:
        return outbox.parse_stamp(stamp or "").astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return stamp or "unknown time"


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return wall_clock()
    return now if now.tzinfo else now.replace(tzinfo=UTC)


# --- delivery --------------------------------------------------------------------------------


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
    moment = _utc(now)
    sent = failed = 0
    lease = sending_lease(smtp)
    # Retry times and leases are never set further ahead than these: one that is was set before the
    # wall clock went back, and must not hold a mail for as long as the clock jumped.
    horizons = {"retry_horizon": outbox.stamp(moment + MAX_BACKOFF + CLOCK_SLACK),
                "lease_horizon": outbox.stamp(moment + lease + CLOCK_SLACK)}
    for mail_id in outbox.due_mail_ids(db, outbox.stamp(moment), **horizons):
        mail = outbox.claim(db, mail_id, outbox.stamp(moment), outbox.stamp(moment + lease), **horizons)
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
        refused = mailer.send_message(mailer.build_message(mail), smtp)
    except Exception as exc:  # every failure is recorded on the row, never lost in a traceback
        return _retry_or_fail(db, mail, alerts, moment, mailer.describe_error(exc, smtp))
    return _settle(db, mail, refused, smtp, alerts, moment)


def _settle(
    db: sqlite_utils.Database,
    mail: dict[str, Any],
    refused: mailer.Refused,
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
        notes.append(f"refused for good: {mailer.format_refused(final)}")
    if delivered and (final or temporary):
        notes.append(f"delivered to: {', '.join(delivered)}")
    note = mailer.redact("; ".join(notes), smtp) or None
    if temporary:
        deferred = mailer.format_refused({k: v for k, v in refused.items() if v[0] < 500})
        error = mailer.redact(f"deferred: {deferred}" + (f"; {note}" if note else ""), smtp)
        return _retry_or_fail(db, mail, alerts, moment, error, recipients=temporary)
    if not delivered:
        return _fail(db, mail, f"every recipient refused: {note}")
    outbox.mark_sent(db, mail["id"], outbox.stamp(moment), note)
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
    outbox.mark_retry(db, mail["id"], error, outbox.stamp(retry_at), recipients)
    log.warning("outbox %s attempt %s failed, retry at %s: %s", mail["id"], mail["attempts"],
                outbox.stamp(retry_at), error)
    return "pending"


def _fail(db: sqlite_utils.Database, mail: dict[str, Any], error: str) -> str:
    outbox.mark_failed(db, mail["id"], error)
    log.error("outbox %s failed for good: %s", mail["id"], error)
    return "failed"
