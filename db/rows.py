"""The rows a parsed record decides, and the stored raw pages: shared by a crawl and a re-parse.

``db.archive`` (a crawl storing a response) and ``crawler.reparse`` (the current parsers run again over
stored pages) must write exactly the same columns for the same record; both call these.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import sqlite_utils


def story_columns(record: dict[str, Any]) -> dict[str, Any]:
    """The ``stories`` columns a parse decides, from a story record (``Story.to_dict()``).

    Shared with ``crawler.reparse`` so a re-parse writes exactly what a crawl would have written.
    """
    images = record.get("images") or []
    return {
        "kind": record.get("kind"), "canonical_url": record.get("canonical_url"), "title": record.get("title"),
        "subtitle": record.get("subtitle"), "published": record.get("published"), "updated": record.get("updated"),
        "byline": record.get("byline"), "authors": json.dumps(record.get("authors") or []),
        "organisation": record.get("organisation"), "dateline": record.get("dateline"),
        "body_text": record.get("body_text"),
        "captions": "\n".join(filter(None, (img.get("caption") for img in images))),  # searchable
        "tags": json.dumps(record.get("tags") or []), "parser_version": record.get("parser_version"),
    }


def image_columns(record: dict[str, Any]) -> dict[str, Any]:
    """The ``images`` columns a parse decides, from a photo record or an inline image's dict."""
    virin = record.get("virin") if isinstance(record.get("virin"), dict) else {}
    return {
        "page_url": record.get("url") or record.get("page_url"), "src": record.get("src"),
        "download_url": record.get("download_url"), "alt": record.get("alt"), "title": record.get("title"),
        "caption": record.get("caption"), "credit": record.get("credit"), "size_bytes": record.get("size_bytes"),
        "published": record.get("published"), "virin": virin.get("raw"), "virin_shot_date": virin.get("shot_date"),
        "virin_branch_code": virin.get("branch_code"), "virin_branch": virin.get("branch"),
        "virin_originator_id": virin.get("originator_id"), "virin_sequence": virin.get("sequence"),
        "virin_suffix": virin.get("suffix"), "parser_version": record.get("parser_version"),
    }


def write_tags(db: sqlite_utils.Database, story_id: int, tags: list[str], seen_at: str) -> None:
    """The tags index follows the story's current tags; a tag already known keeps its first-seen date."""
    names = sorted(set(tags))
    for name in names:
        db.execute("INSERT OR IGNORE INTO tags (story_id, name, first_seen) VALUES (?, ?, ?)",
                   [story_id, name, seen_at])
    db.execute(f"DELETE FROM tags WHERE story_id = ? AND name NOT IN ({marks(names)})", [story_id, *names])


def read_raw(db: sqlite_utils.Database, sha256: str | None) -> bytes | None:
    """A stored response body, decompressed."""
    if not sha256:
        return None
    row = db.execute("SELECT content FROM raw_pages WHERE sha256 = ?", [sha256]).fetchone()
    return zlib.decompress(row[0]) if row else None


def marks(values: Any) -> str:
    """Placeholders for ``NOT IN (...)``; an empty list must match nothing, and ``NOT IN (NULL)`` never does."""
    return ",".join("?" * len(values)) if values else "SELECT NULL WHERE 0"
