"""What the sample site knows: stories and images from the data file, synthetic stories, and edits.

Data file shape (``data/site.json``)::

    {"stories": [{"id": 3610656, "kind": "news-story", "slug": "more-nations-...", "title": "...",
                  "subtitle": null, "published": "2023-12-07", "time": "15:36:00" (US Eastern),
                  "byline": "By David Vergun , DOD News" | null, "dateline": null, "summary": optional,
                  "updated": optional ISO datetime, "tags": [...], "related": [story ids],
                  "body": [{"type": "p", "html": "..."}, {"type": "h2", "text": "..."},
                           {"type": "image", "media_id": 2003354108, "align": "right"},
                           {"type": "spotlight", "title": "...", "url": "..."}]}],
     "images": [{"media_id": 2003354108, "virin": "231111-F-NU281-1013M", "ext": "JPG", "alt": "...",
                 "title": "...", "caption": "...", "credit": "...", "size": "2.91 MB",
                 "uploaded": "2023-12-07"}]}

Contract stories have ``"slug": null``.

Stories and images are plain dicts in the data file's shape (see ``data/site.json``). Synthetic
stories are generated on demand from their index, so 100,000 of them cost nothing until a page
asks for one; a story is copied into ``self.stories`` only when an edit touches it.
"""

from __future__ import annotations

import copy
import json
import time
from calendar import timegm
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from samplesite.synthetic import Synthetic

DATA_FILE = Path(__file__).parent / "data" / "site.json"
# Ids handed out by publish(); far above the data file (3.x-4.x million) and synthetic ids.
PUBLISHED_MEDIA_BASE = 2_090_000_000


def load_data(path: str | Path | None = None) -> dict[str, Any]:
    """Read a data file (the default one when ``path`` is None)."""
    with open(path or DATA_FILE, encoding="utf-8") as fh:
        return json.load(fh)


def story_timestamp(story: dict[str, Any]) -> float:
    """The story's publication instant (data times are US Eastern; a fixed -5 h is close enough)."""
    return _local_ts(story["published"], story.get("time", default_time(story["id"])))


def default_time(story_id: int) -> str:
    """A plausible office-hours publication time, stable per story, when the data gives none."""
    return f"{8 + story_id % 10:02d}:{story_id % 60:02d}:{(story_id // 7) % 60:02d}"


def _local_ts(day: str, clock: str = "12:00:00") -> float:
    dt = datetime.fromisoformat(f"{day}T{clock}")
    return float(timegm(dt.timetuple()) + 5 * 3600)


