"""Downloader middlewares: stay on the site, ask conditionally, back off when told to.

Scrapy's own middlewares do the rest (robots.txt, retries of 5xx, redirects, decompression with a
size cap). These add what a long-running monitor of a guarded site needs.
"""

from __future__ import annotations

import email.utils
import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from core.urls import MEDIA_HOST, SITE_HOSTS
from crawler.outcomes import BLOCKED_STATUSES

logger = logging.getLogger(__name__)


class SiteOnlyMiddleware:
    """Refuse every request that leaves the watched site, redirects included.

    With ``--site`` pointing elsewhere (the local sample site) only that scheme+host is allowed, so
    such a crawl can never reach the internet even if a page links to www.war.gov. Against the live
    site, its own hosts are allowed (war.gov redirects between them), except media.defense.gov:
    image files are referenced, never downloaded.
    """

    def __init__(self, site: str | None):
        site_hosts = {(scheme, host) for scheme in ("http", "https") for host in SITE_HOSTS - {MEDIA_HOST}}
        parts = urlsplit(site or "")
        if parts.netloc and (parts.hostname or "").lower() not in SITE_HOSTS:
            self.allowed = {(parts.scheme, parts.netloc.lower())}  # a sample site: that host only
        else:
            self.allowed = site_hosts  # the live site may redirect between its own hosts

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SiteOnlyMiddleware:
        return cls(crawler.settings.get("DEFWATCH_SITE"))

    def allows(self, url: str) -> bool:
        """The spider asks too, so an off-site link is dropped before it costs a fetch row."""
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc.lower()) in self.allowed

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        """Every request passes here, including each hop of a redirect (Scrapy re-schedules them)."""
        if not self.allows(request.url):
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
        """The spider reads them, through the run's open archive: a crawl opens the file once."""
        return cls(crawler.spider.validators())

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        key = request.meta.get("subject") or request.meta.get("validator_key")
        if not key or request.meta.get("unconditional"):
            return
        etag, last_modified = self.validators.get(tuple(key), (None, None))
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
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


