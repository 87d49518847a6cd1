"""`defwatch run` for real: the scheduler fires crawl jobs into child processes against the sample site."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from db.queries import due_for_revisit
from db.schema import connect
from tests.conftest import ROOT, crawl_env, run_crawl
from tests.smtp_sink import SmtpSink

DAEMON_CONFIG = """\
[crawl]
polite = false

[monitor]
removal_confirm_runs = 2

[[jobs]]
name = "discover"
mode = "discover"
interval_minutes = 0.02

[[jobs]]
name = "flush"
mode = "flush"
interval_minutes = 0.02
"""


def test_daemon_fires_discover_jobs_mails_a_new_story_and_stops_on_sigterm(site, tmp_path):
    db = tmp_path / "daemon.db"
    config = tmp_path / "defwatch.toml"
    config.write_text(DAEMON_CONFIG, encoding="utf-8")
    with SmtpSink() as sink:
        env = crawl_env(tmp_path, DEFWATCH_CONFIG=str(config), DEFWATCH_DB=str(db), DEFWATCH_SITE=site.base_url,
                        DEFWATCH_SMTP_HOST=sink.host, DEFWATCH_SMTP_PORT=str(sink.port),
                        DEFWATCH_ALERT_TO="analyst@example.org")
        daemon = subprocess.Popen([sys.executable, "-m", "defwatch", "run"], env=env, cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert _wait(lambda: _ok_runs(db) >= 1, 60), "no crawl run finished"
            new_id = site.publish()
            assert _wait(lambda: _event(db, new_id), 60), "the new story was not detected"
            assert _wait(lambda: len(sink.messages) >= 1, 30), "no digest mail"
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "discover" in err and "pages" in err  # one log line per finished job
    digest = sink.messages[0].message
    assert str(new_id) in digest.get_body(preferencelist=("plain",)).get_content()
    with sqlite3.connect(db) as conn:
        statuses = {row[0] for row in conn.execute("SELECT status FROM runs")}
        assert statuses <= {"ok", "interrupted"}
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_revisit_picks_stories_by_age_and_missing_ones_first(site, tmp_path):
    db = tmp_path / "revisit.db"
    env = crawl_env(tmp_path)
    assert run_crawl(db, site.base_url, env=env).returncode == 0
    archive = connect(str(db))
    now = datetime.now(UTC)
    rules = dict(fresh_days=7, fresh_interval_hours=6, recent_days=90, recent_interval_hours=72,
                 old_interval_hours=24 * 30)
    assert due_for_revisit(archive, now=now, **rules) == []  # everything was just fetched
    later = due_for_revisit(archive, now=now + timedelta(days=40), **rules)
    assert {p.id for p in later} == set(site.content.stories)  # every story is old enough by then
    archive.execute("UPDATE stories SET status = 'missing' WHERE id = 3610656")
    assert [p.id for p in due_for_revisit(archive, now=now, **rules)] == [3610656]
    archive.conn.close()
    site.remove(3610656)
    revisit = run_crawl(db, site.base_url, "revisit", env=env)
    assert revisit.returncode == 0, revisit.stderr
    assert revisit.summary["pages"] >= 1 and revisit.summary["outcomes"].get("not_found") == 1


def test_429_with_retry_after_is_waited_out_not_recorded_as_content(site, tmp_path):
    db = tmp_path / "ratelimit.db"
    env = crawl_env(tmp_path)
    site.rate_limit(20, retry_after=1)
    result = run_crawl(db, site.base_url, env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    statuses = [r.status for r in site.requests]
    assert 429 in statuses  # the limit was hit ...
    with sqlite3.connect(db) as conn:  # ... and every page was still archived
        assert conn.execute("SELECT COUNT(*) FROM stories").fetchone()[0] == len(site.content.stories)


def _wait(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return False


def _ok_runs(db) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _event(db, story_id) -> bool:
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT 1 FROM events WHERE kind = 'story_new' AND subject_id = ?", (story_id,))
            return row.fetchone() is not None
    except sqlite3.OperationalError:
        return False
