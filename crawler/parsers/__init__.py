"""Page parsers: bytes of one response -> one typed record (core.records).

``parse_page`` is the single entry point for the crawler, the CLI and re-parsing of stored pages. It
dispatches on the URL grammar and falls back to sniffing the content, and it never raises: anything
it cannot turn into a record comes back as a :class:`ParseError` with a machine-readable reason
(``block_page``, ``no_title``, ``no_body``, ``not_html``, ``unknown_page``; ``parser_error`` only for
a bug, logged with its traceback).
"""

from __future__ import annotations

import codecs
import logging
import re
from functools import lru_cache, partial

from core.records import ParseError, Record
from core.urls import STORY_PATHS, STORY_PREFIX_BY_KIND, PageRef, classify_url
from crawler.parsers import images
from crawler.parsers.afmil import is_print_view, parse_print_view
from crawler.parsers.block import detect_block, sniff_block_page
from crawler.parsers.dom import (
    LIBXML2_MAX_DEPTH,
    MarkupTooDeep,
    Page,
    declared_encoding,
    parse_flattened,
    parse_html,
    parse_region,
    to_utf8,
)
from crawler.parsers.feed import looks_like_feed, parse_feed
from crawler.parsers.listing import parse_listing
from crawler.parsers.photo import parse_photo
from crawler.parsers.record_order import check_record_order
from crawler.parsers.story import parse_story
from crawler.parsers.virin import find_virin, parse_virin

__all__ = ["detect_block", "find_virin", "parse_page", "parse_virin", "sniff_page_type"]

log = logging.getLogger(__name__)
check_record_order()  # the parsers build records positionally (fast); fail at import if their fields moved

PAGE_TYPES = ("story", "photo", "listing", "feed")
_BINARY_MAGIC = (b"\x89PNG", b"%PDF", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b", b"RIFF", b"II*\x00",
                 b"MM\x00*")
_TEXT_TYPES = ("html", "xml", "text/", "rss", "atom")


def parse_page(body: bytes | str, url: str, content_type: str | None = None) -> Record:
    """The record for one fetched page (Story, Photo, Listing, Feed) or a ParseError; never raises."""
    ref = _classify(url) if isinstance(url, str) else None
    expected = ref.type if ref is not None and ref.type in PAGE_TYPES else None
    try:
        return _parse(body, url, content_type, expected, ref)
    except Exception as exc:  # one bad page must never stop a crawl
        log.exception("parser crashed on %s", url)
        return ParseError(str(url), "parser_error", f"{type(exc).__name__}: {exc}", expected)


def _parse(body: bytes | str, url: str, content_type: str | None, expected: str | None, ref: PageRef | None) -> Record:
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body or b"")
    if _wide_encoding(raw, content_type):  # the byte checks below assume an ASCII-compatible page
        raw, content_type = to_utf8(raw, content_type), "text/html; charset=utf-8"
        body = raw
    if not raw or raw.isspace():
        return ParseError(url, "no_body", "empty response body", expected)
    if _not_text(raw, content_type):
        return ParseError(url, "not_html", f"content is not HTML/XML ({content_type or 'binary'})", expected)
    if expected == "story":
        # The common case first: a block, maintenance or login page never has an article.adetail
        # region with a title and body, so a story found there needs none of the checks below.
        quick = _story_from_region(raw, url, ref, content_type)
        if quick is not None:
            return quick
    elif expected == "photo":
        quick = _photo_from_region(raw, url, ref, content_type)
        if quick is not None:
            return quick
    blocked = sniff_block_page(raw)
    if blocked:
        return ParseError(url, "block_page", f"{blocked} page served instead of content", expected)
    if expected in ("story", "photo") and _truncated(raw):
        return ParseError(url, "no_body", "truncated page (no closing </html>): a partial copy is not a version",
                          expected)
    page_type = sniff_page_type(raw, expected)
    if page_type is None:
        return ParseError(url, "unknown_page", "URL and content match no known page type", expected)
    if expected is None and page_type in ("story", "photo", "afmil") and _truncated(raw):
        return ParseError(url, "no_body", "truncated page (no closing </html>)", expected)
    if page_type == "feed":
        feed = parse_feed(body if isinstance(body, str) else raw, url)
        if isinstance(feed, ParseError):
            feed.page_type = expected
        return feed
    page = parse_html(body, content_type, url, ref)
    if page is None:
        return ParseError(url, "not_html", "no HTML document in the body", expected)
    record = _PARSERS[page_type](page)
    if isinstance(record, ParseError):
        record = _parse_too_deep(page, page_type) or record
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


