"""``defwatch run``: the APScheduler daemon that runs crawls and flushes the alert outbox.

Design choices, and why:
- ``BackgroundScheduler`` with the main thread waiting on a ``threading.Event`` rather than
  ``BlockingScheduler``: signal handlers then only set the event, and the orderly shutdown (stop
  scheduling, end the crawl child, wait for running jobs, release the lock) runs in plain code on
  the main thread instead of inside a signal handler that interrupted the scheduler's own loop. The
  same event lets an embedding caller (tests, ``defwatch demo``) stop the daemon without signals.
- Every crawl runs in a child process, because Twisted's reactor cannot be restarted in one
  process. Children get their own session (process group) so a Ctrl-C in the terminal reaches
  only the daemon, which then ends the crawl exactly once with SIGTERM (the crawl's prompt stop,
  ``crawler.run.PromptStop``: what was answered is stored, downloads still hanging after a 2 s grace
  are cut, the run is closed ``interrupted``, all within seconds even against a host that never
  answers) and escalates to SIGKILL after ``kill_timeout``, a backstop for a wedged child.
- All crawl jobs share one non-blocking lock: the archive gets one crawl at a time. A crawl job
  that fires while another job's crawl runs is not skipped: it waits (one pending firing per job)
  and runs right after it, so a job whose firings coincide with a longer one's is never starved.
  Only the same job firing again while it runs is skipped, with a log line (``coalesce`` +
  ``max_instances=1`` already keep one job from piling up behind itself).
- Crawl children inherit the archive lock's descriptor. If the daemon itself is SIGKILLed, its
  orphaned crawl keeps the archive locked until it ends, so a restarted daemon cannot start a second
  writer next to it.
- Alert flushing runs in-process (it is short and has no reactor), through
  ``monitor.mailer.flush_outbox``, imported when the first flush runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from core.config import (
    AlertConfig,
    Config,
    JobConfig,
    SmtpConfig,
    SubscriberConfig,
    all_recipients,
    cron_trigger,
    start_job,
)
from core.constants import CRAWL_MODES, TEMPLATE_CONTACT
from monitor.lock import ArchiveLock, LockHeld, lock_path_for

log = logging.getLogger("defwatch.daemon")
child_log = logging.getLogger("defwatch.daemon.child")

CrawlCommand = Callable[[Config, JobConfig], Sequence[str]]
FlushFunc = Callable[[str, SmtpConfig, AlertConfig], Any]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_LOCKED = 2
STDERR_TAIL_LINES = 20
# (log name, summary keys tried in order): ``defwatch crawl`` prints RunSummary.as_json() sorted by key.
SUMMARY_FIELDS = (("status", ("status",)), ("pages", ("pages",)), ("versions", ("versions", "new_versions")),
                  ("events", ("events",)), ("errors", ("errors",)))


def default_crawl_command(config: Config, job: JobConfig) -> list[str]:
    """``python -m defwatch crawl ...`` for one job; the job's page cap wins over the crawl default."""
    argv = [sys.executable, "-m", "defwatch", "crawl"]
    if config.source:
        argv += ["--config", config.source]
    max_pages = job.max_pages or config.crawl.max_pages
    return argv + ["--db", config.db, "--site", config.site, "--mode", job.mode,
                   "--max-pages", str(max_pages)]


