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

from crawler.parsers import images
from crawler.parsers.dom import ELEMENTS, Element, Page, abs_url, all_of_first, first_match, lines_of, sels, text_of
from crawler.parsers.text import clean_dateline, norm, norm_or_none, parse_date, split_byline
from crawler.records import Image, ParseError, RelatedLink, Story
from crawler.urls import PageRef, classify_url

# ---------------------------------------------------------------- role tables ("selectors")

# Regions of the article element (searched through containers, never inside a found region).
REGION_BY_CLASS = {
    "header": "header", "body": "body", "article-body": "body", "tags": "tags", "tags-list": "tags",
    "related": "related", "social": "skip", "social-top": "skip", "social-bottom": "skip", "share": "skip",
}
# Fields inside the header region.
HEADER_BY_CLASS = {
    "maintitle": "title", "subtitle": "subtitle", "title-blurb": "subtitle", "date": "date",
    "byline": "byline", "dateline": "dateline", "updated": "updated", "pubup": "updated", "info": "info",
}
# Blocks inside the body that are not paragraphs: images and spotlight links are read as such,
# everything else listed here is site furniture.
BODY_BLOCK_BY_CLASS = {
    "media-inline": "image", "spotlight-inline": "spotlight", "spotlight": "spotlight",
    "social": "skip", "social-top": "skip", "social-bottom": "skip", "share": "skip", "sr-only": "skip",
    "visually-hidden": "skip", "print": "skip", "tags": "skip", "related": "skip", "gallery": "skip",
    "media-inline-popup": "skip", "breadcrumb": "skip", "disclaimer": "skip", "header": "skip",
    "footer": "skip", "caption": "skip", "credit": "skip", "virin": "skip", "mtitle": "skip", "minfo": "skip",
    "image-wrapper": "skip", "category": "skip", "byline": "skip", "date": "skip", "info": "skip",
    "dateline": "skip", "maintitle": "skip", "subtitle": "skip",
}
BODY_BLOCK_BY_TAG = {
    "figure": "image", "header": "skip", "footer": "skip", "nav": "skip", "aside": "skip",
    "figcaption": "skip", "h1": "skip", "script": "skip", "style": "skip", "noscript": "skip", "form": "skip",
    "button": "skip", "iframe": "skip", "template": "skip", "img": "skip", "video": "skip", "audio": "skip",
}
# Blocks whose text is one paragraph (or sub-heading) of the story.
TEXT_BLOCKS = frozenset({"p", "h2", "h3", "h4", "h5", "h6", "li", "pre", "dd", "dt"})
# Blocks that may hold text blocks; read as one paragraph when they hold none.
CONTAINERS = frozenset({"div", "section", "article", "main", "ul", "ol", "dl", "blockquote", "center", "span", "table"})
_NESTED_BLOCKS = TEXT_BLOCKS | CONTAINERS - {"span", "table"}
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
_SPOTLIGHT_LABEL_RE = re.compile(r"^\s*Spotlight\s*:\s*", re.I)
_DATELINE_END_RE = re.compile(r"(?:--|—|–)\s*$")
_SHORT = 160
_SOFT_404_RE = re.compile(r"^(?:page not found|not found|404\b|error\b|access denied)", re.I)
# Paragraph texts that are site furniture even when they sit inside the body region.
_BOILERPLATE_TEXT_RE = re.compile(
    r"^(?:Choose which (?:Defense|War)\.gov products you want delivered to your inbox\.?|"
    r"Subscribe to .{0,40}(?:news|updates)|Related Stories|Tags?:?|Share|Print|Email)$",
    re.I,
)


