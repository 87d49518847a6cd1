"""Change events and alert mail end to end: sample site -> `defwatch crawl` -> events -> real SMTP.

One scripted scenario drives every subscriber event kind and every non-change the monitor must
ignore, and checks the exact events and the exact mails received.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from samplesite import SampleSite
from tests.conftest import ROOT, crawl_env, run_crawl
from tests.smtp_sink import SmtpSink

EDITED, CAPTIONED_IMAGE, CAPTIONED_STORY = 3610656, 2003217370, 3386221
LINKED, NEW_LINK_TARGET = 3365120, 3610656
REMOVED, BLOCKED, SPACED = 3298110, 3342560, 4016543


def events(db, run_id=None):
    with sqlite3.connect(db) as conn:
        sql = "SELECT run_id, kind, subject_id, changed_fields FROM events"
        rows = conn.execute(sql + (" WHERE run_id = ?" if run_id else "") + " ORDER BY id",
                            (run_id,) if run_id else ()).fetchall()
    return [(r, k, s, json.loads(f) if f else []) for r, k, s, f in rows]


def kinds(db, run_id):
    return sorted((k, s) for _, k, s, _ in events(db, run_id))


def mail_env(tmp_path, sink, **extra):
    return crawl_env(tmp_path, DEFWATCH_SMTP_HOST=sink.host, DEFWATCH_SMTP_PORT=str(sink.port),
                     DEFWATCH_ALERT_FROM="defwatch@localhost", DEFWATCH_ALERT_TO="analyst@example.org",
                     DEFWATCH_OPERATOR_TO="ops@example.org", **extra)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """Baseline, scripted changes, two more runs (a removal needs a second 404), then a restore."""
    tmp = tmp_path_factory.mktemp("scenario")
    db = tmp / "monitor.db"
    with SampleSite() as site, SmtpSink() as sink:
        env = mail_env(tmp, sink)
        runs = [run_crawl(db, site.base_url, env=env)]
        site.edit_paragraph(EDITED, 1, "The ministers agreed to meet again in 2024.")
        site.set_caption(CAPTIONED_IMAGE, "A caption rewritten after publication.")
        site.add_related(LINKED, NEW_LINK_TARGET)
        new_id = site.publish()
        site.remove(REMOVED, status=404)
        site.block(BLOCKED)
        site.whitespace_edit(SPACED)
        runs.append(run_crawl(db, site.base_url, env=env))
        runs.append(run_crawl(db, site.base_url, env=env))
        site.restore(REMOVED)
        site.drop_related(LINKED, NEW_LINK_TARGET)
        runs.append(run_crawl(db, site.base_url, env=env))
        mails = list(sink.messages)
    for run in runs:
        assert run.returncode == 0, run.stderr
    return db, runs, mails, new_id


def test_baseline_announces_nothing(scenario):
    db, runs, _, _ = scenario
    assert runs[0].summary["baseline"] is True
    assert events(db, 1) == []


def test_each_change_is_one_event_and_noise_is_none(scenario):
    db, _, _, new_id = scenario
    new_images = sorted(s for k, s in kinds(db, 2) if k == "image_new")
    assert kinds(db, 2) == sorted([
        ("story_updated", EDITED), ("story_updated", CAPTIONED_STORY), ("image_updated", CAPTIONED_IMAGE),
        ("related_added", LINKED), ("story_new", new_id),
    ] + [("image_new", m) for m in new_images])
    with sqlite3.connect(db) as conn:  # every new photo is an event: here, those of the new story
        shown = [m for (m,) in conn.execute("SELECT media_id FROM story_images WHERE story_id = ? ORDER BY media_id",
                                            (new_id,))]
        details = dict(conn.execute("SELECT subject_id, details FROM events WHERE kind = 'image_new'").fetchall())
    assert new_images == shown and shown
    assert all(json.loads(details[m])["story_ids"] == [new_id] for m in shown)
    fields = {(k, s): f for _, k, s, f in events(db, 2)}
    assert fields[("story_updated", EDITED)] == ["body"]
    assert fields[("story_updated", CAPTIONED_STORY)] == ["captions"]
    assert fields[("image_updated", CAPTIONED_IMAGE)] == ["caption"]
    subjects = {s for _, _, s, _ in events(db)}
    assert BLOCKED not in subjects and SPACED not in subjects  # a 403 and a whitespace edit are not changes


def test_removal_needs_confirmation_and_restore_is_reported(scenario):
    db, _, _, _ = scenario
    assert (2, "story_removed", REMOVED, []) not in events(db, 2)
    assert kinds(db, 3) == [("story_removed", REMOVED)]
    assert kinds(db, 4) == [("related_removed", LINKED), ("story_restored", REMOVED)]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM stories WHERE id = ?", (REMOVED,)).fetchone() == ("live",)
        assert conn.execute("SELECT status FROM stories WHERE id = ?", (BLOCKED,)).fetchone() == ("live",)


def test_story_updated_carries_a_paragraph_diff(scenario):
    db, _, _, _ = scenario
    with sqlite3.connect(db) as conn:
        diff, frm, to = conn.execute(
            "SELECT diff, from_version, to_version FROM events WHERE kind = 'story_updated' AND subject_id = ?",
            (EDITED,)).fetchone()
    body = json.loads(diff)["body"]
    assert (frm, to) == (1, 2)
    new = ["The ministers agreed to meet again in 2024."]
    assert body == [{"op": "replace", "old": [body[0]["old"][0]], "new": new}]
    assert body[0]["old"][0].startswith("The annual event, held this week")


def test_one_digest_per_run_with_changes_reaches_smtp(scenario):
    db, _, mails, _ = scenario
    digests = [m for m in mails if "analyst@example.org" in m.rcpt_tos]
    assert [m.message["X-Defwatch-Kind"] for m in digests] == ["digest", "digest", "digest"]  # runs 2, 3, 4
    first = digests[0].message
    text = first.get_body(preferencelist=("plain",)).get_content()
    html = first.get_body(preferencelist=("html",)).get_content()
    assert "More Nations Meet to Address Space Security" in text
    assert "+ The ministers agreed to meet again in 2024." in text
    assert "<ins" in html and "<del" in html
    detected = sqlite3.connect(db).execute("SELECT MAX(detected_at) FROM events WHERE run_id = 2").fetchone()[0]
    when = f"{detected[:10]} {detected[11:16]} UTC"
    assert str(first["Subject"]).strip().endswith(f" ({when})")  # a time, not a run number
    assert "run 2" not in first["Subject"] and f"Detected {when}" in text
    # one change, one item: the caption edit is the story's and the photo's event, mailed once under the story
    assert str(first["Subject"]).strip().startswith("[defwatch] war.gov: 2 updated, 1 new, 1 related (")
    assert text.count("A caption rewritten after publication.") == 1
    assert html.count("A caption rewritten after publication.") == 1
    assert len({m.message["Message-ID"] for m in mails}) == len(mails)
    assert not [m for m in mails if "ops@example.org" in m.rcpt_tos]  # a healthy crawl bothers no operator


def test_block_storm_is_an_operator_event_not_a_removal(site, tmp_path):
    db = tmp_path / "blocked.db"
    with SmtpSink() as sink:
        env = mail_env(tmp_path, sink)
        assert run_crawl(db, site.base_url, env=env).returncode == 0
        site.block(None)
        blocked = run_crawl(db, site.base_url, env=env)
        mails = list(sink.messages)
    assert blocked.returncode == 3 and blocked.summary["status"] == "blocked"
    assert [k for _, k, _, _ in events(db, 2)] == ["crawl_blocked"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM stories WHERE status != 'live'").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM story_versions").fetchone()[0] == len(site.content.stories)
    assert [m.rcpt_tos for m in mails] == [["ops@example.org"]]


def test_parser_degradation_holds_subscriber_alerts(site, tmp_path):
    db = tmp_path / "degraded.db"
    env = crawl_env(tmp_path)
    assert run_crawl(db, site.base_url, env=env).returncode == 0
    site.edit_paragraph(EDITED, 0, "An edit made while the site's markup was broken.")
    for story_id in sorted(site.content.stories)[:10]:
        if story_id != EDITED:
            site.break_html(story_id, mode="shell")
    run = run_crawl(db, site.base_url, env=env)
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT kind, held, audience FROM events WHERE run_id = 2 ORDER BY kind").fetchall()
    assert rows == [("parser_degraded", 0, "operator"), ("story_updated", 1, "subscriber")]
    site.fix_html(None)
    assert run_crawl(db, site.base_url, env=env).returncode == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT held FROM events WHERE kind = 'story_updated'").fetchone() == (0,)


def test_smtp_down_then_up_loses_nothing_and_sends_once(site, tmp_path):
    db = tmp_path / "outage.db"
    with SmtpSink() as sink:
        port = sink.port
    env = mail_env(tmp_path, type("Down", (), {"host": "127.0.0.1", "port": port})())
    assert run_crawl(db, site.base_url, env=env).returncode == 0
    site.set_title(EDITED, "A title changed during a mail outage")
    assert run_crawl(db, site.base_url, env=env).returncode == 0
    with sqlite3.connect(db) as conn:
        status, attempts, error = conn.execute("SELECT status, attempts, last_error FROM outbox").fetchone()
    assert (status, attempts) == ("pending", 1) and error
    with SmtpSink(port=port) as sink:
        flush = subprocess.run([sys.executable, "-m", "defwatch", "alerts", "flush", "--db", str(db)], env=env,
                               capture_output=True, text=True, cwd=ROOT, check=False)
        again = subprocess.run([sys.executable, "-m", "defwatch", "alerts", "flush", "--db", str(db)], env=env,
                               capture_output=True, text=True, cwd=ROOT, check=False)
        mails = list(sink.messages)
    assert flush.returncode == 0, flush.stderr
    assert "sent 0" in again.stdout
    assert len(mails) == 1 and "A title changed during a mail outage" in mails[0].content.decode()


def test_kill_9_mid_crawl_leaves_a_consistent_archive(tmp_path):
    db = tmp_path / "killed.db"
    env = crawl_env(tmp_path)
    with SampleSite() as slow:
        slow.delay(0.2)
        child = subprocess.Popen([sys.executable, "-m", "defwatch", "crawl", "--db", str(db), "--site",
                                  slow.base_url, "--mode", "full"], env=env, cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _count(db, "fetches") < 10:
            time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        slow.delay(0)
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            orphans = conn.execute("""SELECT COUNT(*) FROM story_versions v
                                      LEFT JOIN fetches f ON f.id = v.fetch_id WHERE f.id IS NULL""").fetchone()
            assert orphans == (0,)
        after = run_crawl(db, slow.base_url, env=env)
    assert after.returncode == 0, after.stderr
    assert _count(db, "stories") == len(slow.content.stories)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs ORDER BY id").fetchall() == [("interrupted",), ("ok",)]


def _count(db, table):
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_markup_only_changes_are_not_updates(site, tmp_path):
    db = tmp_path / "markup.db"
    env = crawl_env(tmp_path)
    assert run_crawl(db, site.base_url, env=env).returncode == 0
    site.break_html(EDITED, mode="garbage")  # tag soup around the same text
    site.break_html(CAPTIONED_STORY, mode="redesign")  # renamed classes, same content
    run = run_crawl(db, site.base_url, env=env)
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(db) as conn:
        fetched = dict(conn.execute("""SELECT subject_id, status FROM fetches WHERE run_id = 2
                                       AND subject_id IN (?, ?)""", (EDITED, CAPTIONED_STORY)).fetchall())
    assert fetched == {EDITED: 200, CAPTIONED_STORY: 200}  # the new markup really was parsed
    assert events(db, 2) == []
