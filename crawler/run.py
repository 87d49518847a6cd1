"""Run one crawl of the site into the archive, in this process.

Twisted's reactor cannot be restarted, so a process runs at most one crawl; the daemon starts each
crawl in a child process (``python -m defwatch crawl``).

Stopping (SIGTERM from the daemon, Ctrl-C): Scrapy's graceful stop waits for every download in
flight, its retries and the requests queued behind a download delay or a ``Retry-After`` backoff.
Against a host that accepts connections and never answers that is ``DOWNLOAD_TIMEOUT`` per attempt
(minutes), long past the daemon's kill timeout. So a stop here is Scrapy's graceful stop plus a
deadline: downloads still running ``DEFWATCH_SHUTDOWN_GRACE`` seconds after the signal (at once
on a second signal) are cut, and what they would have been is dropped, never stored as an error.
Everything already answered is stored and committed as in any run; the run ends ``shutdown``
(``interrupted``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.exceptions import DropItem, IgnoreRequest
from scrapy.http import Response
from scrapy.settings import Settings
from scrapy.settings.default_settings import DEFAULT_REQUEST_HEADERS as SCRAPY_DEFAULT_HEADERS
from scrapy.utils.asyncio import is_asyncio_available
from twisted.internet import task
from twisted.python.failure import Failure

from core.config import Config, ConfigError
from crawler import settings as default_settings
from crawler.gc_tuning import crawl_gc
from crawler.spiders.site import SiteSpider

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE = 2.0  # seconds downloads in flight get to finish after a stop signal
_HANDLER = "crawler.run.StoppableHTTPDownloadHandler"
CUT_DOWNLOADS = object()  # crawler signal: end every download in flight, refuse new ones


@dataclass
class CrawlResult:
    finish_reason: str
    stats: dict[str, Any] = field(default_factory=dict)


def is_local(site: str) -> bool:
    host = urlsplit(site).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_settings(
    *, db_path: str, site: str, run_id: int, polite: bool = True, overrides: dict[str, Any] | None = None
) -> Settings:
    """Project settings, relaxed for a local site, plus the run's own values."""
    settings = Settings()
    settings.setmodule(default_settings, priority="project")
    if not polite or is_local(site):
        settings.setdict(default_settings.local_overrides(), priority="project")
    settings.setdict(_stoppable(settings), priority="project")
    settings.setdict({"DEFWATCH_DB": db_path, "DEFWATCH_SITE": site, "DEFWATCH_RUN_ID": run_id}, priority="cmdline")
    settings.setdict(overrides or {}, priority="cmdline")
    return settings


def crawl_settings(config: Config, run_id: int, overrides: dict[str, Any] | None = None) -> Settings:
    """Scrapy settings for a run of ``config``: shared by ``defwatch crawl`` and distributed workers."""
    values = crawl_politeness(config) | transport_values(config)
    values["LOG_LEVEL"] = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    return build_settings(
        db_path=config.db, site=config.site, run_id=run_id, polite=config.crawl.polite,
        overrides=values | (overrides or {}),
    )


