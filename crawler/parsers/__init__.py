"""Page parsers: bytes of one response -> one typed record (core.records).

``parse_page`` is the single entry point for the crawler, the CLI and re-parsing of stored pages. It
dispatches on the URL grammar and falls back to sniffing the content, and it never raises: anything
it cannot turn into a record comes back as a :class:`ParseError` with a machine-readable reason
(``block_page``, ``no_title``, ``no_body``, ``not_html``, ``unknown_page``; ``parser_error`` only for
a bug, logged with its traceback).
"""

from __future__ import annotations

import logging

from w3lib.encoding import http_content_type_encoding, read_bom

from core.records import ParseError, Record
from core.urls import PageRef, classify_url
from crawler.parsers.afmil import is_print_view, parse_print_view
from crawler.parsers.block import detect_block, sniff_block_page
from crawler.parsers.dom import LIBXML2_MAX_DEPTH, MarkupTooDeep, Page, parse_flattened, parse_utf8, to_utf8
from crawler.parsers.feed import looks_like_feed, parse_feed
from crawler.parsers.listing import parse_listing
from crawler.parsers.photo import parse_photo
from crawler.parsers.story import parse_story
from crawler.parsers.virin import find_virin, parse_virin

__all__ = ["detect_block", "find_virin", "parse_page", "parse_virin", "sniff_page_type"]

log = logging.getLogger(__name__)

PAGE_TYPES = ("story", "photo", "listing", "feed")
_BINARY_MAGIC = (b"\x89PNG", b"%PDF", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b", b"RIFF", b"II*\x00",
                 b"MM\x00*")
_TEXT_TYPES = ("html", "xml", "text/", "rss", "atom")


def parse_page(body: bytes | str, url: str, content_type: str | None = None) -> Record:
    """The record for one fetched page (Story, Photo, Listing, Feed) or a ParseError; never raises."""
    ref = classify_url(url) if isinstance(url, str) else None
    expected = ref.type if ref is not None and ref.type in PAGE_TYPES else None
    try:
        return _parse(body, url, content_type, expected, ref)
    except Exception as exc:  # one bad page must never stop a crawl
        log.exception("parser crashed on %s", url)
        return ParseError(str(url), "parser_error", f"{type(exc).__name__}: {exc}", expected)


def _parse(body: bytes | str, url: str, content_type: str | None, expected: str | None, ref: PageRef | None) -> Record:
    if not isinstance(body, str):
        raw = bytes(body or b"")
        if not raw or raw.isspace():
            return ParseError(url, "no_body", "empty response body", expected)
        if _not_text(raw, content_type):
            return ParseError(url, "not_html", f"content is not HTML/XML ({content_type or 'binary'})", expected)
    data = to_utf8(body, content_type)
    if not data or data.isspace():
        return ParseError(url, "no_body", "empty response body", expected)
    blocked = sniff_block_page(data)
    if blocked:
        return ParseError(url, "block_page", f"{blocked} page served instead of content", expected)
    if expected in ("story", "photo") and _truncated(data):
        return ParseError(url, "no_body", "truncated page (no closing </html>): a partial copy is not a version",
                          expected)
    page_type = sniff_page_type(data, expected)
    if page_type is None:
        return ParseError(url, "unknown_page", "URL and content match no known page type", expected)
    if expected is None and page_type in ("story", "photo", "afmil") and _truncated(data):
        return ParseError(url, "no_body", "truncated page (no closing </html>)", expected)
    if page_type == "feed":
        feed = parse_feed(data.decode("utf-8"), url)
        if isinstance(feed, ParseError):
            feed.page_type = expected
        return feed
    page = parse_utf8(data, url, ref)
    if page is None:
        return ParseError(url, "not_html", "no HTML document in the body", expected)
    record = _PARSERS[page_type](page)
    if isinstance(record, ParseError):
        record = _parse_too_deep(page, page_type) or record
    elif page.cut_by_depth:  # what libxml2 dropped may be part of the record: read it all if we can
        deeper = _parse_too_deep(page, page_type)
        record = deeper if deeper is not None and not isinstance(deeper, ParseError) else record
    if isinstance(record, ParseError):
        record.page_type = expected  # what the URL promised, not what sniffing guessed
    return record


def _parse_too_deep(page: Page, page_type: str) -> Record | None:
    """The record of a page nested deeper than libxml2 builds (its content was cut off), read
    again from a tree with the empty nesting dropped; None when depth was not the problem."""
    try:
        flat = parse_flattened(page.raw, page.url, page.ref)
    except MarkupTooDeep as exc:
        return ParseError(page.url, "too_deep", str(exc))
    if flat is None:
        return None
    log.warning("%s: markup nested over %d levels deep, re-parsed with the nesting flattened", page.url,
                LIBXML2_MAX_DEPTH)
    record = _PARSERS[page_type](flat)
    return None if isinstance(record, ParseError) else record


def sniff_page_type(data: bytes, expected: str | None = None) -> str | None:
    """What parser a body needs: the URL's type first, the content when the URL says nothing.

    An af.mil print view wins over the URL (it is saved under story URLs too); a URL that says
    "feed" keeps the feed parser, which reports ``not_html`` for an HTML error page.
    """
    if is_print_view(data):
        return "afmil"
    if expected:
        return expected
    if looks_like_feed(data):
        return "feed"
    if b"<listing-with-preview" in data or b"<listing-titles-only" in data:
        return "listing"
    if b"media-inline-popup" in data or b"photo-detail" in data:
        return "photo"
    if b"maintitle" in data or b"data-article-id" in data or b"og:title" in data:
        return "story"
    return None


def _wide_encoding(raw: bytes, content_type: str | None) -> bool:
    """UTF-16/32 pages (by BOM or HTTP charset) have NUL bytes and are still text."""
    declared = (read_bom(raw)[0] or http_content_type_encoding(content_type) or "").lower().replace("_", "-")
    return declared.startswith(("utf-16", "utf-32"))


def _truncated(raw: bytes) -> bool:
    """True when an HTML page stops before its closing </html> (a dropped connection, a bad cache).

    Parsing it would yield a story missing its last paragraphs, which the monitor would report as
    an edit. Every page of the site (and every saved page seen) ends with </html>.
    """
    tail = raw[-1024:]
    return b"</html" not in tail and b"</HTML" not in tail and b"</Html" not in tail


def _binary_type(content_type: str) -> bool:
    """A declared media type that is neither HTML, XML nor text."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    return bool(ctype) and not any(t in ctype for t in _TEXT_TYPES)


def _not_text(data: bytes, content_type: str | None) -> bool:
    if content_type and _binary_type(content_type):
        return True
    head = data[:1024]
    if _wide_encoding(data, content_type):
        return False
    return head.startswith(_BINARY_MAGIC) or b"\x00" in head


_PARSERS = {
    "story": parse_story,
    "afmil": parse_print_view,
    "photo": parse_photo,
    "listing": parse_listing,
}
