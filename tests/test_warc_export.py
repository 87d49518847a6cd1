"""``defwatch export --format warc|wacz`` over a real crawled sample-site archive, checked by the web
archivists' own tools: ``warcio check``, ``warcio index`` and ``cdxj-indexer``."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from samplesite import SampleSite
from tests.conftest import ROOT, crawl_env, run_crawl

EDITED, REMOVED = 3610656, 3298110
BIN = Path(sys.executable).parent


def defwatch(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "defwatch", *args], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    """Two crawls of the sample site: a baseline, then an edit and a removal (200s, 304s and a 404)."""
    tmp = tmp_path_factory.mktemp("crawled")
    db = tmp / "site.db"
    env = crawl_env(tmp)
    with SampleSite() as site:
        assert run_crawl(db, site.base_url, env=env).returncode == 0
        site.edit_paragraph(EDITED, 1, "A paragraph edited between the two crawls.")
        site.remove(REMOVED, status=404)
        assert run_crawl(db, site.base_url, env=env).returncode == 0
    return tmp, db, env


def _fetches(db: Path, where: str = "1") -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            f"SELECT id, COALESCE(final_url, url), status, fetched_at FROM fetches WHERE {where} ORDER BY id"
        ).fetchall()


def _warc_date14(stamp: str) -> str:
    return stamp[:19].replace("-", "").replace(":", "").replace("T", "")


@pytest.fixture(scope="module")
def exported(crawled):
    tmp, db, env = crawled
    out = tmp / "site.warc.gz"
    proc = defwatch("export", "--db", str(db), "--format", "warc", "--output", str(out), env=env)
    return out, proc


def test_export_passes_warcio_check_and_index(crawled, exported):
    out, proc = exported
    check = subprocess.run([str(BIN / "warcio"), "check", "-v", str(out)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "digest pass" in check.stdout and "fail" not in check.stdout
    index = subprocess.run([str(BIN / "warcio"), "index", "-f", "warc-type,warc-target-uri,warc-defwatch-fetch-id",
                            str(out)], capture_output=True, text=True, check=True)
    lines = [json.loads(line) for line in index.stdout.splitlines()]
    assert lines[0]["warc-type"] == "warcinfo"
    exported_ids = {int(line["warc-defwatch-fetch-id"]) for line in lines if "warc-defwatch-fetch-id" in line}
    _, db, _ = crawled
    answered = {row[0] for row in _fetches(db, "status IS NOT NULL")}
    assert exported_ids == answered
    assert "wrote" in proc.stderr and "revisits" in proc.stderr


def test_cdxj_index_lists_every_fetch(crawled, exported):
    out, _ = exported
    _, db, _ = crawled
    proc = subprocess.run([str(BIN / "cdxj-indexer"), str(out)], capture_output=True, text=True, check=True)
    entries = []
    for line in proc.stdout.splitlines():
        _surt, timestamp, data = line.split(" ", 2)
        entries.append((json.loads(data)["url"], timestamp, json.loads(data).get("status")))
    expected = [(url, _warc_date14(at), str(status)) for _, url, status, at in _fetches(db, "status IS NOT NULL")]
    assert sorted(e for e in entries) == sorted(expected)


def test_records_are_faithful(crawled, exported):
    """Original status, headers and body; 304s are revisits pointing at the stored copy they confirmed."""
    out, _ = exported
    _, db, _ = crawled
    with sqlite3.connect(db) as conn:
        fetches = {row[0]: row for row in conn.execute(
            "SELECT f.id, f.status, f.fetched_at, r.content, f.sha256 FROM fetches f "
            "LEFT JOIN raw_pages r ON r.sha256 = f.sha256 WHERE f.status IS NOT NULL")}
    import hashlib
    import zlib

    seen = {"response": 0, "revisit": 0, "request": 0}
    responses_by_date: dict[tuple[str, str], str] = {}
    revisits = []
    with open(out, "rb") as stream:
        for record in ArchiveIterator(stream):
            seen[record.rec_type] = seen.get(record.rec_type, 0) + 1
            if record.rec_type not in ("response", "revisit"):
                continue
            fetch_id = int(record.rec_headers.get_header("WARC-Defwatch-Fetch-Id"))
            _, status, fetched_at, content, sha = fetches[fetch_id]
            assert record.http_headers.get_statuscode() == str(status)
            assert record.rec_headers.get_header("WARC-Date") == fetched_at
            uri = record.rec_headers.get_header("WARC-Target-URI")
            if record.rec_type == "response":
                body = record.content_stream().read()
                assert hashlib.sha256(body).hexdigest() == (sha or hashlib.sha256(b"").hexdigest())
                if content is not None:
                    assert body == zlib.decompress(content)
                responses_by_date[(uri, fetched_at)] = record.rec_headers.get_header("WARC-Payload-Digest")
            else:
                assert status == 304
                assert record.rec_headers.get_header("WARC-Profile").endswith("/revisit/server-not-modified")
                revisits.append((record.rec_headers.get_header("WARC-Refers-To-Target-URI"),
                                 record.rec_headers.get_header("WARC-Refers-To-Date"),
                                 record.rec_headers.get_header("WARC-Payload-Digest")))
    assert seen["revisit"] > 0 and seen["response"] > 0
    assert seen["request"] == seen["response"] + seen["revisit"]
    for uri, date, digest in revisits:  # each points at a response in the same file, by URI, date and digest
        assert responses_by_date[(uri, date)] == digest


def test_export_of_one_run_and_since(crawled):
    tmp, db, env = crawled
    out = tmp / "run2.warc.gz"
    defwatch("export", "--db", str(db), "--format", "warc", "--run", "2", "--output", str(out), env=env)
    with open(out, "rb") as stream:
        ids = {int(r.rec_headers.get_header("WARC-Defwatch-Fetch-Id")) for r in ArchiveIterator(stream)
               if r.rec_type in ("response", "revisit")}
    assert ids == {row[0] for row in _fetches(db, "status IS NOT NULL AND run_id = 2")}
    bad = defwatch("export", "--db", str(db), "--format", "warc", "--run", "99", "--output", str(out), env=env,
                   check=False)
    assert bad.returncode == 2 and bad.stderr.strip() == "defwatch: no run 99 in the archive"
    no_output = defwatch("export", "--db", str(db), "--format", "warc", env=env, check=False)
    assert no_output.returncode == 2 and "--output" in no_output.stderr


def test_older_fetches_get_reconstructed_headers(crawled):
    """Fetches stored before schema v6 kept no headers: their records say so and carry what is known."""
    tmp, db, env = crawled
    old = tmp / "old.db"
    shutil.copy(db, old)
    with sqlite3.connect(old) as conn:  # the archive as schema v5 left it: readers never migrate it
        conn.execute("DROP INDEX fetches_source_key")
        for column in ("request_headers", "response_headers", "source", "source_ref", "source_key", "historical"):
            conn.execute(f"ALTER TABLE fetches DROP COLUMN {column}")
        conn.execute("ALTER TABLE events DROP COLUMN imported")
        conn.execute("PRAGMA user_version = 5")
    out = tmp / "old.warc.gz"
    defwatch("export", "--db", str(old), "--format", "warc", "--output", str(out), env=env)
    with open(out, "rb") as stream:
        records = [r for r in ArchiveIterator(stream) if r.rec_type == "response"]
    assert records and all(r.rec_headers.get_header("WARC-Defwatch-Headers") == "reconstructed" for r in records)
    assert all(r.http_headers.get_header("Content-Type") for r in records if r.http_headers.get_statuscode() == "200")
    check = subprocess.run([str(BIN / "warcio"), "check", str(out)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout
    history = json.loads(defwatch("history", str(EDITED), "--db", str(old), "--json", env=env).stdout)
    assert [v["source"]["type"] for v in history["versions"]] == ["crawl", "crawl"]
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (5,)  # still as it was


def test_wacz_package_has_index_and_pages(crawled):
    pytest.importorskip("wacz", reason="the wacz extra is not installed (pip install -e '.[wacz]')")
    tmp, db, env = crawled
    out = tmp / "site.wacz"
    defwatch("export", "--db", str(db), "--format", "wacz", "--output", str(out), env=env)
    with zipfile.ZipFile(out) as package:
        names = set(package.namelist())
        assert {"datapackage.json", "pages/pages.jsonl"} <= names
        assert any(n.startswith("archive/") and n.endswith(".warc.gz") for n in names)
        assert any(n.startswith("indexes/") for n in names)
        pages = [json.loads(line) for line in package.read("pages/pages.jsonl").decode().splitlines()[1:]]
    story_urls = {row[1] for row in _fetches(db, "page_type = 'story' AND status = 200")}
    assert story_urls <= {page["url"] for page in pages}
    validate = subprocess.run([str(BIN / "wacz"), "validate", "-f", str(out)], capture_output=True, text=True,
                              check=False)
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_large_export_streams_in_constant_memory(tmp_path):
    """Peak memory of an export stays near one body, whatever the archive's size."""
    import os
    import tracemalloc

    from db.archive import Archive, FetchInfo
    from db.warc_export import export_warc

    db_path = tmp_path / "large.db"
    archive = Archive.open(str(db_path))
    run_id = archive.start_run("full", "https://www.war.gov")
    body_size, count = 256 * 1024, 160  # 40 MiB of incompressible bodies
    archive.begin_batch()
    for n in range(count):
        archive.save_response(run_id, FetchInfo(
            url=f"https://www.war.gov/News/News-Stories/Article/Article/{n}/", outcome="error", status=200,
            page_type="story", subject_id=n, content_type="text/html", fetched_at=f"2026-01-01T00:00:{n % 60:02d}Z",
        ), os.urandom(body_size))
    archive.commit_batch()
    out = tmp_path / "large.warc.gz"
    tracemalloc.start()
    with open(out, "wb") as stream:
        report = export_warc(archive.db, stream, path=str(out), archive_path=str(db_path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    archive.close()
    assert report.responses == count and out.stat().st_size > count * body_size
    assert peak < 8 * body_size, f"peak {peak} bytes for {count} bodies of {body_size}"