def crawl_politeness(config: Config) -> dict[str, Any]:
    """The configured User-Agent, caps, timeout and (for the live site) per-host pace: every request
    to the site is made with these, the crawl's and ``defwatch doctor``'s alike."""
    crawl = config.crawl
    values: dict[str, Any] = {
        "USER_AGENT": crawl.user_agent,
        "DOWNLOAD_MAXSIZE": crawl.max_response_bytes,
        "DOWNLOAD_TIMEOUT": crawl.timeout,  # not a politeness setting: it applies to local sites too
    }
    if crawl.polite and not is_local(config.site):
        values |= {"CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrency_per_host, "DOWNLOAD_DELAY": crawl.download_delay}
    return values


def transport_values(config: Config, transport: str | None = None) -> dict[str, Any]:
    """The settings of the configured transport (or ``transport``), and the operator's ``From`` header.

    A certificate is verified on the live site; a site on this machine (the sample site over HTTPS)
    has a self-signed one, and Scrapy's own client verifies none, so the two transports agree there."""
    from crawler.transport import impersonate_problem, transport_settings

    chosen = transport or config.crawl.transport
    if chosen == "impersonate" and (problem := impersonate_problem()) is not None:
        raise ConfigError(f"crawl.transport = \"impersonate\": {problem}")
    values = transport_settings(chosen, config.crawl.impersonate, verify_tls=not is_local(config.site))
    if config.crawl.contact:
        values["DEFAULT_REQUEST_HEADERS"] = dict(SCRAPY_DEFAULT_HEADERS) | {"From": config.crawl.contact}
    return values


def _stoppable(settings: Settings) -> dict[str, Any]:
    """The download handler a stop can cut, and the pipeline that drops what it cut."""
    pipelines = settings.getdict("ITEM_PIPELINES") | {"crawler.run.DropCutDownloads": 100}
    return {"DOWNLOAD_HANDLERS": {"http": _HANDLER, "https": _HANDLER}, "ITEM_PIPELINES": pipelines}


def run_crawl(settings: Settings, spider_cls: type[Spider] = SiteSpider, *, stop: StopSignals | None = None,
              **spider_args: Any) -> CrawlResult:
    """Crawl until done (or stopped by a signal, a page cap or a block storm) and return Scrapy's stats.

    ``spider_cls`` lets the distributed worker run its frontier-sharing subclass the same way.
    ``stop`` is the caller's signal handling when it spans more than the crawl (``run_once``);
    without it, SIGTERM/SIGINT are handled for the crawl's duration.
    """
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")  # the CLI owns the log handlers
    process = CrawlerProcess(settings)
    _quiet_scrapy(settings.get("LOG_LEVEL"))
    crawler = process.create_crawler(spider_cls)
    stopper = PromptStop(process, crawler, settings.getfloat("DEFWATCH_SHUTDOWN_GRACE", SHUTDOWN_GRACE))
    with nullcontext(stop) if stop is not None else StopSignals() as signals_:
        process.crawl(crawler, **spider_args)  # installs the reactor the listener schedules on
        signals_.listen(stopper.on_signal)
        try:
            with crawl_gc():
                process.start(install_signal_handlers=False)  # ours (StopSignals) replace Scrapy's
        finally:
            signals_.listen(None)
    stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
    reason = str(stats.get("finish_reason", "unknown"))
    if stats.get("defwatch/archiver_exit"):  # the writer failed its last commit (a full disk): pages were lost
        reason = "archive_writer_failed"
    return CrawlResult(reason, {k: _plain(v) for k, v in stats.items()})


def _quiet_scrapy(level: str) -> None:
    """Scrapy's logging setup resets its loggers to DEBUG; keep them at the run's LOG_LEVEL."""
    for name in ("scrapy", "twisted", "py.warnings"):
        logging.getLogger(name).setLevel(level)


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool | type(None)) else str(value)


# -- stopping -------------------------------------------------------------------------------------


