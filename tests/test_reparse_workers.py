"""`defwatch reparse` parsing in a process pool gives exactly what one process gives: report and rows.

Two copies of the shared scenario archive (tests/test_reparse.py: two real crawls of the sample
site) get the same damage: a tampered paragraph and caption (changed), a page that no longer parses
(failed), a version whose raw page now reads like another version's (duplicate), an old parser stamp
(restamped). One copy is re-parsed in this process, the other by two worker processes in small
batches (many tasks, subjects split across them); every version row, current-state row, tag and
full-text entry must then be the same.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest

import crawler.reparse
from crawler.reparse import reparse_archive
from db.schema import connect
from tests.test_reparse import EDITED, OTHER, PHOTO, copy_archive, reparse_json, run, scenario_archive, tamper_story

BLOCKED = b"<html><head><title>Access Denied</title></head><body>You don't have permission to access</body></html>"
TABLES = {  # what a re-parse may write, each in a stable order
    "story_versions": "id", "image_versions": "id", "stories": "id", "images": "media_id",
    "tags": "story_id, name", "stories_fts": "rowid",
}
TIMING = ("elapsed_s", "pages_per_second", "workers")


def damage(db: Path) -> None:
    """The same wrong rows in every copy: one of each outcome the report counts."""
    tamper_story(db, EDITED, 2, 1, "A paragraph an older parser misread.")
    conn = sqlite3.connect(db)
    with conn:
        photo = conn.execute("SELECT id, record FROM image_versions WHERE media_id = ? AND version = 1",
                             (PHOTO,)).fetchone()
        conn.execute("UPDATE image_versions SET record = ?, caption = 'wrong' WHERE id = ?",
                     (json.dumps({**json.loads(photo[1]), "caption": "wrong"}), photo[0]))
        v1, v2 = conn.execute("SELECT raw_sha256, id FROM story_versions WHERE story_id = ? ORDER BY version",
                              (EDITED,)).fetchall()
        conn.execute("UPDATE story_versions SET raw_sha256 = ? WHERE id = ?", (v1[0], v2[1]))
        sha = conn.execute("SELECT raw_sha256 FROM story_versions WHERE story_id = ?", (OTHER,)).fetchone()[0]
        conn.execute("UPDATE raw_pages SET content = ? WHERE sha256 = ?", (zlib.compress(BLOCKED), sha))
        conn.execute("UPDATE story_versions SET parser_version = '0.9.0' WHERE story_id != ?", (OTHER,))
    conn.close()


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(db)
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
                for table, order in TABLES.items()}
    finally:
        conn.close()


def reparsed(db: Path, **kwargs: Any) -> dict[str, Any]:
    conn = connect(str(db))
    try:
        return reparse_archive(conn, **kwargs).as_json()
    finally:
        conn.conn.close()


@pytest.fixture
def twins(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> tuple[Path, Path]:
    source = scenario_archive(tmp_path_factory)
    pair = copy_archive(source, tmp_path / "one.db"), copy_archive(source, tmp_path / "pool.db")
    for db in pair:
        damage(db)
    return pair


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_pool_gives_the_same_report_and_rows_as_one_process(twins, dry_run):
    one_db, pool_db = twins
    before = dump(one_db)
    assert dump(pool_db) == before

    one = reparsed(one_db, dry_run=dry_run)
    pool = reparsed(pool_db, dry_run=dry_run, workers=2, batch_versions=5)

    assert (one["workers"], pool["workers"]) == (1, 2)  # the pool really parsed
    assert {k: v for k, v in pool.items() if k not in TIMING} == {k: v for k, v in one.items() if k not in TIMING}
    assert (one["changed"], one["failed"], len(one["duplicates"])) == (2, 1, 1)  # every kind of outcome was seen
    assert one["restamped"] > 0 and one["reparsed"] == len(before["story_versions"]) + len(before["image_versions"])
    after = dump(one_db)
    assert dump(pool_db) == after
    assert (after == before) is dry_run  # a real run wrote the fixes, a dry run nothing


def test_a_selection_smaller_than_a_batch_is_parsed_in_process(twins):
    report = reparsed(twins[1], workers=2, subject_id=EDITED)
    assert (report["workers"], report["reparsed"]) == (1, 2)


def test_cli_workers_option(capsys, monkeypatch, twins):
    monkeypatch.setattr(crawler.reparse, "BATCH_VERSIONS", 8)
    one = reparse_json(capsys, monkeypatch, twins[0], "--dry-run", "--workers", "1")
    pool = reparse_json(capsys, monkeypatch, twins[1], "--dry-run", "--workers", "2")
    assert (one["workers"], pool["workers"]) == (1, 2)
    assert {k: v for k, v in pool.items() if k not in TIMING} == {k: v for k, v in one.items() if k not in TIMING}
    code, out, _ = run(capsys, monkeypatch, twins[1], "reparse", "--workers", "2")
    assert code == 0 and out.splitlines()[0].endswith("pages/s), parsed by 2 processes")
    code, _, err = run(capsys, monkeypatch, twins[1], "reparse", "--workers", "0")
    assert (code, err) == (2, "defwatch: --workers must be 1 or more, not 0\n")
