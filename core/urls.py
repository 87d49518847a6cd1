"""The URL grammar of defense.gov / war.gov, in one place.

Identity never depends on the host: a story is its numeric article id, an image is its media id
(the same number in ``/igphoto/<id>/`` and in ``media.defense.gov/YYYY/Mon/DD/<id>/<w>/<h>/0/<VIRIN>.JPG``).
Everything that knows a path shape lives here so the spider, the parsers and the archive agree. The sample
site keeps its own table (``samplesite/paths.py``), so a mistake here is caught by the tests, not served.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, urlencode, urljoin, urlunsplit
from urllib.parse import urlsplit as _urlsplit

from core.constants import DEFAULT_SITE

SITE_HOSTS = frozenset(
    {"www.war.gov", "war.gov", "www.defense.gov", "defense.gov", "media.defense.gov"}
)
MEDIA_HOST = "media.defense.gov"

# path prefix (lower case) -> story kind. Order matters only for readability; prefixes are disjoint.
STORY_PATHS: dict[str, str] = {
    "/news/news-stories/article/article/": "news-story",
    "/news/feature-stories/story/article/": "feature-story",
    "/news/releases/release/article/": "release",
    "/news/transcripts/transcript/article/": "transcript",
    "/news/speeches/speech/article/": "speech",
    "/news/advisories/advisory/article/": "advisory",
    "/news/contracts/contract/article/": "contract",
}
# Canonical (display) casing of the same prefixes, for building URLs.
STORY_PREFIX_BY_KIND: dict[str, str] = {
    "news-story": "/News/News-Stories/Article/Article/",
    "feature-story": "/News/Feature-Stories/Story/Article/",
    "release": "/News/Releases/Release/Article/",
    "transcript": "/News/Transcripts/Transcript/Article/",
    "speech": "/News/Speeches/Speech/Article/",
    "advisory": "/News/Advisories/Advisory/Article/",
    "contract": "/News/Contracts/Contract/Article/",
}
# Listing page of each kind (``?Page=N`` pages it).
LISTING_BY_KIND: dict[str, str] = {
    "news-story": "/News/News-Stories/",
    "feature-story": "/News/Feature-Stories/",
    "release": "/News/Releases/",
    "transcript": "/News/Transcripts/",
    "speech": "/News/Speeches/",
    "advisory": "/News/Advisories/",
    "contract": "/News/Contracts/",
}
# ArticleCS RSS ContentType values (listing ``content-type-val``) -> kind, as far as they are known.
CONTENT_TYPE_KIND: dict[int, str] = {
    1: "news-story",
    9: "release",
    400: "contract",
    800: "feature-story",
    2: "transcript",
    11: "speech",
    3: "advisory",
}
RSS_SITE_ID = 945

_STORY_RE = re.compile(r"/article/(\d+)(?:/|$)", re.I)
_PHOTO_RE = re.compile(r"/igphoto/(\d+)(?:/|$)", re.I)
# media.defense.gov/2023/Dec/07/2003354321/825/780/0/231111-F-NU281-1013M.JPG; the same grammar
# also ends paths under a prefix (a mirror or a local copy serves /media/2024/Sep/27/...).
_MEDIA_RE = re.compile(
    r"/(?P<year>\d{4})/(?P<mon>[A-Za-z]{3})/(?P<day>\d{2})/(?P<media_id>\d+)/(?P<w>-?\d+)/(?P<h>-?\d+)/\d+/(?P<file>[^/?#]+)$"
)


_UNPARSEABLE = SplitResult("", "", "", "", "")


def urlsplit(url: str) -> SplitResult:
    """``urllib.parse.urlsplit`` that never raises: a scraped URL such as ``http://[host/x`` (an
    unbalanced IPv6 bracket) is nothing this site serves, so it splits into empty parts."""
    try:
        return _urlsplit(url)
    except ValueError:
        return _UNPARSEABLE


@dataclass(frozen=True)
class PageRef:
    """What a URL points at: ``type`` is story|photo|listing|feed|robots|media|other."""

    type: str
    id: int | None = None
    kind: str | None = None


def classify_url(url: str) -> PageRef:
    """Tell what kind of page a URL is, from its path alone."""
    parts = urlsplit(url)
    path = parts.path or "/"
    low = path.lower()
    if parts.hostname == MEDIA_HOST and _MEDIA_RE.match(path):  # match: the grammar from the root
        return PageRef("media", media_id_from_media_url(url))
    if low == "/robots.txt":
        return PageRef("robots")
    if low.startswith("/desktopmodules/articlecs/rss.ashx"):
        return PageRef("feed")
    for prefix, kind in STORY_PATHS.items():
        if low.startswith(prefix):
            m = _STORY_RE.search(path)
            return PageRef("story", int(m.group(1)), kind) if m else PageRef("other")
    m = _PHOTO_RE.search(path)
    if m:
        return PageRef("photo", int(m.group(1)))
    for kind, prefix in LISTING_BY_KIND.items():
        if low.rstrip("/") + "/" == prefix.lower():
            return PageRef("listing", kind=kind)
    return PageRef("other")


def story_kind(url: str) -> str | None:
    ref = classify_url(url)
    return ref.kind if ref.type == "story" else None


def media_id_from_media_url(url: str | None) -> int | None:
    """The media id in a media rendition URL (its path ends with the media grammar), or None."""
    if not url:
        return None
    m = _MEDIA_RE.search(urlsplit(url).path)
    return int(m.group("media_id")) if m else None


def file_name_from_media_url(url: str | None) -> str | None:
    """The file name (``231111-F-NU281-1013M.JPG``) of a media rendition URL, or None."""
    if not url:
        return None
    m = _MEDIA_RE.search(urlsplit(url).path)
    return m.group("file") if m else None


def full_size_url(url: str) -> str:
    """The original-size rendition (``/-1/-1/0/``) of a media.defense.gov URL."""
    parts = urlsplit(url)
    m = _MEDIA_RE.match(parts.path)
    if not m:
        return url
    path = "/{year}/{mon}/{day}/{media_id}/-1/-1/0/{file}".format(**m.groupdict())
    return urlunsplit(("https", MEDIA_HOST, path, "", ""))


def photo_page_url(media_id: int, site: str = DEFAULT_SITE) -> str:
    return f"{site.rstrip('/')}/Multimedia/Photos/igphoto/{media_id}/"


def story_url(kind: str, story_id: int, slug: str = "", site: str = DEFAULT_SITE) -> str:
    prefix = STORY_PREFIX_BY_KIND[kind]
    return f"{site.rstrip('/')}{prefix}{story_id}/{slug}{'/' if slug else ''}"


def listing_url(kind: str, page: int = 1, site: str = DEFAULT_SITE) -> str:
    base = f"{site.rstrip('/')}{LISTING_BY_KIND[kind]}"
    return base if page <= 1 else f"{base}?Page={page}"


def feed_url(content_type: int, site: str = DEFAULT_SITE, max_items: int = 100) -> str:
    query = urlencode({"ContentType": content_type, "Site": RSS_SITE_ID, "max": max_items})
    return f"{site.rstrip('/')}/DesktopModules/ArticleCS/RSS.ashx?{query}"


def is_site_url(url: str, extra_hosts: frozenset[str] = frozenset()) -> bool:
    """True when the URL belongs to the watched site (or to an explicitly allowed host)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return False
    host = (parts.hostname or "").lower()
    netloc = parts.netloc.lower()
    return host in SITE_HOSTS or host in extra_hosts or netloc in extra_hosts


