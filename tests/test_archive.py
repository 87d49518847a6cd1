"""The archive's write side: versions, provenance, links, FTS, atomicity."""

from __future__ import annotations

import hashlib
import sqlite3
import zlib
from pathlib import Path

import pytest

from core.fetch import FetchInfo
from core.records import Image, Photo, RelatedLink, Story, Virin
from db.archive import Archive
from db.schema import SCHEMA_VERSION, ArchiveTooNew, connect


def make_story(**overrides) -> Story:
    base = dict(
        id=101, kind="news-story", url="https://www.war.gov/News/News-Stories/Article/Article/101/x/",
        title="Title", byline="By A , DOD News", published="2024-01-02",
        paragraphs=["First paragraph.", "Second paragraph."], body_text="First paragraph.\n\nSecond paragraph.",
        images=[Image(media_id=9001, caption="A caption.", title="Pic", virin=Virin(raw="231111-F-NU281-1013M"))],
        tags=["space"], related=[RelatedLink(202, "https://www.war.gov/x/202/", "Other")],
    )
    return Story(**(base | overrides))


def ok(story_id: int = 101, **kw) -> FetchInfo:
    return FetchInfo(url=f"https://www.war.gov/a/{story_id}/", outcome="ok", page_type="story", subject_id=story_id,
                     status=200, **kw)


@pytest.fixture
def archive(tmp_path):
    a = Archive.open(str(tmp_path / "a.db"))
    yield a
    a.close()


def test_same_content_twice_adds_no_version(archive):
    run = archive.start_run("full", "s")
    first = archive.save_response(run, ok(etag='"e1"'), b"<html>1</html>", make_story())
    second = archive.save_response(run, ok(etag='"e1"'), b"<html>1</html>", make_story())
    assert (first.version, first.new_version, first.new_subject) == (1, True, True)
    assert (second.version, second.new_version, second.new_subject) == (1, False, False)
    assert archive.db["story_versions"].count == 1
    assert archive.db["raw_pages"].count == 1  # identical bodies are stored once
    assert archive.db["fetches"].count == 2
    assert [r["version"] for r in archive.db["fetches"].rows] == [1, 1]


def test_whitespace_and_unicode_form_are_not_a_new_version(archive):
    run = archive.start_run("full", "s")
    archive.save_response(run, ok(), b"a", make_story(title="Caf\u00e9 news"))
    noisy = make_story(title="  Cafe\u0301   news ", paragraphs=["First   paragraph.", "Second\nparagraph."])
    assert archive.save_response(run, ok(), b"b", noisy).new_version is False


def test_changed_paragraph_adds_exactly_one_version_with_provenance(archive):
    run = archive.start_run("full", "s")
    archive.save_response(run, ok(), b"v1", make_story())
    changed = make_story(paragraphs=["First paragraph.", "Edited."], body_text="First paragraph.\n\nEdited.")
    result = archive.save_response(run, ok(), b"v2", changed)
    assert (result.version, result.new_version) == (2, True)
    row = archive.db.execute("SELECT fetch_id, raw_sha256, body_text FROM story_versions WHERE version = 2").fetchone()
    assert row[0] == result.fetch_id
    assert archive.raw_body(row[1]) == b"v2"
    assert archive.db["stories"].get(101)["current_version"] == 2


def test_not_modified_keeps_version_and_updates_last_seen(archive):
    run = archive.start_run("full", "s")
    archive.save_response(run, ok(etag='"e1"', last_modified="Tue, 02 Jan 2024 00:00:00 GMT"), b"x", make_story())
    before = archive.db["stories"].get(101)["last_seen"]
    result = archive.save_response(run, FetchInfo(url="u", outcome="not_modified", page_type="story",
                                                  subject_id=101, status=304))
    assert result.version == 1
    assert archive.db["stories"].get(101)["last_seen"] > before
    assert archive.validators()[("story", 101)] == ('"e1"', "Tue, 02 Jan 2024 00:00:00 GMT")


def test_error_and_block_responses_never_become_versions(archive):
    run = archive.start_run("full", "s")
    archive.save_response(run, ok(), b"x", make_story())
    blocked = FetchInfo(url="u", outcome="blocked", page_type="story", subject_id=101, status=403, error="akamai")
    archive.save_response(run, blocked, b"<H1>Access Denied</H1>", None)
    archive.save_response(run, FetchInfo(url="u", outcome="error", page_type="story", subject_id=101, status=500))
    assert archive.db["story_versions"].count == 1
    outcomes = [r["outcome"] for r in archive.db["fetches"].rows]
    assert outcomes == ["ok", "blocked", "error"]


