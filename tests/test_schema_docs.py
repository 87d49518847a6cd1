"""docs/ARCHIVE.md cannot drift: its schema block is the generator's output, its SQL and commands run.

The ten questions run against the shared scenario archive of tests/test_reparse.py (two real crawls
of the sample site: story 3610656 edited, story 3386221 removed).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sqlite3
from pathlib import Path
from types import ModuleType

import pytest

from db.schema import connect
from defwatch import cli
from defwatch.browse import archive_tables
from tests.conftest import ROOT
from tests.test_reparse import EDITED, REMOVED, copy_archive, parser_with_reparse, scenario_archive

DOC = ROOT / "docs" / "ARCHIVE.md"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("schema_docs", ROOT / "scripts" / "schema_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


schema_docs = load_script()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("docs") / "archive.db"
    return copy_archive(scenario_archive(tmp_path_factory), target)


def questions() -> list[tuple[str, str, list[str]]]:
    """(heading, sql, commands) of each "### N." section under "## Ten questions"."""
    text = DOC.read_text(encoding="utf-8").split("## Ten questions", 1)[1]
    found = []
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        heading = section.splitlines()[0]
        sql = re.findall(r"```sql\n(.*?)```", section, flags=re.S)
        shells = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
        assert len(sql) == 1 and len(shells) == 1, heading
        found.append((heading, sql[0], [line for line in shells[0].splitlines() if line.strip()]))
    return found


# -- the generated reference ------------------------------------------------------------------------


def test_doc_block_is_the_generators_output():
    block = schema_docs.extract_block(DOC.read_text(encoding="utf-8"))
    assert block == schema_docs.render(), "run: python scripts/schema_docs.py --write docs/ARCHIVE.md"


def test_reference_lists_every_table_and_column_of_a_fresh_archive(tmp_path):
    rendered = schema_docs.render()
    db = connect(str(tmp_path / "fresh.db"))
    tables = archive_tables(db)
    assert {"runs", "fetches", "stories", "story_versions", "events", "outbox", "stories_fts"} <= set(tables)
    assert not [t for t in tables if t.startswith("stories_fts_")]  # FTS internals are not documented
    headings = re.findall(r"^### `(\w+)`$", rendered, flags=re.M)
    assert headings == tables
    for table in tables:
        section = rendered.split(f"### `{table}`\n", 1)[1].split("\n### ", 1)[0]
        rows = re.findall(r"^\| `(\w+)` \|", section, flags=re.M)
        assert rows == [r[1] for r in db.execute(f"PRAGMA table_info({table})").fetchall()], table
    db.conn.close()
    assert "| `mode` | TEXT | not null | discover \\| revisit \\| sweep \\| full |" in rendered
    assert "| `run_id` | INTEGER | not null, → `runs(id)` | the run (runs.id) |" in rendered
    assert "Indexes: `(fetched_at)`, `(page_type, subject_id, id)`, `(run_id)`, `UNIQUE (source_key)`." in rendered


def test_write_and_check_keep_the_text_around_the_block(tmp_path):
    stale = tmp_path / "ARCHIVE.md"
    stale.write_text(f"intro\n\n{schema_docs.START}\nold\n{schema_docs.END}\n\nafter\n", encoding="utf-8")
    assert schema_docs.main(["--check", str(stale)]) == 1
    assert schema_docs.main(["--write", str(stale)]) == 0
    text = stale.read_text(encoding="utf-8")
    assert text.startswith("intro\n\n<!-- schema:start -->\n<!-- generated") and text.endswith("-->\n\nafter\n")
    assert schema_docs.main(["--check", str(stale)]) == 0


# -- the ten questions ------------------------------------------------------------------------------


def test_there_are_ten_questions_each_with_sql_and_a_command():
    found = questions()
    assert [heading.split(".")[0] for heading, _, _ in found] == [str(n) for n in range(1, 11)]
    assert all(commands and all(c.startswith("defwatch ") for c in commands) for _, _, commands in found)


def test_every_question_sql_executes_and_answers(archive):
    conn = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
    answers = {}
    for heading, sql, _ in questions():
        cursor = conn.execute(sql)
        columns = [c[0] for c in cursor.description]
        answers[heading.split(".")[0]] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    conn.close()
    assert (EDITED, "story_updated") in {(r["story_id"], r["kind"]) for r in answers["1"]}  # crawled this week
    assert [(r["id"], r["status"]) for r in answers["3"]] == [(REMOVED, "removed")]
    assert [r["credit"] for r in answers["4"]] == ["Justin Pacheco, Air Force"]
    assert {r["virin_branch"]: r["images"] for r in answers["5"]} == {"Air Force": 1, "Space Force": 1}
    assert [(r["id"], r["versions"]) for r in answers["6"]] == [(EDITED, 2)]
    assert EDITED in {r["related_id"] for r in answers["7"]}
    assert answers["8"][0]["id"] == EDITED
    assert [(r["run"], r["requests"], r["blocked"]) for r in answers["9"]] == [(2, 75, 0), (1, 75, 0)]
    # run 2: every request but the two changed stories and the two index pages the removal changed
    # (the news listing and the news feed) was answered 304
    assert [(r["run_id"], r["not_modified"]) for r in answers["10"]] == [(2, 75 - 2 - 2), (1, 0)]


def test_every_question_command_runs(capsys, monkeypatch, archive):
    monkeypatch.setattr(cli, "build_parser", parser_with_reparse)
    for heading, _, commands in questions():
        for command in commands:
            argv = shlex.split(command.split(" | ", 1)[0])[1:]
            code = cli.main([*argv, "--db", str(archive)])
            out, err = capsys.readouterr()
            assert code == 0, (heading, command, err)
            assert out.strip() or err.strip(), (heading, command)
