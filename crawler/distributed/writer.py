"""The writer's side: seed a run's frontier from the archive, then drain results into it.

``DistributedCrawl`` is that crawl as ``monitor.run.run`` runs it: the run, its change detection
and its alerts are the same as a local crawl's; only the fetching is done by workers.

One writer per site (a Redis claim with a TTL it keeps renewing, besides the archive's file lock):
it is the only process that opens the archive during a run. It computes the start requests exactly
as ``defwatch crawl`` would (same spider code, same archive), publishes what workers need to know
of the archive, then stores each result with ``Archive.save_response`` under its own run id.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urljoin

import redis
from scrapy.crawler import Crawler
from scrapy.settings import Settings

from core.config import Config
from crawler.distributed.frontier import ClaimingPriorityQueue, SubjectDupeFilter
from crawler.distributed.keys import POLL_SECONDS, Keys, Progress, read_progress
from crawler.distributed.results import decode, encode_followups
from crawler.distributed.worker import PAGE_TYPES, FrontierSpider, frontier_settings
from crawler.outcomes import count_result
from crawler.pages import unchanged_index
from crawler.run import CrawlResult, crawl_settings
from db.archive import Archive

logger = logging.getLogger(__name__)
CLAIM_SECONDS = 60
CHUNK = 1000
# The spider arguments a run adds from its archive before seeding: a ``--mode frontier`` slice's plan
# (``monitor.frontier_runs.slice_spider_args``, passed in by the CLI: the crawler never imports monitor).
SpiderArgs = Callable[[Archive, int], dict[str, Any]]


class WriterClaim:
    """At most one writer per site in a Redis: a key set with NX and renewed while draining."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        return bool(self.client.set(self.keys.writer, self.token, nx=True, ex=CLAIM_SECONDS))

    def renew(self) -> None:
        if self.client.get(self.keys.writer) != self.token.encode():
            raise RuntimeError(f"lost the writer claim on {self.keys.writer}: another writer took over")
        self.client.expire(self.keys.writer, CLAIM_SECONDS)

    def release(self) -> None:
        if self.client.get(self.keys.writer) == self.token.encode():
            self.client.delete(self.keys.writer)


class DistributedCrawl:
    """Seed the frontier, drain the workers' results into the archive, then tell workers it is over.

    A ``monitor.run.Crawl``: the writer's Ctrl-C or SIGTERM (``KeyboardInterrupt``) ends the run
    ``interrupted``; after the call, ``facts`` says what the workers did."""

    def __init__(self, client: redis.Redis, keys: Keys, claim: WriterClaim, config: Config, redis_url: str,
                 mode: str, wait: float, plan: SpiderArgs | None = None):
        self.plan = plan  # extra spider arguments from the archive at the run's start (a frontier slice)
        self.client = client
        self.keys = keys
        self.claim = claim
        self.config = config
        self.redis_url = redis_url
        self.mode = mode
        self.wait = wait
        self.facts: dict[str, Any] = {}

    def __call__(self, archive: Archive, run_id: int) -> CrawlResult:
        try:
            seeded = self._seed(archive, run_id)
            drained = ResultDrain(self.client, self.keys, archive, run_id, self.claim.renew,
                                  wait_seconds=self.wait).run()
        finally:
            _quietly(end_run, self.client, self.keys)  # workers see the run is over and stop
        self.facts = {"namespace": self.keys.ns, "seeded": seeded, "workers": drained.by_worker,
                      "lost": drained.lost}
        return CrawlResult(drained.finish_reason, drained.stats)

    def _seed(self, archive: Archive, run_id: int) -> int:
        config = self.config
        settings = frontier_settings(crawl_settings(config, run_id), redis_url=self.redis_url, keys=self.keys,
                                     run_id=run_id, worker_id=None)
        planned = self.plan(archive, run_id) if self.plan is not None else {}
        spider = seed_spider(settings, mode=self.mode, listing_pages=config.crawl.discover_listing_pages,
                             feeds=list(config.crawl.feeds), revisit=asdict(config.revisit), archive_db=archive.db,
                             **planned)
        meta = {"run_id": run_id, "mode": self.mode, "site": config.site,
                "listing_pages": config.crawl.discover_listing_pages}
        return seed(self.client, self.keys, spider, meta, archive.validators(), archive.index_bodies())

    def stop_signals(self) -> list[str]:
        return []  # a stop raises KeyboardInterrupt in the writer: see aborted

    def aborted(self, exc: BaseException) -> tuple[str, str]:
        if isinstance(exc, KeyboardInterrupt):
            return "interrupted", "writer stopped"
        return "failed", "distributed run aborted; see the log"

    def run_facts(self) -> dict[str, Any]:
        return {"distributed": self.facts}


def _quietly(action: Callable[..., Any], *args: Any) -> None:
    """Cleanup that must not hide the error that brought us here."""
    try:
        action(*args)
    except Exception as exc:  # noqa: BLE001
        logger.warning("cleanup step failed: %s", exc)


def seed_spider(settings: Settings, **spider_args: Any) -> FrontierSpider:
    """The spider, bound to a crawler that is never started: only its request logic is used."""
    crawler = Crawler(FrontierSpider, settings)
    return FrontierSpider.from_crawler(crawler, **spider_args)


