"""The daemon's start-up: one crawl right away, and a log that says what it watches and who hears.

A real APScheduler and real child processes (a tiny script stands in for ``defwatch crawl``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from core.config import AlertConfig, Config, CrawlConfig, DaemonConfig, JobConfig, SmtpConfig, SubscriberConfig
from db.schema import connect
from monitor.subscribers import register
from tests.smtp_sink import SmtpSink
from tests.test_daemon import PY, daemon_thread, lines, wait_for

CHILD = "import sys, time\nopen(sys.argv[1], 'a').write(f'{time.time()}\\n')"
HOUR = 60.0


def jobs() -> list[JobConfig]:
    return [JobConfig("discover", "discover", interval_minutes=HOUR), JobConfig("sweep", "sweep", cron="0 3 * * *"),
            JobConfig("mail", "flush", interval_minutes=HOUR)]


def crawl_log(tmp_path: Path):
    marks = tmp_path / "crawls.txt"
    return marks, (lambda config, job: [PY, "-c", CHILD, str(marks)])


def test_first_crawl_job_runs_at_start_not_one_interval_later(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    marks, command = crawl_log(tmp_path)
    config = Config(db=str(tmp_path / "a.db"), jobs=jobs())
    started = time.time()
    with daemon_thread(config, crawl_command=command) as outcome:
        assert wait_for(lambda: len(lines(marks)) == 1, timeout=10), "no crawl at start-up"
        time.sleep(1.0)
    assert outcome["rc"] == 0
    assert len(lines(marks)) == 1  # once: the hourly job is not fired again, the 03:00 sweep not at all
    assert float(lines(marks)[0]) - started < 5
    messages = [r.getMessage() for r in caplog.records if r.name == "defwatch.daemon"]
    assert "start-up crawl: job discover (mode discover) now" in messages
    assert any(m.startswith("job discover finished: mode=discover") for m in messages)


def test_start_job_names_another_job_and_crawl_at_start_false_waits(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    marks, command = crawl_log(tmp_path)
    chosen = Config(db=str(tmp_path / "a.db"), jobs=jobs(), daemon=DaemonConfig(start_job="sweep"))
    with daemon_thread(chosen, crawl_command=command):
        assert wait_for(lambda: len(lines(marks)) == 1, timeout=10)
    assert any(r.getMessage().startswith("job sweep finished: mode=sweep") for r in caplog.records)
    idle = Config(db=str(tmp_path / "b.db"), jobs=jobs(), daemon=DaemonConfig(crawl_at_start=False))
    with daemon_thread(idle, crawl_command=command):
        time.sleep(1.5)
    assert len(lines(marks)) == 1  # nothing more: the next firing is an hour away


def test_start_up_log_names_site_archive_recipients_and_schedule(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    _, command = crawl_log(tmp_path)
    config = Config(
        db=str(tmp_path / "a.db"), site="https://www.war.gov", jobs=jobs(),
        alerts=AlertConfig(recipients=["desk@example.org"], operator_recipients=["ops@example.org"]),
        subscribers=[SubscriberConfig("daily@example.org", cadence="daily")],
        crawl=CrawlConfig(user_agent="defwatch/0.1 (+mailto:archive@example.org)"),
        daemon=DaemonConfig(crawl_at_start=False),
    )
    with daemon_thread(config, crawl_command=command):
        assert wait_for(lambda: any("next run" in r.getMessage() for r in caplog.records))
    records = [r for r in caplog.records if r.name == "defwatch.daemon"]
    text = "\n".join(r.getMessage() for r in records)
    assert f"watching https://www.war.gov; archive {tmp_path / 'a.db'}" in text
    assert ("subscriber mail to desk@example.org (each_run), daily@example.org (daily); "
            "operator mail to ops@example.org; SMTP localhost:25 (none)") in text
    assert "job discover: interval[1:00:00], next run" in text
    assert "job sweep: cron[" in text and "hour='3'" in text
    assert not [r for r in records if r.levelno >= logging.WARNING]  # a complete set-up gets no warning


@pytest.mark.parametrize("site, warns_user_agent", [("https://www.war.gov", True), ("http://127.0.0.1:8000", False)])
def test_start_up_warns_without_recipients_and_with_the_template_contact(tmp_path, caplog, site, warns_user_agent):
    caplog.set_level(logging.INFO)
    _, command = crawl_log(tmp_path)
    config = Config(db=str(tmp_path / "a.db"), site=site, jobs=jobs(), daemon=DaemonConfig(crawl_at_start=False))
    with daemon_thread(config, crawl_command=command):
        assert wait_for(lambda: any("next run" in r.getMessage() for r in caplog.records))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[:2] == [
        "no subscriber recipients: changes are recorded but nobody is mailed "
        "(set DEFWATCH_ALERT_TO, [alerts] recipients or [[subscribers]])",
        "no operator recipients: a blocked or failing crawl is only in this log "
        "(set DEFWATCH_OPERATOR_TO or [alerts] operator_recipients)",
    ]
    user_agent = [w for w in warnings if "user_agent" in w]
    assert user_agent == ([
        "[crawl] user_agent still names the template's contact (https://github.com/defwatch/defwatch): "
        f"put a URL or mail address where {site} can reach you"] if warns_user_agent else [])


def test_the_flush_job_queues_subscriber_digests_that_are_due(tmp_path):
    db_path = tmp_path / "a.db"
    db = connect(str(db_path))
    subscriber = SubscriberConfig("desk@example.org", events=["story_new"])
    register(db, [subscriber], "2026-01-01T00:00:00.000000Z")  # subscribed before the event below
    db.execute("INSERT INTO runs (id, mode, site, started_at, status) VALUES (1, 'full', 'x', "
               "'2026-01-01T00:00:00.000000Z', 'ok')")
    db.execute("""INSERT INTO events (run_id, kind, subject_type, subject_id, url, title, summary, detected_at)
                  VALUES (1, 'story_new', 'story', 7, 'https://www.war.gov/a/7/', 'A new story', 'New', ?)""",
               ["2026-01-01T00:01:00.000000Z"])
    db.conn.commit()
    db.conn.close()
    with SmtpSink() as sink:
        config = Config(db=str(db_path), jobs=[JobConfig("mail", "flush", interval_minutes=0.2 / 60)],
                        subscribers=[subscriber], smtp=SmtpConfig(host=sink.host, port=sink.port, timeout=5),
                        daemon=DaemonConfig(crawl_at_start=False))
        with daemon_thread(config):
            assert wait_for(lambda: len(sink.messages) >= 1, timeout=10)
            time.sleep(0.6)  # more flushes: nothing is sent twice
        assert [m.rcpt_tos for m in sink.messages] == [["desk@example.org"]]
        assert "A new story" in sink.messages[0].message.get_body(("plain",)).get_content()
