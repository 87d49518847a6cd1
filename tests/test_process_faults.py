"""Process and machine faults, end to end: kill -9 at random moments, a read-only archive, a full disk,
and a wall clock that jumps.

Everything runs for real: `python -m defwatch crawl` child processes (each with its archive writer
child) against the sample site, a real SQLite file, a real SMTP server (tests/smtp_sink.py, slowed
down where a kill must land in the SMTP conversation). The clock is moved in-process by patching
``core.clock.wall_clock`` (and APScheduler's clock for the daemon), and in crawl child processes by
``DEFWATCH_TEST_CLOCK_OFFSET`` (seconds; the test-only hook in ``core.clock.wall_clock``).

What must hold after each fault: the archive passes ``PRAGMA integrity_check`` and has no version
without its fetch and raw page; every scripted change is reported exactly once as an event (none
lost, none doubled, none invented); every queued mail reaches the SMTP server exactly once. The one
duplicate SMTP allows (a kill after the server accepted the message, before the outbox recorded it:
at-least-once with the same Message-ID, see ``monitor.mailer.flush_outbox``) is only tolerated for
a mail the test saw in exactly that state.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import core.clock
from core.config import AlertConfig, Config, JobConfig, MonitorConfig, SmtpConfig
from core.fetch import FetchInfo
from core.records import Story
from db import outbox, queries
from db.archive import Archive
from db.events import list_events
from db.queries import is_baseline
from db.schema import connect
from monitor.changes import detect_changes
from monitor.compose import queue_run_alerts
from monitor.daemon import run_daemon
from monitor.mailer import FlushResult, flush_outbox
from samplesite import SampleSite
from tests.conftest import ROOT, CrawlRun, crawl_env, run_crawl
from tests.smtp_sink import SmtpSink, _Handler, unused_port

ANALYST = "analyst@example.org"
# Stories of the sample site with known neighbours, as in tests/test_monitor_e2e.py.
CAPTIONED_IMAGE, CAPTIONED_STORY = 2003217370, 3386221
REMOVED = 3298110
EDITED = 3610656
# In no listing or feed: only its one linker (3646590) leads to it, as an old story on the real site.
RELATED_ONLY = 4152290
DAY = 86400


# -- helpers ----------------------------------------------------------------------------------------


class _SlowHandler(_Handler):
    """The sink's handler, answering RCPT after ``rcpt_delay`` seconds: a slow mail server, so a kill
    lands in the SMTP conversation before DATA (nothing delivered, the mail left ``sending``)."""

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: ANN001, ANN201
        with self.sink.lock:
            self.sink.rcpt_seen += 1
        await asyncio.sleep(self.sink.rcpt_delay)
        return await super().handle_RCPT(server, session, envelope, address, options)


class SlowSink(SmtpSink):
    def __init__(self, rcpt_delay: float) -> None:
        super().__init__()
        self.rcpt_delay = rcpt_delay
        self.rcpt_seen = 0
        self._controller.handler = _SlowHandler(self)


def alert_env(tmp_path: Path, sink: SmtpSink | None, port: int | None = None, **extra: str) -> dict[str, str]:
    return crawl_env(tmp_path, DEFWATCH_SMTP_HOST="127.0.0.1", DEFWATCH_SMTP_PORT=str(port or sink.port),
                     DEFWATCH_ALERT_FROM="defwatch@localhost", DEFWATCH_ALERT_TO=ANALYST, **extra)


def query(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def assert_consistent(path: Path) -> None:
    """The archive as a kill or a failed write left it: sound, no version without its fetch and body."""
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    assert query(path, "PRAGMA foreign_key_check") == []
    for table in ("story_versions", "image_versions"):
        half = query(path, f"""SELECT v.id FROM {table} v LEFT JOIN fetches f ON f.id = v.fetch_id
                               LEFT JOIN raw_pages r ON r.sha256 = v.raw_sha256
                               WHERE f.id IS NULL OR r.sha256 IS NULL""")
        assert half == [], f"{table} rows without their fetch or raw page: {half}"
    assert query(path, """SELECT f.id FROM fetches f LEFT JOIN raw_pages r ON r.sha256 = f.sha256
                          WHERE f.sha256 IS NOT NULL AND r.sha256 IS NULL""") == []


def subscriber_events(path: Path, first_run: int = 1) -> Counter:
    return Counter(query(path, "SELECT kind, subject_id FROM events WHERE audience = 'subscriber' AND run_id >= ?",
                         (first_run,)))


def digest_changes(received) -> int:  # noqa: ANN001
    """How many change events a digest carries (its overview line: "...; N change event(s) in all.")."""
    text = received.message.get_body(preferencelist=("plain",)).get_content()
    return int(re.search(r"(\d+) change event\(s\) in all", text).group(1))


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _is_writer(pid: int) -> bool:
    try:
        return b"crawler.archiver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (an orphan may wait for init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str,
              proc: subprocess.Popen | None = None) -> bool:
    """Poll until ``predicate()``; False if ``proc`` ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def crawl_command(db_path: Path, site: str, mode: str = "full", *extra: str) -> list[str]:
    return [sys.executable, "-m", "defwatch", "crawl", "--db", str(db_path), "--site", site, "--mode", mode,
            "--json", *extra]


