"""The site model of ``bench/time_to_alert.py``: pages and the changes that happen to them over time.

Kept apart from the simulators so every approach is measured against the very same site (same seed,
same changes at the same moments). See ``time_to_alert.py``'s docstring for the model's parameters.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from core.urls import LISTING_BY_KIND

KINDS = tuple(LISTING_BY_KIND)
KIND_WEIGHTS = (50, 10, 20, 8, 4, 3, 5, 1, 1, 1)[: len(KINDS)]
DAY = 86400.0
FRESH_DAYS = 7.0
PAGE_SIZE = 10

Key = tuple[str, int]  # (page_type, id)


@dataclass
class Change:
    kind: str  # new | fresh-edit | old-edit | related | removal | restoration
    at: float  # seconds since the simulation's start
    pages: tuple[Key, ...]
    detected: float | None = None
    moot: bool = False  # e.g. an edit of a removed page, a removal undone before it could be confirmed


@dataclass
class Page:
    published: float  # seconds since the start (negative: before it)
    kind: str | None = None
    story: int | None = None  # a photo's story
    photos: list[int] = field(default_factory=list)
    version: int = 1
    removed: bool = False
    pending: list[int] = field(default_factory=list)  # change ids this page shows that no fetch has seen


class Site:
    """The site over simulated time. ``advance(t)`` applies every change up to t; ``fetch`` answers."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.answer_rng = random.Random(args.seed + 1)
        self.pages: dict[Key, Page] = {}
        self.changes: list[Change] = []
        self.timeline: list[tuple[float, int, str]] = []  # heap of (time, change id, action)
        self.now = 0.0
        self.new_ids: dict[str, list[int]] = {k: [] for k in KINDS}  # published during the run, newest first
        self.old_ids: dict[str, list[int]] = {k: [] for k in KINDS}  # archived before, newest first (ascending ids)
        self.propensity: dict[Key, float] = {}
        self._build()

    # -- construction ----------------------------------------------------------------------------

    def _build(self) -> None:
        a, rng = self.args, self.rng
        published = sorted((rng.uniform(-3650 * DAY, 0) for _ in range(a.stories)), reverse=True)
        for i, when in enumerate(published, start=1):  # id 1 is the newest old story
            kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
            self.pages[("story", i)] = Page(when, kind)
            self.old_ids[kind].append(i)
        for media in range(1, a.photos + 1):
            story = rng.randint(1, a.stories)
            self.pages[("photo", media)] = Page(self.pages[("story", story)].published, story=story)
            self.pages[("story", story)].photos.append(media)
        self.next_story, self.next_photo = a.stories + 1, a.photos + 1
        self.propensity = {key: rng.gammavariate(a.propensity_shape, 1.0) for key in self.pages}
        for i in range(1, a.stories + 1):  # last week's stories: their remaining first-days edits
            if self.pages[("story", i)].published < -FRESH_DAYS * DAY:
                break
            self._fresh_edits(i, self.pages[("story", i)].published, after=0.0)
        t = 0.0
        while (t := t + rng.expovariate(a.new_per_day / DAY)) < a.days * DAY:
            self._schedule(Change("new", t, ()), "publish")
        self._schedule_trickle()
        self._schedule_wave()

    def _schedule(self, change: Change, action: str) -> None:
        self.changes.append(change)
        heapq.heappush(self.timeline, (change.at, len(self.changes) - 1, action))

    def _fresh_edits(self, story: int, published: float, after: float) -> None:
        a, rng = self.args, self.rng
        photos = self.pages[("story", story)].photos
        for _ in range(poisson(rng, a.fresh_edits)):
            at = published + rng.expovariate(1 / (a.fresh_edit_hours * 3600))
            on_caption = bool(photos) and rng.random() < a.caption_share
            key = ("photo", rng.choice(photos)) if on_caption else ("story", story)
            if after <= at < a.days * DAY:
                self._schedule(Change("edit", at, (key,)), "edit")

    def _schedule_trickle(self) -> None:
        a, rng = self.args, self.rng
        stories = [k for k in self.pages if k[0] == "story"]
        photos = [k for k in self.pages if k[0] == "photo"]
        for per_day, population, action in ((a.old_edits_per_day, stories, "edit"),
                                            (a.caption_edits_per_day, photos, "edit"),
                                            (a.related_per_day, stories, "related")):
            weights = list(cumulative(self.propensity[k] for k in population))
            for _ in range(poisson(rng, per_day * a.days)):
                key = population[bisect.bisect(weights, rng.random() * weights[-1])]
                self._schedule(Change(action, rng.uniform(0, a.days * DAY), (key,)), action)

    def true_rate(self, key: Key) -> float:
        """Changes a day this old page gets from the trickle (what a year of checks would have seen)."""
        a = self.args
        if key[0] == "story":
            return self.propensity[key] / self._mean_propensity * (a.old_edits_per_day + a.related_per_day) / a.stories
        return self.propensity[key] / self._mean_propensity * a.caption_edits_per_day / a.photos

    @property
    def _mean_propensity(self) -> float:
        return self.args.propensity_shape  # the mean of Gamma(shape, 1)

    def _schedule_wave(self) -> None:
        a, rng = self.args, self.rng
        old = [i for i in range(1, a.stories + 1) if self.pages[("story", i)].published < -365 * DAY]
        rng.shuffle(old)
        pages = 0
        for story in old:
            if pages >= a.wave_pages:
                break
            keys = self.story_and_photos(story)
            pages += len(keys)
            at = (a.wave_start + rng.uniform(0, a.wave_days)) * DAY
            back = rng.uniform(a.restore_start * DAY, a.days * DAY) if rng.random() < a.restore_share else None
            for key in keys:
                if at < a.days * DAY:
                    self._schedule(Change("removal", at, (key,)), "remove")
                if back is not None and at < back < a.days * DAY:
                    self._schedule(Change("restoration", back, (key,)), "restore")

    # -- time ------------------------------------------------------------------------------------

    def advance(self, until: float) -> None:
        while self.timeline and self.timeline[0][0] <= until:
            _, cid, action = heapq.heappop(self.timeline)
            self._apply(action, self.changes[cid], cid)
        self.now = max(self.now, until)

    def _apply(self, action: str, change: Change, cid: int) -> None:
        if action == "publish":
            self._publish(change, cid)
            return
        key = change.pages[0]
        page = self.pages[key]
        if action in ("edit", "related"):
            if page.removed:
                change.moot = True
                return
            story = key[1] if key[0] == "story" else page.story
            age = (change.at - self.pages[("story", story)].published) / DAY  # type: ignore[index]
            change.kind = "fresh-edit" if age < FRESH_DAYS else ("related" if action == "related" else "old-edit")
            if key[0] == "photo":  # a caption shows on the photo page and inline on its story
                change.pages = (key, ("story", page.story))  # type: ignore[assignment]
        elif action == "remove":
            page.removed = True
            self._list(key, listed=False)
        elif action == "restore":
            page.removed = False
            self._list(key, listed=True)
            for other in page.pending:  # a removal nobody confirmed before it came back is moot
                if self.changes[other].kind == "removal" and self.changes[other].detected is None:
                    self.changes[other].moot = True
        for shown in change.pages:
            self.pages[shown].version += 1
            self.pages[shown].pending.append(cid)

    def _publish(self, change: Change, cid: int) -> None:
        a, rng = self.args, self.rng
        story, kind = self.next_story, rng.choices(KINDS, KIND_WEIGHTS)[0]
        self.next_story += 1
        page = Page(change.at, kind)
        self.pages[("story", story)] = page
        for _ in range(poisson(rng, a.photos_per_story)):
            self.pages[("photo", self.next_photo)] = Page(change.at, story=story)
            page.photos.append(self.next_photo)
            self.next_photo += 1
        self.new_ids[kind].insert(0, story)
        change.pages = (("story", story),)
        page.pending.append(cid)
        self._fresh_edits(story, change.at, after=change.at)

    def _list(self, key: Key, listed: bool) -> None:
        if key[0] != "story":
            return
        kind = self.pages[key].kind
        ids = self.new_ids[kind] if key[1] > self.args.stories else self.old_ids[kind]  # type: ignore[index]
        if listed:
            if key[1] > self.args.stories:
                ids.insert(0, key[1])
                ids.sort(reverse=True)
            else:
                bisect.insort(ids, key[1])
        else:
            index = bisect.bisect_left(ids, key[1]) if key[1] <= self.args.stories else None
            if index is not None and index < len(ids) and ids[index] == key[1]:
                del ids[index]
            elif key[1] in ids:
                ids.remove(key[1])

    # -- answers ---------------------------------------------------------------------------------

    def fetch(self, key: Key, at: float) -> tuple[str, int]:
        """(outcome, version) of fetching ``key`` at ``at``."""
        self.advance(at)
        page = self.pages.get(key)
        if page is None or page.published > at:
            return "not_found", 0
        if self.answer_rng.random() < self.args.error_rate:
            return "error", 0
        return ("not_found" if page.removed else "ok"), page.version

    def seen(self, key: Key) -> list[int]:
        """Changes a successful fetch of ``key`` now shows for the first time (removals excluded)."""
        page = self.pages[key]
        shown, kept = [], []
        for cid in page.pending:
            change = self.changes[cid]
            if change.detected is not None or change.moot:
                continue
            (kept if change.kind == "removal" else shown).append(cid)
        page.pending = kept
        return shown

    def pending_removal(self, key: Key) -> int | None:
        for cid in self.pages[key].pending:
            change = self.changes[cid]
            if change.kind == "removal" and change.detected is None and not change.moot:
                return cid
        return None

    def listing(self, kind: str, number: int, at: float) -> tuple[list[int], bool]:
        """A listing page at ``at``: newest first, ``PAGE_SIZE`` a page; and whether it is the last."""
        self.advance(at)
        new, old = self.new_ids[kind], self.old_ids[kind]
        start = (number - 1) * PAGE_SIZE
        ids = (new + old[: max(0, start + PAGE_SIZE - len(new))])[start:start + PAGE_SIZE] if start < len(new) \
            else old[start - len(new): start - len(new) + PAGE_SIZE]
        return ids, start + PAGE_SIZE >= len(new) + len(old)

    def story_and_photos(self, story: int) -> list[Key]:
        """A story's page and its photo pages, in the order a crawl fetches them."""
        return [("story", story), *(("photo", m) for m in self.pages[("story", story)].photos)]

    def published_between(self, since: float, until: float) -> list[int]:
        self.advance(until)
        return [i for i in range(self.args.stories + 1, self.next_story)
                if since < self.pages[("story", i)].published <= until]


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def cumulative(values: Iterable[float]) -> Iterable[float]:
    total = 0.0
    for value in values:
        total += value
        yield total
