"""Changes on command: content edits (which the monitor must see) and faults (which it must not
mistake for content changes).

Every command takes the site lock, so a change never lands half-way through a page render. The
same names are callable over HTTP (``POST /__admin__/<name>`` with a JSON body of keyword
arguments); ``ADMIN_ACTIONS`` lists them.
"""

from __future__ import annotations

import html
import random
import re
import threading
import unicodedata
from typing import Any

from samplesite.breakage import BREAK_MODES
from samplesite.content import Content
from samplesite.faults import (
    DEFAULT_HUGE_BYTES,
    MISBEHAVE_MODES,
    Faults,
    FlipFlop,
    RateLimit,
    Target,
    exact_target,
    to_target,
)
from samplesite.paths import STORY_KINDS
from samplesite.synthetic import make_story

ADMIN_ACTIONS = frozenset({
    "edit_paragraph", "set_title", "set_caption", "add_related", "drop_related", "publish", "remove",
    "restore", "block", "unblock", "fail", "heal", "delay", "break_html", "fix_html", "whitespace_edit",
    "maintenance", "end_maintenance", "rate_limit", "reset", "requests", "clear_requests",
    "redirect", "unredirect", "misbehave", "behave", "flip_flop", "stop_flip_flop", "add_offsite_related",
    "unlist", "relist", "browsers_only",
})


