"""A one-line progress counter for a person at a terminal; silent in logs and pipes."""

from __future__ import annotations

import sys
import time
from typing import TextIO

INTERVAL_S = 0.5


class Progress:
    """``Progress("crawl", unit="pages")``: call ``update(done, total)`` often, ``finish()`` once.

    It draws only when the stream is a TTY, at most every half second, and erases its line at the
    end, so piped output and log files never see it.
    """

    def __init__(self, label: str, *, unit: str = "items", stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.label, self.unit = label, unit
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < INTERVAL_S and (total is None or done < total):
            return
        self.last = now
        rate = done / (now - self.started) if now > self.started else 0.0
        count = f"{done}/{total}" if total else str(done)
        self.stream.write(f"\r{self.label}: {count} {self.unit} ({rate:.0f}/s)")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.last:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
