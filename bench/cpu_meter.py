"""CPU seconds spent by this process and every process it started, read from /proc while they run.

Why: on cores shared with other work the wall clock measures the others' load as much as ours,
while CPU time does not. A re-parse's workers are children of multiprocessing's fork server, not
of this process, so ``os.times()`` never counts them: this follows the whole process tree instead,
polling each process's ``utime + stime`` and keeping the last value seen (a process that ends
between two polls loses at most one interval). Linux only; elsewhere it reports nothing.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks used) for every process visible in /proc."""
    found = {}
    for entry in PROC.iterdir() if PROC.is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (command)": state, ppid, ..., utime, stime
        found[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


def _tree(root: int, table: dict[int, tuple[int, int]]) -> dict[int, int]:
    """CPU ticks of ``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    ticks, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            ticks[pid] = table[pid][1]
            todo.extend(children.get(pid, []))
    return ticks


class CpuMeter:
    """``with CpuMeter() as meter: ...`` then ``meter.seconds``: CPU of this process tree in the block."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.root = os.getpid()
        self.start: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> CpuMeter:
        self.start = _tree(self.root, _table())
        self.last = dict(self.start)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self._sample()

    def _poll(self) -> None:
        while not self.done.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        for pid, ticks in _tree(self.root, _table()).items():
            self.last[pid] = max(ticks, self.last.get(pid, 0))

    @property
    def seconds(self) -> float:
        return sum(t - self.start.get(pid, 0) for pid, t in self.last.items()) / TICKS
