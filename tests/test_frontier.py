"""The crawl frontier's policy (``monitor.frontier``) over a real SQLite archive, with an injected clock."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import pytest

from core.config import FrontierConfig
from db import frontier as store
from db.frontier import URGENCY_CANDIDATE, URGENCY_CONFIRM, FrontierRow
from db.schema import connect
from monitor import frontier as policy
from monitor.frontier import Budget, Observation

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
CONFIG = FrontierConfig()
KINDS = ["news-story"]


@pytest.fixture
def db(tmp_path):
    archive = connect(str(tmp_path / "frontier.db"))
    yield archive
    archive.conn.close()


def row(sid: int, *, page_type: str = "story", published: str = "2020-01-01", due: datetime = NOW,
        verified: datetime | None = NOW - timedelta(days=1), urgency: int = 0, kind: str | None = "news-story",
        version: int = 1) -> FrontierRow:
    return FrontierRow(page_type, sid, f"https://www.war.gov/Article/{sid}/", kind if page_type == "story" else None,
                       published, urgency, policy.stamp(due), None, 0, 0, 0.0, version,
                       policy.stamp(verified) if verified else None, policy.stamp(verified) if verified else None,
                       None, policy.stamp(NOW - timedelta(days=400)))


def plan(db, now=NOW, used=0, config=CONFIG, kinds=KINDS):
    with db.atomic():
        return policy.plan_slice(db, config, now, used_in_lookback=used, index_cost=10, listing_kinds=kinds)


# -- budget ---------------------------------------------------------------------------------------


def test_budget_steady_state_is_the_rate_and_a_quiet_spell_allows_at_most_the_burst():
    budget = Budget(requests_per_hour=1800, burst=300, slice_minutes=5)
    assert budget.per_slice() == 150
    assert budget.allowance(0) == 300  # after a quiet spell: the burst, not an hour's worth
    assert budget.allowance(150) == 150  # the slice before spent its share: this one gets the same
    assert budget.allowance(10_000) == 0  # never negative
    assert Budget(requests_per_hour=1_000_000, burst=50, slice_minutes=5).allowance(0) == 50  # the cap wins


def test_budget_never_exceeds_the_rate_over_any_window():
    """Slices every 5 minutes, each spending all it is allowed, spread over its 5 minutes."""
    budget = Budget(requests_per_hour=1800, burst=300, slice_minutes=5)
    spent: list[tuple[float, int]] = []  # (request time s, 1)
    t = 0.0
    while t < 6 * 3600:
        since = t - budget.lookback.total_seconds()
        allowance = budget.allowance(sum(1 for at in spent if at >= since))  # as requests_since counts
        spent += [t + i * 300 / max(allowance, 1) for i in range(allowance)]
        t += 300
    window = budget.window.total_seconds()
    worst = max(sum(1 for at in spent if start <= at < start + window) for start in range(0, 5 * 3600, 60))
    assert worst <= 1800 * window / 3600
    assert len(spent) >= 0.95 * 1800 * 6  # and the budget is spent, not left idle


# -- change rate ------------------------------------------------------------------------------------


def test_cho_garcia_molina_estimator():
    assert policy.cho_garcia_molina(0, 0, 0) is None
    assert policy.cho_garcia_molina(10, 0, 10) == pytest.approx(0.0)
    assert policy.cho_garcia_molina(10, 5, 10) == pytest.approx(-math.log(5.5 / 10.5))  # one check a day
    saturated = policy.cho_garcia_molina(10, 10, 10)
    assert saturated == pytest.approx(math.log(21)) and math.isfinite(saturated)  # every check changed
    assert policy.cho_garcia_molina(10, 5, 20) == pytest.approx(-math.log(5.5 / 10.5) / 2)  # rate per day


def test_prior_decays_with_age_and_history_takes_over():
    fresh, day_old, old = (policy.prior_rate(age, CONFIG) for age in (0, 1, 400))
    assert fresh > day_old > old == pytest.approx(CONFIG.prior_old_rate, rel=1e-6)
    assert day_old == pytest.approx(CONFIG.prior_old_rate + CONFIG.prior_fresh_rate / 2)
    quiet, busy = row(1), row(2)
    quiet.checks, quiet.observed_days = 40, 1200.0  # 40 monthly checks, never a change
    busy.checks, busy.changes, busy.observed_days = 40, 20, 1200.0
    assert policy.estimated_rate(quiet, NOW, CONFIG) < CONFIG.prior_old_rate
    assert policy.estimated_rate(busy, NOW, CONFIG) > 10 * CONFIG.prior_old_rate


def test_revisit_interval_bounds():
    assert policy.revisit_interval(1e-9, 400, 1.0, CONFIG) == timedelta(days=CONFIG.verify_days)
    assert policy.revisit_interval(1e-9, 2, 1.0, CONFIG) == timedelta(hours=CONFIG.fresh_max_interval_hours)
    assert policy.revisit_interval(1e9, 400, 1.0, CONFIG) == timedelta(hours=CONFIG.min_interval_hours)
    assert policy.revisit_interval(4.0, 400, 1.0, CONFIG) == timedelta(hours=12)  # scale / sqrt(rate) days
    assert policy.revisit_interval(1.0, 400, 1.0, CONFIG) == 2 * policy.revisit_interval(4.0, 400, 1.0, CONFIG)


# -- observations ------------------------------------------------------------------------------------


def test_observations_count_history_only_past_the_fresh_window():
    old = row(1, verified=NOW - timedelta(days=30))
    changed = policy.observe(old, Observation("story", 1, old.url, "ok", NOW, version=2), 1.0, CONFIG)
    assert (changed.checks, changed.changes, changed.version) == (1, 1, 2)
    assert changed.observed_days == pytest.approx(30)
    assert changed.verified_at == policy.stamp(NOW) and changed.due_at > policy.stamp(NOW)
    young = row(2, published=(NOW - timedelta(days=1)).date().isoformat())
    seen = policy.observe(young, Observation("story", 2, young.url, "ok", NOW, version=2), 1.0, CONFIG)
    assert (seen.checks, seen.changes) == (0, 0)  # first-days edits are the prior's business
    assert policy.parse_stamp(seen.due_at) <= NOW + timedelta(hours=CONFIG.fresh_max_interval_hours)


def test_absence_and_failures():
    page = row(1)
    missing = policy.observe(row(1), Observation("story", 1, page.url, "not_found", NOW, status="missing"), 1.0,
                             CONFIG)
    assert missing.urgency == URGENCY_CONFIRM and missing.due_at == policy.stamp(NOW)  # the next run confirms
    removed = policy.observe(row(1), Observation("story", 1, page.url, "gone", NOW, status="removed"), 1.0, CONFIG)
    assert removed.urgency == 0 and policy.parse_stamp(removed.due_at) <= NOW + timedelta(days=CONFIG.verify_days)
    assert policy.parse_stamp(removed.due_at) > NOW + timedelta(days=1)  # looked at again for a restoration
    candidate = row(1, urgency=URGENCY_CANDIDATE)
    blocked = policy.observe(candidate, Observation("story", 1, page.url, "blocked", NOW), 1.0, CONFIG)
    assert blocked.urgency == URGENCY_CANDIDATE  # a 403 says nothing: still a candidate, tried later
    assert blocked.due_at == policy.stamp(NOW + timedelta(minutes=CONFIG.retry_minutes))
    assert blocked.verified_at == page.verified_at


# -- slices -------------------------------------------------------------------------------------------


def test_slice_priorities_and_budget(db):
    store.save_rows(db, [
        row(1, due=NOW + timedelta(days=3), verified=NOW - timedelta(days=29)),  # least verified, not due
        row(2, due=NOW - timedelta(hours=2)),  # most overdue revisit
        row(3, due=NOW - timedelta(hours=1)),
        row(4, urgency=URGENCY_CANDIDATE, due=NOW - timedelta(hours=5)),
        row(5, urgency=URGENCY_CONFIRM, due=NOW - timedelta(minutes=1)),
        row(6, due=NOW + timedelta(days=1), verified=NOW - timedelta(days=2)),
        row(7, due=NOW + timedelta(days=1), verified=None),  # never verified: first of the pass
    ])
    first = plan(db)
    assert first.index and first.tiers["index"] == 10
    assert [r.subject_id for r in first.pages][:5] == [5, 4, 2, 3, 7]  # confirm, candidate, due, due, verify
    assert {r.subject_id for r in first.pages} == {1, 2, 3, 4, 5, 6, 7}  # what is left goes to verification
    # the listing's one page waits until the walk's share of the budget adds up to a page (a day and a half at
    # most), not a page every slice as rounding each slice's share up had it (test_listings has the pacing)
    assert first.listings == []
    second = plan(db, now=NOW + timedelta(minutes=5), used=first.allowance)
    assert not second.index  # feeds wait for their interval...
    assert second.allowance == 0 and second.pages == [] and second.listings == []  # ...and an empty budget
    third = plan(db, now=NOW + timedelta(minutes=30), used=0)
    assert third.index  # ...and come back on it, before anything else


def test_budget_nothing_else_wants_goes_to_the_revisits_due_next(db):
    store.save_rows(db, [row(i, due=NOW + timedelta(hours=11 - i), verified=NOW - timedelta(hours=1))
                         for i in range(1, 11)]  # none due yet; story 10 is due first
                    + [row(99, due=NOW + timedelta(days=20), verified=None)])  # the verification pass's one
    sliced = plan(db)
    assert sliced.tiers["due"] == 0 and sliced.tiers["verify"] == 1
    assert [r.subject_id for r in sliced.pages] == [99, *range(10, 0, -1)]  # then the revisits due soonest
    assert sliced.tiers["ahead"] == 10


def test_slice_respects_a_small_budget_by_priority(db):
    store.save_rows(db, [row(i, due=NOW - timedelta(minutes=i)) for i in range(1, 101)])
    store.save_rows(db, [row(500, urgency=URGENCY_CONFIRM)])
    small = FrontierConfig(requests_per_hour=120, burst=30, slice_minutes=5)  # 10 a slice
    sliced = plan(db, config=small, used=0)
    assert sliced.index and len(sliced.pages) + len(sliced.listings) <= max(0, sliced.allowance - 10 - 20)
    again = plan(db, now=NOW + timedelta(minutes=5), config=small, used=10)
    assert again.requests <= again.allowance == 20
    assert again.pages[0].subject_id == 500  # the removal awaiting confirmation goes first
    assert [r.subject_id for r in again.pages[1:4]] == [100, 99, 98]  # then the most overdue


def test_the_even_share_bounds_every_revisit_interval():
    """Frequencies add: sqrt(rate) / scale and 1 / even_days; a page whose history saw nothing gets about
    even_days, not the verification period."""
    quiet = policy.revisit_interval(1e-9, 400, 1.0, CONFIG, even_days=5.0)
    assert timedelta(days=4.99) < quiet <= timedelta(days=5)
    assert policy.revisit_interval(4.0, 400, 1.0, CONFIG, even_days=2.0) == timedelta(hours=24 / 2.5)
    assert policy.revisit_interval(4.0, 400, 1.0, CONFIG, even_days=None) == timedelta(hours=12)
    assert policy.revisit_interval(1e-9, 2, 1.0, CONFIG, even_days=5.0) == timedelta(hours=2)  # fresh cap kept
    # an empty archive's census (no rate summed yet): scale 0, the shortest interval, as scale / sqrt(rate) gave
    assert policy.revisit_interval(0.01, 400, 0.0, CONFIG, even_days=None) == timedelta(hours=CONFIG.min_interval_hours)


def test_the_census_splits_the_same_revisits_between_even_and_sqrt(db):
    """The even share moves requests from busy pages to quiet ones; the revisits a day stay what the
    budget leaves (the sum of 1 / interval over the revisited pages)."""
    rates = [10 ** (-4 + 3 * i / 199) for i in range(200)]
    rows = [row(i + 1, due=NOW + timedelta(days=1)) for i in range(200)]
    for page, rate in zip(rows, rates, strict=True):
        page.change_rate = rate
    store.save_rows(db, rows)
    sums = {}
    for share in (0.0, 0.8):
        config = FrontierConfig(requests_per_hour=45, even_share=share, verify_days=10_000)
        counted = policy.census(db, config, NOW, index_cost=0)
        assert counted["revisited"] == 200
        intervals = [policy.revisit_interval(rate, 400, counted["scale"], config, counted["even_days"])
                     for rate in rates]
        sums[share] = sum(timedelta(days=1) / interval for interval in intervals)
        sums[f"longest {share}"] = max(intervals)
    assert sums[0.8] == pytest.approx(sums[0.0], rel=0.01)
    assert sums["longest 0.8"] < sums["longest 0.0"] / 3  # the quietest page, far sooner


def test_listing_gaps_make_candidates_never_removals(db):
    db.execute("INSERT INTO stories (id, kind, url, status, first_seen, last_seen) VALUES "
               "(1, 'news-story', 'u1', 'live', 'x', 'x'), (2, 'news-story', 'u2', 'live', 'x', 'x')")
    db.execute("INSERT INTO images (media_id, page_url, source, status, first_seen, last_seen) "
               "VALUES (9, 'p9', 'photo_page', 'live', 'x', 'x')")
    db.execute("INSERT INTO story_images VALUES (2, 9, 0, 'x', 'x')")
    store.save_rows(db, [row(1, due=NOW + timedelta(days=9)), row(2, due=NOW + timedelta(days=9)),
                         row(9, page_type="photo", due=NOW + timedelta(days=9))])
    store.set_state(db, "census", {"at": policy.stamp(NOW), "pages": 3, "root_rate_sum": 1.0, "scale": 1.0,
                                   "stories_by_kind": {"news-story": 2}})
    store.set_state(db, "listing:news-story", {"credit": 1.0})  # the walk's share adds up to its one page
    walk = plan(db)
    assert walk.listings == [("news-story", 1)]
    with db.atomic():  # the walk's only page lists story 1 and not story 2
        made = policy.record_listing(db, "news-story", 1, [1], last=True, at=NOW + timedelta(seconds=10))
    assert made == 2  # story 2 and its photo page
    with db.atomic():  # a page past the end in the same slice neither ends another walk nor marks anything
        assert policy.record_listing(db, "news-story", 2, [], last=True, at=NOW + timedelta(seconds=12)) == 0
    urgency = dict(db.execute("SELECT subject_id, urgency FROM frontier").fetchall())
    assert urgency == {1: 0, 2: URGENCY_CANDIDATE, 9: URGENCY_CANDIDATE}
    assert db.execute("SELECT status FROM stories WHERE id = 2").fetchone() == ("live",)  # nothing removed
    later = plan(db, now=NOW + timedelta(minutes=5), used=0)
    assert [(r.page_type, r.subject_id) for r in later.pages[:2]] == [("story", 2), ("photo", 9)]
    answered = Observation("story", 2, "u2", "ok", NOW + timedelta(minutes=6), version=1)
    with db.atomic():
        policy.record_observations(db, [answered], CONFIG)
    assert dict(db.execute("SELECT subject_id, urgency FROM frontier").fetchall())[2] == 0  # cleared by its 200


def test_a_walk_missing_too_much_is_a_broken_walk(db):
    store.save_rows(db, [row(i, due=NOW + timedelta(days=9)) for i in range(1, 201)])
    store.set_state(db, "census", {"at": policy.stamp(NOW), "pages": 200, "root_rate_sum": 1.0, "scale": 1.0,
                                   "stories_by_kind": {"news-story": 200}})
    store.set_state(db, "listing:news-story", {"next": 2, "cycle_start": policy.stamp(NOW)})
    with db.atomic():
        made = policy.record_listing(db, "news-story", 1, [], last=True, at=NOW)  # an empty listing
    assert made == 0
    assert db.execute("SELECT COUNT(*) FROM frontier WHERE urgency > 0").fetchone() == (0,)


def test_picking_the_next_batch_stays_fast_on_a_large_frontier(db):
    """400,000 pages are measured by bench/time_to_alert.py --measure-pick; 100,000 here keep the test short."""
    rows = [row(i, due=NOW + timedelta(seconds=i * 13 - 300_000), verified=NOW - timedelta(seconds=i * 7))
            for i in range(1, 100_001)]
    store.save_rows(db, rows)
    plan(db)  # the census, and the index tier
    started = time.perf_counter()
    sliced = plan(db, now=NOW + timedelta(minutes=5), used=150)
    took = (time.perf_counter() - started) * 1000
    assert sliced.requests == 150
    assert sliced.pick_ms < 50, sliced.pick_ms
    assert took < 250, took  # the whole plan, state and cursors included, on a shared test machine


# -- stats ------------------------------------------------------------------------------------------


def test_stats_show_the_frontier(tmp_path, capsys, monkeypatch):
    import json

    from db.archive import Archive
    from defwatch.cli import main

    path = str(tmp_path / "stats.db")
    archive = Archive.open(path)
    run_id = archive.start_run("frontier", "https://www.war.gov")
    now = datetime.now(UTC)
    archive.db.conn.executemany(
        "INSERT INTO fetches (run_id, url, outcome, fetched_at) VALUES (?, 'u', 'ok', ?)",
        [(run_id, policy.stamp(now - timedelta(minutes=m))) for m in (1, 2, 3, 90)])  # 3 in the last hour
    store.save_rows(archive.db, [
        row(1, due=now - timedelta(hours=1), verified=now - timedelta(hours=10)),
        row(2, due=now + timedelta(hours=1), verified=now - timedelta(hours=30)),
        row(3, due=now + timedelta(hours=1), verified=None, urgency=URGENCY_CONFIRM),
        row(4, due=now + timedelta(hours=1), verified=now - timedelta(hours=2)),
    ])
    archive.close()
    monkeypatch.delenv("DEFWATCH_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["stats", "--db", path, "--json"]) == 0
    front = json.loads(capsys.readouterr().out)["frontier"]
    assert front["pages"] == 4 and front["due_revisits"] == 1 and front["awaiting_confirmation"] == 1
    assert front["due"] == 2 and front["never_verified"] == 1
    assert front["requests_last_hour"] == 3 and front["requests_last_day"] == 4
    assert front["budget_requests_per_hour"] == 1800 and front["budget_used_share"] == round(3 / 1800, 3)
    assert front["oldest_verification_age_hours"] == pytest.approx(30, abs=0.2)
    assert front["verified_last_day"] == 2 and front["expected_days_to_verify_all"] == 2.0
    assert main(["stats", "--db", path]) == 0
    text = capsys.readouterr().out
    assert "frontier        4  due 2 (awaiting removal confirmation 1, listing candidates 0" in text
    assert "oldest verification 30 h ago; everything verified again in 2 days at the last day's pace" in text


def test_a_page_still_missing_is_asked_again_later_not_every_slice():
    page = row(1)
    first = policy.observe(page, Observation("story", 1, page.url, "not_found", NOW, status="missing"), 1.0, CONFIG)
    assert first.due_at == policy.stamp(NOW)
    later = NOW + timedelta(minutes=5)
    again = policy.observe(first, Observation("story", 1, page.url, "not_found", later, status="missing"), 1.0, CONFIG)
    assert again.urgency == URGENCY_CONFIRM  # a removal delay keeps it missing: still first in line...
    assert again.due_at == policy.stamp(later + timedelta(minutes=CONFIG.retry_minutes))  # ...but not every slice


def test_pages_known_but_not_archived_come_right_after_removal_confirmations(db):
    store.save_rows(db, [row(1, urgency=URGENCY_CONFIRM), row(2, urgency=URGENCY_CANDIDATE),
                         row(3, due=NOW - timedelta(hours=1))])
    heard = policy.stamp(NOW - timedelta(days=2))
    db.execute("INSERT INTO known_pages (page_type, id, url, heard_from, first_heard, last_heard) VALUES "
               "('story', 77, 'https://www.war.gov/Article/77/x/', 'story:1', ?, ?), "
               "('photo', 88, NULL, 'story:1', ?, ?)", [heard, heard, heard, heard])
    db.execute("INSERT INTO known_pages (page_type, id, url, heard_from, first_heard, last_heard, last_attempt) "
               "VALUES ('story', 99, 'https://www.war.gov/Article/99/y/', 'story:1', ?, ?, ?)",
               [heard, heard, policy.stamp(NOW - timedelta(minutes=5))])  # failed 5 minutes ago: not yet
    db.execute("INSERT INTO known_pages (page_type, id, url, heard_from, first_heard, last_heard, archived_at) "
               "VALUES ('story', 66, 'https://www.war.gov/Article/66/z/', 'story:1', ?, ?, ?)",
               [heard, heard, heard])  # archived already
    sliced = plan(db)
    assert [(r.page_type, r.subject_id) for r in sliced.pages[:5]] == [
        ("story", 1), ("story", 77), ("photo", 88), ("story", 2), ("story", 3)]
    assert sliced.pages[2].url.endswith("/igphoto/88/")  # a photo named only by its media id
    assert policy.summary(db, CONFIG, NOW)["unarchived"] == 3


def test_fresh_and_changing_pages_go_before_a_backlog_of_cold_ones(db):
    """Right after the migration every page is due at once: the cold backlog must not hold back the rest."""
    cold = [row(i, due=NOW - timedelta(days=20)) for i in range(1, 301)]
    hot = row(500, due=NOW - timedelta(minutes=10))
    hot.band = 1
    fresh = row(600, published=(NOW - timedelta(days=1)).date().isoformat(), due=NOW - timedelta(minutes=1))
    fresh.band = 2
    store.save_rows(db, [*cold, hot, fresh])
    sliced = plan(db, used=150)
    due = [r.subject_id for r in sliced.pages if r.subject_id >= 500]
    assert due == [600, 500] and sliced.pages[0].subject_id == 600
    seen = policy.observe(fresh, Observation("story", 600, fresh.url, "ok", NOW, version=1), 1.0, CONFIG)
    assert seen.band == 2
    changed = row(7, verified=NOW - timedelta(days=30))
    assert policy.observe(changed, Observation("story", 7, changed.url, "ok", NOW, version=2), 1.0, CONFIG).band == 1


# -- photo pages shown on a story, the history floor, the verification backlog ----------------------


def _story_with_photo(db, story: int, media: int, status: str = "live") -> None:
    seen = policy.stamp(NOW - timedelta(days=400))
    db.execute("INSERT INTO stories (id, kind, url, published, status, first_seen, last_seen) VALUES (?,?,?,?,?,?,?)",
               [story, "news-story", f"/Article/{story}/", "2020-01-01", status, seen, seen])
    db.execute("INSERT INTO images (media_id, page_url, source, status, first_seen, last_seen) VALUES (?,?,?,?,?,?)",
               [media, f"/igphoto/{media}/", "photo_page", "live", seen, seen])
    db.execute("INSERT INTO story_images (story_id, media_id, position, first_seen, last_seen) VALUES (?,?,0,?,?)",
               [story, media, seen, seen])


def test_a_photo_page_its_story_shows_is_left_to_the_verification_pass(db):
    """A story's content includes its captions: its revisits see a caption edit, the photo page need not."""
    _story_with_photo(db, 1, 501)
    _story_with_photo(db, 2, 502, status="removed")  # a removed story shows nothing any more
    photos = [row(m, page_type="photo", verified=NOW - timedelta(days=2)) for m in (501, 502, 503)]  # 503: no story
    store.save_rows(db, [row(1), *photos])
    policy.record_observations(db, [Observation("photo", m, f"/igphoto/{m}/", "ok", NOW, version=1)
                                    for m in (501, 502, 503)], CONFIG)
    rows = store.load_rows(db, [("photo", 501), ("photo", 502), ("photo", 503)])
    rider = rows[("photo", 501)]
    assert rider.band == store.BAND_ON_STORY
    assert policy.parse_stamp(rider.due_at) == NOW + timedelta(days=CONFIG.on_story_verify_days)  # its own period
    for alone in (rows[("photo", 502)], rows[("photo", 503)]):  # revisited by their own rate
        assert alone.band >= 0 and policy.parse_stamp(alone.due_at) < NOW + timedelta(days=CONFIG.verify_days)
    # Overdue as a revisit, a rider is still not one: only the verification pass (or urgency) fetches it.
    db.execute("UPDATE frontier SET due_at = ?, verified_at = ? WHERE page_type = 'photo'",
               [policy.stamp(NOW - timedelta(days=1)), policy.stamp(NOW)])
    due = {(r.page_type, r.subject_id) for r in store.pick_due(db, policy.stamp(NOW), 10) if r.page_type == "photo"}
    assert due == {("photo", 502), ("photo", 503)}
    # Confirmed removed, it is looked at again for its return like any page.
    gone = policy.observe(rider, Observation("photo", 501, rider.url, "not_found", NOW, status="removed"),
                          1.0, CONFIG)
    assert gone.band >= 0


