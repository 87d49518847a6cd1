"""``defwatch import FILE...``: WARC and WACZ files from defwatch, warcio's capture_http and wget become
fetches and versions through the crawl's own parsers and version rules; imported history never mails
and never looks new; bad files are refused with one line and nothing half-imported."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from samplesite import SampleSite
from tests.conftest import crawl_env, run_crawl
from tests.smtp_sink import SmtpSink
from tests.test_warc_export import EDITED, REMOVED, crawled, defwatch  # noqa: F401 - the shared crawled archive


def rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def versions(db: Path) -> dict[str, list[tuple]]:
    return {
        "story": rows(db, "SELECT story_id, version, content_hash, first_seen, last_seen FROM story_versions "
                          "ORDER BY 1, 2"),
        "image": rows(db, "SELECT media_id, version, content_hash, first_seen, last_seen FROM image_versions "
                          "ORDER BY 1, 2"),
    }


def site_of(db: Path) -> str:
    return rows(db, "SELECT site FROM runs ORDER BY id LIMIT 1")[0][0]


@pytest.fixture(scope="module")
def exported(crawled):  # noqa: F811
    tmp, db, env = crawled
    out = tmp / "import-me.warc.gz"
    defwatch("export", "--db", str(db), "--format", "warc", "--output", str(out), env=env)
    return out


def test_export_then_import_reproduces_every_version(crawled, exported, tmp_path):  # noqa: F811
    _, db, env = crawled
    fresh = tmp_path / "fresh.db"
    proc = defwatch("import", "--db", str(fresh), "--site", site_of(db), str(exported), "--json", env=env)
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["status"] == "ok" and summary["stored"] == len(rows(db, "SELECT 1 FROM fetches "
                                                                            "WHERE status IS NOT NULL"))
    assert versions(fresh) == versions(db)  # same hashes, numbers and first/last seen as crawled
    current = "SELECT id, current_version, title, body_text, status, missing_since FROM stories ORDER BY id"
    assert rows(fresh, current) == rows(db, current)
    assert rows(fresh, "SELECT COUNT(*) FROM events WHERE imported = 0") == [(0,)]
    assert rows(fresh, "SELECT COUNT(*) FROM outbox") == [(0,)]
    assert rows(fresh, "SELECT DISTINCT mode, status FROM runs") == [("import", "ok")]
    provenance = rows(fresh, "SELECT DISTINCT source FROM fetches")
    assert provenance == [("warc",)]
    refs = rows(fresh, "SELECT source_ref FROM fetches f JOIN story_versions v ON v.fetch_id = f.id LIMIT 1")
    assert refs[0][0].startswith(f"{exported.name}#")
    history = json.loads(defwatch("history", str(EDITED), "--db", str(fresh), "--json", env=env).stdout)
    sources = [v["source"] for v in history["versions"]]
    assert [(s["type"], s["file"]) for s in sources] == [("warc", exported.name)] * 2
    offsets = [s["offset"] for s in sources]
    from warcio.archiveiterator import ArchiveIterator

    with open(exported, "rb") as stream:  # each offset is the record of the capture that first showed it
        for offset, version in zip(offsets, history["versions"], strict=True):
            stream.seek(offset)
            record = next(iter(ArchiveIterator(stream)))
            assert record.rec_headers.get_header("WARC-Date") == version["first_seen"]
            assert f"/{EDITED}/" in record.rec_headers.get_header("WARC-Target-URI")
    crawled_history = json.loads(defwatch("history", str(EDITED), "--db", str(db), "--json", env=env).stdout)
    assert [v["source"]["type"] for v in crawled_history["versions"]] == ["crawl", "crawl"]

    again = defwatch("import", "--db", str(fresh), "--site", site_of(db), str(exported), "--json", env=env)
    second = json.loads(again.stdout[again.stdout.index("{"):])
    assert second["stored"] == 0 and second["already_imported"] == summary["stored"]
    assert versions(fresh) == versions(db)


def test_a_crawl_after_an_import_compares_with_the_newest_version(crawled, exported, tmp_path):  # noqa: F811
    """The site as it is now, crawled into an archive that only holds imported history: nothing is new
    (the first crawl is a baseline) and nothing changed; an edit after that is one event, not imported."""
    _, db, _ = crawled
    fresh = tmp_path / "after.db"
    env = crawl_env(tmp_path)
    defwatch("import", "--db", str(fresh), "--site", site_of(db), str(exported), env=env)
    assert rows(fresh, "SELECT status FROM stories WHERE id = ?", (REMOVED,)) == [("missing",)]  # its last capture
    with SampleSite() as site:  # another port: identity is the story id, whatever the host
        site.edit_paragraph(EDITED, 1, "A paragraph edited between the two crawls.")
        first = run_crawl(fresh, site.base_url, env=env)
        assert first.returncode == 0 and first.summary["events"] == 0, first.summary
        site.edit_paragraph(EDITED, 2, "Another edit, made after the import.")
        second = run_crawl(fresh, site.base_url, env=env)
    live = rows(fresh, "SELECT kind, subject_id, from_version, to_version, imported FROM events WHERE run_id = ?",
                (second.summary["run_id"],))
    assert live == [("story_updated", EDITED, 2, 3, 0)]


# -- WARCs written by other tools -----------------------------------------------------------------------


def _site_urls(db: Path, base: str) -> list[str]:
    """Feed, listing, every story and photo page of the crawled archive, on ``base``."""
    old = site_of(db)
    urls = [u.replace(old, base) for (u,) in rows(
        db, "SELECT DISTINCT COALESCE(final_url, url) FROM fetches WHERE run_id = 1 AND status = 200 "
            "AND page_type IN ('story', 'photo', 'feed', 'listing') ORDER BY 1")]
    return urls


def _first_versions(db: Path) -> dict[tuple[str, int], str]:
    found = {("story", s): h for s, h in rows(db, "SELECT story_id, content_hash FROM story_versions "
                                                  "WHERE version = 1")}
    found |= {("image", m): h for m, h in rows(db, "SELECT v.media_id, v.content_hash FROM image_versions v "
                                                  "WHERE version = 1")}
    return found


def _imported_versions(db: Path) -> dict[tuple[str, int], str]:
    found = {("story", s): h for s, h in rows(db, "SELECT story_id, content_hash FROM story_versions")}
    return found | {("image", m): h for m, h in rows(db, "SELECT media_id, content_hash FROM image_versions")}


def test_warcio_capture_http_of_the_sample_site_imports(crawled, tmp_path):  # noqa: F811
    from warcio.capture_http import capture_http

    _, db, env = crawled
    warc = tmp_path / "captured.warc.gz"
    with SampleSite() as site:
        urls = _site_urls(db, site.base_url)
        with capture_http(str(warc)):
            for url in urls:
                with urllib.request.urlopen(url) as response:  # noqa: S310 - the local sample site
                    response.read()
        fresh = tmp_path / "captured.db"
        proc = defwatch("import", "--db", str(fresh), "--site", site.base_url, str(warc), "--json", env=env)
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["stored"] == len(urls) and summary["outcomes"] == {"ok": len(urls)}
    imported = _imported_versions(fresh)
    story_count = sum(1 for u in urls if "/Article/" in u)
    assert len([k for k in imported if k[0] == "story"]) == story_count > 10
    assert imported == {key: _first_versions(db)[key] for key in imported}  # what the crawl parsed, hash for hash
    assert rows(fresh, "SELECT COUNT(*) FROM events WHERE imported = 0") == [(0,)]


@pytest.mark.skipif(shutil.which("wget") is None, reason="wget is not installed (apt-get install wget)")
def test_wget_warc_file_imports(crawled, tmp_path):  # noqa: F811
    _, db, env = crawled
    with SampleSite() as site:
        urls = _site_urls(db, site.base_url)
        (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n", encoding="utf-8")
        subprocess.run(["wget", "--quiet", "--no-config", "--warc-file", str(tmp_path / "wget"), "-i",
                        str(tmp_path / "urls.txt"), "-P", str(tmp_path / "pages"), "--tries", "1"],
                       check=False, timeout=120)
        fresh = tmp_path / "wget.db"
        proc = defwatch("import", "--db", str(fresh), "--site", site.base_url, str(tmp_path / "wget.warc.gz"),
                        "--json", env=env)
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["stored"] == len(urls) and summary["outcomes"] == {"ok": len(urls)}
    imported = _imported_versions(fresh)
    assert imported == {key: _first_versions(db)[key] for key in imported} and len(imported) > 10


def test_wacz_export_imports_like_its_warc(crawled, tmp_path):  # noqa: F811
    pytest.importorskip("wacz", reason="the wacz extra is not installed (pip install -e '.[wacz]')")
    _, db, env = crawled
    wacz = tmp_path / "site.wacz"
    defwatch("export", "--db", str(db), "--format", "wacz", "--output", str(wacz), env=env)
    fresh = tmp_path / "from-wacz.db"
    defwatch("import", "--db", str(fresh), "--site", site_of(db), str(wacz), env=env)
    assert versions(fresh) == versions(db)


# -- history is never news ----------------------------------------------------------------------------


def test_imported_changes_are_marked_and_never_mailed(crawled, tmp_path):  # noqa: F811
    """A WARC captured after the last crawl (the daemon was down) shows an edit: the import records it
    as an imported event, dated by the capture, and no mail goes out, then or on the next crawl."""
    from warcio.capture_http import capture_http

    _, db, _ = crawled
    archive = tmp_path / "mailed.db"
    with SampleSite() as site, SmtpSink() as sink:
        env = crawl_env(tmp_path, DEFWATCH_SMTP_HOST=sink.host, DEFWATCH_SMTP_PORT=str(sink.port),
                        DEFWATCH_ALERT_FROM="defwatch@localhost", DEFWATCH_ALERT_TO="analyst@example.org",
                        DEFWATCH_OPERATOR_TO="ops@example.org")
        assert run_crawl(archive, site.base_url, env=env).returncode == 0
        story_url = rows(archive, "SELECT url FROM stories WHERE id = ?", (EDITED,))[0][0]
        site.edit_paragraph(EDITED, 1, "Edited while the daemon was down.")
        # A WARC/1.0 date has whole seconds: a capture in the second of the crawl's own fetch would date
        # no later than it and be imported as history (no event; the next crawl then alerts, rightly).
        time.sleep(1.0)
        warc = tmp_path / "later.warc.gz"
        with capture_http(str(warc)), urllib.request.urlopen(story_url) as response:  # noqa: S310
            response.read()
        defwatch("import", "--db", str(archive), "--site", site.base_url, str(warc), env=env)
        after = run_crawl(archive, site.base_url, env=env)
        flushed = defwatch("alerts", "flush", "--db", str(archive), env=env)
    events = rows(archive, "SELECT kind, subject_id, imported, alerted_at, detected_at FROM events")
    assert [(k, s, i, a) for k, s, i, a, _ in events] == [("story_updated", EDITED, 1, None)]
    captured_at = rows(archive, "SELECT fetched_at FROM fetches WHERE source = 'warc'")[0][0]
    assert events[0][4] == captured_at
    assert after.summary["events"] == 0  # the crawl compares with the imported version: nothing new
    assert sink.messages == [] and flushed.returncode == 0
    assert rows(archive, "SELECT COUNT(*) FROM outbox") == [(0,)]


def test_older_captures_add_history_without_touching_the_current_state(crawled, exported, tmp_path):  # noqa: F811
    """Importing the crawl's own WARC into a copy of a later archive state changes nothing current."""
    _, db, env = crawled
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    current = "SELECT id, current_version, title, body_text, last_seen, status FROM stories ORDER BY id"
    before, before_versions = rows(copy, current), versions(copy)
    defwatch("import", "--db", str(copy), "--site", site_of(db), str(exported), env=env)
    assert rows(copy, current) == before
    assert versions(copy) == before_versions  # every capture matched a known version, at its known dates
    assert rows(copy, "SELECT COUNT(*) FROM events WHERE run_id = (SELECT MAX(id) FROM runs)") == [(0,)]


