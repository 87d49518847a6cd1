"""Pages the archive has heard of stay due until they are archived (issue 15).

A story reachable only through a related-story link, or a photo page known only from a story, used
to be lost when the run that heard of it died or could not fetch it: from then on its referrer
answered 304, a 304 story was not parsed, and no mode went back for it. Everything here is a real
``defwatch crawl`` child process against the sample site, reading back a real SQLite archive.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.fetch import FetchInfo
from core.records import Image, RelatedLink, Story
from db import queries, schema
from db.archive import Archive
from samplesite import SampleSite
from tests.conftest import ROOT, crawl_env, run_crawl

# A story only one other story links to (tests/test_known_pages.py unlists it: then no listing or feed
# leads to it), and an inline photo of a story.
RELATED_ONLY, PARENT = 4152290, 3646590
PHOTO, PHOTO_STORY = 2003376402, 3646590
TIMEOUT_CONFIG = "[monitor]\nremoval_confirm_runs = 2\n[crawl]\ntimeout = 1\n"
# Every archived story due for a revisit at once: a revisit fetches them all (and gets 304s).
ALL_DUE = "[revisit]\nfresh_interval_hours = 0.0001\nrecent_interval_hours = 0.0001\nold_interval_hours = 0.0001\n"


def query(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def story_ids(path: Path) -> set[int]:
    return {row[0] for row in query(path, "SELECT id FROM stories")}


def photo_pages(path: Path) -> set[int]:
    return {row[0] for row in query(path, "SELECT media_id FROM images WHERE source = 'photo_page'")}


def fetch_outcomes(path: Path, run_id: int, page_type: str, subject_id: int) -> list[str]:
    rows = query(path, "SELECT outcome FROM fetches WHERE run_id = ? AND page_type = ? AND subject_id = ? ORDER BY id",
                 (run_id, page_type, subject_id))
    return [row[0] for row in rows]


def last_run(path: Path) -> int:
    return query(path, "SELECT MAX(id) FROM runs")[0][0]


def stats(path: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "defwatch", "stats", "--db", str(path), *extra], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)


def known_stats(path: Path, env: dict[str, str]) -> dict:
    return json.loads(stats(path, env, "--json").stdout)["known_pages"]


def fail_first_fetch(site: SampleSite, target: int, how: str) -> None:
    if how == "500":
        site.fail(target, 500)
    else:  # answers after the crawl's 1 s download timeout (and its retries) gave up
        site.delay(4, target)


def heal(site: SampleSite, target: int) -> None:
    site.heal(target)
    site.delay(0, target)


@pytest.mark.parametrize("how", ["500", "timeout"])
def test_a_related_only_story_whose_first_fetch_failed_is_archived_next_run_while_its_parent_answers_304(
        tmp_path, how):
    db = tmp_path / "archive.db"
    (tmp_path / "defwatch-test.toml").write_text(TIMEOUT_CONFIG, encoding="utf-8")
    env = crawl_env(tmp_path)
    with SampleSite() as site:
        site.unlist(RELATED_ONLY)
        fail_first_fetch(site, RELATED_ONLY, how)
        first = run_crawl(db, site.base_url, env=env)
        assert first.returncode == 0, first.stderr
        assert PARENT in story_ids(db) and RELATED_ONLY not in story_ids(db)
        outcomes = fetch_outcomes(db, 1, "story", RELATED_ONLY)
        assert outcomes == ["error"], outcomes  # the 500 (after retries) or the timeout: fetched, not archived

        known = known_stats(db, env)
        assert known["not_archived"] == 1 and known["by_type"] == {"story": 1}
        oldest = known["oldest"]
        assert (oldest["page_type"], oldest["id"], oldest["heard_from"]) == ("story", RELATED_ONLY, f"story:{PARENT}")
        assert (oldest["attempts"], oldest["last_outcome"]) == (1, "error")
        text = stats(db, env).stdout
        assert "known, not archived yet: story 1" in text and f"oldest: story {RELATED_ONLY}" in text, text

        heal(site, RELATED_ONLY)
        second = run_crawl(db, site.base_url, env=env)
        assert second.returncode == 0, second.stderr
    assert fetch_outcomes(db, 2, "story", PARENT) == ["not_modified"]  # its referrer did not change
    assert fetch_outcomes(db, 2, "story", RELATED_ONLY) == ["ok"]
    assert story_ids(db) == set(site.content.stories)
    assert known_stats(db, env) == {"not_archived": 0, "by_type": {}, "confirmed_gone": 0, "oldest": None}
    # Heard of in run 1, archived in run 2: the table says so (an analyst can measure the delay).
    row = query(db, "SELECT first_run_id, attempts, archived_at IS NOT NULL FROM known_pages WHERE id = ?",
                (RELATED_ONLY,))
    assert row == [(1, 1, 1)]


@pytest.mark.parametrize("how", ["500", "timeout"])
@pytest.mark.parametrize("mode", ["full", "discover"])
def test_an_inline_photo_page_whose_first_fetch_failed_is_archived_next_run(tmp_path, how, mode):
    """``full`` refetches the story (a 304); ``discover`` never refetches an archived story: the photo
    must come from what the archive heard of, not from the story."""
    db = tmp_path / "archive.db"
    (tmp_path / "defwatch-test.toml").write_text(TIMEOUT_CONFIG, encoding="utf-8")
    env = crawl_env(tmp_path)
    with SampleSite() as site:
        fail_first_fetch(site, PHOTO, how)
        first = run_crawl(db, site.base_url, env=env)
        assert first.returncode == 0, first.stderr
        assert PHOTO_STORY in story_ids(db) and PHOTO not in photo_pages(db)
        assert fetch_outcomes(db, 1, "photo", PHOTO) == ["error"]
        known = known_stats(db, env)
        assert known["not_archived"] == 1 and known["by_type"] == {"photo": 1}
        assert (known["oldest"]["id"], known["oldest"]["heard_from"]) == (PHOTO, f"story:{PHOTO_STORY}")

        heal(site, PHOTO)
        second = run_crawl(db, site.base_url, mode, env=env)
        assert second.returncode == 0, second.stderr
    assert fetch_outcomes(db, 2, "story", PHOTO_STORY) == (["not_modified"] if mode == "full" else [])
    assert fetch_outcomes(db, 2, "photo", PHOTO) == ["ok"]
    assert photo_pages(db) == set(site.content.images)
    assert known_stats(db, env)["not_archived"] == 0


def test_a_304_story_still_leads_to_the_related_story_its_stored_copy_links_to(tmp_path):
    """A revisit fetches archived stories only (no pages heard of): the related story a failed fetch
    left out is reached through its parent's 304, from the links the parent's last parse stored."""
    db = tmp_path / "archive.db"
    (tmp_path / "defwatch-test.toml").write_text(TIMEOUT_CONFIG + ALL_DUE, encoding="utf-8")
    env = crawl_env(tmp_path)
    with SampleSite() as site:
        site.unlist(RELATED_ONLY)
        site.fail(RELATED_ONLY, 500)
        assert run_crawl(db, site.base_url, env=env).returncode == 0
        assert RELATED_ONLY not in story_ids(db)
        site.heal(RELATED_ONLY)
        revisit = run_crawl(db, site.base_url, "revisit", env=env)
        assert revisit.returncode == 0, revisit.stderr
    assert fetch_outcomes(db, 2, "story", PARENT) == ["not_modified"]
    assert fetch_outcomes(db, 2, "story", RELATED_ONLY) == ["ok"]
    assert RELATED_ONLY in story_ids(db)
    # The parent was not parsed again: no new version, no event for it.
    assert query(db, "SELECT COUNT(*) FROM story_versions WHERE story_id = ?", (PARENT,)) == [(1,)]


def test_a_crawl_killed_right_after_the_parent_is_stored_is_made_good_by_the_next_clean_crawl(tmp_path):
    """kill -9 once the parent story is committed and its related story's fetch is in flight (the site
    holds it): the next clean crawl gets a 304 for the parent and still archives every story."""
    db = tmp_path / "archive.db"
    env = crawl_env(tmp_path)
    with SampleSite() as site:
        site.unlist(RELATED_ONLY)
        site.delay(60, RELATED_ONLY)
        argv = [sys.executable, "-m", "defwatch", "crawl", "--db", str(db), "--site", site.base_url, "--mode", "full"]
        with open(tmp_path / "killed.log", "wb") as log:
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while PARENT not in _stories_or_none(db) or not _asked_for(site, RELATED_ONLY):
                assert proc.poll() is None, (tmp_path / "killed.log").read_text()
                assert time.monotonic() < deadline, "the parent story was never stored"
                time.sleep(0.01)
        finally:
            proc.kill()
            proc.wait(30)
        _wait_for_writers(db)
        assert RELATED_ONLY not in story_ids(db)
        assert query(db, "SELECT status FROM runs") == [("running",)]  # it died; the next run closes it
        known = known_stats(db, env)
        assert known["not_archived"] >= 1 and known["oldest"] is not None

        site.delay(0, RELATED_ONLY)
        clean = run_crawl(db, site.base_url, env=env)
        assert clean.returncode == 0, clean.stderr
    assert fetch_outcomes(db, 2, "story", PARENT) == ["not_modified"]
    assert story_ids(db) == set(site.content.stories)
    assert photo_pages(db) == set(site.content.images)
    assert known_stats(db, env)["not_archived"] == 0


def test_a_page_heard_of_that_answers_404_on_two_runs_is_no_longer_due(tmp_path):
    db = tmp_path / "archive.db"
    env = crawl_env(tmp_path)
    with SampleSite() as site:
        site.unlist(RELATED_ONLY)
        site.remove(RELATED_ONLY, 404)  # the parent still links to it
        for _ in range(2):
            assert run_crawl(db, site.base_url, env=env).returncode == 0
        assert known_stats(db, env) == {"not_archived": 0, "by_type": {}, "confirmed_gone": 1, "oldest": None}
        assert run_crawl(db, site.base_url, "discover", env=env).returncode == 0
    assert fetch_outcomes(db, 3, "story", RELATED_ONLY) == []  # discover no longer asks for it
    assert fetch_outcomes(db, 2, "story", RELATED_ONLY) == ["not_found"]


def _stories_or_none(db: Path) -> set[int]:
    try:
        return story_ids(db)
    except sqlite3.OperationalError:  # the crawl has not created the archive yet
        return set()


def _asked_for(site: SampleSite, story_id: int) -> bool:
    return any(f"/{story_id}/" in request.path for request in site.requests)


def _wait_for_writers(db: Path) -> None:
    """The killed crawl's orphaned archive writer commits what it was sent, then exits."""
    deadline = time.monotonic() + 30
    while any(str(db) in _cmdline(p) and "crawler.archiver" in _cmdline(p) for p in Path("/proc").glob("[0-9]*")):
        assert time.monotonic() < deadline, "the orphaned archive writer did not exit"
        time.sleep(0.05)


