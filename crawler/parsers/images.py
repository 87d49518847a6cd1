"""One image block (a story's ``.media-inline``, a photo page's info block) -> :class:`Image`.

Three layers, tried per field in this order:

1. the block's template, declared in :data:`INLINE_IMAGE` (field -> CSS selectors inside the block,
   in order of preference): after a redesign, fix the selectors here;
2. the labels the site prints, matched in the block's text lines ("Photo By:", "VIRIN:",
   "Download: Full Size (...)"), so a block without field classes still gives its fields;
3. the URL grammar: the media id and the VIRIN are in every media.defense.gov rendition URL
   (``/2024/Sep/27/2003541109/670/394/0/240927-A-AB123-1001.JPG``, stable since 2015, also when the
   page serves it from another host or path prefix), the VIRIN is the file name of the image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.constants import DEFAULT_SITE
from core.records import Image, Virin
from core.urls import media_id_from_media_url, photo_page_url, urlsplit
from crawler.parsers.dom import Element, all_of_first
from crawler.parsers.extract import abs_url, lines_of, own_text, text_of
from crawler.parsers.text import norm_or_none, parse_size, strip_credit_label
from crawler.parsers.virin import find_virin, parse_virin, virin_from_filename

# Inline image block of a story: field -> selectors inside the block, in order of preference.
INLINE_IMAGE: Mapping[str, tuple[str, ...]] = {
    "img": ("img",),
    "title": (".mtitle", ".media-title", ".title", "[class*=title]"),
    "caption": (".caption", "[class*=caption]"),
    "credit": (".credit", ".photographer", "[class*=credit]", "[class*=photographer]"),
    "virin": (".virin-value", ".virin", "[class*=virin]"),
    "download": ("a.download-link", "a[class*=download]"),
}

_IGPHOTO_RE = re.compile(r"/igphoto/(\d+)(?:/|$)", re.I)
# A printed label: everything from it to the end of its line is not caption text.
_LABEL_RE = re.compile(
    r"(?:^|\s)(?:•\s*)?(?:Download(?:\s+Image)?\s*:|Full\s+Size\s*\(|(?:Photo|Image|Video)\s+By\s*:|VIRIN\s*:)",
    re.I,
)
_CREDIT_RE = re.compile(r"(?:Photo|Image|Video)\s+by\s*:\s*(.*?)\s*(?:\||VIRIN\s*:|$)", re.I)
_CUT_VIRIN_RE = re.compile(r"\s*\|\s*|\s*VIRIN\s*:", re.I)
_DOWNLOAD_WORDS = ("full size", "download", "hi-res")
# A line that is only an image label: never a paragraph of the story.
LABEL_LINE_RE = re.compile(
    r"^(?:•\s*)?(?:"
    r"(?:Download(?:\s+Image)?\s*:?\s*)?(?:Full\s+Size\s*\([^)]*\))?"
    r"|(?:Photo|Image|Video)\s+By\s*:.{0,200}"
    r"|VIRIN\s*:\s*\S+"
    r"|(?:DOWNLOAD HI-RES|PHOTO DETAILS)(?:\s*/\s*(?:DOWNLOAD HI-RES|PHOTO DETAILS))?"
    r")$",
    re.I,
)


def is_label_line(text: str) -> bool:
    """True for "Download", "Download: Full Size (1.96 MB)", "Photo By: X | VIRIN: Y", "VIRIN: Y"."""
    return bool(text) and LABEL_LINE_RE.match(text) is not None


def scan_block(block: Element, table: Mapping[str, tuple[str, ...]]) -> dict[str, Element]:
    """field -> the first element the table's selectors find in the block (the block included);
    ``igphoto`` -> the first link to a photo page."""
    found: dict[str, Element] = {}
    for name, chain in table.items():
        matches = [el for el in all_of_first(block, chain) if el is not block or name == "img"]
        if matches:
            found[name] = matches[0]
    link = next((a for a in block.iter("a") if _IGPHOTO_RE.search(a.get("href") or "")), None)
    if link is None and block.tag == "a" and _IGPHOTO_RE.search(block.get("href") or ""):
        link = block
    if link is not None:
        found["igphoto"] = link
    return found


def parse_image(block: Element, base_url: str, table: Mapping[str, tuple[str, ...]] = INLINE_IMAGE,
                derive_page_url: bool = True, soup: bool = False) -> Image | None:
    """An :class:`Image` from one block, or None when the block holds no image at all.

    ``derive_page_url`` builds the igphoto page URL from the media id when the block links none;
    off for sites whose photo pages have another URL shape (af.mil 2016). ``soup``: the block
    swallowed later content (unclosed tags), so each field keeps only its own words.
    """
    found = scan_block(block, table)
    read = own_text if soup else text_of

    def field(name: str) -> str | None:
        el = found.get(name)
        return norm_or_none(read(el)) if el is not None else None

    title, caption = _before_labels(field("title")), _before_labels(field("caption"))
    credit, virin_text = field("credit"), field("virin")
    img = found.get("img")
    src = abs_url(base_url, _img_src(img)) if img is not None else None
    download_el = found.get("download")
    if download_el is None:
        download_el = _download_by_text(block)
    download_url = abs_url(base_url, download_el.get("href")) if download_el is not None else None
    link = found.get("igphoto")
    page_link = abs_url(base_url, link.get("href")) if link is not None else None
    media_id = _media_id(block.get("data-media-id"), src, download_url, page_link)
    if img is None and media_id is None:
        return None
    lines = lines_of(block) if None in (caption, credit, virin_text) or download_el is None else []
    alt = norm_or_none(img.get("alt")) if img is not None else None
    if caption and credit is None and virin_text is None and caption == title:
        title = None
    return Image(
        media_id=media_id,
        page_url=page_link or (photo_page_url(media_id, _site(base_url)) if media_id and derive_page_url else None),
        src=src,
        download_url=download_url,
        alt=alt,
        title=title,
        caption=caption or caption_from_lines(lines, alt, title),
        credit=_credit(credit, lines),
        size_bytes=_size(download_el, lines),
        virin=_virin(virin_text, lines, download_url, src),
    )


def image_from_img(img: Element, base_url: str) -> Image | None:
    """A bare ``<img>`` in a story body: an image of the site only when its URL follows the media
    grammar (a media id to crawl its photo page by); icons and spacers are not images."""
    src = abs_url(base_url, _img_src(img))
    media_id = media_id_from_media_url(src)
    if media_id is None:
        return None
    return Image(media_id=media_id, page_url=photo_page_url(media_id, _site(base_url)), src=src,
                 alt=norm_or_none(img.get("alt")), virin=virin_from_filename(_file_name(src)))


def _before_labels(text: str | None) -> str | None:
    """A title or caption element that also holds the block's labels ("... Photo By: X VIRIN: Y"):
    its words before the first label."""
    if not text:
        return None
    m = _LABEL_RE.search(text)
    return norm_or_none(text[:m.start()]) if m else text


def is_soup(block: Element) -> bool:
    """True when an image block swallowed body content (unclosed tags): another image block, or
    more than two paragraphs that are neither its labels nor its caption, inside it."""
    for el in block.iterdescendants("div", "figure"):
        if el.get("data-media-id") or "media-inline" in (el.get("class") or ""):
            return True
    texts = [text_of(p) for p in block.iterdescendants("p", "h2", "h3", "h4", "li", "blockquote")]
    return sum(1 for t in texts if t and not is_label_line(t)) > 2


def _img_src(img: Element) -> str | None:
    """The image's own URL. A lazy loader prints a placeholder in ``src`` (a ``data:`` URI) and the
    real URL in ``data-src``/``data-original``, so those win when present."""
    return img.get("data-src") or img.get("data-original") or img.get("src")


def _download_by_text(block: Element) -> Element | None:
    """An anchor labelled "Download ..." / "Full Size (...)" when no download class is present."""
    for a in block.iter("a"):
        if a.get("href") and any(w in text_of(a).lower() for w in _DOWNLOAD_WORDS):
            return a
    return None


def _media_id(attr: str | None, src: str | None, download_url: str | None, page_link: str | None) -> int | None:
    """data-media-id, else the id in a media rendition URL, else the igphoto link's id."""
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
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else DEFAULT_SITE