class ChangesMixin:
    """The change API of :class:`samplesite.site.Site`."""

    lock: threading.RLock
    content: Content
    faults: Faults
    _markup_mtime: float

    # --- content edits ---------------------------------------------------------------------
    def edit_paragraph(self, story_id: int, index: int, text: str, *, is_html: bool = False) -> None:
        """Replace the text of the story's ``index``-th paragraph (0-based, ``<p>`` blocks only)."""
        with self.lock:
            block = story_paragraphs(self.content.edit_story(int(story_id)))[int(index)]
            block["html"] = text if is_html else html.escape(text, quote=False)

    def set_title(self, story_id: int, title: str) -> None:
        with self.lock:
            self.content.edit_story(int(story_id))["title"] = title

    def set_caption(self, media_id: int, caption: str) -> None:
        """Change an image's caption: its photo page and every story that shows it change."""
        with self.lock:
            self.content.edit_image(int(media_id))["caption"] = caption

    def add_related(self, story_id: int, related_id: int) -> None:
        with self.lock:
            if self.content.story(int(related_id)) is None:
                raise KeyError(f"no story {related_id}")
            related = self.content.edit_story(int(story_id)).setdefault("related", [])
            if int(related_id) not in related:
                related.append(int(related_id))

    def drop_related(self, story_id: int, related_id: int) -> None:
        with self.lock:
            related = self.content.edit_story(int(story_id)).setdefault("related", [])
            if int(related_id) in related:
                related.remove(int(related_id))

    def publish(self, story: dict[str, Any] | None = None) -> int:
        """Add a story (a plausible generated one when None); it is newest, so first in listings and feeds.

        A given dict needs at least ``title``; ``paragraphs`` (list of text) may stand in for ``body``,
        and ``images`` (image dicts, ``media_id`` optional) are placed after the first paragraph.
        """
        with self.lock:
            day, clock = self.content.now_local()
            sid = self.content.new_story_id()
            if story is None:
                rng = random.Random(sid)
                pool = self.content.ordered_ids(None)[:50]
                new, images = make_story(rng, sid, rng.choice(["news-story", "news-story", "feature-story"]),
                                         day, clock, pool, [self.content.new_media_id() for _ in range(3)])
            else:
                new, images = self._complete(dict(story), sid, day, clock)
            return self.content.add_story(new, images)

    def _complete(self, story: dict[str, Any], sid: int, day: str, clock: str) -> tuple[dict, list[dict]]:
        kind = story.get("kind", "news-story")
        if kind not in STORY_KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        title = story["title"]
        body = story.get("body") or [{"type": "p", "html": html.escape(p, quote=False)}
                                     for p in story.pop("paragraphs", ["Details to follow."])]
        images = []
        for img in story.pop("images", []):
            img = dict(img)
            img.setdefault("media_id", self.content.new_media_id())
            img.setdefault("uploaded", day)
            img.setdefault("ext", "JPG")
            images.append(img)
            if not any(b.get("media_id") == img["media_id"] for b in body):
                body.insert(min(1, len(body)), {"type": "image", "media_id": img["media_id"]})
        slug = None if kind == "contract" else re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80]
        related = [int(r) for r in story.get("related", []) if self.content.story(int(r))]
        defaults = {"id": sid, "kind": kind, "slug": slug, "subtitle": None, "published": day, "time": clock,
                    "byline": None if kind in ("release", "contract", "transcript") else "By DOD News Staff , DOD News",
                    "dateline": None, "tags": []}
        return defaults | story | {"id": sid, "kind": kind, "body": body, "related": related}, images

    def whitespace_edit(self, story_id: int, index: int | None = None) -> int:
        """Re-space a paragraph and decompose its accents (NFD): same words, new bytes. Returns the index.

        With no index, picks a paragraph with precomposed characters when the story has one, so the
        Unicode form really changes; otherwise only whitespace changes.
        """
        with self.lock:
            paras = story_paragraphs(self.content.edit_story(int(story_id)))
            if index is None:
                index = next((i for i, b in enumerate(paras)
                              if unicodedata.normalize("NFD", b["html"]) != b["html"]), 0)
            block = paras[int(index)]
            words = unicodedata.normalize("NFD", block["html"]).split(" ")
            spaced = "  ".join(words[:3]) + "\n      " + " ".join(words[3:])
            block["html"] = "\n   " + spaced.replace(". ", ".  ") + "  \n"
            return int(index)

    # --- faults -------------------------------------------------------------------------------
    def remove(self, path_or_id: int | str, status: int = 404) -> None:
        """Answer 404 or 410 for the page; a removed story also leaves listings and feeds."""
        if int(status) not in (404, 410):
            raise ValueError("status must be 404 or 410")
        with self.lock:
            target = to_target(path_or_id)
            self.faults.removed[target] = int(status)
            self._listing_touched(target)

    def restore(self, path_or_id: int | str) -> None:
        with self.lock:
            target = to_target(path_or_id)
            if self.faults.removed.pop(target, None) is not None:
                self._listing_touched(target)

    def _listing_touched(self, target: Target) -> None:
        if target[0] == "id" and isinstance(target[1], int):
            story = self.content.story(target[1])
            if story is not None:
                self.content.listing_changed(story["kind"])

    def unlist(self, story_id: int) -> None:
        """Take a story out of every listing and feed (and the home page); its page still answers.

        Such a story is reachable only through related-story links, as an old story is on the real
        site once it has scrolled past the listing pages a crawl reads."""
        with self.lock:
            story = self.content.story(int(story_id))
            if story is None:
                raise KeyError(f"no story {story_id}")
            self.faults.unlisted.add(int(story_id))
            self.content.listing_changed(story["kind"])

    def relist(self, story_id: int) -> None:
        with self.lock:
            story = self.content.story(int(story_id))
            if story is not None and int(story_id) in self.faults.unlisted:
                self.faults.unlisted.discard(int(story_id))
                self.content.listing_changed(story["kind"])

    def browsers_only(self, on: bool = True) -> None:
        """Answer every request that does not come from a browser with Akamai's 403 "Access Denied"
        (as war.gov's bot wall does to plain HTTP clients); ``on=False`` lets everyone in again."""
        with self.lock:
            self.faults.browsers_only = bool(on)

    def block(self, path_or_id: int | str | None = None) -> None:
        """Answer 403 with Akamai's "Access Denied" page (None: every path)."""
        with self.lock:
            self.faults.blocked.add(to_target(path_or_id))

    def unblock(self, path_or_id: int | str | None = None) -> None:
        """Lift one block, or every block when None."""
        with self.lock:
            _discard(self.faults.blocked, path_or_id)

    def fail(self, path_or_id: int | str | None = None, status: int = 500) -> None:
        with self.lock:
            self.faults.failing[to_target(path_or_id)] = int(status)

    def heal(self, path_or_id: int | str | None = None) -> None:
        """Stop failing one target, or every target when None."""
        with self.lock:
            _discard(self.faults.failing, path_or_id)

    def delay(self, seconds: float, path_or_id: int | str | None = None) -> None:
        """Wait ``seconds`` before answering (0 removes the delay)."""
        with self.lock:
            target = to_target(path_or_id)
            if float(seconds) > 0:
                self.faults.delays[target] = float(seconds)
            else:
                self.faults.delays.pop(target, None)

    def break_html(self, story_id: int | str | None = None, mode: str = "truncate") -> None:
        """Serve broken markup for a story (None: every story). Modes: see ``breakage.apply``."""
        if mode not in BREAK_MODES:
            raise ValueError(f"mode must be one of {BREAK_MODES}")
        with self.lock:
            self.faults.broken[to_target(story_id)] = mode
            self._markup_mtime = self.content._bump()

    def fix_html(self, story_id: int | str | None = None) -> None:
        with self.lock:
            _discard(self.faults.broken, story_id)
            self._markup_mtime = self.content._bump()

    def maintenance(self, path_or_id: int | str | None = None) -> None:
        """Serve a 200 "site under maintenance" page without article markup (None: whole site)."""
        with self.lock:
            self.faults.maintenance.add(to_target(path_or_id))

    def end_maintenance(self, path_or_id: int | str | None = None) -> None:
        with self.lock:
            _discard(self.faults.maintenance, path_or_id)

    def rate_limit(self, n_requests: int | None, retry_after: float = 30, http_date: bool = False) -> None:
        """Allow ``n_requests`` per ``retry_after`` seconds, then 429 + Retry-After; None lifts it.

        ``http_date`` sends Retry-After as an HTTP date (the other form RFC 9110 allows) instead of seconds.
        """
        with self.lock:
            self.faults.rate = (None if n_requests is None
                                else RateLimit(int(n_requests), float(retry_after), bool(http_date)))

    def redirect(self, path_or_id: int | str | None, to: str, status: int = 301) -> None:
        """Answer with a redirect to ``to`` (a path on this site, or any absolute URL).

        An id redirects every URL of the page; a path only that path, so a story's old URL can
        redirect to its new one (the defense.gov -> war.gov move, seen through ``--site``). Two
        redirects pointing at each other make a loop; an absolute URL elsewhere is an off-site hop.
        """
        if int(status) not in (301, 302, 303, 307, 308):
            raise ValueError("status must be a redirect (301, 302, 303, 307 or 308)")
        with self.lock:
            self.faults.redirects[exact_target(path_or_id)] = (int(status), str(to))

    def unredirect(self, path_or_id: int | str | None = None) -> None:
        """Lift one redirect (named as it was set), or every redirect when None."""
        with self.lock:
            if path_or_id is None:
                self.faults.redirects.clear()
            else:
                self.faults.redirects.pop(exact_target(path_or_id), None)

    def misbehave(self, mode: str, path_or_id: int | str | None = None, size: int = DEFAULT_HUGE_BYTES) -> None:
        """Answer badly on the wire. Modes:

        reset: close the connection without answering; truncate: announce the whole page, send half;
        empty: 200 with no body; login: 200 with a sign-in wall; oversize: the page padded to ``size``
        bytes; gzip_bomb: ``size`` bytes of zeros sent gzipped (a few KB that inflate past any limit).
        """
        if mode not in MISBEHAVE_MODES:
            raise ValueError(f"mode must be one of {MISBEHAVE_MODES}")
        with self.lock:
            self.faults.misbehaving[to_target(path_or_id)] = (mode, int(size))

    def behave(self, path_or_id: int | str | None = None) -> None:
        """Lift one misbehaviour, or all of them when None."""
        with self.lock:
            _discard(self.faults.misbehaving, path_or_id)

    def flip_flop(self, story_id: int, text: str, index: int = 0) -> None:
        """Alternate a paragraph between its text and ``text`` on every request for the story.

        The first request after this call shows ``text``; the next one the original, and so on,
        as a page behind two out-of-sync caches would.
        """
        with self.lock:
            story_paragraphs(self.content.edit_story(int(story_id)))[int(index)]  # the paragraph exists
            other = html.escape(text, quote=False)
            self.faults.flipping[to_target(int(story_id))] = FlipFlop(int(index), other)

    def stop_flip_flop(self, story_id: int | None = None) -> None:
        """Freeze the flip-flop; the paragraph keeps the text it showed last."""
        with self.lock:
            _discard(self.faults.flipping, story_id)

    def add_offsite_related(self, story_id: int, url: str) -> None:
        """Add a related-story link to another host (``https://evil.example/...``) to a story page."""
        with self.lock:
            self.content.edit_story(int(story_id))  # marks the page changed
            self.faults.offsite_related.setdefault(to_target(int(story_id)), []).append(str(url))

    def reset(self) -> None:
        """Back to the data file: edits, published stories and every fault are dropped."""
        with self.lock:
            self.content.reset()
            self.faults = Faults()
            self._markup_mtime = 0.0


def story_paragraphs(story: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in story["body"] if b["type"] == "p"]


def _discard(targets: dict | set, path_or_id: int | str | None) -> None:
    if path_or_id is None:
        targets.clear()
    elif isinstance(targets, dict):
        targets.pop(to_target(path_or_id), None)
    else:
        targets.discard(to_target(path_or_id))
