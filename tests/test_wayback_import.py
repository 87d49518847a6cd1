"""``defwatch import --wayback`` against a Wayback Machine on 127.0.0.1: pywb (the real replay software,
when installed) and the minimal stand-in (the Internet Archive's CDX shape, and faults on command).

The WARCs behind both hold sample-site stories captured on four dates of 2025: one story edited
twice, one edited then removed (its last capture is a 404), and an unchanged re-capture."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from io import BytesIO
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from samplesite import SampleSite
from samplesite.content import load_data
from samplesite.paths import story_url
from tests.conftest import crawl_env
from tests.test_warc_export import defwatch
from tests.wayback_standin import MiniWayback, Pywb, pywb_bin

EDITED, REMOVED, PHOTO_STORY = 3610656, 3298110, 3386221
DATES = ("2025-01-10T09:00:00Z", "2025-03-05T14:30:00Z", "2025-06-20T08:15:00Z", "2025-07-01T12:00:00Z")
SECOND = "The second version of this paragraph, as captured in March."
THIRD = "The third version, captured in June, after the story was edited again."
REMOVED_LAST = "The removed story's last words, captured in March before it was taken down."


def rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def _capture(writer: WARCWriter, url: str, date: str, same_as: tuple | None = None) -> tuple:
    """Write one dated capture of ``url`` (or, ``same_as``, a byte-identical re-capture); return it."""
    if same_as is not None:
        status, headers, body = same_as
    else:
        status, headers, body = _get(url)
    http = StatusAndHeaders(f"{status} {'OK' if status == 200 else 'Not Found'}", headers, protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record(url, "response", payload=BytesIO(body), length=len(body),
                                                  http_headers=http, warc_headers_dict={"WARC-Date": date}))
    return status, headers, body


def _get(url: str) -> tuple:
    try:
        with urllib.request.urlopen(url) as response:  # noqa: S310 - the local sample site
            status, headers, body = response.status, list(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        status, headers, body = exc.code, list(exc.headers.items()), exc.read()
    return status, headers, body


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Two WARCs of dated captures of a sample site, and the site's base URL they name."""
    tmp = tmp_path_factory.mktemp("history")
    early, late = tmp / "early.warc.gz", tmp / "late.warc.gz"
    with SampleSite() as site:
        urls = {sid: rows_url(site, sid) for sid in (EDITED, REMOVED)}
        with open(early, "wb") as out:
            writer = WARCWriter(out, gzip=True)
            for url in urls.values():
                _capture(writer, url, DATES[0])
            site.edit_paragraph(EDITED, 1, SECOND)
            site.edit_paragraph(REMOVED, 0, REMOVED_LAST)
            for url in urls.values():
                _capture(writer, url, DATES[1])
        with open(late, "wb") as out:
            writer = WARCWriter(out, gzip=True)
            site.edit_paragraph(EDITED, 2, THIRD)
            site.remove(REMOVED, status=404)
            june = _capture(writer, urls[EDITED], DATES[2])
            _capture(writer, urls[REMOVED], DATES[2])
            _capture(writer, urls[EDITED], DATES[3], same_as=june)  # unchanged since June, byte for byte
        base = site.base_url
    return tmp, [early, late], base


def rows_url(site: SampleSite, story_id: int) -> str:
    """The story's URL on the running sample site, from the site's own data file."""
    story = next(s for s in load_data()["stories"] if s["id"] == story_id)
    return story_url(story["kind"], story_id, story["slug"] or "", site=site.base_url)


def wayback_env(tmp: Path, url: str, cdx_url: str = "") -> dict[str, str]:
    config = tmp / "wayback.toml"
    config.write_text("[monitor]\nremoval_confirm_runs = 2\n\n[wayback]\ndelay = 0.0\nretries = 2\nmax_wait = 1.0\n",
                      encoding="utf-8")
    return crawl_env(tmp, DEFWATCH_CONFIG=str(config), DEFWATCH_WAYBACK_URL=url, DEFWATCH_WAYBACK_CDX_URL=cdx_url)


def _story_versions(db: Path, story_id: int) -> list[tuple]:
    return rows(db, "SELECT version, first_seen, last_seen FROM story_versions WHERE story_id = ? ORDER BY version",
                (story_id,))


def _stamp(date: str) -> str:
    return date.replace("Z", ".000000Z")


def _check_reconstructed(db: Path, env: dict[str, str]) -> None:
    """The versions, in capture order, and the removed story's last text."""
    d = [_stamp(x) for x in DATES]
    assert _story_versions(db, EDITED) == [(1, d[0], d[0]), (2, d[1], d[1]), (3, d[2], d[3])]
    assert _story_versions(db, REMOVED) == [(1, d[0], d[0]), (2, d[1], d[1])]
    body = rows(db, "SELECT body_text FROM story_versions WHERE story_id = ? AND version = 3", (EDITED,))[0][0]
    assert SECOND in body and THIRD in body
    assert rows(db, "SELECT status, missing_since FROM stories WHERE id = ?", (REMOVED,)) == [("missing", d[2])]
    shown = defwatch("show", str(REMOVED), "--db", str(db), env=env).stdout
    assert REMOVED_LAST in shown and "missing" in shown.splitlines()[0]
    data = json.loads(defwatch("show", str(REMOVED), "--db", str(db), "--json", env=env).stdout)
    assert REMOVED_LAST in data["paragraphs"] and data["status"] == "missing"
    assert rows(db, "SELECT COUNT(*) FROM events WHERE imported = 0") == [(0,)]
    assert rows(db, "SELECT DISTINCT source FROM fetches") == [("wayback",)]


