"""Plain typed records that the parsers return and the archive stores.

Every parser returns exactly one of these. They carry no markup and no Scrapy objects, so the
archive, the monitor and the CLI can use them without knowing how a page was fetched.
``to_dict()`` gives the stable JSON shape printed by ``defwatch parse --json``: its keys are a
contract with users' scripts, add to them but never rename.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Bump whenever a parser's output can change for the same bytes. Stored versions remember it,
# and ``defwatch reparse`` refreshes records made by an older parser without emitting events.
PARSER_VERSION = "1.1.0"


@dataclass
class Virin:
    """A Visual Information Record Identification Number, e.g. ``231111-F-NU281-1013M``."""

    raw: str
    shot_date: str | None = None  # ISO date; None when the six digits are not a valid date
    branch_code: str | None = None
    branch: str | None = None
    originator_id: str | None = None  # VISION ID, DVIAN or legacy SSN-based field
    sequence: str | None = None  # kept as text: leading zeros matter ("001")
    suffix: str | None = None  # trailing letter(s) after the sequence, e.g. "M"; never stripped


@dataclass
class Image:
    """One image: an inline block of a story, or the subject of a photo page."""

    media_id: int | None
    page_url: str | None = None  # the /Multimedia/Photos/igphoto/<id>/ page
    src: str | None = None
    download_url: str | None = None
    alt: str | None = None
    title: str | None = None
    caption: str | None = None
    credit: str | None = None  # without the "Photo By:" label
    size_bytes: int | None = None
    virin: Virin | None = None


@dataclass
class Photo(Image):
    """A photo page (``/Multimedia/Photos/igphoto/<id>/``)."""

    type: str = "photo"
    url: str | None = None
    published: str | None = None
    parser_version: str = PARSER_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _ordered(asdict(self), first=("type",))


@dataclass
class RelatedLink:
    id: int
    url: str
    title: str | None = None


@dataclass
class Story:
    """A story page of any article kind."""

    id: int
    kind: str
    url: str
    type: str = "story"
    canonical_url: str | None = None
    title: str | None = None
    subtitle: str | None = None
    published: str | None = None  # ISO 8601 date or datetime
    updated: str | None = None
    byline: str | None = None  # raw byline text as printed
    authors: list[str] = field(default_factory=list)
    organisation: str | None = None
    dateline: str | None = None
    paragraphs: list[str] = field(default_factory=list)
    body_text: str = ""  # paragraphs joined by a blank line
    images: list[Image] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    related: list[RelatedLink] = field(default_factory=list)
    spotlights: list[dict[str, str]] = field(default_factory=list)  # {title, url}
    # How the body was found: "template" (the page's own markup, crawler.parsers' tables) or
    # "generic" (the template is gone, a generic extractor read the page). A switch between the two
    # is a change of method, not of the story.
    extraction: str = "template"
    parser_version: str = PARSER_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _ordered(asdict(self), first=("type", "id", "kind"))


@dataclass
class ListingItem:
    id: int
    url: str
    title: str | None = None
    published: str | None = None
    kind: str | None = None
    image_url: str | None = None
    summary: str | None = None


@dataclass
class Listing:
    """A listing page (``/News/News-Stories/?Page=N``)."""

    url: str
    items: list[ListingItem] = field(default_factory=list)
    next_page: str | None = None
    type: str = "listing"
    parser_version: str = PARSER_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _ordered(asdict(self), first=("type",))


@dataclass
class Feed:
    """An ArticleCS RSS feed; items share the listing item shape."""

    url: str
    items: list[ListingItem] = field(default_factory=list)
    title: str | None = None
    type: str = "feed"
    parser_version: str = PARSER_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _ordered(asdict(self), first=("type",))


@dataclass
class ParseError:
    """A page that could not be turned into a record. Never stored as a version.

    ``reason`` is a short machine-readable code (``no_title``, ``no_body``, ``block_page``,
    ``not_html``, ``unknown_page``, ``too_deep``: elements with content nested past what is kept,
    ``parser_error``: a bug), ``detail`` says it for a person.
    """

    url: str
    reason: str
    detail: str = ""
    page_type: str | None = None  # what the URL said the page should have been
    type: str = "error"
    parser_version: str = PARSER_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _ordered(asdict(self), first=("type",))


Record = Story | Photo | Listing | Feed | ParseError


def _ordered(data: dict[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    head = {k: data[k] for k in first if k in data}
    return head | {k: v for k, v in data.items() if k not in head}