class StopSignals:
    """SIGTERM and SIGINT as a request to stop, for as long as the context lasts.

    The handler only records the signal and tells the listener (the running crawl's ``PromptStop``),
    so a signal that arrives before the crawl starts or after it ended still stops the run cleanly
    instead of killing the process between two statements. Installed only on the main thread
    (Python allows no other); elsewhere the context does nothing.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: list[str] = []
        self._listener: Callable[[int], None] | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}

    def listen(self, listener: Callable[[int], None] | None) -> None:
        """Call ``listener(count)`` on each signal from now on; at once if one came already."""
        self._listener = listener
        if listener is not None and self.received:
            listener(len(self.received))

    def _handle(self, signum: int, _frame: object) -> None:
        self.received.append(signal.Signals(signum).name)  # no logging here: not safe in a handler
        if self._listener is not None:
            self._listener(len(self.received))


class PromptStop:
    """Scrapy's graceful stop with a deadline: downloads in flight get ``grace`` seconds, then are cut.

    A second signal cuts them at once. Cutting goes through the ``CUT_DOWNLOADS`` signal (the HTTP
    handler cancels its transfers and refuses new ones) and fails the requests waiting in the
    downloader's slots (download delay, ``Retry-After`` backoff), until the crawl has closed.
    """

    def __init__(self, process: CrawlerProcess, crawler: Crawler, grace: float) -> None:
        self.process = process
        self.crawler = crawler
        self.grace = grace
        self.stop_requested = False
        self.cutting = False
        self._sweeper: task.LoopingCall | None = None

    def on_signal(self, count: int) -> None:
        """Runs in the signal handler: hand the work to the reactor thread, do nothing else."""
        from twisted.internet import reactor

        if not self.stop_requested:  # two signals may have come before the crawl listened
            self.stop_requested = True
            reactor.callFromThread(self._stop)
        if count > 1:
            reactor.callFromThread(self._cut_now)

    def _stop(self) -> None:
        from twisted.internet import reactor

        logger.warning("stop requested: finishing the crawl; downloads still running in %gs are cut", self.grace)
        self._stop_engine()
        reactor.callLater(self.grace, self._cut)

    def _stop_engine(self) -> None:
        """Stop the engine once it runs: a signal can come while the crawl is still starting."""
        from twisted.internet import reactor

        try:
            engine = self.crawler.engine
        except RuntimeError:  # not created yet
            engine = None
        if engine is not None and engine.running:
            self.process.stop()
        elif self.crawler.crawling:
            reactor.callLater(0.05, self._stop_engine)

    def _cut_now(self) -> None:
        logger.warning("second stop signal: cutting the downloads in flight now")
        self._cut()

    def _cut(self) -> None:
        if self.cutting or not self.crawler.crawling and not _engine_open(self.crawler):
            return
        self.cutting = True
        self.crawler.signals.send_catch_log(signal=CUT_DOWNLOADS)
        self._sweeper = task.LoopingCall(self._fail_queued)
        self._sweeper.start(0.1)

    def _fail_queued(self) -> None:
        """Fail every request queued in a downloader slot; stops once the crawl has closed."""
        try:
            downloader = self.crawler.engine.downloader
        except RuntimeError:
            downloader = None
        if downloader is None or not _engine_open(self.crawler):
            if self._sweeper is not None and self._sweeper.running:
                self._sweeper.stop()
            return
        for slot in list(downloader.slots.values()):
            while slot.queue:
                request, deferred = slot.queue.popleft()
                deferred.errback(Failure(DownloadCut(cut_message(request))))


def _engine_open(crawler: Crawler) -> bool:
    try:
        return crawler.engine.spider is not None
    except RuntimeError:
        return False


class DownloadCut(IgnoreRequest):
    """A download the crawl stopped before the site answered: says nothing about the site."""


def cut_message(request: Request) -> str:
    return f"not downloaded, the crawl was stopping: {request.url}"


class CuttableDownloads:
    """Downloads a stop can cut (``CUT_DOWNLOADS``), for any download handler.

    Each download runs as an asyncio task (the crawl runs on Scrapy's default asyncio reactor);
    the stop cancels the tasks in flight and refuses new downloads with ``DownloadCut``.
    """

    def watch_for_cuts(self, crawler: Crawler) -> None:
        self._in_flight: set[asyncio.Future[Response]] = set()
        self._cut = False
        crawler.signals.connect(self.cut, signal=CUT_DOWNLOADS)

    async def cuttable(self, request: Request, download: Callable[[Request], Awaitable[Response]]) -> Response:
        """``download(request)`` as a task the stop can cancel."""
        if self._cut:
            raise DownloadCut(cut_message(request))
        pending = asyncio.ensure_future(download(request))
        self._in_flight.add(pending)
        try:
            return await pending
        except asyncio.CancelledError:
            if self._cut and pending.cancelled():
                raise DownloadCut(cut_message(request)) from None
            raise
        finally:
            self._in_flight.discard(pending)

    def cut(self) -> None:
        self._cut = True
        for pending in list(self._in_flight):
            pending.cancel()


class StoppableHTTPDownloadHandler(CuttableDownloads, HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, whose downloads a stop can cut.

    Cancelling a download's task cancels the Twisted request under it, which closes the
    connection, exactly as Scrapy's own download timeout does.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.watch_for_cuts(crawler)

    async def download_request(self, request: Request) -> Response:
        if not is_asyncio_available():  # another reactor was configured: not cuttable, as in Scrapy
            if self._cut:
                raise DownloadCut(cut_message(request))
            return await super().download_request(request)
        return await self.cuttable(request, super().download_request)


class DropCutDownloads:
    """Drop the result of a cut download before the archive sees it.

    The site neither answered nor refused it, so an ``error`` fetch would count against the site's
    health (``crawl_failed``) for what was our own stop. It is left unvisited, like the requests
    still queued when any crawl stops. The spider's errback names the exception first in
    ``fetch.error``.
    """

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        fetch = getattr(item, "fetch", None)
        cut = fetch is not None and fetch.outcome == "error" and (fetch.error or "").startswith(_CUT_PREFIX)
        if cut:
            raise DropItem(f"cut by the stop: {fetch.url}", log_level="DEBUG")
        return item


_CUT_PREFIX = f"{DownloadCut.__name__}:"
