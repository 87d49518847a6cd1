"""Scrapy settings for defwatch.

The defaults are for the live site: robots.txt obeyed, AutoThrottle on, two requests at a time per
host, and an honest User-Agent with a contact URL. ``local_overrides()`` relaxes them for the sample
site and benchmarks on 127.0.0.1. Scrapy's HTTP cache stays off on purpose: it would answer with a
cached copy when the server errors, hiding outages and removals; conditional GET uses the archive's
own validators instead (``crawler.middlewares.ConditionalGetMiddleware``).
"""

from __future__ import annotations

from typing import Any

from core import constants  # lower case: Scrapy's setmodule() takes only the upper-case names

BOT_NAME = "defwatch"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

USER_AGENT = constants.USER_AGENT
ROBOTSTXT_OBEY = True

CONCURRENT_REQUESTS = 8
# Scrapy starts this many asyncio tasks for the output of every callback (default 100), whatever
# it yields; ours yield one item (stored off-thread, never awaited by the pipeline) and a few
# requests. Task creation was about 15% of the reactor thread in bench/crawl_speed.py.
CONCURRENT_ITEMS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = constants.CONCURRENCY_PER_HOST
DOWNLOAD_DELAY = constants.DOWNLOAD_DELAY_SECONDS
DOWNLOAD_TIMEOUT = constants.DOWNLOAD_TIMEOUT_SECONDS
DOWNLOAD_MAXSIZE = constants.MAX_RESPONSE_BYTES  # also caps decompressed bodies (gzip bombs)
DOWNLOAD_WARNSIZE = 5 * 1024 * 1024

AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 2.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

# 429 (and a 503 with Retry-After) go to BackoffMiddleware, which honours the wait; the rest,
# a bare 503 included, retry quickly and are then recorded as errors (never as removals).
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]

HTTPCACHE_ENABLED = False
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REDIRECT_MAX_TIMES = 5
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
LOG_LEVEL = "INFO"

DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.SiteOnlyMiddleware": 40,
    "crawler.middlewares.ConditionalGetMiddleware": 450,
    "crawler.middlewares.BackoffMiddleware": 560,
    "crawler.middlewares.ElapsedMiddleware": 950,
}
ITEM_PIPELINES = {"crawler.pipelines.ArchivePipeline": 300}

# defwatch's own settings (read by the spider, middlewares and pipeline)
DEFWATCH_DB = "./defwatch.db"
DEFWATCH_SITE = None  # base URL that replaces scheme and host of site URLs (--site)
DEFWATCH_RUN_ID = None
DEFWATCH_BACKOFF_MAX_SECONDS = 300.0  # longest Retry-After honoured before giving up on a request
DEFWATCH_BACKOFF_RETRIES = 2
DEFWATCH_BLOCK_STORM = 25  # consecutive blocked responses that end the run instead of hammering on
# Photo pages (they lead nowhere) are parsed by the archive writer process (crawler.archiver), off the
# reactor's thread; the spider parses the rest. Distributed workers turn it off: their results travel
# to a remote writer already parsed.
DEFWATCH_PARSE_IN_WRITER = True
# ...unless the writer has more than DEFWATCH_WRITER_BEHIND_BYTES of pages it has not stored yet: then
# the pipeline parses them (crawler.pipelines), so the reactor never blocks on the full pipe to a busy
# writer. Unset, it is crawler.archiver.BEHIND_BYTES (half the pipe, which that module sizes); 0 parses
# every page in the crawl process (tests compare the records).


def local_overrides() -> dict[str, Any]:
    """Settings for a site on this machine: no politeness delays, many requests in flight."""
    return {
        "CONCURRENT_REQUESTS": 32,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOAD_TIMEOUT": 10,
        "DEFWATCH_BACKOFF_MAX_SECONDS": 5.0,
    }