def _credit(value: str | None, lines: list[str]) -> str | None:
    """The credit without its "Photo By:" label (and without a "| VIRIN: ..." tail)."""
    if value:
        credit = strip_credit_label(value)
        if credit and ("|" in credit or "VIRIN" in credit.upper()):
            credit = norm_or_none(_CUT_VIRIN_RE.split(credit, maxsplit=1)[0])
        return credit
    for line in lines:
        m = _CREDIT_RE.search(line)
        if m and m.group(1).strip():
            return norm_or_none(m.group(1))
    return None


def _size(download_el: Element | None, lines: list[str]) -> int | None:
    """Bytes printed in the download label ("Full Size (4.07 MB)"), else in any line of the block."""
    if download_el is not None:
        size = parse_size(text_of(download_el))
        if size is not None:
            return size
    for line in lines:
        size = parse_size(line)
        if size is not None:
            return size
    return None


def _virin(value: str | None, lines: list[str], *urls: str | None) -> Virin | None:
    """The printed VIRIN, else a "VIRIN:" label in the text, else the image's file name."""
    if value:
        return parse_virin(value)
    found = find_virin("\n".join(line for line in lines if "VIRIN" in line.upper()))
    if found:
        return found
    for url in urls:
        found = virin_from_filename(_file_name(url))
        if found:
            return found
    return None


def _file_name(url: str | None) -> str | None:
    """The last path segment of a URL (the media file name)."""
    if not url:
        return None
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or None


def caption_from_lines(lines: list[str], alt: str | None, title: str | None) -> str | None:
    """Without a caption element: the block's text lines, each cut at its first printed label
    ("Download:", "Photo By:", "VIRIN:"), without the alt text, the title and bare VIRIN lines."""
    skip = {alt, title, ""}
    rest = []
    for line in lines:
        m = _LABEL_RE.search(line)
        text = line[:m.start()].strip() if m else line
        if text not in skip and parse_virin_strict(text) is None and text.lower() not in ("download", "photo details"):
            rest.append(text)
    return norm_or_none(" ".join(rest))


def parse_virin_strict(text: str) -> Virin | None:
    """A VIRIN only when the whole text is one (a bare VIRIN line above a photo)."""
    return virin_from_filename(text) if len(text) <= 40 and " " not in text else None


def fill_from_label(image: Image, label: str, href: str | None) -> None:
    """Complete ``image`` from a label line printed just after its block ("Download: Full Size
    (1.96 MB)", "Photo By: ... | VIRIN: ...") where the block itself did not print it."""
    if image.size_bytes is None:
        image.size_bytes = parse_size(label)
    if href and image.download_url is None and any(w in label.lower() for w in _DOWNLOAD_WORDS):
        image.download_url = href
    if image.credit is None:
        m = _CREDIT_RE.search(label)
        if m and m.group(1).strip():
            image.credit = norm_or_none(m.group(1))
    if image.virin is None and "VIRIN" in label.upper():
        image.virin = find_virin(label)
