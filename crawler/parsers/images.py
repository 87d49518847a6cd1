"""One image block (a story's ``.media-inline``, a photo page's info block) -> :class:`Image`.

A block is read in one pass: each element's class tokens are looked up in a role table (the
"selectors" of this module), so a renamed class is a one-line change. When classes are missing
the labels the site prints ("Photo By:", "VIRIN:", "Download: Full Size (...)") are matched in the
block's text, and the VIRIN and media id fall back to the media.defense.gov URL grammar, which has
been stable since 2015.

Blocks printed exactly as the site's template prints them are read from the page's bytes before
lxml parses it (:func:`lift_template_blocks`): the fast path of story parsing, checked against
lxml's reading of the same blocks by the tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from itertools import islice

from core.constants import DEFAULT_SITE
from core.records import Image, Virin
from core.urls import file_name_from_media_url, media_id_from_media_url, photo_page_url, urlsplit
from crawler.parsers.dom import Element
from crawler.parsers.extract import SKIP_TAGS, abs_url, lines_of, own_text, text_of
from crawler.parsers.text import norm, norm_all, norm_or_none, parse_size, strip_credit_label
from crawler.parsers.virin import find_virin, parse_virin, virin_from_filename

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
_ROLE_TAG_SET = frozenset(_ROLE_TAGS)
# A descendant of these tags makes a block a tag soup suspect (see is_soup).
_PARAGRAPH_TAGS = frozenset({"p", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote"})


def scan_block(block: Element, roles: Mapping[str, str]) -> dict[str, Element]:
    """field -> first element with that role; plus "img" and "igphoto" (first igphoto link)."""
    return _scan(block, roles)[0]


def _scan(block: Element, roles: Mapping[str, str]) -> tuple[dict[str, Element], bool, str | None]:
    """:func:`scan_block`, whether the block has a paragraph-level descendant, and the igphoto
    link's href (read once here rather than again by the caller), in one pass.

    Why one plain ``iterdescendants()`` and set tests: lxml sets up a tag matcher for every
    ``iter(*tags)`` call, which cost more than the dozen elements of a clean block, and reading an
    attribute is the dearest step, so each element's class is read once and only for role tags.
    """
    found: dict[str, Element] = {}
    img = igphoto = igphoto_href = None
    nested = False
    tag = block.tag
    if tag == "img":
        img = block
    elif tag == "a":
        igphoto_href = _igphoto_href(block)
        igphoto = block if igphoto_href is not None else None
    for el in block.iterdescendants():
        tag = el.tag
        if tag in _ROLE_TAG_SET:
            classes = el.get("class")
            if classes:
                if classes in roles:  # a single class token, the common case: no split needed
                    role = roles[classes]
                    if role not in found:
                        found[role] = el
                elif " " in classes:
                    role = _first_role(classes, roles)
                    if role is not None and role not in found:
                        found[role] = el
            if tag == "a":
                if igphoto is None:
                    igphoto_href = _igphoto_href(el)
                    igphoto = el if igphoto_href is not None else None
            elif tag == "p" or tag == "h2":
                nested = True
        elif tag == "img":
            if img is None:
                img = el
        elif tag in _PARAGRAPH_TAGS:
            nested = True
    if "title" not in found or "caption" not in found:
        _fuzzy_roles(block, roles, found)
    if img is not None:
        found["img"] = img
    if igphoto is not None:
        found["igphoto"] = igphoto
    return found, nested, igphoto_href


def _template_image(texts: list[str | None], src_attr: str | None, download_href: str | None, link_href: str,
                    media_attr: str | None, base_url: str) -> Image | None:
    """The image of a block in the site's template, from its raw values: ``texts`` are the title,
    caption, credit, VIRIN and download label texts and the img alt, as printed. None when the
    caption, credit or VIRIN is blank (then lxml and the general path's label fallbacks decide).
    It gives what :func:`_scan` and :func:`_image` give for the same block, without their care
    for missing fields, labels and tag soup, which a block of the template never needs."""
    title, caption, credit, virin, size_text, alt = norm_all(texts)
    if not caption or not credit or not virin:
        return None
    if credit[:9] == "Photo By:" and "|" not in credit and "VIRIN" not in credit.upper():
        credit = credit[9:].strip() or None  # as printed: what _credit would do, without its checks
    else:
        credit = _credit(credit, None)  # type: ignore[arg-type]  # a value: the lines are never read
    src = abs_url(base_url, src_attr)
    download_url = abs_url(base_url, download_href)
    page_link = abs_url(base_url, link_href)
    media_id = (int(media_attr) if media_attr and media_attr.isdigit()
                else _media_id(media_attr, src, download_url, page_link))
    # positional (media_id, page_url, src, download_url, alt, title, caption, credit, size_bytes, virin):
    # the order is checked by crawler.parsers.record_order
    return Image(media_id, page_link, src, download_url, alt or None, title or None, caption, credit,
                 parse_size(size_text), parse_virin(virin))


# -- template blocks read from the raw bytes -----------------------------------------------------------

# The site's inline image block exactly as its template prints it (and the sample site, modelled on
# it), whitespace between tags aside. Fields hold no markup and no entity ("&"), so their bytes are
# what lxml would give as text. Anything else (another attribute order, an entity, markup in a
# caption, a renamed class) does not match, and lxml reads that block as before.
_TEXT = rb"([^<&\x00-\x08\x0b\x0c\x0e-\x1f]*)"
_URL = rb'([^"<>&\s]+)'
_TEMPLATE_BLOCK = re.compile(
    rb'<div class="media-inline[^"<>&]*" data-media-id="([0-9]+)">\s*'
    rb'<div class="image-wrapper">\s*'
    rb'<a class="linkoverlay" href="' + _URL + rb'"(?: title="[^"<>]*")?>\s*'
    rb'<img src="' + _URL + rb'" alt="([^"<&\x00-\x1f]*)"(?: loading="lazy")?>\s*'
    rb'(?:<noscript><img [^<>]*></noscript>\s*)?'
    rb"</a>\s*</div>\s*"
    rb'<div class="minfo">\s*'
    rb'<div class="mtitle">' + _TEXT + rb"</div>\s*"
    rb'<div class="caption">' + _TEXT + rb"</div>\s*"
    rb'<div class="action">\s*'
    rb'<a class="download-link" href="' + _URL + rb'"(?: target="_blank")?>' + _TEXT + rb"</a>\s*"
    rb'<div class="credit">' + _TEXT + rb"</div>\s*"
    rb'<div class="virin">' + _TEXT + rb"</div>\s*"
    rb"</div>\s*</div>\s*</div>"
)
_BLOCK_START = b'<div class="media-inline'
LIFTED_ATTR = "data-defwatch-lifted"


class LiftedImages:
    """The images of template blocks read from the raw bytes before lxml parsed the page
    (:func:`lift_template_blocks`), each to be taken once, where its placeholder element stands."""

    def __init__(self, images: list[Image]) -> None:
        self.images = images
        self.taken: set[int] = set()
        self.read_as_text = False  # a reader wanted the blocks' text (see BodyReader)

    def take(self, index: str) -> Image:
        self.taken.add(int(index))
        return self.images[int(index)]

    @property
    def complete(self) -> bool:
        """Every block was taken as an image and none was wanted as text: the record is what
        lxml's reading of the blocks gives. Otherwise the caller parses them with lxml."""
        return not self.read_as_text and len(self.taken) == len(self.images)


def lift_template_blocks(region: bytes, base_url: str) -> tuple[bytes, LiftedImages | None]:
    """``region`` with each inline image block of the site's template replaced by an empty
    placeholder ``<div class="media-inline" data-defwatch-lifted="N">``, and those blocks' images.

    Why: image blocks are most of a story's bytes and a dozen elements each. Reading them from the
    bytes with one anchored regex costs less than lxml building them and Python reading them back
    (``bench/parse_speed.py``). The placeholder keeps each block's place in the tree, so the body
    walker meets it where it met the block; ``LiftedImages.complete`` says whether it did.
    """
    if LIFTED_ATTR.encode() in region:
        return region, None  # a page that names our placeholder: never confuse it with ours
    parts: list[bytes] = []
    found: list[Image] = []
    done = 0
    start = region.find(_BLOCK_START)
    while start >= 0:
        m = _TEMPLATE_BLOCK.match(region, start)
        image = _lifted_image(m, base_url) if m is not None else None
        if image is not None:
            parts += (region[done:start], b'<div class="media-inline" %s="%d"></div>' % (LIFTED_ATTR.encode(),
                                                                                       len(found)))
            found.append(image)
            done = m.end()  # type: ignore[union-attr]  # image is None without a match
        start = region.find(_BLOCK_START, start + 1)
    if not found:
        return region, None
    parts.append(region[done:])
    return b"".join(parts), LiftedImages(found)


def _lifted_image(m: re.Match[bytes], base_url: str) -> Image | None:
    try:
        media, link, src, alt, title, caption, download, size_text, credit, virin = (
            group.decode("utf-8") for group in m.groups())
    except UnicodeDecodeError:
        return None  # lxml would repair the bytes its own way: let it
    if "igphoto" not in link.lower():
        return None  # the general path looks for another igphoto link
    return _template_image([title, caption, credit, virin, size_text, alt], src, download, link, media, base_url)


def _first_role(classes: str, roles: Mapping[str, str]) -> str | None:
    """The role of the first class token listed in ``roles``."""
    for token in classes.split():
        if token in roles:
            return roles[token]
    return None


def _igphoto_href(a: Element) -> str | None:
    href = a.get("href")
    return href if href and "igphoto" in href.lower() else None


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
    found, _, igphoto_href = _scan(block, roles)
    return _image(block, found, igphoto_href, base_url, derive_page_url, soup)


def parse_inline(block: Element, base_url: str, lifted: LiftedImages | None = None) -> tuple[Image | None, bool]:
    """A story's inline image block: (its image, whether it is tag soup) from one scan of the block
    (see :func:`parse_image` and :func:`is_soup`); a placeholder of ``lifted``: its image."""
    if lifted is not None:
        index = block.get(LIFTED_ATTR)
        if index is not None:
            return lifted.take(index), False
    found, nested, igphoto_href = _scan(block, INLINE_ROLES)
    soup = nested and _swallowed(block)
    return _image(block, found, igphoto_href, base_url, True, soup), soup


def _image(block: Element, found: dict[str, Element], igphoto_href: str | None, base_url: str,
           derive_page_url: bool, soup: bool) -> Image | None:
    """The image of a scanned block. Written flat, with the label fallbacks (which need the
    block's text lines) only reached when a field element is missing: it runs for every image."""
    if soup:
        title, caption, credit, virin = (own_text(el) or None if el is not None else None
                                         for el in map(found.get, _TEXT_ROLES))
    else:
        title, caption, credit, virin = _field_texts(found)
    img = found.get("img")
    src = None if img is None else abs_url(base_url, img.get("src") or img.get("data-src") or img.get("data-original"))
    download_el = found.get("download")
    if download_el is None:
        download_el = _download_by_text(block)
    download_url = abs_url(base_url, download_el.get("href")) if download_el is not None else None
    page_link = abs_url(base_url, igphoto_href) if igphoto_href is not None else None
    attr = block.get("data-media-id")
    media_id = int(attr) if attr and attr.isdigit() else _media_id(attr, src, download_url, page_link)
    if img is None and media_id is None:
        return None
    lines = _LazyLines(block) if caption is None or credit is None or download_el is None or virin is None else None
    alt = norm(img.get("alt")) or None if img is not None else None
    if credit is not None and credit[:9] == "Photo By:" and "|" not in credit and "VIRIN" not in credit.upper():
        credit = credit[9:].strip() or None  # as printed: what _credit would do, without its checks
    else:
        credit = _credit(credit, lines)
    return Image(
        media_id=media_id,
        page_url=page_link or (photo_page_url(media_id, _site(base_url)) if media_id and derive_page_url else None),
        src=src,
        download_url=download_url,
        alt=alt,
        title=title,
        caption=caption or caption_from_lines(lines, alt, title),
        credit=credit,
        size_bytes=_download_size(download_el) if download_el is not None else _size(lines),
        virin=parse_virin(virin) if virin else _virin(virin, lines, download_url, src),
    )


_TEXT_ROLES = ("title", "caption", "credit", "virin")


def _field_texts(found: dict[str, Element]) -> tuple[str | None, str | None, str | None, str | None]:
    """(title, caption, credit, virin): each field element's text, None where missing or empty.
    Straight-line code: a loop and a helper call per field cost more than the fields' own work."""
    el = found.get("title")
    title = None if el is None else (norm(el.text) or None) if not len(el) else (text_of(el) or None)
    el = found.get("caption")
    caption = None if el is None else (norm(el.text) or None) if not len(el) else (text_of(el) or None)
    el = found.get("credit")
    credit = None if el is None else (norm(el.text) or None) if not len(el) else (text_of(el) or None)
    el = found.get("virin")
    virin = None if el is None else (norm(el.text) or None) if not len(el) else (text_of(el) or None)
    return title, caption, credit, virin


def _download_size(el: Element) -> int | None:
    """Bytes from the download link's "Full Size (...)" text."""
    return parse_size(norm(el.text) if len(el) == 0 and el.tag not in SKIP_TAGS else text_of(el))


def is_soup(block: Element) -> bool:
    """True when an image block swallowed body content: another image block or several
    paragraphs inside it (a clean block holds one image and its labels, a dozen elements)."""
    if next(block.iterdescendants(*_PARAGRAPH_TAGS), None) is None:
        return False  # the common case, decided by one C-level scan
    return _swallowed(block)


def _swallowed(block: Element) -> bool:
    """The second half of :func:`is_soup`, for a block known to hold paragraph-level elements."""
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
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else DEFAULT_SITE


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
