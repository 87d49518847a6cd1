"""Turn stories and images into template contexts, one function per page kind.

Each function returns a :class:`Page` whose ``ctx`` holds only stable content (it is hashed into
the ETag); the volatile noise (hit counter, render time, view state, cache-buster) is added later,
when the page is rendered, so it can never leak into the validator.
"""

from __future__ import annotations

import html
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any

from samplesite.content import Content, default_time, story_timestamp
from samplesite.dates import ap_date, full_date
from samplesite.paths import FEED_KIND, SECTIONS, feed_url, listing_url, photo_url, story_url
from samplesite.variants import CONTRACT_2025, IMAGE_MODE, PINNED, TEMPLATE_FILE, story_variant

PAGE_SIZE = 10
SITE_NAME = "U.S. Department of War"
MEDIA = "https://media.defense.gov"
DEFAULT_SOCIAL_IMAGE = f"{MEDIA}/2021/Sep/30/2002865211/825/780/0/210930-D-EX074-013.JPG"
SOCIAL_IMAGE_1280 = f"{MEDIA}/2021/Sep/30/2002865254/1280/1280/0/210930-D-EX074-055.JPG"
DEFAULT_SOCIAL_ALT = "Social media image for the Department of Defense website."
NEWSROOM_KINDS = frozenset({"release", "transcript", "contract", "speech", "advisory"})
KIND_LABEL = {
    "news-story": "News Stories",
    "feature-story": "Feature Stories",
    "release": "Releases",
    "transcript": "Transcripts",
    "speech": "Speeches",
    "advisory": "Advisories",
    "contract": "Contracts",
}
# listing ``content-type-name`` as seen on the real listings (Story/800, News Release/9, Contracts/400).
CONTENT_TYPE_NAME = {
    "news-story": "News",
    "feature-story": "Story",
    "release": "News Release",
    "transcript": "Transcript",
    "speech": "Speech",
    "advisory": "Advisory",
    "contract": "Contracts",
}
CONTENT_TYPE_BY_KIND = {kind: n for n, kind in FEED_KIND.items()}
# The section name the 2025 article header prints above the title (``div.cont-type``).
CONT_TYPE_LABEL = {
    "news-story": "News", "feature-story": "Feature", "release": "Release", "transcript": "Transcript",
    "speech": "Speech", "advisory": "Advisory", "contract": "Contracts",
}
_AGENCY_HEADER = re.compile(r"^[A-Z][A-Z .,&'-]{1,60}$")
ROBOTS_MTIME = 1672531200.0  # 2023-01-01: robots.txt never changes here
_TAG_RE = re.compile(r"<[^>]+>")


@dataclass
class Page:
    """A page before rendering. ``mtime`` None means: send no validators (errors, noise pages)."""

    status: int
    template: str | None
    ctx: dict[str, Any] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"
    mtime: float | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def plain(fragment: str) -> str:
    return html.unescape(_TAG_RE.sub("", fragment))


def summary_of(story: dict[str, Any]) -> str:
    if story.get("summary"):
        return story["summary"]
    for block in story["body"]:
        if block["type"] == "p":
            text = " ".join(plain(block["html"]).split())
            if len(text) > 60:
                return text if len(text) <= 220 else text[:217].rsplit(" ", 1)[0] + "..."
    return story["title"]


