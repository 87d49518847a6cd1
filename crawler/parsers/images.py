"""One image block (a story's ``.media-inline``, a photo page's info block) -> :class:`Image`.

Classes are tried first; when they are missing the labels the site prints ("Photo By:", "VIRIN:",
"Download: Full Size (...)") are matched in the block's text, and the VIRIN and media id fall back
to the media.defense.gov URL grammar, which has been stable since 2015.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from crawler.parsers.dom import Element, Page, Sel, abs_url, first_attr, first_match, first_text, lines_of, sels
from crawler.parsers.dom import text_of as _text_of
from crawler.parsers.text import norm_or_none, parse_size, strip_credit_label
from crawler.parsers.virin import find_virin, parse_virin, virin_from_filename
from crawler.records import Image, Virin
from crawler.urls import file_name_from_media_url, media_id_from_media_url, photo_page_url

_IGPHOTO_RE = re.compile(r"/igphoto/(\d+)(?:/|$)", re.I)
_LABEL_LINE_RE = re.compile(r"^(?:•\s*)?(?:Download|Photo\s+By|Image\s+By|VIRIN)\b", re.I)
_CREDIT_RE = re.compile(r"(?:Photo|Image)\s+by\s*:\s*(.*?)\s*(?:\||VIRIN\s*:|$)", re.I)
_DOWNLOAD_WORDS = ("full size", "download")


@dataclass(frozen=True)
class ImageSelectors:
    """Where each image field lives in one kind of block; every chain is tried in order."""

    img: tuple[Sel, ...]
    title: tuple[Sel, ...]
    caption: tuple[Sel, ...]
    credit: tuple[Sel, ...]
    virin: tuple[Sel, ...]
    download: tuple[Sel, ...]
    page_link: tuple[Sel, ...]
    media_id: tuple[Sel, ...]


INLINE = ImageSelectors(
    img=sels("img",),
    title=sels("div.mtitle", ".mtitle"),
    caption=sels("div.caption", ".caption"),
    credit=sels("div.credit", ".credit", ".photographer"),
    virin=sels("div.virin", ".virin"),
    download=sels("a.download-link",),
    page_link=sels("a[href*=igphoto]",),
    media_id=sels("[data-media-id]",),
)


def parse_image(
    page: Page, block: Element, sel: ImageSelectors = INLINE, derive_page_url: bool = True
) -> Image | None:
    """An :class:`Image` from one block, or None when the block holds no image at all (e.g. video).

    ``derive_page_url`` builds the igphoto page URL from the media id when the block links none;
    off for sites whose photo pages have another URL shape (af.mil 2016).
    """
    base = page.url
    img = first_match(page, block, sel.img)
    src = abs_url(base, _img_src(img))
    download_el = first_match(page, block, sel.download)
    if download_el is None:
        download_el = _download_by_text(block)
    download_url = abs_url(base, download_el.get("href")) if download_el is not None else None
    page_link = abs_url(base, first_attr(page, block, sel.page_link, "href"))
    media_id = _media_id(first_attr(page, block, sel.media_id, "data-media-id"), src, download_url, page_link)
    if img is None and media_id is None:
        return None
    lines = _LazyLines(block)
    alt = norm_or_none(img.get("alt")) if img is not None else None
    title = first_text(page, block, sel.title)
    return Image(
        media_id=media_id,
        page_url=page_link or (photo_page_url(media_id, _site(base)) if media_id and derive_page_url else None),
        src=src,
        download_url=download_url,
        alt=alt,
        title=title,
        caption=first_text(page, block, sel.caption) or _caption_from_lines(lines, alt, title),
        credit=_credit(page, block, sel, lines),
        size_bytes=parse_size(_text_of(download_el)) if download_el is not None else _size(lines),
        virin=_virin(page, block, sel, lines, download_url, src),
    )


class _LazyLines:
    """The block's text lines, computed only when a label fallback needs them."""

    def __init__(self, block: Element) -> None:
        self._block = block
        self._lines: list[str] | None = None

    def __iter__(self) -> Iterator[str]:
        if self._lines is None:
            self._lines = lines_of(self._block)
        return iter(self._lines)


def _img_src(img: Element | None) -> str | None:
    if img is None:
        return None
    return img.get("src") or img.get("data-src") or img.get("data-original")


def _download_by_text(block: Element) -> Element | None:
    """An anchor labelled "Download ..." / "Full Size (...)" when no download class is present."""
    for a in block.iter("a"):
        if a.get("href") and any(w in _text_of(a).lower() for w in _DOWNLOAD_WORDS):
            return a
    return None


def _media_id(attr: str | None, src: str | None, download_url: str | None, page_link: str | None) -> int | None:
    """data-media-id, else the id in a media.defense.gov path, else the igphoto link's id."""
    if attr and attr.strip().isdigit():
        return int(attr.strip())
    for url in (src, download_url):
        found = media_id_from_media_url(url)
        if found is not None:
            return found
    m = _IGPHOTO_RE.search(page_link or "")
    return int(m.group(1)) if m else None


def _site(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "https://www.war.gov"


def _credit(page: Page, block: Element, sel: ImageSelectors, lines: _LazyLines) -> str | None:
    value = first_text(page, block, sel.credit)
    if value:
        return _cut_virin(strip_credit_label(value))
    for line in lines:
        m = _CREDIT_RE.search(line)
        if m and m.group(1).strip():
            return norm_or_none(m.group(1))
    return None


def _cut_virin(credit: str | None) -> str | None:
    """A credit element that also holds "| VIRIN: ..." (spaceforce template) keeps only the name."""
    if not credit:
        return None
    return norm_or_none(re.split(r"\s*\|\s*|\s*VIRIN\s*:", credit, maxsplit=1, flags=re.I)[0])


def _size(lines: _LazyLines) -> int | None:
    for line in lines:
        size = parse_size(line)
        if size is not None:
            return size
    return None


def _virin(page: Page, block: Element, sel: ImageSelectors, lines: _LazyLines, *urls: str | None) -> Virin | None:
    value = first_text(page, block, sel.virin)
    if value:
        return parse_virin(value)
    found = find_virin("\n".join(line for line in lines if "VIRIN" in line.upper()))
    if found:
        return found
    for url in urls:
        found = virin_from_filename(file_name_from_media_url(url))
        if found:
            return found
    return None


def _caption_from_lines(lines: _LazyLines, alt: str | None, title: str | None) -> str | None:
    """Without a caption class: the block's text minus label lines, the alt text and the title."""
    skip = {alt, title}
    rest = [line for line in lines if line not in skip and not _LABEL_LINE_RE.match(line)]
    return norm_or_none(" ".join(rest))
