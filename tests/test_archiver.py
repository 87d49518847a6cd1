"""The archive writer process (crawler.archiver): real child processes, a real SQLite file.

What a local crawl relies on: the writer parses pages exactly as the spider would, answers in
order, stores what a 304 of a page will follow, keeps going after one bad response, commits everything it received when
the crawl process dies, and a writer that dies ends the crawl as ``failed`` instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from core.clock import utcnow
from core.constants import DEFAULT_SITE
from core.fetch import FetchInfo
from core.urls import photo_page_url, story_url
from crawler.archiver import ArchiverClient, ArchiverError, Job, Stored
from crawler.parsers import parse_page
from db.archive import Archive
from db.queries import story_links
from db.schema import connect
from samplesite import SampleSite
from tests.conftest import ROOT, crawl_env

STORY_ID = 3610656


def _page(site: SampleSite, url: str) -> bytes:
    return site.respond("GET", url.removeprefix(DEFAULT_SITE), {}).body


def _story(site: SampleSite) -> tuple[str, bytes]:
    story = site.content.story(STORY_ID)
    url = story_url(story["kind"], STORY_ID, story.get("slug") or "")
    return url, _page(site, url)


def _fetch(url: str, page_type: str, subject_id: int) -> FetchInfo:
    return FetchInfo(url=url, outcome="ok", page_type=page_type, subject_id=subject_id, status=200,
                     content_type="text/html; charset=utf-8", fetched_at=utcnow())


def _new_archive(path: Path) -> int:
    archive = Archive.open(str(path))
    run_id = archive.start_run("full", DEFAULT_SITE)
    archive.close()
    return run_id


def _store_all(path: Path, run_id: int, jobs: list[Job]) -> list[Stored | BaseException]:
    async def go() -> list[Stored | BaseException]:
        client = ArchiverClient(str(path), run_id)
        futures = [client.store(job) for job in jobs]
        answers = await asyncio.gather(*futures, return_exceptions=True)
        assert client.close() == 0
        return answers

    return asyncio.run(go())


def test_writer_parses_like_the_spider_and_answers_in_order(tmp_path: Path) -> None:
    site = SampleSite()
    url, body = _story(site)
    media_id = next(b["media_id"] for b in site.content.story(STORY_ID)["body"] if b.get("type") == "image")
    photo_url = photo_page_url(media_id)
    db = tmp_path / "a.db"
    run_id = _new_archive(db)
    answers = _store_all(db, run_id, [
        Job(_fetch(url, "story", STORY_ID), body, parse_url=url),
        Job(_fetch(photo_url, "photo", media_id), _page(site, photo_url), parse_url=photo_url),
        Job(_fetch(url, "story", 999), body, parse_url=url),  # another story's page: not content
    ])
    story, photo, wrong = answers
    assert isinstance(story, Stored) and story.record_type == "story" and story.result.new_version
    assert story.fetch.outcome == "ok"
    related, photos = story_links(connect(str(db)), STORY_ID)  # what a 304 of the story follows
    assert (photo_url.rstrip("/"), media_id) in {(u.rstrip("/") if u else u, m) for u, m in photos}
    assert len(photos) == 4 and related
    assert isinstance(photo, Stored) and photo.record_type == "photo" and photo.result.new_version
    assert isinstance(wrong, Stored) and wrong.fetch.outcome == "error" and not wrong.result.new_version
    assert story_links(connect(str(db)), 999) == ([], [])

    conn = sqlite3.connect(db)
    stored = json.loads(conn.execute("SELECT record FROM story_versions WHERE story_id = ?", [STORY_ID]).fetchone()[0])
    in_process = parse_page(body, url, "text/html; charset=utf-8").to_dict()
    assert stored == json.loads(json.dumps(in_process, ensure_ascii=False))
    assert conn.execute("SELECT outcome FROM fetches ORDER BY id").fetchall() == [("ok",), ("ok",), ("error",)]


def test_one_response_that_cannot_be_stored_does_not_stop_the_writer(tmp_path: Path) -> None:
    site = SampleSite()
    url, body = _story(site)
    db = tmp_path / "a.db"
    run_id = _new_archive(db)
    bad = Job(_fetch(url, "story", STORY_ID), body, record="not a record")
    answers = _store_all(db, run_id, [bad, Job(_fetch(url, "story", STORY_ID), body, parse_url=url)])
    assert isinstance(answers[0], ArchiverError) and "could not store" in str(answers[0])
    assert isinstance(answers[1], Stored) and answers[1].result.new_version
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM fetches").fetchone() == (1,)  # the bad one left nothing
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


KILLED_CRAWL = textwrap.dedent("""
    import asyncio, os, signal, sys
    from crawler.archiver import ArchiverClient, Job
    from core.fetch import FetchInfo
    db, run_id, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    async def main():
        client = ArchiverClient(db, run_id)
        print(client.proc.pid, flush=True)
        futures = [client.store(Job(FetchInfo(url=f"https://www.war.gov/x/{i}", outcome="error", error="boom"),
                                    None)) for i in range(n)]
        await futures[n // 2]  # half answered, the rest sent but maybe not yet stored
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
""")


def test_a_crawl_killed_mid_batch_loses_nothing_it_sent(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    run_id = _new_archive(db)
    proc = subprocess.run([sys.executable, "-c", KILLED_CRAWL, str(db), str(run_id), "40"], cwd=ROOT,
                          env=crawl_env(tmp_path), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    writer_pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 20
    while _alive(writer_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(writer_pid), "the writer must end when its crawl process is gone"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM fetches").fetchone() == (40,)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_a_writer_that_dies_fails_the_crawl_instead_of_hanging_it(tmp_path: Path) -> None:
    with SampleSite(synthetic=300) as site:
        site.delay(0.05)  # slow enough that the crawl is still running when the writer dies
        db = tmp_path / "a.db"
        proc = subprocess.Popen(
            [sys.executable, "-m", "defwatch", "crawl", "--db", str(db), "--site", site.base_url, "--mode", "full",
             "--json", "--no-mail"], cwd=ROOT, env=crawl_env(tmp_path), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        writer = _wait_for_writer(proc.pid)
        os.kill(writer, signal.SIGKILL)
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 1, err[-2000:]
    summary = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    assert summary["status"] == "failed" and summary["finish_reason"] == "archive_writer_failed"
    conn = connect(str(db)).conn
    assert conn.execute("SELECT status FROM runs").fetchall() == [("failed",)]
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _wait_for_writer(parent: int, timeout: float = 30) -> int:
    """The pid of ``parent``'s archive writer, once it has stored a few pages."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in _children(parent):
            if _is_writer(child):
                time.sleep(1.0)
                return child
        time.sleep(0.05)
    pytest.fail("the crawl started no archive writer")


def _children(pid: int) -> list[int]:
    """Children of every thread of ``pid``: a thread may be the one that started the writer."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):  # a thread that ended while we looked
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _is_writer(pid: int) -> bool:
    """False for a child that exited between listing and reading (a short-lived helper process)."""
    try:
        return b"crawler.archiver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_a_304_listing_still_leads_to_the_stories_it_lists(tmp_path: Path) -> None:
    """A capped (or killed) run stores feeds and listings whose stories it never fetched. The next
    run gets 304s for them and must still follow what they list, from the stored copy."""
    from tests.conftest import run_crawl

    db, env = tmp_path / "a.db", crawl_env(tmp_path)
    with SampleSite() as site:
        capped = run_crawl(db, site.base_url, "full", env=env, extra_args=("--max-pages", "5"))
        assert capped.returncode == 0, capped.stderr
        assert 0 < _stories(db) <= 5
        again = run_crawl(db, site.base_url, "full", env=env)
        assert again.returncode == 0, again.stderr
        index_outcomes = {row[0] for row in sqlite3.connect(db).execute(
            "SELECT outcome FROM fetches WHERE run_id = 2 AND page_type IN ('feed', 'listing')")}
        assert index_outcomes == {"not_modified"}
        assert _stories(db) == len(site.content.stories)


def _stories(db: Path) -> int:
    return sqlite3.connect(db).execute("SELECT COUNT(*) FROM stories").fetchone()[0]


# `defwatch crawl` with Scrapy settings on top: monitor.run.run_once, as tests/test_faults.py runs it.
RUN_ONCE = """
import json, sys
from dataclasses import replace
from core.config import load_config
from monitor.run import run_once
db, site, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
summary = run_once(replace(load_config(), db=db, site=site), mode="full", send_mail=False, settings_overrides=settings)
print(json.dumps(summary.as_json()))
"""

# What two crawls of one site must store alike (not the raw pages' hashes: the sample site's pages
# carry a cache-buster, ?cdv=, that changes with every request).
VERSIONS = {
    "image_versions": "SELECT media_id, version, content_hash, title, caption, credit, record FROM image_versions "
                      "ORDER BY media_id, version",
    "story_versions": "SELECT story_id, version, content_hash, record FROM story_versions ORDER BY story_id, version",
    "fetches": "SELECT url, outcome, page_type, subject_id, error FROM fetches ORDER BY url",
}


def test_photo_pages_parsed_in_the_crawl_while_the_writer_is_behind_store_the_same_records(tmp_path: Path) -> None:
    """The pipeline parses the photo pages itself when the writer is behind (crawler.pipelines): the
    archive must not tell which process parsed a page. Behind mark 0: every photo page is parsed in
    the crawl process; a mark no backlog reaches: the writer parses them all."""
    env = crawl_env(tmp_path)
    stored: dict[str, dict[str, list[tuple]]] = {}
    summaries: dict[str, dict] = {}
    with SampleSite() as site:
        for name, mark in (("crawl", 0), ("writer", 1 << 40)):
            db = tmp_path / f"{name}.db"
            proc = subprocess.run([sys.executable, "-c", RUN_ONCE, str(db), site.base_url,
                                   json.dumps({"DEFWATCH_WRITER_BEHIND_BYTES": mark})],
                                  env=env, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
            assert proc.returncode == 0, proc.stderr[-2000:]
            summaries[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            with sqlite3.connect(db) as conn:
                stored[name] = {table: conn.execute(sql).fetchall() for table, sql in VERSIONS.items()}
    photos_ok = sum(1 for row in stored["crawl"]["fetches"] if row[2] == "photo" and row[1] == "ok")
    assert photos_ok == len(site.content.images) > 0
    assert summaries["crawl"]["hand_off"]["parsed_in_crawl"] == photos_ok
    assert summaries["writer"]["hand_off"].get("parsed_in_crawl", 0) == 0
    assert len(stored["crawl"]["image_versions"]) == photos_ok
    for table in VERSIONS:
        assert stored["crawl"][table] == stored["writer"][table], table


class LosesOnePhotoPage:
    """A pipeline with a defect: it raises on the first photo page it is given (a bug, a full disk)."""

    def __init__(self) -> None:
        self.raised = False

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if not self.raised and getattr(item.fetch, "page_type", None) == "photo":
            self.raised = True
            raise RuntimeError("a defect in a pipeline")
        return item


def test_a_page_a_pipeline_fails_on_fails_the_run_instead_of_leaving_a_quiet_gap(tmp_path: Path) -> None:
    """Scrapy logs an exception raised in a pipeline and goes on; the page never reaches the archive.
    The run must then say so (status failed, ``not_stored``), not report ``ok`` with a page missing."""
    pipelines = {"tests.test_archiver.LosesOnePhotoPage": 100, "crawler.pipelines.ArchivePipeline": 300}
    with SampleSite() as site:
        db = tmp_path / "a.db"
        proc = subprocess.run([sys.executable, "-c", RUN_ONCE, str(db), site.base_url,
                               json.dumps({"ITEM_PIPELINES": pipelines})],
                              env=crawl_env(tmp_path), capture_output=True, text=True, timeout=120, cwd=ROOT,
                              check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["not_stored"] == 1
    assert summary["status"] == "failed"
    photos = sqlite3.connect(db).execute("SELECT COUNT(*) FROM fetches WHERE page_type = 'photo'").fetchone()[0]
    assert photos == len(site.content.images) - 1
