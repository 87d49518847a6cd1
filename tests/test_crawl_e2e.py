"""Real `defwatch crawl` runs against the sample site into a real SQLite file (issue: crawl and archive)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from crawler.middlewares import SiteOnlyMiddleware, retry_after_seconds
from crawler.parsers import parse_page
from db.archive import Archive
from tests.conftest import crawl_env, run_crawl


def query(db_path, sql, params=()):
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql, params).fetchall()


def expected_related(site) -> set[tuple[int, int]]:
    return {(s["id"], r) for s in site.content.stories.values() for r in s["related"]}


@pytest.fixture
def crawled(site, tmp_path):
    db = tmp_path / "archive.db"
    env = crawl_env(tmp_path)
    first = run_crawl(db, site.base_url, env=env)
    assert first.returncode == 0, first.stderr
    return db, env, first


def test_full_crawl_archives_every_story_image_and_related_link(site, crawled):
    db, _, first = crawled
    assert first.summary["status"] == "ok" and first.summary["baseline"] is True
    story_ids = {row[0] for row in query(db, "SELECT id FROM stories")}
    assert story_ids == set(site.content.stories)
    kinds = dict(query(db, "SELECT id, kind FROM stories"))
    assert all(kinds[i] == s["kind"] for i, s in site.content.stories.items())
    images = dict(query(db, "SELECT media_id, source FROM images"))
    assert set(images) == set(site.content.images)
    assert set(images.values()) == {"photo_page"}
    links = {(a, b) for a, b in query(db, "SELECT story_id, related_id FROM related_links WHERE removed_at IS NULL")}
    assert links == expected_related(site)
    assert query(db, "SELECT COUNT(*) FROM story_versions")[0][0] == len(site.content.stories)
    assert query(db, "SELECT COUNT(*) FROM image_versions")[0][0] == len(site.content.images)


def test_the_real_2023_story_is_archived_with_its_four_images(crawled):
    db, _, _ = crawled
    title, byline, published, body = query(
        db, "SELECT title, byline, published, body_text FROM stories WHERE id = 3610656")[0]
    assert (title, byline) == ("More Nations Meet to Address Space Security", "By David Vergun , DOD News")
    assert published.startswith("2023-12-07")
    assert body.startswith("The Defense Department participated in a meeting of the Combined Space Operations")
    rows = query(db, """SELECT i.virin, i.virin_shot_date, i.virin_branch, i.virin_suffix, i.size_bytes, i.credit
                        FROM story_images si JOIN images i USING (media_id) WHERE si.story_id = 3610656
                        ORDER BY si.position""")
    assert rows == [
        ("231111-F-NU281-1013M", "2023-11-11", "Air Force", "M", round(2.91 * 1024 * 1024),
         "Justin Pacheco, Air Force"),
        ("231207-D-D0439-1234", "2023-12-07", "Department of Defense", None, round(931.84 * 1024), "OSDPA"),
        ("230803-X-NY190-1001", "2023-08-03", "Space Force", None, round(563.2 * 1024),
         "Space Force Senior Airman Samuel Becker"),
        ("230103-X-KD758-1001", "2023-01-03", "Space Force", None, round(2.75 * 1024 * 1024),
         "Joshua Conti, Space Force"),
    ]
    hits = query(db, "SELECT rowid FROM stories_fts WHERE stories_fts MATCH 'FalconSAT'")
    assert hits == [(3610656,)]  # a caption word: captions are searchable


def test_every_fetch_is_logged_with_provenance_and_raw_pages_reparse(crawled, site):
    db, _, _ = crawled
    rows = query(db, "SELECT url, status, outcome, sha256, bytes, fetched_at FROM fetches")
    assert rows and all(r[1] == 200 and r[2] == "ok" and r[3] and r[4] > 0 and r[5] for r in rows)
    fetched = {r[0] for r in rows}
    assert all(url.startswith(site.base_url) for url in fetched)  # nothing left the sample site
    archive = Archive.open(str(db))
    sha, record, url = archive.db.execute(
        """SELECT v.raw_sha256, v.record, f.url FROM story_versions v JOIN fetches f ON f.id = v.fetch_id
           WHERE v.story_id = 3610656""").fetchone()
    reparsed = parse_page(archive.raw_body(sha), url)
    archive.close()
    assert reparsed.to_dict() == json.loads(record)


def test_second_crawl_of_unchanged_site_adds_nothing_and_uses_304(crawled, site):
    db, env, _ = crawled
    before = query(db, "SELECT (SELECT COUNT(*) FROM story_versions), (SELECT COUNT(*) FROM image_versions)")
    second = run_crawl(db, site.base_url, env=env)
    assert second.returncode == 0, second.stderr
    after = query(db, "SELECT (SELECT COUNT(*) FROM story_versions), (SELECT COUNT(*) FROM image_versions)")
    assert after == before
    assert second.summary["new_versions"] == 0 and second.summary["events"] == 0
    pages = len(site.content.stories) + len(site.content.images)
    first_run = query(db, "SELECT COUNT(*) FROM fetches WHERE run_id = 1")[0][0]
    # every story, photo, feed and listing page answered 304, and the listing chain was still walked
    assert second.summary["not_modified"] == second.summary["pages"] == first_run
    assert query(db, "SELECT COUNT(*) FROM fetches WHERE run_id = 2 AND page_type = 'listing'") == query(
        db, "SELECT COUNT(*) FROM fetches WHERE run_id = 1 AND page_type = 'listing'")
    conditional = [r for r in site.requests if r.headers.get("If-None-Match")]
    assert len(conditional) >= pages


def test_an_edited_story_adds_exactly_one_version(crawled, site):
    db, env, _ = crawled
    site.edit_paragraph(3610656, 0, "The Defense Department hosted the principals board this year.")
    result = run_crawl(db, site.base_url, env=env)
    assert result.returncode == 0, result.stderr
    assert result.summary["new_versions"] == 1
    versions = query(db, "SELECT version, first_run_id FROM story_versions WHERE story_id = 3610656 ORDER BY version")
    assert versions == [(1, 1), (2, 2)]
    assert query(db, "SELECT COUNT(*) FROM story_versions")[0][0] == len(site.content.stories) + 1


def test_block_pages_and_broken_pages_never_become_versions(crawled, site):
    db, env, _ = crawled
    site.block(3610656)
    site.break_html(3386221, mode="shell")
    site.maintenance(4016543)
    result = run_crawl(db, site.base_url, env=env)
    assert result.returncode == 0, result.stderr
    assert result.summary["new_versions"] == 0
    outcomes = dict(query(db, """SELECT subject_id, outcome || ':' || COALESCE(parse_status, '-') FROM fetches
                                 WHERE run_id = 2 AND subject_id IN (3610656, 3386221, 4016543)"""))
    assert outcomes == {3610656: "blocked:-", 3386221: "ok:parse_error", 4016543: "blocked:-"}
    assert query(db, "SELECT COUNT(*) FROM story_versions")[0][0] == len(site.content.stories)


def test_robots_txt_is_read_and_the_user_agent_is_honest(crawled, site):
    paths = [r.path for r in site.requests]
    assert paths[0] == "/robots.txt"
    agents = {r.headers.get("User-Agent") for r in site.requests}
    assert len(agents) == 1 and "defwatch" in agents.pop()


def test_site_only_middleware_refuses_other_hosts():
    from scrapy import Request
    from scrapy.exceptions import IgnoreRequest

    local = SiteOnlyMiddleware("http://127.0.0.1:8000")
    local.process_request(Request("http://127.0.0.1:8000/News/"))
    for url in ("https://www.war.gov/News/", "http://127.0.0.1:9999/", "https://evil.example/",
                "https://media.defense.gov/2023/Dec/07/1/-1/-1/0/x.JPG"):
        with pytest.raises(IgnoreRequest):
            local.process_request(Request(url))
    live = SiteOnlyMiddleware(None)
    live.process_request(Request("https://www.defense.gov/News/"))
    with pytest.raises(IgnoreRequest):
        live.process_request(Request("https://media.defense.gov/2023/Dec/07/1/-1/-1/0/x.JPG"))


def test_retry_after_header_forms():
    assert retry_after_seconds(b"120") == 120
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds(b"soon") is None and retry_after_seconds(None) is None
