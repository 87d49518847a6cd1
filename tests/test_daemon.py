"""The daemon: a real APScheduler firing jobs that run real child processes, real locks and signals.

Children are tiny ``python -c`` scripts injected through ``crawl_command``, so nothing here needs
the ``defwatch`` CLI. Daemons that must receive signals run in their own process (RUNNER).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.config import Config, JobConfig
from monitor.daemon import default_crawl_command, run_daemon
from monitor.lock import ArchiveLock, LockHeld, lock_path_for

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

# Appends its pid, chats on stdout and stderr, ends with the crawl's JSON summary line.
CHILD_SUMMARY = r"""
import json, os, sys
with open(sys.argv[1], "a") as f:
    f.write(f"{os.getpid()}\n")
print("crawling...")
print('{"run_id": 1, "pages": 999}')  # an earlier summary-like line: only the last one counts
print("warning from the crawl", file=sys.stderr)
print('{"not": "a summary"}')
# what `defwatch crawl` prints: RunSummary.as_json() with sorted keys
print(json.dumps({"run_id": 7, "status": "ok", "pages": 3, "new_versions": 2, "events": 1, "errors": 0,
                  "baseline": False}, sort_keys=True))
"""

# Logs start and end with a timestamp around a sleep.
CHILD_SLOW = r"""
import sys, time
name, path, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(path, "a") as f:
    f.write(f"start {name} {time.time()}\n")
time.sleep(secs)
with open(path, "a") as f:
    f.write(f"end {name} {time.time()}\n")
"""

# Publishes its pid, then runs until SIGTERM (mode "exit") or ignores SIGTERM (mode "ignore").
CHILD_TRAP = r"""
import os, signal, sys, time
pidfile, marker, mode = sys.argv[1:4]
def on_term(signum, frame):
    with open(marker, "a") as f:
        f.write("SIGTERM\n")
    if mode == "exit":
        sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
