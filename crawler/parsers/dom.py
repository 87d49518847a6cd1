"""Decoding, one lxml parse per page, and the :class:`Page` every parser reads.

Pages are decoded by w3lib (BOM, HTTP charset, ``<meta charset>``, then a UTF-8 / windows-1252
guess, the order browsers use), handed to lxml as UTF-8, and queried with CSS selectors compiled
once by cssselect. The head values parsers need (meta, link, title, JSON-LD) are read from the
same tree.
"""

from __future__ import annotations

import json
import logging
import threading
from functools import lru_cache
from typing import Any

from lxml import etree
from lxml.cssselect import CSSSelector
from w3lib.encoding import html_body_declared_encoding, html_to_unicode, http_content_type_encoding, read_bom

from core.urls import PageRef, classify_url
from crawler.parsers.text import norm

Element = etree._Element
log = logging.getLogger(__name__)

_LOCAL = threading.local()


def _parser() -> etree.HTMLParser:
    """This thread's HTML parser (an lxml parser must not be shared by threads). Every page reaches
    lxml as UTF-8 bytes, so a stale <meta charset> can never make it re-decode the page."""
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True,
                                                  no_network=True, collect_ids=False)
    return parser


# ---------------------------------------------------------------- decoding


def _utf8_or_cp1252(data: bytes) -> str:
    """What a browser settles on for an undeclared page: UTF-8 when the bytes are valid UTF-8,
    else windows-1252 (the 2016 af.mil pages declare nothing and are UTF-8)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def decode(body: bytes | str, content_type: str | None = None) -> str:
    """The page as text (see the module docstring for the order of evidence)."""
    if isinstance(body, str):
        return body
    return html_to_unicode(content_type, body, auto_detect_fun=_utf8_or_cp1252)[1]


def to_utf8(body: bytes | str, content_type: str | None = None) -> bytes:
    """The page as UTF-8 bytes without a BOM: as it came when w3lib finds it is UTF-8 (the usual
    case: nothing to transcode), else decoded (see :func:`decode`) and encoded again."""
    if isinstance(body, str):
        return body.lstrip("\ufeff").encode("utf-8", "replace")
    declared = http_content_type_encoding(content_type) or html_body_declared_encoding(body)
    if read_bom(body)[0] is None and declared in (None, "utf-8"):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return body
    return decode(body, content_type).lstrip("\ufeff").encode("utf-8", "replace")


# ---------------------------------------------------------------- the parsed page


@lru_cache(maxsize=512)
def css(selector: str) -> CSSSelector:
    """A compiled CSS selector (cssselect's HTML dialect: tag names case-insensitive)."""
    return CSSSelector(selector, translator="html")


def select(scope: Element, selector: str) -> list[Element]:
    """Elements matching ``selector`` below (and including) ``scope``, in document order; none
    when libxml2's XPath gives up on the tree (nesting thousands of levels deep)."""
    try:
        return css(selector)(scope)
    except etree.XPathEvalError:
        log.warning("selector %r could not be evaluated on a tree nested too deep", selector)
        return []


def all_of_first(scope: Element, chain: tuple[str, ...]) -> list[Element]:
    """Every match of the first selector in ``chain`` that matches anything below ``scope``."""
    for selector in chain:
        found = select(scope, selector)
        if found:
            return found
    return []


class Page:
    """A parsed page: its root element, URL, UTF-8 bytes, and head values read on first use."""

    def __init__(self, root: Element, url: str = "", raw: bytes = b"", ref: PageRef | None = None) -> None:
        self.root = root
        self.url = url
        self.raw = raw
        self._ref = ref
        self._meta: dict[str, str] | None = None
        self.cut_by_depth = False  # libxml2 dropped elements nested past its depth limit

    @property
    def ref(self) -> PageRef:
        """What the URL grammar says the page is."""
        if self._ref is None:
            self._ref = classify_url(self.url)
        return self._ref

    def select(self, selector: str, scope: Element | None = None) -> list[Element]:
        """Elements matching ``selector`` below (and including) ``scope``, in document order."""
        return select(self.root if scope is None else scope, selector)

    def first(self, chain: tuple[str, ...], scope: Element | None = None) -> Element | None:
        """The first element of the first selector in ``chain`` (in order of preference) that matches."""
        found = self.all_of_first(chain, scope)
        return found[0] if found else None

    def all_of_first(self, chain: tuple[str, ...], scope: Element | None = None) -> list[Element]:
        """Every match of the first selector in ``chain`` that matches anything."""
        return all_of_first(self.root if scope is None else scope, chain)

    def meta(self, name: str) -> str | None:
        """Content of the first ``<meta property|name|itemprop=name>`` with content (name lower case)."""
        if self._meta is None:
            self._meta = {}
            for el in self._head().iter("meta"):
                content = norm(el.get("content"))
                if not content:
                    continue
                for attr in ("property", "name", "itemprop"):
                    key = (el.get(attr) or "").strip().lower()
                    if key:
                        self._meta.setdefault(key, content)
        return self._meta.get(name)

    def link(self, rel: str, anchors: bool = False) -> str | None:
        """href of the first ``<link rel=...>`` (with ``anchors``, else of an ``<a rel=...>``)."""
        for tag in ("link", "a") if anchors else ("link",):
            for el in (self.root if tag == "a" else self._head()).iter(tag):
                if rel in (el.get("rel") or "").lower().split():
                    href = (el.get("href") or "").strip()
                    if href:
                        return href
        return None

    def title(self) -> str | None:
        """Text of the document's ``<title>`` (not the titles of inline SVG icons)."""
        for el in self._head().iter("title"):
            if not any(ancestor.tag == "svg" for ancestor in el.iterancestors()):
                return norm("".join(el.itertext())) or None
        return None

    def _head(self) -> Element:
        """The ``<head>`` where head elements belong (the whole page when there is none)."""
        head = self.root.find("head")
        return head if head is not None else self.root

    def json_ld(self) -> list[dict[str, Any]]:
        """Every JSON-LD object of the page (``@graph`` members included); broken blocks are skipped."""
        out: list[dict[str, Any]] = []
        for script in self.root.iter("script"):
            if (script.get("type") or "").strip().lower() != "application/ld+json":
                continue
            try:
                data = json.loads(script.text or "")
            except ValueError:
                continue
            for item in data if isinstance(data, list) else [data]:
                if isinstance(item, dict):
                    out.append(item)
                    out.extend(g for g in item.get("@graph") or [] if isinstance(g, dict))
        return out


# ---------------------------------------------------------------- parsing


def parse_html(body: bytes | str, content_type: str | None = None, url: str = "",
               ref: PageRef | None = None) -> Page | None:
    """The parsed page, or None when lxml finds no document (empty or unparseable input)."""
    return parse_utf8(to_utf8(body, content_type), url, ref)


def parse_utf8(data: bytes, url: str = "", ref: PageRef | None = None) -> Page | None:
    """Like :func:`parse_html` for bytes already known to be UTF-8."""
    if not data or data.isspace():
        return None
    parser = _parser()
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, etree.ParserError, ValueError):
        return None
    if root is None:
        return None
    page = Page(root, url, data, ref)
    page.cut_by_depth = any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log)
    return page


