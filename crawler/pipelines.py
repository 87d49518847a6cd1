"""Hand every page result to the archive, and count what happened for the run's stats."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scrapy import Spider
from scrapy.crawler import Crawler

from crawler.items import PageResult
from db.archive import Archive, SaveResult


class ArchivePipeline:
    """The only writer during a crawl, on a thread of its own.

    Every response is stored atomically (``Archive.save_response``); responses are committed in
    small batches; the writer thread lets the next page be parsed while this one is written.
    """

    # A transaction holds at most this many responses or lasts this long (see Archive.begin_batch):
    # long enough to save most of the commit cost, short enough never to keep other writers waiting.
    BATCH_SIZE = 50
    BATCH_SECONDS = 1.0

    def __init__(self, db_path: str, run_id: int, crawler: Crawler):
        self.db_path = db_path
        self.run_id = run_id
        self.crawler = crawler
        self.archive: Archive | None = None
        self.counts: Counter[str] = Counter()
        self.batched = 0
        self.batch_started = 0.0
        self.closed = False
        self.progress = _progress(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        run_id = crawler.settings.getint("DEFWATCH_RUN_ID")
        if not run_id:
            raise ValueError("DEFWATCH_RUN_ID is not set: start crawls with `defwatch crawl`")
        return cls(crawler.settings.get("DEFWATCH_DB"), run_id, crawler)

    def open_spider(self, spider: Spider | None = None) -> None:
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-writer")
        self.archive = self.writer.submit(Archive.open, self.db_path).result()

    def close_spider(self, spider: Spider | None = None) -> None:
        self.closed = True
        if self.archive is not None:
            self.writer.submit(self._close).result()
        self.writer.shutdown(wait=True)
        if self.progress is not None:
            self.progress.finish()
        for key, value in self.counts.items():
            self.crawler.stats.set_value(f"defwatch/{key}", value)

    async def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        """Store on the writer thread, so parsing the next page overlaps with writing this one."""
        if not isinstance(item, PageResult) or self.archive is None:
            return item
        result = await asyncio.wrap_future(self.writer.submit(self._save, item))
        self._count(item, result)
        # A quiet spell (backoff, slow site) must not keep the batch's write lock: look again later.
        asyncio.get_running_loop().call_later(self.BATCH_SECONDS, self._commit_if_stale)
        return item

    def _save(self, item: PageResult) -> SaveResult:
        """Runs on the writer thread: the archive connection is only ever used there."""
        assert self.archive is not None
        if self.batched == 0:
            self.archive.begin_batch()
            self.batch_started = time.monotonic()
        result = self.archive.save_response(self.run_id, item.fetch, item.body, item.record)
        self.batched += 1
        if self.batched >= self.BATCH_SIZE or time.monotonic() - self.batch_started >= self.BATCH_SECONDS:
            self.archive.commit_batch()
            self.batched = 0
        return result

    def _commit_if_stale(self) -> None:
        if self.archive is not None and not self.closed:
            self.writer.submit(self._commit_stale_batch)

    def _commit_stale_batch(self) -> None:
        if self.batched and time.monotonic() - self.batch_started >= self.BATCH_SECONDS and self.archive:
            self.archive.commit_batch()
            self.batched = 0

    def _close(self) -> None:
        assert self.archive is not None
        self.archive.commit_batch()
        self.archive.close()

    def _count(self, item: PageResult, result: SaveResult) -> None:
        page_type = item.fetch.page_type or "other"
        self.counts["fetches"] += 1
        if self.progress is not None:
            self.progress.update(self.counts["fetches"])
        self.counts[f"outcome/{item.fetch.outcome}"] += 1
        self.counts[f"pages/{page_type}"] += 1
        if item.record is not None and item.record.type == "error":
            self.counts[f"parse_errors/{page_type}"] += 1
        if result.new_version:
            self.counts[f"new_versions/{page_type}"] += 1
        if result.new_subject:
            self.counts[f"new/{page_type}"] += 1


def _progress(crawler: Crawler) -> Any:
    """A terminal progress line when the CLI asked for one (DEFWATCH_PROGRESS)."""
    if not crawler.settings.getbool("DEFWATCH_PROGRESS"):
        return None
    from defwatch.progress import Progress

    return Progress("crawl", unit="pages")
