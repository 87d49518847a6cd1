"""The archive's clock, its one time stamp format, and the one reader of dates typed by a person.

Every time the archive, the events and the outbox store is ISO 8601 UTC with microseconds and a
``Z``: it sorts as text, which every ``--since`` query and every poller of ``events.detected_at``
relies on. Writing the format once keeps a stamp from one table comparable with another.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# For tests only, never in production: shift every time stamp defwatch takes by this many seconds,
# to run real crawls (child processes) under a wall clock that jumped (NTP step, VM snapshot).
TEST_CLOCK_OFFSET = "DEFWATCH_TEST_CLOCK_OFFSET"
# For benchmarks only: time runs this many times faster than the real clock from the real Unix time in
# TEST_CLOCK_EPOCH on (``bench/time_to_alert.py --end-to-end`` lives a simulated day in minutes).
TEST_CLOCK_SPEED = "DEFWATCH_TEST_CLOCK_SPEED"
TEST_CLOCK_EPOCH = "DEFWATCH_TEST_CLOCK_EPOCH"


def wall_clock() -> datetime:
    """The wall clock every archive, event and outbox time stamp comes from (tests move it here)."""
    offset = os.environ.get(TEST_CLOCK_OFFSET)
    now = datetime.now(UTC)
    speed = os.environ.get(TEST_CLOCK_SPEED)
    if speed:
        epoch = datetime.fromtimestamp(float(os.environ[TEST_CLOCK_EPOCH]), UTC)
        now = epoch + (now - epoch) * float(speed)
    return now + timedelta(seconds=float(offset)) if offset else now


def utcnow() -> str:
    """Now, stamped the way the archive stores times."""
    return wall_clock().strftime(TIME_FORMAT)


def stamp(moment: datetime | None = None) -> str:
    """Format a time the way the archive stores it (now by default); naive times are taken as UTC."""
    moment = moment or wall_clock()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_stamp(text: str) -> datetime:
    """Read back a time written by ``stamp`` (also accepts plain ISO 8601 with an offset); aware, UTC if naive."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def boot_time() -> str | None:
    """When this machine booted, stamped like ``utcnow`` (Linux ``/proc/stat``); None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            seconds = next((int(line.split()[1]) for line in stat if line.startswith("btime ")), None)
    except (OSError, ValueError, IndexError):
        return None
    if seconds is None:
        return None
    return stamp(datetime.fromtimestamp(seconds, UTC))


class DateInputError(ValueError):
    """A date typed by a person (``--since``, ``--shot-from``) that is not one; the message says what is."""


def parse_instant(text: str, option: str = "--since") -> str:
    """A date or date-time typed by a person, as the archive stores times (UTC, ``Z``), so it compares as text.

    A date or a time without an offset is taken as UTC.
    """
    try:
        return stamp(parse_stamp(text))
    except ValueError as exc:
        raise DateInputError(f"{option} needs an ISO date or date-time like 2026-01-31 or 2026-01-31T12:00, "
                             f"not {text!r}") from exc


def parse_day(text: str, option: str) -> str:
    """A calendar date as ``YYYY-MM-DD`` (what ``published`` and VIRIN shot dates compare with)."""
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise DateInputError(f"{option} needs a date like 2024-01-31, not {text!r}") from exc


def as_utc(moment: datetime | None) -> datetime:
    """``moment`` as an aware time (naive is taken as UTC), or now from the archive's clock when None."""
    if moment is None:
        return wall_clock()
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
