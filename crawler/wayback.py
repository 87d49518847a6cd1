"""A polite client of the Wayback Machine: its CDX API lists captures, ``id_`` URLs return them raw.

``{url}/web/{timestamp}id_/{original}`` answers the capture as it was received (no rewritten links,
no banner), which is what the parsers must read. The same layout is served by pywb for a collection
named ``web``, so tests point ``wayback.url`` and ``wayback.cdx_url`` at a pywb on 127.0.0.1.

Politeness: one request at a time, ``wayback.delay`` seconds apart, defwatch's User-Agent, and a
429 or 5xx is retried after its ``Retry-After`` (at most ``wayback.max_wait``) up to
``wayback.retries`` tries; then the import stops with ``WaybackError`` and, having committed every
capture it stored, resumes where it stopped when run again.

CDX answers come in two JSON shapes: the Internet Archive's array of rows under a header row, and
pywb's one object per line. Both are read.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from crawler.warc_import import Capture

if TYPE_CHECKING:
    from core.config import WaybackConfig

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
IMPORTED_STATUSES = frozenset({200, 404, 410})  # content, or the evidence of its removal


class WaybackError(RuntimeError):
    """The Wayback service failed, refused or rate-limited us past the retries; one line."""

    def __init__(self, message: str, *, rate_limited: bool = False):
        super().__init__(message)
        self.rate_limited = rate_limited


@dataclass(frozen=True, order=True)
class CdxRow:
    """One capture the CDX API lists."""

    timestamp: str  # YYYYMMDDhhmmss
    original: str
    status: int | None
    digest: str | None = None
    mimetype: str | None = None

    @property
    def captured_at(self) -> str:
        moment = datetime.strptime(self.timestamp[:14].ljust(14, "0"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    @property
    def key(self) -> str:
        """The capture's identity in ``fetches.source_key``: an import resumes by skipping these."""
        return f"wayback:{self.timestamp}:{self.original}"


@dataclass(frozen=True)
class CdxQuery:
    url: str
    match_type: str = "exact"  # exact | prefix


class WaybackClient:
    def __init__(self, config: WaybackConfig, user_agent: str,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.user_agent = user_agent
        self.sleep, self.clock = sleep, clock
        self.last_request: float | None = None
        self.requests = 0

    # -- CDX ------------------------------------------------------------------------------------

    def captures(self, query: CdxQuery, date_from: str | None, date_to: str | None, limit: int) -> list[CdxRow]:
        # No ``fl``: the IA and pywb name fields differently; both default to every field.
        params = {"url": query.url, "matchType": query.match_type, "output": "json"}
        params |= {k: v for k, v in (("from", date_from), ("to", date_to)) if v}
        if limit:
            params["limit"] = str(limit)
        status, _, body = self._get(f"{self.config.cdx}?{urlencode(params)}", what="the CDX API")
        if status == 404:  # pywb and the IA answer 404 for a URL they hold nothing of
            return []
        if status != 200:
            raise WaybackError(f"the CDX API {self.config.cdx} answered HTTP {status} for {query.url}")
        return parse_cdx(body, self.config.cdx)

    # -- captures -------------------------------------------------------------------------------

    def capture(self, row: CdxRow) -> Capture:
        """The raw capture (``id_``) of a CDX row, dated by its timestamp."""
        url = self.capture_url(row)
        status, headers, body = self._get(url, what="a capture")
        memento = _header(headers, "Memento-Datetime")
        if memento is None:  # a Wayback error page, not the capture (both the IA and pywb date captures)
            raise WaybackError(f"{url} answered HTTP {status} without a capture (no Memento-Datetime)")
        return Capture(
            uri=row.original, captured_at=_memento_time(memento) or row.captured_at, status=row.status or status,
            headers=_original_headers(headers), body=body or None, source="wayback", source_ref=url,
            source_key=row.key,
        )

    def capture_url(self, row: CdxRow) -> str:
        return f"{self.config.url}/web/{row.timestamp}id_/{row.original}"

    # -- HTTP -----------------------------------------------------------------------------------

    def _get(self, url: str, *, what: str) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in range(1, self.config.retries + 1):
            self._wait_turn()
            try:
                status, headers, body = self._request(url)
            except OSError as exc:
                if attempt == self.config.retries:
                    raise WaybackError(f"{what} at {_origin(url)} could not be reached: {_reason(exc)}") from exc
                self.sleep(min(self.config.max_wait, self.config.delay * 2 ** attempt))
                continue
            if status not in RETRIED_STATUSES:
                return status, headers, body
            if attempt == self.config.retries:
                limited = status == 429
                raise WaybackError(
                    f"{what} at {_origin(url)} answered HTTP {status}"
                    + (" (rate limited)" if limited else "") + f" {attempt} times", rate_limited=limited)
            self.sleep(self._retry_after(headers, attempt))
        raise AssertionError("unreachable")

    def _request(self, url: str) -> tuple[int, list[tuple[str, str]], bytes]:
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent})
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:  # noqa: S310
                return response.status, list(response.headers.items()), response.read()
        except urllib.error.HTTPError as exc:  # 4xx/5xx still carry headers and a body
            with exc:
                return exc.code, list(exc.headers.items()), exc.read()

    def _wait_turn(self) -> None:
        now = self.clock()
        if self.last_request is not None:
            wait = self.config.delay - (now - self.last_request)
            if wait > 0:
                self.sleep(wait)
        self.last_request = self.clock()
        self.requests += 1

    def _retry_after(self, headers: list[tuple[str, str]], attempt: int) -> float:
        value = _header(headers, "Retry-After")
        seconds = None
        if value and value.strip().isdigit():
            seconds = float(value.strip())
        elif value:
            try:
                seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                seconds = None
        if seconds is None:
            seconds = self.config.delay * 2 ** attempt
        return max(0.0, min(self.config.max_wait, seconds))


def parse_cdx(body: bytes, source: str) -> list[CdxRow]:
    """CDX JSON in either shape: ``[[header...], [row...], ...]`` (IA) or one object per line (pywb)."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return []
    try:
        if text.startswith("["):
            table = json.loads(text)
            if not table:
                return []
            header, *rows = table
            return [_row(dict(zip(header, row, strict=False))) for row in rows]
        return [_row(json.loads(line)) for line in text.splitlines() if line.strip()]
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise WaybackError(f"the CDX API {source} answered something that is not CDX JSON: {text[:80]!r}") from exc


def _row(fields: dict) -> CdxRow:
    status = fields.get("statuscode") or fields.get("status")
    return CdxRow(
        timestamp=str(fields["timestamp"]), original=fields.get("original") or fields["url"],
        status=int(status) if status and str(status).isdigit() else None,
        digest=fields.get("digest"), mimetype=fields.get("mimetype") or fields.get("mime"),
    )


def _original_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The capture's own headers: the IA prefixes them ``X-Archive-Orig-``; pywb's id_ passes them."""
    prefixed = [(name[len("x-archive-orig-"):], value) for name, value in headers
                if name.lower().startswith("x-archive-orig-")]
    return prefixed or headers


def _memento_time(value: str) -> str | None:
    try:
        return parsedate_to_datetime(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (TypeError, ValueError):
        return None


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    lowered = name.lower()
    return next((value for key, value in headers if key.lower() == lowered), None)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _reason(exc: OSError) -> str:
    reason = getattr(exc, "reason", None) or exc.strerror or exc
    return str(reason)