def run_daemon(
    config: Config,
    *,
    stop_event: threading.Event | None = None,
    crawl_command: CrawlCommand | None = None,
    flush: FlushFunc | None = None,
    kill_timeout: float = 30.0,
) -> int:
    """Run the scheduler until SIGTERM/SIGINT (or ``stop_event``); returns the process exit status.

    0 after a clean stop, 2 if another daemon holds the archive lock, 1 if the lock file cannot be
    created. Signal handlers are installed only when called from the main thread.

    ``crawl_command(config, job)`` builds a crawl child's argv (default: ``default_crawl_command``);
    ``flush(db_path, smtp, alerts)`` runs a flush job (default: ``monitor.mailer.flush_outbox`` on a
    fresh connection); ``kill_timeout`` is how long a crawl may take to stop after SIGTERM.
    """
    _ensure_logging()
    lock = ArchiveLock(lock_path_for(config.db))
    try:
        lock.acquire()
    except LockHeld as exc:
        print(f"defwatch run: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except OSError as exc:
        print(f"defwatch run: cannot create the lock file {lock.path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    stop = stop_event or threading.Event()
    try:
        with _stop_on_signals(stop) as received:
            daemon = Daemon(config, crawl_command or default_crawl_command, flush,
                            kill_timeout=kill_timeout, inherit_fds=(lock.fd,) if lock.fd is not None else ())
            daemon.start()
            while not stop.wait(0.5):
                daemon.realign_after_clock_jump()
            log.info("stopping (%s)", received[0] if received else "stop requested")
            daemon.shutdown()
    finally:
        lock.release()
    log.info("daemon stopped")
    return EXIT_OK


class Daemon:
    """The scheduler plus the jobs it runs; ``start`` and ``shutdown`` bracket its life."""

    def __init__(self, config: Config, crawl_command: CrawlCommand, flush: FlushFunc | None, *,
                 kill_timeout: float = 30.0, inherit_fds: Sequence[int] = ()) -> None:
        self.config = config
        self.crawl_command = crawl_command
        self.flush = flush
        self.children = ChildSupervisor(kill_timeout, inherit_fds)
        self._crawl_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._running_crawl: str | None = None
        self._pending: dict[str, JobConfig] = {}  # crawl jobs that fired while another ran, oldest first
        self._pending_lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max(4, len(config.jobs)))},
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    def start(self) -> None:
        """Add one scheduler job per configured job and start firing them.

        The start-up job (``[daemon] crawl_at_start``, the first crawl job unless ``start_job`` names
        another) fires at once and then on its schedule: a daemon restarted after a deploy or a
        reboot looks at the site now rather than after a full interval (or at 03:00 tomorrow).
        """
        if not self.config.jobs:
            log.warning("no jobs configured: the daemon will only hold the archive lock")
        first = start_job(self.config)
        for job in self.config.jobs:
            extra = {"next_run_time": datetime.now(self.scheduler.timezone)} if job is first else {}
            self.scheduler.add_job(
                self.run_job, _trigger(job), args=[job], id=job.name, name=job.name,
                misfire_grace_time=job.misfire_grace_seconds, coalesce=True, max_instances=1, **extra,
            )
        self.scheduler.start()
        log_start_up(self.config, first)
        for sched_job in self.scheduler.get_jobs():
            log.info("job %s: %s, next run %s", sched_job.name, sched_job.trigger, sched_job.next_run_time)

    def realign_after_clock_jump(self) -> None:
        """Bring back jobs a wall clock set back (an NTP step, a restored VM) has pushed away.

        APScheduler keeps each job's next fire time as a wall-clock date: after the clock went back a
        day, every job waits a day. No job is ever due later than one period from now (its interval,
        or its cron's next match), so one that is was scheduled before the jump and is moved back.
        A clock jumping forward needs nothing: the missed firings coalesce into one.
        """
        now = datetime.now(self.scheduler.timezone)
        for job in self.scheduler.get_jobs():
            trigger, scheduled = job.trigger, job.next_run_time
            soonest = now + trigger.interval if isinstance(trigger, IntervalTrigger) \
                else trigger.get_next_fire_time(None, now)
            if scheduled is not None and soonest is not None and scheduled > soonest + timedelta(seconds=1):
                log.warning("the clock went back: job %s moved from %s to %s", job.name, scheduled, soonest)
                job.modify(next_run_time=soonest)

    def shutdown(self) -> None:
        """Stop firing, end running crawls, then wait for jobs (a flush finishes its send)."""
        self.children.stop_accepting()
        self.scheduler.pause()
        self.children.stop_all()
        self.scheduler.shutdown(wait=True)

    def run_job(self, job: JobConfig) -> None:
        """Scheduler entry point; never raises, so one failure cannot silence later runs."""
        try:
            if job.mode in CRAWL_MODES:
                self._crawl(job)
            else:
                self._flush(job)
        except Exception:
            log.exception("job %s (mode %s) failed", job.name, job.mode)

    def _crawl(self, job: JobConfig) -> None:
        """Run one crawl job; a different job firing meanwhile runs right after it, once.

        Jobs whose intervals are multiples fire in the same instant (discover every 30 min, revisit
        every 2 h): skipping the loser would starve it forever, so it is kept (one pending firing per
        job, like ``coalesce``) and run when the crawl slot frees. The same job firing again while it
        runs is simply skipped.
        """
        if not self._crawl_lock.acquire(blocking=False):
            with self._pending_lock:
                if job.name != self._running_crawl and job.name not in self._pending:
                    self._pending[job.name] = job
                    log.info("job %s (mode %s) waits for crawl %s", job.name, job.mode, self._running_crawl)
                    return
            log.info("job %s (mode %s) skipped: crawl %s is still running", job.name, job.mode,
                     self._running_crawl)
            return
        try:
            self._run_crawl(job)
            while (pending := self._next_pending()) is not None:
                self._run_crawl(pending)
        finally:
            self._crawl_lock.release()

    def _next_pending(self) -> JobConfig | None:
        with self._pending_lock:
            if not self._pending:
                return None
            name = next(iter(self._pending))
            return self._pending.pop(name)

    def _run_crawl(self, job: JobConfig) -> None:
        self._running_crawl = job.name
        try:
            argv = list(self.crawl_command(self.config, job))
            started = time.monotonic()
            result = self.children.run(argv, job.name)
            if result is None:
                log.info("job %s (mode %s) not started: the daemon is stopping", job.name, job.mode)
                return
            _log_crawl_result(job, time.monotonic() - started, result)
        finally:
            self._running_crawl = None

    def _flush(self, job: JobConfig) -> None:
        if not self._flush_lock.acquire(blocking=False):
            log.info("job %s (mode flush) skipped: another flush is still running", job.name)
            return
        try:
            flush = self.flush or _default_flush(self.config.subscribers)
            started = time.monotonic()
            outcome = flush(self.config.db, self.config.smtp, self.config.alerts)
            log.info("job %s finished: mode=flush duration=%.1fs %s", job.name,
                     time.monotonic() - started, _describe_outcome(outcome))
        finally:
            self._flush_lock.release()