def parse_story(page: Page) -> Story | ParseError:
    """The story on a page, or a ParseError when it has no title or no body paragraphs."""
    url = page.url
    article = _article(page)
    regions = _regions(page, article)
    header = _header_fields(regions.get("header"))
    canonical = abs_url(url, page.link("canonical") or page.meta("og:url"))
    ref = page.ref
    story_id = ref.id if ref.type == "story" else _article_id(page, article, canonical)
    title = _text(header, "title") or _fallback_title(page, article)
    if story_id is None:
        return ParseError(url, "unknown_page", "no article id in the URL or the page", "story")
    if not title or _SOFT_404_RE.match(title):
        return ParseError(url, "no_title", f"no story title (found {title!r})", "story")
    body = _BodyReader(page, regions.get("body"), article, title)
    if not body.paragraphs:
        return ParseError(url, "no_body", "no body paragraphs", "story")
    byline = _text(header, "byline") or _byline_from_info(_text(header, "info"))
    authors, organisation = split_byline(byline)
    return Story(
        id=story_id,
        kind=_kind(ref, canonical),
        url=url,
        canonical_url=canonical,
        title=title,
        subtitle=_text(header, "subtitle"),
        published=_published(page, header),
        updated=parse_date(_text(header, "updated")) or parse_date(page.meta("article:modified_time")),
        byline=byline,
        authors=authors,
        organisation=organisation,
        dateline=clean_dateline(_text(header, "dateline")) or body.dateline,
        paragraphs=body.paragraphs,
        body_text="\n\n".join(body.paragraphs),
        images=body.images or _fallback_images(page, article, url),
        tags=_tags(page, article, regions.get("tags")),
        related=_related(page, article, regions.get("related")),
        spotlights=body.spotlights,
    )


# ---------------------------------------------------------------- structure

def _article(page: Page) -> Element | None:
    for el in page.root.iter("article"):
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
    return found


def _find_regions(el: Element, found: dict[str, Element]) -> None:
    for child in el:
        tag = child.tag
        role = _role(child, REGION_BY_CLASS)
        if role is None and tag == "header":
            role = "header"
        if role is not None:
            if role not in found:
                found[role] = child
        elif tag in _REGION_CONTAINERS:
            _find_regions(child, found)


def _role(el: Element, table: dict[str, str]) -> str | None:
    """The role of the first class token of ``el`` listed in ``table``."""
    classes = el.get("class")
    if classes:
        for token in classes.split():
            if token in table:
                return table[token]
    return None


def _header_fields(header: Element | None) -> dict[str, Element]:
    """role -> first element in the header (title, date, byline...); ``time`` for <time datetime>."""
    fields: dict[str, Element] = {}
    if header is None:
        return fields
    for el in header.iter(tag=ELEMENTS):
        classes = el.get("class")
        if classes:
            for token in classes.split():
                role = HEADER_BY_CLASS.get(token)
                if role is not None and role not in fields:
                    fields[role] = el
        tag = el.tag
        if tag == "h1":
            fields.setdefault("h1", el)
        elif tag == "time" and el.get("datetime"):
            fields.setdefault("time", el)
    if "title" not in fields and "h1" in fields:
        fields["title"] = fields["h1"]
    return fields


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
    time_el = header.get("time")
    for value in (page.meta("article:published_time"), time_el.get("datetime") if time_el is not None else None):
        parsed = parse_date(value)
        if parsed:
            return parsed
    return parse_date(_text(header, "date"))


def _byline_from_info(info: str | None) -> str | None:
    """Without a .byline element: the "By ..." part of "Dec. 7, 2023 | By A , Org"."""
    for part in (info or "").split("|"):
        if norm(part).lower().startswith("by "):
            return norm(part)
    return None


# ---------------------------------------------------------------- body