class BackoffMiddleware:
    """Honour 429/503 Retry-After, and stop pushing at a host that refuses us.

    A 429, or a 503 that says how long to wait, slows the download slot to the wait asked for
    (capped), then retries the request a few times; what still fails reaches the spider and is
    recorded as blocked or error (the spider ends the run on a storm of blocks).

    A bare 503 is left to RetryMiddleware like any 5xx: slowing the whole host for one broken page
    kept every later request of the run at the longest backoff (only a good answer restores the
    slot), turning a run with a few failing pages into minutes of waiting.

    A 401/403/429 also narrows the host to one request at a time: against a bot wall every extra
    request in flight is one more refusal (and one more reason to stay blocked), and it lets a
    block storm end the run after about ``DEFWATCH_BLOCK_STORM`` requests instead of that many
    plus a full window of concurrency. A good answer speeds the slot up again and widens it step by
    step (doubling), and after a rate limit no more than once per wait it asked for: opening the whole
    window at the first good answer sent a burst into each new rate-limit window, refused as a whole,
    until a page had been refused more times than it may be retried. A retried request goes ahead of
    fresh ones for the same reason.

    A crawl also starts with one request in the downloader, until the first answer that is not a
    refusal (robots.txt's, usually). Requests the engine hands over while robots.txt is fetched wait
    inside the downloader, and everything inside it is sent, even after the spider has counted its
    storm and closed: without this, a site refusing from the start (robots.txt too) got a whole
    window of concurrency beyond the storm whenever robots.txt was slow to answer. A healthy crawl
    loses nothing: every request waits for robots.txt anyway, and its answer opens the downloader.
    """

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        settings = crawler.settings
        self.max_wait = settings.getfloat("DEFWATCH_BACKOFF_MAX_SECONDS")
        self.retries = settings.getint("DEFWATCH_BACKOFF_RETRIES")
        self.base_delay = settings.getfloat("DOWNLOAD_DELAY")
        self.narrowed: dict[str, int] = {}  # slot key -> its concurrency before a block narrowed it
        self.widening: dict[str, tuple[float, float]] = {}  # slot key -> (no widening before, then every)
        self.total_concurrency = 0  # the downloader's own limit before a block (or the start) narrowed it
        self.probing = False  # one request in the downloader until the site answers without refusing
        crawler.signals.connect(self._start_probing, signal=signals.spider_opened)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BackoffMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Any:
        status = response.status
        if status in BLOCKED_STATUSES:  # the host refuses this client
            self._narrow_slot(request)
        elif self.probing:  # the first answer, and no refusal: open the downloader
            self._end_probe()
        wait = retry_after_seconds(response.headers.get(b"Retry-After"))
        if status == 429 or (status == 503 and wait is not None):
            retry = self._retry(request, response, wait)
            if retry is not None:
                return retry
            request.meta["dont_retry"] = True  # RetryMiddleware must not retry at once what we gave up on
        elif status < 400 or status in (404, 410):  # the host answers normally again
            self._restore_slot(request)
        return response

    def process_exception(self, request: Request, exception: Exception, spider: Spider | None = None) -> None:
        """No answer at all (a timeout, a reset) is no refusal either: a site that is down must not be
        crawled one request at a time. (A request refused here, off the site, says nothing of the site.)"""
        if self.probing and not isinstance(exception, IgnoreRequest):
            self._end_probe()

    def _retry(self, request: Request, response: Response, wait: float | None) -> Request | None:
        tries = request.meta.get("backoff_tries", 0)
        delay = wait if wait is not None else min(self.max_wait, 2.0 * 2**tries)
        if tries >= self.retries or delay > self.max_wait:
            return None
        self._slow_slot(request, delay)
        logger.info("HTTP %s for %s: waiting %.1fs before retry %d", response.status, request.url, delay, tries + 1)
        # ahead of the fresh requests: when the window reopens, what was refused goes first instead of
        # losing the race to new requests again and running out of retries
        retry = request.replace(dont_filter=True, priority=request.priority + 1)
        retry.meta["backoff_tries"] = tries + 1
        return retry

    def _slot(self, request: Request) -> tuple[str, Any]:
        downloader = self.crawler.engine.downloader if self.crawler.engine else None
        if downloader is None:
            return "", None
        key = downloader.get_slot_key(request)
        return key, downloader.slots.get(key)

    def _slow_slot(self, request: Request, delay: float) -> None:
        key, slot = self._slot(request)
        if slot is not None:
            slot.delay = max(slot.delay, delay)
            slot.jitter = 0.0  # the wait asked for is a floor: no random shortening
            self.widening[key] = (time.monotonic() + delay, delay)

    def _start_probing(self) -> None:
        """One request in the downloader until the first answer that is not a refusal (see the class)."""
        downloader = self.crawler.engine.downloader if self.crawler.engine else None
        if downloader is not None and downloader.total_concurrency > 1:
            self.total_concurrency = self.total_concurrency or downloader.total_concurrency
            downloader.total_concurrency = 1
            self.probing = True

    def _end_probe(self) -> None:
        self.probing = False
        self.crawler.engine.downloader.total_concurrency = self.total_concurrency  # type: ignore[union-attr]

    def _narrow_slot(self, request: Request) -> None:
        """One request at a time to this host, and no more pulled from the scheduler meanwhile.

        Narrowing the slot alone is not enough: the engine keeps up to CONCURRENT_REQUESTS queued
        in the downloader, and a spider that closes on a block storm still sends all of those.
        The crawl only talks to one site, so the downloader's total narrows with the slot.
        """
        self.probing = False  # the site refuses: the downloader stays narrow until a good answer
        key, slot = self._slot(request)
        self.widening.pop(key, None)  # paced anew by this refusal's wait, if it asks for one
        if slot is not None and slot.concurrency > 1:
            self.narrowed.setdefault(key, slot.concurrency)
            slot.concurrency = 1
            downloader = self.crawler.engine.downloader  # type: ignore[union-attr]
            self.total_concurrency = self.total_concurrency or downloader.total_concurrency
            downloader.total_concurrency = 1

    def _restore_slot(self, request: Request) -> None:
        """Halve a slowed slot's delay on each good response, back to the configured delay; widen it."""
        key, slot = self._slot(request)
        if slot is None:
            return
        if slot.delay > self.base_delay:
            slot.delay = max(self.base_delay, slot.delay / 2)
        downloader = self.crawler.engine.downloader  # type: ignore[union-attr]
        if key in self.narrowed:  # a refusal narrowed it: widen step by step, not back to a burst at once
            not_before, every = self.widening.get(key, (0.0, 0.0))
            now = time.monotonic()
            if now < not_before:  # a rate limit's window: as wide as it is until the window has passed
                return
            self.widening[key] = (now + every, every)
            full = self.narrowed[key]
            slot.concurrency = min(full, slot.concurrency * 2)
            if slot.concurrency >= full:
                del self.narrowed[key]
                self.widening.pop(key, None)
            if self.total_concurrency:
                downloader.total_concurrency = min(self.total_concurrency, max(slot.concurrency,
                                                                               downloader.total_concurrency * 2))
        elif self.total_concurrency:  # narrowed since the start only: the site answers, open the downloader
            downloader.total_concurrency = self.total_concurrency


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
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)
