"""One image block (a story's ``.media-inline``, a photo page's info block) -> :class:`Image`.

A block is read in one pass: each element's class tokens are looked up in a role table (the
"selectors" of this module), so a renamed class is a one-line change. When classes are missing
the labels the site prints ("Photo By:", "VIRIN:", "Download: Full Size (...)") are matched in the
block's text, and the VIRIN and media id fall back to the media.defense.gov URL grammar, which has
been stable since 2015.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from itertools import islice

from crawler.parsers.dom import Element
from crawler.parsers.extract import abs_url, lines_of, own_text, text_of
from crawler.parsers.text import norm, norm_or_none, parse_size, strip_credit_label
from crawler.parsers.virin import find_virin, parse_virin, virin_from_filename
from crawler.records import Image, Virin
from crawler.urls import file_name_from_media_url, media_id_from_media_url, photo_page_url, urlsplit

# class token -> field, for inline story images (first element with a role wins).
INLINE_ROLES: Mapping[str, str] = {
    "mtitle": "title",
    "caption": "caption",
    "credit": "credit",
    "photographer": "credit",
    "virin": "virin",
    "virin-value": "virin",
    "download-link": "download",
}

_IGPHOTO_RE = re.compile(r"/igphoto/(\d+)(?:/|$)", re.I)
# A printed label: everything from it to the end of its line is not caption text.
_LABEL_RE = re.compile(
    r"(?:^|\s)(?:•\s*)?(?:Download(?:\s+Image)?\s*:|Full\s+Size\s*\(|(?:Photo|Image)\s+By\s*:|VIRIN\s*:)", re.I
)
_CREDIT_RE = re.compile(r"(?:Photo|Image)\s+by\s*:\s*(.*?)\s*(?:\||VIRIN\s*:|$)", re.I)
_CUT_VIRIN_RE = re.compile(r"\s*\|\s*|\s*VIRIN\s*:", re.I)
_DOWNLOAD_WORDS = ("full size", "download")


# Tags that can carry a field's class; images, scripts and the like are never read for classes.
_ROLE_TAGS = ("div", "span", "p", "a", "li", "h2", "figcaption")


def scan_block(block: Element, roles: Mapping[str, str]) -> dict[str, Element]:
    """field -> first element with that role; plus "img" and "igphoto" (first igphoto link)."""
    found: dict[str, Element] = {}
    get = roles.get
    for el in block.iterdescendants(*_ROLE_TAGS):
        classes = el.get("class")
        if classes:
            role = get(classes)  # a single class token, the common case: no split needed
            if role is None and " " in classes:
                for token in classes.split():
                    role = get(token)
                    if role is not None:
                        break
            if role is not None and role not in found:
                found[role] = el
    if "title" not in found or "caption" not in found:
        _fuzzy_roles(block, roles, found)
    for img in block.iter("img"):
        found["img"] = img
        break
    for a in block.iter("a"):
        href = a.get("href")
        if href and "igphoto" in href.lower():
            found["igphoto"] = a
            break
    return found


# Substrings that name a field in class tokens of a renamed template ("fig-caption", "photo-credit").
_FUZZY_ROLES = (("caption", "caption"), ("title", "title"), ("credit", "credit"), ("photographer", "credit"),
                ("virin", "virin"), ("download", "download"))


def _fuzzy_roles(block: Element, roles: Mapping[str, str], found: dict[str, Element]) -> None:
    """Fill missing fields from class tokens that contain a field's name (after a redesign)."""
    wanted = set(roles.values())
    for el in block.iter(*_ROLE_TAGS):
        classes = el.get("class")
        if not classes:
            continue
        for token in classes.lower().split():
            for needle, role in _FUZZY_ROLES:
                if needle in token and role in wanted and role not in found:
                    found[role] = el


