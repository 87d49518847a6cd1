"""Decoding, one lxml parse per page, and the :class:`Page` every parser reads.

Speed matters: the story parser must keep up with a bare ``lxml.html.fromstring``. What shaped
this module: lxml.html's Python element-class lookup makes every element touched from Python ~5x
dearer than plain ``lxml.etree`` elements (so pages are parsed with ``etree.HTMLParser``); a story
is parsed from its article region only (``parse_region``: banner, navigation and footer are half
the bytes and none of the content); and the few head values needed (canonical link, meta) are
read from the raw bytes of the head, never from a parsed head.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from lxml import etree

from core.urls import PageRef, classify_url
from crawler.parsers.text import norm

Element = etree._Element
ELEMENTS = etree.Element  # ``el.iter(tag=ELEMENTS)`` yields elements only (no comments/PIs)

# One parser: every page is handed to lxml as UTF-8 bytes (transcoded first when needed), so a
# declared <meta charset> can never make lxml read UTF-8 bytes as Latin-1 (the 2016 af.mil pages
# declare nothing and are UTF-8).
_PARSER = etree.HTMLParser(
    encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True, collect_ids=False,
    remove_blank_text=False,
)

_HEADER_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
_META_CHARSET_RE = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
# Labels browsers treat as windows-1252 (WHATWG): the bytes 0x80-0x9F are then curly quotes.
_CP1252_ALIASES = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "us-ascii", "ascii", "l1"}


# ---------------------------------------------------------------- decoding and parsing

@lru_cache(maxsize=64)
def _codec(name: str | None) -> str | None:
    if not name:
        return None
    name = name.strip().lower()
    if name in _CP1252_ALIASES:
        return "cp1252"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def to_utf8(body: bytes | str, content_type: str | None = None) -> bytes:
    """The page as UTF-8 bytes: HTTP charset, then BOM, then <meta charset>, then UTF-8 if the bytes
    are valid UTF-8, else windows-1252."""
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    if body.startswith(codecs.BOM_UTF8):
        return body[3:]
    return recode(body, declared_encoding(body, content_type))


def declared_encoding(body: bytes, content_type: str | None = None) -> str | None:
    """The page's declared encoding (HTTP charset, UTF-16 BOM, <meta charset>), None if none."""
    declared = _codec(_header_charset(content_type))
    if declared is not None:
        return declared
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    m = _META_CHARSET_RE.search(body, 0, 4096)
    return _codec(m.group(1).decode("ascii", "ignore")) if m else None


def recode(data: bytes, declared: str | None) -> bytes:
    """``data`` (a page or any slice of one) as UTF-8: kept when it is valid UTF-8 and nothing else
    is declared, else decoded from the declared encoding (windows-1252 when none)."""
    if declared in (None, "utf-8"):
        if data.isascii():
            return data
        try:
            data.decode("utf-8")
            return data
        except UnicodeDecodeError:
            declared = "cp1252" if declared is None else declared
    return data.decode(declared or "cp1252", "replace").encode("utf-8", "surrogatepass")


@lru_cache(maxsize=64)
def _header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _HEADER_CHARSET_RE.search(content_type)
    return m.group(1) if m else None


def class_role(classes: str | None, table: Mapping[str, str]) -> str | None:
    """The role ``table`` gives a class attribute: the whole value (one token, the common case),
    else its first token listed."""
    if not classes:
        return None
    role = table.get(classes)
    if role is not None or " " not in classes:
        return role
    return next((table[token] for token in classes.split() if token in table), None)


