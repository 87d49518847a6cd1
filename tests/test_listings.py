"""Listing checks (``monitor.listings``): a walk that reads one listing page in ``listing_stride`` still names
every story gone from the listing, over a real SQLite archive with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.config import FrontierConfig
from db import frontier as store
from db.frontier import URGENCY_CANDIDATE, FrontierRow
from db.schema import connect
from monitor import frontier as policy
from monitor import listings
from monitor.listings import ListingPage

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
KIND = "news-story"
SIZE = 10


@pytest.fixture
def db(tmp_path):
    archive = connect(str(tmp_path / "listings.db"))
    yield archive
    archive.conn.close()


class Listing:
    """The site's listing of one kind: story ids newest first, ``SIZE`` a page."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def page(self, number: int) -> ListingPage:
        start = (number - 1) * SIZE
        return ListingPage(number, self.ids[start:start + SIZE], start + SIZE >= len(self.ids))


def archive(db, ids) -> None:
    far = policy.stamp(NOW + timedelta(days=365))  # no revisit due: the slices spend on the listing alone
    store.save_rows(db, [FrontierRow("story", i, f"https://www.war.gov/Article/{i}/", KIND, "2020-01-01",
                                     due_at=far, verified_at=far, added_at=policy.stamp(NOW - timedelta(days=400)))
                         for i in ids])


def walk(db, site: Listing, pages: list[int], at: datetime = NOW) -> int:
    with db.atomic():
        return listings.record(db, KIND, [site.page(p) for p in pages], at)


def learned(db, site: Listing) -> None:
    """The state after a first walk of every page: each story placed, the kind keyed."""
    store.set_state(db, f"listing:{KIND}", {"next": 99, "cycle_start": policy.stamp(NOW - timedelta(days=1))})
    last = (len(site.ids) + SIZE - 1) // SIZE
    walk(db, site, list(range(1, last + 1)), NOW - timedelta(hours=1))
    assert listings.cursor(db, KIND)["keyed"]


def candidates(db) -> set[int]:
    return {r[0] for r in db.execute("SELECT subject_id FROM frontier WHERE urgency = ?", [URGENCY_CANDIDATE])}


def learned_listing(db) -> Listing:
    """A 100-story listing, archived, its order learned by a first walk."""
    site = Listing(list(range(1, 101)))
    archive(db, site.ids)
    learned(db, site)
    return site


def removed_from_page_5(db, site: Listing, story: int) -> None:
    """The story leaves the listing, a check of its page makes it a candidate, its 404s remove it."""
    site.ids.remove(story)
    walk(db, site, [5])
    assert candidates(db) == {story}
    db.execute("UPDATE frontier SET urgency = 0 WHERE subject_id = ?", [story])


def test_a_first_walk_learns_the_order_of_the_listing(db):
    site = learned_listing(db)
    keys = store.listing_keys(db, site.ids)
    assert all(keys[a] > keys[b] for a, b in zip(site.ids, site.ids[1:], strict=False))  # newest first
    assert listings.cursor(db, KIND)["walks"] == 1 and candidates(db) == set()


def test_a_count_that_holds_spares_the_pages_between_and_one_that_does_not_names_the_story(db):
    site = learned_listing(db)
    assert walk(db, site, [1, 9]) == 0  # nothing left: 70 listed stories between, as the site shows
    assert listings.cursor(db, KIND)["spans"] == [] and candidates(db) == set()

    site.ids.remove(37)  # page 4 on the site
    assert walk(db, site, [1, 9]) == 0  # the count no longer holds, but which story left is not known yet
    assert listings.cursor(db, KIND)["spans"] == [[1, 9, 0]]
    assert walk(db, site, list(range(1, 10))) == 1  # the span, read whole: 36 and 38 are neighbours now
    assert candidates(db) == {37}
    assert listings.cursor(db, KIND)["spans"] == []
    assert db.execute("SELECT delisted_at IS NOT NULL FROM frontier WHERE subject_id = 37").fetchone() == (1,)
    assert walk(db, site, [1, 9]) == 0  # and the count holds again without it
    assert listings.cursor(db, KIND)["spans"] == []


def test_neighbours_on_one_page_name_the_story_between_them(db):
    site = learned_listing(db)
    site.ids.remove(55)
    assert walk(db, site, [6]) == 1
    assert candidates(db) == {55}


def test_stories_gone_from_the_top_and_the_bottom(db):
    site = learned_listing(db)
    site.ids = site.ids[1:-1]  # the newest and the oldest
    walk(db, site, [1, 10])  # page 1 and the last page, together
    assert candidates(db) == {1, 100}


def test_a_new_story_is_placed_above_every_other_and_a_returning_one_is_listed_again(db):
    site = learned_listing(db)
    removed_from_page_5(db, site, 42)
    archive(db, [500])
    site.ids.insert(0, 500)  # a new story on page 1
    site.ids.insert(site.ids.index(41) + 1, 42)  # the removed one restored, at its place
    walk(db, site, [1, 5])
    keys = store.listing_keys(db, [500, 1, 41, 42, 43])
    assert keys[500] > keys[1] > keys[41] > keys[42] > keys[43]
    assert db.execute("SELECT delisted_at FROM frontier WHERE subject_id = 42").fetchone() == (None,)
    assert candidates(db) == {42}  # back on its listing: fetched soon, its 200 says it was restored
    assert walk(db, site, [1, 9]) == 0 and listings.cursor(db, KIND)["spans"] == []  # the counts hold again


