"""What a new user hits first, through the CLI, on an archive made by real crawls of the sample site.

Three ``defwatch crawl`` child processes: a baseline, then (after a paragraph of story 3610656 is
rewritten with hyphenated words and an apostrophe, the caption of its image changed and story
3298110 removed) two more, the second confirming the removal. The commands then run in-process
(``defwatch.cli.main``) or, where a process's end matters (a closed pipe, a signal), as children.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from defwatch.cli import main
from samplesite import SampleSite
from tests.conftest import ROOT, crawl_env, run_crawl

EDITED = 3610656
EDITED_IMAGE = 2003354108
REMOVED = 3298110
NEW_TEXT = ("Officials discussed the U.S.-Japan alliance, the Navy's counter-drone work and exercises across "
            "the Indo-Pacific.")
NEW_CAPTION = "Space leaders meet in Berlin to plan the next decade."
WAR_URL = f"https://www.war.gov/News/News-Stories/Article/Article/{EDITED}/more-nations-meet-to-address-space-security/"
DEFENSE_URL = f"https://www.defense.gov/News/News-Stories/Article/Article/{EDITED}/"
PHOTO_URL = f"https://www.war.gov/Multimedia/Photos/igphoto/{EDITED_IMAGE}/"
READ_COMMANDS = (("search", "navy"), ("show", str(EDITED)), ("history", str(EDITED)), ("diff", str(EDITED)),
                 ("images",), ("export", "--format", "csv"), ("stats",), ("changes",), ("alerts", "list"))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("usability")
    db = tmp / "archive.db"
    env = crawl_env(tmp)
    with SampleSite() as site:
        old_paragraph = site.content.story(EDITED)["body"][2]["html"]
        old_caption = site.content.image(EDITED_IMAGE)["caption"]
        first = run_crawl(db, site.base_url, env=env)
        assert first.returncode == 0, first.stderr
        site.edit_paragraph(EDITED, 1, NEW_TEXT)
        site.set_caption(EDITED_IMAGE, NEW_CAPTION)
        site.remove(REMOVED, status=404)
        for _ in range(2):
            later = run_crawl(db, site.base_url, env=env)
            assert later.returncode == 0, later.stderr
    conn = sqlite3.connect(db)
    runs = conn.execute("SELECT id, started_at, ended_at FROM runs ORDER BY id").fetchall()
    conn.close()
    return {"db": str(db), "old_paragraph": old_paragraph, "old_caption": old_caption, "runs": runs}


def cli(capsys: pytest.CaptureFixture[str], db: str, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--db", db])
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], db: str, *argv: str):
    code, out, err = cli(capsys, db, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def stories_text(db: str) -> dict[int, str]:
    """Every story's searchable text, read straight from the table: the oracle for search."""
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, title, subtitle, body_text, captions FROM stories").fetchall()
    conn.close()
    return {row[0]: " | ".join(part or "" for part in row[1:]) for row in rows}


# -- search: plain words ----------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "pattern"), [
    ("Indo-Pacific", r"\bindo\W+pacific\b"),
    ("counter-drone", r"\bcounter\W+drones?\b"),
    ("Navy's", r"\bnavy['’]s\b"),  # the tokenizer splits at either apostrophe
    ("U.S.-Japan", r"\bu\W+s\W+japan\b"),
])
def test_plain_words_search_for_themselves(capsys, archive, query, pattern):
    hits = cli_json(capsys, archive["db"], "search", query, "--limit", "100")
    expected = {sid for sid, text in stories_text(archive["db"]).items() if re.search(pattern, text, re.I)}
    assert EDITED in expected  # the edited paragraph carries every one of them
    assert {h["id"] for h in hits} == expected
    code, out, err = cli(capsys, archive["db"], "search", query)
    assert code == 0 and err == "" and str(EDITED) in out


def test_every_word_must_match_and_quotes_keep_a_phrase(capsys, archive):
    both = {h["id"] for h in cli_json(capsys, archive["db"], "search", "Navy's Indo-Pacific", "--limit", "100")}
    assert EDITED in both
    texts = stories_text(archive["db"])
    assert both == {sid for sid, t in texts.items()
                    if re.search(r"\bnavy['’]s\b", t, re.I) and re.search(r"\bindo\W+pacific\b", t, re.I)}
    phrase = {h["id"] for h in cli_json(capsys, archive["db"], "search", '"Japan alliance"', "--limit", "100")}
    assert phrase == {sid for sid, t in texts.items() if re.search(r"\bjapan\W+alliance\b", t, re.I)} == {EDITED}