def log_start_up(config: Config, first: JobConfig | None) -> None:
    """What an operator checks first in a daemon's log: what it watches, where it writes, who hears.

    Warns about the two set-ups that fail silently: nobody to mail (changes pile up unread) and a
    User-Agent whose contact is still the template's (the site cannot reach whoever runs this).
    """
    from crawler.run import is_local

    log.info("daemon started (pid %d, config %s)", os.getpid(), config.source or "defaults and environment")
    log.info("watching %s; archive %s", config.site, os.path.abspath(config.db))
    readers = all_recipients(config)
    cadences = {sub.address: sub.cadence + (f" at {sub.at} {sub.timezone}" if sub.at else "")
                for sub in config.subscribers}
    log.info("subscriber mail to %s; operator mail to %s; SMTP %s:%d (%s)",
             ", ".join(f"{r} ({cadences.get(r, 'each_run')})" for r in readers) or "nobody",
             ", ".join(config.alerts.operator_recipients) or "nobody",
             config.smtp.host, config.smtp.port, config.smtp.security)
    log.info("start-up crawl: %s", f"job {first.name} (mode {first.mode}) now" if first else
             "none ([daemon] crawl_at_start = false or no crawl job)")
    if not readers:
        log.warning("no subscriber recipients: changes are recorded but nobody is mailed "
                    "(set DEFWATCH_ALERT_TO, [alerts] recipients or [[subscribers]])")
    if not config.alerts.operator_recipients:
        log.warning("no operator recipients: a blocked or failing crawl is only in this log "
                    "(set DEFWATCH_OPERATOR_TO or [alerts] operator_recipients)")
    if TEMPLATE_CONTACT in config.crawl.user_agent and not is_local(config.site):
        log.warning("[crawl] user_agent still names the template's contact (%s): put a URL or mail address "
                    "where %s can reach you", TEMPLATE_CONTACT, config.site)


def _default_flush(subscribers: Sequence[SubscriberConfig] = ()) -> FlushFunc:
    """``monitor.mailer.flush_outbox`` on a connection opened for this one flush (imported lazily so
    the daemon starts, and its crawls run, even if the mail side is broken). Hourly and daily
    subscriber digests fall due between crawls: each flush queues those that are due first."""
    from db.schema import connect
    from monitor.mailer import flush_outbox
    from monitor.subscribers import queue_subscriber_digests

    def flush(db_path: str, smtp: SmtpConfig, alerts: AlertConfig) -> Any:
        db = connect(db_path)
        try:
            if subscribers:
                queue_subscriber_digests(db, alerts, subscribers)
            return flush_outbox(db, smtp, alerts)
        finally:
            db.conn.close()

    return flush


def _trigger(job: JobConfig) -> Any:
    if job.cron is not None:
        return cron_trigger(job.cron)
    return IntervalTrigger(seconds=float(job.interval_minutes or 0) * 60)


# ---------------------------------------------------------------------------------------------
# Child processes


@dataclass
class ChildResult:
    pid: int
    returncode: int
    summary: dict[str, Any] | None
    stderr_tail: list[str] = field(default_factory=list)  # repeated at WARNING when the crawl fails


