"""A digest at a fixed time on the reader's clock (``[[subscribers]] at``, ``timezone``).

A real SQLite archive; the clock is the ``now`` every flush is given, so days (and daylight saving
changes) pass in milliseconds. A flush every 20 minutes finds one new event each time, as a
daemon's runs would.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.clock import stamp
from core.config import AlertConfig, Config, SubscriberConfig
from db.schema import connect
from monitor.daemon import log_start_up
from monitor.subscribers import describe, latest_digest_time, queue_subscriber_digests, register

NEW_YORK = ZoneInfo("America/New_York")


class Archive:
    """A fresh archive with one subscriber; events are found and flushes run at the times given."""

    def __init__(self, path: str, sub: SubscriberConfig, subscribed_at: datetime) -> None:
        self.db = connect(path)
        self.sub = sub
        register(self.db, [sub], stamp(subscribed_at))
        self.db.conn.commit()
        self.found: list[tuple[int, datetime]] = []  # (event id, when found)
        self.digests: list[tuple[int, datetime]] = []  # (outbox id, when queued)

    def find_event(self, when: datetime) -> None:
        run = self.db.execute("INSERT INTO runs (mode, site, started_at, status) VALUES ('full', 'x', ?, 'ok')",
                              [stamp(when)]).lastrowid
        event = self.db.execute(
            """INSERT INTO events (run_id, kind, subject_type, subject_id, url, title, summary, detected_at)
               VALUES (?, 'story_new', 'story', ?, 'https://www.war.gov/a/1/', 'A new story', 'New', ?)""",
            [run, len(self.found) + 1, stamp(when)]).lastrowid
        self.db.conn.commit()
        self.found.append((event, when))

    def flush(self, when: datetime) -> list[int]:
        ids = queue_subscriber_digests(self.db, AlertConfig(), [self.sub], now=when)
        self.digests += [(mail_id, when) for mail_id in ids]
        return ids

    def run_every(self, start: datetime, end: datetime, minutes: int = 20, events: bool = True) -> None:
        when = start
        while when < end:
            if events:
                self.find_event(when)
            self.flush(when)
            when += timedelta(minutes=minutes)

    def carried(self, mail_id: int) -> list[int]:
        rows = self.db.execute("SELECT event_id FROM subscriber_events WHERE outbox_id = ? ORDER BY event_id",
                               [mail_id]).fetchall()
        return [row[0] for row in rows]

    def check_each_digest_carries_what_came_since_the_last(self) -> None:
        previous = datetime.min.replace(tzinfo=UTC)
        for mail_id, when in self.digests:
            assert self.carried(mail_id) == [e for e, found in self.found if previous < found <= when]
            previous = when
        (mailed,) = self.db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        assert mailed == len(self.digests)


def local_times(moments: Iterable[datetime], zone: ZoneInfo) -> list[str]:
    return [m.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") for m in moments]


@pytest.mark.parametrize("first_day, days", [
    # clocks go forward at 02:00 on Sunday 8 March 2026: 07:00 is 12:00 UTC before, 11:00 UTC after
    (datetime(2026, 3, 6, 12, 7, tzinfo=UTC), ["03-07 07:07 EST", "03-08 07:07 EDT", "03-09 07:07 EDT"]),
    # and back at 02:00 on Sunday 1 November 2026: 07:00 is 11:00 UTC before, 12:00 UTC after
    (datetime(2026, 10, 30, 12, 7, tzinfo=UTC), ["10-31 07:07 EDT", "11-01 07:07 EST", "11-02 07:07 EST"]),
])
def test_a_daily_digest_goes_at_the_same_local_time_across_daylight_saving(tmp_path, first_day, days):
    sub = SubscriberConfig("desk@example.org", cadence="daily", at="07:00", timezone="America/New_York")
    archive = Archive(str(tmp_path / "a.db"), sub, subscribed_at=first_day - timedelta(minutes=7))
    archive.run_every(first_day, first_day + timedelta(days=3, hours=1))  # every 20 minutes, a change each
    assert local_times((when for _, when in archive.digests), NEW_YORK) == [f"2026-{day}" for day in days]
    archive.check_each_digest_carries_what_came_since_the_last()
    hours = 23 if first_day.month == 3 else 25  # the night the clocks go forward is an hour shorter
    assert len(archive.carried(archive.digests[1][0])) == 3 * hours
    (body,) = archive.db.execute("SELECT body_text FROM outbox WHERE id = ?", [archive.digests[0][0]]).fetchone()
    assert "a digest once a day at 07:00, America/New_York time." in " ".join(body.split())  # wrapped at 76


def test_without_at_the_digest_keeps_its_24_hours_since_the_last(tmp_path):
    start = datetime(2026, 3, 6, 12, 7, tzinfo=UTC)
    archive = Archive(str(tmp_path / "a.db"), SubscriberConfig("desk@example.org", cadence="daily"),
                      subscribed_at=start)
    archive.run_every(start, start + timedelta(days=3), minutes=25)
    minutes = [(when - start) // timedelta(minutes=1) for _, when in archive.digests]
    assert minutes == [24 * 60 + 10, 48 * 60 + 20]  # later by part of a run's interval each day
    archive.check_each_digest_carries_what_came_since_the_last()


def test_a_quiet_day_sends_nothing_and_a_late_change_waits_for_the_next_morning(tmp_path):
    day1 = datetime(2026, 1, 1, tzinfo=UTC)  # default time zone: UTC
    archive = Archive(str(tmp_path / "a.db"), SubscriberConfig("desk@example.org", cadence="daily", at="07:00"),
                      subscribed_at=day1)
    archive.find_event(day1 + timedelta(hours=3))
    assert archive.flush(day1 + timedelta(hours=6, minutes=55)) == []  # not yet 07:00
    assert len(archive.flush(day1 + timedelta(hours=7, minutes=5))) == 1
    day2 = day1 + timedelta(days=1)
    assert archive.flush(day2 + timedelta(hours=7, minutes=5)) == []  # nothing happened: no mail
    archive.find_event(day2 + timedelta(hours=10))
    assert archive.flush(day2 + timedelta(hours=10, minutes=5)) == []  # today's 07:00 has gone by
    assert archive.flush(day2 + timedelta(hours=23, minutes=55)) == []
    assert len(archive.flush(day2 + timedelta(days=1, hours=7, minutes=5))) == 1
    assert local_times((when for _, when in archive.digests), ZoneInfo("UTC")) == [
        "2026-01-01 07:05 UTC", "2026-01-03 07:05 UTC"]
    archive.check_each_digest_carries_what_came_since_the_last()


def test_days_missed_while_the_daemon_was_down_make_one_digest(tmp_path):
    day1 = datetime(2026, 1, 1, tzinfo=UTC)
    archive = Archive(str(tmp_path / "a.db"), SubscriberConfig("desk@example.org", cadence="daily", at="07:00"),
                      subscribed_at=day1)
    archive.run_every(day1 + timedelta(hours=6), day1 + timedelta(hours=7, minutes=1))  # one digest at 07:00
    for day in (1, 2, 3):  # crawls by hand; the daemon's flush is down until 4 January 15:00
        archive.find_event(day1 + timedelta(days=day, hours=12))
    assert len(archive.flush(day1 + timedelta(days=3, hours=15))) == 1
    assert archive.flush(day1 + timedelta(days=3, hours=15, minutes=20)) == []
    archive.run_every(day1 + timedelta(days=3, hours=16), day1 + timedelta(days=4, hours=8))
    assert local_times((when for _, when in archive.digests), ZoneInfo("UTC")) == [
        "2026-01-01 07:00 UTC", "2026-01-04 15:00 UTC", "2026-01-05 07:00 UTC"]
    assert len(archive.carried(archive.digests[1][0])) == 3
    archive.check_each_digest_carries_what_came_since_the_last()


def test_an_hourly_digest_goes_at_minutes_past_the_local_hour(tmp_path):
    start = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    sub = SubscriberConfig("desk@example.org", cadence="hourly", at=":15", timezone="Asia/Kolkata")  # UTC+05:30
    archive = Archive(str(tmp_path / "a.db"), sub, subscribed_at=start)
    archive.run_every(start, start + timedelta(hours=4), minutes=10)
    assert local_times((when for _, when in archive.digests), ZoneInfo("Asia/Kolkata")) == [
        f"2026-01-01 {hour:02}:20 IST" for hour in (6, 7, 8, 9)]  # :15 IST is :45 UTC; runs at :50 UTC
    assert describe(sub).endswith("; a digest once an hour at :15, Asia/Kolkata time.")
    archive.check_each_digest_carries_what_came_since_the_last()


def test_a_time_the_clocks_skip_comes_an_hour_later_and_one_they_repeat_once():
    skipped = SubscriberConfig("a@example.org", cadence="daily", at="02:30", timezone="America/New_York")
    spring = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT: 02:30 never happened that night
    assert latest_digest_time(skipped, spring) == spring
    assert latest_digest_time(skipped, spring - timedelta(seconds=1)) == datetime(2026, 3, 7, 7, 30, tzinfo=UTC)
    twice = SubscriberConfig("a@example.org", cadence="daily", at="01:30", timezone="America/New_York")
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT; 01:30 EST an hour later is the same day
    assert latest_digest_time(twice, first + timedelta(hours=1, minutes=5)) == first
    assert latest_digest_time(twice, first - timedelta(seconds=1)) == datetime(2026, 10, 31, 5, 30, tzinfo=UTC)


def test_the_daemons_start_up_log_says_when_each_digest_goes(caplog):
    caplog.set_level(logging.INFO, logger="defwatch.daemon")
    log_start_up(Config(subscribers=[
        SubscriberConfig("morning@example.org", cadence="daily", at="07:00", timezone="America/New_York"),
        SubscriberConfig("drift@example.org", cadence="daily")]), None)
    assert "subscriber mail to morning@example.org (daily at 07:00 America/New_York), drift@example.org (daily); " \
        in caplog.text
