"""Modern AFPIMS / ArticleCS story pages (defense.gov, war.gov) -> :class:`Story`.

All selectors are in :class:`SEL`; each field lists fallbacks in order, so a markup change on the
live site is a one-line fix there. Structured signals (canonical link, og: meta, ``data-*``
attributes, ``<time datetime>``) come before visible text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from crawler.parsers import images
from crawler.parsers.dom import (
    Element,
    Page,
    abs_url,
    all_of_first,
    first_attr,
    first_match,
    first_text,
    iter_elements,
    lines_of,
    sels,
    text_of,
)
from crawler.parsers.text import clean_dateline, norm, norm_or_none, parse_date, split_byline
from crawler.records import Image, ParseError, RelatedLink, Story
from crawler.urls import PageRef, classify_url

_ARTICLE_ID_RE = re.compile(r"/Article/(\d+)(?:[/.?#]|$)", re.I)
_SPOTLIGHT_LABEL_RE = re.compile(r"^\s*Spotlight\s*:\s*", re.I)
_DATELINE_END_RE = re.compile(r"(?:--|—|–)\s*$")
_SOFT_404_RE = re.compile(r"^(?:page not found|not found|404\b|error\b|access denied)", re.I)
# Paragraph texts that are site furniture even when they sit inside the body region.
_BOILERPLATE_TEXT_RE = re.compile(
    r"^(?:Choose which (?:Defense|War)\.gov products you want delivered to your inbox\.?|"
    r"Subscribe to .{0,40}(?:news|updates)|Related Stories|Tags?:?|Share|Print|Email|Spotlight:.*)$",
    re.I,
)
# Class tokens of blocks inside the article that are never body text.
BOILERPLATE_CLASSES = frozenset({
    "media-inline", "media-inline-popup", "minfo", "image-wrapper", "mtitle", "caption", "credit",
    "virin", "spotlight-inline", "spotlight", "social", "social-top", "social-bottom", "share", "tags",
    "related", "sr-only", "visually-hidden", "print", "header", "footer", "disclaimer", "category",
    "info", "byline", "date", "dateline", "maintitle", "subtitle", "breadcrumb", "gallery",
})
BOILERPLATE_TAGS = frozenset({
    "header", "footer", "nav", "aside", "figure", "figcaption", "h1", "script", "style", "noscript",
    "form", "button", "iframe", "template", "img",
})
# Blocks whose text is one paragraph (or sub-heading) of the story.
TEXT_BLOCKS = frozenset({"p", "h2", "h3", "h4", "h5", "h6", "li", "pre", "dd", "dt"})
# Blocks that may hold text blocks; read as one paragraph when they hold none.
CONTAINERS = frozenset({"div", "section", "article", "main", "ul", "ol", "dl", "blockquote", "center", "span", "table"})
_NESTED_BLOCKS = TEXT_BLOCKS | CONTAINERS - {"span", "table"}


class SEL:
    """Story selectors: one fallback chain per field, tag-qualified primaries first (cheap)."""

    article = sels("article.adetail", "div.adetail", ".adetail", "div.article-view", ".article-view", "article", "main")
    header = sels("header.header", "header", "div.header", ".header")
    title = sels("h1.maintitle", ".maintitle", "h1")
    # Looked up inside the header (scope) first, then inside the article.
    subtitle = sels("p.subtitle", ".subtitle", "p.title-blurb")
    published_attr = sels("time[datetime]",)
    published_text = sels("span.date", ".date")
    updated_text = sels("span.updated", ".updated", ".pubup")
    byline = sels("span.byline", ".byline")
    info = sels("div.info", ".info")
    dateline = sels("p.dateline", ".dateline")
    body = sels("div.body", ".body", ".article-body")
    image_blocks = sels("div.media-inline", ".media-inline", "figure", "[data-media-id]")
    tags = sels("div.tags a", ".tags a", ".tags-list a")
    related = sels("div.related div.item", ".related .item")
    related_fallback = sels(".related a[href]",)
    spotlights = sels("div.spotlight-inline a", ".spotlight-inline a", "a.spotlight")
    article_id = sels("article[data-article-id]", "[data-article-id]")


def parse_story(page: Page) -> Story | ParseError:
    """The story on a page, or a ParseError when it has no title or no body paragraphs."""
    url = page.url
    article = first_match(page, None, SEL.article)
    header = first_match(page, article, SEL.header)
    canonical = abs_url(url, page.links.get("canonical") or page.meta.get("og:url"))
    ref = classify_url(url)
    story_id = ref.id if ref.type == "story" else _article_id(page, canonical)
    title = first_text(page, article, SEL.title) or _title_from_meta(page)
    if story_id is None:
        return ParseError(url, "unknown_page", "no article id in the URL or the page", "story")
    if not title or _SOFT_404_RE.match(title):
        return ParseError(url, "no_title", f"no story title (found {title!r})", "story")
    body = _body(page, article)
    paragraphs, dateline = _paragraphs(body if body is not None else article, body is None, title)
    if not paragraphs:
        return ParseError(url, "no_body", "no body paragraphs", "story")
    byline = _byline(page, header)
    authors, organisation = split_byline(byline)
    return Story(
        id=story_id,
        kind=_kind(ref, canonical),
        url=url,
        canonical_url=canonical,
        title=title,
        subtitle=first_text(page, header, SEL.subtitle),
        published=_published(page, header),
        updated=parse_date(first_text(page, header, SEL.updated_text)) or parse_date(
            page.meta.get("article:modified_time")),
        byline=byline,
        authors=authors,
        organisation=organisation,
        dateline=clean_dateline(first_text(page, header, SEL.dateline)) or dateline,
        paragraphs=paragraphs,
        body_text="\n\n".join(paragraphs),
        images=_images(page, article),
        tags=_tags(page, article),
        related=_related(page, article),
        spotlights=_spotlights(page, body if body is not None else article),
    )


def _article_id(page: Page, canonical: str | None) -> int | None:
    value = first_attr(page, None, SEL.article_id, "data-article-id")
    if value and value.isdigit():
        return int(value)
    m = _ARTICLE_ID_RE.search(canonical or "")
    return int(m.group(1)) if m else None


def _kind(ref: PageRef, canonical: str | None) -> str:
    """Kind from the URL grammar (the fetched URL, then the canonical one); news-story otherwise."""
    if ref.type == "story" and ref.kind:
        return ref.kind
    cref = classify_url(canonical) if canonical else None
    return cref.kind if cref is not None and cref.type == "story" and cref.kind else "news-story"


def _title_from_meta(page: Page) -> str | None:
    """og:title, else <title> up to the first " > " (the site appends " > Site > Section")."""
    og = page.meta.get("og:title") or page.meta.get("twitter:title")
    if og:
        return og
    title = next(page.root.iter("title"), None)
    return norm_or_none(text_of(title).split(" > ")[0]) if title is not None else None


def _published(page: Page, header: Element | None) -> str | None:
    structured = page.meta.get("article:published_time") or first_attr(page, header, SEL.published_attr, "datetime")
    return parse_date(structured) or parse_date(first_text(page, header, SEL.published_text))


def _byline(page: Page, header: Element | None) -> str | None:
    """The printed byline; without a .byline element, the "By ..." part of the header info line."""
    found = first_text(page, header, SEL.byline)
    if found:
        return found
    info = first_text(page, header, SEL.info) or ""
    for part in info.split("|"):
        if norm(part).lower().startswith("by "):
            return norm(part)
    return None


def _body(page: Page, article: Element | None) -> Element | None:
    for sel in SEL.body:
        for el in sel.all(page, article):
            if el.tag != "header":  # header.body exists in the 2020 CSS; it is not the story body
                return el
    return None


def _paragraphs(body: Element | None, fallback: bool, title: str) -> tuple[list[str], str | None]:
    """Body paragraphs and sub-headings in document order, boilerplate removed; plus a dateline
    when the first paragraph opens with a bold "CITY --" (the 2016 pattern)."""
    if body is None:
        return [], None
    out: list[str] = []
    dateline = None
    for block in _text_blocks(body, fallback):
        text = text_of(block)
        if not out and dateline is None:
            dateline, text = _split_dateline(block, text)
        if not text or _BOILERPLATE_TEXT_RE.match(text) or (fallback and text == title):
            continue
        out.append(text)
    if not out and not fallback:
        out = [line for line in lines_of(body) if not _BOILERPLATE_TEXT_RE.match(line)]
    return out, dateline


def _split_dateline(block: Element, text: str) -> tuple[str | None, str]:
    """(dateline, rest) when the block starts with a bold "CITY (AFNS) --"; else (None, text)."""
    if (block.text or "").strip() or len(block) == 0:
        return None, text
    lead = block[0]
    if lead.tag not in ("strong", "b"):
        return None, text
    head = text_of(lead)
    if _DATELINE_END_RE.search(head) and text.startswith(head) and len(text) > len(head):
        return clean_dateline(head), norm(text[len(head):])
    return None, text


def _text_blocks(el: Element, fallback: bool) -> Iterator[Element]:
    """Text blocks under ``el`` in document order, skipping boilerplate subtrees.

    A container (div, section...) holding no block children counts as one text block in the body;
    in fallback mode (no body element) only real text blocks count, layout divs being furniture.
    """
    for child in iter_elements(el):
        tag = child.tag
        if tag in BOILERPLATE_TAGS or _is_boilerplate(child):
            continue
        if tag in TEXT_BLOCKS and not _has_block_child(child):
            yield child
        elif tag in CONTAINERS or tag in TEXT_BLOCKS:
            if _has_block_child(child):
                yield from _text_blocks(child, fallback)
            elif not fallback or tag == "blockquote":
                yield child


def _is_boilerplate(el: Element) -> bool:
    classes = el.get("class")
    return bool(classes) and not BOILERPLATE_CLASSES.isdisjoint(classes.split())


def _has_block_child(el: Element) -> bool:
    return any(child.tag in _NESTED_BLOCKS for child in el)


def _images(page: Page, article: Element | None) -> list[Image]:
    found = (images.parse_image(page, block) for block in all_of_first(page, article, SEL.image_blocks))
    return [img for img in found if img is not None]


def _tags(page: Page, article: Element | None) -> list[str]:
    names = (text_of(a) for a in all_of_first(page, article, SEL.tags))
    return list(dict.fromkeys(n for n in names if n))


def _related(page: Page, article: Element | None) -> list[RelatedLink]:
    anchors = [a for item in all_of_first(page, article, SEL.related) if (a := _first_link(item)) is not None]
    out: dict[int, RelatedLink] = {}
    for a in anchors or all_of_first(page, article, SEL.related_fallback):
        href = abs_url(page.url, a.get("href"))
        m = _ARTICLE_ID_RE.search(href or "")
        if href and m and int(m.group(1)) not in out:
            out[int(m.group(1))] = RelatedLink(id=int(m.group(1)), url=href, title=text_of(a) or None)
    return list(out.values())


def _first_link(item: Element) -> Element | None:
    return next((a for a in item.iter("a") if a.get("href")), None)


def _spotlights(page: Page, scope: Element | None) -> list[dict[str, str]]:
    anchors = all_of_first(page, scope, SEL.spotlights) or [
        a for a in (scope if scope is not None else page.root).iter("a")
        if _SPOTLIGHT_LABEL_RE.match(text_of(a))
    ]
    out: list[dict[str, str]] = []
    for a in anchors:
        href = abs_url(page.url, a.get("href"))
        title = _SPOTLIGHT_LABEL_RE.sub("", text_of(a))
        if href and title and all(s["url"] != href for s in out):
            out.append({"title": title, "url": href})
    return out
