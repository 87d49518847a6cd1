"""Hand every page result to the archive, and count what happened for the run's stats."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from functools import partial
from typing import Any

from scrapy import Spider
from scrapy.crawler import Crawler

from crawler.archiver import BEHIND_BYTES, ArchiverClient, ArchiverError, Job, Stored
from crawler.items import PageResult
from crawler.outcomes import count_result
from crawler.pages import parse_fetched

logger = logging.getLogger(__name__)


class ArchivePipeline:
    """The only writer during a crawl, through the archive writer process (``crawler.archiver``).

    Every response is stored atomically (``Archive.save_response``) and committed in small batches.
    Pages the spider left unparsed (``PageResult.parse_url``: photo pages) are parsed by the writer
    too, unless the writer is behind: then they are parsed here (see ``process_item``); either way
    the writer's answer settles ``PageResult.stored``.
    """

    def __init__(self, db_path: str, run_id: int, crawler: Crawler):
        self.db_path = db_path
        self.behind_bytes = crawler.settings.getint("DEFWATCH_WRITER_BEHIND_BYTES", BEHIND_BYTES)
        self.run_id = run_id
        self.crawler = crawler
        self.archiver: ArchiverClient | None = None
        self.counts: Counter[str] = Counter()
        self.progress = _progress(crawler)
        self.ending = False
        self.outstanding: set[asyncio.Future[Stored]] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        run_id = crawler.settings.getint("DEFWATCH_RUN_ID")
        if not run_id:
            raise ValueError("DEFWATCH_RUN_ID is not set: start crawls with `defwatch crawl`")
        return cls(crawler.settings.get("DEFWATCH_DB"), run_id, crawler)

    def open_spider(self, spider: Spider | None = None) -> None:
        self.archiver = ArchiverClient(self.db_path, self.run_id, self.behind_bytes)

    async def close_spider(self, spider: Spider | None = None) -> None:
        if self.archiver is not None:
            if self.outstanding:  # every answer counted before the stats are read
                await asyncio.wait(list(self.outstanding))
            status = await self.archiver.aclose()
            if status != 0:
                self.crawler.stats.set_value("defwatch/archiver_exit", status)
            if self.archiver.stats is not None:  # where the crawl's CPU went: the reactor's thread or the writer
                self.crawler.stats.set_value("defwatch/writer_cpu_seconds", round(self.archiver.stats.cpu_seconds, 2))
                self.crawler.stats.set_value("defwatch/writer_idle_seconds", round(self.archiver.stats.idle_seconds, 2))
            # Lost parallelism, the other way round: the reactor blocked on a full pipe to the writer.
            self.crawler.stats.set_value("defwatch/pipe_wait_seconds", round(self.archiver.send_wait_seconds, 2))
        self.crawler.stats.set_value("defwatch/reactor_cpu_seconds", round(time.thread_time(), 2))
        if self.progress is not None:
            self.progress.finish()
        for key, value in self.counts.items():
            self.crawler.stats.set_value(f"defwatch/{key}", value)

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        """Send the page to the writer and move on: Scrapy keeps a response's memory until its items
        are processed, and waiting here for every answer would throttle downloads to the writer's pace.
        The answer is counted when it comes (``close_spider`` waits for the last ones)."""
        if not isinstance(item, PageResult) or self.archiver is None:
            return item
        if item.parse_url is not None and self.archiver.behind():
            self._parse_here(item)
        future = self.archiver.store(Job(item.fetch, item.body, item.record, item.parse_url))
        self.outstanding.add(future)
        future.add_done_callback(partial(self._stored, item))
        return item

    def _parse_here(self, item: PageResult) -> None:
        """Parse a page left for the writer on this side, with the same ``parse_fetched`` (same record,
        same outcome check). Why: a crawl's photo pages come after its stories (lower priority); they
        cost the writer about twice what they cost the reactor, so the writer falls behind and the
        reactor would block on the full pipe while its own core idles. Parsing the pages the writer
        cannot take in time shares that phase between both cores (docs/ARCHITECTURE.md)."""
        item.record = parse_fetched(item.fetch, item.body or b"", item.parse_url or "")
        item.parse_url = None
        self.counts["parsed_in_crawl"] += 1

    def _stored(self, item: PageResult, future: asyncio.Future[Stored]) -> None:
        self.outstanding.discard(future)
        error = future.exception()
        if error is not None:
            self.counts["store_errors"] += 1
            if self.archiver is not None and self.archiver.failure is not None:
                # The writer is gone (a full disk, a read-only archive): one error line for the run, not
                # a line and a spider traceback per page in flight; the spider follows nothing more.
                _settle(item.stored, None)
                self._end_crawl(self.archiver.failure)
                return
            logger.error("%s", error)
            _settle(item.stored, error=error)
            return
        stored = future.result()
        item.fetch = stored.fetch
        self._count(item, stored)
        _settle(item.stored, stored)

    def _end_crawl(self, failure: ArchiverError) -> None:
        """Nothing more can be stored: fetching on would only lose pages. The run ends ``failed``."""
        if self.ending:
            return
        self.ending = True
        logger.error("%s; ending the crawl", failure)
        asyncio.ensure_future(self.crawler.engine.close_spider_async(reason="archive_writer_failed"))

    def _count(self, item: PageResult, stored: Stored) -> None:
        """The run's counters, kept by the function the distributed writer shares."""
        count_result(self.counts, item.fetch, stored.record_type, stored.result)
        if self.progress is not None:
            self.progress.update(self.counts["fetches"])


def _settle(future: asyncio.Future[Any] | None, result: Any = None, error: BaseException | None = None) -> None:
    if future is None or future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _progress(crawler: Crawler) -> Any:
    """A terminal progress line when the CLI asked for one (DEFWATCH_PROGRESS)."""
    if not crawler.settings.getbool("DEFWATCH_PROGRESS"):
        return None
    from core.progress import Progress

    return Progress("crawl", unit="pages")