def parse_image(
    block: Element, base_url: str, roles: Mapping[str, str] = INLINE_ROLES, derive_page_url: bool = True,
    soup: bool = False,
) -> Image | None:
    """An :class:`Image` from one block, or None when the block holds no image at all (e.g. video).

    ``derive_page_url`` builds the igphoto page URL from the media id when the block links none;
    off for sites whose photo pages have another URL shape (af.mil 2016). ``soup``: the block
    swallowed later content (unclosed tags), so each field keeps only its own words.
    """
    found = scan_block(block, roles)
    if soup:
        found = {role: el for role, el in found.items() if role in ("img", "igphoto", "download")} | {
            role: _Own(el) for role, el in found.items() if role not in ("img", "igphoto", "download")}
    img = found.get("img")
    src = abs_url(base_url, _img_src(img))
    download_el = found.get("download")
    if download_el is None:
        download_el = _download_by_text(block)
    download_url = abs_url(base_url, download_el.get("href")) if download_el is not None else None
    link = found.get("igphoto")
    page_link = abs_url(base_url, link.get("href")) if link is not None else None
    media_id = _media_id(block.get("data-media-id"), src, download_url, page_link)
    if img is None and media_id is None:
        return None
    lines = _LazyLines(block)
    alt = norm(img.get("alt")) or None if img is not None else None
    title = _text(found, "title")
    return Image(
        media_id=media_id,
        page_url=page_link or (photo_page_url(media_id, _site(base_url)) if media_id and derive_page_url else None),
        src=src,
        download_url=download_url,
        alt=alt,
        title=title,
        caption=_text(found, "caption") or caption_from_lines(lines, alt, title),
        credit=_credit(_text(found, "credit"), lines),
        size_bytes=parse_size(text_of(download_el)) if download_el is not None else _size(lines),
        virin=_virin(_text(found, "virin"), lines, download_url, src),
    )


def _text(found: dict[str, Element], role: str) -> str | None:
    el = found.get(role)
    if el is None:
        return None
    if isinstance(el, _Own):
        return own_text(el.el) or None
    if len(el) == 0:
        return norm(el.text) or None
    return text_of(el) or None


class _Own:
    """Marks a field element whose text must stop at its first block child (tag soup)."""

    __slots__ = ("el",)

    def __init__(self, el: Element) -> None:
        self.el = el


def is_soup(block: Element) -> bool:
    """True when an image block swallowed body content: another image block or several
    paragraphs inside it (a clean block holds one image and its labels, a dozen elements)."""
    if next(block.iterdescendants("p", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote"), None) is None:
        return False  # the common case, decided by one C-level scan
    for el in block.iter("div", "figure"):
        if el is not block and (el.get("data-media-id") or "media-inline" in (el.get("class") or "")):
            return True
    return len(list(islice(block.iter("p"), 3))) > 2


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
        if a.get("href") and any(w in text_of(a).lower() for w in _DOWNLOAD_WORDS):
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


def _credit(value: str | None, lines: _LazyLines) -> str | None:
    """The credit without its "Photo By:" label (and without a "| VIRIN: ..." tail)."""
    if value:
        if value[:9].lower() == "photo by:":
            credit: str | None = value[9:].strip() or None
        else:
            credit = strip_credit_label(value)
        if credit and ("|" in credit or "VIRIN" in credit.upper()):
            credit = norm_or_none(_CUT_VIRIN_RE.split(credit, maxsplit=1)[0])
        return credit
    for line in lines:
        m = _CREDIT_RE.search(line)
        if m and m.group(1).strip():
            return norm_or_none(m.group(1))
    return None


def _size(lines: _LazyLines) -> int | None:
    for line in lines:
        size = parse_size(line)
        if size is not None:
            return size
    return None


def _virin(value: str | None, lines: _LazyLines, *urls: str | None) -> Virin | None:
    """The printed VIRIN, else a "VIRIN:" label in the text, else the media file name."""
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


def caption_from_lines(lines: Iterator[str] | _LazyLines, alt: str | None, title: str | None) -> str | None:
    """Without a caption class: the block's text lines, each cut at its first printed label
    ("Download:", "Photo By:", "VIRIN:"), without the alt text, the title and bare VIRIN lines."""
    skip = {alt, title, ""}
    rest = []
    for line in lines:
        m = _LABEL_RE.search(line)
        text = line[:m.start()].strip() if m else line
        if text not in skip and parse_virin_strict(text) is None:
            rest.append(text)
    return norm_or_none(" ".join(rest))


def parse_virin_strict(text: str) -> Virin | None:
    """A VIRIN only when the whole text is one (a bare VIRIN line above a photo)."""
    return virin_from_filename(text) if len(text) <= 40 and " " not in text else None