@pytest.mark.skipif(pywb_bin() is None, reason="pywb is not installed: python3 -m venv .venv-pywb && "
                                               ".venv-pywb/bin/pip install pywb (or set DEFWATCH_TEST_PYWB)")
def test_pywb_wayback_import_reconstructs_dated_versions(history, tmp_path):
    tmp, warcs, _ = history
    with Pywb(pywb_bin(), tmp_path / "pywb", warcs) as pywb:
        env = wayback_env(tmp_path, pywb.url, pywb.cdx_url)
        db = tmp_path / "pywb.db"
        proc = defwatch("import", "--wayback", "--db", str(db), "--site", history[2], "--json", env=env)
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["status"] == "ok" and summary["stored"] == 7
    assert summary["reused"] == 1  # the July capture has June's bytes: read from June's, not fetched again
    _check_reconstructed(db, env)


def test_standin_wayback_import_reconstructs_and_resumes(history, tmp_path):
    tmp, warcs, base = history
    with MiniWayback(warcs) as wayback:
        env = wayback_env(tmp_path, wayback.url)
        db = tmp_path / "mini.db"
        first = defwatch("import", "--wayback", "--db", str(db), "--site", base, "--limit", "2", "--json", env=env)
        assert json.loads(first.stdout[first.stdout.index("{"):])["stored"] == 2
        rest = defwatch("import", "--wayback", "--db", str(db), "--site", base, "--json", env=env)
        summary = json.loads(rest.stdout[rest.stdout.index("{"):])
        assert summary["stored"] == 5 and summary["already_imported"] == 2
        fetched = [p for p in wayback.requests if "id_/" in p]
        assert len(fetched) == len(set(fetched)) == 6  # each capture fetched once; the July repeat never
    _check_reconstructed(db, env)
    history_json = json.loads(defwatch("history", str(EDITED), "--db", str(db), "--json", env=env).stdout)
    sources = [v["source"] for v in history_json["versions"]]
    assert [s["type"] for s in sources] == ["wayback"] * 3
    assert [s["timestamp"] for s in sources] == ["20250110090000", "20250305143000", "20250620081500"]
    assert sources[0]["capture_url"] == f"{wayback.url}/web/20250110090000id_/{sources[0]['url']}"
    text = defwatch("history", str(EDITED), "--db", str(db), env=env).stdout.splitlines()
    assert [line.rsplit("[", 1)[-1] for line in text[3:]] == [
        "wayback 20250110090000]", "wayback 20250305143000]", "wayback 20250620081500]"]
    shown = json.loads(defwatch("show", str(EDITED), "--db", str(db), "--json", env=env).stdout)
    assert shown["source"]["timestamp"] == "20250620081500" and shown["version"] == 3
    from defwatch.browse import CANNED_QUERIES

    with sqlite3.connect(db) as conn:  # what Datasette's story_history query shows
        listed = conn.execute(CANNED_QUERIES["story_history"]["sql"], {"id": EDITED}).fetchall()
    assert [(r[0], r[-2], r[-1]) for r in listed] == [
        (v, "wayback", s["capture_url"]) for v, s in zip((1, 2, 3), sources, strict=True)]


def test_story_ids_and_date_window(history, tmp_path):
    tmp, warcs, base = history
    with MiniWayback(warcs) as wayback:
        env = wayback_env(tmp_path, wayback.url)
        db = tmp_path / "window.db"
        defwatch("import", "--wayback", "--db", str(db), "--site", base, "--from", "2025-03-01", "--to", "2025-06-30",
                 str(EDITED), env=env)
    assert [v for v, _, _ in _story_versions(db, EDITED)] == [1, 2]
    assert [first for _, first, _ in _story_versions(db, EDITED)] == [_stamp(DATES[1]), _stamp(DATES[2])]
    assert rows(db, "SELECT COUNT(*) FROM stories WHERE id != ?", (EDITED,)) == [(0,)]


def test_a_cdx_server_error_stops_with_nothing_imported(history, tmp_path):
    tmp, warcs, base = history
    with MiniWayback(warcs) as wayback:
        wayback.cdx_status = 500
        env = wayback_env(tmp_path, wayback.url)
        db = tmp_path / "error.db"
        proc = defwatch("import", "--wayback", "--db", str(db), "--site", base, env=env, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"defwatch import: the CDX API at {wayback.url} answered HTTP 500 2 times; nothing was imported"]
    assert rows(db, "SELECT COUNT(*) FROM fetches") == [(0,)] and rows(db, "SELECT COUNT(*) FROM runs") == [(0,)]


def test_rate_limited_captures_stop_cleanly_and_resume(history, tmp_path):
    tmp, warcs, base = history
    with MiniWayback(warcs) as wayback:
        wayback.captures_before_429 = 3
        env = wayback_env(tmp_path, wayback.url)
        db = tmp_path / "limited.db"
        proc = defwatch("import", "--wayback", "--db", str(db), "--site", base, env=env, check=False)
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == [
            f"defwatch import: a capture at {wayback.url} answered HTTP 429 (rate limited) 2 times; 3 captures "
            "were imported, 4 are left: run the same command again to resume"]
        assert rows(db, "SELECT COUNT(*), COUNT(DISTINCT source_key) FROM fetches") == [(3, 3)]
        assert rows(db, "SELECT mode, status FROM runs") == [("import", "failed")]
        wayback.captures_before_429 = None
        defwatch("import", "--wayback", "--db", str(db), "--site", base, env=env)
    _check_reconstructed(db, env)
