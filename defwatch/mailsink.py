"""A minimal SMTP server on 127.0.0.1 that keeps what it receives: the demo's stand-in mail host."""

from __future__ import annotations

import threading
import time
from typing import Any

from aiosmtpd.controller import Controller


class _Collector:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        with self.lock:
            self.messages.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's readiness probe connects to ``self.port``: with port 0, read the bound port first."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink:
    """``with SmtpSink() as sink: ... sink.port ... sink.wait_for(1)``"""

    def __init__(self) -> None:
        self._collector = _Collector()
        self._controller = _Controller(self._collector, hostname="127.0.0.1", port=0)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._collector.lock:
                if len(self._collector.messages) >= count:
                    break
            time.sleep(0.05)
        with self._collector.lock:
            return list(self._collector.messages)

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
