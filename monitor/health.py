"""Run health as operator events: raised when a problem starts, and once more when it ends.

An operator reads these mails to act, so each one says what happened in numbers (the HTTP status,
the share of requests affected, the first lines of a block page) and what to do about it. A problem
that persists over many runs is one event, the run that started it, not one per run: a blocked
daemon crawling every 30 minutes would otherwise mail the operator 48 times a day with nothing new.
The end of a problem is news too (``crawl_unblocked``, ``crawl_recovered``, ``parser_recovered``),
but only on a run that shows it: a crawl stopped after two pages proves nothing either way.

Each event's ``details`` column holds the figures the mail shows, so the mail and
``defwatch changes --json`` read the same numbers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import lxml.etree
import lxml.html
import sqlite_utils

from core.fetch import GOOD_OUTCOMES
from db.events import held_event_count, problem_open_since
from db.runs import fetch_counts, fetch_statuses, first_refusal, run_end_time

if TYPE_CHECKING:
    from core.config import MonitorConfig
    from monitor.changes import Detection

logger = logging.getLogger(__name__)

OPENING_KINDS = ("crawl_failed", "crawl_blocked", "parser_degraded")
CLOSING_KINDS = ("crawl_unblocked", "crawl_recovered", "parser_recovered")
PROBLEM_EVENTS = {  # problem -> the event that opens it and the one that closes it
    "blocked": ("crawl_blocked", "crawl_unblocked"),
    "failed": ("crawl_failed", "crawl_recovered"),
    "degraded": ("parser_degraded", "parser_recovered"),
}
# Fewer story pages than this in a run say nothing about parser health or blocking.
MIN_PAGES_FOR_HEALTH = 3
BLOCK_PAGE_LINES = 6
GOOD = GOOD_OUTCOMES

FINISH_REASONS = {
    "archive_writer_failed": "the archive writer failed (a full disk or a read-only archive?); see the log",
    "blocked": "the site refused request after request, so the crawl stopped early",
    "closespider_timeout": "the crawl hit its time limit",
    "cancelled": "the crawl was cancelled",
    "unknown": "the crawl ended without saying why",
}

BLOCK_ADVICE = (
    "Nothing is recorded as changed or removed while the site refuses requests. Run `defwatch doctor` to see "
    "which transport the site lets in; if a browser-like one gets through, set transport = \"impersonate\" in "
    "[crawl]. Make sure [crawl] user_agent names a contact that works, and slow down with [crawl] "
    "download_delay and concurrency_per_host."
)
RATE_ADVICE = (
    "The site is rate-limiting defwatch (HTTP 429). Raise [crawl] download_delay or lower "
    "concurrency_per_host, or space the [[jobs]] further apart."
)
FAIL_ADVICE = (
    "Check that the site answers from this machine (`defwatch doctor --site URL`), its DNS and any proxy. "
    "Nothing is recorded as removed while requests fail; the next scheduled run tries again."
)
DEGRADED_ADVICE = (
    "The site's markup has probably changed. Save a failing page and run `defwatch parse FILE` to see what the "
    "parser makes of it; the run's fetches with parse_status 'parse_error' name the reason. Subscriber alerts "
    "of affected runs are held and go out once the parser recovers."
)


def health_events(
    db: sqlite_utils.Database, run_id: int, policy: MonitorConfig, finish_reason: str, detection: Detection
) -> list[dict[str, Any]]:
    """The run's operator events; sets ``detection.blocked/failed/degraded`` from what the run saw.

    Call before held subscriber events are released: ``parser_recovered`` counts what it releases.
    """
    counts = fetch_counts(db, run_id)
    detection.blocked = _blocked(counts, policy, finish_reason)
    detection.failed = _failed(counts, finish_reason, detection.blocked)
    detection.degraded = degraded(counts, policy)
    open_problems = open_health_problems(db, before=run_id)
    now_state = {"blocked": detection.blocked, "failed": detection.failed, "degraded": detection.degraded}
    events = []
    for problem, present in now_state.items():
        opened = open_problems.get(problem)
        if present and opened:
            logger.info("run %s: still %s (since run %s): no new operator event", run_id, problem, opened["run_id"])
        elif present:
            events.append(_OPENERS[problem](db, run_id, counts, finish_reason))
        elif opened and _shows_recovery(problem, counts, policy, detection):
            events.append(_closing_event(db, problem, run_id, counts, opened))
    return events


def open_health_problems(db: sqlite_utils.Database, *, before: int) -> dict[str, dict[str, Any]]:
    """Each run-health problem whose latest event before run ``before`` opened it, with the run that
    opened it.

    A problem stays open until an event closes it, however many inconclusive runs (a crawl stopped
    after two pages) fall in between: the operator hears of the block once and of its end once.
    """
    problems = {}
    for problem, (opened_by, closed_by) in PROBLEM_EVENTS.items():
        opened = problem_open_since(db, opened_by, closed_by, before=before)
        if opened:
            problems[problem] = opened
    return problems


def degraded(counts: dict[str, int], policy: MonitorConfig) -> bool:
    if counts["story_ok"] < MIN_PAGES_FOR_HEALTH:
        return False
    return counts["story_parsed"] / counts["story_ok"] < policy.parser_health_threshold


def healthy(counts: dict[str, int], policy: MonitorConfig) -> bool:
    """Enough story pages answered, and those that sent a body parsed: held alerts may go out.

    A 304 counts as a healthy answer: it says the page still matches a version that parsed well.
    """
    answered = counts["story_ok"] + counts["story_not_modified"]
    return answered >= MIN_PAGES_FOR_HEALTH and not degraded(counts, policy)


def _blocked(counts: dict[str, int], policy: MonitorConfig, finish_reason: str) -> bool:
    blocked = counts.get("blocked", 0)
    return finish_reason == "blocked" or (
        counts["total"] >= MIN_PAGES_FOR_HEALTH and blocked / counts["total"] >= policy.block_threshold
    )


def _failed(counts: dict[str, int], finish_reason: str, blocked: bool) -> bool:
    if finish_reason not in ("finished", "closespider_pagecount", "blocked", "shutdown"):
        return True
    return bool(counts["total"]) and not _good(counts) and not blocked


def _good(counts: dict[str, int]) -> int:
    return sum(counts.get(outcome, 0) for outcome in GOOD)


def _shows_recovery(problem: str, counts: dict[str, int], policy: MonitorConfig, detection: Detection) -> bool:
    if problem == "degraded":
        return healthy(counts, policy)
    if problem == "failed" and detection.blocked:
        return False  # reaching a block page is not a recovered crawl
    return _good(counts) >= MIN_PAGES_FOR_HEALTH


# -- opening events ---------------------------------------------------------------------------------


def _blocked_event(db: sqlite_utils.Database, run_id: int, counts: dict[str, int], _reason: str) -> dict[str, Any]:
    refused, total = counts.get("blocked", 0), counts["total"]
    status, why, body = first_refusal(db, run_id)
    statuses = fetch_statuses(db, run_id, ("blocked",))
    how = f"HTTP {status}" if status else "a block page"
    summary = f"Blocked: {refused} of {total} requests ({_share(refused, total)}) refused with {how}" + (
        f" ({why.replace('_', ' ')})" if why and why != f"HTTP {status}" else "")
    details = {
        "http_status": status, "affected": refused, "requests": total, "share": _ratio(refused, total),
        "statuses": statuses, "block_reason": why, "page_lines": block_page_lines(body),
        "advice": RATE_ADVICE if status == 429 else BLOCK_ADVICE,
    }
    return _event("crawl_blocked", run_id, summary, details)


def _failed_event(db: sqlite_utils.Database, run_id: int, counts: dict[str, int], reason: str) -> dict[str, Any]:
    total, good = counts["total"], _good(counts)
    failed = total - good
    statuses = fetch_statuses(db, run_id, ("error", "blocked"))
    worst = ", ".join(f"{n} {what}" for what, n in list(statuses.items())[:4])
    if reason in ("finished", "closespider_pagecount", "shutdown"):
        why = f"no request of {total} got an answer" + (f" ({worst})" if worst else "")
    else:
        why = FINISH_REASONS.get(reason, f"the crawl ended with {reason.replace('_', ' ')}")
        why += f"; {good} of {total} requests answered" + (f" ({worst} failed)" if worst else "")
    status = _first_http_status(statuses)
    details = {
        "http_status": status, "affected": failed, "requests": total, "share": _ratio(failed, total),
        "statuses": statuses, "finish_reason": reason, "advice": FAIL_ADVICE,
    }
    return _event("crawl_failed", run_id, f"Crawl failed: {why}", details)


def _degraded_event(db: sqlite_utils.Database, run_id: int, counts: dict[str, int], _reason: str) -> dict[str, Any]:
    parsed, ok = counts["story_parsed"], counts["story_ok"]
    generic = counts.get("story_generic", 0)
    summary = (f"Parser degraded: {parsed} of {ok} story pages parsed ({_share(parsed, ok)})"
               + (f", {generic} read only by the generic extractor (template gone?)" if generic else "")
               + "; subscriber alerts held")
    details = {
        "http_status": 200, "affected": ok - parsed, "requests": ok, "share": _ratio(ok - parsed, ok),
        "generic": generic, "statuses": fetch_statuses(db, run_id, ("ok",)), "advice": DEGRADED_ADVICE,
    }
    return _event("parser_degraded", run_id, summary, details)


_OPENERS = {"blocked": _blocked_event, "failed": _failed_event, "degraded": _degraded_event}


# -- closing events ---------------------------------------------------------------------------------


def _closing_event(
    db: sqlite_utils.Database, problem: str, run_id: int, counts: dict[str, int], opened: dict[str, Any]
) -> dict[str, Any]:
    since = f"since run {opened['run_id']} ({(run_end_time(db, opened['run_id']) or '?')[:16].replace('T', ' ')})"
    total, good = counts["total"], _good(counts)
    details: dict[str, Any] = {"since_run": opened["run_id"], "requests": total, "answered": good,
                               "share": _ratio(good, total)}
    if problem == "degraded":
        unchanged = counts["story_not_modified"]  # a 304 stands for a version that parsed
        parsed, pages = counts["story_parsed"] + unchanged, counts["story_ok"] + unchanged
        held = held_event_count(db)
        details |= {"parsed": parsed, "story_pages": pages, "released": held}
        summary = (f"Parser healthy again: {parsed} of {pages} story pages parsed or unchanged "
                   f"({_share(parsed, pages)}), degraded {since}; {held} held subscriber alert(s) released")
        return _event("parser_recovered", run_id, summary, details)
    kind, what = ("crawl_unblocked", "no longer blocked") if problem == "blocked" else ("crawl_recovered", "recovered")
    summary = f"Crawl {what}: {good} of {total} requests answered ({_share(good, total)}), {problem} {since}"
    return _event(kind, run_id, summary, details)


# -- helpers ----------------------------------------------------------------------------------------


def block_page_lines(body: bytes | None, limit: int = BLOCK_PAGE_LINES) -> list[str]:
    """The first lines of text a browser would show for a block page (markup and entities resolved)."""
    if not body or not body.strip():
        return []
    try:
        root = lxml.html.document_fromstring(body)
    except (ValueError, lxml.etree.ParserError):
        return []
    for junk in root.xpath("//script|//style|//head"):
        junk.drop_tree()
    lines = [" ".join(line.split()) for line in root.text_content().splitlines()]
    return [line[:200] for line in lines if line][:limit]


def _first_http_status(statuses: dict[str, int]) -> int | None:
    for what in statuses:
        if what.startswith("HTTP ") and what[5:].isdigit():
            return int(what[5:])
    return None


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "0%"


def _event(kind: str, run_id: int, summary: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "subject_type": "run", "subject_id": run_id, "summary": summary,
            "details": details, "audience": "operator"}