def tag_path(base: str, name: str) -> str:
    """Tag links live under /Search/ (robots.txt disallows it), so crawlers leave them alone."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"{base}/Search/Term/{zlib.crc32(name.lower().encode()) % 9000 + 1000}/{slug}/"


def the_story_url(story: dict[str, Any], base: str) -> str:
    return story_url(story["kind"], story["id"], story.get("slug") or "", site=base)


def media_url(img: dict[str, Any], size: str = "825/780") -> str:
    d = date.fromisoformat(img["uploaded"])
    month = d.strftime("%b")
    name = f"{img['virin']}.{img.get('ext', 'JPG')}"
    return f"{MEDIA}/{d.year}/{month}/{d.day:02d}/{img['media_id']}/{size}/0/{name}"


def image_view(img: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "media_id": img["media_id"],
        "alt": img["alt"],
        "title": img["title"],
        "caption": img["caption"],
        "credit": img["credit"],
        "size": img["size"],
        "virin": img["virin"],
        "ext": img.get("ext", "JPG"),
        "inline_src": media_url(img),
        "page_src": media_url(img),
        "og_image": media_url(img),
        "download_url": media_url(img, "-1/-1"),
        "page_path": photo_url(img["media_id"], site=base),
        # the same renditions on the site's own /media/ path (a variant the parsers must read)
        "site_inline_src": base + "/media" + media_url(img).removeprefix(MEDIA),
        "site_download_url": base + "/media" + media_url(img, "-1/-1").removeprefix(MEDIA),
        "published_ap": ap_date(img["uploaded"]),
    }


def story_images(content: Content, story: dict[str, Any]) -> list[dict[str, Any]]:
    ids = [b["media_id"] for b in story["body"] if b["type"] == "image"]
    return [img for img in (content.image(i) for i in ids) if img is not None]


def story_page(content: Content, story: dict[str, Any], base: str, held_out: bool = False) -> Page:
    """A story in its markup variant (``samplesite.variants``); the variant is part of the context,
    so it moves the ETag like any content."""
    markup = story_variant(story, held_out)
    body: list[dict[str, Any]] = []
    for block in story["body"]:
        if block["type"] == "image":
            img = content.image(block["media_id"])
            if img is not None:
                body.append({"type": "image", "align": block.get("align", "right"), "image": image_view(img, base)})
        elif block["type"] == "p" and story["kind"] == "contract" and _AGENCY_HEADER.match(plain(block["html"])):
            # 2025 Contracts pages print agency headers centred and bold: <p style=..><strong>NAVY</strong></p>
            html_text = block["html"] if "<strong>" in block["html"] else f"<strong>{block['html']}</strong>"
            body.append({"type": "p", "html": html_text, "style": "text-align: center;"})
        else:
            body.append(block)
    related = []
    rel_mtimes = []
    for rid in story.get("related", []):
        rel = content.story(rid)
        if rel is not None:
            related.append({"id": rid, "url": the_story_url(rel, base), "title": rel["title"],
                            "published_ap": ap_date(rel["published"])})
            rel_mtimes.append(content.edited_at(rid))
    images = [b["image"] for b in body if b["type"] == "image"]
    canonical = the_story_url(story, base)
    ctx = {
        "story": story,
        "markup": markup,
        "template_file": TEMPLATE_FILE[markup],
        "image_mode": IMAGE_MODE.get(markup, {}),
        "inline_images": markup != "br",
        "body_noise": story["id"] not in PINNED and zlib.crc32(f"noise:{story['id']}".encode()) % 4 == 0,
        "body": body,
        "images": images,
        "related": related,
        "tags": [{"name": t, "path": tag_path(base, t)} for t in story.get("tags", [])],
        "kind_label": KIND_LABEL[story["kind"]],
        "cont_type": CONT_TYPE_LABEL[story["kind"]],
        "content_type_val": CONTENT_TYPE_BY_KIND.get(story["kind"], ""),
        "newsroom": story["kind"] in NEWSROOM_KINDS,
        "listing_path": listing_url(story["kind"], site=base),
        "published_ap": ap_date(story["published"]),
        "canonical": canonical,
        # the real Contracts pages say og:url ".../Article/4319114//" (an empty slug)
        "share_url": canonical + "/" if markup == CONTRACT_2025 else canonical,
        "og_title": _contract_og_title(story) if markup == CONTRACT_2025 else story["title"],
        "description": summary_of(story),
        "keywords": ", ".join(story.get("tags", [])),
        "og_image": images[0]["og_image"] if images else DEFAULT_SOCIAL_IMAGE,
        "social_image": media_url_of(images[0], "1280/1280") if images else SOCIAL_IMAGE_1280,
    }
    mtimes = [content.story_mtime(story["id"]), *rel_mtimes]
    mtimes += [content.image_mtime(i["media_id"]) for i in images]
    return Page(200, "story.html", ctx, mtime=max(mtimes))


def _contract_og_title(story: dict[str, Any]) -> str:
    """og:title of a 2025 Contracts page: the date with the month written out ("September 30, 2025")."""
    return f"Contracts for {full_date(story['published'])}"


def media_url_of(view: dict[str, Any], size: str) -> str:
    """Another rendition of an image view's inline URL (same upload path, another size)."""
    return view["inline_src"].replace("/825/780/", f"/{size}/", 1)


def photo_page(content: Content, img: dict[str, Any], base: str) -> Page:
    view = image_view(img, base)
    ctx = {"img": view, "canonical": view["page_path"], "description": img["caption"]}
    return Page(200, "photo.html", ctx, mtime=content.image_mtime(img["media_id"]))


def listing_item(content: Content, story: dict[str, Any], base: str) -> dict[str, Any]:
    imgs = story_images(content, story)
    url = the_story_url(story, base)
    if story["kind"] == "contract":
        url += "/"  # the real listings print contract URLs with an empty slug: .../Article/4016173//
    clock = story.get("time") or default_time(story["id"])
    return {
        "id": story["id"],
        "title": story["title"],
        "url": url,
        "summary": summary_of(story),
        "alt": imgs[0]["alt"] if imgs else DEFAULT_SOCIAL_ALT,
        "image_url": media_url(imgs[0]) if imgs else "",
        # as on the real listings: no article image -> empty article-image-url, default social image-url
        "social_image_url": media_url(imgs[0]) if imgs else DEFAULT_SOCIAL_IMAGE,
        "content_type_name": CONTENT_TYPE_NAME[story["kind"]],
        "content_type_val": CONTENT_TYPE_BY_KIND.get(story["kind"], ""),
        "published_ap": ap_date(story["published"]),
        "published": f"{story['published']}T{clock}",
    }