class _BodyReader:
    """Paragraphs, inline images and spotlight links of the body, in one walk.

    Without a body element (fallback), only real text blocks (p, h2-h6, li...) of the article
    count, layout divs there being page furniture.
    """

    def __init__(self, page: Page, body: Element | None, article: Element | None, title: str) -> None:
        self.url = page.url
        self.fallback = body is None
        self.title = title
        self.paragraphs: list[str] = []
        self.images: list[Image] = []
        self.spotlights: list[dict[str, str]] = []
        self.dateline: str | None = None
        root = body if body is not None else article
        if root is None:
            return
        self._read(root)
        if not self.paragraphs and not self.fallback:
            self.paragraphs = [line for line in lines_of(root) if not _BOILERPLATE_TEXT_RE.match(line)]

    def _read(self, el: Element) -> None:
        """Walk the children of ``el`` in document order: text blocks become paragraphs, images
        and spotlights are collected, furniture is skipped, containers are entered.

        One flat loop with the common case (a plain ``<p>``) first: this is the hot path.
        """
        for child in el:
            tag = child.tag
            classes = child.get("class")
            if classes is None and tag == "p" and not len(child):
                text = norm(child.text)
                if text:
                    self._add(child, text, False)
                continue
            role = None
            if classes:
                for token in classes.split():
                    if token in BODY_BLOCK_BY_CLASS:
                        role = BODY_BLOCK_BY_CLASS[token]
                        break
            if role is None:
                role = BODY_BLOCK_BY_TAG.get(tag)  # type: ignore[call-overload]
                if role is None and tag == "div" and child.get("data-media-id"):
                    role = "image"  # an image block without the media-inline class
            if role is not None:
                self._special(role, child)
            elif tag in TEXT_BLOCKS or tag in CONTAINERS:
                if len(child) and _has_block_child(child):
                    self._read(child)
                elif tag in TEXT_BLOCKS or not self.fallback or tag == "blockquote":
                    text = text_of(child)
                    if text:
                        self._add(child, text, len(child) > 0)
            elif tag == "a" and _SPOTLIGHT_LABEL_RE.match(text_of(child)):
                self._spotlight(child)

    def _special(self, role: str, el: Element) -> None:
        if role == "image":
            image = images.parse_image(el, self.url)
            if image is not None:
                self.images.append(image)
        elif role == "spotlight":
            for a in el.iter("a"):
                if a.get("href"):
                    self._spotlight(a)
                    break

    def _spotlight(self, a: Element) -> None:
        href = abs_url(self.url, a.get("href"))
        title = _SPOTLIGHT_LABEL_RE.sub("", text_of(a))
        if href and title and all(s["url"] != href for s in self.spotlights):
            self.spotlights.append({"title": title, "url": href})

    def _add(self, block: Element, text: str, has_children: bool) -> None:
        if has_children and not self.paragraphs and self.dateline is None:
            self.dateline, text = _split_dateline(block, text)
        if len(text) < _SHORT:  # furniture and spotlight lines are short; long text is a paragraph
            spot = _spotlight_anchor(block, text) if has_children else None
            if spot is not None:
                self._spotlight(spot)
                return
            if _BOILERPLATE_TEXT_RE.match(text) or (self.fallback and text == self.title):
                return
        self.paragraphs.append(text)


def _spotlight_anchor(block: Element, text: str) -> Element | None:
    """A paragraph that is only a "Spotlight: ..." link (markup without a spotlight class)."""
    if not text.lower().startswith("spotlight"):
        return None
    a = next(block.iter("a"), None)
    return a if a is not None and _SPOTLIGHT_LABEL_RE.match(text_of(a)) else None


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


def _has_block_child(el: Element) -> bool:
    for child in el:  # noqa: SIM110 - a plain loop: any() with a generator is slower on the hot path
        if child.tag in _NESTED_BLOCKS:
            return True
    return False


# ---------------------------------------------------------------- images, tags, related

def _fallback_images(page: Page, article: Element | None, url: str) -> list[Image]:
    """Image blocks outside the body (or a page without a body element)."""
    found = (images.parse_image(block, url) for block in all_of_first(page, article, FALLBACK.image_blocks))
    return [img for img in found if img is not None]


def _tags(page: Page, article: Element | None, region: Element | None) -> list[str]:
    anchors = list(region.iter("a")) if region is not None else all_of_first(page, article, FALLBACK.tags)
    return list(dict.fromkeys(name for name in (text_of(a) for a in anchors) if name))


def _related(page: Page, article: Element | None, region: Element | None) -> list[RelatedLink]:
    """Related stories: every article link in the ``.related`` region, once per article id."""
    anchors = list(region.iter("a")) if region is not None else all_of_first(page, article, FALLBACK.related)
    out: dict[int, RelatedLink] = {}
    for a in anchors:
        href = abs_url(page.url, a.get("href"))
        m = _ARTICLE_ID_RE.search(href or "")
        if href and m and int(m.group(1)) not in out:
            out[int(m.group(1))] = RelatedLink(id=int(m.group(1)), url=href, title=text_of(a) or None)
    return list(out.values())
