"""Change detection reads in one place: ``monitor`` decides, ``db`` answers the questions it asks.

The decision of which fetch of a page decides a run is a pure function here; the modules that
decide hold no SQL, and every question ``db`` answers for them says what it answers.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from core.config import MonitorConfig
from core.fetch import FetchInfo
from core.records import Story
from db import events, page_history, runs
from db.archive import Archive
from db.runs import SubjectFetch
from monitor.changes import decisive_fetches, detect_changes

ROOT = Path(__file__).resolve().parents[1]
DECIDING_MODULES = ("monitor/changes.py", "monitor/health.py")
SQL_WORDS = ("SELECT ", "UPDATE ", "INSERT ", "DELETE ")


def fetch(fetch_id: int, outcome: str, version: int | None = None, subject_id: int = 7,
          page_type: str = "story") -> SubjectFetch:
    return SubjectFetch(page_type, subject_id, outcome, "parsed" if version else None, version, "u", fetch_id,
                        f"2026-01-0{fetch_id}T00:00:00.000000Z")


def test_in_a_crawl_a_good_answer_beats_a_failed_retry_and_a_404_beats_a_block():
    ok, error, gone, blocked = fetch(1, "ok", 3), fetch(2, "error"), fetch(3, "not_found", subject_id=8), \
        fetch(4, "blocked", subject_id=8)
    assert decisive_fetches([ok, error, gone, blocked]) == [ok, gone]


def test_in_a_crawl_the_later_of_two_equal_answers_decides_and_pages_keep_their_first_order():
    photo, first, second = fetch(1, "ok", 2, page_type="photo"), fetch(2, "ok", 3), fetch(3, "not_modified", 4)
    assert decisive_fetches([photo, first, second]) == [photo, second]


def test_in_an_import_the_newest_capture_decides_whatever_it_answered():
    ok, gone = fetch(1, "ok", 3), fetch(2, "not_found")
    assert decisive_fetches([ok, gone], latest_wins=True) == [gone]
    assert decisive_fetches([ok, gone]) == [ok]


def test_a_page_that_answered_in_a_run_is_not_absent_for_a_404_in_the_same_run(tmp_path):
    """The same rule on a real archive: a page fetched twice in one run, once 200 and once 404 (in
    either order), stays live; were the 404 decisive, three such runs would confirm a removal."""
    archive = Archive.open(str(tmp_path / "a.db"))
    page = Story(id=501, kind="news-story", url="https://www.war.gov/a/501/", title="T", paragraphs=["P."],
                 body_text="P.")
    for outcomes in (("ok",), ("ok", "not_found"), ("not_found", "ok"), ("ok", "not_found")):
        run_id = archive.start_run("full", "s")
        for outcome in outcomes:
            info = FetchInfo(url="u", outcome=outcome, page_type="story", subject_id=501,
                             status=200 if outcome == "ok" else 404)
            archive.save_response(run_id, info, b"x" if outcome == "ok" else None, page if outcome == "ok" else None)
        archive.finish_run(run_id, "ok", {})
        detect_changes(archive.db, run_id, MonitorConfig(removal_confirm_runs=2))
    assert archive.db["stories"].get(501)["status"] == "live"
    assert not events.list_events(archive.db, kind="story_removed")


@pytest.mark.parametrize("path", DECIDING_MODULES)
def test_the_modules_that_decide_hold_no_sql(path):
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    calls = [node.func.attr for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]
    strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    assert not {"execute", "executemany", "executescript", "query"} & set(calls)
    assert not [s for s in strings if s.lstrip().upper().startswith(SQL_WORDS)]


@pytest.mark.parametrize("module", [events, page_history, runs], ids=lambda m: m.__name__)
def test_every_question_db_answers_says_what_it_answers(module):
    public = [f for name, f in inspect.getmembers(module, inspect.isfunction)
              if f.__module__ == module.__name__ and not name.startswith("_")]
    assert public
    assert [f.__name__ for f in public if not (inspect.getdoc(f) or "").strip()] == []
