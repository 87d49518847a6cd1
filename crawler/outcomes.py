"""Classify a response before anything is parsed or stored.

A block page, a rate limit or a server error is never content: these outcomes keep such responses
out of the versions, and the monitor never reads a removal into them. Only 404 and 410 can start a
removal, and only a parsed 200 can make a version.

An empty 200 is an ``error``, not ``blocked``: nothing says the site refused us (a broken origin or
cache sends those), and counting it as a block would raise ``crawl_blocked`` for an outage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawler.parsers import detect_block
from crawler.parsers.block import EMPTY

if TYPE_CHECKING:
    from collections import Counter

    from core.fetch import FetchInfo, SaveResult

BLOCKED_STATUSES = frozenset({401, 403, 429})


def classify(status: int, headers: dict[str, str], body: bytes) -> tuple[str, str | None]:
    """Return ``(outcome, reason)`` for an HTTP response."""
    if status == 304:
        return "not_modified", None
    if 300 <= status < 400:  # a redirect Scrapy did not follow (no Location, 300 Multiple Choices): not content
        return "error", f"HTTP {status}"
    if status == 404:
        return "not_found", None
    if status == 410:
        return "gone", None
    if status in BLOCKED_STATUSES:
        return "blocked", detect_block(status, headers, body) or f"HTTP {status}"
    if status >= 500:
        return "error", f"HTTP {status}"
    if status >= 400 or status < 200:
        return "error", f"HTTP {status}"
    reason = detect_block(status, headers, body)
    if reason == EMPTY:
        return "error", "empty body"
    if reason:
        return "blocked", reason
    return "ok", None


def count_result(counts: Counter[str], fetch: FetchInfo, record_type: str | None, result: SaveResult) -> None:
    """Add one stored response to a run's counters (``defwatch/<key>`` in the crawl's stats).

    The single-process pipeline and the distributed writer both call this, so a run's summary
    (pages, outcomes, new versions, parse errors) reads the same however the run was crawled.
    ``record_type`` is the parsed record's type (``error`` for a page that did not parse), or None.
    """
    page_type = fetch.page_type or "other"
    counts["fetches"] += 1
    counts[f"outcome/{fetch.outcome}"] += 1
    counts[f"pages/{page_type}"] += 1
    if record_type == "error":
        counts[f"parse_errors/{page_type}"] += 1
    if result.new_version:
        counts[f"new_versions/{page_type}"] += 1
    if result.new_subject:
        counts[f"new/{page_type}"] += 1
