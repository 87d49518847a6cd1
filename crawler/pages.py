"""What a fetched page is, and what the spider follows from it.

Parsing a response and checking that it is the page that was asked for is the same work whether it
runs in the spider (feeds, listings and stories; every page on a distributed worker) or in the
archive writer process (a local crawl's photo pages, see ``crawler.archiver``): both call
``parse_fetched``. ``followups`` is what the spider follows from a record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.fetch import FetchInfo
from core.records import Feed, Listing, Photo, Record, Story
from crawler.parsers import parse_page


@dataclass(frozen=True)
class Followups:
    """The links of a stored page that the spider may follow, and the outcome it was stored with."""

    outcome: str
    record_type: str | None = None
    related: tuple[tuple[str, int], ...] = ()  # (url, story id)
    photos: tuple[tuple[str | None, int], ...] = ()  # (photo page url or None, media id)
    items: tuple[tuple[str, int], ...] = ()  # feed or listing items: (url, story id)
    next_page: str | None = None  # a listing's next page, when it listed anything


def parse_fetched(fetch: FetchInfo, body: bytes, url: str) -> Record:
    """Parse an ``ok`` response of ``url``; a page that is not the one asked for changes ``fetch``'s
    outcome (a block page served with 200 is ``blocked``, another story is ``error``)."""
    record = parse_page(body, url, fetch.content_type)
    fetch.outcome, fetch.error = check_record(record, fetch.page_type, fetch.subject_id, url,
                                              fetch.outcome, fetch.error)
    return record


def check_record(
    record: Record, page_type: str | None, subject_id: int | None, url: str, outcome: str, reason: str | None
) -> tuple[str, str | None]:
    """A page that is not what was asked for (block page, redirect elsewhere) is not content."""
    if record.type == "error":
        return ("blocked", record.reason) if record.reason == "block_page" else (outcome, reason)  # type: ignore[union-attr]
    if page_type in ("story", "photo"):
        expected = Story if page_type == "story" else Photo
        record_id = getattr(record, "id", None) if page_type == "story" else getattr(record, "media_id", None)
        if not isinstance(record, expected) or (subject_id is not None and record_id != subject_id):
            return "error", f"expected {page_type} {subject_id}, got {record.type} at {url}"
    return outcome, reason


def followups(outcome: str, record: Record | None) -> Followups:
    """What the spider follows from a page stored with ``outcome``: only content is followed."""
    if record is None or outcome != "ok":
        return Followups(outcome, record.type if record is not None else None)
    if isinstance(record, Story):
        return Followups(
            outcome, record.type,
            related=tuple((link.url, link.id) for link in record.related),
            photos=tuple((image.page_url, image.media_id) for image in record.images if image.media_id is not None),
        )
    if isinstance(record, Feed | Listing):
        items = tuple((item.url, item.id) for item in record.items)
        next_page = record.next_page if isinstance(record, Listing) and record.items else None
        return Followups(outcome, record.type, items=items, next_page=next_page)
    return Followups(outcome, record.type)


def unchanged_index(body: bytes, url: str, content_type: str | None) -> Followups:
    """What a 304 feed or listing still lists: what its last parsed copy (``body``) listed.

    A capped or killed run stores feeds and listings whose stories it never fetched; following
    only the next page of a 304 would leave those stories unfound until the listing changed."""
    return replace(followups("ok", parse_page(body, url, content_type)), outcome="not_modified")
