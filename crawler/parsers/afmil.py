"""af.mil ArticleCS print view (2016, ``Print.aspx?...&Article=N``) -> :class:`Story`.

The oldest real markup of the platform (reference/MARKUP.md §1a): body paragraphs are
``<br><br>``-separated text in ``div.da_black``, images are a gallery after the body, credits sit
inside the caption, and the VIRIN is only the image file name. HTTrack-mirrored copies have their
media.defense.gov links rewritten to relative paths; those are repaired before reading.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

from core.records import Image, ParseError, RelatedLink, Story
from core.urls import classify_url, urlsplit
from crawler.parsers import images
from crawler.parsers.dom import Element, Page
from crawler.parsers.extract import abs_url, lines_of, same_site, text_of
from crawler.parsers.text import clean_dateline, norm, norm_or_none, parse_date, split_byline

_ARTICLE_PATH_RE = re.compile(r"/Article/(\d+)(?:[/.?#]|$)", re.I)
_MIRRORED_MEDIA_RE = re.compile(r"^(?:\.\./|/)*(?:[^/]*/)*?(media\.defense\.gov/.*)$", re.I)
_DATELINE_RE = re.compile(r"(?:--|—|–)\s*$")
_CREDIT_RE = re.compile(
    r"\(([^()]*\b(?:photo|photos|illustration|graphic|image|video|courtesy|art)\b[^()]*)\)\s*$", re.I
)
_MAILTO_URL_RE = re.compile(r"(https?://\S+?/Article/\d+\S*)", re.I)


# The print view template: field -> CSS selectors, in order of preference.
PRINT_VIEW: dict[str, tuple[str, ...]] = {
    "root": ("div.da_print_body", "div.da_print_bio"),
    "title": ("h1.title", "h1.biotitleprint", "h1"),
    "info": ("p.da_story_info",),
    "body": ("div.da_black",),
    "media_items": (".da_media_item",),
    "tags": (".da_body_center .inner a",),
    "related": (".da_related_item .item a[href]", ".da_related_item a[href]"),
}


def is_print_view(body: bytes) -> bool:
    """da_print_body (articles, fact sheets) or da_print_bio (biographies), in one scan."""
    return b"da_print_b" in body


def parse_print_view(page: Page) -> Story | ParseError:
    """The story of an af.mil print view; ParseError when it has no title, body or article id."""
    url = page.url
    root = page.first(PRINT_VIEW["root"])
    if root is None:
        return ParseError(url, "unknown_page", "no div.da_print_body", "story")
    title = next((t for t in (text_of(el) for el in page.all_of_first(PRINT_VIEW["title"], root)) if t), None)
    if not title:
        return ParseError(url, "no_title", "no h1.title in the print view", "story")
    canonical = _canonical(page)
    story_id = _story_id(page, canonical)
    if story_id is None:
        return ParseError(url, "unknown_page", "no Article= id in the URL, form or e-mail link", "story")
    paragraphs, dateline = _paragraphs(page.first(PRINT_VIEW["body"], root))
    if not paragraphs:
        return ParseError(url, "no_body", "empty div.da_black", "story")
    byline, published = _story_info(page.first(PRINT_VIEW["info"], root))
    authors, organisation = split_byline(byline)
    ref = classify_url(canonical or url)
    return Story(
        id=story_id,
        kind=ref.kind if ref.type == "story" and ref.kind else "news-story",
        url=url,
        canonical_url=canonical,
        title=title,
        published=published,
        byline=byline,
        authors=authors,
        organisation=organisation,
        dateline=dateline,
        paragraphs=paragraphs,
        body_text="\n\n".join(paragraphs),
        images=_images(page),
        tags=list(dict.fromkeys(t for t in (text_of(a) for a in page.all_of_first(PRINT_VIEW["tags"])) if t)),
        related=_related(page),
    )


def _canonical(page: Page) -> str | None:
    """The article page URL, printed only inside the E-MAIL link's body."""
    for a in page.root.iter("a"):
        href = a.get("href") or ""
        if href.lower().startswith("mailto:"):
            m = _MAILTO_URL_RE.search(unquote(href))
            if m:
                return m.group(1)
    return None