def test_trailing_star_is_a_prefix_search(capsys, archive):
    prefix = {h["id"] for h in cli_json(capsys, archive["db"], "search", "counter-dr*", "--limit", "100")}
    expected = {sid for sid, t in stories_text(archive["db"]).items() if re.search(r"\bcounter\W+dr", t, re.I)}
    assert prefix == expected and EDITED in prefix
    assert cli_json(capsys, archive["db"], "search", "Indo-Pac*", "--limit", "100") != []


@pytest.mark.parametrize("query", ["", "   ", "-", "'*'"])
def test_a_query_without_words_is_one_clear_line(capsys, archive, query):
    code, out, err = cli(capsys, archive["db"], "search", query)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("defwatch: search needs at least one word")


def test_fts_syntax_only_behind_fts(capsys, archive):
    code, _, err = cli(capsys, archive["db"], "search", "--fts", "Indo-Pacific")  # FTS5 reads "-" as syntax
    assert code == 2 and "no such column" in err and err.count("\n") == 1
    either = {h["id"] for h in cli_json(capsys, archive["db"], "search", "--fts", "title:navy OR title:army",
                                        "--limit", "100")}
    conn = sqlite3.connect(archive["db"])
    expected = {sid for sid, title in conn.execute("SELECT id, title FROM stories")
                if re.search(r"\b(navy|army)\b", title, re.I)}
    conn.close()
    assert either == expected and len(either) >= 2
    # typed without --fts, the operator is a word like any other, and the user is told about --fts
    code, out, err = cli(capsys, archive["db"], "search", "title:navy OR title:zzzz")
    assert code == 0 and out == "" and "--fts" in err


# -- search: status and past versions ---------------------------------------------------------------


def test_hits_say_a_story_is_removed(capsys, archive):
    hits = cli_json(capsys, archive["db"], "search", "recruiting pilot")
    removed = [h for h in hits if h["id"] == REMOVED]
    assert removed and removed[0]["status"] == "removed" and removed[0]["removed_at"]
    live = cli_json(capsys, archive["db"], "search", "Indo-Pacific")
    assert all(h["status"] == "live" and h["removed_at"] is None for h in live)
    code, out, _ = cli(capsys, archive["db"], "search", "recruiting pilot")
    line = next(x for x in out.splitlines() if x.split()[:1] == [str(REMOVED)])
    assert re.search(r"  \[removed \d{4}-\d\d-\d\d\]$", line)


def test_all_versions_finds_text_edited_out(capsys, archive):
    words = "welcomed three new members"
    assert archive["old_paragraph"].count(words) == 1
    assert cli_json(capsys, archive["db"], "search", words) == []  # gone from the current text
    hits = cli_json(capsys, archive["db"], "search", words, "--all-versions")
    assert [(h["id"], h["version"], h["current"], h["current_version"]) for h in hits] == [(EDITED, 1, False, 2)]
    history = cli_json(capsys, archive["db"], "history", str(EDITED))
    v1 = history["versions"][0]
    assert (hits[0]["first_seen"], hits[0]["last_seen"]) == (v1["first_seen"], v1["last_seen"])
    assert "**welcomed**" in hits[0]["snippet"]
    code, out, _ = cli(capsys, archive["db"], "search", words, "--all-versions")
    assert code == 0
    assert re.search(r"version 1, not current \(now version 2\); seen \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \.\. ", out)
    # the current text is found once, as the current version
    now = cli_json(capsys, archive["db"], "search", "Japan alliance", "--all-versions")
    assert [(h["id"], h["version"], h["current"]) for h in now] == [(EDITED, 2, True)]
    # a word only the edited-out caption had is found too, in version 1 only
    current = stories_text(archive["db"])[EDITED].lower()
    gone = sorted(w for w in re.findall(r"[A-Za-z]{5,}", archive["old_caption"]) if w.lower() not in current)
    assert gone, archive["old_caption"]
    hits = cli_json(capsys, archive["db"], "search", gone[0], "--all-versions", "--limit", "100")
    assert (EDITED, 1, False) in {(h["id"], h["version"], h["current"]) for h in hits}
    assert EDITED not in {h["id"] for h in cli_json(capsys, archive["db"], "search", gone[0], "--limit", "100")}


