"""Listing pages (``/News/News-Stories/?Page=N``) -> :class:`Listing`.

Every item is a custom element (``<listing-with-preview>``, ``<listing-titles-only>`` on the 2024
Contracts listing) whose data sits in attributes, rendered client-side by Vue. Attributes are read
by name, so their order never matters (sources differ).
"""

from __future__ import annotations

import re

from core.records import Listing, ListingItem, ParseError
from core.urls import CONTENT_TYPE_KIND, classify_url
from crawler.parsers.dom import Element, Page
from crawler.parsers.extract import abs_url
from crawler.parsers.text import norm, norm_or_none, parse_date

_ARTICLE_ID_RE = re.compile(r"/Article/(\d+)(?:[/.?#]|$)", re.I)
_NEXT_WORDS = ("next", "»", "›", ">", "→")


# The listing template: field -> CSS selectors, in order of preference.
LISTING: dict[str, tuple[str, ...]] = {
    "items": ("listing-with-preview", "listing-titles-only", "[article-id][article-url]"),
    "container": ("div.alist", ".alist-inner", "feature-template"),
    "pager_links": (".apager .nextprev:not(.disabled) a", ".dgov-pager .nextprev:not(.disabled) a",
                    ".nextprev:not(.disabled) a"),
    "pager_items": (".apager > *", ".dgov-pager li"),
}


def parse_listing(page: Page) -> Listing | ParseError:
    """The items of a listing page; ParseError when the page has none and no next page."""
    url = page.url
    elements = page.all_of_first(LISTING["items"])
    items = [item for item in (listing_item(el, url) for el in elements) if item is not None]
    next_page = _next_page(page)
    if not elements and next_page is None and page.first(LISTING["container"]) is None:
        return ParseError(url, "no_body", "no listing markup (<listing-with-preview>, .alist)", "listing")
    # A listing container without items is a real answer: a page past the last one is empty.
    return Listing(url=url, items=items, next_page=next_page)


def listing_item(el: Element, base_url: str) -> ListingItem | None:
    """One item, or None when it has no article id (nothing to identify it by)."""
    url = abs_url(base_url, el.get("article-url") or el.get("article-url-or-link-absolute")
                   or el.get("article-url-or-link"))
    item_id = _item_id(el.get("article-id"), url)
    if item_id is None:
        return None
    return ListingItem(
        id=item_id,
        url=url or "",
        title=norm_or_none(el.get("article-title")) or _contracts_title(el),
        published=parse_date(el.get("publish-date-jss")) or parse_date(el.get("publish-date-ap")),
        kind=_kind(url, el.get("content-type-val")),
        image_url=abs_url(base_url, norm(el.get("article-image-url")) or None),
        summary=norm_or_none(el.get("article-summary")),
    )


def _contracts_title(el: Element) -> str | None:
    """A Contracts item printed with an empty article-title: the listing's template shows
    "Contracts For {publish-date-ap}" (its Vue template builds the title so)."""
    date = norm(el.get("publish-date-ap"))
    if date and norm(el.get("content-type-name")).lower() == "contracts":
        return f"Contracts For {date}"
    return None


def _item_id(attr: str | None, url: str | None) -> int | None:
    if attr and attr.strip().isdigit():
        return int(attr.strip())
    m = _ARTICLE_ID_RE.search(url or "")
    return int(m.group(1)) if m else None


def _kind(url: str | None, content_type_val: str | None) -> str | None:
    """From the URL grammar; from ``content-type-val`` (9, 400, 800...) when the URL says nothing."""
    ref = classify_url(url) if url else None
    if ref is not None and ref.type == "story":
        return ref.kind
    val = (content_type_val or "").strip()
    return CONTENT_TYPE_KIND.get(int(val)) if val.isdigit() else None


def _next_page(page: Page) -> str | None:
    """The pager's "next" link: rel=next, else a ``.nextprev`` link labelled next (», aria-label),
    else the ``.nextprev`` that comes after the active page (a disabled one is no next page)."""
    url = page.url
    rel_next = page.link("next", anchors=True)
    if rel_next:
        return abs_url(url, rel_next)
    for a in page.all_of_first(LISTING["pager_links"]):
        label = f"{a.get('aria-label', '')} {a.get('title', '')} {''.join(a.itertext())}".lower()
        href = (a.get("href") or "").strip()
        if any(word in label for word in _NEXT_WORDS) and "prev" not in label and href and href != "#":
            return abs_url(url, href)
    return _after_active(page)


def _after_active(page: Page) -> str | None:
    seen_active = False
    for item in page.all_of_first(LISTING["pager_items"]):
        classes = (item.get("class") or "").split()
        if "active" in classes:
            seen_active = True
        elif seen_active and "nextprev" in classes and "disabled" not in classes:
            href = next((a.get("href") for a in item.iter("a") if (a.get("href") or "#") != "#"), None)
            return abs_url(page.url, href)
    return None
