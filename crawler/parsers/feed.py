"""ArticleCS RSS 2.0 feeds (``/DesktopModules/ArticleCS/RSS.ashx``) -> :class:`Feed`.

Parsed with lxml in recover mode: the generator has served malformed self links (spaceforce.mil
2021) and empty items, and a feed with one broken item must still yield the others.
"""

from __future__ import annotations

import html
import re
from html.entities import name2codepoint
from urllib.parse import parse_qsl

from lxml import etree

from core.records import Feed, ListingItem, ParseError
from core.urls import CONTENT_TYPE_KIND, SITE_HOSTS, classify_url, urlsplit
from crawler.parsers.extract import abs_url
from crawler.parsers.text import norm, norm_or_none, parse_rfc822

_XML_PARSER = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
# For text input: it is encoded to UTF-8, which must win over the document's own declaration.
_XML_PARSER_UTF8 = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, encoding="utf-8")
_ARTICLE_ID_RE = re.compile(r"/Article/(\d+)(?:[/.?#]|$)", re.I)
_IMG_SRC_RE = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*(?:'([^']*)'|\"([^\"]*)\"|([^\s>]+))", re.I)
_TAG_RE = re.compile(r"<[^>]*>")
_ITEMS = etree.XPath("//*[local-name()='item']")
_CHANNEL_TITLE = etree.XPath("(//*[local-name()='channel']/*[local-name()='title'])[1]")


def looks_like_feed(body: bytes) -> bool:
    """True when the bytes start like an RSS document (used for content sniffing)."""
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<rss") or (head.startswith(b"<?xml") and b"<rss" in head)


def parse_feed(body: bytes | str, url: str) -> Feed | ParseError:
    """Items of an RSS feed; ParseError("not_html") when the body is not an RSS document."""
    text_input = isinstance(body, str)
    data = repair_entities(body.encode("utf-8", "surrogatepass") if text_input else body)
    try:
        root = etree.fromstring(data, _XML_PARSER_UTF8 if text_input else _XML_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        root = None
    if root is None or _local(root.tag).lower() != "rss":
        return ParseError(url, "not_html", "not an RSS document", "feed")
    content_type = _content_type(url)
    items = [item for item in (_item(el, url, content_type) for el in _ITEMS(root)) if item is not None]
    title_el = _CHANNEL_TITLE(root)
    return Feed(url=url, items=items, title=norm_or_none(title_el[0].text) if title_el else None)


_BARE_AMP_RE = re.compile(rb"&(?!(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);)")
_NAMED_RE = re.compile(rb"&([A-Za-z][A-Za-z0-9]*);")
_XML_NAMED = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})


def repair_entities(data: bytes) -> bytes:
    """Escape bare "&" and turn HTML-only named entities (&nbsp;) into character references.

    Why: after one such error libxml2's recovery silently drops every later entity of the feed, so
    a single bad title would corrupt all following summaries ("Text &amp; more" -> "Text more").
    """
    if b"&" not in data:
        return data
    data = _BARE_AMP_RE.sub(b"&amp;", data)
    return _NAMED_RE.sub(_named_entity, data)


def _named_entity(m: re.Match[bytes]) -> bytes:
    name = m.group(1)
    if name in _XML_NAMED:
        return m.group(0)
    codepoint = name2codepoint.get(name.decode("ascii"))
    return b"&#%d;" % codepoint if codepoint is not None else b"&amp;" + name + b";"


def _child_text(el: etree._Element, name: str) -> str:
    for child in el:
        if isinstance(child.tag, str) and _local(child.tag) == name:
            return child.text or ""
    return ""


def _child_attr(el: etree._Element, name: str, attr: str) -> str | None:
    for child in el:
        if isinstance(child.tag, str) and _local(child.tag) == name:
            return child.get(attr)
    return None


def _item(el: etree._Element, feed_url: str, content_type: int | None) -> ListingItem | None:
    """One item; None when it has no link or no article id (the spaceforce feed has empty items)."""
    link = abs_url(feed_url, norm(_child_text(el, "link")) or norm(_child_text(el, "guid")) or None)
    m = _ARTICLE_ID_RE.search(link or "")
    if not link or not m:
        return None
    description = _child_text(el, "description")
    return ListingItem(
        id=int(m.group(1)),
        url=link,
        title=norm_or_none(_child_text(el, "title")),
        published=parse_rfc822(_child_text(el, "pubDate")),
        kind=_kind(link, content_type),
        image_url=abs_url(feed_url, norm(_child_attr(el, "enclosure", "url")) or _thumb(description)),
        summary=summary_text(description),
    )


def summary_text(description: str | None) -> str | None:
    """The description's text without the thumbnail ``<img>`` and ``<br/>`` (HTML inside RSS)."""
    if not description:
        return None
    return norm_or_none(html.unescape(_TAG_RE.sub(" ", description)))


def _thumb(description: str) -> str | None:
    m = _IMG_SRC_RE.search(description or "")
    if not m:
        return None
    return norm(html.unescape(next(g for g in m.groups() if g is not None))) or None


def _content_type(feed_url: str) -> int | None:
    """The feed's ContentType, trusted for kinds only on defense.gov / war.gov (its ids differ on af.mil)."""
    parts = urlsplit(feed_url)
    if (parts.hostname or "").lower() not in SITE_HOSTS:
        return None
    for key, value in parse_qsl(parts.query):
        if key.lower() == "contenttype" and value.strip().isdigit():
            return int(value)
    return None


def _kind(link: str, content_type: int | None) -> str | None:
    ref = classify_url(link)
    if ref.type == "story":
        return ref.kind
    return CONTENT_TYPE_KIND.get(content_type) if content_type is not None else None


def _local(tag: str) -> str:
    """A tag's local name: ``{ns}creator`` and an undeclared ``dc:creator`` both give ``creator``.

    (``etree.QName`` raises on the second, which would lose the whole feed.)
    """
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]
