"""The operational commands as users call them: parse, init, changes, sample-site, demo."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request

from core.config import Config, load_config
from defwatch.cli import main
from samplesite import render_page
from tests.conftest import ROOT, crawl_env, run_crawl

STORY_PATH = "/News/News-Stories/Article/Article/3610656/more-nations-meet-to-address-space-security/"
STORY_KEYS = ["type", "id", "kind", "url", "canonical_url", "title", "subtitle", "published", "updated", "byline",
              "authors", "organisation", "dateline", "paragraphs", "body_text", "images", "tags", "related",
              "spotlights", "extraction", "parser_version"]


def test_parse_a_saved_page_prints_the_story_record(tmp_path, capsys):
    page = tmp_path / "story.html"
    page.write_bytes(render_page(STORY_PATH)[2])
    assert main(["parse", str(page), "--url", "https://www.war.gov" + STORY_PATH, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert list(record) == STORY_KEYS
    assert (record["id"], record["kind"], len(record["images"])) == (3610656, "news-story", 4)


def test_parse_gives_an_error_record_and_exit_1_for_a_block_page(tmp_path, capsys):
    page = tmp_path / "denied.html"
    page.write_text("<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY><H1>Access Denied</H1>"
                    "You don't have permission to access this server.<P>Reference&#32;&#35;18.1</BODY></HTML>")
    assert main(["parse", str(page), "--url", "https://www.war.gov" + STORY_PATH]) == 1
    record = json.loads(capsys.readouterr().out)
    assert (record["type"], record["reason"]) == ("error", "block_page")


def test_parse_of_a_missing_file_or_an_off_site_url_is_a_usage_error(capsys):
    assert main(["parse", "/no/such/file.html"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["parse", "https://evil.example/x"]) == 2
    assert "not a page of the watched site" in capsys.readouterr().err


def test_init_writes_the_defaults_and_refuses_to_overwrite(tmp_path, capsys, monkeypatch):
    for name in [k for k in os.environ if k.startswith("DEFWATCH_")]:
        monkeypatch.delenv(name)
    target = tmp_path / "defwatch.toml"
    assert main(["init", "--path", str(target)]) == 0
    loaded = load_config(str(target), env={})
    assert loaded.db == Config().db and loaded.site == Config().site and loaded.jobs == Config().jobs
    assert main(["init", "--path", str(target)]) == 2
    assert "--force" in capsys.readouterr().err


def test_changes_json_keeps_its_contract_keys(site, tmp_path, capsys):
    db = tmp_path / "changes.db"
    env = crawl_env(tmp_path)
    assert run_crawl(db, site.base_url, env=env).returncode == 0
    site.set_title(3610656, "A new title")
    assert run_crawl(db, site.base_url, env=env).returncode == 0
    assert main(["changes", "--db", str(db), "--json", "--kind", "story_updated"]) == 0
    [event] = json.loads(capsys.readouterr().out)
    for key in ("id", "kind", "subject_type", "subject_id", "url", "title", "run_id", "detected_at",
                "changed_fields", "summary"):
        assert key in event
    assert (event["kind"], event["subject_id"], event["changed_fields"]) == ("story_updated", 3610656, ["title"])
    assert main(["changes", "--db", str(db), "--since", "yesterday"]) == 2
    assert main(["changes", "--db", str(db), "--kind", "story_exploded"]) == 2


def test_bad_site_option_is_refused(tmp_path, capsys):
    assert main(["crawl", "--db", str(tmp_path / "x.db"), "--site", "file:///etc"]) == 2
    assert main(["crawl", "--db", str(tmp_path / "x.db"), "--site", "http://127.0.0.1:1/News/"]) == 2
    assert not (tmp_path / "x.db").exists()


def test_sample_site_command_serves_the_site(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "defwatch", "sample-site", "--port", str(port)],
                              cwd=ROOT, env=crawl_env(tmp_path), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        body = b""
        for _ in range(100):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}{STORY_PATH}", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        assert b"More Nations Meet to Address Space Security" in body
    finally:
        server.terminate()
        server.wait(timeout=10)


# The test extras (pyproject's [test]): the demo is run with none of them importable, in every process
# it starts, as after the README's light install (`pip install -e .`).
TEST_ONLY = ("pytest", "hypothesis", "feedparser", "datasette", "scrapy_redis", "redis", "ruff")
NO_TEST_EXTRAS = f"""
import sys
class _TestExtrasAbsent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {TEST_ONLY!r}:
            raise ImportError(f"{{name}} is a test extra; the demo must run without it")
        return None