class ChildSupervisor:
    """Starts children and guarantees none outlives the daemon.

    Spawning and ``stop_accepting`` share one lock, so a job that fires during shutdown either
    starts before the stop (and is then terminated) or not at all.
    """

    def __init__(self, kill_timeout: float, inherit_fds: Sequence[int] = ()) -> None:
        self.kill_timeout = kill_timeout
        self.inherit_fds = tuple(inherit_fds)
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self._accepting = True

    def run(self, argv: list[str], label: str) -> ChildResult | None:
        """Run one child to the end; None if the daemon is already stopping."""
        with self._lock:
            if not self._accepting:
                return None
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, errors="replace", start_new_session=True, pass_fds=self.inherit_fds,
            )
            self._running.add(proc)
        try:
            log.info("job %s: started child pid %d", label, proc.pid)
            tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
            pump = threading.Thread(target=_pump_stderr, args=(proc.stderr, label, proc.pid, tail), daemon=True)
            pump.start()
            summary = _read_summary(proc.stdout, label)
            returncode = proc.wait()
            pump.join(timeout=5)
        finally:
            with self._lock:
                self._running.discard(proc)
        return ChildResult(proc.pid, returncode, summary, list(tail))

    def stop_accepting(self) -> None:
        with self._lock:
            self._accepting = False

    def stop_all(self) -> None:
        """SIGTERM every running child's process group, SIGKILL what is left after the timeout."""
        self.stop_accepting()
        with self._lock:
            children = list(self._running)
        for proc in children:
            log.info("sending SIGTERM to crawl child pid %d", proc.pid)
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_timeout
        for proc in children:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("crawl child pid %d ignored SIGTERM for %gs: killing it", proc.pid,
                            self.kill_timeout)
                _signal_group(proc, signal.SIGKILL)
                proc.wait()


def _signal_group(proc: subprocess.Popen[str], sig: int) -> None:
    """Signal the child's whole process group (it leads its own session), if it is still ours."""
    if proc.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _read_summary(stream: IO[str] | None, label: str) -> dict[str, Any] | None:
    """Drain stdout; the last line that is a JSON object with a ``run_id`` is the crawl's summary.

    Not "the line starting with {"run_id"": the crawl prints its summary with sorted keys.
    """
    summary = None
    for line in stream or ():
        text = line.strip()
        parsed = _json_object(text) if text.startswith("{") else None
        if parsed is not None and "run_id" in parsed:
            summary = parsed
        elif text:
            child_log.debug("[%s] %s", label, text)
    return summary


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _pump_stderr(stream: IO[str] | None, label: str, pid: int, tail: deque[str]) -> None:
    """Copy the child's stderr into the daemon's log, line by line, as it arrives."""
    for line in stream or ():
        text = line.rstrip()
        if text:
            tail.append(text)
            child_log.info("[%s pid %d] %s", label, pid, text)


def _log_crawl_result(job: JobConfig, duration: float, result: ChildResult) -> None:
    parts = [f"job {job.name} finished: mode={job.mode} duration={duration:.1f}s "
             f"exit={_describe_exit(result.returncode)}"]
    if result.summary is None:
        parts.append("no summary")
    else:
        parts.append(f"run_id={result.summary.get('run_id')}")
        for name, keys in SUMMARY_FIELDS:
            found = [result.summary[key] for key in keys if key in result.summary]
            if found:
                parts.append(f"{name}={found[0]}")
    log.log(logging.INFO if result.returncode == 0 else logging.WARNING, " ".join(parts))
    if result.returncode > 0 and result.stderr_tail:
        # stderr is logged at INFO as it arrives; a failed crawl's last words must be seen at any level
        log.warning("job %s: last stderr lines of crawl pid %d:\n  %s", job.name, result.pid,
                    "\n  ".join(result.stderr_tail))


def _describe_outcome(outcome: Any) -> str:
    """``sent=1 failed=0 pending=0`` for a FlushResult-like dataclass, else its repr."""
    if dataclasses.is_dataclass(outcome) and not isinstance(outcome, type):
        return " ".join(f"{k}={v}" for k, v in dataclasses.asdict(outcome).items())
    return f"result={outcome!r}"


def _describe_exit(returncode: int) -> str:
    if returncode >= 0:
        return str(returncode)
    try:
        return f"{returncode} ({signal.Signals(-returncode).name})"
    except ValueError:
        return str(returncode)


# ---------------------------------------------------------------------------------------------
# Process plumbing


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[list[str]]:
    """Turn SIGTERM/SIGINT into ``stop.set()`` for the duration; handlers stay in place during the
    shutdown so a second Ctrl-C cannot interrupt it half-way and orphan a crawl."""
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)  # no logging here: not safe in a handler
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _ensure_logging() -> None:
    """A daemon must not be silent: its per-job lines are its output, like a crawl's summary line.

    Log to stderr if nobody configured logging, and let this module's INFO lines through even when
    the caller's default level is WARNING (other loggers keep the caller's level).
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
