"""Modern AFPIMS / ArticleCS story pages (defense.gov, war.gov) -> :class:`Story`.

The selectors are the role tables below: a class token (or tag) names what an element is. The
article is read by walking down from ``article.adetail`` through containers only, so the work is
proportional to the story, not to the page (touching every element from Python would cost more
than lxml's own parse, and the parser must keep up with it). When the expected structure is
missing, :class:`FALLBACK` selector chains take over: og: meta for the title, any ``<p>`` in the
article for the body, label text inside image blocks.
"""

from __future__ import annotations

import re

from core.records import Image, ParseError, RelatedLink, Story
from core.urls import PageRef, classify_url
from crawler.parsers import images
from crawler.parsers.body import BodyReader, TooDeep
from crawler.parsers.dom import Element, Page, class_role
from crawler.parsers.extract import SKIP_TAGS, abs_url, same_site, text_of
from crawler.parsers.select import all_of_first, first_match, sels
from crawler.parsers.text import clean_dateline, norm, norm_or_none, parse_date, split_byline

# ---------------------------------------------------------------- role tables ("selectors")

# Regions of the article element (searched through containers, never inside a found region).
REGION_BY_CLASS = {
    "header": "header", "body": "body", "article-body": "body", "tags": "tags", "tags-list": "tags",
    "related": "related", "social": "skip", "social-top": "skip", "social-bottom": "skip", "share": "skip",
}
# Fields inside the header region.
HEADER_BY_CLASS = {
    "maintitle": "title", "subtitle": "subtitle", "title-blurb": "subtitle", "deck": "subtitle", "dek": "subtitle",
    "date": "date", "byline": "byline", "dateline": "dateline", "updated": "updated", "pubup": "updated",
    "info": "info",
}
# Containers the region walk may descend through to find header/body/tags/related.
_REGION_CONTAINERS = frozenset({"div", "section", "main", "article"})


class FALLBACK:
    """Selector chains for pages that do not have the expected article structure."""

    article = sels("div.adetail", ".adetail", "div.article-view", ".article-view", "main")
    header = sels("header", ".header")
    title = sels("h1.maintitle", ".maintitle", "h1")
    body = sels(".body", ".article-body", "[itemprop=articleBody]")
    image_blocks = sels(".media-inline", "figure", "[data-media-id]")
    tags = sels(".tags a", ".tags-list a")
    related = sels(".related a[href]",)
    article_id = sels("[data-article-id]",)


_ARTICLE_ID_RE = re.compile(r"/Article/(\d+)(?:[/.?#]|$)", re.I)
# Whole titles of error pages served with 200 (a story may well be titled "Error Rates Fall").
_SOFT_404_RE = re.compile(
    r"^(?:(?:404\s*[-:|]?\s*)?page not found|not found|404|error|server error|access denied)\.?$", re.I
)


def parse_story(page: Page) -> Story | ParseError:
    """The story on a page, or a ParseError when it has no title or no body paragraphs."""
    url = page.url
    article = _article(page)
    regions = _regions(page, article)
    header = _header_fields(regions.get("header"))
    canonical = abs_url(url, page.canonical() or page.meta("og:url"))
    ref = page.ref
    story_id = ref.id if ref.type == "story" else _article_id(page, article, canonical)
    title = _text(header, "title") or _fallback_title(page, article)
    if story_id is None:
        return ParseError(url, "unknown_page", "no article id in the URL or the page", "story")
    if not title or (len(title) < 40 and _SOFT_404_RE.match(title)):
        return ParseError(url, "no_title", f"no story title (found {title!r})", "story")
    try:
        body = BodyReader(page, regions.get("body"), article, title, regions)
    except TooDeep as exc:
        return ParseError(url, "no_body", str(exc), "story")
    if not body.paragraphs:
        return ParseError(url, "no_body", "no body paragraphs", "story")
    byline = _text(header, "byline") or _byline_from_info(_text(header, "info"))
    authors, organisation = split_byline(byline)
    paragraphs = body.paragraphs
    dateline = (clean_dateline(_text(header, "dateline")) if "dateline" in header else None) or body.dateline
    # positional, in field order (id, kind, url, type, canonical_url, title, subtitle, published, updated,
    # byline, authors, organisation, dateline, paragraphs, body_text, images, tags, related, spotlights):
    # the order is checked by crawler.parsers.record_order
    return Story(
        story_id, _kind(ref, canonical), url, "story", canonical, title, _text(header, "subtitle"),
        _published(page, header), _updated(page, header), byline, authors, organisation, dateline, paragraphs,
        "\n\n".join(paragraphs), body.images or _fallback_images(page, article, url, structured="body" in regions),
        _tags(page, article, regions.get("tags")), _related(page, article, regions.get("related")), body.spotlights,
    )


