"""The baseline for ``bench/crawl_speed.py``: a Scrapy spider that only downloads.

It fetches the same pages as ``defwatch crawl --mode full`` (feeds, every listing page, every story
and photo page), with the same concurrency (``crawler.settings.local_overrides()``), robots.txt
obeyed, and the same User-Agent, but parses nothing beyond a few regexes and stores nothing. What the
full pipeline loses against it is the cost of parsing, validating, storing and indexing.

Two ways to get the URLs:

- ``--walk`` (default): discover them like the real spider, from feeds and listing pages to stories
  and from stories to their related stories and photo pages, deduplicated by id as the real spider
  does. Same dependency shape (a story is fetched only after the listing naming it), so a fair race.
- ``--urls FILE``: fetch exactly the URLs in FILE (one per line), e.g. the full crawl's ``fetches``.

Runs in its own process (Twisted's reactor cannot restart) and prints one JSON line last:
``{"pages": N, "by_type": {...}, "crawl_seconds": ..., "first_to_last_seconds": ...}``.

    .venv/bin/python bench/bare_spider.py --site http://127.0.0.1:8000 [--urls FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import nullcontext
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response

from core.constants import DEFAULT_FEEDS
from core.urls import LISTING_BY_KIND, classify_url, feed_url, listing_url, rebase
from crawler import settings as project
from crawler.gc_tuning import crawl_gc

FEEDS = DEFAULT_FEEDS  # defwatch's default [crawl] feeds
_STORY = re.compile(rb"""(https?://[^"'\s<>]+/Article/(\d+)/[^"'\s<>]*)""", re.I)
_PHOTO = re.compile(rb"""(https?://[^"'\s<>]+/igphoto/(\d+)/?)""", re.I)
_NEXT = re.compile(rb"""href="([^"]*[?&](?:amp;)?Page=(\d+))\"""", re.I)


# Project settings that wire in defwatch's own code: the bare spider must run without any of it.
_DEFWATCH_ONLY = frozenset({"SPIDER_MODULES", "NEWSPIDER_MODULE", "DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES",
                            "ITEM_PIPELINES", "EXTENSIONS", "LOG_LEVEL"})


def bare_settings() -> dict[str, Any]:
    """The project's Scrapy settings (robots, User-Agent, retries, CONCURRENT_ITEMS, ...) relaxed by
    ``local_overrides()`` exactly as ``defwatch crawl`` relaxes them for 127.0.0.1, minus defwatch's
    middlewares, pipeline and ``DEFWATCH_*`` keys. Copied wholesale so a tuning change in
    ``crawler/settings.py`` reaches both contenders."""
    names = [n for n in dir(project) if n.isupper() and n not in _DEFWATCH_ONLY and not n.startswith("DEFWATCH_")]
    base = {name: getattr(project, name) for name in names}
    overrides = {k: v for k, v in project.local_overrides().items() if not k.startswith("DEFWATCH_")}
    return base | overrides | {"LOG_LEVEL": "WARNING"}  # what `defwatch crawl` runs at without -v


class BareSpider(Spider):
    """Downloads pages and follows links by regex; counts responses by page type."""

    name = "bare"

    def __init__(self, site: str, urls: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.site = site.rstrip("/")
        self.urls = urls
        self.seen: set[tuple[str, int]] = set()
        self.counts: Counter[str] = Counter()
        self.first: float | None = None
        self.last: float | None = None

    async def start(self) -> AsyncIterator[Request]:
        for request in self._start_requests():
            yield request

    def _start_requests(self) -> Iterator[Request]:
        if self.urls is not None:
            for url in self.urls:
                yield Request(url, callback=self.count_only, dont_filter=True)
            return
        for content_type in FEEDS:
            yield Request(rebase(feed_url(content_type), self.site), callback=self.parse_index, priority=30)
        for kind in LISTING_BY_KIND:
            url = rebase(listing_url(kind, 1), self.site)
            yield Request(url, callback=self.parse_index, priority=20, cb_kwargs={"page": 1})

    def _tick(self, response: Response) -> None:
        now = time.perf_counter()
        self.first = self.first if self.first is not None else now
        self.last = now
        self.counts[classify_url(response.url).type] += 1

    def count_only(self, response: Response) -> None:
        self._tick(response)

    def parse_index(self, response: Response, page: int = 0) -> Iterator[Request]:
        """Feeds and listings: their stories, and the next listing page while pages have items."""
        self._tick(response)
        yield from self._follow(response.body, _STORY, "story", 10)
        if page and self._listed(response.body):  # the real spider stops at a page without items
            nxt = self._next_page(response.body, page)
            if nxt is not None:
                yield Request(rebase(nxt, self.site), callback=self.parse_index, priority=20 - page - 1,
                              cb_kwargs={"page": page + 1})

    def parse_story(self, response: Response) -> Iterator[Request]:
        """Story pages: related stories and photo pages."""
        self._tick(response)
        yield from self._follow(response.body, _STORY, "story", 10)
        yield from self._follow(response.body, _PHOTO, "photo", 0)

    def parse_photo(self, response: Response) -> None:
        self._tick(response)

    def _follow(self, body: bytes, pattern: re.Pattern[bytes], page_type: str, priority: int) -> Iterator[Request]:
        callback = self.parse_story if page_type == "story" else self.parse_photo
        for match in pattern.finditer(body):
            key = (page_type, int(match.group(2)))
            if key in self.seen:
                continue
            self.seen.add(key)
            url = rebase(match.group(1).decode("utf-8", "replace").replace("&amp;", "&"), self.site)
            yield Request(url, callback=callback, priority=priority)

    @staticmethod
    def _listed(body: bytes) -> bool:
        return b"<listing-with-preview" in body

    @staticmethod
    def _next_page(body: bytes, page: int) -> str | None:
        for match in _NEXT.finditer(body):
            if int(match.group(2)) == page + 1:
                return match.group(1).decode("utf-8", "replace").replace("&amp;", "&")
        return None


def run(site: str, urls: list[str] | None, gc_tuned: bool = False) -> dict[str, Any]:
    """Crawl and return the figures; robots.txt is fetched but not counted, as in the full crawl.

    ``gc_tuned``: run under ``crawler.gc_tuning.crawl_gc`` as ``defwatch crawl`` does (stock Scrapy
    does not), to see how much of the ratio that tuning is."""
    process = CrawlerProcess(bare_settings(), install_root_handler=True)
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler, site=site, urls=urls)
    start = time.perf_counter()
    with crawl_gc() if gc_tuned else nullcontext():
        process.start()
    seconds = time.perf_counter() - start
    spider: BareSpider = crawler.spider  # type: ignore[assignment]
    counts = dict(spider.counts)
    counts.pop("robots", None)
    span = (spider.last - spider.first) if spider.first is not None and spider.last is not None else 0.0
    return {"pages": sum(counts.values()), "by_type": counts, "crawl_seconds": round(seconds, 3),
            "first_to_last_seconds": round(span, 3),
            "finish_reason": crawler.stats.get_value("finish_reason") if crawler.stats else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", required=True, help="base URL of the sample site, e.g. http://127.0.0.1:8000")
    parser.add_argument("--urls", metavar="FILE", help="fetch exactly these URLs instead of walking the site")
    parser.add_argument("--gc-tuned", action="store_true", help="the garbage collector tuned as in defwatch crawl")
    args = parser.parse_args(argv)
    urls = None
    if args.urls:
        with open(args.urls, encoding="utf-8") as fh:
            urls = [line.strip() for line in fh if line.strip()]
    print(json.dumps(run(args.site, urls, args.gc_tuned), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
