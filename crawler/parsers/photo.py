"""Photo pages (``/Multimedia/Photos/igphoto/<id>/``) -> :class:`Photo`.

:data:`PHOTO` is the template: the info block, then field -> CSS selectors inside it, in order of
preference. The page's ``h1.maintitle`` is the section banner ("Photos"), never the photo title, so
titles come from the info block or og:title; og:description, og:image and the media URL grammar
fill what the block does not print.
"""

from __future__ import annotations

from core.records import ParseError, Photo
from core.urls import media_id_from_media_url
from crawler.parsers import images
from crawler.parsers.dom import Page
from crawler.parsers.extract import abs_url, text_of
from crawler.parsers.text import parse_date

PHOTO_BLOCK: tuple[str, ...] = (".adetail.photo-detail", ".photo-detail", "[data-media-id]", ".adetail", "main",
                                "body")
PHOTO: dict[str, tuple[str, ...]] = {
    "img": ("img.primary-image", ".image-wrapper img", "img"),
    "title": (".media-inline-popup .title", ".title", ".photo-title", ".mtitle", "[class*=title]"),
    "caption": (".media-inline-popup .caption", ".caption", "[class*=caption]"),
    "credit": (".photographer", ".credit", "[class*=photographer]", "[class*=credit]"),
    "virin": (".virin-value", ".virin", "[class*=virin]"),
    "download": ("a.download-link", "a[class*=download]"),
    "published": (".media-inline-popup .date", ".date", "time[datetime]"),
}


def parse_photo(page: Page) -> Photo | ParseError:
    """The photo on an igphoto page; ParseError when the page shows no image or no title."""
    url = page.url
    block = page.first(PHOTO_BLOCK)
    if block is None:
        return ParseError(url, "no_body", "no photo block", "photo")
    image = images.parse_image(block, url, PHOTO)
    fields = images.scan_block(block, PHOTO)
    og_image = abs_url(url, page.meta("og:image"))
    media_id = (image.media_id if image else None) or page.ref.id or media_id_from_media_url(og_image)
    title = (image.title if image else None) or page.meta("og:title")
    if media_id is None or (image is None and og_image is None):
        return ParseError(url, "no_body", "no image on the photo page", "photo")
    if not title:
        return ParseError(url, "no_title", "no photo title or og:title", "photo")
    canonical = abs_url(url, page.link("canonical"))
    has_caption = "caption" in fields and bool(text_of(fields["caption"]))
    date = fields.get("published")
    printed_date = (date.get("datetime") or text_of(date)) if date is not None else None
    return Photo(
        media_id=media_id,
        page_url=canonical if canonical and "/igphoto/" in canonical.lower() else url,
        src=(image.src if image else None) or og_image,
        download_url=image.download_url if image else None,
        alt=image.alt if image else None,
        title=title,
        # A caption element, else og:description, else the guess from the block's text lines.
        caption=(image.caption if image and has_caption else None) or page.meta("og:description")
        or (image.caption if image else None),
        credit=image.credit if image else None,
        size_bytes=image.size_bytes if image else None,
        virin=image.virin if image else None,
        url=url,
        published=parse_date(printed_date) or parse_date(page.meta("article:published_time")),
    )
