"""The shared frontier: scrapy-redis's scheduler, queue and duplicate filter, fitted to defwatch.

Three changes to scrapy-redis, each for the split to be exact across workers:

- ``SubjectDupeFilter`` keys a story or photo by its id, not its URL: the same article is linked
  with different slugs (``/Article/123/a-title/`` from a feed, ``/Article/123/`` from a related
  link), and the single-process spider dedups by id for the same reason.
- ``ClaimingPriorityQueue`` pops a request and counts it in the popping worker's hands in one atomic
  step, so no snapshot can see the queue empty while a request is between Redis and a worker; and
  it hands out nothing once the crawl must stop (a block storm) or is over.
- ``FrontierScheduler`` then reports nothing pending, so a stopped worker's engine goes idle and
  closes; and it never flushes the shared queue when one worker closes (``persist`` is forced on).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from w3lib.url import canonicalize_url

from crawler.distributed.keys import Keys

# ZPOPMIN + HINCRBY as one step: a request is always either queued or in some worker's hands.
# Nothing is handed out once the crawl must stop or is no longer this worker's run, so a block storm
# in one worker stops the others at their very next request.
_CLAIM = """
if redis.call('EXISTS', KEYS[3]) == 1 then return false end
local run = redis.call('HMGET', KEYS[4], 'state', 'run_id')
if run[1] ~= 'crawling' or run[2] ~= ARGV[2] then return false end
local popped = redis.call('ZPOPMIN', KEYS[1])
if popped[1] then
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  return popped[1]
end
return false
"""
STOP_CHECK_SECONDS = 1.0


def page_identity(request: Request) -> str:
    """What makes two requests the same page: the story or photo id, else the canonical URL."""
    subject = request.meta.get("subject")
    if subject:
        return f"{subject[0]}:{subject[1]}"
    return "url:" + canonicalize_url(request.url)


class SubjectDupeFilter(RFPDupeFilter):
    """A Redis set of page identities: the first worker to queue a page wins, for the whole run."""

    def request_seen(self, request: Request) -> bool:
        # A redirect hop carries its first request's meta (and identity); it is a step of a fetch
        # already admitted, so a loop A -> B -> A ends by REDIRECT_MAX_TIMES as in one process.
        if request.meta.get("redirect_urls"):
            return False
        return super().request_seen(request)

    def request_fingerprint(self, request: Request) -> str:
        return page_identity(request)


class ClaimingPriorityQueue(PriorityQueue):
    """scrapy-redis's priority queue whose pop also records who holds the request."""

    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None):
        super().__init__(server, spider, key, serializer)
        settings = spider.settings
        keys = Keys(settings.get("DEFWATCH_REDIS_NS"))
        self.claim_keys = [self.key, keys.in_hand, keys.stop, keys.meta]
        self.claim_args = [settings.get("DEFWATCH_WORKER_ID") or "seed", str(settings.getint("DEFWATCH_RUN_ID"))]
        self.claim = server.register_script(_CLAIM)

    def pop(self, timeout: int = 0) -> Request | None:
        data = self.claim(keys=self.claim_keys, args=self.claim_args)
        return self._decode_request(data) if data else None


class FrontierScheduler(Scheduler):
    """The scrapy-redis scheduler, persistent, with nothing pending once the crawl must stop."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierScheduler:
        scheduler = super().from_crawler(crawler)
        scheduler.persist = True  # one worker closing must never flush the frontier of the others
        scheduler.stats = None  # its two counters use an argument Scrapy deprecated (a warning per run)
        scheduler.keys = Keys(crawler.settings.get("DEFWATCH_REDIS_NS"))
        scheduler.worker = crawler.settings.get("DEFWATCH_WORKER_ID")
        scheduler.run_id = str(crawler.settings.getint("DEFWATCH_RUN_ID")).encode()
        scheduler.stopping = False
        scheduler.stop_checked = 0.0
        return scheduler

    def open(self, spider: Spider) -> None:
        with warnings.catch_warnings():  # scrapy-redis 0.9 logs through the deprecated Spider.log
            warnings.simplefilter("ignore", ScrapyDeprecationWarning)
            super().open(spider)

    def enqueue_request(self, request: Request) -> bool:
        request.meta["defwatch_worker"] = self.worker
        return super().enqueue_request(request)

    def next_request(self) -> Request | None:
        request = super().next_request()  # the claim itself refuses once the crawl must stop
        if request is not None and request.meta.get("defwatch_worker") != self.worker:
            # A retry or redirect hop queued by another worker: its start time is another clock's.
            request.meta.pop("started_at", None)
        return request

    def has_pending_requests(self) -> bool:
        return not self.must_stop() and super().has_pending_requests()

    def must_stop(self) -> bool:
        """True once the crawl must stop or is over (looked up at most once a second).

        Besides the stop flag, a run that is no longer this worker's (the writer ended it, or
        another writer started a new one) stops it: links it queued would otherwise feed a
        frontier nobody drains.
        """
        now = time.monotonic()
        if not self.stopping and now - self.stop_checked >= STOP_CHECK_SECONDS:
            self.stop_checked = now
            pipe = self.server.pipeline(transaction=True)
            pipe.exists(self.keys.stop)
            pipe.hmget(self.keys.meta, ["state", "run_id"])
            stop, (state, run_id) = pipe.execute()
            self.stopping = bool(stop) or state != b"crawling" or run_id != self.run_id
        return self.stopping