with open(pidfile + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(pidfile + ".tmp", pidfile)
while True:
    time.sleep(0.05)
"""

# A daemon in its own process, configured from a JSON spec on argv.
RUNNER = r"""
import json, sys
from core.config import Config, JobConfig
from monitor.daemon import run_daemon
spec = json.loads(sys.argv[1])
config = Config(db=spec["db"], jobs=[JobConfig(**job) for job in spec["jobs"]])
sys.exit(run_daemon(config, crawl_command=lambda c, j: spec["child"], kill_timeout=spec["kill_timeout"]))
"""


def every(name: str, seconds: float, mode: str = "discover") -> JobConfig:
    return JobConfig(name=name, mode=mode, interval_minutes=seconds / 60, misfire_grace_seconds=30)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped by init) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@contextmanager
def daemon_thread(config: Config, **kwargs) -> Iterator[dict]:
    """run_daemon in a thread (no signal handlers there); stopped through stop_event on exit."""
    stop = threading.Event()
    outcome: dict = {}
    thread = threading.Thread(
        target=lambda: outcome.update(rc=run_daemon(config, stop_event=stop, **kwargs)), daemon=True
    )
    thread.start()
    try:
        yield outcome
    finally:
        stop.set()
        started = time.monotonic()
        thread.join(timeout=20)
        outcome["stop_seconds"] = time.monotonic() - started
    assert not thread.is_alive(), "run_daemon did not return after stop_event"


def start_runner(tmp_path: Path, jobs: list[dict], child: list[str], kill_timeout: float = 5.0,
                 db: Path | None = None) -> subprocess.Popen[str]:
    spec = {"db": str(db or tmp_path / "archive.db"), "jobs": jobs, "child": child, "kill_timeout": kill_timeout}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([PY, "-c", RUNNER, json.dumps(spec)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lock_owner(db: Path, proc: subprocess.Popen[str]) -> None:
    lock_file = Path(lock_path_for(str(db)))
    assert wait_for(lambda: lock_file.exists() and lock_file.read_text().strip() == str(proc.pid)
                    or proc.poll() is not None), "daemon never took the lock"
    assert proc.poll() is None, proc.communicate()


def job_spec(name: str, seconds: float, mode: str = "discover") -> dict:
    return {"name": name, "mode": mode, "interval_minutes": seconds / 60, "misfire_grace_seconds": 30}


# ---------------------------------------------------------------- scheduling real children


def test_interval_job_runs_a_child_repeatedly_and_logs_its_summary(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    out = tmp_path / "runs.txt"
    calls: list[tuple[Config, JobConfig]] = []

    def command(config: Config, job: JobConfig) -> list[str]:
        calls.append((config, job))
        return [PY, "-c", CHILD_SUMMARY, str(out)]

    config = Config(db=str(tmp_path / "archive.db"), jobs=[every("tick", 0.3)])

    def finished() -> list[str]:
        return [r.getMessage() for r in list(caplog.records) if r.getMessage().startswith("job tick finished")]

    with daemon_thread(config, crawl_command=command) as outcome:
        assert wait_for(lambda: len(finished()) >= 3, timeout=10)
    assert outcome["rc"] == 0
    pids = lines(out)
    assert len(set(pids)) == len(pids) >= 3  # a fresh process each time
    assert all(c is config and j is config.jobs[0] for c, j in calls)
    started = [r for r in caplog.records if re.fullmatch(r"job tick: started child pid \d+", r.getMessage())]
    assert len(started) == len(finished()) <= len(calls)
    for message in finished()[:3]:
        assert re.fullmatch(r"job tick finished: mode=discover duration=\d+\.\ds "
                            r"exit=0 run_id=7 status=ok pages=3 versions=2 events=1 errors=0", message), message
    # a run still going when the daemon stopped was ended by SIGTERM, and says so
    assert all(" exit=0 " in m or " exit=-15 (SIGTERM) " in m for m in finished()[3:])
    stderr_lines = [r.getMessage() for r in caplog.records if r.name == "defwatch.daemon.child"]
    assert any(m.endswith("warning from the crawl") for m in stderr_lines)
    assert not Path(lock_path_for(config.db)).exists()  # released: no lock file left behind


def test_failed_crawl_is_logged_with_its_last_stderr_lines(tmp_path, caplog):
    caplog.set_level(logging.WARNING)  # the default CLI level: failures must still show their cause
    script = "import sys\nfor i in range(30): print(f'line {i}', file=sys.stderr)\nsys.exit(4)"
    config = Config(db=str(tmp_path / "archive.db"), jobs=[every("bad", 0.2, "sweep")])
    warnings = lambda: [r.getMessage() for r in list(caplog.records)  # noqa: E731 (start-up warnings aside)
                        if r.name == "defwatch.daemon" and r.getMessage().startswith("job ")]
    with daemon_thread(config, crawl_command=lambda c, j: [PY, "-c", script]) as outcome:
        assert wait_for(lambda: len(warnings()) >= 2)
    assert outcome["rc"] == 0
    first, tail = warnings()[:2]
    assert re.fullmatch(r"job bad finished: mode=sweep duration=\d+\.\ds exit=4 no summary", first)
    pid = re.fullmatch(r"job bad: last stderr lines of crawl pid (\d+):\n(.*)", tail, re.S)
    assert pid and pid.group(2).split("\n") == [f"  line {i}" for i in range(10, 30)]


def test_crawls_never_overlap_and_busy_firings_are_skipped_not_queued(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    out = tmp_path / "spans.txt"
    config = Config(db=str(tmp_path / "archive.db"),
                    jobs=[every("a", 0.15, "discover"), every("b", 0.15, "revisit")])

    def command(_config: Config, job: JobConfig) -> list[str]:
        return [PY, "-c", CHILD_SLOW, job.name, str(out), "0.6"]

    with daemon_thread(config, crawl_command=command) as outcome:
        began = time.monotonic()
        assert wait_for(lambda: sum(x.startswith("end") for x in lines(out)) >= 3, timeout=12)
        elapsed = time.monotonic() - began
    assert outcome["rc"] == 0
    events = [line.split() for line in lines(out)]
    kinds = [e[0] for e in events]
    # strictly start, end, start, end...: never two crawls at once, across jobs and within one job
    assert kinds[: len(kinds) // 2 * 2] == ["start", "end"] * (len(kinds) // 2)
    for start, end in zip(events[::2], events[1::2], strict=False):
        assert start[1] == end[1]
    times = [float(e[2]) for e in events]
    assert times == sorted(times)
    # firings every 0.15 s while each crawl takes 0.6 s: skipped, not queued behind each other
    assert len(kinds) // 2 <= elapsed / 0.6 + 2
    messages = [r.getMessage() for r in caplog.records]
    assert any(re.fullmatch(r"job [ab] \(mode \w+\) skipped: crawl [ab] is still running", m) for m in messages)
    assert any("maximum number of running instances reached" in m for m in messages)


def test_flush_runs_in_process_beside_a_crawl_and_survives_errors(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    pidfile, marker = tmp_path / "child.pid", tmp_path / "marker.txt"
    flush_calls: list[tuple] = []

    @dataclasses.dataclass
    class Result:
        sent: int
        failed: int = 0

    def flush(db, smtp, alerts):
        flush_calls.append((db, smtp, alerts, threading.current_thread() is not threading.main_thread()))
        if len(flush_calls) == 1:
            raise RuntimeError("smtp is down")
        return Result(sent=len(flush_calls)) if len(flush_calls) == 2 else {"sent": len(flush_calls)}

    config = Config(db=str(tmp_path / "archive.db"), jobs=[every("crawl", 0.1), every("mail", 0.2, "flush")])
    command = lambda c, j: [PY, "-c", CHILD_TRAP, str(pidfile), str(marker), "exit"]  # noqa: E731
    with daemon_thread(config, crawl_command=command, flush=flush, kill_timeout=5) as outcome:
        assert wait_for(pidfile.exists)
        child = int(pidfile.read_text())
        assert wait_for(lambda: len(flush_calls) >= 3)  # flushes go on while the crawl runs
        assert alive(child)
    assert outcome["rc"] == 0 and outcome["stop_seconds"] < 5
    assert not alive(child)
    assert lines(marker) == ["SIGTERM"]
    assert all(c[0] == config.db and c[1] is config.smtp and c[2] is config.alerts and c[3] for c in flush_calls)
    messages = [r.getMessage() for r in caplog.records]
    failed = [r for r in caplog.records if r.getMessage() == "job mail (mode flush) failed"]
    assert len(failed) == 1 and "smtp is down" in str(failed[0].exc_info[1])
    assert any(re.fullmatch(r"job mail finished: mode=flush duration=\d+\.\ds sent=2 failed=0", m)
               for m in messages)
    assert any(re.fullmatch(r"job mail finished: mode=flush duration=\d+\.\ds result=\{'sent': 3\}", m)
               for m in messages)
    assert f"sending SIGTERM to crawl child pid {child}" in messages
    assert any(m.startswith("job crawl finished: mode=discover") and "exit=0 no summary" in m for m in messages)


def test_default_flush_runs_the_mailer_on_the_archive(tmp_path, caplog):
    """The real wiring: monitor.mailer.flush_outbox on a connection to config.db (empty outbox)."""
    caplog.set_level(logging.INFO)
    config = Config(db=str(tmp_path / "archive.db"), jobs=[every("mail", 0.2, "flush")])

    def flushed() -> list[str]:
        return [r.getMessage() for r in list(caplog.records) if r.getMessage().startswith("job mail ")]

    with daemon_thread(config) as outcome:
        assert wait_for(lambda: len(flushed()) >= 2)
    assert outcome["rc"] == 0
    for message in flushed():
        assert re.fullmatch(r"job mail finished: mode=flush duration=\d+\.\ds sent=0 failed=0 pending=0",
                            message), message
    assert (tmp_path / "archive.db").exists()


def test_default_crawl_command():
    config = Config(db="/data/a.db", site="http://127.0.0.1:8000", source="/etc/defwatch.toml")
    config.crawl.max_pages = 40
    assert default_crawl_command(config, JobConfig("s", "sweep", cron="0 3 * * *")) == [
        PY, "-m", "defwatch", "crawl", "--config", "/etc/defwatch.toml", "--db", "/data/a.db",
        "--site", "http://127.0.0.1:8000", "--mode", "sweep", "--max-pages", "40",
    ]
    argv = default_crawl_command(Config(), JobConfig("d", "discover", interval_minutes=5, max_pages=7))
    assert "--config" not in argv
    assert argv[-6:] == ["--site", "https://www.war.gov", "--mode", "discover", "--max-pages", "7"]


# ---------------------------------------------------------------- the archive lock


def test_archive_lock_is_exclusive_and_records_the_pid(tmp_path):
    path = str(tmp_path / "a.db.lock")
    with ArchiveLock(path):
        assert Path(path).read_text() == f"{os.getpid()}\n"
        with pytest.raises(LockHeld) as info:
            ArchiveLock(path).acquire()
        assert info.value.pid == os.getpid()
        assert f"(pid {os.getpid()}) is already running" in str(info.value)
    with ArchiveLock(path):  # released on exit
        pass


def test_second_daemon_on_the_same_archive_exits_2_naming_the_first(tmp_path):
    db = tmp_path / "archive.db"
    first = start_runner(tmp_path, [job_spec("idle", 3600)], [PY, "-c", "pass"])
    try:
        wait_for_lock_owner(db, first)
        second = subprocess.run([PY, "-c", RUNNER, json.dumps(
            {"db": str(db), "jobs": [], "child": [], "kill_timeout": 1})],
            cwd=ROOT, capture_output=True, text=True, timeout=20)
        assert second.returncode == 2
        assert f"another defwatch daemon (pid {first.pid}) is already running on this archive" in second.stderr
        assert str(db) + ".lock" in second.stderr
        assert "Traceback" not in second.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=10) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_the_running_crawl_and_exits_0(tmp_path, sig):
    db, pidfile, marker = tmp_path / "archive.db", tmp_path / "child.pid", tmp_path / "marker.txt"
    # The kill timeout is far above the bound below: a daemon that waited for it instead of seeing its
    # child exit on SIGTERM fails the bound, while a slow machine's interpreter shut-down does not.
    daemon = start_runner(tmp_path, [job_spec("crawl", 0.1)],
                          [PY, "-c", CHILD_TRAP, str(pidfile), str(marker), "exit"], kill_timeout=60)
    try:
        assert wait_for(lambda: pidfile.exists() or daemon.poll() is not None)
        child = int(pidfile.read_text())
        assert alive(child)
        began = time.monotonic()
        daemon.send_signal(sig)
        _, stderr = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, stderr
        assert time.monotonic() - began < 20
        assert "killing it" not in stderr
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert lines(marker) == ["SIGTERM"]  # the crawl got exactly one SIGTERM
    assert not alive(child)
    assert f"stopping ({signal.Signals(sig).name})" in stderr
    assert f"sending SIGTERM to crawl child pid {child}" in stderr
    assert "daemon stopped" in stderr
    with ArchiveLock(lock_path_for(str(db))):  # lock released
        pass


def test_child_that_ignores_sigterm_is_killed(tmp_path):
    pidfile, marker = tmp_path / "child.pid", tmp_path / "marker.txt"
    daemon = start_runner(tmp_path, [job_spec("crawl", 0.1)],
                          [PY, "-c", CHILD_TRAP, str(pidfile), str(marker), "ignore"], kill_timeout=0.5)
    try:
        assert wait_for(lambda: pidfile.exists() or daemon.poll() is not None)
        child = int(pidfile.read_text())
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=10)
        assert daemon.returncode == 0, stderr
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert lines(marker) == ["SIGTERM"]
    assert not alive(child)
    assert f"crawl child pid {child} ignored SIGTERM for 0.5s: killing it" in stderr
    assert "exit=-9 (SIGKILL)" in stderr


def test_orphaned_crawl_of_a_killed_daemon_keeps_the_archive_locked(tmp_path):
    db, pidfile, marker = tmp_path / "archive.db", tmp_path / "child.pid", tmp_path / "marker.txt"
    daemon = start_runner(tmp_path, [job_spec("crawl", 0.1)],
                          [PY, "-c", CHILD_TRAP, str(pidfile), str(marker), "exit"])
    child = None
    try:
        assert wait_for(lambda: pidfile.exists() or daemon.poll() is not None)
        child = int(pidfile.read_text())
        daemon.kill()  # SIGKILL: no cleanup at all
        daemon.wait()
        with pytest.raises(LockHeld) as info:
            ArchiveLock(lock_path_for(str(db))).acquire()
        assert info.value.pid == daemon.pid
        assert f"its daemon (pid {daemon.pid}) has exited" in str(info.value)
    finally:
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)
            assert wait_for(lambda: not alive(child), timeout=5)
    with ArchiveLock(lock_path_for(str(db))):  # the orphan's end releases it
        pass



def test_a_job_that_fires_with_another_is_run_after_it_not_starved(tmp_path, caplog):
    """Intervals that are multiples fire together; the loser must still get its turn."""
    caplog.set_level(logging.INFO)
    out = tmp_path / "spans.txt"
    config = Config(db=str(tmp_path / "archive.db"),
                    jobs=[every("discover", 0.25, "discover"), every("revisit", 1.0, "revisit")])

    def command(_config: Config, job: JobConfig) -> list[str]:
        return [PY, "-c", CHILD_SLOW, job.name, str(out), "0.4"]

    with daemon_thread(config, crawl_command=command) as outcome:
        assert wait_for(lambda: sum(line.startswith("end revisit") for line in lines(out)) >= 2, timeout=20)
    assert outcome["rc"] == 0
    names = [line.split()[1] for line in lines(out) if line.startswith("start")]
    assert names.count("revisit") >= 2 and names.count("discover") >= 2
    assert any("waits for crawl" in r.getMessage() for r in caplog.records)