class Page:
    """A parsed page: the root element, its raw bytes, and lookup caches built on first use."""

    __slots__ = ("root", "url", "raw", "lifted", "_ref", "_tagged", "_by_class", "_mentions", "_head_end",
                 "_article_meta")

    def __init__(self, root: Element, url: str = "", raw: bytes = b"", ref: PageRef | None = None) -> None:
        self.root = root
        self.url = url
        self.raw = raw
        self.lifted: Any = None  # images read from the bytes before parsing (images.LiftedImages)
        self._ref = ref
        self._tagged: dict[tuple[Element | None, str], list[tuple[Element, list[str]]]] | None = None
        self._by_class: dict[Element | None, dict[str, list[Element]]] | None = None
        self._mentions: dict[bytes, bool] | None = None
        self._head_end = -1
        self._article_meta: bool | None = None

    def mentions(self, tokens: tuple[bytes, ...]) -> bool:
        """False when one of ``tokens`` (class names, attribute names) is absent from the raw
        page, so the selector needing it cannot match: lets fallback chains cost nothing."""
        if not self.raw:
            return True
        if self._mentions is None:
            self._mentions = {}
        for token in tokens:
            known = self._mentions.get(token)
            if known is None:
                known = self._mentions[token] = token in self.raw
            if not known:
                return False
        return True

    def tagged(self, scope: Element | None, tag: str) -> list[tuple[Element, list[str]]]:
        """(element, class tokens) for every ``tag`` element in scope, in document order."""
        if self._tagged is None:
            self._tagged = {}
        key = (scope, tag)
        found = self._tagged.get(key)
        if found is None:
            base = self.root if scope is None else scope
            found = self._tagged[key] = [(el, (el.get("class") or "").split()) for el in base.iter(tag)]
        return found

    def class_index(self, scope: Element | None) -> dict[str, list[Element]]:
        """class token -> elements of the scope subtree, for class-only selectors (fallbacks)."""
        if scope is self.root:
            scope = None
        if self._by_class is None:
            self._by_class = {}
        index = self._by_class.get(scope)
        if index is None:
            index = self._by_class[scope] = _class_index(self.root if scope is None else scope)
        return index

    @property
    def head_end(self) -> int:
        """Offset of </head> in the raw bytes (their length when there is none): meta and link
        live before it, and scanning 2 KB instead of the whole page matters on the hot path."""
        if self._head_end < 0:
            end = self.raw.find(b"</head>")
            if end < 0:
                end = self.raw.find(b"</HEAD>")
            self._head_end = min(len(self.raw), HEAD_LIMIT) if end < 0 else end
        return self._head_end

    @property
    def has_article_meta(self) -> bool:
        """One scan answers both article:published_time and article:modified_time when absent."""
        if self._article_meta is None:
            self._article_meta = self.raw.find(b"article:", 0, self.head_end) >= 0
        return self._article_meta

    @property
    def ref(self) -> PageRef:
        """What the URL grammar says the page is (computed once: it is not cheap)."""
        if self._ref is None:
            self._ref = classify_url(self.url)
        return self._ref

    # The head is read from the raw bytes, not the tree: a story is parsed from its article region
    # only (see parse_region), and a byte search for the few head values needed is cheaper anyway.

    def meta(self, name: str) -> str | None:
        """Normalized content of the first <meta property|name|itemprop=name> with content."""
        if name.startswith("article:") and not self.has_article_meta:
            return None
        for tag in _tags_mentioning(self.raw, name, self.head_end):
            if name in ((_attr(tag, "property") or "").lower(), (_attr(tag, "name") or "").lower(),
                        (_attr(tag, "itemprop") or "").lower()):
                value = norm(_attr(tag, "content"))
                if value:
                    return value
        return None

    def link(self, rel: str) -> str | None:
        """href of the first <link rel=...> in the head, else of an <a rel=...> anywhere."""
        for end in (self.head_end, len(self.raw)):
            found = self._link_in(rel, end)
            if found or end == len(self.raw):
                return found
        return None

    def canonical(self) -> str | None:
        """<link rel=canonical href> (a hot-path field of every story)."""
        raw = self.raw
        head_end = self.head_end
        start = raw.find(b"canonical", 0, head_end) - 11  # where '<link rel="' starts
        if start >= 0 and raw.startswith(_CANONICAL_AS_PRINTED, start):
            # The site's own spelling, and the first mention: what link() would read, minus its
            # regexes. Anything else (other attribute order, entities, quotes) takes link().
            value = start + len(_CANONICAL_AS_PRINTED)
            end = raw.find(b">", value, head_end)
            close = raw.find(b'"', value, end) if end > 0 and end - start <= TAG_LIMIT else -1
            if close > 0 and raw.find(b"&", value, close) < 0:
                href = raw[value:close].decode("utf-8", "replace").strip()
                if href:
                    return href
        return self.link("canonical")

    def _link_in(self, rel: str, end: int) -> str | None:
        for tag in _tags_mentioning(self.raw, rel, end):
            if rel in (_attr(tag, "rel") or "").lower().split():
                href = (_attr(tag, "href") or "").strip()
                if href:
                    return href
        return None

    def title(self) -> str | None:
        """Text of <title>."""
        opening = _TITLE_OPEN_RE.search(self.raw)  # one search each way: linear on any input
        if opening is None:
            return None
        closing = _TITLE_CLOSE_RE.search(self.raw, opening.end())
        if closing is None:
            return None
        text = self.raw[opening.end():closing.start()].decode("utf-8", "replace")
        return norm(html.unescape(text)) or None


# Bounded repetitions and windows keep every head scan linear: a page without </head> or with a run
# of unclosed tags must not make one regex rescan the rest of the page from each occurrence.
HEAD_LIMIT = 256 * 1024  # where the head is assumed to end when a page has no </head>
TAG_LIMIT = 4096  # the longest tag read from raw bytes
_CANONICAL_AS_PRINTED = b'<link rel="canonical" href="'
_TITLE_OPEN_RE = re.compile(rb"<title\b[^>]{0,4096}>", re.I)
_TITLE_CLOSE_RE = re.compile(rb"</title\s*>", re.I)
_TAG_NAMES = (b"meta", b"link", b"a")


