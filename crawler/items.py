"""The one item the spider yields: a response as fetched, and what was parsed from it."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.records import Record
from db.archive import FetchInfo


@dataclass
class PageResult:
    fetch: FetchInfo
    body: bytes | None = None
    record: Record | None = None
