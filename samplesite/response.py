"""What the site answers, independent of the HTTP server that sends it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class LoggedRequest(NamedTuple):
    """One request as the site saw it (admin calls are not logged)."""

    method: str
    path: str
    status: int
    headers: dict[str, str]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    delay: float = 0.0  # seconds the server waits before answering (``delay()``)
