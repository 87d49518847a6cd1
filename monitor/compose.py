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
from datetime import datetime
from email.utils import make_msgid, parseaddr
from pathlib import Path
from textwrap import TextWrapper
from typing import TYPE_CHECKING, Any

import jinja2
import sqlite_utils

from core.clock import as_utc, stamp
from db import outbox
from monitor import digest
from monitor.diff import pair_paragraphs, shares_words
from monitor.health import OPENING_KINDS

if TYPE_CHECKING:
    from core.config import AlertConfig, SubscriberConfig

HEADER_LIMIT = 200
# C0/C1 controls and the Unicode line/paragraph separators: anything a mail client or a
# header parser could read as a line break.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]+")
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u0085]")

# Only a page taken down gets its own mail; a related link dropping off a page is digest news.
IMMEDIATE_KINDS = ("story_removed", "image_removed")
FIELD_ORDER = ("title", "subtitle", "byline", "published", "body", "images", "captions", "tags")
OPERATOR_LABELS = {
    "crawl_failed": "Crawl failed",
    "crawl_blocked": "Crawl blocked",
    "parser_degraded": "Parser degraded",
    "crawl_unblocked": "Crawl no longer blocked",
    "crawl_recovered": "Crawl recovered",
    "parser_recovered": "Parser healthy again",
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


def queue_test_mail(
    db: sqlite_utils.Database, alerts: AlertConfig, now: datetime | None = None,
    subscribers: Sequence[SubscriberConfig] = (),
) -> list[int]:
    """Queue one test mail per recipient, each saying what that recipient gets; they travel the same
    path as alerts. A mail per address shows which of them work, and lets each reader check their
    own subscription."""
    from monitor.subscribers import describe

    described = {sub.address: describe(sub) for sub in subscribers}
    everything = "Your subscription ({}): every change, after each crawl that finds changes ([alerts] recipients)."
    operator = "You get the operator mails: a crawl blocked or failing, the parser degraded, and their ends."
    roles: dict[str, list[str]] = {}
    for address in alerts.recipients:
        roles.setdefault(address, []).append(everything.format(address))
    for address, text in described.items():
        roles.setdefault(address, []).append(text)
    for address in alerts.operator_recipients:
        roles.setdefault(address, []).append(operator)
    if not roles:
        raise ValueError("no alert recipients configured (set DEFWATCH_ALERT_TO, [[subscribers]] or "
                         "DEFWATCH_OPERATOR_TO)")
    moment = as_utc(now)
    ids = []
    with outbox.write_transaction(db):
        for address, said in roles.items():
            context = {"site_name": alerts.site_name, "queued_at": stamp(moment), "address": address,
                       "roles": said}
            mail = _mail(alerts, "test", None, [address], f"[defwatch] {alerts.site_name}: test mail",
                         _env.get_template("test.txt").render(context), None)
            ids.append(outbox.insert_mail(db, created_at=stamp(moment), **mail))
    return ids


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


def _digest_mail(events: list[dict[str, Any]], alerts: AlertConfig, recipients: Sequence[str] | None = None,
                 note: str | None = None) -> dict[str, Any]:
    """The digest of ``events`` for ``recipients`` (default: ``[alerts] recipients``, who get everything)."""
    entries = digest.group(events)
    seen = digest.period(events)
    subject = f"[defwatch] {_site(alerts)}: {digest.counts(entries)}" + (f" ({seen})" if seen else "")
    heading = f"Changes on {_site(alerts)}" + (f", {seen}" if seen else "")
    context = _digest_context(entries, alerts, heading, intro=None) | {"note": note}
    text, html = _render_pair("digest", context)
    return _mail(alerts, "digest", _single_run(events), recipients or alerts.recipients, subject, text, html)


def _immediate_mail(event: dict[str, Any], alerts: AlertConfig) -> dict[str, Any]:
    what = event["kind"].replace("_", " ")
    title = sanitize_header(_title(event), SUBJECT_TITLE_CHARS)
    seen = digest.period([event])
    subject = f"[defwatch] {_site(alerts)}: {what}: {title}" + (f" ({seen})" if seen else "")
    intro = f"This {what.split()[0]} was confirmed removed. The digest will list it too."
    context = _digest_context(digest.group([event]), alerts, f"{what.capitalize()} on {_site(alerts)}", intro)
    text, html = _render_pair("digest", context | {"note": None})
    return _mail(alerts, "immediate", event["run_id"], alerts.recipients, subject, text, html)


def _operator_mail(events: list[dict[str, Any]], alerts: AlertConfig) -> dict[str, Any]:
    labels = list(dict.fromkeys(OPERATOR_LABELS.get(e["kind"], e["kind"]).lower() for e in events))
    seen = digest.period(events)
    subject = f"[defwatch] {_site(alerts)} operator: {', '.join(labels)}" + (f" ({seen})" if seen else "")
    items = [_operator_item(digest.parse(e)) for e in events]
    problems = sum(e["kind"] in OPENING_KINDS for e in events)
    overview = (f"{problems} problem(s) started" if problems else "") + (
        (", " if problems else "") + f"{len(events) - problems} ended" if len(events) > problems else "")
    context = {
        "site_name": alerts.site_name,
        "heading": f"defwatch {'needs attention' if problems else 'is healthy again'}: {_site(alerts)}",
        "overview": overview.capitalize() + ".",
        "items": items,
    }
    text, html = _render_pair("operator", context)
    return _mail(alerts, "operator", _single_run(events), alerts.operator_recipients, subject, text, html)


def _operator_item(event: dict[str, Any]) -> dict[str, Any]:
    """An operator event as the mail shows it: what happened in numbers, the block page, what to do."""
    details = event["details"]
    share = details.get("share")
    figures = []
    if details.get("http_status"):
        figures.append(f"HTTP status: {details['http_status']}")
    if details.get("requests") is not None and details.get("affected") is not None:
        figures.append(f"Requests affected: {details['affected']} of {details['requests']}"
                       + (f" ({share:.0%})" if isinstance(share, int | float) else ""))
    elif details.get("requests") is not None and details.get("answered") is not None:
        figures.append(f"Requests answered: {details['answered']} of {details['requests']}"
                       + (f" ({share:.0%})" if isinstance(share, int | float) else ""))
    statuses = details.get("statuses") if isinstance(details.get("statuses"), dict) else {}
    if len(statuses) > 1:
        figures.append("Answers: " + ", ".join(f"{n} {what}" for what, n in list(statuses.items())[:6]))
    return {
        "label": OPERATOR_LABELS.get(event["kind"], event["kind"].replace("_", " ").capitalize()),
        "summary": clean_text(event["summary"]),
        "detected_at": digest.when(event["detected_at"]),
        "run_id": event["run_id"],
        "url": _safe_url(event["url"]),
        "figures": figures,
        "page_lines": [sanitize_header(str(line), 200) for line in details.get("page_lines") or []],
        "advice": clean_text(details.get("advice") or ""),
    }


def _render_pair(name: str, context: dict[str, Any]) -> tuple[str, str]:
    return _env.get_template(f"{name}.txt").render(context), _env.get_template(f"{name}.html").render(context)


# --- digest content --------------------------------------------------------------------------


def _digest_context(
    entries: list[digest.Entry], alerts: AlertConfig, heading: str, intro: str | None
) -> dict[str, Any]:
    sections = [
        {
            "kind": kind,
            "label": label,
            "count": len(members),
            "entries": [_item(entry) for entry in members[:MAX_ITEMS_PER_SECTION]],
            "more": max(0, len(members) - MAX_ITEMS_PER_SECTION),
        }
        for kind, label, members in digest.sections(entries)
    ]
    total = sum(len(e.events) + len(e.images) for e in entries)
    return {
        "site_name": alerts.site_name,
        "heading": heading,
        # items as the reader counts them; events as `defwatch changes` lists them (photos included)
        "overview": f"{len(entries)} item(s): {digest.counts(entries)}; {total} change event(s) in all.",
        "intro": intro,
        "sections": sections,
    }


def _item(entry: digest.Entry) -> dict[str, Any]:
    """One story (or photo) as the templates draw it; see ``monitor.digest`` for what each kind shows."""
    first = entry.first
    hidden = digest.hidden_fields(entry)
    diff = {name: ops for e in entry.events for name, ops in e["diff"].items()
            if name not in hidden and name != "related"}
    hunks = _diff_fields(diff)
    removed = next((e for e in entry.events if e["kind"].endswith("_removed") and not e["kind"].startswith("rel")),
                   None)
    new = next((e for e in entry.events if e["kind"] == "story_new"), None)
    opening = None
    if new is not None and new["details"].get("paragraphs"):
        opening = {"label": None, "paragraphs": _paragraphs(new["details"])}
    elif removed is not None and removed["details"].get("paragraphs"):
        version = removed["details"].get("version")
        opening = {"label": "Last archived text" + (f" (version {version})" if version else ""),
                   "paragraphs": _paragraphs(removed["details"])}
    url = _safe_url(first["url"])
    return {
        "title": sanitize_header(_title(first), 300),
        "url": url,
        "what": [line for line in dict.fromkeys(digest.what_line(e) for e in entry.events) if line],
        "subtitle": clean_text(new["details"].get("subtitle") or "") if new else "",
        "detected_at": digest.when(max(e["detected_at"] for e in entry.events)),
        "subject_id": entry.subject_id,
        "subject_type": entry.subject_type,
        "opening": opening,
        "diffs": hunks[0],
        "diff_omitted": hunks[1],
        "related": [{"label": digest.related_label(e), "links": [_link(link) for link in digest.links(e)]}
                    for e in entry.events if e["kind"].startswith("related_")],
        "images": [_image(image) for image in entry.images],
        "show_hint": f"defwatch show {entry.subject_id}" if removed is not None and entry.subject_type == "story"
        else None,
        "wayback": _safe_url(digest.wayback(url)) if removed is not None and url else None,
    }


def _image(event: dict[str, Any]) -> dict[str, Any]:
    """A photo beneath its story: what happened to it, its caption or its caption's diff."""
    details = event["details"]
    hunks = _diff_fields(event["diff"])
    for field in hunks[0]:
        for hunk in field["hunks"]:
            hunk["html_paras"] = _whole_unless_words_shared(hunk["html_paras"])
    caption = details.get("caption") if event["kind"] in ("image_new", "image_removed") else None
    return {
        "title": sanitize_header(event["title"] or details.get("virin") or f"photo {event['subject_id']}",
                                        300),
        "url": _safe_url(event["url"]),
        "what": digest.image_what(event),
        "caption": _paragraph(caption) if caption else None,
        "credit": sanitize_header(details.get("credit") or "", 200),
        "diffs": hunks[0],
    }


def _paragraphs(details: dict[str, Any]) -> list[dict[str, Any]]:
    """Quoted text (an opening, a removed story's last text): wrapped flush, one blank line apart."""
    wrapper = TextWrapper(width=76, initial_indent="  ", subsequent_indent="  ", break_long_words=False,
                          break_on_hyphens=False)
    return [{"text": _paragraph(p), "lines": wrapper.wrap(_paragraph(p))} for p in details.get("paragraphs") or []]


def _link(link: dict[str, Any]) -> dict[str, Any]:
    return {"title": sanitize_header(str(link["title"]), 300), "url": _safe_url(link.get("url"))}


def _diff_fields(raw: str | dict[str, Any] | None) -> tuple[list[dict[str, Any]], int]:
    """The stored field diff as display data, at most MAX_HUNKS_PER_EVENT passages in all."""
    diff = raw if isinstance(raw, dict) else _json(raw, dict)
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


def _whole_unless_words_shared(paras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A photo's caption rewritten outright: old and new whole, not a run-on line of marks."""
    shown = []
    for para in paras:
        before = "".join(text for tag, text in para["segments"] if tag != "ins")
        after = "".join(text for tag, text in para["segments"] if tag != "del")
        if para["cls"] == "changed" and not shares_words(before, after):
            shown += [{"cls": "deleted", "segments": [("del", before)]},
                      {"cls": "inserted", "segments": [("ins", after)]}]
        else:
            shown.append(para)
    return shown


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