def _story_from_region(raw: bytes, url: str, ref: PageRef | None, content_type: str | None) -> Record | None:
    """The story read from its article region alone, or None to parse the whole page instead
    (no region, or the region lacks a title or body that a fallback might still find).

    The site's image blocks are read from the bytes first (``images.lift_template_blocks``); when
    the body walker did not take each of them as an image where it stood, the region is parsed
    again with lxml reading the blocks, so the record is the same either way."""
    page = parse_region(raw, url, ref, content_type, prepare=partial(images.lift_template_blocks, base_url=url))
    if page is None:
        return None
    record = parse_story(page)
    if page.lifted is not None and not page.lifted.complete:
        page = parse_region(raw, url, ref, content_type)
        record = parse_story(page) if page is not None else record
    return None if isinstance(record, ParseError) else record


def _photo_from_region(raw: bytes, url: str, ref: PageRef | None, content_type: str | None) -> Record | None:
    """Like :func:`_story_from_region` for photo pages (their info block ``div.photo-detail``)."""
    page = parse_region(raw, url, ref, content_type, tag=b"<div", marker=b"photo-detail")
    if page is None:
        return None
    record = parse_photo(page)
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
    if b"<listing-with-preview" in data:
        return "listing"
    if b"media-inline-popup" in data or b"photo-detail" in data:
        return "photo"
    if b"maintitle" in data or b"data-article-id" in data or b"og:title" in data:
        return "story"
    return None


# The common case, a story URL, in one regex; anything else goes through core.urls.classify_url.
# The same, case-sensitive, for URLs in the site's own casing: where it matches, _STORY_URL_RE
# matches identically (one parse either way: the segments cannot contain "/").
_CASED_STORY_URL_RE = re.compile(r"^(?:https?://[^/?#]*)?(/News/[^/?#]+/[^/?#]+/Article/)(\d+)(?=[/?#]|$)")
_KIND_BY_PREFIX = {prefix: kind for kind, prefix in STORY_PREFIX_BY_KIND.items()}
_STORY_URL_RE = re.compile(r"^(?:https?://[^/?#]*)?(/news/[^/?#]+/[^/?#]+/article/)(\d+)(?=[/?#]|$)", re.I)


def _classify(url: str) -> PageRef:
    """classify_url with a fast path for story URLs (it is a measurable share of a page's parse)."""
    m = _CASED_STORY_URL_RE.match(url)  # the site's own casing: no case folding, no lower()
    if m:
        kind = _KIND_BY_PREFIX.get(m.group(1))
        if kind is not None:
            return PageRef("story", int(m.group(2)), kind)
    m = _STORY_URL_RE.match(url)
    if m:
        kind = STORY_PATHS.get(m.group(1).lower())
        if kind is not None:
            return PageRef("story", int(m.group(2)), kind)
    return classify_url(url)


def _wide_encoding(raw: bytes, content_type: str | None) -> bool:
    """UTF-16/32 pages (by BOM or HTTP charset): markers like ``<article`` are not ASCII bytes there."""
    declared = declared_encoding(raw[:4096], content_type)
    return bool(declared) and codecs.lookup(declared).name.startswith(("utf-16", "utf-32"))


def _truncated(raw: bytes) -> bool:
    """True when an HTML page stops before its closing </html> (a dropped connection, a bad cache).

    Parsing it would yield a story missing its last paragraphs, which the monitor would report as
    an edit. Every page of the site (and every saved page seen) ends with </html>.
    """
    tail = raw[-1024:]
    return b"</html" not in tail and b"</HTML" not in tail and b"</Html" not in tail


@lru_cache(maxsize=64)
def _binary_type(content_type: str) -> bool:
    """A declared media type that is neither HTML, XML nor text (cached: types repeat)."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    return bool(ctype) and not any(t in ctype for t in _TEXT_TYPES)


def _not_text(data: bytes, content_type: str | None) -> bool:
    if content_type and _binary_type(content_type):
        return True
    head = data[:1024]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False  # UTF-16 text has NUL bytes
    return head.startswith(_BINARY_MAGIC) or b"\x00" in head


_PARSERS = {
    "story": parse_story,
    "afmil": parse_print_view,
    "photo": parse_photo,
    "listing": parse_listing,
}
