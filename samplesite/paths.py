"""The sample site's own URL table: where each page lives, written out as a server routes it.

The stand-in site must not borrow the crawler's URL grammar (``core/urls.py``): a mistake there would
then be served by the site and accepted by the crawler alike, and no test could catch it. This table
is the site's side of that contract, written independently of the product, so the end-to-end tests
check the crawler against a separate model of war.gov.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

DEFAULT_SITE = "https://www.war.gov"

# kind -> (listing page, story path prefix), with the site's own casing.
SECTIONS: dict[str, tuple[str, str]] = {
    "news-story": ("/News/News-Stories/", "/News/News-Stories/Article/Article/"),
    "feature-story": ("/News/Feature-Stories/", "/News/Feature-Stories/Story/Article/"),
    "release": ("/News/Releases/", "/News/Releases/Release/Article/"),
    "transcript": ("/News/Transcripts/", "/News/Transcripts/Transcript/Article/"),
    "speech": ("/News/Speeches/", "/News/Speeches/Speech/Article/"),
    "advisory": ("/News/Advisories/", "/News/Advisories/Advisory/Article/"),
    "contract": ("/News/Contracts/", "/News/Contracts/Contract/Article/"),
}
STORY_KINDS = tuple(SECTIONS)
# The RSS handler's ContentType parameter -> the kind of story that feed lists.
FEED_KIND: dict[int, str] = {1: "news-story", 2: "transcript", 3: "advisory", 9: "release", 11: "speech",
                             400: "contract", 800: "feature-story"}
FEED_PATH = "/DesktopModules/ArticleCS/RSS.ashx"
FEED_SITE = 945
PHOTO_PREFIX = "/Multimedia/Photos/igphoto/"

_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Route:
    """The page a path asks for: ``page`` is story|photo|listing|feed|robots|other."""

    page: str
    id: int | None = None
    kind: str | None = None


def route(path: str) -> Route:
    """Which page the server answers ``path`` with (paths are case-insensitive on this IIS site)."""
    low = (path or "/").lower()
    if low == "/robots.txt":
        return Route("robots")
    if low.startswith(FEED_PATH.lower()):
        return Route("feed")
    for kind, (_, prefix) in SECTIONS.items():
        if low.startswith(prefix.lower()):
            number = _first_segment(path[len(prefix):])
            return Route("story", number, kind) if number is not None else Route("other")
    if low.startswith(PHOTO_PREFIX.lower()):
        number = _first_segment(path[len(PHOTO_PREFIX):])
        return Route("photo", number) if number is not None else Route("other")
    for kind, (listing, _) in SECTIONS.items():
        if low.rstrip("/") + "/" == listing.lower():
            return Route("listing", kind=kind)
    return Route("other")


def _first_segment(rest: str) -> int | None:
    segment = rest.split("/", 1)[0]
    return int(segment) if _NUMBER.fullmatch(segment) else None


def story_url(kind: str, story_id: int, slug: str = "", site: str = DEFAULT_SITE) -> str:
    return f"{site.rstrip('/')}{SECTIONS[kind][1]}{story_id}/{slug}{'/' if slug else ''}"


def photo_url(media_id: int, site: str = DEFAULT_SITE) -> str:
    return f"{site.rstrip('/')}{PHOTO_PREFIX}{media_id}/"


def listing_url(kind: str, page: int = 1, site: str = DEFAULT_SITE) -> str:
    url = f"{site.rstrip('/')}{SECTIONS[kind][0]}"
    return url if page <= 1 else f"{url}?Page={page}"


def feed_url(content_type: int, site: str = DEFAULT_SITE, max_items: int = 100) -> str:
    query = urlencode({"ContentType": content_type, "Site": FEED_SITE, "max": max_items})
    return f"{site.rstrip('/')}{FEED_PATH}?{query}"
