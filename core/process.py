"""Is a process still alive? Runs, archive locks and outbox leases name their owner by pid.

A run left 'running', a lock file or a mail marked 'sending' is taken over only when its owner is
certainly gone; these answers are shared by the archive writer, the monitor's lock and the outbox.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path


def process_token(pid: int | None = None) -> str:
    """This process (or ``pid`` on this machine) as ``pid@boot-id/pid-namespace``, for ``process_gone``."""
    return f"{pid or os.getpid()}@{_machine_key()}"


def process_gone(token: str | None) -> bool:
    """True only when the process a ``process_token`` names is certainly dead: the machine has rebooted
    since, or the pid no longer exists in this same pid namespace. Unknown (another namespace, an
    unreadable token) is not gone: the caller then waits for its lease."""
    pid, _, key = (token or "").partition("@")
    if not pid.isdigit() or not key:
        return False
    boot, _, namespace = key.partition("/")
    here_boot, _, here_namespace = _machine_key().partition("/")
    if boot and here_boot and boot != here_boot:
        return True
    return namespace == here_namespace and not pid_alive(int(pid))


@functools.cache
def _machine_key() -> str:
    """This boot of this machine and this pid namespace (Linux; empty parts elsewhere)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        boot = ""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{boot}/{namespace}"


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
