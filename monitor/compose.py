"""Composing alert mails: from change events to complete mails queued in the ``outbox`` table.

Queueing renders each mail completely (subject, text, HTML, Message-ID) and stores it in the same
transaction that stamps its events ``alerted_at``: an event is in exactly one outbox mail of its
kind or in none, and a crash can never leave one half-queued. Delivery (``monitor.mailer``) only
ever sends what is stored, so a retry days later is the very mail that first failed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.utils import make_msgid, parseaddr
from pathlib import Path
from textwrap import TextWrapper
from typing import TYPE_CHECKING, Any

import jinja2
import sqlite_utils

from core.clock import as_utc, parse_stamp, stamp
from db import outbox
from monitor.diff import pair_paragraphs

if TYPE_CHECKING:
    from core.config import AlertConfig

HEADER_LIMIT = 200
# C0/C1 controls and the Unicode line/paragraph separators: anything a mail client or a
# header parser could read as a line break.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]+")
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u0085]")

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

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


# --- queueing --------------------------------------------------------------------------------


def queue_run_alerts(
    db: sqlite_utils.Database, run_id: int, alerts: AlertConfig, now: datetime | None = None
) -> list[int]:
    """Queue the mails for one run's unalerted, unheld events; return the new outbox ids.

    Idempotent: the events are stamped in the same transaction, so a second call finds none.
    """
    with outbox.write_transaction(db):
        return _queue(db, outbox.unalerted_events(db, run_id=run_id), alerts, as_utc(now))


def queue_pending_alerts(
    db: sqlite_utils.Database, alerts: AlertConfig, now: datetime | None = None
) -> list[int]:
    """Queue mails for every finished run's events still unalerted, e.g. ones released from hold.

    Everything found goes in one digest (and one operator mail) rather than one per run, so a
    backlog after a parser outage or a first configuration of recipients is one mail, not fifty.
    """
    with outbox.write_transaction(db):
        return _queue(db, outbox.unalerted_events(db), alerts, as_utc(now))


def queue_test_mail(db: sqlite_utils.Database, alerts: AlertConfig, now: datetime | None = None) -> int:
    """Queue a test mail to every configured recipient; it travels the same path as alerts."""
    recipients = list(dict.fromkeys([*alerts.recipients, *alerts.operator_recipients]))
    if not recipients:
        raise ValueError("no alert recipients configured (set DEFWATCH_ALERT_TO or DEFWATCH_OPERATOR_TO)")
    moment = as_utc(now)
    context = {
        "site_name": alerts.site_name,
        "queued_at": stamp(moment),
        "recipients": alerts.recipients,
        "operator_recipients": alerts.operator_recipients,
    }
    mail = _mail(alerts, "test", None, recipients, f"[defwatch] {alerts.site_name}: test mail",
                 _env.get_template("test.txt").render(context), None)
    with outbox.write_transaction(db):
        return outbox.insert_mail(db, created_at=stamp(moment), **mail)


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
    created = stamp(moment)
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
    sender = check_address(alerts.sender)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "defwatch.invalid"
    return {
        "message_id": make_msgid(domain=domain),
        "kind": kind,
        "run_id": run_id,
        "sender": sender,
        "recipients": [check_address(a) for a in recipients],
        "subject": sanitize_header(subject, SUBJECT_CHARS),
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
    title = sanitize_header(_title(event), SUBJECT_TITLE_CHARS)
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
            "summary": clean_text(e["summary"]),
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
        "title": sanitize_header(_title(event), 300),
        "url": _safe_url(event["url"]),
        "summary": clean_text(event["summary"]),
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
    text = " ".join(clean_text(str(value)).split())
    return text if len(text) <= MAX_PARAGRAPH_CHARS else text[: MAX_PARAGRAPH_CHARS - 1] + "…"


def _wrap(paragraph: str, marker: str) -> list[str]:
    """``- old`` / ``+ new`` lines, wrapped for plain-text readers, continuation lines indented."""
    wrapper = TextWrapper(width=78, initial_indent="    " + marker, subsequent_indent="      ",
                          break_long_words=False, break_on_hyphens=False)
    return wrapper.wrap(paragraph) or ["    " + marker.rstrip()]


def _html_paragraphs(old: list[str], new: list[str]) -> list[dict[str, Any]]:
    """Pair old and new paragraphs in order; similar pairs get inline word-level marks (``monitor.diff``)."""
    return [{"cls": para.kind, "segments": para.segments} for para in pair_paragraphs(old, new)]


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
    return sanitize_header(alerts.site_name, 60)


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
        return parse_stamp(stamp or "").astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return stamp or "unknown time"


# --- text safe for a mail ------------------------------------------------------------------


def sanitize_header(text: str | None, limit: int = HEADER_LIMIT) -> str:
    """Make scraped text safe for a header: one line, no control characters, at most ``limit`` chars.

    Collapsing rather than rejecting keeps the alert flowing when a page has a bad title; the
    email package would otherwise raise on a CR/LF, and a raw one would let the page add headers.
    """
    text = unicodedata.normalize("NFC", text or "")
    text = " ".join(_CONTROLS.sub(" ", text).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def clean_text(text: str | None) -> str:
    """Scraped text for a body part: normal newlines, no control characters."""
    text = unicodedata.normalize("NFC", text or "").replace("\r\n", "\n").replace("\r", "\n")
    return _TEXT_CONTROLS.sub(" ", text)


def check_address(address: str) -> str:
    """Refuse a configured address that is empty or could smuggle a header line."""
    if not address or _CONTROLS.search(address) or "@" not in parseaddr(address)[1]:
        raise ValueError(f"not a usable mail address: {address!r}")
    return address