# -- 1. kill -9 at random moments -------------------------------------------------------------------


@dataclass
class KillLog:
    landed: Counter = field(default_factory=Counter)
    undetected: int = 0  # kills that left stored pages no detection had compared yet
    stranded: int = 0  # kills that left a mail 'sending' (the SMTP conversation cut)
    in_doubt: set[str] = field(default_factory=set)  # Message-IDs the server took, the outbox not yet


def crawl_and_kill(db_path: Path, site: SampleSite, env: dict[str, str], sink: SlowSink, rng: random.Random,
                   phase: str, crawl_seconds: float, log: KillLog) -> str:
    """Start `defwatch crawl` and SIGKILL it in ``phase``; returns where it died.

    crawl: at a random moment of the crawl. stored: soon after the archive writer's first commit.
    detect: right after the archive writer has stored everything and exited, while the crawl process
    shuts Scrapy down, detects changes and queues mail (about 30 ms of detection). mail: during an
    SMTP conversation (the sink answers RCPT slowly).
    """
    with open(db_path.parent / "killed-runs.log", "ab") as out:
        proc = subprocess.Popen(crawl_command(db_path, site.base_url), env=env, cwd=ROOT, stdout=out, stderr=out)
    writers: set[int] = set()

    def writer_started() -> bool:
        writers.update(pid for pid in _children(proc.pid) if pid not in writers and _is_writer(pid))
        return bool(writers)

    if phase == "crawl":
        deadline = time.monotonic() + rng.uniform(0.3, crawl_seconds)
        while time.monotonic() < deadline and proc.poll() is None:
            writer_started()
            time.sleep(0.005)
    elif phase == "stored":
        def committed() -> bool:
            writer_started()
            try:
                return query(db_path, "SELECT COUNT(*) FROM fetches f JOIN runs r ON r.id = f.run_id"
                                      " WHERE r.pid = ?", (proc.pid,))[0][0] > 0
            except sqlite3.OperationalError:  # the first crawl has not created the tables yet
                return False
        if _wait_for(committed, 60, "the writer's first commit", proc):
            time.sleep(rng.uniform(0, 0.2))
    elif phase == "detect":
        if _wait_for(writer_started, 60, "the archive writer", proc):
            _wait_for(lambda: not any(_alive(w) for w in writers), 60, "the writer to finish", proc)
            time.sleep(rng.uniform(0, 0.12))
    else:
        seen = sink.rcpt_seen
        if _wait_for(lambda: sink.rcpt_seen > seen, 60, "an SMTP conversation", proc):
            time.sleep(rng.uniform(0, sink.rcpt_delay * 0.8))
    landed = phase
    if proc.poll() is None:
        proc.kill()
    else:
        landed = "completed"
    proc.wait(30)
    for writer in writers:  # an orphaned writer commits what it was sent, then exits
        _wait_for(lambda w=writer: not _alive(w), 30, f"orphaned writer {writer}")
    log.landed[landed] += 1
    undetected = query(db_path, """SELECT COUNT(*) FROM runs r WHERE r.pid = ? AND r.detected_at IS NULL
                                   AND EXISTS (SELECT 1 FROM fetches f WHERE f.run_id = r.id)""", (proc.pid,))[0][0]
    cut = {row[0] for row in query(db_path, "SELECT message_id FROM outbox WHERE status = 'sending'"
                                            " AND claimed_by LIKE ?", (f"{proc.pid}@%",))}
    log.undetected += bool(undetected)
    log.stranded += bool(cut)
    log.in_doubt |= cut & {m.message["Message-ID"] for m in sink.messages}
    return f"{landed}{' (pages stored, not yet compared)' if undetected else ''}{' (mail cut mid-send)' if cut else ''}"


