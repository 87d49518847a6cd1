"""Alert emails end to end: events in a real archive -> outbox -> a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from core import clock
from core.config import AlertConfig, SmtpConfig
from db import outbox
from db.schema import connect
from monitor.compose import queue_pending_alerts, queue_run_alerts, queue_test_mail
from monitor.mailer import FlushResult, flush_outbox
from tests.smtp_sink import SmtpSink, self_signed_cert, unused_port

NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
SENDER = "defwatch@alerts.example.org"
ALICE, BOB, OPS = "alice@example.com", "bob@example.com", "ops@example.com"
SITE = "https://www.war.gov"
PASSWORD = "S3cret-Pa55word!"


def alert_config(**overrides: object) -> AlertConfig:
    values: dict = {"sender": SENDER, "recipients": [ALICE, BOB], "operator_recipients": [OPS]}
    return AlertConfig(**(values | overrides))


def smtp_config(port: int, **overrides: object) -> SmtpConfig:
    return SmtpConfig(**({"host": "127.0.0.1", "port": port, "timeout": 5.0} | overrides))


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    archive = connect(str(tmp_path / "archive.db"))
    for run_id, status in ((7, "ok"), (8, "running")):
        archive.execute(
            "INSERT INTO runs (id, mode, site, started_at, status) VALUES (?, 'full', ?, ?, ?)",
            [run_id, SITE, "2025-03-04T11:00:00.000000Z", status],
        )
    return archive


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def add_event(db: sqlite_utils.Database, kind: str, subject_id: int, run_id: int = 7, **fields: object) -> int:
    subject_type = "story"
    path = f"/News/News-Stories/Article/Article/{subject_id}/story-{subject_id}/"
    if kind.startswith("image_"):
        subject_type, path = "image", f"/Multimedia/Photos/igphoto/{subject_id}/"
    elif kind in ("crawl_failed", "crawl_blocked", "parser_degraded"):
        subject_type = "run"
    row = {
        "run_id": run_id, "kind": kind, "subject_type": subject_type, "subject_id": subject_id,
        "url": SITE + path, "title": f"Story {subject_id}", "summary": f"Summary of {kind} {subject_id}",
        "detected_at": "2025-03-04T11:30:00.000000Z",
        "audience": "operator" if subject_type == "run" else "subscriber",
    } | fields
    return db["events"].insert(row).last_pk


UPDATED_DIFF = {
    "body": [
        {"op": "replace", "old": ["The quick brown fox jumps over the lazy dog."],
         "new": ["The quick red fox leaps over the lazy dog."]},
        {"op": "insert", "old": [], "new": ["A paragraph added at the end."]},
    ],
    "title": [{"op": "replace", "old": ["Old headline"], "new": ["New headline"]}],
}


def only_row(db: sqlite_utils.Database) -> dict:
    [row] = outbox.list_outbox(db)
    return row


def shown(value: object) -> str:
    """A header as a mail client shows it. The email package folds a 70-77 character value onto
    a continuation line (legal FWS) and its parser then keeps the leading space; clients drop it."""
    return str(value).strip()


def raw_headers(content: bytes) -> list[bytes]:
    return content.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


# --- the digest ---------------------------------------------------------------------------------


def test_digest_reaches_a_real_smtp_server_grouped_with_diff_and_links(db, sink):
    add_event(db, "image_new", 900, title="Soldiers train — Fort Liberty, N.C., café")
    add_event(db, "story_removed", 3)
    add_event(db, "story_updated", 2, title="New headline", changed_fields=json.dumps(["title", "body"]),
              diff=json.dumps(UPDATED_DIFF))
    add_event(db, "story_new", 1)
    add_event(db, "related_added", 4)
    add_event(db, "story_updated", 5, changed_fields=json.dumps(["tags"]))

    ids = queue_run_alerts(db, 7, alert_config(), now=NOW)
    result = flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW)

    assert len(ids) == 1
    assert result == FlushResult(sent=1, failed=0, pending=0)
    [received] = sink.messages
    assert received.mail_from == SENDER
    assert received.rcpt_tos == [ALICE, BOB]
    msg = received.message
    row = only_row(db)
    assert shown(msg["Subject"]) == "[defwatch] war.gov: 2 updated, 2 new, 1 removed, 1 related (2025-03-04 11:30 UTC)"
    assert msg["From"] == SENDER
    assert msg["To"] == f"{ALICE}, {BOB}"
    assert shown(msg["Message-ID"]) == row["message_id"]
    assert msg["Message-ID"].endswith("@alerts.example.org>")
    assert msg["Date"].datetime == NOW
    assert msg.get_content_type() == "multipart/alternative"
    received.content.decode("ascii")  # 7-bit clean: no relay needs 8BITMIME for it
    assert {part["Content-Transfer-Encoding"] for part in msg.iter_parts()} <= {"7bit", "quoted-printable", "base64"}
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()

    lines = [line.strip() for line in text.splitlines()]
    assert "- The quick brown fox jumps over the lazy dog." in lines
    assert "+ The quick red fox leaps over the lazy dog." in lines
    assert "+ A paragraph added at the end." in lines
    assert "- Old headline" in lines and "+ New headline" in lines
    assert "Changed: title, body" in lines
    headings = ["New stories (1)", "Updated stories (2)", "Removed stories (1)", "Related stories added (1)",
                "New images (1)"]
    assert [lines.index(h) for h in headings] == sorted(lines.index(h) for h in headings)
    assert lines.index("Title:") < lines.index("Body:")  # fields in a fixed order too
    link = f"{SITE}/News/News-Stories/Article/Article/2/story-2/"
    assert link in lines

    positions = [html.index(f">{h}</h2>") for h in headings]
    assert positions == sorted(positions)
    assert f'<a href="{link}">New headline</a>' in html
    assert "The quick <del" in html and ">brown</del><ins" in html and ">red</ins> fox" in html
    assert ">jumps</del><ins" in html and ">leaps</ins> over the lazy dog." in html
    assert ">A paragraph added at the end.</ins>" in html
    assert "* Soldiers train — Fort Liberty, N.C., café" in lines
    assert ">Soldiers train — Fort Liberty, N.C., café</a>" in html

    assert row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"] == clock.stamp(NOW)
    unalerted = db.execute("SELECT COUNT(*) FROM events WHERE alerted_at IS NULL").fetchone()[0]
    assert unalerted == 0
    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW + timedelta(hours=1)) == \
        FlushResult(sent=0, failed=0, pending=0)
    assert len(sink.messages) == 1


# --- outages and retries ------------------------------------------------------------------------


def test_smtp_down_keeps_the_mail_then_sends_it_exactly_once(db):
    port = unused_port()
    add_event(db, "story_new", 1)
    queue_run_alerts(db, 7, alert_config(), now=NOW)

    assert flush_outbox(db, smtp_config(port), alert_config(), now=NOW) == FlushResult(0, 0, 1)
    row = only_row(db)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_error"].startswith(f"cannot connect to 127.0.0.1:{port} (security=none): ")
    assert "refused" in row["last_error"].lower()
    assert row["next_attempt_at"] == clock.stamp(NOW + timedelta(seconds=60))

    with SmtpSink(port=port) as server:
        early = flush_outbox(db, smtp_config(port), alert_config(), now=NOW + timedelta(seconds=30))
        assert early == FlushResult(0, 0, 1)  # backoff honoured
        assert server.messages == []
        assert flush_outbox(db, smtp_config(port), alert_config(), now=NOW + timedelta(seconds=61)) == \
            FlushResult(1, 0, 0)
        assert flush_outbox(db, smtp_config(port), alert_config(), now=NOW + timedelta(hours=2)) == \
            FlushResult(0, 0, 0)
        assert len(server.messages) == 1
        assert server.messages[0].message["Message-ID"] == row["message_id"]
    row = only_row(db)
    assert (row["status"], row["attempts"]) == ("sent", 2)


def test_gives_up_after_max_attempts_with_exponential_backoff(db):
    port = unused_port()
    add_event(db, "story_new", 1)
    alerts = alert_config(max_attempts=3, retry_base_seconds=10)
    queue_run_alerts(db, 7, alerts, now=NOW)

    flush_outbox(db, smtp_config(port), alerts, now=NOW)
    assert only_row(db)["next_attempt_at"] == clock.stamp(NOW + timedelta(seconds=10))
    flush_outbox(db, smtp_config(port), alerts, now=NOW + timedelta(seconds=10))
    assert only_row(db)["next_attempt_at"] == clock.stamp(NOW + timedelta(seconds=30))
    assert flush_outbox(db, smtp_config(port), alerts, now=NOW + timedelta(seconds=30)) == FlushResult(0, 1, 0)
    row = only_row(db)
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("failed", 3, None)
    assert row["last_error"].endswith("(gave up after 3 attempts)")
    assert flush_outbox(db, smtp_config(port), alerts, now=NOW + timedelta(days=1)) == FlushResult(0, 0, 0)


def test_temporary_4xx_then_success(db, sink):
    add_event(db, "story_new", 1)
    queue_run_alerts(db, 7, alert_config(), now=NOW)
    sink.defer_next_data()

    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW) == FlushResult(0, 0, 1)
    row = only_row(db)
    assert row["last_error"] == f"127.0.0.1:{sink.port} answered 451 4.3.0 Temporary failure, try again later"
    assert sink.messages == []
    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW + timedelta(minutes=2)) == \
        FlushResult(1, 0, 0)
    assert [m.rcpt_tos for m in sink.messages] == [[ALICE, BOB]]


def test_permanently_rejected_recipient_is_not_retried_and_others_get_one_copy(db, sink):
    add_event(db, "story_new", 1)
    queue_run_alerts(db, 7, alert_config(), now=NOW)
    sink.reject_recipient(BOB)

    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW) == FlushResult(1, 0, 0)
    row = only_row(db)
    assert row["status"] == "sent"
    assert row["last_error"] == (f"refused for good: {BOB}: 550 5.1.1 <{BOB}>: Recipient address rejected;"
                                 f" delivered to: {ALICE}")
    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW + timedelta(days=1)) == \
        FlushResult(0, 0, 0)
    assert [m.rcpt_tos for m in sink.messages] == [[ALICE]]


def test_temporarily_refused_recipient_is_retried_alone_with_the_same_mail(db, sink):
    add_event(db, "story_new", 1)
    queue_run_alerts(db, 7, alert_config(), now=NOW)
    sink.defer_recipient(BOB)

    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW) == FlushResult(0, 0, 1)
    row = only_row(db)
    assert (row["status"], row["recipients"]) == ("pending", [BOB])
    assert row["last_error"] == f"deferred: {BOB}: 450 4.2.1 Mailbox busy; delivered to: {ALICE}"
    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW + timedelta(minutes=2)) == \
        FlushResult(1, 0, 0)
    first, second = sink.messages
    assert (first.rcpt_tos, second.rcpt_tos) == ([ALICE], [BOB])
    for header in ("Message-ID", "Subject", "Date", "From"):
        assert first.message[header] == second.message[header]
    assert first.message.get_body(("plain",)).get_content() == second.message.get_body(("plain",)).get_content()


def test_every_recipient_rejected_fails_at_once(db, sink):
    add_event(db, "story_new", 1)
    queue_run_alerts(db, 7, alert_config(), now=NOW)
    sink.reject_recipient(ALICE)
    sink.reject_recipient(BOB)

    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW) == FlushResult(0, 1, 0)
    row = only_row(db)
    assert row["status"] == "failed"
    assert row["last_error"].startswith(f"every recipient refused: refused for good: {ALICE}: 550")
    assert sink.messages == []


def test_auth_failure_is_recorded_without_the_password(db, caplog):
    caplog.set_level(logging.DEBUG)
    add_event(db, "story_new", 1)
    queue_run_alerts(db, 7, alert_config(), now=NOW)
    with SmtpSink(auth=("defwatch", PASSWORD)) as server:
        wrong = smtp_config(server.port, user="defwatch", password="Wr0ng-" + PASSWORD)
        assert flush_outbox(db, wrong, alert_config(), now=NOW) == FlushResult(0, 0, 1)
        row = only_row(db)
        assert row["last_error"].startswith(f"authentication as 'defwatch' failed at 127.0.0.1:{server.port}: 535")
        stored = json.dumps(outbox.list_outbox(db))
        for secret in _secret_forms("defwatch", wrong.password):
            assert secret not in row["last_error"] and secret not in caplog.text and secret not in stored
        assert "535" in caplog.text

        right = smtp_config(server.port, user="defwatch", password=PASSWORD)
        assert flush_outbox(db, right, alert_config(), now=NOW + timedelta(minutes=5)) == FlushResult(1, 0, 0)
        assert len(server.messages) == 1
        assert ("defwatch", True) in server.auth_attempts and ("defwatch", False) in server.auth_attempts
    for secret in _secret_forms("defwatch", PASSWORD):
        assert secret not in caplog.text


def _secret_forms(user: str, password: str) -> list[str]:
    plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return [password, base64.b64encode(password.encode()).decode(), plain]


def test_mail_abandoned_mid_send_is_resent_once_after_the_lease_with_its_message_id(db, sink, caplog):
    add_event(db, "story_new", 1)
    queue_run_alerts(db, 7, alert_config(), now=NOW)
    row = only_row(db)
    # A flush that claimed the mail and then died before recording the outcome.
    claimed = outbox.claim(db, row["id"], clock.stamp(NOW), clock.stamp(NOW + timedelta(minutes=15)))
    assert claimed is not None and claimed["status"] == "sending" and not claimed["reclaimed"]

    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW + timedelta(minutes=5)) == \
        FlushResult(0, 0, 1)
    assert sink.messages == []
    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW + timedelta(minutes=16)) == \
        FlushResult(1, 0, 0)
    [received] = sink.messages
    assert received.message["Message-ID"] == row["message_id"]
    assert received.message["Date"].datetime == NOW
    assert (only_row(db)["status"], only_row(db)["attempts"]) == ("sent", 2)
    assert "left 'sending' by an interrupted flush" in caplog.text


# --- hostile scraped text -----------------------------------------------------------------------


def test_titles_cannot_inject_headers_and_html_is_escaped(db, sink):
    add_event(db, "story_removed", 1, title="Evil\r\nBcc: victim@example.com")
    add_event(db, "story_removed", 2, title="A" * 5000)
    add_event(db, "story_new", 3, title="<script>alert('x')</script>", summary="<b>bold</b> & co",
              details=json.dumps({"paragraphs": ["<b>bold</b> & co"], "byline": "<i>By</i> <u>me</u>"}))
    queue_run_alerts(db, 7, alert_config(immediate_removals=True), now=NOW)

    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW) == FlushResult(3, 0, 0)
    subjects = []
    for received in sink.messages:
        msg = received.message
        assert received.rcpt_tos == [ALICE, BOB]
        assert msg["Bcc"] is None
        assert sorted(msg.keys()) == sorted(
            ["Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted", "X-Defwatch-Kind",
             "Content-Type", "MIME-Version"])
        assert not any(line.lower().startswith(b"bcc:") for line in raw_headers(received.content))
        assert len(msg["Subject"]) <= 200 and "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
        subjects.append(shown(msg["Subject"]))
        html = msg.get_body(("html",)).get_content()
        assert "<script>" not in html and "<b>" not in html
    assert subjects[0] == "[defwatch] war.gov: story removed: Evil Bcc: victim@example.com (2025-03-04 11:30 UTC)"
    assert subjects[1] == f"[defwatch] war.gov: story removed: {'A' * 119}… (2025-03-04 11:30 UTC)"
    digest = sink.messages[2].message
    assert digest["Subject"] == "[defwatch] war.gov: 1 new, 2 removed (2025-03-04 11:30 UTC)"
    html = digest.get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html and "by &lt;i&gt;By&lt;/i&gt; &lt;u&gt;me&lt;/u&gt;" in html
    assert "* Evil Bcc: victim@example.com" in digest.get_body(("plain",)).get_content().splitlines()


# --- queueing rules -----------------------------------------------------------------------------


def test_queueing_is_idempotent_and_held_events_wait_for_release(db):
    add_event(db, "story_new", 1, title="Fresh story")
    held = add_event(db, "story_updated", 2, title="Held update", held=1)
    add_event(db, "story_new", 9, run_id=8, title="Still crawling")

    [digest_id] = queue_run_alerts(db, 7, alert_config(), now=NOW)
    assert queue_run_alerts(db, 7, alert_config(), now=NOW) == []
    assert queue_pending_alerts(db, alert_config(), now=NOW) == []  # held, and run 8 is still running
    digest = outbox.get_mail(db, digest_id)
    assert "Fresh story" in digest["body_text"] and "Held update" not in digest["body_text"]

    db.execute("UPDATE events SET held = 0 WHERE id = ?", [held])
    [released_id] = queue_pending_alerts(db, alert_config(), now=NOW + timedelta(hours=1))
    assert queue_pending_alerts(db, alert_config(), now=NOW + timedelta(hours=1)) == []
    released = outbox.get_mail(db, released_id)
    assert "Held update" in released["body_text"] and "Fresh story" not in released["body_text"]
    assert "Still crawling" not in released["body_text"]
    assert released["subject"] == "[defwatch] war.gov: 1 updated (2025-03-04 11:30 UTC)"

    [run8_id] = queue_run_alerts(db, 8, alert_config(), now=NOW)
    assert "Still crawling" in outbox.get_mail(db, run8_id)["body_text"]
    assert db.execute("SELECT COUNT(*) FROM events WHERE alerted_at IS NULL").fetchone()[0] == 0
    assert [r["kind"] for r in outbox.list_outbox(db)] == ["digest", "digest", "digest"]


def test_operator_events_go_only_to_operator_recipients(db, sink):
    add_event(db, "crawl_blocked", 7, summary="403 Access Denied on 12 of 40 pages", url=None)
    add_event(db, "story_new", 1)

    assert len(queue_run_alerts(db, 7, alert_config(), now=NOW)) == 2
    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW) == FlushResult(2, 0, 0)
    by_rcpt = {tuple(m.rcpt_tos): m.message for m in sink.messages}
    assert set(by_rcpt) == {(OPS,), (ALICE, BOB)}  # operator mail first: it has priority
    assert sink.messages[0].rcpt_tos == [OPS]
    operator = by_rcpt[(OPS,)]
    assert operator["Subject"] == "[defwatch] war.gov operator: crawl blocked (2025-03-04 11:30 UTC)"
    assert "403 Access Denied on 12 of 40 pages" in operator.get_body(("plain",)).get_content()
    assert "403 Access Denied" in operator.get_body(("html",)).get_content()
    digest = by_rcpt[(ALICE, BOB)]
    assert digest["Subject"] == "[defwatch] war.gov: 1 new (2025-03-04 11:30 UTC)"
    assert "403 Access Denied" not in digest.get_body(("plain",)).get_content()


def test_no_recipients_queue_nothing_and_leave_events_unalerted(db):
    add_event(db, "crawl_failed", 7)
    add_event(db, "story_new", 1)
    assert queue_run_alerts(db, 7, alert_config(recipients=[], operator_recipients=[]), now=NOW) == []
    assert outbox.list_outbox(db) == []
    assert db.execute("SELECT COUNT(*) FROM events WHERE alerted_at IS NULL").fetchone()[0] == 2


def test_bad_configured_address_is_refused_before_queueing(db):
    add_event(db, "story_new", 1)
    with pytest.raises(ValueError, match="not a usable mail address"):
        queue_run_alerts(db, 7, alert_config(recipients=["a@example.com\r\nBcc: x@example.com"]), now=NOW)
    assert outbox.list_outbox(db) == []
    assert db.execute("SELECT COUNT(*) FROM events WHERE alerted_at IS NULL").fetchone()[0] == 1


def test_test_mail_and_outbox_listing(db, sink):
    mail_ids = queue_test_mail(db, alert_config(recipients=[ALICE, OPS]), now=NOW)
    pending = outbox.list_outbox(db, status="pending")
    assert [(p["id"], p["kind"], p["recipients"]) for p in pending] == [
        (mail_ids[0], "test", [ALICE]), (mail_ids[1], "test", [OPS])]  # one per recipient
    assert flush_outbox(db, smtp_config(sink.port), alert_config(), now=NOW) == FlushResult(2, 0, 0)
    alice, ops = sorted(sink.messages, key=lambda m: m.rcpt_tos)
    assert [alice.rcpt_tos, ops.rcpt_tos] == [[ALICE], [OPS]]
    assert alice.message["Subject"] == "[defwatch] war.gov: test mail"
    assert alice.message.get_content_type() == "text/plain"
    assert "the SMTP settings work" in alice.message.get_content()
    assert "operator" not in alice.message.get_content()
    assert "You get the operator mails" in ops.message.get_content()  # OPS is both: both roles are listed
    assert "every change, after each crawl" in ops.message.get_content()
    assert sorted(r["id"] for r in outbox.list_outbox(db, status="sent")) == mail_ids
    assert outbox.list_outbox(db, status="pending") == []
    with pytest.raises(ValueError, match="unknown outbox status"):
        outbox.list_outbox(db, status="bogus")
    with pytest.raises(ValueError, match="no alert recipients"):
        queue_test_mail(db, alert_config(recipients=[], operator_recipients=[]))


# --- transport security -------------------------------------------------------------------------


def test_configured_tls_mode_is_honoured_against_a_plain_server(db, sink):
    add_event(db, "story_new", 1)
    queue_run_alerts(db, 7, alert_config(), now=NOW)

    flush_outbox(db, smtp_config(sink.port, security="ssl"), alert_config(), now=NOW)
    error = only_row(db)["last_error"]
    assert error.startswith(f"TLS with 127.0.0.1:{sink.port} failed (security=ssl): ")
    assert error.endswith("is this port really implicit TLS, usually port 465?")

    flush_outbox(db, smtp_config(sink.port, security="starttls"), alert_config(), now=NOW + timedelta(hours=1))
    row = only_row(db)
    expected = f"127.0.0.1:{sink.port} (security=starttls): STARTTLS extension not supported by server."
    assert row["last_error"] == expected
    assert (row["status"], row["attempts"]) == ("pending", 2)
    assert sink.messages == []  # never fell back to plain text


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_modes_deliver_over_an_encrypted_session(db, tmp_path, monkeypatch, mode):
    pytest.importorskip("cryptography")
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts it like a private CA
    add_event(db, "story_new", 1)
    queue_run_alerts(db, 7, alert_config(), now=NOW)
    with SmtpSink(tls=mode, cert=(cert, key), auth=("defwatch", PASSWORD)) as server:
        smtp = smtp_config(server.port, security=mode, user="defwatch", password=PASSWORD)
        assert flush_outbox(db, smtp, alert_config(), now=NOW) == FlushResult(1, 0, 0)
        [received] = server.messages
    assert received.tls
    assert received.message["Subject"] == "[defwatch] war.gov: 1 new (2025-03-04 11:30 UTC)"


def test_two_concurrent_flushers_never_send_a_mail_twice(db, sink, tmp_path):
    ids = [mail_id for _ in range(3) for mail_id in queue_test_mail(db, alert_config(recipients=[ALICE]), now=NOW)]
    assert len(ids) == 6  # ALICE's and OPS's, three times
    other = connect(str(tmp_path / "archive.db"))  # a second process's connection, e.g. the CLI
    results: list[FlushResult] = []

    def flush(archive: sqlite_utils.Database) -> None:
        results.append(flush_outbox(archive, smtp_config(sink.port), alert_config(), now=NOW))

    threads = [threading.Thread(target=flush, args=(archive,)) for archive in (db, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sum(r.sent for r in results) == 6 and sum(r.failed for r in results) == 0
    message_ids = sorted(shown(m.message["Message-ID"]) for m in sink.messages)
    assert message_ids == sorted(outbox.get_mail(db, i)["message_id"] for i in ids)
    assert [r["attempts"] for r in outbox.list_outbox(db, status="sent")] == [1] * 6
