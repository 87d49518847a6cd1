"""Modern AFPIMS / ArticleCS story pages (defense.gov, war.gov) -> :class:`Story`.

:data:`STORY` is the template: field -> CSS selectors, in order of preference. After a redesign,
fix the selectors there. Each field then falls back on structured data the site keeps stable:
og:/twitter: meta, JSON-LD, the URL grammar (article id and kind), the ``content-type-N`` class,
a date in the title. When no article element (or no body text in it) is left, the body comes
from a generic extractor and the record says ``extraction: "generic"``.
"""

from __future__ import annotations

import re
from itertools import islice

from core.records import Image, ParseError, RelatedLink, Story
from core.urls import CONTENT_TYPE_KIND, PageRef, classify_url
from crawler.parsers import images
from crawler.parsers.body import BodyReader, TooDeep, body_role
from crawler.parsers.dom import Element, Page
from crawler.parsers.extract import abs_url, lines_of, same_site, text_of
from crawler.parsers.generic import generic_paragraphs
from crawler.parsers.text import clean_dateline, date_in_title, norm, norm_or_none, parse_date, split_byline

# The article template: field -> CSS selectors in order of preference (a selector group such as
# ".updated, .pubup" lists synonyms). "article" is searched in the page, "header" in the article,
# the header fields in the header, the rest in the article.
STORY: dict[str, tuple[str, ...]] = {
    "article": ("div.adetail", "article.adetail", ".adetail", ".article-view article", ".article-view", "article",
                "[itemtype*=NewsArticle]", "[itemtype*=Article]"),
    "header": ("header", ".header"),
    "title": ("h1.maintitle", ".maintitle", "h1"),
    "subtitle": (".subtitle, .title-blurb, .deck, .dek",),  # a selector group: synonyms, any of them
    "date": ("span.date", ".date-line .date", ".date, .pubdate, .publish-date, .published"),
    "time": ("time[datetime]",),
    "updated": (".updated, .pubup",),
    "byline": (".byline", ".author, [itemprop=author], [rel=author]"),
    "info": (".info", ".date-line"),
    "dateline": (".dateline",),
    "body": ("div.body", ".body:not(header)", ".article-body", "[itemprop=articleBody]"),
    "image_blocks": (".media-inline", "figure", "[data-media-id]"),
    "tags": (".tags, .tags-list",),
    "related": (".related",),
    "article_id": ("[data-article-id]",),
    "share_url": ("[data-a2a-url]",),
}

_ARTICLE_ID_RE = re.compile(r"/Article/(\d+)(?:[/.?#]|$)", re.I)
_CONTENT_TYPE_RE = re.compile(r"\bcontent-type-(\d+)\b")
# Whole titles of error pages served with 200 (a story may well be titled "Error Rates Fall").
_SOFT_404_RE = re.compile(
    r"^(?:(?:404\s*[-:|]?\s*)?page not found|not found|404|error|server error|access denied)\.?$", re.I
)
_LABEL_TAGS = ("span", "strong", "b", "h2", "h3", "h4", "p", "div", "dt", "label")
_TAGS_LABEL_RE = re.compile(r"^(?:Tags?|Topics?|Keywords?)\s*:?$", re.I)
_RELATED_LABEL_RE = re.compile(r"^(?:Related(?: Stories| Links| Articles| Content)?|More Stories)\s*:?$", re.I)


