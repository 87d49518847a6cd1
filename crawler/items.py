"""The one item the spider yields: a response as fetched, and what was parsed from it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from core.fetch import FetchInfo
from core.records import Record


@dataclass
class PageResult:
    """A response for the archive.

    ``record`` is what the spider parsed. ``parse_url`` set means the page is still to be parsed, as
    that URL, by whoever stores it (the archive writer process of a local crawl parses the photo pages,
    which lead nowhere); ``stored`` then resolves to the writer's answer (``crawler.archiver.Stored``),
    whose outcome the spider's block storm watch reads.
    """

    fetch: FetchInfo
    body: bytes | None = None
    record: Record | None = None
    parse_url: str | None = None
    stored: asyncio.Future[Any] | None = field(default=None, repr=False, compare=False)