def listing_page(content: Content, kind: str, page: int, base: str, hidden: set[int], held_out: bool = False) -> Page:
    """One listing page. Held out (``samplesite.variants``): the pager as the 2024 listings print it
    (``div.apager > div.nextprev > a[aria-label=Next]``, twice) and, for contracts, the
    ``<listing-titles-only>`` items with an empty ``article-title``."""
    ids = content.ordered_ids(kind, hidden)
    last = max(1, -(-len(ids) // PAGE_SIZE))
    chosen = [content.story(i) for i in ids[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]]
    items = [listing_item(content, s, base) for s in chosen if s is not None]
    window = range(max(1, page - 4), min(last, max(1, page - 4) + 9) + 1)
    ctx = {
        "kind_label": KIND_LABEL[kind],
        "items": items,
        "page": page,
        "pages": list(window),
        "prev_url": listing_url(kind, page - 1, site=base) if page > 1 else None,
        "next_url": listing_url(kind, page + 1, site=base) if page < last else None,
        "kind": kind,
        "base": base,
        "div_pager": held_out,
        "titles_only": held_out and kind == "contract",
        "description": f"{KIND_LABEL[kind]} from the {SITE_NAME}.",
    }
    mtimes = [content.kind_mtime(kind)] + [content.story_mtime(s["id"]) for s in chosen if s]
    return Page(200, "listing.html", ctx, mtime=max(mtimes))


def rfc822(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, tz=UTC), usegmt=True)


def creator_of(story: dict[str, Any]) -> str:
    """``dc:creator``: the byline's person, else its organisation, else the department."""
    byline = (story.get("byline") or "").removeprefix("By ").strip()
    if not byline:
        return "Contracts" if story["kind"] == "contract" else "U.S. Department of War"
    return byline.split(" , ")[0].strip()


def feed_page(content: Content, content_type: int | None, max_items: int, base: str, hidden: set[int]) -> Page:
    kind = FEED_KIND.get(content_type) if content_type is not None else None
    ids = content.ordered_ids(kind, hidden) if kind or content_type is None else []
    chosen = [s for s in (content.story(i) for i in ids[:max_items]) if s is not None]
    items = []
    for story in chosen:
        imgs = story_images(content, story)
        item = listing_item(content, story, base)
        items.append({
            "title": story["title"],
            "url": the_story_url(story, base),
            # The description is HTML inside XML: escape the text once for HTML here, once more by the template.
            "summary": html.escape(item["summary"], quote=False),
            "thumb": media_url(imgs[0], "82/55") if imgs else None,
            "alt": html.escape(imgs[0]["alt"]) if imgs else "",
            "enclosure": media_url(imgs[0], "670/394") if imgs else None,
            "pub_date": rfc822(story_timestamp(story)),
            "creator": creator_of(story),
        })
    title = f"{SITE_NAME} {KIND_LABEL[kind]}" if kind else SITE_NAME
    self_url = feed_url(content_type if content_type is not None else 1, site=base, max_items=max_items)
    ctx = {"title": title, "site": base, "items": items, "self_url": self_url}
    mtimes = [content.kind_mtime(kind)] + [content.story_mtime(s["id"]) for s in chosen]
    return Page(200, "feed.xml", ctx, content_type="text/xml; charset=utf-8", mtime=max(mtimes))


def robots_page() -> Page:
    body = (
        "User-agent: *\n"
        "Disallow: /__admin__/\n"
        "Disallow: /Search/\n"
        "Allow: /\n"
    )
    return Page(200, None, {"robots": body}, content_type="text/plain; charset=utf-8", mtime=ROBOTS_MTIME,
                body=body.encode())


def home_page(content: Content, base: str, hidden: set[int]) -> Page:
    latest = [content.story(i) for i in content.ordered_ids(None, hidden)[:PAGE_SIZE]]
    links = [{"url": the_story_url(s, base), "text": s["title"]} for s in latest if s]
    sections = [{"url": listing_url(k, site=base), "text": KIND_LABEL[k]} for k in SECTIONS]
    ctx = {"heading": SITE_NAME, "sections": sections, "links": links, "description": f"The {SITE_NAME}."}
    return Page(200, "page.html", ctx, mtime=content.kind_mtime(None) or 0.0)