def parse_story(page: Page) -> Story | ParseError:
    """The story on a page, or a ParseError when it has no title or no body paragraphs."""
    url = page.url
    article = page.first(STORY["article"])
    header = page.first(STORY["header"], article) if article is not None else None
    fields = _header_fields(page, header, article)
    canonical = abs_url(url, page.link("canonical") or page.meta("og:url"))
    ref = page.ref
    story_id = ref.id if ref.type == "story" else _article_id(page, article, canonical)
    if story_id is None:
        return ParseError(url, "unknown_page", "no article id in the URL or the page", "story")
    title, title_from_page = _title(page, fields)
    if not title or (len(title) < 40 and _SOFT_404_RE.match(title)):
        return ParseError(url, "no_title", f"no story title (found {title!r})", "story")
    body_el = page.first(STORY["body"], article) if article is not None else None
    tags_el, related_el = _labelled_regions(page, article, body_el)
    try:
        body = _body(page, article, body_el, title, {tags_el, related_el} - {None})
    except TooDeep as exc:
        return ParseError(url, "no_body", str(exc), "story")
    extraction = "template"
    if not body.paragraphs and title_from_page:
        body.paragraphs = generic_paragraphs(page.raw.decode("utf-8", "replace"), url, title)
        extraction = "generic"
        fields = {**_printed_meta_lines(page, title, body.paragraphs), **fields}
        body.dateline = _split_printed_dateline(body.paragraphs)
    if not body.paragraphs:
        return ParseError(url, "no_body", "no body paragraphs", "story")
    byline = fields.get("byline") or _byline_from_info(fields.get("info"))
    authors, organisation = split_byline(byline)
    return Story(
        id=story_id,
        kind=_kind(ref, canonical, article),
        url=url,
        canonical_url=canonical,
        title=title,
        subtitle=fields.get("subtitle"),
        published=_published(page, fields, title),
        updated=parse_date(fields.get("updated")) or parse_date(page.meta("article:modified_time")),
        byline=byline,
        authors=authors,
        organisation=organisation,
        dateline=clean_dateline(fields.get("dateline")) or body.dateline,
        paragraphs=body.paragraphs,
        body_text="\n\n".join(body.paragraphs),
        images=body.images or _images_outside_body(page, article, body_el),
        tags=_tags(page, article, tags_el),
        related=_related(page, related_el),
        spotlights=body.spotlights,
        extraction=extraction,
    )


# ---------------------------------------------------------------- header fields

def _header_fields(page: Page, header: Element | None, article: Element | None) -> dict[str, str]:
    """Text of each header field the template table finds (the title also anywhere in the article)."""
    fields: dict[str, str] = {}
    for name in ("title", "subtitle", "date", "updated", "byline", "info", "dateline"):
        scopes = [header, article] if name == "title" else [header]
        for scope in scopes:
            if scope is None:
                continue
            el = page.first(STORY[name], scope)
            text = text_of(el) if el is not None else ""
            if text:
                fields[name] = text
                break
    time_el = page.first(STORY["time"], header) if header is not None else None
    if time_el is not None:
        fields["time"] = time_el.get("datetime") or ""
    return fields


def _title(page: Page, fields: dict[str, str]) -> tuple[str | None, bool]:
    """(title, whether the page itself names it): the template's h1, the page's only h1, og:title,
    twitter:title, JSON-LD headline; else the ``<title>`` up to its first " > " (which an app shell
    has too)."""
    value = (fields.get("title") or _only_h1(page) or page.meta("og:title") or page.meta("twitter:title")
             or _ld(page, "headline"))
    if value:
        return norm(value), True
    title = page.title()
    return (norm_or_none(title.split(" > ")[0]) if title else None), False


_MAX_H1 = 5


def _only_h1(page: Page) -> str | None:
    """The text of the page's one and only non-empty ``<h1>`` (a page's single h1 is its title)."""
    h1s = list(islice(page.root.iter("h1"), _MAX_H1 + 1))
    if len(h1s) > _MAX_H1:
        return None  # a page of many headings names no single title
    found: list[str] = []
    for h1 in h1s:
        text = text_of(h1)
        if text:
            found.append(text)
            if len(found) > 1:
                return None
    return found[0] if found else None


def _published(page: Page, fields: dict[str, str], title: str) -> str | None:
    """Structured first (article:published_time, <time datetime>), then the printed date, then a
    date the title states (Contracts pages print none), then JSON-LD."""
    return (parse_date(page.meta("article:published_time")) or parse_date(fields.get("time"))
            or parse_date(fields.get("date")) or date_in_title(title) or date_in_title(page.meta("og:title"))
            or parse_date(_ld(page, "datePublished")))


