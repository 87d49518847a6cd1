"""bench/scale.py at tiny scale: its fast build stores what a crawl stores, and its re-parse figures print.

The build's shortcuts (``bench/scale_pages.py``: bodies compressed in the workers, records parsed
from the page without the site's shared chrome) must leave the archive a crawl would leave: the
same records as a full parse, the same raw_pages row as ``Archive.save_response`` writes.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from core.constants import DEFAULT_SITE
from core.fetch import FetchInfo
from crawler.parsers import parse_page
from db.archive import Archive

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import scale  # noqa: E402  (bench/ is not a package)
import scale_pages  # noqa: E402

REPARSE = re.compile(r"re-parse \((dry run|real), (\d) parsing process(?:es)?\), (.+?): (\d+) pages in [\d.]+ s = "
                     r"[\d.]+ pages/s .*; changed (\d+), unchanged (\d+), failed (\d+).*; CPU ([\d.]+) s = ")


@pytest.fixture(scope="module")
def pages() -> list[scale.Fetched]:
    scale.init_worker(40)
    return [page for story in range(scale.SYN_BASE_ID, scale.SYN_BASE_ID + 6)
            for page in scale.story_with_photos(scale._site, story)]


def test_records_read_without_the_chrome_equal_full_parses(pages):
    assert {p.fetch.page_type for p in pages} == {"story", "photo"} and len(pages) > 6
    for page in pages:
        body = page.body.body()
        slim = scale_pages.without_chrome(body, DEFAULT_SITE)
        assert slim is not None and len(slim) < len(body) - 100_000  # the chrome was really cut
        assert 125 * 1024 <= len(body) <= 150 * 1024  # real-size pages are stored
        assert page.record.to_dict() == parse_page(body, page.fetch.url, page.fetch.content_type).to_dict()


def test_a_page_whose_chrome_is_not_the_sites_is_parsed_whole():
    body = b"<html><head><title>T</title></head><body><p>x</p></body></html>"
    assert scale_pages.without_chrome(body, DEFAULT_SITE) is None


def test_the_bench_archive_stores_the_raw_row_a_crawl_stores(tmp_path, pages):
    page = pages[0]
    body = page.body.body()
    rows = []
    for archive_class, stored in ((Archive, body), (scale_pages.BenchArchive, page.body)):
        archive = archive_class.open(str(tmp_path / f"{archive_class.__name__}.db"))
        run_id = archive.start_run("full", DEFAULT_SITE)
        fetch = FetchInfo(url=page.fetch.url, outcome="ok", page_type="story", subject_id=page.fetch.subject_id,
                          status=200, content_type=page.fetch.content_type, fetched_at="2026-12-06T12:00:00.000000Z")
        archive.save_response(run_id, fetch, stored, page.record)
        raw = archive.db.execute("SELECT sha256, content, content_type, size, first_seen FROM raw_pages").fetchall()
        fetched = archive.db.execute("SELECT sha256, bytes FROM fetches").fetchall()
        versions = archive.db.execute("SELECT raw_sha256, record FROM story_versions").fetchall()
        archive.close()
        rows.append(([(r[0], zlib.decompress(r[1]), *r[2:]) for r in raw], fetched, versions))
    assert rows[0] == rows[1]
    assert rows[0][0][0][1] == body and rows[0][1][0][1] == len(body)


def bench(*args: str) -> str:
    result = subprocess.run([sys.executable, "bench/scale.py", "--queries", "5", "--stopword-queries", "1",
                             "--history", "4", "--cli-runs", "1", "--workers", "2", *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_bench_builds_resumes_and_reparses_at_tiny_scale(tmp_path):
    db = tmp_path / "scale.db"
    first = bench("--stories", "20", "--db", str(db), "--edit-share", "0", "--reparse-sample", "0")
    assert "build: 20 stories, " in first
    with sqlite3.connect(db) as conn:  # as a kill leaves it: the build run never finished
        conn.execute("UPDATE runs SET status = 'interrupted'")
    conn.close()

    out = bench("--stories", "30", "--db", str(db), "--resume", "--reparse-sample", "100", "--reparse-all",
                "--reparse-compare", "--reparse-real", "--reparse-workers", "2")

    assert f"resuming the build of {db} from story {scale.SYN_BASE_ID + 19} to --stories 30" in out
    build = next(line for line in out.splitlines() if line.startswith("build: 11 stories, "))
    assert "parse errors 0" in build
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT COUNT(*), MIN(id), MAX(id) FROM stories").fetchone()
        fetched = conn.execute("SELECT COUNT(*) FROM fetches WHERE page_type = 'story' AND run_id <= 2").fetchone()
    conn.close()
    assert stored == (30, scale.SYN_BASE_ID, scale.SYN_BASE_ID + 29) and fetched == (31,)  # story 20 twice
    found = [REPARSE.search(line) for line in out.splitlines() if line.startswith("re-parse (")]
    runs = [(m.group(1), int(m.group(2)), m.group(3).split(" ")[0]) for m in found if m]
    assert runs == [("dry run", 1, "newest"), ("dry run", 2, "newest"), ("real", 2, "newest"),
                    ("dry run", 2, "whole")]
    whole = found[-1]
    total = int(whole.group(4))
    assert total > 30 and (int(whole.group(5)), int(whole.group(6)), int(whole.group(7))) == (0, total, 0)
    assert all(int(m.group(5)) == 0 and int(m.group(7)) == 0 for m in found)  # the build's records hold
    # The one-process re-parse's CPU is its own, read at the end; a pool's workers are sampled every
    # 0.5 s (bench/cpu_meter.py), and at this tiny scale they may come and go between two samples.
    assert all(float(m.group(8)) > 0 for m in found if m.group(2) == "1")
