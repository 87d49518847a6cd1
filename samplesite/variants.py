"""Which markup each story page is served in: the 2025 war.gov template, or an older variant.

Why variants: a parser fitted to one template reads that template only. The real site served
several article templates over the years, and pages published under an old one keep it. Each
story gets one variant, chosen from its id (stable across runs and processes, so a crawl sees the
same page twice and an ETag means something).

Two pools:

- the default pool: markup the current parsers read correctly (the 2025 template, the template
  this site served before, a ``<br>``-separated body with the images in a gallery after it);
- the held-out pool (``Site(held_out=True)``), which adds the markup the parsers are known to
  misread (issue 11): a ``<br>``-separated body with ``media-inline`` blocks inside it, an image
  block whose "Download: Full Size (...)" label stands outside the block, an image with no link
  to its photo page (media id only in its media URL, served on the site's own ``/media/`` path as
  in the issue's example), an image block printing no VIRIN and no download link (VIRIN only in
  the file name of a lazy-loaded image's ``data-src``), and the 2025 Contracts page whose date is
  only in its title and og:title.
  It stays out of the default site until the parsers handle it (``DEFAULT_HELD_OUT``).
"""

from __future__ import annotations

import zlib
from typing import Any

# Flip to True once the parsers read every held-out variant (the default site then serves them).
DEFAULT_HELD_OUT = False

MODERN = "2025"
LEGACY = "legacy"  # what the sample site served before the 2025 rebuild (article.adetail, .info)
BR_GALLERY = "br"  # older template: <br><br>-separated body, images in a gallery after it
BR_INLINE_MEDIA = "br-inline-media"  # miss class 1
DOWNLOAD_LABEL = "download-label"  # miss class 2
NO_PHOTO_LINK = "no-photo-link"  # miss class 3
NO_VIRIN = "no-virin"  # miss class 4
CONTRACT_2025 = "contract-2025"  # date only in the title and og:title

DEFAULT_POOL: tuple[tuple[str, int], ...] = ((MODERN, 70), (LEGACY, 15), (BR_GALLERY, 15))
# With images: each miss class about 8 % of the stories that can show it.
HELD_OUT_POOL: tuple[tuple[str, int], ...] = ((MODERN, 46), (LEGACY, 10), (BR_GALLERY, 12), (BR_INLINE_MEDIA, 8),
                                              (DOWNLOAD_LABEL, 8), (NO_PHOTO_LINK, 8), (NO_VIRIN, 8))
IMAGE_VARIANTS = frozenset({BR_INLINE_MEDIA, DOWNLOAD_LABEL, NO_PHOTO_LINK, NO_VIRIN})
HELD_OUT_VARIANTS = IMAGE_VARIANTS | {CONTRACT_2025}
# The template file (story_<name>.html) of each variant.
TEMPLATE_FILE = {MODERN: "2025", LEGACY: "legacy", BR_GALLERY: "br", BR_INLINE_MEDIA: "br",
                 DOWNLOAD_LABEL: "2025", NO_PHOTO_LINK: "2025", NO_VIRIN: "2025", CONTRACT_2025: "2025"}
# How the image blocks of each image variant print (keyword arguments of the media_inline macro).
IMAGE_MODE: dict[str, dict[str, bool]] = {
    DOWNLOAD_LABEL: {"detached_download": True},
    NO_PHOTO_LINK: {"link": False, "site_media": True},
    NO_VIRIN: {"virin": False, "lazy": True},
}
# Stories whose variant tests rely on (the data file's reference story is the 2025 template).
PINNED = {3610656: MODERN}


def story_variant(story: dict[str, Any], held_out: bool = False) -> str:
    """The markup variant of ``story``: pinned, else drawn from its id in the pool's proportions.

    A variant about image blocks is only drawn for a story with images (on one without, it
    would be the 2025 template under another name); contracts are the 2025 template, or in the
    held-out pool half of them the 2025 Contracts shape.
    """
    if "markup" in story:
        return str(story["markup"])
    sid = int(story["id"])
    if sid in PINNED:
        return PINNED[sid]
    draw = zlib.crc32(f"markup:{sid}".encode())
    if story["kind"] == "contract":
        return CONTRACT_2025 if held_out and draw % 2 else MODERN
    has_images = any(b.get("type") == "image" for b in story.get("body", ()))
    pool = [(name, weight) for name, weight in (HELD_OUT_POOL if held_out else DEFAULT_POOL)
            if has_images or name not in IMAGE_VARIANTS]
    point = draw % sum(weight for _, weight in pool)
    for name, weight in pool:
        if point < weight:
            return name
        point -= weight
    return MODERN  # not reached: the weights cover the range