_MAX_META_LINE = 160


def _printed_meta_lines(page: Page, title: str, paragraphs: list[str]) -> dict[str, str]:
    """Without the template: the date and "By ..." lines printed between the title and the body
    ("Dec. 7, 2023 | By David Vergun , DOD News"), found by their words, not their classes; a
    line of the extracted text printed between the title and them is the subtitle (it is taken
    out of ``paragraphs``)."""
    body = page.root.find("body")
    if body is None:
        return {}
    lines = lines_of(body)
    start = lines.index(title) + 1 if title in lines else 0
    window = lines[start:start + 12]
    meta = [i for i, line in enumerate(window) if len(line) <= _MAX_META_LINE
            and (_byline_from_info(line) or _printed_date(line))]
    if not meta:
        return {}
    found: dict[str, str] = {}
    lead = [line for line in window[:meta[0]] if line in paragraphs]
    if lead:
        if len(lead) > 1 or lead[0] != paragraphs[0] or len(paragraphs) < 2:
            return {}  # the date and byline come after story text: they are not the header's
        found["subtitle"] = paragraphs.pop(0)
    for i in meta:
        line = window[i]
        if line in paragraphs:
            break
        date = _printed_date(line)
        # "June 18, 2025 | U.S. Army Public Affairs | <share menu>": the part between the first two bars.
        byline = _byline_from_info(line) or (norm_or_none(line.split("|")[1]) if date and "|" in line else None)
        if byline and "byline" not in found:
            found["byline"] = byline
        if date and "date" not in found:
            found["date"] = date
    return found


def _printed_date(line: str) -> str | None:
    """The date a header line prints first: "Dec. 7, 2023" alone or "June 18, 2025 | ..."."""
    head = line.split("|", 1)[0].strip()
    return head if len(head) < 40 and parse_date(head) else None


# "COLLEVILLE-SUR-MER, France — U.S. and allied leaders...", "LUXEMBOURG (AFNS) -- More than...":
# a capitalised place, a dash, the story.
_PRINTED_DATELINE_RE = re.compile(
    r"^([A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ.'\- ]{2,}(?:, [A-Z][\w.]*(?: [A-Z][\w.]*)*)?(?: \([A-Z]+\))?) ?(?:--|—|–)(?: (\S.*))?$")


def _split_printed_dateline(paragraphs: list[str]) -> str | None:
    """The dateline opening the first paragraph, cut from it (the template marks it in bold; the
    generic extractor's text only has its words)."""
    m = _PRINTED_DATELINE_RE.match(paragraphs[0]) if paragraphs else None
    if m is None:
        return None
    if m.group(2):
        paragraphs[0] = m.group(2)
    elif len(paragraphs) > 1:
        del paragraphs[0]  # the dateline printed on its own line above the story
    else:
        return None
    return m.group(1).strip()


def _byline_from_info(info: str | None) -> str | None:
    """Without a .byline element: the "By ..." part of "Dec. 7, 2023 | By A , Org"."""
    for part in (info or "").split("|"):
        if norm(part).lower().startswith("by "):
            return norm(part)
    return None


def _ld(page: Page, key: str) -> str | None:
    """A string field of the page's first JSON-LD article object."""
    for item in page.json_ld():
        kind = item.get("@type")
        kinds = kind if isinstance(kind, list) else [kind]
        if any(isinstance(k, str) and k.endswith("Article") for k in kinds):
            value = item.get(key)
            if isinstance(value, str) and value.strip():
                return value
    return None