sys.meta_path.insert(0, _TestExtrasAbsent())
"""


def test_demo_runs_the_whole_mission_and_reports_measured_events(tmp_path):
    db = tmp_path / "demo.db"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(NO_TEST_EXTRAS, encoding="utf-8")
    env = crawl_env(tmp_path)
    env["PYTHONPATH"] = f"{hook}{os.pathsep}{env['PYTHONPATH']}"
    proc = subprocess.run([sys.executable, "-m", "defwatch", "demo", "--db", str(db)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for line in ("story_updated    [body]", "story_updated    [captions]", "image_updated    [caption]",
                 "related_added", "story_new", "story_removed"):
        assert line in out
    assert "mail received by the SMTP sink" in out and "+ The ministers agreed to meet again in 2024" in out
    assert "3342560" not in out.split("events recorded:")[1]  # the blocked story is not an event
    _check_what_did_not_alert(out, str(db))
    _check_next_steps(out, str(db))
    # the archive is all the demo (and the commands it suggests) leave behind: no config, -wal or lock
    assert sorted(p.name for p in tmp_path.iterdir()) == ["defwatch-test.toml", "demo.db", "hook"]


def _check_what_did_not_alert(out: str, db: str) -> None:
    """The demo's account of the quiet stories agrees with the archive's fetch rows and events."""
    import sqlite3

    section = out.split("== what did not alert, and why (read back from the archive):\n")[1].split("\n== ")[0]
    lines = {line.split(":")[0].removeprefix("  - story "): line for line in section.splitlines()}
    conn = sqlite3.connect(db)

    def fetched(story: int) -> list[tuple[int, int, str]]:
        return conn.execute("SELECT run_id, status, outcome FROM fetches WHERE subject_id = ? AND run_id > 1 "
                            "ORDER BY id", [story]).fetchall()

    def events(story: int) -> list[str]:
        return [k for (k,) in conn.execute("SELECT kind FROM events WHERE subject_id = ?", [story])]

    assert fetched(3342560) == [(2, 403, "blocked"), (3, 403, "blocked")] and events(3342560) == []
    assert "HTTP 403 on runs 2, 3 (access_denied)" in lines["3342560"] and lines["3342560"].endswith("no event")
    assert [row[2] for row in fetched(4016543)] == ["ok", "not_modified"] and events(4016543) == []
    assert "every fetch showed version 1, no event" in lines["4016543"]
    removed = conn.execute("SELECT run_id FROM events WHERE subject_id = 3298110 AND kind = 'story_removed'").fetchall()
    assert [row[:2] for row in fetched(3298110)] == [(2, 404), (3, 404)] and removed == [(3,)]
    assert "HTTP 404 on runs 2, 3" in lines["3298110"] and "on 2 runs (removal_confirm_runs)" in lines["3298110"]
    assert lines["3298110"].endswith("It is removed, with story_removed in run 3")
    conn.close()


def _check_next_steps(out: str, db: str) -> None:
    """Every analyst command the demo suggests works on the archive it left (but browse, a server)."""
    steps = out.split("next, read it as an analyst would:\n")[1].splitlines()
    commands = [line.strip().removeprefix("defwatch ") for line in steps if line.startswith("  defwatch ")]
    assert len(commands) >= 6 and all(command.endswith(f"--db {db}") for command in commands[:-1])
    for command in commands[:-1]:
        proc = subprocess.run([sys.executable, "-m", "defwatch", *shlex.split(command)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0 and proc.stdout, (command, proc.stderr)


def test_a_crawl_that_reaches_nothing_fails_with_exit_1(tmp_path):
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = run_crawl(tmp_path / "down.db", f"http://127.0.0.1:{port}", "discover", env=crawl_env(tmp_path))
    assert run.returncode == 1 and run.summary["status"] == "failed"


# -- start-up: a command imports what it needs ----------------------------------------------------

LOADED = """
import json, sys
from defwatch.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps([code, sorted(sys.modules)]))
"""
HEAVY = ("scrapy", "twisted", "jinja2", "lxml", "redis", "monitor")


def loaded_modules(tmp_path, *argv: str) -> set[str]:
    """The modules a real ``defwatch ARGV`` process has imported when it is done."""
    proc = subprocess.run([sys.executable, "-c", LOADED, *argv], cwd=ROOT, env=crawl_env(tmp_path),
                          capture_output=True, text=True, timeout=60, check=False)
    code, modules = json.loads(proc.stdout.splitlines()[-1])
    assert code == 0, (argv, proc.stderr)
    return set(modules)


def tops(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_command_modules_table_names_every_command_of_every_module():
    import argparse
    import importlib

    from defwatch.cli import COMMAND_MODULES, MODULES

    found = {}
    for name in MODULES:
        commands = argparse.ArgumentParser().add_subparsers()
        for register in importlib.import_module(f"defwatch.{name}").REGISTRY:
            register(commands)
        found |= dict.fromkeys(commands.choices, name)
    assert found == COMMAND_MODULES


def test_help_changes_and_search_import_no_crawler_scheduler_or_template_engine(tmp_path):
    db = tmp_path / "empty.db"
    from db.schema import connect

    connect(str(db)).conn.close()
    help_modules = loaded_modules(tmp_path, "--help")
    assert not tops(help_modules) & {*HEAVY, "sqlite_utils", "apscheduler"}, sorted(help_modules)
    changes = loaded_modules(tmp_path, "changes", "--db", str(db))
    assert not tops(changes) & set(HEAVY), sorted(changes)
    assert not {"defwatch.analyst_commands", "defwatch.distributed_commands", "core.records"} & changes
    search = loaded_modules(tmp_path, "search", "budget", "--db", str(db))
    assert not tops(search) & set(HEAVY), sorted(search)
    assert not {"defwatch.distributed_commands", "defwatch.reparse_commands"} & search
