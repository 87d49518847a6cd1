"""Run one crawl of the site into the archive, in this process.

Twisted's reactor cannot be restarted, so a process runs at most one crawl; the daemon starts each
crawl in a child process (``python -m defwatch crawl``).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scrapy import Spider
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from crawler import settings as default_settings
from crawler.spiders.site import SiteSpider


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
    settings.setdict({"DEFWATCH_DB": db_path, "DEFWATCH_SITE": site, "DEFWATCH_RUN_ID": run_id}, priority="cmdline")
    settings.setdict(overrides or {}, priority="cmdline")
    return settings


def run_crawl(settings: Settings, spider_cls: type[Spider] = SiteSpider, **spider_args: Any) -> CrawlResult:
    """Crawl until done (or stopped by a signal, a page cap or a block storm) and return Scrapy's stats.

    ``spider_cls`` lets the distributed worker run its frontier-sharing subclass the same way.
    """
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")  # the CLI owns the log handlers
    process = CrawlerProcess(settings)
    _quiet_scrapy(settings.get("LOG_LEVEL"))
    crawler = process.create_crawler(spider_cls)
    process.crawl(crawler, **spider_args)
    process.start()
    stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
    reason = str(stats.get("finish_reason", "unknown"))
    return CrawlResult(reason, {k: _plain(v) for k, v in stats.items()})


def _quiet_scrapy(level: str) -> None:
    """Scrapy's logging setup resets its loggers to DEBUG; keep them at the run's LOG_LEVEL."""
    for name in ("scrapy", "twisted", "py.warnings"):
        logging.getLogger(name).setLevel(level)


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool | type(None)) else str(value)
