"""Change detection rules on a real archive, run by run, without the network."""

from __future__ import annotations

from core.config import MonitorConfig
from core.fetch import FetchInfo
from core.records import Story
from db.archive import Archive
from db.events import list_events
from db.queries import is_baseline
from monitor.changes import detect_changes

STORY_ID = 501


def story(text: str) -> Story:
    return Story(id=STORY_ID, kind="news-story", url=f"https://www.war.gov/a/{STORY_ID}/", title="Flapping",
                 paragraphs=["Intro.", text], body_text=f"Intro.\n\n{text}")


def other(number: int) -> Story:
    return Story(id=number, kind="news-story", url=f"https://www.war.gov/a/{number}/", title=f"Other {number}",
                 paragraphs=["Stable."], body_text="Stable.")


def run(archive: Archive, outcome: str, text: str = "", policy: MonitorConfig | None = None,
        now: str | None = None) -> list[tuple[str, int]]:
    run_id = archive.start_run("full", "s")
    for number in (601, 602, 603):  # enough healthy pages for the run's health checks
        archive.save_response(run_id, FetchInfo(url="u", outcome="ok", page_type="story", subject_id=number,
                                                status=200), b"x", other(number))
    status = {"ok": 200, "not_found": 404, "blocked": 403, "error": 500}[outcome]
    fetch = FetchInfo(url="u", outcome=outcome, page_type="story", subject_id=STORY_ID, status=status,
                      fetched_at=now)
    archive.save_response(run_id, fetch, text.encode() or None, story(text) if outcome == "ok" else None)
    detect_changes(archive.db, run_id, policy, now=now, baseline=is_baseline(archive.db, run_id))
    return [(e["kind"], e["subject_id"]) for e in list_events(archive.db, run_id=run_id)]


def test_flapping_between_two_versions_is_reported_twice_then_quiet(tmp_path):
    archive = Archive.open(str(tmp_path / "a.db"))
    assert run(archive, "ok", "A") == []  # baseline
    assert run(archive, "ok", "B") == [("story_updated", STORY_ID)]  # a change
    assert run(archive, "ok", "A") == [("story_updated", STORY_ID)]  # its revert: could be an editor
    assert run(archive, "ok", "B") == []  # A, B, A, B: flapping
    assert run(archive, "ok", "A") == []
    assert run(archive, "ok", "C") == [("story_updated", STORY_ID)]  # a real new text is news again


def test_removal_needs_a_second_404_and_errors_in_between_do_not_count(tmp_path):
    archive = Archive.open(str(tmp_path / "b.db"))
    run(archive, "ok", "A")
    assert run(archive, "not_found") == []
    assert run(archive, "blocked") == []
    assert run(archive, "error") == []
    assert run(archive, "not_found") == [("story_removed", STORY_ID)]
    assert run(archive, "not_found") == []  # announced once
    assert run(archive, "ok", "A") == [("story_restored", STORY_ID)]


def test_a_404_that_heals_before_confirmation_is_no_event(tmp_path):
    archive = Archive.open(str(tmp_path / "c.db"))
    run(archive, "ok", "A")
    assert run(archive, "not_found") == []
    assert run(archive, "ok", "A") == []
    assert archive.db["stories"].get(STORY_ID)["status"] == "live"


def test_removal_delay_confirms_a_long_absence_with_one_run_per_day(tmp_path):
    archive = Archive.open(str(tmp_path / "d.db"))
    policy = MonitorConfig(removal_confirm_runs=5, removal_delay_hours=24)
    run(archive, "ok", "A", policy)
    assert run(archive, "not_found", policy=policy, now="2030-01-01T00:00:00.000000Z") == []
    assert run(archive, "not_found", policy=policy, now="2030-01-01T12:00:00.000000Z") == []
    assert run(archive, "not_found", policy=policy, now="2030-01-02T00:00:01.000000Z") == [
        ("story_removed", STORY_ID)]
