"""SIGTERM stops a crawl within seconds, whatever the site does, and loses nothing it answered.

Scrapy's graceful stop waits for every download in flight and its retries: against a host that
accepts connections and never answers, ``DOWNLOAD_TIMEOUT`` (30 s) per attempt, about two minutes
for robots.txt alone. The daemon's kill timeout is 30 s, so such a crawl used to be SIGKILLed and
its run left ``running``. Here real ``defwatch crawl`` children are stopped by SIGTERM, directly or
through a real daemon, against a socket that never answers and against the sample site with one
page that hangs.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from samplesite import SampleSite
from tests.conftest import ROOT, crawl_env, run_crawl

STOP_BOUND = 10.0  # seconds from SIGTERM to exit; the stop itself aims at ~3 (2 s grace)


class HangingServer:
    """A TCP server on 127.0.0.1 that never answers: it accepts and holds every connection, or
    (``accepts=False``) never even calls accept, so connections pile up in the listen backlog."""

    def __init__(self, accepts: bool) -> None:
        self.accepts = accepts
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.held: list[socket.socket] = []
        self.closed = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __enter__(self) -> HangingServer:
        if self.accepts:
            threading.Thread(target=self._hold, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed.set()
        for conn in [*self.held, self.sock]:
            conn.close()

    def _hold(self) -> None:
        self.sock.settimeout(0.2)
        while not self.closed.is_set():
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                continue


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def rows(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # the schema is still being created
        return []


@contextmanager
def crawl_child(db: Path, site: str, env: dict[str, str], mode: str = "discover") -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen([sys.executable, "-m", "defwatch", "crawl", "--db", str(db), "--site", site,
                              "--mode", mode, "--json"], env=env, cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


def stop(child: subprocess.Popen[str]) -> tuple[float, dict, str]:
    """SIGTERM, then (seconds until it exited, its JSON summary, its stderr)."""
    began = time.monotonic()
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    elapsed = time.monotonic() - began
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return elapsed, json.loads(lines[-1]) if lines else {}, err


@pytest.mark.parametrize("accepts", [True, False], ids=["accepts-never-answers", "never-accepts"])
def test_sigterm_stops_a_crawl_of_a_host_that_never_answers(tmp_path: Path, accepts: bool) -> None:
    db = tmp_path / "hang.db"
    with HangingServer(accepts) as server, crawl_child(db, server.url, crawl_env(tmp_path)) as child:
        if accepts:  # robots.txt is in flight
            assert wait_for(lambda: bool(server.held) or child.poll() is not None, 60), "no request came"
        else:  # the run has started: the signal may even come before the reactor runs
            assert wait_for(lambda: bool(rows(db, "SELECT id FROM runs")) or child.poll() is not None, 60)
        assert child.poll() is None
        elapsed, summary, err = stop(child)
    assert elapsed < STOP_BOUND, (elapsed, err[-2000:])
    assert child.returncode == 0, err[-2000:]
    assert summary["status"] == "interrupted" and summary["finish_reason"] == "shutdown", summary
    assert rows(db, "SELECT status, ended_at IS NOT NULL FROM runs") == [("interrupted", 1)]
    assert rows(db, "SELECT COUNT(*) FROM fetches") == [(0,)]  # nothing was answered, nothing invented


def test_sigterm_mid_crawl_keeps_every_answered_page_and_cuts_the_hanging_one(tmp_path: Path) -> None:
    db = tmp_path / "mid.db"
    env = crawl_env(tmp_path)
    with SampleSite() as site:
        hanging = sorted(site.content.stories)[0]
        site.delay(120, hanging)
        with crawl_child(db, site.base_url, env, mode="full") as child:
            assert wait_for(lambda: any(str(hanging) in r.path for r in site.requests) or child.poll() is not None,
                            60), "the hanging story was never requested"
            assert wait_for(lambda: rows(db, "SELECT COUNT(*) FROM fetches")[0][0] > 0, 30)
            assert child.poll() is None
            elapsed, summary, err = stop(child)
        assert elapsed < STOP_BOUND, (elapsed, err[-2000:])
        assert child.returncode == 0, err[-2000:]
        assert summary["status"] == "interrupted", summary
        stored = rows(db, "SELECT COUNT(*) FROM fetches WHERE run_id = 1")[0][0]
        assert stored > 0 and summary["pages"] == stored  # every page counted was stored
        assert rows(db, f"SELECT COUNT(*) FROM fetches WHERE subject_id = {hanging}") == [(0,)]  # cut: no row
        assert rows(db, "SELECT COUNT(*) FROM fetches WHERE error LIKE 'DownloadCut%'") == [(0,)]
        assert rows(db, "SELECT status FROM runs") == [("interrupted",)]
        assert rows(db, "SELECT kind FROM events WHERE kind = 'crawl_failed'") == []  # our stop, not the site's
        site.delay(0, hanging)
        again = run_crawl(db, site.base_url, env=env)  # the archive the stop left serves the next run
    assert again.returncode == 0 and again.summary["status"] == "ok", again.stderr[-2000:]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


DAEMON_CONFIG = """\
[[jobs]]
name = "discover"
mode = "discover"
interval_minutes = 0.01
"""


def test_sigterm_to_the_daemon_stops_a_crawl_child_stuck_on_a_silent_host(tmp_path: Path) -> None:
    db = tmp_path / "daemon.db"
    config = tmp_path / "daemon.toml"
    config.write_text(DAEMON_CONFIG, encoding="utf-8")
    with HangingServer(accepts=True) as server:
        env = crawl_env(tmp_path, DEFWATCH_CONFIG=str(config), DEFWATCH_DB=str(db), DEFWATCH_SITE=server.url)
        daemon = subprocess.Popen([sys.executable, "-m", "defwatch", "run"], env=env, cwd=ROOT, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert wait_for(lambda: bool(server.held) or daemon.poll() is not None, 60), "no crawl reached the host"
            began = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            _, err = daemon.communicate(timeout=60)
            elapsed = time.monotonic() - began
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.communicate()
    assert daemon.returncode == 0, err[-2000:]
    assert elapsed < STOP_BOUND, (elapsed, err[-2000:])
    assert "ignored SIGTERM" not in err  # the child stopped by itself, well before the kill timeout
    assert rows(db, "SELECT status FROM runs") == [("interrupted",)]