# ---------------------------------------------------------------- structure

def _article(page: Page) -> Element | None:
    """The first ``article.adetail``, else the fallback chain's article."""
    root = page.root
    if len(root):  # a region parse: <html><body><article class="adetail ...">, no search needed
        body = root[0]
        if body.tag == "body" and len(body):
            first = body[0]  # the third element in document order: no article comes before it
            if first.tag == "article" and "adetail" in (first.get("class") or "").split():
                return first
    for el in root.iter("article"):
        if "adetail" in (el.get("class") or "").split():
            return el
    found = first_match(page, None, FALLBACK.article)
    return found if found is not None else next(page.root.iter("article"), None)


def _regions(page: Page, article: Element | None) -> dict[str, Element]:
    """header/body/tags/related elements of the article, found through containers only."""
    found: dict[str, Element] = {}
    if article is not None:
        _find_regions(article, found)
        if "body" not in found:
            body = first_match(page, article, FALLBACK.body)
            if body is not None and body.tag != "header":
                found["body"] = body
    if "header" not in found:
        header = first_match(page, article, FALLBACK.header)
        if header is not None:
            found["header"] = header
    if article is not None and ("tags" not in found or "related" not in found):
        _regions_by_label(article, found)
    return found


_LABEL_TAGS = ("span", "strong", "b", "h2", "h3", "h4", "p", "div", "dt", "label")
_TAGS_LABEL_RE = re.compile(r"^(?:Tags?|Topics?|Keywords?)\s*:?$", re.I)
_RELATED_LABEL_RE = re.compile(r"^(?:Related(?: Stories| Links| Articles| Content)?|More Stories)\s*:?$", re.I)


def _regions_by_label(article: Element, found: dict[str, Element]) -> None:
    """Tags and related stories found by their printed label ("Tags:", "Related Stories") when
    their classes are unknown (a redesign): the label's parent holds the links."""
    for el in article.iter(*_LABEL_TAGS):
        text = el.text
        if not text or len(el) > 1 or len(text) > 24:
            continue
        text = text.strip()
        if "tags" not in found and _TAGS_LABEL_RE.match(text):
            found["tags"] = el.getparent()
        elif "related" not in found and _RELATED_LABEL_RE.match(text):
            found["related"] = el.getparent()


def _find_regions(el: Element, found: dict[str, Element]) -> None:
    """Depth-first through containers, first element per role. An explicit stack of child
    iterators, so no markup depth can exhaust Python's stack."""
    stack = [iter(el)]
    while stack:
        for child in stack[-1]:  # resumes where this level was left when a container was entered
            tag = child.tag
            role = class_role(child.get("class"), REGION_BY_CLASS)
            if role is None and tag == "header":
                role = "header"
            if role is not None:
                if role not in found:
                    found[role] = child
            elif tag in _REGION_CONTAINERS:
                stack.append(iter(child))
                break
        else:
            stack.pop()


def _header_fields(header: Element | None) -> dict[str, Element]:
    """role -> first element in the header (title, date, byline...); ``time`` for <time datetime>."""
    fields: dict[str, Element] = {}
    if header is None:
        return fields
    # One plain iteration with a set test: lxml's multi-tag iterator costs more to set up than a
    # header has elements.
    for el in header.iterdescendants():
        tag = el.tag
        if tag not in _HEADER_TAG_SET:
            continue
        role = class_role(el.get("class"), HEADER_BY_CLASS)
        if role is not None and role not in fields:
            fields[role] = el
        if tag == "h1":
            if "h1" not in fields:
                fields["h1"] = el
        elif tag == "time" and "time" not in fields and el.get("datetime"):
            fields["time"] = el
    if "title" not in fields and "h1" in fields:
        fields["title"] = fields["h1"]
    return fields


_HEADER_TAG_SET = frozenset({"h1", "h2", "p", "span", "div", "time", "em", "strong", "small"})