def _story_id(page: Page, canonical: str | None) -> int | None:
    """``Article=`` of the print URL, else of the form action, else the id in the article URL."""
    actions = [form.get("action") or "" for form in page.root.iter("form")]
    for candidate in (page.url, *actions, canonical or ""):
        for key, value in parse_qsl(urlsplit(candidate).query):
            if key.lower() == "article" and value.strip().isdigit():
                return int(value)
        m = _ARTICLE_PATH_RE.search(candidate)
        if m:
            return int(m.group(1))
    return None


def _story_info(info: Element | None) -> tuple[str | None, str | None]:
    """(byline, published) from "By X,   Unit <span>/ Published May 27, 2015</span>"; fact sheets
    print only "Published ..." and biographies nothing."""
    if info is None:
        return None, None
    span = info.find("span")
    date_text = text_of(span) if span is not None else text_of(info)
    lead = norm(info.text)
    byline = lead if lead and not lead.lower().startswith("published") else None
    return byline, parse_date(date_text)


def _paragraphs(body: Element | None) -> tuple[list[str], str | None]:
    """Every ``<br>``-separated line is a paragraph (news text uses ``<br><br>``; fact sheets and
    biographies put headings and list lines on single ``<br>``s). A leading bold "CITY (AFNS) --"
    becomes the dateline."""
    if body is None:
        return [], None
    lines = lines_of(body)
    lead = body[0] if len(body) and not (body.text or "").strip() and body[0].tag in ("strong", "b") else None
    if lines and lead is not None:
        head = text_of(lead)
        if _DATELINE_RE.search(head) and lines[0].startswith(head):
            rest = norm(lines[0][len(head):])
            return ([rest] if rest else []) + lines[1:], clean_dateline(head)
    return lines, None


def _images(page: Page) -> list[Image]:
    out: list[Image] = []
    for item in page.select(PRINT_VIEW["media_items"][0]):
        _repair_mirrored_links(item)
        # No classes to go by: the download link is found by its "DOWNLOAD HI-RES" text.
        image = images.parse_image(item, page.url, table={"img": ("img",)}, derive_page_url=False)
        if image is not None:
            image.caption = _caption(item)
            image.credit = _credit(image.caption)
            out.append(image)
    return out


def _caption(item: Element) -> str | None:
    """The last <p> that is not the DOWNLOAD / PHOTO DETAILS link line."""
    paragraphs = [p for p in item.iter("p") if next(p.iter("a"), None) is None]
    return norm_or_none(text_of(paragraphs[-1])) if paragraphs else None


def _repair_mirrored_links(item: Element) -> None:
    """HTTrack turned ``http://media.defense.gov/...`` into ``../../../media.defense.gov/...``."""
    for el in item.iter("img", "a"):
        for attr in ("src", "href"):
            value = el.get(attr)
            if value and not value.lower().startswith(("http:", "https:")):
                m = _MIRRORED_MEDIA_RE.match(value)
                if m:
                    el.set(attr, "http://" + m.group(1))


def _credit(caption: str | None) -> str | None:
    """ "... (U.S. Air Force photo/Jim Varhegyi)" -> "U.S. Air Force photo/Jim Varhegyi"."""
    m = _CREDIT_RE.search(caption or "")
    return norm_or_none(m.group(1)) if m else None


def _related(page: Page) -> list[RelatedLink]:
    out: dict[int, RelatedLink] = {}
    for a in page.all_of_first(PRINT_VIEW["related"]):
        href = abs_url(page.url, a.get("href"))
        m = _ARTICLE_PATH_RE.search(href or "")
        if href and m and int(m.group(1)) not in out and same_site(page.url, href):
            out[int(m.group(1))] = RelatedLink(id=int(m.group(1)), url=href, title=text_of(a) or None)
    return list(out.values())
