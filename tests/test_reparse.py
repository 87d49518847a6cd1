"""`defwatch reparse` over a real crawled archive: records restored in place, no versions, no events.

The scenario archive (built once per session, copied per test) is two real `defwatch crawl` runs of
the sample site: a baseline, then a run after story 3610656's first paragraph was edited (version 2)
and story 3386221 was removed (confirmed at once: removal_confirm_runs = 1). test_browse and
test_schema_docs use the same archive.
"""

from __future__ import annotations

import argparse
import copy
import json
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest

from core.records import PARSER_VERSION
from crawler.parsers import parse_page
from crawler.reparse import assign_hashes
from db.versions import content_hash, image_content, story_content
from defwatch import cli
from defwatch.reparse_commands import REGISTRY
from samplesite import SampleSite
from tests.conftest import crawl_env, run_crawl

EDITED, REMOVED = 3610656, 3386221
EDITED_TEXT = "The Defense Department hosted the principals board this year."
OTHER = 3599817  # an unedited story with one version
PHOTO = 2003354108  # the photo page of story 3610656's first image


# -- the shared scenario archive ------------------------------------------------------------------


_scenario: dict[str, Path] = {}


def scenario_archive(factory: pytest.TempPathFactory) -> Path:
    """Crawl the sample site twice (baseline; one edit and one removal) into a pristine archive.

    Built once per test session (the crawls are most of these tests' time); callers copy it.
    """
    if "path" not in _scenario:
        _scenario["path"] = _build_scenario(factory)
    return _scenario["path"]


def _build_scenario(factory: pytest.TempPathFactory) -> Path:
    tmp = factory.mktemp("scenario")
    (tmp / "defwatch-test.toml").write_text("[monitor]\nremoval_confirm_runs = 1\n", encoding="utf-8")
    env = crawl_env(tmp)
    db = tmp / "archive.db"
    with SampleSite() as site:
        first = run_crawl(db, site.base_url, env=env)
        assert first.returncode == 0, first.stderr
        site.edit_paragraph(EDITED, 0, EDITED_TEXT)
        site.remove(REMOVED)
        second = run_crawl(db, site.base_url, env=env)
        assert second.returncode == 0, second.stderr
    return db


def copy_archive(source: Path, target: Path) -> Path:
    """A consistent copy (SQLite's backup API: the WAL is folded in)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return target


@pytest.fixture
def archive(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return copy_archive(scenario_archive(tmp_path_factory), tmp_path / "archive.db")


# -- helpers --------------------------------------------------------------------------------------


_build_parser = cli.build_parser


def parser_with_reparse() -> argparse.ArgumentParser:
    """The real CLI parser, with this module's commands added until cli.py registers them itself."""
    parser = _build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "reparse" not in commands.choices:
        for register in REGISTRY:
            register(commands)
    return parser


def run(capsys, monkeypatch, db: Path, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "build_parser", parser_with_reparse)
    code = cli.main([*argv, "--db", str(db)])
    out, err = capsys.readouterr()
    return code, out, err