def _text(fields: dict[str, Element], role: str) -> str | None:
    el = fields.get(role)
    return (text_of(el) or None) if el is not None else None


def _article_id(page: Page, article: Element | None, canonical: str | None) -> int | None:
    value = article.get("data-article-id") if article is not None else None
    if not value:
        found = first_match(page, None, FALLBACK.article_id)
        value = found.get("data-article-id") if found is not None else None
    if value and value.strip().isdigit():
        return int(value.strip())
    m = _ARTICLE_ID_RE.search(canonical or "")
    return int(m.group(1)) if m else None


def _kind(ref: PageRef, canonical: str | None) -> str:
    """Kind from the URL grammar (the fetched URL, then the canonical one); news-story otherwise."""
    if ref.type == "story" and ref.kind:
        return ref.kind
    cref = classify_url(canonical) if canonical else None
    return cref.kind if cref is not None and cref.type == "story" and cref.kind else "news-story"


def _fallback_title(page: Page, article: Element | None) -> str | None:
    """h1 anywhere in the article, else og:title, else <title> up to the first " > "."""
    h1 = first_match(page, article, FALLBACK.title)
    if h1 is not None and text_of(h1):
        return text_of(h1)
    og = page.meta("og:title") or page.meta("twitter:title")
    if og:
        return og
    title = page.title()
    return norm_or_none(title.split(" > ")[0]) if title else None


def _published(page: Page, header: dict[str, Element]) -> str | None:
    """Structured first (article:published_time, <time datetime>), then the printed date."""
    parsed = parse_date(page.meta("article:published_time")) if page.has_article_meta else None
    time_el = header.get("time")
    if not parsed and time_el is not None:
        parsed = parse_date(time_el.get("datetime"))
    return parsed or parse_date(_text(header, "date"))


def _updated(page: Page, header: dict[str, Element]) -> str | None:
    printed = parse_date(_text(header, "updated")) if "updated" in header else None
    return printed or (parse_date(page.meta("article:modified_time")) if page.has_article_meta else None)


def _byline_from_info(info: str | None) -> str | None:
    """Without a .byline element: the "By ..." part of "Dec. 7, 2023 | By A , Org"."""
    for part in (info or "").split("|"):
        if norm(part).lower().startswith("by "):
            return norm(part)
    return None


# ---------------------------------------------------------------- images, tags, related

def _fallback_images(page: Page, article: Element | None, url: str, structured: bool) -> list[Image]:
    """Image blocks outside the body, or anywhere on a page without a body element (only the
    site's own image class is looked for around a body found by its class)."""
    if structured and b"media-inline" not in page.raw:
        return []  # the usual image-less story: one byte scan instead of the selector machinery
    chain = FALLBACK.image_blocks[:1] if structured else FALLBACK.image_blocks
    found = (images.parse_image(block, url) for block in all_of_first(page, article, chain))
    return [img for img in found if img is not None]


def _tags(page: Page, article: Element | None, region: Element | None) -> list[str]:
    anchors = region.iter("a") if region is not None else all_of_first(page, article, FALLBACK.tags)
    names: list[str] = []
    for a in anchors:
        name = norm(a.text) if not len(a) else text_of(a)
        if name and name not in names:
            names.append(name)
    return names


def _related(page: Page, article: Element | None, region: Element | None) -> list[RelatedLink]:
    """Related stories: every article link of this site in the ``.related`` region, once per id.

    A link to another host is not a related story of this site: AFPIMS sites (af.mil, spaceforce.mil)
    use the same /Article/<id>/ grammar with their own ids, which would collide with ours.
    """
    anchors = region.iter("a") if region is not None else all_of_first(page, article, FALLBACK.related)
    out: dict[int, RelatedLink] = {}
    url = page.url
    own = url[:url.find("/", 8) + 1] if url.startswith(("https://", "http://")) else None  # "https://host/"
    for a in anchors:
        href = abs_url(url, a.get("href"))
        m = _ARTICLE_ID_RE.search(href) if href else None
        if m is None:
            continue
        story_id = int(m.group(1))
        if story_id not in out and ((own is not None and href.startswith(own)) or same_site(url, href)):
            title = (norm(a.text) or None) if not len(a) and a.tag not in SKIP_TAGS else (text_of(a) or None)
            out[story_id] = RelatedLink(story_id, href, title)  # positional: see crawler.parsers.record_order
    return list(out.values())