def test_the_prior_floor_is_what_the_archives_checks_saw_per_page_type(db):
    stories = [row(i) for i in range(1, 5)]
    for story in stories:
        story.checks, story.changes, story.observed_days = 12, 1, 360.0
    photo = row(900, page_type="photo")
    photo.checks, photo.changes, photo.observed_days = 12, 0, 360.0
    store.save_rows(db, [*stories, photo])
    counted = policy.census(db, CONFIG, NOW)
    assert counted["observed_rate"] == {"story": pytest.approx(4 / 1440), "photo": 0.0}
    young = row(50, published="2025-12-01")  # past the fresh days, no history yet: the observed rate
    assert policy.estimated_rate(young, NOW, CONFIG, counted["observed_rate"]["story"]) == pytest.approx(
        4 / 1440, rel=0.01)
    assert policy.estimated_rate(young, NOW, CONFIG) == pytest.approx(CONFIG.prior_old_rate, rel=0.01)


def test_the_verification_pass_spends_on_its_backlog_not_on_every_page(db):
    """Pages the revisits keep fresh cost the pass nothing; those unverified for half the period are paced
    so each is verified again within the period."""
    config = FrontierConfig(verify_days=2.0)
    recent = [row(i, due=NOW - timedelta(minutes=i), verified=NOW - timedelta(hours=12)) for i in range(1, 2001)]
    stale = [row(i, due=NOW + timedelta(days=20), verified=NOW - timedelta(hours=25 + i % 20))
             for i in range(2001, 3001)]
    store.save_rows(db, [*recent, *stale])
    counted = policy.census(db, config, NOW)
    assert counted["verify_backlog"] == 1000  # not verified for a day (half the period)
    slices_per_day = 24 * 60 / config.slice_minutes
    quota = math.ceil(1000 / (policy.VERIFY_PACE * config.verify_days * slices_per_day))
    assert quota == 4 < math.ceil(3000 / (config.verify_days * slices_per_day))  # the old pace: every page
    sliced = plan(db, config=config)
    assert sliced.tiers["due"] > 200  # the overdue revisits take the rest of the slice...
    verified = [r.subject_id for r in sliced.pages[-sliced.tiers["verify"]:]]
    assert sliced.tiers["verify"] == quota and all(i > 2000 for i in verified)  # ...the pass its backlog's pace
    assert policy.VERIFY_PACE + 1 - policy.VERIFY_BACKLOG <= 1  # so each page within the period