def seed(client: redis.Redis, keys: Keys, spider: FrontierSpider, meta: dict[str, Any],
         validators: dict[tuple[str, int], tuple[str | None, str | None]],
         index_bodies: Iterable[tuple[str, bytes, str | None]] = ()) -> int:
    """Replace whatever the namespace held with this run's start requests; workers start after.

    Workers never read the archive, so what they need from it is published here: the archived ids,
    the validators for conditional GET, and what each feed and listing that may answer 304 listed
    when last parsed (``index_bodies``, see ``Archive.index_bodies``)."""
    client.delete(*keys.run_keys(), keys.meta)
    client.hset(keys.meta, mapping={**meta, "state": "seeding"})
    queue = ClaimingPriorityQueue(client, spider, keys.requests)
    dupefilter = SubjectDupeFilter(client, keys.dupefilter)
    count = 0
    for request in spider.seed_requests():  # reads the archive, and fills spider.known on the way
        if not dupefilter.request_seen(request):
            queue.push(request)
            count += 1
    for page_type in PAGE_TYPES:
        _chunked(lambda ids, t=page_type: client.sadd(keys.known(t), *ids), sorted(spider.known[page_type]))
    fields = {f"{t}:{i}": json.dumps(list(v)) for (t, i), v in validators.items()}
    _chunked(lambda items: client.hset(keys.validators, mapping=dict(items)), list(fields.items()))
    listed = [(key, encode_followups(unchanged_index(body, urljoin(spider.site, key), content_type)))
              for key, body, content_type in index_bodies]
    _chunked(lambda items: client.hset(keys.unchanged_index, mapping=dict(items)), listed)
    client.hset(keys.meta, "state", "crawling")
    return count


def end_run(client: redis.Redis, keys: Keys) -> None:
    """Workers still running see the state and stop; the frontier's keys go."""
    client.hset(keys.meta, "state", "done")
    client.delete(*keys.run_keys())


@dataclass
class DrainResult:
    finish_reason: str
    stats: dict[str, Any] = field(default_factory=dict)  # the defwatch/* keys a crawl's stats have
    by_worker: dict[str, int] = field(default_factory=dict)
    lost: int = 0


class ResultDrain:
    """Pops results and stores them, in batches, until the crawl is settled or stopped."""

    BATCH_SIZE = 50  # as ArchivePipeline: one transaction per batch, a savepoint per response
    BATCH_SECONDS = 1.0

    def __init__(self, client: redis.Redis, keys: Keys, archive: Archive, run_id: int, renew: Callable[[], None],
                 *, wait_seconds: float = 0):
        self.client = client
        self.keys = keys
        self.archive = archive
        self.run_id = run_id
        self.renew = renew
        self.wait_seconds = wait_seconds  # how long to wait with no live worker (0: forever)
        self.worker_seen = time.monotonic()
        self.counts: Counter[str] = Counter()
        self.by_worker: Counter[str] = Counter()
        self.batched = 0
        self.batch_started = 0.0

    def run(self) -> DrainResult:
        while True:
            self.renew()
            batch = self._next_batch()
            for data in batch:
                self._store(data)
            self._commit(force=not batch)
            if batch:
                continue
            progress = read_progress(self.client, self.keys)
            reason = end_reason(progress) or self._abandoned(progress)
            if reason is not None and progress.results == 0:
                return DrainResult(reason, {f"defwatch/{k}": v for k, v in self.counts.items()},
                                   dict(self.by_worker), progress.lost)

    def _abandoned(self, progress: Progress) -> str | None:
        """An unattended writer must not wait forever for workers that never come (or all died)."""
        now = time.monotonic()
        if progress.in_hand:
            self.worker_seen = now
        elif self.wait_seconds and now - self.worker_seen > self.wait_seconds:
            logger.warning("no live worker for %.0fs with %d requests queued: ending the run",
                           self.wait_seconds, progress.queued)
            return "shutdown"
        return None

    def _next_batch(self) -> list[bytes]:
        batch = self.client.lpop(self.keys.results, self.BATCH_SIZE)
        if batch:
            return batch
        popped = self.client.blpop([self.keys.results], timeout=POLL_SECONDS)
        return [popped[1]] if popped else []

    def _store(self, data: bytes) -> None:
        envelope = decode(data)
        if envelope.run_id != self.run_id:  # from a worker of an earlier run that had not stopped yet
            self.counts["distributed/stale_results"] += 1
            return
        if self.batched == 0:
            self.archive.begin_batch()
            self.batch_started = time.monotonic()
        result = self.archive.save_response(self.run_id, envelope.result.fetch, envelope.result.body,
                                            envelope.result.record)
        self.batched += 1
        self.by_worker[envelope.worker] += 1
        record = envelope.result.record
        count_result(self.counts, envelope.result.fetch, record.type if record is not None else None, result)

    def _commit(self, *, force: bool) -> None:
        due = self.batched >= self.BATCH_SIZE or time.monotonic() - self.batch_started >= self.BATCH_SECONDS
        if self.batched and (force or due):
            self.archive.commit_batch()
            self.batched = 0


def end_reason(progress: Progress) -> str | None:
    """Why the crawl is over, in Scrapy's words (finished, blocked, shutdown), or None if it is not."""
    if progress.state != "crawling":
        raise RuntimeError(f"the run's state in Redis is {progress.state!r}: another writer reset it")
    if progress.stop and not any(progress.in_hand.values()):
        return progress.stop  # every live worker stopped taking requests and settled what it had
    if progress.settled:
        return "shutdown" if progress.lost else "finished"  # lost: requests taken and never settled
    return None


def _chunked(write: Callable[[list[Any]], Any], values: list[Any]) -> None:
    for start in range(0, len(values), CHUNK):
        write(values[start:start + CHUNK])
