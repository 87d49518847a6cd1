"""`defwatch browse`: Datasette over a crawled archive, with our metadata and canned queries.

The Datasette instance is built in-process with exactly the metadata `defwatch browse` serves and
queried through its ASGI test client; one test also launches the real server in a child process.
The archive is the shared scenario of tests/test_reparse.py (baseline crawl, then an edited story
3610656 and a removed story 3386221).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from db.schema import SCHEMA_TEXT
from defwatch import cli
from defwatch.browse import (
    CANNED_QUERIES,
    COLUMN_NOTES,
    FTS_TABLES,
    TABLE_PURPOSES,
    database_name,
    datasette_metadata,
    schema_comments,
    serve_args,
)
from samplesite import Site
from tests.conftest import ROOT, crawl_env
from tests.test_reparse import EDITED, REMOVED, copy_archive, parser_with_reparse, scenario_archive

NEW_EVENT = ("story_updated", "story", 4190050, "Updated (title): written while Datasette was open")


@pytest.fixture
def archive(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return copy_archive(scenario_archive(tmp_path_factory), tmp_path / "archive.db")


@pytest.fixture
def datasette_app(archive: Path) -> Any:
    app = pytest.importorskip("datasette.app")
    return app.Datasette([str(archive)], metadata=datasette_metadata(archive))


def get_all(ds: Any, *paths: str) -> list[Any]:
    """GET each path through Datasette's ASGI client, in one event loop; JSON bodies decoded."""
    async def fetch() -> list[Any]:
        found = []
        for path in paths:
            response = await ds.client.get(path)
            assert response.status_code == 200, (path, response.text[:500])
            found.append(response.json() if ".json" in path else response.text)
        return found

    return asyncio.run(fetch())


