"""The archive writer process: stores every page of a local crawl, off the reactor.

Why a process: Scrapy runs the downloads, the middlewares and the spider on one thread. Writing a
page to SQLite (hashing, compressing, FTS) and parsing the pages that lead nowhere cost as much CPU
again, and on a thread of the same process they would hold the GIL the reactor needs. In a child
process they run on the other core (``bench/crawl_speed.py``; docs/ARCHITECTURE.md, "The crawl's
shape").

The crawl process sends each response (fetch facts, raw body, and the record when the spider parsed
it) down a pipe; this process parses the pages sent unparsed (``Job.parse_url``: photo pages, see
``crawler.spiders.site``) with ``crawler.pages.parse_fetched``, stores each with
``Archive.save_response`` (one savepoint per response, a commit every ``BATCH_SIZE`` responses or
``BATCH_SECONDS``) and answers with the ``SaveResult``, in order. Nothing the spider follows waits
for an answer: the answers only count the run and watch for a block storm.

Lifetime: the writer ends when its input pipe closes, after committing every response it received;
whether the crawl closed the pipe or died (kill -9), nothing it was sent is lost and nothing is
half-written. SIGINT and SIGTERM are ignored here: a stop signal is for the crawl, which stops, then
closes the pipe; the writer runs in a session of its own, so a signal to the crawl's process group
never reaches it. A writer that fails to start or dies fails the jobs in flight with its error.

    python -m crawler.archiver --db PATH --run-id N --jobs FD --answers FD   (started by ArchiverClient)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from core.fetch import FetchInfo, SaveResult
from db.schema import is_storage_error, storage_problem

BATCH_SIZE = 50
BATCH_SECONDS = 1.0
# A benchmark's switch, not a setting: profile the writer process into this file (bench/crawl_speed.py).
PROFILE_ENV = "DEFWATCH_BENCH_PROFILE_WRITER"
PIPE_BYTES = 1 << 20  # room for a few real-size pages in flight before a send waits (Linux caps it)
# Jobs sent and not answered yet, in bytes, past which the writer is behind (``ArchiverClient.behind``):
# half the pipe, so that a page sent at the mark still fits and the send does not wait. The crawl's
# setting DEFWATCH_WRITER_BEHIND_BYTES overrides it (crawler.pipelines).
BEHIND_BYTES = PIPE_BYTES // 2


@dataclass
class Job:
    """One response to store; ``parse_url`` set means: parse ``body`` as that URL first (a page
    the spider follows nothing from, left for this process to parse)."""

    fetch: FetchInfo
    body: bytes | None
    record: Any = None
    parse_url: str | None = None


@dataclass
class Stored:
    """The writer's answer to one ``Job``: the fetch as stored (its outcome may have changed when the
    page turned out to be a block page or another page) and the archive's result."""

    fetch: FetchInfo
    result: SaveResult
    record_type: str | None = None


@dataclass
class WriterStats:
    """The writer's last message, after its input closed: what the run cost it, and how long it
    waited for work (the crawl did not send fast enough)."""

    cpu_seconds: float
    idle_seconds: float = 0.0


class ArchiverError(RuntimeError):
    """The writer could not store a response, or is gone."""


# -- the writer process ---------------------------------------------------------------------------


def serve(db_path: str, run_id: int, jobs: Connection, answers: Connection) -> None:
    """Store jobs in the order sent until the input closes; commit whatever was received before
    returning, and commit whenever the input is quiet (the write lock is never held idle)."""
    from db.archive import Archive  # the writer's imports only; the crawl process never needs these twice

    archive = Archive.open(db_path)
    batched, batch_started, answering, waited = 0, 0.0, True, 0.0
    try:
        while True:
            idle = max(0.0, BATCH_SECONDS - (time.monotonic() - batch_started)) if batched else None
            ready, seconds = _poll(jobs, idle)
            waited += seconds
            if not ready:  # a quiet spell: commit the batch
                archive.commit_batch()
                batched = 0
                continue
            try:
                seq, job = pickle.loads(jobs.recv_bytes())
            except EOFError:
                break
            if batched == 0:
                archive.begin_batch()
                batch_started = time.monotonic()
            stored = _store(archive, run_id, job)
            answering = answering and _answer(answers, (seq, stored))
            batched += 1
            if batched >= BATCH_SIZE or time.monotonic() - batch_started >= BATCH_SECONDS:
                archive.commit_batch()
                batched = 0
    finally:
        archive.commit_batch()
        archive.close()
        if answering:
            _answer(answers, WriterStats(time.process_time(), waited))


