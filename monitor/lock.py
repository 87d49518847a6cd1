"""One daemon per archive: an exclusive ``flock`` on ``<db>.lock`` holding the owner's pid.

``flock`` rather than a pid file alone because the kernel drops the lock when the last descriptor
to it is closed, so a daemon that dies (even by SIGKILL) never leaves a stale lock behind. The pid
written into the file is only there to name the owner in the refusal message.

The holder removes the file when it stops, so no lock file outlives its daemon. Removing a lock file
races with a process that has just opened the old inode; that is why ``acquire`` checks, once it holds
the lock, that the path still names the inode it locked, and starts over when it does not. A daemon
that dies without releasing leaves the file, which is harmless: the kernel dropped the lock.
"""

from __future__ import annotations

import fcntl
import os

from core.process import pid_alive


class LockHeld(Exception):
    """Another process holds the archive lock; ``pid`` is what it wrote there (None if unreadable)."""

    def __init__(self, path: str, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        super().__init__(describe_holder(path, pid))


def lock_path_for(db: str) -> str:
    """The lock file that guards the archive at ``db``."""
    return f"{db}.lock"


def describe_holder(path: str, pid: int | None) -> str:
    """A message for the operator that says who holds the lock and what to do."""
    if pid is None:
        return f"another defwatch daemon holds the archive lock {path} (its pid is not recorded yet)"
    if pid_alive(pid):
        return f"another defwatch daemon (pid {pid}) is already running on this archive (lock {path})"
    return (
        f"the archive lock {path} is held although its daemon (pid {pid}) has exited: "
        "a crawl it started is probably still running and holds the lock until it ends"
    )


class ArchiveLock:
    """A non-blocking exclusive lock on one file; use as a context manager or acquire/release."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def fd(self) -> int | None:
        """The locked descriptor, so crawl children can inherit it (see ``monitor.daemon``)."""
        return self._fd

    def acquire(self) -> None:
        """Take the lock or raise ``LockHeld``; OSError if the file cannot be created."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _names(self.path, fd):
                    break
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                raise LockHeld(self.path, pid) from None
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the holder removed this file as we opened it: lock the path's new file
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Remove the file and drop the lock; safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if _names(self.path, fd):  # still ours: removed while locked, so no one can lock it after
                os.unlink(self.path)
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor releases the flock


    def __enter__(self) -> ArchiveLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _names(path: str, fd: int) -> bool:
    """True when ``path`` still names the file open as ``fd`` (not removed or replaced since)."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)


def _read_pid(fd: int) -> int | None:
    """The pid recorded by the holder; None while it has not been written yet."""
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
