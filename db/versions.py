"""What counts as the content of a story or an image, and how two versions differ.

A version is a distinct value of these fields, identified by a hash. Everything else a page carries
(its URL and host, related-story links, view counters, markup, parser version) is left out, so a
re-crawl that finds only noise writes no version. Strings are normalized again here (NFC, collapsed
white space) so that the hash does not depend on every parser getting that right.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

_SPACE = re.compile(r"\s+")

# Field names as change events report them in ``changed_fields`` (a contract with users' scripts:
# add, never rename), each with the record keys it covers.
STORY_FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "subtitle": ("subtitle",),
    "byline": ("byline", "dateline"),
    "published": ("published", "updated"),
    "body": ("paragraphs",),
    "images": ("image_ids",),
    "captions": ("image_texts",),
    "tags": ("tags",),
}
IMAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "caption": ("caption",),
    "alt": ("alt",),
    "credit": ("credit",),
    "published": ("published",),
    "file": ("virin", "size_bytes", "file"),
}


def clean(value: Any) -> Any:
    """NFC and single spaces for strings, recursively; other values unchanged."""
    if isinstance(value, str):
        return _SPACE.sub(" ", unicodedata.normalize("NFC", value)).strip()
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    return value


def _image_text(image: dict[str, Any]) -> dict[str, Any]:
    return {k: image.get(k) for k in ("media_id", "title", "caption", "credit", "alt")}


def story_content(record: dict[str, Any]) -> dict[str, Any]:
    """The versioned content of a story record (a ``Story.to_dict()``)."""
    images = record.get("images") or []
    content = {
        "title": record.get("title"),
        "subtitle": record.get("subtitle"),
        "byline": record.get("byline"),
        "dateline": record.get("dateline"),
        "published": record.get("published"),
        "updated": record.get("updated"),
        "paragraphs": [p for p in record.get("paragraphs") or [] if p and p.strip()],
        "image_ids": [img.get("media_id") or _virin_raw(img) for img in images],
        "image_texts": [_image_text(img) for img in images],
        "tags": sorted(set(record.get("tags") or [])),
    }
    return clean(content)


def image_content(record: dict[str, Any]) -> dict[str, Any]:
    """The versioned content of a photo page record (a ``Photo.to_dict()``)."""
    content = {
        "title": record.get("title"),
        "caption": record.get("caption"),
        "alt": record.get("alt"),
        "credit": record.get("credit"),
        "published": record.get("published"),
        "virin": _virin_raw(record),
        "size_bytes": record.get("size_bytes"),
        "file": _file_name(record.get("download_url") or record.get("src")),
    }
    return clean(content)


def content_hash(content: dict[str, Any]) -> str:
    data = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def changed_fields(old: dict[str, Any], new: dict[str, Any], fields: dict[str, tuple[str, ...]]) -> list[str]:
    """Event field names whose content differs between two content dicts."""
    return [name for name, keys in fields.items() if any(old.get(k) != new.get(k) for k in keys)]


def changed_story_fields(old_record: dict[str, Any], new_record: dict[str, Any]) -> list[str]:
    return changed_fields(story_content(old_record), story_content(new_record), STORY_FIELDS)


def changed_image_fields(old_record: dict[str, Any], new_record: dict[str, Any]) -> list[str]:
    return changed_fields(image_content(old_record), image_content(new_record), IMAGE_FIELDS)


def _virin_raw(image: dict[str, Any]) -> str | None:
    virin = image.get("virin")
    return virin.get("raw") if isinstance(virin, dict) else None


def _file_name(url: str | None) -> str | None:
    if not url:
        return None
    return url.rstrip("/").rsplit("/", 1)[-1]
