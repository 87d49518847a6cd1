"""Hand every page result to the archive, and count what happened for the run's stats."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from scrapy import Spider
from scrapy.crawler import Crawler

from crawler.items import PageResult
from db.archive import Archive


class ArchivePipeline:
    """The only writer during a crawl: one transaction per response (see ``Archive.save_response``)."""

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
        self.progress = _progress(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        run_id = crawler.settings.getint("DEFWATCH_RUN_ID")
        if not run_id:
            raise ValueError("DEFWATCH_RUN_ID is not set: start crawls with `defwatch crawl`")
        return cls(crawler.settings.get("DEFWATCH_DB"), run_id, crawler)

    def open_spider(self, spider: Spider | None = None) -> None:
        self.archive = Archive.open(self.db_path)

    def close_spider(self, spider: Spider | None = None) -> None:
        if self.archive is not None:
            self.archive.commit_batch()
            self.archive.close()
        if self.progress is not None:
            self.progress.finish()
        for key, value in self.counts.items():
            self.crawler.stats.set_value(f"defwatch/{key}", value)

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        if not isinstance(item, PageResult) or self.archive is None:
            return item
        if self.batched == 0:
            self.archive.begin_batch()
            self.batch_started = time.monotonic()
        result = self.archive.save_response(self.run_id, item.fetch, item.body, item.record)
        self.batched += 1
        if self.batched >= self.BATCH_SIZE or time.monotonic() - self.batch_started >= self.BATCH_SECONDS:
            self.archive.commit_batch()
            self.batched = 0
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
        return item


def _progress(crawler: Crawler) -> Any:
    """A terminal progress line when the CLI asked for one (DEFWATCH_PROGRESS)."""
    if not crawler.settings.getbool("DEFWATCH_PROGRESS"):
        return None
    from defwatch.progress import Progress

    return Progress("crawl", unit="pages")