def _article_id(page: Page, article: Element | None, canonical: str | None) -> int | None:
    """data-article-id, else the id in the canonical URL, else in the share menu's URL."""
    el = page.first(STORY["article_id"])
    value = (el.get("data-article-id") or "").strip() if el is not None else ""
    if value.isdigit():
        return int(value)
    share = page.first(STORY["share_url"], article)
    for candidate in (canonical, share.get("data-a2a-url") if share is not None else None):
        m = _ARTICLE_ID_RE.search(candidate or "")
        if m:
            return int(m.group(1))
    return None


def _kind(ref: PageRef, canonical: str | None, article: Element | None) -> str:
    """Kind from the URL grammar (the fetched URL, then the canonical one), then the article's
    ``content-type-N`` class; news-story otherwise."""
    if ref.type == "story" and ref.kind:
        return ref.kind
    cref = classify_url(canonical) if canonical else None
    if cref is not None and cref.type == "story" and cref.kind:
        return cref.kind
    m = _CONTENT_TYPE_RE.search(article.get("class") or "") if article is not None else None
    return CONTENT_TYPE_KIND.get(int(m.group(1)), "news-story") if m else "news-story"


# ---------------------------------------------------------------- body, images, tags, related

def _body(page: Page, article: Element | None, body_el: Element | None, title: str,
          skip: set[Element]) -> BodyReader:
    """The body element's reading; without one, the article's text blocks (layout text aside)."""
    if body_el is not None:
        return BodyReader(page.url, body_el, title)
    return BodyReader(page.url, article, title, blocks_only=True, skip=skip)


def _images_outside_body(page: Page, article: Element | None, body_el: Element | None) -> list[Image]:
    """Image blocks of the article outside its body (only the site's own image class next to a
    body element; any image block when the article has none)."""
    if article is None:
        return []
    chain = STORY["image_blocks"][:1] if body_el is not None else STORY["image_blocks"]
    blocks = [block for block in page.all_of_first(chain, article) if body_role(block) == "image"]
    found = (images.parse_image(block, page.url) for block in blocks)
    return [img for img in found if img is not None]


def _labelled_regions(page: Page, article: Element | None,
                      body: Element | None) -> tuple[Element | None, Element | None]:
    """The tags and related regions: by class, else by their printed label ("Tags:", "Related
    Stories") whose parent holds the links (a redesign keeps the words, not the classes), outside
    the body."""
    if article is None:
        return None, None
    tags = page.first(STORY["tags"], article)
    related = page.first(STORY["related"], article)
    if tags is None or related is None:
        for el in _outside(article, body, _LABEL_TAGS):
            text = (el.text or "").strip()
            if not text or len(el) > 1 or len(text) > 24:
                continue
            if tags is None and _TAGS_LABEL_RE.match(text):
                tags = el.getparent()
            elif related is None and _RELATED_LABEL_RE.match(text):
                related = el.getparent()
    return tags, related


def _outside(root: Element, skip: Element | None, tags: tuple[str, ...]) -> list[Element]:
    """Elements named ``tags`` below ``root``, except inside ``skip``."""
    if skip is None:
        return list(root.iter(*tags))
    inside = set(skip.iter(*tags))
    return [el for el in root.iter(*tags) if el not in inside]


def _tags(page: Page, article: Element | None, region: Element | None) -> list[str]:
    anchors = region.iter("a") if region is not None else []
    return list(dict.fromkeys(name for name in (text_of(a) for a in anchors) if name))


def _related(page: Page, region: Element | None) -> list[RelatedLink]:
    """Related stories: every article link of this site in the region, once per id.

    A link to another host is not a related story of this site: AFPIMS sites (af.mil, spaceforce.mil)
    use the same /Article/<id>/ grammar with their own ids, which would collide with ours.
    """
    out: dict[int, RelatedLink] = {}
    if region is None:
        return []
    for a in region.iter("a"):
        href = abs_url(page.url, a.get("href"))
        m = _ARTICLE_ID_RE.search(href or "")
        if href and m and int(m.group(1)) not in out and same_site(page.url, href):
            out[int(m.group(1))] = RelatedLink(id=int(m.group(1)), url=href, title=text_of(a) or None)
    return list(out.values())