@dataclass
class Script:
    """Scripted site changes, one story each, and the subscriber events each must produce once."""

    site: SampleSite
    rng: random.Random
    expected: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        reserved = {CAPTIONED_STORY, REMOVED, RELATED_ONLY}
        self.free = [s for s in sorted(self.site.content.stories) if s not in reserved]
        self.rng.shuffle(self.free)
        self.cycle = [self.edit, self.publish, self.title, self.related, self.edit, self.publish]
        self.once = [self.caption, self.remove]

    def step(self, number: int) -> str:
        action = self.once.pop(0) if self.once and number % 5 == 2 else self.cycle[number % len(self.cycle)]
        if len(self.free) < 2:  # every story has had its change: a second one might go unseen between
            action = self.publish  # two observations and be reported once for both
        return action()

    def edit(self) -> str:
        story = self.free.pop()
        self.site.edit_paragraph(story, 0, f"A paragraph rewritten while crawls were being killed ({story}).")
        self.expected[("story_updated", story)] += 1
        return f"edit {story}"

    def title(self) -> str:
        story = self.free.pop()
        self.site.set_title(story, f"A story retitled while crawls were being killed ({story})")
        self.expected[("story_updated", story)] += 1
        return f"retitle {story}"

    def publish(self) -> str:
        story = self.site.publish()
        self.expected[("story_new", story)] += 1
        for block in self.site.content.stories[story]["body"]:  # every new photo is an event too
            if block.get("type") == "image":
                self.expected[("image_new", block["media_id"])] += 1
        return f"publish {story}"

    def related(self) -> str:
        story, target = self.free.pop(), self.free.pop()
        self.site.add_related(story, target)
        self.expected[("related_added", story)] += 1
        return f"link {story} -> {target}"

    def caption(self) -> str:  # the photo page and the story showing it both change
        self.site.set_caption(CAPTIONED_IMAGE, "A caption rewritten while crawls were being killed.")
        self.expected[("image_updated", CAPTIONED_IMAGE)] += 1
        self.expected[("story_updated", CAPTIONED_STORY)] += 1
        return f"caption {CAPTIONED_IMAGE}"

    def remove(self) -> str:  # confirmed by the second run that gets the 404
        self.site.remove(REMOVED, status=404)
        self.expected[("story_removed", REMOVED)] += 1
        return f"remove {REMOVED}"


PHASES = ("crawl", "stored", "detect", "mail")