def _cmdline(proc_dir: Path) -> str:
    try:
        return (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# -- the archive's bookkeeping, without a crawl ------------------------------------------------------


def _story(story_id: int, related: list[tuple[int, str]], media: list[int]) -> Story:
    return Story(id=story_id, kind="news-story", url=f"https://www.war.gov/News/News-Stories/Article/Article/{story_id}/",
                 title=f"Story {story_id}", paragraphs=["Text."], body_text="Text.",
                 images=[Image(media_id=m) for m in media], related=[RelatedLink(i, u, "") for i, u in related])


def _fetch(page_type: str, subject_id: int, outcome: str, status: int | None = None) -> FetchInfo:
    path = f"/Article/{subject_id}/" if page_type == "story" else f"/Multimedia/Photos/igphoto/{subject_id}/"
    return FetchInfo(url="https://www.war.gov" + path, outcome=outcome, page_type=page_type, subject_id=subject_id,
                     status=status)


def test_only_links_on_the_site_are_heard_of_and_archiving_a_page_settles_it(tmp_path):
    archive = Archive.open(str(tmp_path / "a.db"))
    try:
        run = archive.start_run("full", "s")
        related = [(202, "https://www.war.gov/News/Article/202/"), (303, "https://evil.example/Article/303/")]
        archive.save_response(run, _fetch("story", 101, "ok", 200), b"p", _story(101, related, [9001]))
        due = {(p.page_type, p.id) for p in queries.pages_heard_of(archive.db)}
        assert due == {("story", 202), ("photo", 9001)}  # the off-site link is never fetched, so never due
        archive.save_response(run, _fetch("story", 202, "ok", 200), b"r", _story(202, [(101, related[0][1])], []))
        assert {(p.page_type, p.id) for p in queries.pages_heard_of(archive.db)} == {("photo", 9001)}
        settled = archive.db.execute("SELECT archived_at IS NOT NULL FROM known_pages WHERE id = 202").fetchall()
        assert settled == [(1,)]
        # Story 202 links back to 101, which is archived already: nothing is due for it.
        assert archive.db.execute("SELECT COUNT(*) FROM known_pages WHERE id = 101").fetchone() == (0,)
    finally:
        archive.close()


def test_a_block_an_error_or_a_single_404_never_retires_a_page_heard_of(tmp_path):
    archive = Archive.open(str(tmp_path / "a.db"))
    try:
        first = archive.start_run("full", "s")
        archive.save_response(first, _fetch("story", 101, "ok", 200), b"p",
                              _story(101, [(202, "https://www.war.gov/Article/202/")], []))
        for outcome, status in (("blocked", 403), ("error", 500), ("not_found", 404), ("not_found", 404)):
            archive.save_response(first, _fetch("story", 202, outcome, status))
        assert [p.id for p in queries.pages_heard_of(archive.db)] == [202]  # two 404s in one run: one observation
        archive.finish_run(first, "ok", {})
        second = archive.start_run("full", "s")
        archive.save_response(second, _fetch("story", 202, "gone", 410))
        assert queries.pages_heard_of(archive.db) == []
        assert [p.id for p in queries.pages_heard_of(archive.db, include_gone=True)] == [202]  # the sweep still looks
        assert archive.db.execute("SELECT attempts, last_outcome FROM known_pages").fetchall() == [(5, "gone")]
    finally:
        archive.close()


def test_an_archive_from_before_known_pages_is_seeded_with_what_it_knows(tmp_path, monkeypatch):
    """Upgrading a v4 archive: related links to stories never archived and images only seen inline
    become due at once (the stories an older defwatch lost are found again)."""
    path = str(tmp_path / "old.db")
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", {n: step for n, step in schema.MIGRATIONS.items() if n <= 4})
        patch.setattr(schema, "SCHEMA_VERSION", 4)
        old = schema.connect(path)
        old.execute("INSERT INTO runs (id, mode, site, started_at, status) VALUES (1, 'full', 's', 't0', 'ok')")
        for story_id in (101, 202):
            old.execute("INSERT INTO stories (id, kind, url, status, first_seen, last_seen, first_run_id)"
                        " VALUES (?, 'news-story', ?, 'live', 't1', 't1', 1)", [story_id, f"https://www.war.gov/Article/{story_id}/"])
        for related_id, url, removed in ((202, "https://www.war.gov/Article/202/", None),
                                         (303, "https://www.war.gov/Article/303/", None),
                                         (404, "https://www.war.gov/Article/404/", "t2"),
                                         (505, "https://evil.example/Article/505/", None)):
            old.execute("INSERT INTO related_links (story_id, related_id, url, first_seen, last_seen, removed_at,"
                        " first_run_id) VALUES (101, ?, ?, 't1', 't1', ?, 1)", [related_id, url, removed])
        for media_id, source in ((9001, "inline"), (9002, "photo_page")):
            old.execute("INSERT INTO images (media_id, page_url, source, first_seen, last_seen, first_run_id)"
                        " VALUES (?, NULL, ?, 't1', 't1', 1)", [media_id, source])
            old.execute("INSERT INTO story_images (story_id, media_id, position, first_seen, last_seen)"
                        " VALUES (101, ?, 0, 't1', 't1')", [media_id])
        old.conn.close()
    upgraded = schema.connect(path)
    try:
        assert upgraded.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        due = [(p.page_type, p.id, p.url) for p in queries.pages_heard_of(upgraded)]
        assert due == [("story", 303, "https://www.war.gov/Article/303/"), ("photo", 9001, "")]
        assert upgraded.execute("SELECT DISTINCT heard_from, first_run_id FROM known_pages").fetchall() == [
            ("story:101", 1)]
        schema._v5(upgraded)  # a second run (a merge that renumbers steps) changes nothing
        assert len(queries.pages_heard_of(upgraded)) == 2
    finally:
        upgraded.conn.close()