def _poll(jobs: Connection, timeout: float | None) -> tuple[bool, float]:
    """Whether a job is ready within ``timeout``, and the seconds spent waiting for it: the writer's
    idle time, which with the crawl's time blocked on the pipe says whether the two processes kept
    both cores busy (``bench/crawl_speed.py``)."""
    if jobs.poll(0):
        return True, 0.0
    started = time.perf_counter()
    ready = jobs.poll(timeout)
    return ready, time.perf_counter() - started


def _answer(answers: Connection, message: Any) -> bool:
    """Send ``message`` to the crawl; False when the crawl is gone (kill -9). What it sent before it
    died is still in the input pipe, and is stored all the same: nobody is told."""
    try:
        answers.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
    except OSError:
        return False
    return True


def _store(archive: Any, run_id: int, job: Job) -> Stored | ArchiverError:
    from crawler.pages import parse_fetched

    try:
        record = job.record
        if job.parse_url is not None:
            record = parse_fetched(job.fetch, job.body or b"", job.parse_url)
        result = archive.save_response(run_id, job.fetch, job.body, record)
    except Exception as exc:  # one bad response must not end the crawl; the crawl logs it
        if is_storage_error(exc):
            raise  # a read-only archive or a full disk: no response can be stored any more (see main)
        return ArchiverError(f"could not store {job.fetch.url}: {type(exc).__name__}: {exc}")
    return Stored(job.fetch, result, record.type if record is not None else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.archiver", description=__doc__)
    parser.add_argument("--db", required=True)
    parser.add_argument("--run-id", type=int, required=True)
    parser.add_argument("--jobs", type=int, required=True, help="file descriptor to read jobs from")
    parser.add_argument("--answers", type=int, required=True, help="file descriptor to write answers to")
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        with _profiled(os.environ.get(PROFILE_ENV)):
            serve(args.db, args.run_id, Connection(args.jobs, writable=False), Connection(args.answers, readable=False))
    except Exception as exc:
        problem = storage_problem(args.db, exc)
        if problem is None:
            raise
        # One line, not a traceback: the crawl sees the writer exit and ends the run ``failed``.
        print(f"defwatch archive writer: {problem}", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def _profiled(path: str | None) -> Iterator[None]:
    """cProfile the writer into ``path`` (``PROFILE_ENV``, set by ``bench/crawl_speed.py --profile``):
    the crawl's other process, whose CPU a profile of the crawl process never shows."""
    if not path:
        yield
        return
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(path)


# -- the crawl side -------------------------------------------------------------------------------


class ArchiverClient:
    """Starts the writer process and turns its answers into asyncio futures.

    Answers are read on the event loop (``add_reader`` on the pipe), not on a thread: a reader
    thread has to win the GIL back from the busy reactor after every read, which paced the answers,
    and so the whole crawl, at the interpreter's switch interval."""

    def __init__(self, db_path: str, run_id: int, behind_bytes: int = BEHIND_BYTES):
        self.behind_bytes = behind_bytes
        jobs_read, jobs_write = _pipe()
        answers_read, answers_write = _pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crawler.archiver", "--db", db_path, "--run-id", str(run_id),
             "--jobs", str(jobs_read), "--answers", str(answers_write)],
            pass_fds=(jobs_read, answers_write), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            # Its own session: a stop signal sent to the crawl's process group (the daemon's SIGTERM,
            # Ctrl-C) must not kill it mid-batch or before it is up; it ends when its input closes.
            start_new_session=True,
        )
        os.close(jobs_read)
        os.close(answers_write)
        os.set_blocking(answers_read, False)
        self.jobs = Connection(jobs_write, readable=False)
        self.answers_fd = answers_read
        self.buffer = bytearray()
        self.pending: dict[int, asyncio.Future[Stored]] = {}
        self.sizes: dict[int, int] = {}  # bytes of each job sent and not answered yet
        self.backlog_bytes = 0
        self.send_wait_seconds = 0.0  # the reactor's time in sends: a full pipe blocks it
        self.sequence = 0
        self.failure: ArchiverError | None = None
        self.stats: WriterStats | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ended: asyncio.Future[None] | None = None

    def store(self, job: Job) -> asyncio.Future[Stored]:
        """Send one job; the future resolves when the writer has stored it (or fails with its error)."""
        loop = self._attach()
        future: asyncio.Future[Stored] = loop.create_future()
        if self.failure is not None:
            future.set_exception(self.failure)
            return future
        self.sequence += 1
        self.pending[self.sequence] = future
        data = pickle.dumps((self.sequence, job), pickle.HIGHEST_PROTOCOL)
        self.sizes[self.sequence] = len(data)
        self.backlog_bytes += len(data)
        started = time.perf_counter()
        try:
            self.jobs.send_bytes(data)
        except OSError as exc:  # the writer is gone
            self._end(ArchiverError(f"archive writer is gone: {exc}"))
        self.send_wait_seconds += time.perf_counter() - started
        return future

    def behind(self) -> bool:
        """True when the writer has ``behind_bytes`` or more of jobs it has not answered yet (0: always).

        Why: a send to a full pipe blocks the reactor until the writer has read enough, and the
        writer falls behind exactly when the crawl's pages cost it more than they cost the reactor
        (photo pages, which it parses and stores). The pipeline then parses such pages itself
        (``crawler.pipelines``): each process takes what the other cannot, and neither waits.

        The answers already in the pipe are read first: a reactor busy with a burst of responses
        reads them late, and counting them as pending made an idle writer look behind."""
        if self.backlog_bytes >= self.behind_bytes and self.ended is not None and not self.ended.done():
            self._on_readable()  # only while the answers' pipe is open: a closed fd number may be reused
        return self.backlog_bytes >= self.behind_bytes

    async def aclose(self) -> int:
        """Close the input, read the last answers, wait for the writer to exit; its exit status."""
        self._attach()
        if not self.jobs.closed:
            self.jobs.close()
        assert self.ended is not None
        await self.ended
        return await asyncio.to_thread(self.proc.wait)

    def close(self, timeout: float = 60.0) -> int:
        """``aclose`` for callers outside the event loop: answers not read by then are dropped."""
        if not self.jobs.closed:
            self.jobs.close()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._end(ArchiverError("archive writer closed"))

    def _attach(self) -> asyncio.AbstractEventLoop:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            self.ended = self.loop.create_future()
            self.loop.add_reader(self.answers_fd, self._on_readable)
        return self.loop

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self.answers_fd, 1 << 20)
        except BlockingIOError:
            return
        except OSError as exc:
            self._end(ArchiverError(f"archive writer is gone: {exc}"))
            return
        if not chunk:
            status = self.proc.poll()
            self._end(ArchiverError(f"archive writer exited{'' if status is None else f' with status {status}'}"))
            return
        self.buffer += chunk
        try:
            for answer in _frames(self.buffer):
                self._settle(answer)
        except Exception as exc:  # an answer this side cannot read: nothing after it can be trusted
            self.proc.kill()
            self._end(ArchiverError(f"unreadable answer from the archive writer: {type(exc).__name__}: {exc}"))

    def _settle(self, answer: Any) -> None:
        if isinstance(answer, WriterStats):
            self.stats = answer
            return
        seq, result = answer
        self.backlog_bytes -= self.sizes.pop(seq, 0)
        future = self.pending.pop(seq, None)
        if future is not None:
            _settle(future, result)

    def _end(self, error: ArchiverError) -> None:
        """The writer is gone (or closing): whatever is still pending fails with ``error``."""
        if self.loop is not None and self.ended is not None and not self.ended.done():
            self.loop.remove_reader(self.answers_fd)
            os.close(self.answers_fd)
            self.ended.set_result(None)
        self.failure = self.failure or error
        pending, self.pending = list(self.pending.values()), {}
        self.sizes, self.backlog_bytes = {}, 0
        for future in pending:
            _settle(future, self.failure)


def _frames(buffer: bytearray) -> Iterator[Any]:
    """Complete messages at the head of ``buffer`` (multiprocessing.Connection framing: a 4-byte
    big-endian length, then the pickle), removed from it as they are yielded."""
    while len(buffer) >= 4:
        (size,) = struct.unpack("!i", buffer[:4])
        if size < 0 or len(buffer) < 4 + size:  # -1 marks a >2 GiB frame, which answers never are
            return
        message = bytes(buffer[4:4 + size])
        del buffer[:4 + size]
        yield pickle.loads(message)


def _settle(future: asyncio.Future[Stored], answer: Stored | ArchiverError) -> None:
    if future.done():
        return
    if isinstance(answer, ArchiverError):
        future.set_exception(answer)
    else:
        future.set_result(answer)


def _pipe() -> tuple[int, int]:
    read, write = os.pipe()
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or over the system's cap: default size
        fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    return read, write


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: the answers must pickle as
    # crawler.archiver.Stored, the class the crawl process unpickles them into.
    from crawler.archiver import main as archiver_main

    sys.exit(archiver_main())