def kill_loop(tmp_path: Path, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    archive = tmp_path / "killed.db"
    log = KillLog()
    # Far more kills mid-send than any deployment sees: the same mail may be cut every time. A mail
    # whose sender died ``max_attempts`` times is given up by design (it might be what kills it).
    (tmp_path / "defwatch-test.toml").write_text("[monitor]\nremoval_confirm_runs = 2\n[alerts]\nmax_attempts = 100\n",
                                                 encoding="utf-8")
    with SampleSite() as site, SlowSink(rcpt_delay=0.6) as sink:
        site.unlist(RELATED_ONLY)
        env = alert_env(tmp_path, sink)
        # The very first crawl killed half-way: the next one completes the baseline, announcing nothing.
        print(f"kill 0: the first crawl, killed in {crawl_and_kill(archive, site, env, sink, rng, 'stored', 0, log)}")
        started = time.monotonic()
        baseline = run_crawl(archive, site.base_url, env=env)
        assert baseline.returncode == 0, baseline.stderr
        crawl_seconds = time.monotonic() - started
        assert_consistent(archive)
        assert subscriber_events(archive) == Counter() and not sink.messages
        script = Script(site, rng)
        for number in range(kills):
            change = script.step(number)
            landed = crawl_and_kill(archive, site, env, sink, rng, PHASES[number % len(PHASES)], crawl_seconds, log)
            print(f"kill {number + 1}: after {change}, killed in {landed}")
            assert_consistent(archive)
        for _ in range(2):  # clean runs: the removal needs two that see the 404, the outbox drains
            final = run_crawl(archive, site.base_url, env=env)
            assert final.returncode == 0, final.stderr
        assert_consistent(archive)
        mails = list(sink.messages)
        # Full coverage after recovery: every story (the related-only one too) and every photo page is
        # archived, and nothing the archive heard of is still waiting.
        assert {s for (s,) in query(archive, "SELECT id FROM stories")} == set(site.content.stories)
        assert {m for (m,) in query(archive, "SELECT media_id FROM images WHERE source = 'photo_page'")} == set(
            site.content.images)
        assert query(archive, "SELECT page_type, id FROM known_pages WHERE archived_at IS NULL") == []
    print(f"kills landed: {dict(log.landed)}; left pages not compared: {log.undetected}; cut a mail mid-send: "
          f"{log.stranded}; mails the server had taken at a kill: {len(log.in_doubt)}")
    assert sum(log.landed[phase] for phase in PHASES) >= (kills + 1) * 2 // 3
    assert log.undetected and log.stranded  # the two states a kill used to turn into a lost event, a lost mail

    got = subscriber_events(archive)
    assert got == script.expected, f"lost: {script.expected - got}; doubled or invented: {got - script.expected}"
    assert query(archive, "SELECT COUNT(*) FROM events WHERE audience = 'subscriber' AND alerted_at IS NULL") == [(0,)]

    queued = dict(query(archive, "SELECT message_id, status FROM outbox"))
    assert set(queued.values()) == {"sent"}, queued
    delivered = Counter(m.message["Message-ID"] for m in mails)
    assert set(delivered) == set(queued), "a queued mail never reached the server"
    doubled = {m for m, n in delivered.items() if n > 1}
    assert doubled <= log.in_doubt and max(delivered.values()) <= 2, f"mails sent twice: {doubled}"
    once = {m.message["Message-ID"]: m for m in mails}  # a byte-identical resend counts once
    assert sum(digest_changes(m) for m in once.values()) == sum(script.expected.values())


def test_kill_9_at_random_moments_loses_and_doubles_nothing(tmp_path):
    """The first crawl killed half-way, then crawls killed with SIGKILL, each after a scripted change:
    during the crawl, just after the writer's first commit, around change detection and during the
    SMTP conversation, in turn, at a seeded random moment (13 kills here, about a minute and a half;
    the slow variant below kills 46)."""
    kill_loop(tmp_path, kills=12, seed=1_012)


@pytest.mark.slow
def test_kill_9_at_random_moments_many_times(tmp_path):
    kill_loop(tmp_path, kills=45, seed=4_045)


# -- 2. a read-only archive, a full disk -------------------------------------------------------------


def _snapshot(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


def _assert_one_clear_line(proc: subprocess.CompletedProcess, archive: Path, *words: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert str(archive) in lines[0] and all(w in lines[0] for w in words), lines[0]


@contextmanager
def readonly_archive(site: SampleSite, how: str) -> Iterator[tuple[Path, Callable[..., list[str]], dict]]:
    """A crawled archive its commands cannot write: ``filesystem`` (a read-only bind mount in a private
    mount namespace, EROFS) or ``chmod`` (file and directory read-only, run as an unprivileged user).
    Yields the archive, a wrapper for the command line and the environment."""
    directory = Path(tempfile.mkdtemp(prefix="defwatch-ro-"))
    try:
        env = crawl_env(directory, PYTHONDONTWRITEBYTECODE="1")
        archive = directory / "archive.db"
        writer = Archive.open(str(archive))  # an archive with one finished run, closed cleanly
        writer.finish_run(writer.start_run("full", site.base_url), "ok", {})
        writer.close()
        if how == "filesystem":
            def wrap(argv: list[str]) -> list[str]:
                return ["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{directory}" "{directory}" && exec "$@"',
                        "sh", *argv]
        else:
            directory.chmod(0o555)  # listable by anyone (the unprivileged user reads it), writable by nobody
            archive.chmod(0o444)
            (directory / "defwatch-test.toml").chmod(0o444)

            def wrap(argv: list[str]) -> list[str]:  # root writes through any chmod, unless it lacks the capability
                drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
                return drop + argv
        yield archive, wrap, env
    finally:
        directory.chmod(0o755)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("how", ["filesystem", "chmod"])
def test_read_only_archive_fails_fast_with_one_clear_line_and_changes_nothing(site, how):
    if how == "filesystem" and (os.geteuid() != 0 or shutil.which("unshare") is None):
        pytest.skip("a read-only bind mount needs root (a private mount namespace)")
    if how == "chmod" and os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("root ignores file modes; setpriv is needed to drop CAP_DAC_OVERRIDE")
    with readonly_archive(site, how) as (archive, wrap, env):
        before = _snapshot(archive.parent)
        for argv in (crawl_command(archive, site.base_url),
                     [sys.executable, "-m", "defwatch", "run", "--db", str(archive), "--site", site.base_url]):
            started = time.monotonic()
            proc = subprocess.run(wrap(argv), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
                                  check=False)
            assert time.monotonic() - started < 15, "a read-only archive must fail at once, not after crawling"
            _assert_one_clear_line(proc, archive, "read-only")
        assert _snapshot(archive.parent) == before  # not a byte changed, no -wal, -shm or lock file left
        assert query(archive, "SELECT id, status FROM runs") == [(1, "ok")]


def _file_size_limit(limit: int) -> Callable[[], None]:
    """preexec_fn: writes past ``limit`` bytes fail with EFBIG (as on a full disk) instead of killing
    the process with SIGXFSZ. The crawl's archive writer, a child, inherits both."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("room_kb", [192, 400])  # full in the writer's first batch; after one was committed
def test_disk_full_mid_crawl_fails_cleanly_and_the_next_run_reports_everything_once(site, tmp_path, room_kb):
    env = crawl_env(tmp_path)
    archive, reference = tmp_path / "full.db", tmp_path / "reference.db"
    # A small baseline, so the next full crawl writes much more than the archive holds.
    assert run_crawl(archive, site.base_url, "discover", env=env, extra_args=("--max-pages", "4")).returncode == 0
    known = [s for (s,) in query(archive, "SELECT id FROM stories ORDER BY id")]
    site.edit_paragraph(known[0], 0, "An edit the disk-full crawl must not lose.")
    site.set_title(known[-1], "A title changed while the disk was full")
    site.publish()
    shutil.copy(archive, reference)
    clean = run_crawl(reference, site.base_url, env=env)  # what one healthy run reports
    assert clean.returncode == 0, clean.stderr
    expected = subscriber_events(reference, first_run=2)
    assert expected[("story_updated", known[0])] == expected[("story_updated", known[-1])] == 1

    limit = archive.stat().st_size + room_kb * 1024
    started = time.monotonic()
    proc = subprocess.run(crawl_command(archive, site.base_url), env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False, preexec_fn=_file_size_limit(limit))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    print(f"disk full after {time.monotonic() - started:.1f}s: {lines}")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and 1 <= len(lines) <= 3, proc.stderr[-3000:]
    assert any(str(archive) in line and "disk" in line for line in lines), lines
    assert_consistent(archive)
    stored = query(archive, "SELECT COUNT(*) FROM fetches WHERE run_id = 2")[0][0]
    versions = query(archive, "SELECT (SELECT COUNT(*) FROM story_versions WHERE first_run_id = 2)"
                              " + (SELECT COUNT(*) FROM image_versions WHERE first_run_id = 2)")[0][0]
    print(f"the disk-full run committed {stored} fetches, {versions} versions")
    if proc.stdout.strip():  # what it reports is what it stored, not the answers rolled back
        summary = json.loads(proc.stdout)
        assert (summary["status"], summary["pages"], summary["new_versions"]) == ("failed", stored, versions)
        assert sum(summary["outcomes"].values()) == stored
    else:  # the disk filled under the run's own closing writes: no summary, the one line says so
        assert any(line.startswith("defwatch crawl: cannot write the archive") for line in lines), lines

    recovery = run_crawl(archive, site.base_url, env=env)
    assert recovery.returncode == 0, recovery.stderr
    assert query(archive, "SELECT id, status FROM runs ORDER BY id")[:2] in (
        [(1, "ok"), (2, "failed")], [(1, "ok"), (2, "interrupted")])
    assert_consistent(archive)
    assert subscriber_events(archive, first_run=2) == expected  # nothing lost, nothing twice, nothing invented
    assert query(archive, "SELECT COUNT(*) FROM stories")[0][0] == len(site.content.stories)


# -- 3. the clock jumping ------------------------------------------------------------------------------


def test_clock_set_back_and_forward_between_crawls(tmp_path):
    """Real crawls, the wall clock a day back, then two days ahead (DEFWATCH_TEST_CLOCK_OFFSET): a
    removal is still confirmed by its second 404, a mail waiting to be retried is sent, `changes
    --since` still finds every new event, and nothing else is reported."""
    archive = tmp_path / "clock.db"
    expected: Counter = Counter()
    with SampleSite() as site:
        port = unused_port()
        env = alert_env(tmp_path, None, port=port)

        def crawl(offset: int) -> CrawlRun:
            run = run_crawl(archive, site.base_url, env={**env, core.clock.TEST_CLOCK_OFFSET: str(offset)})
            assert run.returncode == 0, run.stderr
            return run

        crawl(0)
        site.remove(REMOVED, status=404)
        site.edit_paragraph(EDITED, 1, "An edit seen before the clock went back.")
        expected[("story_updated", EDITED)] += 1
        crawl(0)  # the SMTP server is down: the digest waits for its retry, a minute from now
        [(status, retry_at)] = query(archive, "SELECT status, next_attempt_at FROM outbox")
        assert status == "pending" and retry_at
        [(seen_before,)] = query(archive, "SELECT MAX(detected_at) FROM events")

        site.edit_paragraph(CAPTIONED_STORY, 0, "An edit seen after the clock went back a day.")
        expected[("story_updated", CAPTIONED_STORY)] += 1
        expected[("story_removed", REMOVED)] += 1  # its second 404, stamped a day before the first
        with SmtpSink(port=port) as sink:
            crawl(-DAY)
            # the digest held for a retry "a minute from now" did not wait for the clock to catch up
            assert query(archive, "SELECT status FROM outbox ORDER BY id") == [("sent",), ("sent",)]
            assert len(sink.messages) == 2
            site.restore(REMOVED)
            expected[("story_restored", REMOVED)] += 1
            crawl(+2 * DAY)
            mails = list(sink.messages)

    assert subscriber_events(archive) == expected
    assert query(archive, "SELECT kind FROM events WHERE audience = 'operator'") == []
    assert query(archive, "SELECT status FROM outbox") == [("sent",)] * 3
    assert len(mails) == 3 and sum(digest_changes(m) for m in mails) == sum(expected.values())
    since = subprocess.run([sys.executable, "-m", "defwatch", "changes", "--db", str(archive), "--since",
                            seen_before, "--json"], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    listed = {(e["kind"], e["subject_id"]) for e in json.loads(since.stdout)}
    assert listed == {("story_updated", EDITED), ("story_updated", CAPTIONED_STORY), ("story_removed", REMOVED),
                      ("story_restored", REMOVED)}
    stamps = [d for (d,) in query(archive, "SELECT detected_at FROM events ORDER BY id")]
    assert stamps == sorted(stamps)


class Clock:
    """A wall clock the test moves: patched over ``core.clock.wall_clock``."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def jump(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def _story(number: int) -> Story:
    return Story(id=number, kind="news-story", url=f"https://www.war.gov/a/{number}/", title=f"Story {number}",
                 paragraphs=["Stable."], body_text="Stable.")


def _run(archive: Archive, outcome: str, policy: MonitorConfig, before_detection: Callable[[], None] = lambda: None,
         detect: bool = True) -> int:
    """One run: three healthy pages and story 501 answering ``outcome``; its time stamps from the clock."""
    run_id = archive.start_run("full", "https://www.war.gov")
    for number in (601, 602, 603, *((501,) if outcome == "ok" else ())):
        archive.save_response(run_id, FetchInfo(url="u", outcome="ok", page_type="story", subject_id=number,
                                                status=200), b"x%d" % number, _story(number))
    if outcome == "not_found":
        archive.save_response(run_id, FetchInfo(url="u", outcome=outcome, page_type="story", subject_id=501,
                                                status=404))
    before_detection()
    if detect:
        detect_changes(archive.db, run_id, policy, baseline=is_baseline(archive.db, run_id))
        archive.finish_run(run_id, "ok", {})
    return run_id


def _removals(archive: Archive) -> list[int]:
    return [e["run_id"] for e in list_events(archive.db, kind="story_removed")]


def test_removal_confirmation_ignores_the_wall_clock_jumping(tmp_path, monkeypatch):
    clock = Clock(datetime(2030, 1, 1, tzinfo=UTC))
    monkeypatch.setattr(core.clock, "wall_clock", clock)
    archive = Archive.open(str(tmp_path / "clock.db"))
    policy = MonitorConfig(removal_confirm_runs=3, removal_delay_hours=12)
    _run(archive, "ok", policy)

    # One 404, then the clock jumps a day ahead before detection: one observation is not a removal.
    _run(archive, "not_found", policy, before_detection=lambda: clock.jump(days=1))
    assert _removals(archive) == []
    _run(archive, "ok", policy)
    # A run killed after storing its 404; its detection is caught up by the next run, a day later.
    killed = _run(archive, "not_found", policy, detect=False)
    archive.db.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", [killed])
    clock.jump(days=1)
    _run(archive, "ok", policy)
    assert _removals(archive) == []
    assert archive.db["stories"].get(501)["status"] == "live"
    assert archive.db.execute("SELECT COUNT(*) FROM runs WHERE detected_at IS NULL").fetchone() == (0,)

    # A fresh absence; the clock then goes back two days: the later 404s look older than the first.
    first = _run(archive, "not_found", policy)
    clock.jump(days=-2)
    _run(archive, "not_found", policy)
    assert _removals(archive) == []  # two runs of three, and no time has passed between them
    third = _run(archive, "not_found", policy)
    assert _removals(archive) == [third]  # the count did not stall behind the first 404's time stamp
    assert third > first


def test_removal_delay_is_measured_between_observations(tmp_path, monkeypatch):
    clock = Clock(datetime(2030, 1, 1, tzinfo=UTC))
    monkeypatch.setattr(core.clock, "wall_clock", clock)
    archive = Archive.open(str(tmp_path / "delay.db"))
    policy = MonitorConfig(removal_confirm_runs=5, removal_delay_hours=12)
    _run(archive, "ok", policy)
    _run(archive, "not_found", policy, before_detection=lambda: clock.jump(hours=13))
    assert _removals(archive) == []  # a slow detection is not an absence of 13 hours
    clock.jump(hours=1)
    second = _run(archive, "not_found", policy)
    assert _removals(archive) == [second]  # two 404s 14 hours apart: confirmed by the delay


def test_events_detected_after_the_clock_went_back_still_sort_after(tmp_path, monkeypatch):
    clock = Clock(datetime(2030, 1, 2, tzinfo=UTC))
    monkeypatch.setattr(core.clock, "wall_clock", clock)
    archive = Archive.open(str(tmp_path / "since.db"))
    policy = MonitorConfig()
    _run(archive, "absent", policy)  # the baseline, without story 501
    _run(archive, "ok", policy)  # story 501 is new
    [new] = list_events(archive.db)
    clock.jump(days=-1)  # a poller of `changes --since` last saw the story_new event
    _run(archive, "not_found", policy)
    removed = _run(archive, "not_found", policy)
    assert [(e["kind"], e["run_id"]) for e in list_events(archive.db, since=new["detected_at"])] == [
        ("story_new", new["run_id"]), ("story_removed", removed)]
    stamps = [e["detected_at"] for e in list_events(archive.db)]
    assert stamps == sorted(set(stamps))


def _new_story_event(archive_db, story: int) -> None:  # noqa: ANN001
    archive_db["events"].insert({"run_id": 1, "kind": "story_new", "subject_type": "story", "subject_id": story,
                                 "url": f"https://www.war.gov/a/{story}/", "title": f"Story {story}",
                                 "summary": f"New story {story}", "detected_at": "2030-01-01T00:00:00.000000Z"})


def test_mail_retry_and_lease_do_not_wait_out_a_clock_set_back(tmp_path):
    archive_db = connect(str(tmp_path / "outbox.db"))
    archive_db.execute("INSERT INTO runs (id, mode, site, started_at, status) VALUES (1, 'full', 's', ?, 'ok')",
                       ["2030-01-01T00:00:00.000000Z"])
    alerts = AlertConfig(sender="defwatch@localhost", recipients=[ANALYST], retry_base_seconds=60)
    now, back = datetime(2030, 1, 1, 12, tzinfo=UTC), datetime(2029, 12, 31, 12, tzinfo=UTC)
    _new_story_event(archive_db, 1)
    [first] = queue_run_alerts(archive_db, 1, alerts, now=now)
    down = SmtpConfig(host="127.0.0.1", port=unused_port(), timeout=5)
    assert flush_outbox(archive_db, down, alerts, now=now) == FlushResult(0, 0, 1)  # retry in a minute
    with SmtpSink() as sink:
        up = SmtpConfig(host="127.0.0.1", port=sink.port, timeout=5)
        # The clock goes back a day: the retry is due, not a day and a minute from now.
        assert flush_outbox(archive_db, up, alerts, now=back) == FlushResult(1, 0, 0)
        # A mail claimed by a live sender (this process), its lease 15 minutes, then the clock goes
        # back a day: the lease is respected while it can be, and does not become a day and a quarter.
        _new_story_event(archive_db, 2)
        [second] = queue_run_alerts(archive_db, 1, alerts, now=now)
        assert outbox.claim(archive_db, second, core.clock.stamp(now), core.clock.stamp(now + timedelta(minutes=15)))
        assert flush_outbox(archive_db, up, alerts, now=now + timedelta(minutes=5)) == FlushResult(0, 0, 1)
        assert flush_outbox(archive_db, up, alerts, now=back) == FlushResult(1, 0, 0)
        sent = [m.message["Message-ID"] for m in sink.messages]
    assert sent == [outbox.get_mail(archive_db, first)["message_id"], outbox.get_mail(archive_db, second)["message_id"]]


def test_revisits_do_not_wait_out_a_clock_set_back(tmp_path):
    """Fetch stamps written before the clock went back a day lie in the future: trusting them would
    leave every story un-revisited for that day. They are due at once; honest stamps keep their age."""
    archive_db = connect(str(tmp_path / "revisit.db"))
    now = datetime(2030, 1, 10, 12, tzinfo=UTC)
    stamp = core.clock.stamp

    def story(story_id: int, last_fetched: datetime) -> None:
        archive_db["stories"].insert({
            "id": story_id, "kind": "news-story", "url": f"https://www.war.gov/a/{story_id}/", "status": "live",
            "published": "2030-01-09", "first_seen": stamp(now - timedelta(days=1)),
            "last_seen": stamp(last_fetched), "last_fetched": stamp(last_fetched)})

    story(1, now - timedelta(hours=1))  # fetched an hour ago: fresh stories are due every 6 hours
    story(2, now - timedelta(hours=7))  # due by age
    story(3, now + timedelta(hours=20))  # stamped before the clock went back a day
    rules = dict(fresh_days=7, fresh_interval_hours=6, recent_days=90, recent_interval_hours=72,
                 old_interval_hours=24 * 30)
    assert sorted(p.id for p in queries.due_for_revisit(archive_db, now=now, **rules)) == [2, 3]
    later = now + timedelta(days=1)  # the clock has caught up: story 3's stamp is an hour old, not due
    assert sorted(p.id for p in queries.due_for_revisit(archive_db, now=later, **rules)) == [1, 2]


def test_a_run_from_before_a_reboot_is_closed_even_if_its_pid_is_taken_again(tmp_path):
    """After a reboot, a pid recorded by a run that died with the machine can belong to another
    process: the run is interrupted all the same. A running run of this boot keeps running."""
    path = str(tmp_path / "reboot.db")
    archive = Archive.open(path)
    booted = core.clock.boot_time()
    if booted is None:
        pytest.skip("no /proc/stat boot time on this system")
    alive = os.getpid()  # a live process, as a reused pid would be
    archive.db.execute("INSERT INTO runs (mode, site, started_at, status, pid) VALUES "
                       "('full', 's', '2000-01-01T00:00:00.000000Z', 'running', ?)", [alive])
    archive.db.execute("INSERT INTO runs (mode, site, started_at, status, pid) VALUES ('full', 's', ?, 'running', ?)",
                       [core.clock.utcnow(), alive])
    archive.db.conn.commit()
    archive.start_run("discover", "s")
    statuses = archive.db.execute("SELECT id, status FROM runs ORDER BY id").fetchall()
    archive.close()
    assert statuses == [(1, "interrupted"), (2, "running"), (3, "running")]


class _ShiftedDatetime(datetime):
    shift = timedelta(0)

    @classmethod
    def now(cls, tz=None):  # noqa: ANN001, ANN206
        return datetime.now(tz) + cls.shift


def test_daemon_keeps_firing_after_the_clock_goes_back_a_day(tmp_path, monkeypatch):
    import apscheduler.executors.base
    import apscheduler.schedulers.base

    import monitor.daemon

    clock = type("Clock", (_ShiftedDatetime,), {})
    for module in (apscheduler.schedulers.base, apscheduler.executors.base, monitor.daemon):
        monkeypatch.setattr(module, "datetime", clock)  # every clock reading of the scheduler and the daemon
    flushed: list[float] = []
    config = Config(db=str(tmp_path / "daemon.db"),
                    jobs=[JobConfig(name="flush", mode="flush", interval_minutes=1 / 60, misfire_grace_seconds=30)])
    stop = threading.Event()
    daemon = threading.Thread(target=run_daemon, args=(config,), daemon=True,
                              kwargs={"stop_event": stop, "flush": lambda *_: flushed.append(time.monotonic())})
    daemon.start()
    try:
        assert _wait_for(lambda: len(flushed) >= 2, 20, "the flush job"), flushed
        clock.shift = timedelta(days=-1)  # an NTP step back, a VM restored from yesterday's snapshot
        fired = len(flushed)
        assert _wait_for(lambda: len(flushed) >= fired + 2, 20, "the flush job after the clock went back")
        clock.shift = timedelta(days=1)  # and forward: the missed firings coalesce, the job goes on
        fired = len(flushed)
        assert _wait_for(lambda: len(flushed) >= fired + 2, 20, "the flush job after the clock jumped ahead")
    finally:
        stop.set()
        daemon.join(20)
    assert not daemon.is_alive()