class Content:
    """Mutable content of one site instance. Not thread-safe by itself: the server holds a lock."""

    def __init__(self, data: dict[str, Any], synthetic: int = 0, seed: int = 1) -> None:
        self._data = data
        self.synth = Synthetic(synthetic, seed) if synthetic else None
        self.reset()

    def reset(self) -> None:
        """Forget every edit: back to the data file (and the same synthetic stories)."""
        self.stories: dict[int, dict[str, Any]] = {s["id"]: copy.deepcopy(s) for s in self._data["stories"]}
        self.images: dict[int, dict[str, Any]] = {i["media_id"]: copy.deepcopy(i) for i in self._data["images"]}
        self._story_mtime: dict[int, float] = {}
        self._image_mtime: dict[int, float] = {}
        self._kind_mtime: dict[str, float] = {}
        self._order: dict[str, list[int]] | None = None
        top = max(self.stories) if self.stories else 4_000_000
        self._next_id = max(top, self.synth.last_id if self.synth else 0) + 1
        self._next_media = PUBLISHED_MEDIA_BASE
        # After a reset that dropped edits, no page may claim to be older than the reset: a client
        # holding a Last-Modified from an edited version must not get 304 for the restored one.
        last = getattr(self, "_last_bump", 0.0)
        self._last_bump = last
        self._floor = self._bump() if last else 0.0

    # --- lookups -------------------------------------------------------------------------
    def story(self, story_id: int) -> dict[str, Any] | None:
        found = self.stories.get(story_id)
        if found is None and self.synth is not None:
            found = self.synth.story(story_id)
        return found

    def image(self, media_id: int) -> dict[str, Any] | None:
        found = self.images.get(media_id)
        if found is None and self.synth is not None:
            found = self.synth.image(media_id)
        return found

    def all_story_ids(self) -> list[int]:
        ids = list(self.stories)
        if self.synth is not None:
            ids.extend(i for i in self.synth.ids() if i not in self.stories)
        return ids

    def ordered_ids(self, kind: str | None, hidden: set[int] | frozenset[int] = frozenset()) -> list[int]:
        """Story ids of one kind (None = every kind), newest first, without ``hidden`` ones."""
        if self._order is None:
            self._order = self._build_order()
        ids = self._order.get(kind or "*", [])
        return [i for i in ids if i not in hidden] if hidden else ids

    def _build_order(self) -> dict[str, list[int]]:
        keyed: list[tuple[float, int, str]] = []
        for sid, story in self.stories.items():
            keyed.append((story_timestamp(story), sid, story["kind"]))
        if self.synth is not None:
            keyed.extend(k for k in self.synth.order_keys() if k[1] not in self.stories)
        keyed.sort(reverse=True)
        order: dict[str, list[int]] = {"*": []}
        for _, sid, kind in keyed:
            order["*"].append(sid)
            order.setdefault(kind, []).append(sid)
        return order

    # --- modification times ----------------------------------------------------------------
    def story_mtime(self, story_id: int) -> float:
        if story_id in self._story_mtime:
            return self._story_mtime[story_id]
        story = self.story(story_id)
        if story is None:
            return 0.0
        if story.get("updated"):
            return max(self._floor, _local_ts(story["updated"][:10], story["updated"][11:19] or "12:00:00"))
        return max(self._floor, story_timestamp(story))

    def edited_at(self, story_id: int) -> float:
        """When the story was last edited here (0 if never): a related story's edit dates its linkers."""
        return self._story_mtime.get(story_id, 0.0)

    def image_mtime(self, media_id: int) -> float:
        if media_id in self._image_mtime:
            return self._image_mtime[media_id]
        img = self.image(media_id)
        return max(self._floor, _local_ts(img["uploaded"])) if img else 0.0

    def kind_mtime(self, kind: str | None) -> float:
        if kind is None:
            return max(self._kind_mtime.values(), default=self._floor)
        return self._kind_mtime.get(kind, self._floor)

    def _bump(self) -> float:
        """A strictly increasing whole-second clock, so two quick edits never share a Last-Modified."""
        now = max(float(int(time.time())), self._last_bump + 1)
        self._last_bump = now
        return now

    # --- edits ---------------------------------------------------------------------------
    def edit_story(self, story_id: int) -> dict[str, Any]:
        """The story's own mutable dict (copied out of the generator if synthetic); marks it changed."""
        story = self.stories.get(story_id)
        if story is None:
            generated = self.story(story_id)
            if generated is None:
                raise KeyError(f"no story {story_id}")
            story = self.stories[story_id] = copy.deepcopy(generated)
        self._story_mtime[story_id] = self._bump()
        return story

    def edit_image(self, media_id: int) -> dict[str, Any]:
        img = self.images.get(media_id)
        if img is None:
            generated = self.image(media_id)
            if generated is None:
                raise KeyError(f"no image {media_id}")
            img = self.images[media_id] = copy.deepcopy(generated)
        self._image_mtime[media_id] = self._bump()
        return img

    def listing_changed(self, kind: str) -> None:
        """Listings and feeds of ``kind`` changed membership (publish, remove, restore)."""
        self._kind_mtime[kind] = self._bump()
        self._order = None

    def add_story(self, story: dict[str, Any], images: list[dict[str, Any]]) -> int:
        for img in images:
            self.images[img["media_id"]] = img
            self._image_mtime[img["media_id"]] = self._bump()
        self.stories[story["id"]] = story
        self._story_mtime[story["id"]] = self._bump()
        self.listing_changed(story["kind"])
        return story["id"]

    def new_story_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def new_media_id(self) -> int:
        self._next_media += 1
        return self._next_media - 1

    def now_local(self) -> tuple[str, str]:
        """(date, time) of now in the site's clock (US Eastern, fixed -5 h)."""
        dt = datetime.fromtimestamp(time.time() - 5 * 3600, tz=UTC)
        return dt.strftime("%Y-%m-%d"), dt.strftime("%H:%M:%S")