# libxml2 stops building the tree 256 elements deep (2048 with XML_PARSE_HUGE) and drops the rest
# of the page: a story whose body sits inside a few hundred wrapper <div>s loses its paragraphs.
LIBXML2_MAX_DEPTH = 254  # counted from <html>, as the events below count: deeper means truncated
# Elements that carry content of their own; wrappers (div, span, font, b...) are dropped first.
_CONTENT_TAGS = frozenset({
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "blockquote", "a", "img", "br", "figure",
    "figcaption", "time", "table", "tr", "td", "th", "article", "header", "main", "body", "html", "head",
    "title", "meta", "link",
})


class MarkupTooDeep(Exception):
    """Even with empty nesting dropped, the page nests elements deeper than we keep."""


class _FlatteningTarget:
    """An lxml parser target that builds the tree with bounded depth (lxml's target parsers are
    not subject to libxml2's depth limit).

    Past ``soft`` levels, wrappers without attributes are dropped, and a dropped element's text
    joins the nearest kept one (with a space, so words do not fuse): no text is lost, only
    nesting that carries nothing. An element with attributes or content of its own is never
    dropped (that would fold an image block or a footer into the paragraphs): past ``hard``
    levels of those the page is refused, loudly, rather than read wrong.
    """

    def __init__(self, soft: int = 200, hard: int = 5000) -> None:
        self._builder = etree.TreeBuilder()
        self._soft, self.hard = soft, hard
        self._kept: list[bool] = []
        self._depth = 0  # kept elements open
        self.deepest = 0  # elements open, kept or not
        self.overflow = False  # an element with content was dropped past ``hard``

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        keep = self._depth < self._soft or bool(attrib) or tag in _CONTENT_TAGS
        if keep and self._depth >= self.hard:
            self.overflow, keep = True, False  # raising here would only surface as a syntax error
        self._kept.append(keep)
        self.deepest = max(self.deepest, len(self._kept))
        if keep:
            self._depth += 1
            self._builder.start(tag, dict(attrib))
        else:
            self._builder.data(" ")

    def end(self, tag: str) -> None:
        if self._kept.pop():
            self._depth -= 1
            self._builder.end(tag)
        else:
            self._builder.data(" ")

    def data(self, text: str) -> None:
        self._builder.data(text)

    def close(self) -> Element:
        return self._builder.close()


def parse_flattened(data: bytes, url: str = "", ref: PageRef | None = None) -> Page | None:
    """The page re-parsed with its nesting bounded (see :class:`_FlatteningTarget`), or None when
    it was never deeper than libxml2's limit (then :func:`parse_utf8` already saw all of it).

    Only for a page whose normal parse yielded no record. Raises :class:`MarkupTooDeep` for a page
    that cannot be read so."""
    if not data or data.isspace():
        return None
    target = _FlatteningTarget()
    parser = etree.HTMLParser(target=target, encoding="utf-8", no_network=True, collect_ids=False)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, etree.ParserError, ValueError):
        root = None
    if target.overflow:
        raise MarkupTooDeep(f"elements with content nested over {target.hard} levels deep")
    if target.deepest <= LIBXML2_MAX_DEPTH or root is None:
        return None
    return Page(root, url, data, ref)