def _tags_mentioning(raw: bytes, value: str, limit: int | None = None) -> list[bytes]:
    """The attribute text of each <meta>/<link>/<a> tag before ``limit`` that contains ``value``
    (matched as the page spells it in lower case, as every seen page does)."""
    needle = value.encode()
    limit = len(raw) if limit is None else limit
    found: list[bytes] = []
    pos = raw.find(needle, 0, limit)
    end = -1
    while pos >= 0:
        if end < pos:  # the next '>' is found once and reused by every mention before it: linear
            end = raw.find(b">", pos, limit)
            if end < 0:
                break
        start = raw.rfind(b"<", max(0, pos - TAG_LIMIT), pos)
        if start >= 0 and end - start <= TAG_LIMIT and raw.find(b">", start, pos) < 0:
            tag = raw[start + 1:end]
            space = tag.find(b" ")
            name = tag[:space].lower() if space > 0 else b""
            if name in _TAG_NAMES:
                found.append(tag[space:])
        pos = raw.find(needle, pos + len(needle), limit)
    return found


_ATTR_RES = {
    name: re.compile(rb"""(?:^|\s)""" + name.encode() + rb"""\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
    for name in ("rel", "href", "property", "name", "itemprop", "content")
}


def _attr(tag: bytes, name: str) -> str | None:
    """The (entity-decoded) value of attribute ``name`` in a tag's attribute text."""
    m = _ATTR_RES[name].search(tag)
    if not m:
        return None
    value = m.group(m.lastindex or 1).decode("utf-8", "replace")
    return html.unescape(value) if "&" in value else value


def _class_index(root: Element) -> dict[str, list[Element]]:
    index: dict[str, list[Element]] = {}
    for el in root.iter(tag=ELEMENTS):
        classes = el.get("class")
        if classes:
            for token in classes.split():
                found = index.get(token)
                if found is None:
                    index[token] = [el]
                elif found[-1] is not el:
                    found.append(el)
    return index


def parse_html(
    body: bytes | str, content_type: str | None = None, url: str = "", ref: PageRef | None = None
) -> Page | None:
    """The parsed page, or None when lxml finds no document (empty or unparseable input)."""
    return parse_utf8(to_utf8(body, content_type), url, ref)


def parse_utf8(data: bytes, url: str = "", ref: PageRef | None = None) -> Page | None:
    """Like :func:`parse_html` for bytes already known to be UTF-8."""
    if not data or data.isspace():
        return None
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, etree.ParserError, ValueError):
        return None
    return Page(root, url, data, ref) if root is not None else None


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

    Only for a page whose normal parse yielded no record: a Python target costs several times
    lxml's own tree building. Raises :class:`MarkupTooDeep` for a page that cannot be read so."""
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


def parse_region(
    data: bytes, url: str = "", ref: PageRef | None = None, content_type: str | None = None,
    *, tag: bytes = b"<article", marker: bytes = b"adetail",
    prepare: Callable[[bytes], tuple[bytes, Any]] | None = None,
) -> Page | None:
    """Only the content region of a UTF-8 page: from the first ``tag`` whose attributes contain
    ``marker`` (a story's ``<article class="adetail ...">``, a photo's ``<div class="... photo-detail">``)
    to ``</main>`` (or the last ``</article>``); None when the page has no such region.

    Why: banner, navigation, head and footer are half of a story page's bytes and none of its
    content, and lxml's parse is most of a page's cost. The caller falls back to the whole page
    when the region does not yield a story, so nothing is lost on unusual markup.
    """
    start = data.find(tag)
    while start >= 0:
        close = data.find(b">", start)
        if close > 0 and marker in data[start:close]:
            break
        start = data.find(tag, start + len(tag))
    if start < 0:
        return None
    end = data.find(b"</main>", start)
    if end < 0:
        end = data.rfind(b"</article>")
        if end < start:
            return None
        end += len(b"</article>")
    declared = declared_encoding(data, content_type)
    if declared not in (None, "utf-8", "cp1252") and not codecs.lookup(declared).name.startswith(("iso8859", "cp")):
        return None  # markers were found as ASCII bytes; only ASCII-compatible encodings slice safely
    region, lifted = recode(data[start:end], declared), None
    if prepare is not None:  # e.g. images.lift_template_blocks: the region's bytes, rewritten
        region, lifted = prepare(region)
    page = parse_utf8(region, url, ref)
    if page is not None:
        page.raw = data if declared in (None, "utf-8") else recode(data, declared)
        page.lifted = lifted
    return page