def test_an_order_the_site_contradicts_is_forgotten_and_walked_again(db, caplog):
    site = learned_listing(db)
    site.ids[20], site.ids[21] = site.ids[21], site.ids[20]  # the site sorts differently from what was learned
    assert walk(db, site, [3]) == 0
    assert "contradicts" in caplog.text
    assert candidates(db) == set()
    assert store.listing_keys(db, [1]) == {1: None}
    assert listings.cursor(db, KIND)["keyed"] is False  # the next walk reads every page


def test_a_daemon_finds_every_removal_at_a_fraction_of_the_walk(db):
    """Slices planned by ``plan_slice`` for four days: the first walk reads every page, the later ones one in
    four; stories leave the listing on day two, each becomes a candidate within a walk and its spans."""
    site = Listing(list(range(1, 2001)))  # 200 listing pages
    archive(db, site.ids)
    config = FrontierConfig(enumerate_days=0.5, listing_stride=4)
    removed = {150, 151, 777, 1312, 1999}
    requests, at = {}, NOW
    while at < NOW + timedelta(days=4):
        if at >= NOW + timedelta(days=2) and removed & set(site.ids):
            site.ids = [i for i in site.ids if i not in removed]
            gone_at = at
        with db.atomic():
            plan = policy.plan_slice(db, config, at, used_in_lookback=0, index_cost=0, listing_kinds=[KIND])
        day = (at - NOW).days
        requests[day] = requests.get(day, 0) + len(plan.listings)
        if plan.listings:
            walk(db, site, [page for _kind, page in plan.listings], at)
            if candidates(db) >= removed and "found" not in locals():
                found = at
        at += timedelta(minutes=5)
    assert candidates(db) == removed
    assert found - gone_at < timedelta(days=0.5 * 2)  # within two walks' time
    assert requests[0] >= 200  # the first walk: every one of the 200 pages
    assert max(requests[1], requests[3]) < 0.35 * 2 * 200  # then two walks a day of one page in four


def test_a_walk_goes_on_past_the_archives_count_until_the_site_shows_its_end(db):
    site = learned_listing(db)
    census = {"stories_by_kind": {KIND: 50}}  # 5 pages as a stale census counts; the site lists 10
    store.set_state(db, f"listing:{KIND}", {"next": 9, "last": 5, "credit": 8.0, "stride": 4, "keyed": True,
                                            "cycle_start": policy.stamp(NOW)})
    assert listings.advance(db, 0.0, census, [KIND], NOW, 4, room=100) == [(KIND, 5), (KIND, 9)]
    assert listings.cursor(db, KIND)["credit"] == 6.0  # two pages spent
    walk(db, site, [5, 9])  # page 9 is not the site's end: the walk goes on, a page at a time
    assert listings.advance(db, 0.0, census, [KIND], NOW, 4, room=100) == [(KIND, 9), (KIND, 13)]
    walk(db, site, [9, 13])
    assert listings.cursor(db, KIND)["next"] == 1  # page 13 is past the site's end: the walk is over
    assert listings.cursor(db, KIND)["walks"] == 1


def test_spans_take_at_most_half_of_the_room_and_wait_their_turn(db):
    """A removal wave can leave more spans than a slice holds: they are read a few at a time (each whole),
    the walk and the revisits go on beside them."""
    spans = [[10 * i, 10 * i + 8, 0] for i in range(1, 6)]  # five spans of 9 pages
    store.set_state(db, f"listing:{KIND}", {"spans": spans, "credit": 8.0, "stride": 8, "keyed": True})
    chosen = listings.advance(db, 0.0, {"stories_by_kind": {KIND: 10_000}}, [KIND], NOW, 8, room=40)
    pages = [page for _kind, page in chosen]
    assert pages[:18] == list(range(10, 19)) + list(range(20, 29))  # two whole spans fit half of 40
    assert pages[18:] == [1 + 8 * i for i in range(8)]  # then the walk's chain, its credit's 8 pages
    assert listings.cursor(db, KIND)["spans"] == [[10, 18, 1], [20, 28, 1], *spans[2:]]  # the others wait


def test_a_story_restored_at_another_place_is_placed_again_not_taken_as_a_broken_order(db):
    site = learned_listing(db)
    removed_from_page_5(db, site, 42)
    site.ids.insert(3, 42)  # back, re-dated: now among the newest
    walk(db, site, [1])
    assert listings.cursor(db, KIND)["keyed"] is True  # the learned order stands
    keys = store.listing_keys(db, [3, 42, 4])
    assert keys[3] > keys[42] > keys[4]
    assert candidates(db) == {42}  # and it is fetched soon