def same_site(url: str, page_url: str) -> bool:
    """True when a link found on ``page_url`` stays on the site: one of the site's own hosts, or the
    host the page itself came from (a sample site under ``--site``). Off-site links are never fetched,
    so they are never due either."""
    page_host = urlsplit(page_url).netloc.lower()
    return is_site_url(url, frozenset({page_host}) if page_host else frozenset())


class SiteURLError(ValueError):
    """A site base URL that cannot be used as given; the message names what is wrong with it."""


SITE_EXAMPLE = "http://127.0.0.1:8000"


def site_root(site: str) -> str:
    """``scheme://host[:port]`` of a site base URL (``--site``, ``DEFWATCH_SITE``, ``site =``).

    ``rebase`` uses only the scheme and host of it. So a path, a query string or a fragment would
    be silently dropped, and credentials (``user:password@``) would be stored in ``runs.site`` and
    logged with every URL: each of these raises ``SiteURLError`` naming the problem instead.
    """
    try:
        parts = _urlsplit(site.strip())
        port = parts.port  # raises for a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise SiteURLError(
            f"{_redacted(site)!r} is not a valid URL ({exc}); give a scheme and host like {SITE_EXAMPLE}"
        ) from None
    problem = _site_problem(parts, port)
    if problem:
        raise SiteURLError(f"{_redacted(site)!r} {problem}")
    return f"{parts.scheme}://{parts.netloc}"


_CREDENTIALS_RE = re.compile(r"(//)[^/?#]*@")


def _redacted(site: str) -> str:
    """The URL for an error message, credentials masked: the message is printed and logged."""
    return _CREDENTIALS_RE.sub(r"\1***@", site)


def _site_problem(parts: SplitResult, port: int | None) -> str | None:
    """What is wrong with a split site URL, or None when it is just a scheme and host."""
    if parts.username is not None or parts.password is not None:
        return ("must not carry credentials (user:password@): they would be stored with every run "
                "and logged with every URL")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http or https scheme and host like {SITE_EXAMPLE}"
    if port == 0:
        return "has port 0, which no server listens on"
    dropped = {"path": parts.path if parts.path not in ("", "/") else "",
               "query string": f"?{parts.query}" if parts.query else "",
               "fragment": f"#{parts.fragment}" if parts.fragment else ""}
    found = [f"a {name} ({value})" for name, value in dropped.items() if value]
    if found:
        return (f"has {' and '.join(found)}, which would be silently dropped: only the scheme and host "
                f"are used, like {SITE_EXAMPLE}")
    return None


def rebase(url: str, site: str | None) -> str:
    """Swap the scheme and host of a site URL for ``site`` (``--site``); other URLs are returned as is.

    media.defense.gov URLs are left alone: they name image files, which the crawler never fetches.
    """
    if not site:
        return url
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == MEDIA_HOST or host not in SITE_HOSTS:
        return url
    base = urlsplit(site)
    return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))


def absolute(base: str, href: str | None) -> str | None:
    if not href:
        return None
    return urljoin(base, href.strip())


_CACHE_BUSTERS = frozenset(
    {"cdv", "ver", "v", "_", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"}
)


def normalize_url(url: str) -> str:
    """A stable form for comparing links: lower-case host, no fragment, no cache-busting query keys."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, v) for k, v in pairs if k.lower() not in _CACHE_BUSTERS])
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, query, ""))


def index_key(url: str) -> str:
    """A feed or listing page's identity: its path and query, whatever the host (``--site``)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path