def test_related_links_track_addition_and_removal(archive):
    run1 = archive.start_run("full", "s")
    archive.save_response(run1, ok(), b"1", make_story())
    run2 = archive.start_run("full", "s")
    archive.save_response(run2, ok(), b"2", make_story(related=[RelatedLink(303, "u3", "Third")]))
    links = {r["related_id"]: r for r in archive.db["related_links"].rows}
    assert links[202]["removed_run_id"] == run2 and links[202]["removed_at"]
    assert links[303]["first_run_id"] == run2 and links[303]["removed_at"] is None
    run3 = archive.start_run("full", "s")
    archive.save_response(run3, ok(), b"3", make_story(related=[RelatedLink(202, "u2", "Other")]))
    links = {r["related_id"]: r for r in archive.db["related_links"].rows}
    assert links[202]["removed_at"] is None and links[202]["first_run_id"] == run3  # added again


def test_inline_image_then_photo_page_owns_the_image(archive):
    run = archive.start_run("full", "s")
    archive.save_response(run, ok(), b"1", make_story())
    image = archive.db["images"].get(9001)
    assert (image["source"], image["virin"], image["current_version"]) == ("inline", "231111-F-NU281-1013M", None)
    photo = Photo(media_id=9001, url="https://www.war.gov/Multimedia/Photos/igphoto/9001/", title="Pic",
                  caption="Photo page caption.", virin=Virin(raw="231111-F-NU281-1013M", branch_code="F"))
    fetch = FetchInfo(url=photo.url, outcome="ok", page_type="photo", subject_id=9001, status=200)
    assert archive.save_response(run, fetch, b"p", photo).version == 1
    image = archive.db["images"].get(9001)
    assert (image["source"], image["caption"], image["current_version"]) == ("photo_page", "Photo page caption.", 1)
    archive.save_response(run, ok(), b"1", make_story())  # the inline block no longer overwrites it
    assert archive.db["images"].get(9001)["caption"] == "Photo page caption."


def test_fts_follows_edits(archive):
    run = archive.start_run("full", "s")
    archive.save_response(run, ok(), b"1", make_story())
    hits = archive.db.execute("SELECT rowid FROM stories_fts WHERE stories_fts MATCH 'caption'").fetchall()
    assert hits == [(101,)]
    archive.save_response(run, ok(), b"2", make_story(body_text="Submarine news.", paragraphs=["Submarine news."]))
    match = "SELECT rowid FROM stories_fts WHERE stories_fts MATCH ?"
    assert archive.db.execute(match, ["submarine"]).fetchall() == [(101,)]
    assert archive.db.execute("SELECT rowid FROM stories_fts WHERE stories_fts MATCH 'second'").fetchall() == []


def test_failed_save_leaves_nothing_half_written(archive, monkeypatch):
    run = archive.start_run("full", "s")

    def boom(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(archive, "_store_related", boom)  # fails after the version and images are written
    with pytest.raises(sqlite3.OperationalError):
        archive.save_response(run, ok(), b"x", make_story())
    for table in ("fetches", "raw_pages", "stories", "story_versions", "related_links", "images"):
        assert archive.db[table].count == 0, table


def test_schema_version_and_refusing_a_newer_archive(tmp_path):
    path = str(tmp_path / "n.db")
    db = connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.conn.close()
    with pytest.raises(ArchiveTooNew):
        connect(path)


REAL = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "real"


def test_raw_pages_are_zlib_streams_that_zlib_decompress_reads_back(archive):
    """raw_pages.content is written by ISA-L (db.archive.compress_raw), not by zlib: every stored body,
    every real page among them, must read back byte for byte with the standard library's
    zlib.decompress, as users' scripts read it, and no larger than zlib's level 1 made it."""
    bodies = [path.read_bytes() for path in sorted(REAL.glob("*.htm*"))]
    assert len(bodies) >= 10, f"the real pages are missing from {REAL}"
    bodies += [b"", b"x", bytes(range(256)) * 600]
    run = archive.start_run("full", "s")
    for n, body in enumerate(bodies):
        archive.save_response(run, ok(1000 + n), body)
    rows = archive.db.execute("SELECT sha256, content, size FROM raw_pages").fetchall()
    by_sha = {hashlib.sha256(body).hexdigest(): body for body in bodies if body}
    assert {sha for sha, _, _ in rows} == set(by_sha)
    for sha, content, size in rows:
        assert zlib.decompress(content) == by_sha[sha] and size == len(by_sha[sha])
    real = bodies[:-3]
    stored = sum(len(content) for sha, content, _ in rows if by_sha[sha] in real)
    assert stored <= sum(len(zlib.compress(body, 1)) for body in real)
