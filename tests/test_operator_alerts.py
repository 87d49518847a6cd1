"""Operator alerts on changes of state only: sample site -> `defwatch crawl` -> events -> real SMTP.

One scripted outage history: blocked for two runs, then let in again; failing with HTTP 500, then
answering; markup broken, then fixed. The operator hears of each start and each end once, with the
figures and the advice to act on, and never of a run that only repeats the known state.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import run_crawl
from tests.smtp_sink import SmtpSink
from tests.test_monitor_e2e import EDITED, mail_env

BROKEN = 10  # story pages served as an empty shell while the markup is "redesigned"


def operator_events(db, run_id):
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT kind, summary, details FROM events WHERE run_id = ? AND audience = 'operator'"
                            " ORDER BY id", (run_id,)).fetchall()
    return [(kind, summary, json.loads(details) if details else None) for kind, summary, details in rows]


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    from samplesite import SampleSite

    tmp = tmp_path_factory.mktemp("operator")
    db = tmp / "ops.db"
    with SampleSite() as site, SmtpSink() as sink:
        env = mail_env(tmp, sink)
        runs = {}

        def crawl(name):
            runs[name] = run_crawl(db, site.base_url, env=env)
            runs[name].mails = list(sink.messages)
            sink.messages.clear()

        crawl("baseline")
        site.block(None)
        crawl("blocked")
        crawl("still_blocked")
        site.unblock()
        crawl("unblocked")
        site.fail(None, status=500)
        crawl("failing")
        site.heal(None)
        crawl("recovered")
        for story_id in sorted(site.content.stories)[:BROKEN]:
            site.break_html(story_id, mode="shell")
        site.edit_paragraph(EDITED, 0, "An edit made while the site's markup was broken.")
        crawl("degraded")
        crawl("still_degraded")
        site.fix_html(None)
        crawl("parser_ok")
    return db, runs


def run_id(runs, name):
    return runs[name].summary["run_id"]


def test_a_block_is_told_once_with_status_share_page_and_advice(history):
    db, runs = history
    [(kind, summary, details)] = operator_events(db, run_id(runs, "blocked"))
    assert kind == "crawl_blocked"
    refused, total = details["affected"], details["requests"]
    assert summary == f"Blocked: {refused} of {total} requests ({refused / total:.0%}) refused with HTTP 403" \
                      " (access denied)"
    assert details["http_status"] == 403 and details["share"] == round(refused / total, 4) and refused >= 3
    lines = details["page_lines"]
    assert lines[0] == "Access Denied"
    assert lines[1].startswith("You don't have permission to access \"http://127.0.0.1:")  # entities decoded
    assert lines[2].startswith("Reference #18.")
    assert 'transport = "impersonate"' in details["advice"] and "defwatch doctor" in details["advice"]
    assert runs["still_blocked"].summary["status"] == "blocked"
    assert operator_events(db, run_id(runs, "still_blocked")) == []  # the same state: nothing new to tell


def test_the_end_of_a_block_is_told_once(history):
    db, runs = history
    [(kind, summary, details)] = operator_events(db, run_id(runs, "unblocked"))
    blocked_run = run_id(runs, "blocked")
    assert kind == "crawl_unblocked"
    assert summary.startswith(f"Crawl no longer blocked: {details['answered']} of {details['requests']} requests "
                              f"answered (100%), blocked since run {blocked_run} (")
    assert details["since_run"] == blocked_run


def test_a_failing_crawl_is_prose_and_its_recovery_is_told(history):
    db, runs = history
    [(kind, summary, details)] = operator_events(db, run_id(runs, "failing"))
    assert kind == "crawl_failed"
    total = details["requests"]
    assert summary == f"Crawl failed: no request of {total} got an answer ({total} HTTP 500)"
    assert "{" not in summary and details["http_status"] == 500 and details["share"] == 1.0
    assert "defwatch doctor" in details["advice"]
    [(kind, summary, _)] = operator_events(db, run_id(runs, "recovered"))
    assert kind == "crawl_recovered"
    assert summary.startswith("Crawl recovered: ") and f"failed since run {run_id(runs, 'failing')}" in summary


def test_a_degraded_parser_is_told_once_and_its_recovery_releases_the_held_alerts(history):
    db, runs = history
    [(kind, summary, details)] = operator_events(db, run_id(runs, "degraded"))
    assert kind == "parser_degraded"
    assert details["affected"] == BROKEN and "defwatch parse FILE" in details["advice"]
    assert summary.startswith(f"Parser degraded: {details['requests'] - BROKEN} of {details['requests']} story pages")
    assert operator_events(db, run_id(runs, "still_degraded")) == []
    [(kind, summary, details)] = operator_events(db, run_id(runs, "parser_ok"))
    assert kind == "parser_recovered"
    assert summary.startswith(f"Parser healthy again: {details['parsed']} of {details['story_pages']} story pages "
                              f"parsed or unchanged (100%), degraded since run {run_id(runs, 'degraded')} (")
    assert summary.endswith("; 1 held subscriber alert(s) released")  # the edit made while it was degraded
    assert details["parsed"] == details["story_pages"] > BROKEN and details["released"] == 1


def test_healthy_runs_tell_the_operator_nothing(history):
    db, runs = history
    assert operator_events(db, run_id(runs, "baseline")) == []
    assert [m for m in runs["baseline"].mails if "ops@example.org" in m.rcpt_tos] == []


def operator_mails(runs, name):
    return [m.message for m in runs[name].mails if m.rcpt_tos == ["ops@example.org"]]


def test_the_operator_is_mailed_at_each_change_of_state_only(history):
    db, runs = history
    mailed = {name: len(operator_mails(runs, name)) for name in runs}
    assert mailed == {"baseline": 0, "blocked": 1, "still_blocked": 0, "unblocked": 1, "failing": 1,
                      "recovered": 1, "degraded": 1, "still_degraded": 0, "parser_ok": 1}
    [blocked] = operator_mails(runs, "blocked")
    assert str(blocked["Subject"]).strip().startswith("[defwatch] war.gov operator: crawl blocked (20")
    text = blocked.get_body(("plain",)).get_content()
    [(_, summary, details)] = operator_events(db, run_id(runs, "blocked"))
    assert summary in " ".join(text.split())
    assert "HTTP status: 403" in text
    assert f"Requests affected: {details['affected']} of {details['requests']} ({details['share']:.0%})" in text
    assert "  | Access Denied" in text and "  | Reference #18." in text  # the block page's first lines
    assert "What to do: Nothing is recorded as changed or removed" in text
    assert 'transport = "impersonate"' in " ".join(text.split())
    html = blocked.get_body(("html",)).get_content()
    assert "The block page began" in html and "transport = &#34;impersonate&#34;" in html
    [failed] = operator_mails(runs, "failing")
    text = failed.get_body(("plain",)).get_content()
    assert "Crawl failed: no request of" in text and "HTTP status: 500" in text and "{" not in text
    [unblocked] = operator_mails(runs, "unblocked")
    assert str(unblocked["Subject"]).strip().startswith("[defwatch] war.gov operator: crawl no longer blocked (")
    assert "defwatch is healthy again" in unblocked.get_body(("plain",)).get_content()
    [recovered] = operator_mails(runs, "parser_ok")
    assert "Parser healthy again" in recovered.get_body(("plain",)).get_content()
