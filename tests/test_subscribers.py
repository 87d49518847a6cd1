"""Subscribers choose what they get: sample site -> `defwatch crawl` -> per-subscriber digests -> real SMTP.

``[[subscribers]]`` in a real config file; real crawls; mails read back from a real SMTP server.
``DEFWATCH_ALERT_TO`` keeps getting everything after each run.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import timedelta

import pytest

from core import clock
from core.config import load_config
from db import outbox
from db.schema import connect
from monitor.mailer import flush_outbox
from monitor.subscribers import queue_subscriber_digests
from samplesite import SampleSite
from tests.conftest import ROOT, run_crawl
from tests.smtp_sink import SmtpSink
from tests.test_monitor_e2e import EDITED, REMOVED, mail_env

RELEASE = 3544701  # a release: the only section "releases@" wants
CONFIG = """
[monitor]
removal_confirm_runs = 1

[[subscribers]]
address = "releases@example.org"
sections = ["release"]

[[subscribers]]
address = "removals@example.org"
events = ["story_removed"]

[[subscribers]]
address = "drones@example.org"
keywords = ["drone"]

[[subscribers]]
address = "Night Desk <daily@example.org>"
cadence = "daily"
"""


def subject(received) -> str:
    return str(received.message["Subject"]).strip()  # a folded header keeps its leading space


def bodies(received) -> tuple[str, str]:
    msg = received.message
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("subscribers")
    (tmp / "defwatch-test.toml").write_text(CONFIG, encoding="utf-8")
    db = tmp / "subs.db"
    with SampleSite() as site, SmtpSink() as sink:
        env = mail_env(tmp, sink)
        assert run_crawl(db, site.base_url, env=env).returncode == 0
        site.edit_paragraph(EDITED, 1, "The ministers agreed to meet again in 2027.")
        site.edit_paragraph(RELEASE, 0, "The department released its recruiting figures a day early.")
        new_id = site.publish({"title": "Army Tests Drone Swarm Defenses", "kind": "news-story",
                               "paragraphs": ["Soldiers tested defenses against drone swarms this week."]})
        site.remove(REMOVED, status=404)
        run = run_crawl(db, site.base_url, env=env)
        assert run.returncode == 0, run.stderr
        mails = {tuple(m.rcpt_tos): m for m in sink.messages}
        assert len(mails) == len(sink.messages)  # one mail per recipient
        sink.messages.clear()
        again = run_crawl(db, site.base_url, env=env)  # nothing changed: nobody hears anything
        assert again.returncode == 0 and sink.messages == []
    return {"db": db, "env": env, "tmp": tmp, "mails": mails, "new_id": new_id}


def test_everyone_gets_only_what_they_asked_for(crawled):
    mails = crawled["mails"]
    assert set(mails) == {("analyst@example.org",), ("releases@example.org",), ("removals@example.org",),
                          ("drones@example.org",)}  # the daily subscriber waits for its day
    everything, _ = bodies(mails[("analyst@example.org",)])
    for title in ("More Nations Meet to Address Space Security", "Army Tests Drone Swarm Defenses",
                  "Army Expands Recruiting Pilot to Eight More Cities", "DOD Announces Recruiting and Retention"):
        assert title in everything
    releases, html = bodies(mails[("releases@example.org",)])
    assert subject(mails[("releases@example.org",)]).startswith("[defwatch] war.gov: 1 updated (")
    assert "DOD Announces Recruiting and Retention" in releases and "More Nations" not in releases
    assert "Your subscription (releases@example.org): every kind of change; release;" in releases
    assert "a day early" in html
    removals, _ = bodies(mails[("removals@example.org",)])
    assert subject(mails[("removals@example.org",)]).startswith("[defwatch] war.gov: 1 removed (")
    assert "Army Expands Recruiting Pilot" in removals and "Last archived text" in removals
    assert "Army Tests Drone Swarm" not in removals
    drones, _ = bodies(mails[("drones@example.org",)])
    assert subject(mails[("drones@example.org",)]).startswith("[defwatch] war.gov: 1 new (")
    assert "Army Tests Drone Swarm Defenses" in drones and 'mentioning "drone"' in drones
    assert "More Nations" not in drones and "Recruiting" not in drones


def test_the_daily_digest_gathers_everything_once(crawled):
    db = connect(str(crawled["db"]))
    config = load_config(env=crawled["env"])
    added = db.execute("SELECT added_at FROM subscribers WHERE address LIKE '%daily@%'").fetchone()[0]
    day_later = clock.parse_stamp(added) + timedelta(days=1, minutes=1)
    assert queue_subscriber_digests(db, config.alerts, config.subscribers, now=day_later - timedelta(hours=2)) == []
    [mail_id] = queue_subscriber_digests(db, config.alerts, config.subscribers, now=day_later)
    assert queue_subscriber_digests(db, config.alerts, config.subscribers, now=day_later + timedelta(days=2)) == []
    with SmtpSink() as sink:
        config.smtp.host, config.smtp.port = sink.host, sink.port
        assert flush_outbox(db, config.smtp, config.alerts, now=day_later).sent == 1
        [received] = sink.messages
    assert received.rcpt_tos == ["daily@example.org"] and outbox.get_mail(db, mail_id)["status"] == "sent"
    text, _ = bodies(received)
    assert subject(received).startswith("[defwatch] war.gov: 2 updated, 1 new, 1 removed (")
    assert "a digest once a day" in text
    with sqlite3.connect(crawled["db"]) as conn:  # the ledger: each event once per subscriber
        counts = conn.execute("""SELECT address, COUNT(*), COUNT(DISTINCT event_id), COUNT(outbox_id)
                                 FROM subscriber_events GROUP BY address ORDER BY address""").fetchall()
        events = conn.execute("SELECT COUNT(*) FROM events WHERE audience = 'subscriber'").fetchone()[0]
    assert all(total == distinct == events for _, total, distinct, _ in counts)
    assert dict((a, mailed) for a, _, _, mailed in counts)["Night Desk <daily@example.org>"] == events


def test_alerts_test_sends_each_recipient_a_mail_naming_its_subscription(crawled):
    with SmtpSink() as sink:
        env = crawled["env"] | {"DEFWATCH_SMTP_PORT": str(sink.port)}
        done = subprocess.run([sys.executable, "-m", "defwatch", "alerts", "test", "--db", str(crawled["db"])],
                              env=env, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
        received = {tuple(m.rcpt_tos): m.message for m in sink.messages}
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("sent 6, failed 0, pending 0")
    assert set(received) == {("analyst@example.org",), ("releases@example.org",), ("removals@example.org",),
                             ("drones@example.org",), ("daily@example.org",), ("ops@example.org",)}
    assert "every change, after each crawl" in received[("analyst@example.org",)].get_content()
    assert "story removed; all sections" in received[("removals@example.org",)].get_content()
    assert "a digest once a day" in received[("daily@example.org",)].get_content()
    assert "You get the operator mails" in received[("ops@example.org",)].get_content()
