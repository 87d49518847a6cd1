"""`defwatch run` with the frontier: a real scheduler fires frontier slices (real crawl children) at the
sample site; a story left out of the listings is a candidate, fetched, never removed; a removed one is
confirmed by its own 404s on two slices."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

from tests.conftest import ROOT, crawl_env

FRONTIER_CONFIG = """\
[crawl]
polite = false

[frontier]
requests_per_hour = 100000.0
burst = 300
slice_minutes = 0.05
index_interval_minutes = 0.1
enumerate_days = 0.00001

[[jobs]]
name = "frontier"
mode = "frontier"
interval_minutes = 0.05
"""



def test_daemon_runs_frontier_slices_candidates_and_removals(site, tmp_path):
    db = tmp_path / "frontier.db"
    config = tmp_path / "defwatch.toml"
    config.write_text(FRONTIER_CONFIG, encoding="utf-8")
    news = site.content.ordered_ids("news-story")
    assert len(news) > 10  # two listing pages: the walk has more than one page
    unlisted, removed = news[3], news[12]
    env = crawl_env(tmp_path, DEFWATCH_CONFIG=str(config), DEFWATCH_DB=str(db), DEFWATCH_SITE=site.base_url)
    daemon = subprocess.Popen([sys.executable, "-m", "defwatch", "run"], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait(lambda: _ok_runs(db) >= 2, 120), "no two frontier slices finished"
        archived = _one(db, "SELECT COUNT(*) FROM stories")
        assert archived == len(site.content.stories)  # the first slice's index check found the site
        assert _one(db, "SELECT COUNT(*) FROM frontier") == archived + _one(
            db, "SELECT COUNT(*) FROM images WHERE source = 'photo_page'")
        site.unlist(unlisted)
        site.remove(removed)
        assert _wait(lambda: _event(db, "story_removed", removed), 120), "the removal was not confirmed"
        after = _one(db, "SELECT MAX(id) FROM runs")
        assert _wait(lambda: _ok_runs(db, since=after) >= 2, 120), "the daemon stopped running slices"
    finally:
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    with sqlite3.connect(db) as conn:
        modes = {row[0] for row in conn.execute("SELECT mode FROM runs")}
        assert modes == {"frontier"}
        stats = [json.loads(row[0]) for row in conn.execute("SELECT stats FROM runs WHERE stats IS NOT NULL")]
        assert sum(s.get("candidates", 0) for s in stats) >= 1  # the unlisted story became a candidate...
        assert not _event(db, "story_removed", unlisted)  # ...and was never removed: it answers 200
        assert conn.execute("SELECT status FROM stories WHERE id = ?", [unlisted]).fetchone() == ("live",)
        unlisted_after = conn.execute(
            "SELECT COUNT(*) FROM fetches WHERE subject_id = ? AND page_type = 'story' AND outcome IN "
            "('ok', 'not_modified') AND run_id > (SELECT MIN(run_id) FROM events WHERE kind = 'story_removed')",
            [unlisted]).fetchone()[0]
        assert unlisted_after >= 1
        removals = conn.execute("SELECT outcome, run_id FROM fetches WHERE subject_id = ? AND page_type = 'story' "
                                "AND outcome = 'not_found' ORDER BY id", [removed]).fetchall()
        assert len({run for _, run in removals}) >= 2  # confirmed by 404s on two runs
        slice_state = json.loads(conn.execute("SELECT value FROM frontier_state WHERE key = 'slice'").fetchone()[0])
        assert slice_state["run_id"] in {row[0] for row in conn.execute("SELECT id FROM runs")}
        assert slice_state["allowance"] <= 300
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert "frontier" in err and "pages" in err  # one log line per finished slice


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def _one(db, sql: str, params: list | None = None):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params or []).fetchone()[0]
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def _ok_runs(db, since: int = 0) -> int:
    if not db.exists():
        return 0
    return _one(db, "SELECT COUNT(*) FROM runs WHERE status = 'ok' AND mode = 'frontier' AND id > ?", [since]) or 0


def _event(db, kind: str, subject: int) -> bool:
    return bool(_one(db, "SELECT COUNT(*) FROM events WHERE kind = ? AND subject_id = ?", [kind, subject]))