def test_migration_indexes_past_versions_of_an_older_archive(capsys, archive, tmp_path):
    """An archive from before the past-versions index: read as it is, then indexed on the next open for writing."""
    from db.schema import connect

    old = tmp_path / "old.db"
    old.write_bytes(Path(archive["db"]).read_bytes())
    conn = sqlite3.connect(old)
    conn.executescript("DROP TRIGGER story_versions_fts_retire; DROP TRIGGER story_versions_fts_reparse;"
                       "DROP TABLE story_versions_fts; PRAGMA user_version = 7;")  # the step before the index
    conn.close()
    before = hashlib.sha256(old.read_bytes()).hexdigest()
    code, out, err = cli(capsys, str(old), "search", "welcomed three new members", "--all-versions")
    assert (code, out) == (2, "") and "no index of past versions" in err
    assert cli_json(capsys, str(old), "search", "Indo-Pacific") != []  # plain search reads it as it is
    assert hashlib.sha256(old.read_bytes()).hexdigest() == before  # nothing migrated by a reader
    connect(str(old)).conn.close()  # what the next crawl does first
    hits = cli_json(capsys, str(old), "search", "welcomed three new members", "--all-versions")
    assert [(h["id"], h["version"], h["current"]) for h in hits] == [(EDITED, 1, False)]


# -- lookups ----------------------------------------------------------------------------------------


def test_urls_work_wherever_an_id_does(capsys, archive):
    db = archive["db"]
    for command in ("show", "history"):
        by_id = cli_json(capsys, db, command, str(EDITED))
        assert cli_json(capsys, db, command, WAR_URL) == by_id
        assert cli_json(capsys, db, command, DEFENSE_URL) == by_id
        assert cli_json(capsys, db, command, DEFENSE_URL.removeprefix("https://")) == by_id
    assert cli(capsys, db, "diff", WAR_URL)[1] == cli(capsys, db, "diff", str(EDITED))[1]
    image = cli_json(capsys, db, "show", PHOTO_URL)
    assert image["media_id"] == EDITED_IMAGE and image == cli_json(capsys, db, "show", "--image", str(EDITED_IMAGE))
    code, out, err = cli(capsys, db, "history", PHOTO_URL)
    assert (code, out) == (2, "") and f"show --image {EDITED_IMAGE}" in err
    code, out, err = cli(capsys, db, "show", "https://www.war.gov/About/")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "neither a story id nor" in err


def test_show_at_a_date_is_the_version_current_then(capsys, archive):
    db = archive["db"]
    (_, run1_start, run1_end), (_, run2_start, _), _ = archive["runs"]
    assert cli_json(capsys, db, "show", str(EDITED), "--at", run1_end)["version"] == 1
    assert cli_json(capsys, db, "show", str(EDITED), "--at", run2_start)["version"] == 1  # not fetched yet
    at_v1 = cli_json(capsys, db, "show", str(EDITED), "--at", run1_end)
    assert at_v1["paragraphs"][1] == archive["old_paragraph"]
    assert cli_json(capsys, db, "show", str(EDITED), "--at", run1_end[:10])["version"] == 2  # end of that day
    code, out, err = cli(capsys, db, "show", str(EDITED), "--at", "2001-01-01")
    assert (code, out) == (2, "") and "was first archived" in err
    assert cli(capsys, db, "show", str(EDITED), "--at", "yesterday")[0] == 2


def test_images_branch_by_name_or_code(capsys, archive):
    db = archive["db"]

    def ids(branch: str) -> list[int]:
        return [i["media_id"] for i in cli_json(capsys, db, "images", "--branch", branch)]

    assert ids("Navy") == ids("navy") == ids("N") == ids("n") != []
    assert ids("Space Force") == ids("space  FORCE") == ids("X") != []
    assert set(ids("Navy")).isdisjoint(ids("Space Force"))
    code, out, err = cli(capsys, db, "images", "--branch", "Q")
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert "unknown branch 'Q'" in err and "N Navy" in err and "X Space Force" in err


def test_tables_have_a_header_row(capsys, archive):
    db = archive["db"]
    assert cli(capsys, db, "images")[1].splitlines()[0].split()[:3] == ["media", "id", "VIRIN"]
    assert cli(capsys, db, "changes")[1].splitlines()[0].startswith("detected (UTC)")
    stats = cli(capsys, db, "stats")[1].splitlines()
    assert stats[stats.index("last runs:") + 1].split()[:3] == ["run", "mode", "status"]


