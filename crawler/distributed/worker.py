"""A crawl worker: ``SiteSpider`` on the shared frontier, pushing its results to the writer.

A worker never opens the archive. What the single-process spider reads from SQLite at start (which
ids are archived, their ETag/Last-Modified validators) the writer publishes in Redis when it seeds
the run; what the pipeline would write goes onto the results list. So workers can run on machines
that have no copy of the archive at all.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy.settings import Settings
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from core.urls import index_key
from crawler.distributed.frontier import ClaimingPriorityQueue
from crawler.distributed.keys import POLL_SECONDS, Keys, connect, heartbeat, read_meta, read_progress
from crawler.distributed.results import decode_followups, encode
from crawler.items import PageResult
from crawler.middlewares import ConditionalGetMiddleware
from crawler.pages import Followups
from crawler.run import CrawlResult, DownloadCut, run_crawl
from crawler.spiders.site import SiteSpider

logger = logging.getLogger(__name__)
PAGE_TYPES = ("story", "photo")


class FrontierSpider(SiteSpider):
    """``SiteSpider`` whose requests are deduplicated by the shared frontier, not in memory.

    The spider's own per-id set (``scheduled``) still saves a round trip for pages this worker
    already queued; the Redis duplicate filter (keyed by the same id) makes the split exact across
    workers. The writer uses this class too, to compute the run's start requests from the archive.
    """

    unchanged_index: dict[str, Followups]  # index key -> what a 304 of it still lists
    frontier: ClaimingPriorityQueue | None  # a worker's handle on the shared queue

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> FrontierSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.unchanged_index = {}
        spider.frontier = None
        if crawler.settings.get("DEFWATCH_WORKER_ID"):  # a worker: what it knows of the archive comes from Redis
            client, keys = connect(crawler.settings["REDIS_URL"]), _keys(crawler)
            spider.known = load_known(client, keys)
            spider.unchanged_index = load_unchanged_index(client, keys)
            spider.frontier = ClaimingPriorityQueue(client, spider, keys.requests)
        return spider

    def on_error(self, failure: Failure) -> Iterator[PageResult]:
        """A download this worker's stop cut goes back to the shared frontier, for another worker
        (or a restarted one) to fetch: the page was taken from the frontier, and dropping it would
        leave it unvisited in a run that may still end ``ok``. (Its result is then dropped by
        ``crawler.run.DropCutDownloads``, as in a local crawl.)"""
        if failure.check(DownloadCut) and self.frontier is not None:
            self.frontier.push(failure.request)  # type: ignore[attr-defined]
        yield from super().on_error(failure)

    async def _followups(self, result: PageResult) -> Followups:
        """A 304 feed or listing is followed as its last parsed copy listed (the writer published
        it; a worker has no archive to re-read, where a local crawl's spider re-reads it)."""
        follow = await super()._followups(result)
        if follow.outcome == "not_modified" and follow.record_type is None:
            return self.unchanged_index.get(index_key(result.fetch.url), follow)
        return follow

    async def start(self) -> AsyncIterator[Any]:
        """Workers take their start requests from the frontier the writer seeded."""
        for request in ():
            yield request

    def seed_requests(self) -> Iterator[Request]:
        """The run's start requests, computed from the archive (on the writer's machine)."""
        return self._start_requests()

    def _index_request(self, *args: Any, **kwargs: Any) -> Request | None:
        return _filtered(super()._index_request(*args, **kwargs))

    def _page_request(self, *args: Any, **kwargs: Any) -> Request | None:
        return _filtered(super()._page_request(*args, **kwargs))


def _filtered(request: Request | None) -> Request | None:
    """Let the shared duplicate filter see the request (SiteSpider opts out of Scrapy's own)."""
    if request is not None:
        request.dont_filter = False
    return request


class ResultPushPipeline:
    """Each response goes to the writer through Redis: workers never write SQLite."""

    def __init__(self, crawler: Crawler):
        settings = crawler.settings
        self.client = connect(settings["REDIS_URL"])
        self.keys = _keys(crawler)
        self.run_id = settings.getint("DEFWATCH_RUN_ID")
        self.worker = settings["DEFWATCH_WORKER_ID"]
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ResultPushPipeline:
        return cls(crawler)

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        """Pushed before the page counts as settled, so the writer never misses a result."""
        if isinstance(item, PageResult):
            self.client.rpush(self.keys.results, encode(item, self.run_id, self.worker))
            self.stats.inc_value("defwatch/fetches")
            self.stats.inc_value(f"defwatch/outcome/{item.fetch.outcome}")
        return item


class FrontierConditionalGetMiddleware(ConditionalGetMiddleware):
    """Conditional GET from the validators the writer published, not from a local archive."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierConditionalGetMiddleware:
        return cls(load_validators(connect(crawler.settings["REDIS_URL"]), _keys(crawler)))


class WorkerCoordinator:
    """Keeps the worker visible (heartbeat) and closes it when the whole crawl is over.

    A worker whose own engine is idle is not done while another worker may still add links: it
    settles what it took, and closes only when the snapshot says the crawl is settled (or must
    stop). Meanwhile it polls the frontier every ``POLL_SECONDS`` (Scrapy only looks again every
    five seconds on its own).
    """

    def __init__(self, crawler: Crawler):
        settings = crawler.settings
        self.crawler = crawler
        self.client = connect(settings["REDIS_URL"])
        self.keys = _keys(crawler)
        self.worker = settings["DEFWATCH_WORKER_ID"]
        self.run_id = settings.getint("DEFWATCH_RUN_ID")
        self.loop = LoopingCall(self.tick)
        crawler.signals.connect(self.opened, signal=signals.spider_opened)
        crawler.signals.connect(self.idle, signal=signals.spider_idle)
        crawler.signals.connect(self.closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WorkerCoordinator:
        return cls(crawler)

    def opened(self, spider: Spider) -> None:
        heartbeat(self.client, self.keys, self.worker)
        self.loop.start(POLL_SECONDS, now=False)

    def tick(self) -> None:
        try:
            heartbeat(self.client, self.keys, self.worker)
        except redis.RedisError as exc:  # a blip must not kill the loop; the next tick retries
            logger.warning("heartbeat failed: %s", exc)
        self._wake_engine()

    def idle(self, spider: Spider) -> None:
        # The engine is idle: every request this worker took was downloaded and parsed, its links
        # queued and its result pushed. Nothing of it is in hand any more.
        self.client.hset(self.keys.in_hand, self.worker, 0)
        progress = read_progress(self.client, self.keys)
        if progress.run_id != self.run_id or progress.state != "crawling" or progress.settled or progress.stop:
            return  # the engine closes the spider ("finished")
        raise DontCloseSpider

    def closed(self, spider: Spider, reason: str) -> None:
        if self.loop.running:
            self.loop.stop()
        # Scrapy closes a spider only after the requests in progress were downloaded and handled,
        # whatever the reason (finished, Ctrl-C, block storm): this worker holds nothing any more.
        # Only a worker killed outright leaves requests in hand, which the writer counts as lost.
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.keys.alive, self.worker)
        pipe.hdel(self.keys.in_hand, self.worker)
        if reason != "finished":
            pipe.hset(self.keys.closed, self.worker, reason)
        if reason == "blocked":  # the site refuses us: every worker stops, as one crawl would
            pipe.set(self.keys.stop, "blocked", nx=True)
        pipe.execute()

    def _wake_engine(self) -> None:
        """Make an idle engine look at the frontier now rather than at its next 5 s heartbeat.

        Uses the engine's private slot; if a Scrapy release renames it, workers only poll slower.
        """
        slot = getattr(self.crawler.engine, "_slot", None)
        nextcall = getattr(slot, "nextcall", None)
        if nextcall is not None:
            nextcall.schedule()


def frontier_settings(
    settings: Settings, *, redis_url: str, keys: Keys, run_id: int, worker_id: str | None
) -> Settings:
    """Crawl settings with the shared frontier, the Redis pipeline and the worker's identity."""
    middlewares = settings.getdict("DOWNLOADER_MIDDLEWARES")
    middlewares |= {"crawler.middlewares.ConditionalGetMiddleware": None,
                    "crawler.distributed.worker.FrontierConditionalGetMiddleware": 450}
    settings.setdict({
        "SCHEDULER": "crawler.distributed.frontier.FrontierScheduler",
        "SCHEDULER_QUEUE_CLASS": "crawler.distributed.frontier.ClaimingPriorityQueue",
        "DUPEFILTER_CLASS": "crawler.distributed.frontier.SubjectDupeFilter",
        "SCHEDULER_PERSIST": True,
        "SCHEDULER_QUEUE_KEY": keys.requests,
        "SCHEDULER_DUPEFILTER_KEY": keys.dupefilter,
        "REDIS_URL": redis_url,
        "DEFWATCH_REDIS_NS": keys.ns,
        "DEFWATCH_WORKER_ID": worker_id,
        "DEFWATCH_RUN_ID": run_id,
        "DOWNLOADER_MIDDLEWARES": middlewares,
        "ITEM_PIPELINES": _worker_pipelines(settings),
        "DEFWATCH_PARSE_IN_WRITER": False,  # results reach the writer through Redis, already parsed
        "EXTENSIONS": {"crawler.distributed.worker.WorkerCoordinator": 0},
        "LOG_INSTALL_ROOT_HANDLER": False,
    }, priority="cmdline")
    return settings


def _worker_pipelines(settings: Settings) -> dict[str, int]:
    """The crawl's pipelines with the Redis push in place of the archive's: a stop's
    ``DropCutDownloads`` stays, so downloads cut by the stop are dropped, not sent as errors."""
    pipelines = {name: order for name, order in settings.getdict("ITEM_PIPELINES").items()
                 if name != "crawler.pipelines.ArchivePipeline"}
    return pipelines | {"crawler.distributed.worker.ResultPushPipeline": 300}


def wait_for_run(client: redis.Redis, keys: Keys, wait_seconds: float) -> dict[str, str] | None:
    """The seeded run's meta once the writer has seeded it; None after ``wait_seconds`` (0: forever)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        meta = read_meta(client, keys)
        if meta.get("state") == "crawling":
            return meta
        if wait_seconds and time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)


def run_worker(settings: Settings, **spider_args: Any) -> CrawlResult:
    """Crawl this worker's share until the whole crawl is settled or must stop."""
    return run_crawl(settings, FrontierSpider, **spider_args)


def load_known(client: redis.Redis, keys: Keys) -> dict[str, set[int]]:
    return {page_type: {int(i) for i in client.smembers(keys.known(page_type))} for page_type in PAGE_TYPES}


def load_unchanged_index(client: redis.Redis, keys: Keys) -> dict[str, Followups]:
    """Index key -> what that feed or listing listed when last parsed (see ``writer.seed``)."""
    return {key.decode(): decode_followups(value) for key, value in client.hgetall(keys.unchanged_index).items()}


def load_validators(client: redis.Redis, keys: Keys) -> dict[tuple[str, Any], tuple[str | None, str | None]]:
    """Validators as ``Archive.validators()`` gives them: ``(story|photo, id)`` or ``("index", path?query)``."""
    found: dict[tuple[str, Any], tuple[str | None, str | None]] = {}
    for field, value in client.hgetall(keys.validators).items():
        page_type, _, key = field.decode().partition(":")
        etag, last_modified = json.loads(value)
        found[(page_type, key if page_type == "index" else int(key))] = (etag, last_modified)
    return found


def _keys(crawler: Crawler) -> Keys:
    return Keys(crawler.settings["DEFWATCH_REDIS_NS"])