def query(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# -- canned queries ---------------------------------------------------------------------------------


def test_latest_changes_newest_first(datasette_app, archive):
    (rows,) = get_all(datasette_app, "/archive/latest_changes.json?_shape=array")
    assert {(r["kind"], r["subject_id"]) for r in rows} == {("story_updated", EDITED), ("story_removed", REMOVED)}
    stamps = [(r["detected_at"], r["id"]) for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    updated = next(r for r in rows if r["kind"] == "story_updated")
    assert json.loads(updated["changed_fields"]) == ["body"]
    assert (updated["from_version"], updated["to_version"]) == (1, 2)


def test_story_history_lists_versions(datasette_app):
    (rows,) = get_all(datasette_app, f"/archive/story_history.json?_shape=array&id={EDITED}")
    assert [(r["version"], r["first_run_id"]) for r in rows] == [(1, 1), (2, 2)]
    assert rows[0]["title"] == "More Nations Meet to Address Space Security" and len(rows[0]["hash"]) == 12
    (none,) = get_all(datasette_app, "/archive/story_history.json?_shape=array&id=1")
    assert none == []


def test_ranked_search_with_snippets(datasette_app):
    falcon, space, empty = get_all(datasette_app, "/archive/search.json?_shape=array&q=FalconSAT",
                                   "/archive/search.json?_shape=array&q=space",
                                   "/archive/search.json?_shape=array&q=")
    assert [r["id"] for r in falcon] == [EDITED]
    assert "**FalconSAT**" in falcon[0]["snippet"]
    ranks = [r["rank"] for r in space]
    assert len(space) > 3 and ranks == sorted(ranks) and all(rank < 0 for rank in ranks)
    assert "space" in space[0]["title"].lower()  # title matches weigh most
    assert empty == []  # an empty form is no query, not an FTS syntax error


def test_table_search_box_uses_the_fts_index(datasette_app):
    rows, page = get_all(datasette_app, "/archive/stories.json?_search=FalconSAT&_shape=array&_col=title",
                         "/archive/stories")
    assert [r["id"] for r in rows] == [EDITED]
    assert 'name="_search"' in page  # the search box is offered


def test_removed_stories(datasette_app):
    (rows,) = get_all(datasette_app, "/archive/removed_stories.json?_shape=array")
    assert [(r["id"], r["status"]) for r in rows] == [(REMOVED, "removed")]
    assert rows[0]["removed_at"] and rows[0]["title"] == "Navy Christens Newest Expeditionary Sea Base"


def test_frontier_queries_show_the_archives_frontier(datasette_app, archive):
    overview, upcoming = get_all(datasette_app, "/archive/frontier.json?_shape=array",
                                 "/archive/frontier_next.json?_shape=array&_size=max")
    pages = query(archive, "SELECT COUNT(*) FROM frontier")[0][0]
    archived = query(archive, "SELECT (SELECT COUNT(*) FROM stories) + (SELECT COUNT(*) FROM images"
                              " WHERE source = 'photo_page')")[0][0]
    assert pages == archived > 0  # every archived story and photo page is in the frontier
    assert overview[0]["pages"] == pages
    assert overview[0]["requests_last_hour"] == query(archive, "SELECT COUNT(*) FROM fetches")[0][0]
    assert overview[0]["oldest_verified_at"] == query(archive, "SELECT MIN(verified_at) FROM frontier")[0][0]
    assert len(upcoming) == pages
    order = [(-r["urgency"], r["due_at"]) for r in upcoming]
    assert order == sorted(order)


def test_virin_counts_by_branch_and_month(datasette_app, archive):
    (rows,) = get_all(datasette_app, "/archive/virin_by_branch_month.json?_shape=array&_size=max")
    expected = Counter(query(archive, "SELECT virin_branch, substr(virin_shot_date, 1, 7) FROM images"
                                      " WHERE virin IS NOT NULL"))
    assert {(r["branch"], r["shot_month"]): r["images"] for r in rows} == dict(expected)
    assert {r["shot_month"] for r in rows if r["branch"] == "Space Force"} >= {"2023-01", "2023-08"}
    assert all(r["code"] == "X" for r in rows if r["branch"] == "Space Force")
    months = [r["shot_month"] for r in rows]
    assert months == sorted(months, reverse=True)


def test_related_graph_edges_match_the_sample_site(datasette_app):
    (rows,) = get_all(datasette_app, "/archive/related_graph.json?_shape=array&_size=max")
    stories = Site().content.stories
    expected = {(story_id, related) for story_id, story in stories.items() for related in story["related"]}
    assert {(r["story_id"], r["related_id"]) for r in rows} == expected
    edge = next(r for r in rows if (r["story_id"], r["related_id"]) == (3599817, EDITED))
    assert (edge["related_title"], edge["related_archived"]) == ("More Nations Meet to Address Space Security", 1)
    assert edge["story_title"] == stories[3599817]["title"]


# -- metadata ---------------------------------------------------------------------------------------


def test_metadata_describes_tables_and_columns_from_the_schema_comments(datasette_app, archive):
    (page,) = get_all(datasette_app, "/archive/stories")
    assert "The current state of every archived story" in page
    assert "<dt>id</dt><dd>the article id: identity never depends on the host</dd>" in page
    meta = datasette_metadata(archive)
    tables = meta["databases"][database_name(archive)]["tables"]
    comments = schema_comments()
    for table, said in comments.items():
        for column, comment in said["columns"].items():
            assert tables[table]["columns"][column] == comment  # the schema's words, verbatim
    assert tables["stories"]["fts_table"] == "stories_fts" and tables["stories"]["fts_pk"] == "id"
    assert all(tables[t]["description"] for t in tables)
    assert set(meta["databases"]["archive"]["queries"]) == set(CANNED_QUERIES) == {
        "latest_changes", "story_history", "search", "removed_stories", "virin_by_branch_month", "related_graph",
        "frontier", "frontier_next"}


def test_fallback_notes_name_real_tables_and_columns(archive):
    """A note for a column that does not exist would be a description drifting from the schema."""
    conn = sqlite3.connect(archive)
    tables = {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in TABLE_PURPOSES}
    conn.close()
    assert all(tables[t] for t in TABLE_PURPOSES)  # every described table exists
    every_column = set().union(*tables.values())
    for key in COLUMN_NOTES:
        table, _, column = key.rpartition(".")
        assert column in (tables[table] if table else every_column), key
    assert set(schema_comments(SCHEMA_TEXT)) | set(FTS_TABLES) == set(TABLE_PURPOSES)  # every table has a purpose


# -- live archive -----------------------------------------------------------------------------------


def test_another_connection_writes_while_datasette_is_open(datasette_app, archive):
    async def scenario() -> tuple[list, list]:
        before = (await datasette_app.client.get("/archive/latest_changes.json?_shape=array")).json()
        writer = sqlite3.connect(archive, timeout=1)  # no waiting: Datasette must hold no lock
        with writer:
            writer.execute("INSERT INTO events (run_id, kind, subject_type, subject_id, summary, detected_at) "
                           "VALUES (2, ?, ?, ?, ?, '2099-01-01T00:00:00.000000Z')", NEW_EVENT)
        writer.close()
        after = (await datasette_app.client.get("/archive/latest_changes.json?_shape=array")).json()
        return before, after

    before, after = asyncio.run(scenario())
    assert len(after) == len(before) + 1
    assert (after[0]["kind"], after[0]["subject_type"], after[0]["subject_id"], after[0]["summary"]) == NEW_EVENT


def test_serve_args_never_open_the_archive_immutable():
    args = serve_args("/data/defwatch.db", "/tmp/m.json", "127.0.0.1", 8001)
    assert args[:2] == ["serve", "/data/defwatch.db"]
    assert "-i" not in args and "--immutable" not in args and "--nolock" not in args
    assert args[args.index("--metadata") + 1] == "/tmp/m.json"


def test_browse_serves_the_archive_over_http(archive, tmp_path):
    pytest.importorskip("datasette")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = crawl_env(tmp_path)
    code = ("import sys; from defwatch.browse import serve; "
            "sys.exit(serve(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2])))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(archive), str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rows = _get_json(f"http://127.0.0.1:{port}/archive/search.json?_shape=array&q=FalconSAT", proc)
        assert [r["id"] for r in rows] == [EDITED]
        writer = sqlite3.connect(archive, timeout=1)
        with writer:
            writer.execute("UPDATE stories SET title = 'Retitled while served' WHERE id = ?", (EDITED,))
        writer.close()
        rows = _get_json(f"http://127.0.0.1:{port}/archive/stories.json?_shape=array&id={EDITED}&_col=title", proc)
        assert rows[0]["title"] == "Retitled while served"  # a mutable database: no stale cache
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def _get_json(url: str, proc: subprocess.Popen, wait: float = 15.0) -> Any:
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
                return json.loads(response.read())
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                _, err = proc.communicate(timeout=5) if proc.poll() is not None else ("", "timed out")
                raise AssertionError(f"datasette did not answer: {err}") from None
            time.sleep(0.1)


def test_missing_datasette_is_exit_2_with_the_install_hint(capsys, monkeypatch, archive):
    monkeypatch.setitem(sys.modules, "datasette.cli", None)  # import now raises ImportError
    monkeypatch.setattr(cli, "build_parser", parser_with_reparse)
    code = cli.main(["browse", "--db", str(archive)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == "defwatch: Datasette is not installed; pip install defwatch[browse]\n"
    assert cli.main(["browse", "--db", str(archive.parent / "none.db")]) == 2
    assert "no archive at" in capsys.readouterr().err