def reparse_json(capsys, monkeypatch, db: Path, *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, monkeypatch, db, "reparse", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def q(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def counts(db: Path) -> tuple[int, int, int]:
    return q(db, "SELECT (SELECT COUNT(*) FROM story_versions), (SELECT COUNT(*) FROM image_versions),"
                 " (SELECT COUNT(*) FROM events)")[0]


def version(db: Path, table: str, key: str, subject: int, number: int) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute(f"SELECT * FROM {table} WHERE {key} = ? AND version = ?", (subject, number)).fetchone()
    finally:
        conn.close()
    return {**dict(row), "record": json.loads(row["record"])}


def tamper_story(db: Path, story_id: int, number: int, index: int, text: str) -> dict[str, Any]:
    """Store a paragraph wrongly, as an older parser would have, in the version and (if current) the state."""
    before = version(db, "story_versions", "story_id", story_id, number)
    record = copy.deepcopy(before["record"])
    record["paragraphs"][index] = text
    record["body_text"] = "\n\n".join(record["paragraphs"])
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE story_versions SET record = ?, body_text = ?, content_hash = ? WHERE id = ?",
                     (json.dumps(record), record["body_text"], content_hash(story_content(record)), before["id"]))
        conn.execute("UPDATE stories SET body_text = ? WHERE id = ? AND current_version = ?",
                     (record["body_text"], story_id, number))
    conn.close()
    return before


def search(db: Path, term: str) -> list[int]:
    return [r[0] for r in q(db, "SELECT rowid FROM stories_fts WHERE stories_fts MATCH ? ORDER BY rowid", (term,))]


# -- end to end -----------------------------------------------------------------------------------


def test_scenario_archive_has_two_versions_and_events(archive):
    versions = q(archive, "SELECT version FROM story_versions WHERE story_id = ? ORDER BY version", (EDITED,))
    assert versions == [(1,), (2,)]
    kinds = {r[0] for r in q(archive, "SELECT kind || ':' || subject_id FROM events")}
    assert {f"story_updated:{EDITED}", f"story_removed:{REMOVED}"} <= kinds


def test_reparse_restores_a_tampered_record_without_versions_or_events(capsys, monkeypatch, archive):
    original = tamper_story(archive, EDITED, 2, 1, "Quokkas were briefly mentioned in a wrong paragraph.")
    photo = version(archive, "image_versions", "media_id", PHOTO, 1)
    wrong = {**photo["record"], "caption": "A wrong caption about quokkas."}
    with sqlite3.connect(archive) as conn:
        conn.execute("UPDATE image_versions SET record = ?, caption = ?, content_hash = ? WHERE id = ?",
                     (json.dumps(wrong), wrong["caption"], content_hash(image_content(wrong)), photo["id"]))
        conn.execute("UPDATE images SET caption = ? WHERE media_id = ?", (wrong["caption"], PHOTO))
    conn.close()
    assert search(archive, "quokkas") == [EDITED]
    before = counts(archive)
    total = before[0] + before[1]

    report = reparse_json(capsys, monkeypatch, archive)

    assert (report["reparsed"], report["changed"], report["unchanged"], report["failed"]) == (total, 2, total - 2, 0)
    assert report["fields"] == {"body_text": 1, "caption": 1, "paragraphs": 1}
    assert report["by_subject"] == {"story": {"changed": 1, "unchanged": before[0] - 1, "failed": 0},
                                    "image": {"changed": 1, "unchanged": before[1] - 1, "failed": 0}}
    assert (report["hash_changed"], report["current_updated"], report["duplicates"]) == (2, 2, [])
    assert report["pages_per_second"] > 0 and report["parser_version"] == PARSER_VERSION
    restored = version(archive, "story_versions", "story_id", EDITED, 2)
    assert restored["record"] == original["record"] and restored["content_hash"] == original["content_hash"]
    assert restored["body_text"] == original["body_text"] and restored["first_seen"] == original["first_seen"]
    image = version(archive, "image_versions", "media_id", PHOTO, 1)
    assert image["record"] == photo["record"] and image["content_hash"] == photo["content_hash"]
    assert q(archive, "SELECT caption FROM images WHERE media_id = ?", (PHOTO,)) == [(photo["caption"],)]
    assert q(archive, "SELECT body_text FROM stories WHERE id = ?", (EDITED,)) == [(original["body_text"],)]
    assert search(archive, "quokkas") == []  # the FTS index followed the state row
    assert EDITED in search(archive, "principals")
    assert counts(archive) == before  # no version added, no event written


def test_reparse_of_an_intact_archive_changes_nothing(capsys, monkeypatch, archive):
    tamper_story(archive, OTHER, 1, 0, "Wrong.")
    assert reparse_json(capsys, monkeypatch, archive)["changed"] == 1
    again = reparse_json(capsys, monkeypatch, archive)
    assert (again["changed"], again["failed"], again["hash_changed"], again["current_updated"]) == (0, 0, 0, 0)
    assert again["unchanged"] == again["reparsed"] == sum(counts(archive)[:2])


def test_id_limits_the_reparse_to_one_subject(capsys, monkeypatch, archive):
    tamper_story(archive, EDITED, 1, 0, "Wrong first paragraph of version one.")
    untouched = tamper_story(archive, OTHER, 1, 0, "Wrong first paragraph of another story.")
    report = reparse_json(capsys, monkeypatch, archive, "--id", str(EDITED))
    assert (report["reparsed"], report["changed"], report["unchanged"]) == (2, 1, 1)
    assert report["current_updated"] == 0  # version 1 is not the current one
    fixed = version(archive, "story_versions", "story_id", EDITED, 1)
    assert fixed["record"]["paragraphs"][0] != "Wrong first paragraph of version one."
    other = version(archive, "story_versions", "story_id", OTHER, 1)
    assert other["record"]["paragraphs"][0] == "Wrong first paragraph of another story."
    assert other["content_hash"] != untouched["content_hash"]  # still the tampered one
    code, _, err = run(capsys, monkeypatch, archive, "reparse", "--id", "42")
    assert (code, err) == (2, "defwatch: no stored version of a story or image with id 42\n")


def test_a_page_that_no_longer_parses_is_reported_failed_and_left_unchanged(capsys, monkeypatch, archive):
    tampered = tamper_story(archive, OTHER, 1, 0, "Still wrong.")
    body = b"<html><head><title>Access Denied</title></head><body>You don't have permission to access</body></html>"
    with sqlite3.connect(archive) as conn:
        conn.execute("UPDATE raw_pages SET content = ? WHERE sha256 = ?", (zlib.compress(body), tampered["raw_sha256"]))
    conn.close()
    stored = version(archive, "story_versions", "story_id", OTHER, 1)
    reason = parse_page(body, stored["record"]["url"]).reason
    report = reparse_json(capsys, monkeypatch, archive)
    assert report["failed"] == 1 and report["failed_by_reason"] == {reason: 1}
    assert report["failures"] == [{"subject_type": "story", "subject_id": OTHER, "version": 1, "reason": reason,
                                   "detail": parse_page(body, stored["record"]["url"]).detail}]
    assert version(archive, "story_versions", "story_id", OTHER, 1) == stored  # byte for byte as it was
    assert report["changed"] == 0


def test_since_selects_versions_stored_since(capsys, monkeypatch, archive):
    with sqlite3.connect(archive) as conn:
        conn.execute("UPDATE story_versions SET first_seen = '2020-01-01T00:00:00.000000Z'")
        conn.execute("UPDATE image_versions SET first_seen = '2020-01-01T00:00:00.000000Z'")
        conn.execute("UPDATE story_versions SET first_seen = '2024-06-01T00:00:00.000000Z' WHERE story_id = ?",
                     (OTHER,))
    conn.close()
    report = reparse_json(capsys, monkeypatch, archive, "--since", "2024-01-01")
    assert (report["reparsed"], report["by_subject"]["story"]["unchanged"]) == (1, 1)
    assert reparse_json(capsys, monkeypatch, archive, "--since", "2030-01-01")["reparsed"] == 0
    assert run(capsys, monkeypatch, archive, "reparse", "--since", "last week")[0] == 2


def test_dry_run_reports_and_writes_nothing(capsys, monkeypatch, archive):
    tampered = tamper_story(archive, OTHER, 1, 0, "Wrong in a dry run.")
    stored = version(archive, "story_versions", "story_id", OTHER, 1)
    report = reparse_json(capsys, monkeypatch, archive, "--dry-run")
    assert (report["dry_run"], report["changed"], report["hash_changed"], report["current_updated"]) == (True, 1, 1, 1)
    assert version(archive, "story_versions", "story_id", OTHER, 1) == stored != tampered


def test_collapsing_versions_are_both_kept_and_reported(capsys, monkeypatch, archive):
    """Version 2's raw page now reads like version 1's: the parser, not the site, made them differ."""
    v1 = version(archive, "story_versions", "story_id", EDITED, 1)
    v2 = version(archive, "story_versions", "story_id", EDITED, 2)
    with sqlite3.connect(archive) as conn:
        conn.execute("UPDATE story_versions SET raw_sha256 = ? WHERE id = ?", (v1["raw_sha256"], v2["id"]))
    conn.close()
    code, out, _ = run(capsys, monkeypatch, archive, "reparse", "--id", str(EDITED), "--dry-run")
    assert code == 0
    assert (f"duplicate: story {EDITED} version 2 now reads the same as version 1; both kept, it keeps hash "
            f"{v2['content_hash'][:12]}") in out.splitlines()
    report = reparse_json(capsys, monkeypatch, archive, "--id", str(EDITED))
    assert (report["changed"], report["unchanged"]) == (1, 1)
    assert report["duplicates"] == [{"subject_type": "story", "subject_id": EDITED, "version": 2,
                                     "same_as_version": 1, "kept_hash": v2["content_hash"]}]
    after = version(archive, "story_versions", "story_id", EDITED, 2)
    assert after["record"] == v1["record"] and after["content_hash"] == v2["content_hash"]
    assert version(archive, "story_versions", "story_id", EDITED, 1)["content_hash"] == v1["content_hash"]
    assert q(archive, "SELECT current_version, body_text FROM stories WHERE id = ?", (EDITED,)) == [
        (2, v1["body_text"])]
    assert reparse_json(capsys, monkeypatch, archive, "--id", str(EDITED))["duplicates"] == []  # settled


def test_a_new_parser_version_restamps_without_counting_a_change(capsys, monkeypatch, archive):
    row = version(archive, "story_versions", "story_id", OTHER, 1)
    old = {**row["record"], "parser_version": "0.9.0"}
    with sqlite3.connect(archive) as conn:
        conn.execute("UPDATE story_versions SET record = ?, parser_version = '0.9.0' WHERE id = ?",
                     (json.dumps(old), row["id"]))
        conn.execute("UPDATE stories SET parser_version = '0.9.0' WHERE id = ?", (OTHER,))
    conn.close()
    report = reparse_json(capsys, monkeypatch, archive, "--id", str(OTHER))
    assert (report["changed"], report["unchanged"], report["restamped"], report["fields"]) == (0, 1, 1, {})
    assert version(archive, "story_versions", "story_id", OTHER, 1) == row  # back to the current stamp
    assert q(archive, "SELECT parser_version FROM stories WHERE id = ?", (OTHER,)) == [(PARSER_VERSION,)]


def test_text_report_and_progress_only_on_a_terminal(capsys, monkeypatch, archive):
    tamper_story(archive, OTHER, 1, 0, "Wrong for the text report.")
    code, out, err = run(capsys, monkeypatch, archive, "reparse")
    lines = out.splitlines()
    assert code == 0 and err == ""  # quiet when stderr is not a terminal
    assert lines[0].startswith("re-parsed 64 stored version(s) with parser ") and "pages/s)" in lines[0]
    assert lines[1].split()[:2] == ["changed", "1"] and "(story 1, image 0)" in lines[1]
    assert "fields changed: body_text 1, paragraphs 1" in lines
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    code, _, err = run(capsys, monkeypatch, archive, "reparse")
    assert code == 0 and "\rreparse: 64/64 versions (" in err and err.endswith("\r\x1b[K")


# -- hash assignment ------------------------------------------------------------------------------


def test_assign_hashes_prefers_current_then_newest_and_never_repeats_a_hash():
    # nothing collides: every re-parsed version takes its new hash
    assert assign_hashes({1: "a", 2: "b"}, {1: "x", 2: "y"}, 2) == ({1: "x", 2: "y"}, [])
    # two moving versions collapse: the current one takes the hash, the other keeps its own
    final, dups = assign_hashes({1: "a", 2: "b", 3: "c"}, {1: "z", 3: "z"}, 1)
    assert final == {1: "z", 3: "c"} and [(d.version, d.same_as, d.kept_hash) for d in dups] == [(3, 1, "c")]
    # a version that does not move keeps its hash against a newer one collapsing onto it
    final, dups = assign_hashes({1: "a", 2: "b"}, {1: "a", 2: "a"}, 2)
    assert final == {1: "a", 2: "b"} and [(d.version, d.same_as) for d in dups] == [(2, 1)]
    # a chain: 2 takes 1's old hash while 1 moves on
    assert assign_hashes({1: "a", 2: "b"}, {1: "c", 2: "a"}, 2) == ({1: "c", 2: "a"}, [])
    # both the new and the stored hash are taken: a derived hash no crawl can produce
    final, dups = assign_hashes({1: "a", 2: "b", 3: "c"}, {1: "b", 3: "a"}, 3)
    assert final[3] == "a" and final[1] not in {"a", "b", "c"} and len(final[1]) == 64
    assert len(set(final.values()) | {"b"}) == 3 and dups[0].same_as == 2


@pytest.mark.parametrize("command", ["reparse", "browse"])
def test_command_help_has_an_example(capsys, monkeypatch, command):
    monkeypatch.setattr(cli, "build_parser", parser_with_reparse)
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.split("example:\n", 1)[1].splitlines()[0].strip().startswith(f"defwatch {command} --db ")
    assert "--db PATH" in out