# -- bad input ----------------------------------------------------------------------------------------


def _counts(db: Path) -> list[tuple]:
    return rows(db, "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM fetches), "
                    "(SELECT COUNT(*) FROM story_versions), (SELECT COUNT(*) FROM events)")


def test_a_file_that_is_not_a_warc_is_refused_with_nothing_stored(crawled, tmp_path):  # noqa: F811
    _, db, env = crawled
    bad = tmp_path / "notes.warc.gz"
    bad.write_text("these are my notes, not a web archive\n", encoding="utf-8")
    fresh = tmp_path / "bad.db"
    shutil.copy(db, fresh)
    before = _counts(fresh)
    proc = defwatch("import", "--db", str(fresh), str(bad), env=env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"defwatch import: {bad}: not a WARC or WACZ file (not WARC records: an ARC file or no web archive at all)"]
    gzipped = tmp_path / "notes.gz"
    gzipped.write_bytes(__import__("gzip").compress(b"WARNING: not a warc either\n"))
    proc = defwatch("import", "--db", str(fresh), str(gzipped), env=env, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a WARC or WACZ file" in proc.stderr
    assert _counts(fresh) == before


def test_a_truncated_warc_imports_its_complete_records_and_resumes(crawled, exported, tmp_path):  # noqa: F811
    _, db, env = crawled
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(exported.read_bytes()[: exported.stat().st_size // 2])
    fresh = tmp_path / "cut.db"
    proc = defwatch("import", "--db", str(fresh), "--site", site_of(db), str(cut), env=env, check=False)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"defwatch import: {cut} is truncated at offset ") and "complete captures" in line
    stored = rows(fresh, "SELECT COUNT(*) FROM fetches")[0][0]
    assert 0 < stored < len(rows(db, "SELECT 1 FROM fetches WHERE status IS NOT NULL"))
    orphans = rows(fresh, "SELECT COUNT(*) FROM story_versions v LEFT JOIN fetches f ON f.id = v.fetch_id "
                          "WHERE f.id IS NULL")
    assert orphans == [(0,)]
    # the whole file, later: the rest is imported, nothing twice, and the archive matches the crawl
    defwatch("import", "--db", str(fresh), "--site", site_of(db), str(exported), env=env)
    assert versions(fresh) == versions(db)
    assert rows(fresh, "SELECT COUNT(*), COUNT(DISTINCT source_key) FROM fetches")[0][0] == \
        len(rows(db, "SELECT 1 FROM fetches WHERE status IS NOT NULL"))


def test_a_capture_of_another_site_is_refused(crawled, tmp_path):  # noqa: F811
    from warcio.capture_http import capture_http

    _, db, env = crawled
    warc = tmp_path / "other.warc.gz"
    with SampleSite() as site:
        with capture_http(str(warc)), urllib.request.urlopen(site.base_url + "/robots.txt") as response:  # noqa: S310
            response.read()
        other = site.base_url
    fresh = tmp_path / "other.db"
    shutil.copy(db, fresh)
    before = _counts(fresh)
    proc = defwatch("import", "--db", str(fresh), str(warc), env=env, check=False)  # the site is www.war.gov
    assert proc.returncode == 2
    host = other.split("//", 1)[1]
    assert proc.stderr.strip().splitlines() == [
        f"defwatch import: {warc}: no captures of https://www.war.gov or defense.gov, media.defense.gov, war.gov, "
        f"www.defense.gov, www.war.gov (it holds {host}); pass --site to import a capture of another host"]
    assert _counts(fresh) == before


def test_deduplicating_crawlers_revisits_take_the_body_they_name(tmp_path):
    """Heritrix and Browsertrix write an unchanged page again as an identical-payload-digest revisit:
    it carries no body; the import reads the one of the record it names and dates the version by it."""
    from io import BytesIO

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from samplesite import render_page

    url = f"https://www.war.gov/News/News-Stories/Article/Article/{EDITED}/"
    status, headers, body = render_page(f"/News/News-Stories/Article/Article/{EDITED}/")
    assert status == 200
    warc = tmp_path / "heritrix.warc.gz"
    with open(warc, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        http = StatusAndHeaders("200 OK", list(headers.items()), protocol="HTTP/1.1")
        response = writer.create_warc_record(url, "response", payload=BytesIO(body), length=len(body),
                                             http_headers=http, warc_headers_dict={"WARC-Date": "2025-02-01T10:00:00Z"})
        writer.write_record(response)
        digest = response.rec_headers.get_header("WARC-Payload-Digest")
        revisit = writer.create_revisit_record(
            url, digest, url, "2025-02-01T10:00:00Z", http_headers=http,
            warc_headers_dict={"WARC-Date": "2025-04-01T10:00:00Z"})
        writer.write_record(revisit)
    db = tmp_path / "dedup.db"
    defwatch("import", "--db", str(db), str(warc), env=crawl_env(tmp_path))
    assert versions(db)["story"] == [(EDITED, 1, rows(db, "SELECT content_hash FROM story_versions")[0][0],
                                      "2025-02-01T10:00:00.000000Z", "2025-04-01T10:00:00.000000Z")]
    assert rows(db, "SELECT outcome, sha256 IS NOT NULL FROM fetches ORDER BY id") == [("ok", 1), ("ok", 1)]