def test_caption_diff_is_word_level(capsys, archive):
    code, out, _ = cli(capsys, archive["db"], "diff", str(EDITED))
    lines = out.splitlines()
    assert code == 0 and "captions:" in lines
    caption_line = lines[lines.index("captions:") + 1]
    assert caption_line.startswith("  ~ ") and "[-" in caption_line and "{+" in caption_line
    # the marks are word runs of one line: dropping the deletions reads the new caption, dropping the
    # insertions the old one
    new_side = re.sub(r"\[-.*?-\]", "", caption_line[4:]).replace("{+", "").replace("+}", "")
    old_side = re.sub(r"\{\+.*?\+\}", "", caption_line[4:]).replace("[-", "").replace("-]", "")
    assert f"| {NEW_CAPTION} |" in new_side and f"| {archive['old_caption']} |" in old_side


# -- the edges: a closed pipe, a wrong --db, nothing written ----------------------------------------


@pytest.mark.parametrize("argv", [("show", str(EDITED)), ("images",), ("export", "--format", "csv"),
                                  ("export", "--format", "json", "--table", "events")])
def test_a_closed_pipe_ends_quietly(archive, argv):
    """``defwatch show ... | head``: the reader is gone before the first write; no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "defwatch", *argv, "--db", archive["db"]], cwd=ROOT,
                            env=crawl_env(Path(archive["db"]).parent), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert err.decode() == "" or "image(s)" in err.decode()  # images counts on stderr
    assert proc.returncode == 141


@pytest.mark.parametrize("argv", READ_COMMANDS)
def test_db_that_is_a_directory_or_not_sqlite_is_one_line(capsys, tmp_path, argv):
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not an archive\n")
    empty = tmp_path / "empty.db"
    empty.touch()
    for path, words in ((tmp_path, "is a directory"), (not_sqlite, "not a database"),
                        (empty, "not a defwatch archive (an empty file)")):
        code, out, err = cli(capsys, str(path), *argv)
        assert (code, out) == (2, ""), (argv, path)
        assert err.count("\n") == 1 and words in err and "cannot write" not in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "notes.txt"]  # nothing created
    assert empty.stat().st_size == 0 and not_sqlite.read_text() == "not an archive\n"


def test_read_only_commands_change_no_file(capsys, archive, tmp_path):
    copy = tmp_path / "copy.db"
    copy.write_bytes(Path(archive["db"]).read_bytes())
    before = hashlib.sha256(copy.read_bytes()).hexdigest()
    for argv in READ_COMMANDS:
        code, _, err = cli(capsys, str(copy), *argv)
        assert code == 0, (argv, err)
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == before
    assert [p.name for p in tmp_path.iterdir()] == ["copy.db"]  # no -wal, -shm or lock file left


def test_stats_on_a_missing_file_creates_nothing(capsys, tmp_path):
    code, out, err = cli(capsys, str(tmp_path / "nothing.db"), "stats")
    assert (code, out) == (2, "") and "no archive at" in err
    assert list(tmp_path.iterdir()) == []


# -- crawl: a dead host, Ctrl-C ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_crawl_of_a_host_where_nothing_listens_prints_the_summary_only(tmp_path):
    db = tmp_path / "dead.db"
    proc = subprocess.run([sys.executable, "-m", "defwatch", "crawl", "--db", str(db), "--site",
                           f"http://127.0.0.1:{_free_port()}", "--mode", "discover"],
                          env=crawl_env(tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == ""  # Scrapy's retry and robots.txt errors are in the archive, not the terminal
    lines = proc.stdout.splitlines()
    assert re.fullmatch(r"run 1 \(discover\) failed: (\d+) pages, 0 new versions, \d+ events, \1 errors, .*", lines[0])
    assert re.fullmatch(r"  \d+ failed: .*Connection refused.* \(e\.g\. http://127\.0\.0\.1:\d+/.*\)", lines[1])
    assert json.loads(lines[-1])["status"] == "failed" and len(lines) <= 5


def test_ctrl_c_on_crawl_exits_130_with_the_run_interrupted(tmp_path):
    db = tmp_path / "int.db"
    with SampleSite(synthetic=400) as site:
        site.delay(0.5)  # every page: the crawl is still going when Ctrl-C comes
        proc = subprocess.Popen([sys.executable, "-m", "defwatch", "crawl", "--db", str(db), "--site",
                                 site.base_url, "--mode", "full", "--json"], env=crawl_env(tmp_path), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not _fetched_any(db) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["status"] == "interrupted" and summary["stop_signals"] == ["SIGINT"]
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
    conn.close()


def _fetched_any(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT COUNT(*) FROM fetches").fetchone()[0] > 0
        finally:
            conn.close()
    except sqlite3.Error:
        return False


# -- browse: no leftovers ---------------------------------------------------------------------------


def test_browse_removes_its_temp_directory_on_sigterm(archive, tmp_path):
    pytest.importorskip("datasette")
    import urllib.request

    temp = tmp_path / "tmp"
    temp.mkdir()
    port = _free_port()
    env = crawl_env(tmp_path, TMPDIR=str(temp))
    proc = subprocess.Popen([sys.executable, "-m", "defwatch", "browse", "--db", archive["db"], "--port", str(port)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.3)
        assert [p.name.startswith("defwatch-browse-") for p in temp.iterdir()] == [True]
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143
    assert list(temp.iterdir()) == []


def test_reparse_of_a_past_version_reindexes_it(capsys, archive, tmp_path):
    """``defwatch reparse`` rewrites versions in place: the past-versions index follows (a trigger)."""
    copy = tmp_path / "copy.db"
    copy.write_bytes(Path(archive["db"]).read_bytes())
    conn = sqlite3.connect(copy)
    conn.execute("UPDATE story_versions SET body_text = 'Quartermasters inventoried zeppelins.' "
                 "WHERE story_id = ? AND version = 1", [EDITED])
    conn.commit()
    conn.close()
    hits = cli_json(capsys, str(copy), "search", "zeppelins", "--all-versions")
    assert [(h["id"], h["version"]) for h in hits] == [(EDITED, 1)]
    assert cli_json(capsys, str(copy), "search", "welcomed three new members", "--all-versions") == []


def test_a_reader_on_an_archive_missing_a_later_column_is_one_line(capsys, archive, tmp_path):
    copy = tmp_path / "copy.db"
    copy.write_bytes(Path(archive["db"]).read_bytes())
    conn = sqlite3.connect(copy)
    conn.execute("ALTER TABLE stories DROP COLUMN missing_since")  # as if made before that column existed
    conn.commit()
    conn.close()
    code, out, err = cli(capsys, str(copy), "search", "Indo-Pacific")
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert "predates this defwatch (no such column" in err and "defwatch crawl" in err


@pytest.mark.parametrize("argv", [("crawl", "--site", "http://127.0.0.1:9", "--mode", "discover"),
                                  ("alerts", "flush"), ("reparse", "--dry-run"), ("run",)])
def test_commands_that_write_refuse_a_directory_or_a_non_sqlite_file_in_one_line(tmp_path, argv):
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not an archive\n")
    env = crawl_env(tmp_path, DEFWATCH_ALERT_TO="analyst@example.org")
    for path, words in ((tmp_path, "is a directory"), (not_sqlite, "is not a defwatch archive")):
        proc = subprocess.run([sys.executable, "-m", "defwatch", *argv, "--db", str(path)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert (proc.returncode, proc.stdout) == (2, ""), (argv, path, proc.stderr)
        assert proc.stderr.count("\n") == 1 and words in proc.stderr and "Traceback" not in proc.stderr
    assert not_sqlite.read_text() == "not an archive\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["defwatch-test.toml", "notes.txt"]


def test_lock_taken_as_its_holder_removes_the_file_is_taken_again_on_the_new_file(tmp_path, monkeypatch):
    """The daemon removes its lock file when it stops. A daemon starting at that moment may have opened
    the old file: once it holds the lock, it must find the path still names that file, or start over."""
    import fcntl

    from monitor import lock as lock_module

    path = tmp_path / "archive.db.lock"
    real_flock, calls = fcntl.flock, []

    def flock_as_the_holder_leaves(fd: int, operation: int) -> None:
        if not calls:  # the previous holder removes the file between our open and our flock
            path.unlink()
        calls.append(fd)
        real_flock(fd, operation)

    path.write_text("4242\n")
    monkeypatch.setattr(lock_module.fcntl, "flock", flock_as_the_holder_leaves)
    held = lock_module.ArchiveLock(str(path))
    held.acquire()
    assert len(calls) == 2  # the first file was let go, the path's new one locked
    assert os.fstat(held.fd).st_ino == path.stat().st_ino and path.read_text() == f"{os.getpid()}\n"
    held.release()
    assert not path.exists()
