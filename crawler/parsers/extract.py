"""Text extraction from lxml elements, and URL helpers shared by the parsers.

Why not ``text_content()``: it joins text across ``<br>`` and block boundaries without spaces and
includes scripts; these helpers insert the breaks a browser shows and skip what it hides.
"""

from __future__ import annotations

from urllib.parse import urljoin

from core.urls import SITE_HOSTS, urlsplit
from crawler.parsers.dom import Element
from crawler.parsers.text import norm

BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
})
SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "button", "select", "option", "iframe", "svg",
                       "object", "video", "audio", "canvas"})
# Line breaks we insert; newlines in the source are just whitespace.
_BREAK = "\x1e"


def text_of(el: Element | None) -> str:
    """Normalized visible text of one element; a ``<br>`` counts as a space, scripts are dropped."""
    if el is None:
        return ""
    if not len(el):
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
    """Append the visible text of ``el`` (and its tail unless ``root``) to ``out``, with _BREAK
    around block elements and for <br>. Iterative: a LIFO of elements still to read and of texts
    (closing breaks, tails) to append after them, so no depth can exhaust Python's stack."""
    todo: list[Element | str] = [el]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        tail = item.tail
        if tail and (item is not el or not root):
            todo.append(tail)
        tag = item.tag
        if not isinstance(tag, str) or tag in SKIP_TAGS:
            continue
        if tag in BLOCK_TAGS:
            out.append(_BREAK)
            todo.append(_BREAK)
        elif tag == "br":
            out.append(_BREAK)
        text = item.text
        if text:
            out.append(text)
        if len(item):
            todo.extend(reversed(item))


def own_text(el: Element) -> str:
    """Text of ``el`` without its block-level descendants: a field element that tag soup left
    unclosed swallows the rest of the page, and only its own words are the field."""
    out: list[str] = [el.text or ""]
    for child in el:
        if child.tag in BLOCK_TAGS:
            break  # the field ended where the soup began
        _walk(child, out, root=True)
        out.append(child.tail or "")
    return norm("".join(out).replace(_BREAK, " "))




def _netloc(url: str) -> str:
    return urlsplit(url).netloc.lower()


def same_site(page_url: str, link: str) -> bool:
    """True when ``link`` is on the page's own host, or both are defense.gov / war.gov hosts."""
    page_host = _netloc(page_url)
    host = _netloc(link)
    if host == page_host or not page_host:
        return True
    return host.split(":")[0] in SITE_HOSTS and page_host.split(":")[0] in SITE_HOSTS


def abs_url(base: str, href: str | None) -> str | None:
    """``href`` made absolute against ``base``; None for a missing or blank link."""
    if not href:
        return None
    href = href.strip()
    if not href:
        return None
    if href.startswith(("https://", "http://")):
        return href  # already absolute: what urljoin would return
    try:
        return urljoin(base, href)
    except ValueError:  # an unbalanced IPv6 bracket: keep the link as printed
        return href
