"""One lxml parse per page, a class index, a tiny selector engine, and text extraction.

Speed matters: the story parser must keep up with a bare ``lxml.html.fromstring``. Two measured
costs shaped this module: lxml.html's Python element-class lookup makes every element touched from
Python ~5x dearer than plain ``lxml.etree`` elements, and libxml2 evaluates CSS-style class
predicates (``contains(concat(' ', @class, ' '), ...)``) slowly on every node. So pages are parsed
with ``etree.HTMLParser``, one pass builds a class -> elements index, and selectors (a small CSS
subset: ``tag.class[attr*=value]`` compounds joined by descendant spaces) are answered from it.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from urllib.parse import urljoin

from lxml import etree

from crawler.parsers.text import norm
from crawler.urls import PageRef, classify_url

Element = etree._Element
ELEMENTS = etree.Element  # ``el.iter(tag=ELEMENTS)`` yields elements only (no comments/PIs)

# One parser: every page is handed to lxml as UTF-8 bytes (transcoded first when needed), so a
# declared <meta charset> can never make lxml read UTF-8 bytes as Latin-1 (the 2016 af.mil pages
# declare nothing and are UTF-8).
_PARSER = etree.HTMLParser(
    encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True, collect_ids=False
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


def _header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _HEADER_CHARSET_RE.search(content_type)
    return m.group(1) if m else None


class Page:
    """A parsed page: the root element, its raw bytes, and lookup caches built on first use."""

    def __init__(self, root: Element, url: str = "", raw: bytes = b"", ref: PageRef | None = None) -> None:
        self.root = root
        self.url = url
        self.raw = raw
        self._ref = ref
        self._tagged: dict[tuple[Element | None, str], list[tuple[Element, list[str]]]] = {}
        self._by_class: dict[Element | None, dict[str, list[Element]]] = {}
        self._mentions: dict[bytes, bool] = {}

    def mentions(self, tokens: tuple[bytes, ...]) -> bool:
        """False when one of ``tokens`` (class names, attribute names) is absent from the raw
        page, so the selector needing it cannot match: lets fallback chains cost nothing."""
        if not self.raw:
            return True
        for token in tokens:
            known = self._mentions.get(token)
            if known is None:
                known = self._mentions[token] = token in self.raw
            if not known:
                return False
        return True

    def tagged(self, scope: Element | None, tag: str) -> list[tuple[Element, list[str]]]:
        """(element, class tokens) for every ``tag`` element in scope, in document order."""
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
        index = self._by_class.get(scope)
        if index is None:
            index = self._by_class[scope] = _class_index(self.root if scope is None else scope)
        return index

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
        for tag in _tags_mentioning(self.raw, name):
            if name in ((_attr(tag, "property") or "").lower(), (_attr(tag, "name") or "").lower(),
                        (_attr(tag, "itemprop") or "").lower()):
                value = norm(_attr(tag, "content"))
                if value:
                    return value
        return None

    def link(self, rel: str) -> str | None:
        """href of the first <link rel=...> (or <a rel=...>) with that relation."""
        for tag in _tags_mentioning(self.raw, rel):
            if rel in (_attr(tag, "rel") or "").lower().split():
                href = (_attr(tag, "href") or "").strip()
                if href:
                    return href
        return None

    def title(self) -> str | None:
        """Text of <title>."""
        m = _TITLE_RE.search(self.raw)
        return norm(html.unescape(m.group(1).decode("utf-8", "replace"))) or None if m else None


_TITLE_RE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_TAG_NAMES = (b"meta", b"link", b"a")


def _tags_mentioning(raw: bytes, value: str) -> list[bytes]:
    """The attribute text of each <meta>/<link>/<a> tag that contains ``value`` (matched as the
    page spells it in lower case, as every seen page does)."""
    needle = value.encode()
    found: list[bytes] = []
    pos = raw.find(needle)
    while pos >= 0:
        start = raw.rfind(b"<", 0, pos)
        end = raw.find(b">", pos)
        if start >= 0 and end > 0 and raw.find(b">", start, pos) < 0:
            tag = raw[start + 1:end]
            space = tag.find(b" ")
            name = tag[:space].lower() if space > 0 else b""
            if name in _TAG_NAMES:
                found.append(tag[space:])
        pos = raw.find(needle, pos + len(needle))
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
    if not data.strip():
        return None
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, etree.ParserError, ValueError):
        return None
    return Page(root, url, data, ref) if root is not None else None


def parse_region(
    data: bytes, url: str = "", ref: PageRef | None = None, content_type: str | None = None
) -> Page | None:
    """Only the story region of a UTF-8 page: from ``<article class="adetail ...">`` to ``</main>``
    (or the last ``</article>``); None when the page has no such region.

    Why: banner, navigation, head and footer are half of a story page's bytes and none of its
    content, and lxml's parse is most of a page's cost. The caller falls back to the whole page
    when the region does not yield a story, so nothing is lost on unusual markup.
    """
    start = data.find(b"<article")
    while start >= 0:
        close = data.find(b">", start)
        if close > 0 and b"adetail" in data[start:close]:
            break
        start = data.find(b"<article", start + 8)
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
    page = parse_utf8(recode(data[start:end], declared), url, ref)
    if page is not None:
        page.raw = data if declared in (None, "utf-8") else recode(data, declared)
    return page


# ---------------------------------------------------------------- selectors

_COMPOUND_RE = re.compile(r"^(?P<tag>[A-Za-z][\w-]*|\*)?(?P<rest>(?:\.[\w-]+|\[[^\]]+\])*)$")
_ATTR_RE = re.compile(r"^\[\s*([\w:-]+)\s*(?:([*^$]?=)\s*[\"']?(.*?)[\"']?\s*)?\]$")
_PART_RE = re.compile(r"\.[\w-]+|\[[^\]]+\]")


class _Compound:
    __slots__ = ("tag", "classes", "attrs")

    def __init__(self, text: str) -> None:
        m = _COMPOUND_RE.match(text)
        if not m:
            raise ValueError(f"unsupported selector part {text!r}")
        tag = m.group("tag")
        self.tag = None if tag in (None, "*") else tag.lower()
        self.classes: tuple[str, ...] = ()
        self.attrs: tuple[tuple[str, str | None, str], ...] = ()
        for part in _PART_RE.findall(m.group("rest")):
            if part.startswith("."):
                self.classes += (part[1:],)
            else:
                a = _ATTR_RE.match(part)
                if not a:
                    raise ValueError(f"unsupported attribute selector {part!r}")
                self.attrs += ((a.group(1).lower(), a.group(2), a.group(3) or ""),)

    def matches(self, el: Element, classes: list[str] | None = None) -> bool:
        """True when ``el`` matches; ``classes`` are its class tokens when already known."""
        if self.tag is not None and el.tag != self.tag:
            return False
        if self.classes:
            tokens = classes if classes is not None else (el.get("class") or "").split()
            for c in self.classes:
                if c not in tokens:
                    return False
        for name, op, expected in self.attrs:
            value = el.get(name)
            if value is None or not _attr_ok(value, op, expected):
                return False
        return True


def _attr_ok(value: str, op: str | None, expected: str) -> bool:
    if op is None:
        return True
    if op == "=":
        return value == expected
    if op == "*=":
        return expected in value
    if op == "^=":
        return value.startswith(expected)
    return value.endswith(expected)


class Sel:
    """A compiled selector: compounds (``tag.class[attr op value]``) joined by descendant spaces.

    Matches are in document order and include the scope element itself (descendant-or-self),
    so a block's own ``data-media-id`` is found with the block as scope. Tag-qualified selectors
    ("div.body") scan one cached per-tag list; class-only ones (".body") use a class index built
    on demand, and only when the class name occurs in the page at all.
    """

    def __init__(self, selector: str) -> None:
        self.text = selector
        self.parts = [_Compound(p) for p in selector.split()]
        self.required = tuple(
            {c.encode() for part in self.parts for c in part.classes}
            | {name.encode() for part in self.parts for name, _, _ in part.attrs}
        )

    def __repr__(self) -> str:
        return f"Sel({self.text!r})"

    def all(self, page: Page, scope: Element | None = None) -> list[Element]:
        if not page.mentions(self.required):
            return []
        last = self.parts[-1]
        if last.tag and (len(self.parts) == 1 or last.classes or last.attrs):
            tagged = page.tagged(scope, last.tag)
            if last.attrs or len(last.classes) > 1:
                found = [el for el, classes in tagged if last.matches(el, classes)]
            elif last.classes:
                token = last.classes[0]
                found = [el for el, classes in tagged if token in classes]
            else:
                found = [el for el, _ in tagged]
        elif last.classes:
            found = [el for el in page.class_index(scope).get(last.classes[0], ()) if last.matches(el)]
        elif len(self.parts) > 1:
            return self._under_ancestors(page, scope, last)
        else:
            base = page.root if scope is None else scope
            found = [el for el in base.iter(tag=ELEMENTS) if last.matches(el)]
        return [el for el in found if self._ancestors_match(el)] if len(self.parts) > 1 else found

    def first(self, page: Page, scope: Element | None = None) -> Element | None:
        found = self.all(page, scope)
        return found[0] if found else None

    def _under_ancestors(self, page: Page, scope: Element | None, last: _Compound) -> list[Element]:
        """Unqualified last part (".tags a"): search inside the elements the leading parts match."""
        anchors = Sel.__new__(Sel)
        anchors.text, anchors.parts, anchors.required = self.text, self.parts[:-1], ()
        out: list[Element] = []
        seen: set[Element] = set()
        for anchor in anchors.all(page, scope):
            for el in anchor.iter(last.tag or etree.Element):
                if el is not anchor and el not in seen and last.matches(el):
                    seen.add(el)
                    out.append(el)
        return out

    def _ancestors_match(self, el: Element) -> bool:
        """The ancestors of ``el`` match the leading parts, innermost first."""
        need = len(self.parts) - 2
        node = el.getparent()
        while need >= 0 and node is not None:
            if self.parts[need].matches(node):
                need -= 1
            node = node.getparent()
        return need < 0


def sels(*selectors: str) -> tuple[Sel, ...]:
    """A fallback chain: compiled once at import, tried in order."""
    return tuple(Sel(s) for s in selectors)


def first_match(page: Page, scope: Element | None, chain: Iterable[Sel]) -> Element | None:
    """The first element of the first selector in ``chain`` that finds any."""
    for sel in chain:
        found = sel.first(page, scope)
        if found is not None:
            return found
    return None


def all_of_first(page: Page, scope: Element | None, chain: Iterable[Sel]) -> list[Element]:
    """All matches of the first selector in ``chain`` that matches anything."""
    for sel in chain:
        found = sel.all(page, scope)
        if found:
            return found
    return []


def first_text(page: Page, scope: Element | None, chain: Iterable[Sel]) -> str | None:
    """Text of the first non-empty match, trying selectors in order."""
    for sel in chain:
        for el in sel.all(page, scope):
            value = text_of(el)
            if value:
                return value
    return None


def first_attr(page: Page, scope: Element | None, chain: Iterable[Sel], attr: str) -> str | None:
    for sel in chain:
        for el in sel.all(page, scope):
            value = (el.get(attr) or "").strip()
            if value:
                return value
    return None


# ---------------------------------------------------------------- text extraction

BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
})
SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "button", "select", "option", "iframe"})
# Line breaks we insert; newlines in the source are just whitespace.
_BREAK = "\x1e"


def text_of(el: Element | None) -> str:
    """Normalized visible text of one element; a ``<br>`` counts as a space, scripts are dropped."""
    if el is None:
        return ""
    if len(el) == 0:
        return "" if el.tag in SKIP_TAGS else norm(el.text)
    out: list[str] = []
    _walk(el, out, root=True)
    return norm("".join(out).replace(_BREAK, " "))


def lines_of(el: Element) -> list[str]:
    """Visible text of a subtree as lines: block elements and ``<br>`` end a line.

    Used where labels are matched ("Photo By:", "VIRIN:") so a value never runs into the next label,
    and for ``<br>``-separated paragraphs (af.mil print view).
    """
    out: list[str] = []
    _walk(el, out, root=True)
    return [line for line in (norm(part) for part in "".join(out).split(_BREAK)) if line]


def _walk(el: Element, out: list[str], root: bool = False) -> None:
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag and tag not in SKIP_TAGS:
        block = tag in BLOCK_TAGS
        if block or tag == "br":
            out.append(_BREAK)
        if el.text:
            out.append(el.text)
        for child in el:
            _walk(child, out)
        if block:
            out.append(_BREAK)
    if el.tail and not root:
        out.append(el.tail)


def iter_elements(el: Element) -> Iterator[Element]:
    """Element children only (comments and processing instructions skipped)."""
    for child in el:
        if isinstance(child.tag, str):
            yield child


def abs_url(base: str, href: str | None) -> str | None:
    """An absolute URL; cheap for the common already-absolute case (urljoin is slow)."""
    if not href:
        return None
    href = href.strip()
    if not href:
        return None
    if href.startswith(("https://", "http://")):
        return href
    return urljoin(base, href)