def test_photo_pages_a_story_shows_may_have_a_longer_verification_period(db):
    """``on_story_verify_days``: the story's revisits see their captions, so those photo pages may be verified
    more slowly; each part of the backlog is paced on its own period."""
    config = FrontierConfig(verify_days=2.0, on_story_verify_days=6.0)
    stories = [row(i, due=NOW + timedelta(days=9), verified=NOW - timedelta(hours=25)) for i in range(1, 101)]
    riders = [row(1000 + i, page_type="photo", verified=NOW - timedelta(hours=25 + i)) for i in range(201)]
    for rider in riders:
        rider.band = store.BAND_ON_STORY
    store.save_rows(db, [*stories, *riders])
    counted = policy.census(db, config, NOW)
    assert counted["verify_backlog_on_story"] == 153  # not verified for 3 days: 25 + i > 72 hours
    assert counted["verify_backlog"] == 100 + 153  # the stories: not verified for a day
    assert counted["verify_per_day"] == pytest.approx(100 / (policy.VERIFY_PACE * 2) + 153 / (policy.VERIFY_PACE * 6))
    alike = policy.census(db, FrontierConfig(verify_days=2.0, on_story_verify_days=0), NOW)  # 0: verify_days
    assert alike["verify_backlog"] == 100 + 201 and alike["verify_backlog_on_story"] == 201
    seen = policy.observe(riders[0], Observation("photo", 1000, riders[0].url, "ok", NOW, version=1), 1.0, config,
                          on_story=True)
    assert policy.parse_stamp(seen.due_at) == NOW + timedelta(days=6)
