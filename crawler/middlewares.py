"""Downloader middlewares: stay on the site, ask conditionally, back off when told to.

Scrapy's own middlewares do the rest (robots.txt, retries of 5xx, redirects, decompression with a
size cap). These add what a long-running monitor of a guarded site needs.
"""

from __future__ import annotations

import email.utils
import logging
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawler.urls import MEDIA_HOST, SITE_HOSTS
from db.archive import Archive

logger = logging.getLogger(__name__)


class SiteOnlyMiddleware:
    """Refuse every request that leaves the watched site, redirects included.

    With ``--site`` only that scheme+host is allowed, so a crawl of the local sample site can never
    reach the internet even if a page links to www.war.gov. Without it, the site's own hosts are
    allowed, except media.defense.gov: image files are referenced, never downloaded.
    """

    def __init__(self, site: str | None):
        if site:
            parts = urlsplit(site)
            self.allowed = {(parts.scheme, parts.netloc.lower())}
        else:
            self.allowed = {(scheme, host) for scheme in ("http", "https") for host in SITE_HOSTS - {MEDIA_HOST}}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SiteOnlyMiddleware:
        return cls(crawler.settings.get("DEFWATCH_SITE"))

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        parts = urlsplit(request.url)
        if (parts.scheme, parts.netloc.lower()) not in self.allowed:
            raise IgnoreRequest(f"off-site request refused: {request.url}")


class ConditionalGetMiddleware:
    """Send If-None-Match / If-Modified-Since from the validators of the stored version.

    Validators are only kept for versions the archive holds, so a 304 always means "the version we
    have is current". ``meta['subject'] = (page_type, id)`` names the page; ``meta['unconditional']``
    asks for the full body (used when a re-parse needs it).
    """

    def __init__(self, validators: dict[tuple[str, int], tuple[str | None, str | None]]):
        self.validators = validators

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ConditionalGetMiddleware:
        archive = Archive.open(crawler.settings.get("DEFWATCH_DB"))
        try:
            return cls(archive.validators())
        finally:
            archive.close()

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        subject = request.meta.get("subject")
        if not subject or request.meta.get("unconditional"):
            return
        etag, last_modified = self.validators.get(tuple(subject), (None, None))
        if etag:
            request.headers.setdefault(b"If-None-Match", etag.encode("latin-1"))
        if last_modified:
            request.headers.setdefault(b"If-Modified-Since", last_modified.encode("latin-1"))


def retry_after_seconds(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


class BackoffMiddleware:
    """Honour 429/503 Retry-After and slow the host down.

    A 429 or 503 slows the download slot to the wait asked for (capped), then retries the request a
    few times; what still fails reaches the spider and is recorded as blocked or error (the spider
    ends the run on a storm of blocks).
    """

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        settings = crawler.settings
        self.max_wait = settings.getfloat("DEFWATCH_BACKOFF_MAX_SECONDS")
        self.retries = settings.getint("DEFWATCH_BACKOFF_RETRIES")
        self.base_delay = settings.getfloat("DOWNLOAD_DELAY")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BackoffMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Any:
        if response.status in (429, 503):
            wait = retry_after_seconds(response.headers.get(b"Retry-After"))
            retry = self._retry(request, response, wait)
            if retry is not None:
                return retry
        elif response.status < 400:
            self._restore_slot(request)
        return response

    def _retry(self, request: Request, response: Response, wait: float | None) -> Request | None:
        tries = request.meta.get("backoff_tries", 0)
        delay = wait if wait is not None else min(self.max_wait, 2.0 * 2**tries)
        if tries >= self.retries or delay > self.max_wait:
            return None
        self._slow_slot(request, delay)
        logger.info("HTTP %s for %s: waiting %.1fs before retry %d", response.status, request.url, delay, tries + 1)
        retry = request.replace(dont_filter=True)
        retry.meta["backoff_tries"] = tries + 1
        return retry

    def _slow_slot(self, request: Request, delay: float) -> None:
        downloader = self.crawler.engine.downloader if self.crawler.engine else None
        if downloader is None:
            return
        slot = downloader.slots.get(downloader.get_slot_key(request))
        if slot is not None:
            slot.delay = max(slot.delay, delay)
            slot.randomize_delay = False

    def _restore_slot(self, request: Request) -> None:
        """Halve a slowed slot's delay on each good response, back to the configured delay."""
        downloader = self.crawler.engine.downloader if self.crawler.engine else None
        if downloader is None:
            return
        slot = downloader.slots.get(downloader.get_slot_key(request))
        if slot is not None and slot.delay > self.base_delay:
            slot.delay = max(self.base_delay, slot.delay / 2)


class ElapsedMiddleware:
    """Stamp each request with its start time so fetches record how long they took."""

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        request.meta.setdefault("started_at", time.monotonic())

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Response:
        started = request.meta.get("started_at")
        if started is not None:
            request.meta["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        return response


def http_date(moment: datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(timezone.utc), usegmt=True)
