"""Faults the site can be told to show: removals, blocks, failures, delays, maintenance, rate limits,
redirects, misbehaving transports (dropped connections, short, empty, huge or gzip-bomb bodies, login
walls) and pages that flip between two versions.

A fault targets a story id, a media id, a path (``/News/Releases/``; a trailing ``*`` makes it a
prefix) or, with None, the whole site. Ids and paths are matched the way the site identifies pages:
any URL of story 3610656, whatever its slug or host, is story 3610656.
"""

from __future__ import annotations

import email.utils
import gzip
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from samplesite.paths import route

Target = tuple[str, object]  # ("id", 3610656) | ("path", "/news/releases") | ("prefix", "/news/") | ("all", None)
ALL: Target = ("all", None)
# How a page can misbehave on the wire (``Site.misbehave``).
MISBEHAVE_MODES = ("reset", "truncate", "empty", "login", "oversize", "gzip_bomb")
DEFAULT_HUGE_BYTES = 50 * 1024 * 1024
LOGIN_PAGE = b"""<!DOCTYPE html>
<html><head><title>Sign In | U.S. Department of War</title></head>
<body><form method="post" action="/login"><label>User <input name="user"></label>
<label>Password <input type="password" name="password"></label><button>Sign in</button></form></body></html>
"""


class DropConnection(TimeoutError):
    """Raised while answering to close the socket without sending a byte.

    It is a ``TimeoutError`` because that is the one exception the stdlib's request handler treats
    as "discard this connection" (quietly, no traceback), so the server needs no special case.
    """


class ShortBody(bytes):
    """A body that claims ``claimed`` bytes (its ``len``, hence Content-Length) but holds fewer.

    The server announces ``len(body)`` and writes the real bytes, so the client sees a response cut
    short, as when a connection dies mid-transfer. Sent with ``Connection: close``.
    """

    claimed: int

    def __new__(cls, data: bytes, claimed: int) -> ShortBody:
        body = super().__new__(cls, data)
        body.claimed = claimed
        return body

    def __len__(self) -> int:
        return self.claimed


@lru_cache(maxsize=4)
def gzip_bomb(size: int) -> bytes:
    """``size`` bytes of zeros, gzipped: a few kilobytes on the wire that inflate past any sane limit."""
    return gzip.compress(b"\0" * size, compresslevel=9)


def to_target(path_or_id: int | str | None) -> Target:
    """Normalise what a caller names (int id, digits, URL, path, path*) into a matchable target."""
    if path_or_id is None:
        return ALL
    if isinstance(path_or_id, int) or str(path_or_id).isdigit():
        return ("id", int(path_or_id))
    text = str(path_or_id)
    path = urlsplit(text).path or "/"
    if text.endswith("*"):
        return ("prefix", path.rstrip("*").lower())
    ref = route(path)
    if ref.page in ("story", "photo") and ref.id is not None:
        return ("id", ref.id)
    return ("path", _norm(path))


def exact_target(path_or_id: int | str | None) -> Target:
    """Like ``to_target``, but a story or photo URL names that exact path, not every URL of its id.

    A redirect from a page's old URL to its new one (a new slug or section, same id) needs this:
    by id, the new URL would redirect too, and the page would loop.
    """
    text = "" if path_or_id is None else str(path_or_id)
    if path_or_id is None or isinstance(path_or_id, int) or text.isdigit() or text.endswith("*"):
        return to_target(path_or_id)
    return ("path", _norm(urlsplit(text).path or "/"))


def _norm(path: str) -> str:
    return path.lower().rstrip("/") or "/"


def request_keys(path: str) -> list[Target]:
    """Every target that names the page at ``path`` (most specific first)."""
    ref = route(path)
    keys: list[Target] = []
    if ref.page in ("story", "photo") and ref.id is not None:
        keys.append(("id", ref.id))
    keys.append(("path", _norm(path)))
    return keys


def matches(targets: dict[Target, object] | set[Target], path: str) -> Target | None:
    """The target in ``targets`` that applies to ``path``, or None."""
    if not targets:
        return None
    for key in request_keys(path):
        if key in targets:
            return key
    low = path.lower()
    for kind, value in targets:
        if kind == "prefix" and low.startswith(str(value)):
            return (kind, value)
    return ALL if ALL in targets else None


@dataclass
class RateLimit:
    """At most ``limit`` requests per ``window`` seconds; beyond that 429 until the window ends."""

    limit: int
    window: float
    http_date: bool = False  # send Retry-After as an HTTP date instead of delta-seconds
    started: float = 0.0
    count: int = 0

    def check(self, now: float | None = None) -> int | None:
        """Count one request; return the Retry-After seconds when it must be refused."""
        now = time.monotonic() if now is None else now
        if now - self.started >= self.window:
            self.started, self.count = now, 0
        self.count += 1
        if self.count <= self.limit:
            return None
        return max(1, math.ceil(self.window - (now - self.started)))

    def retry_after(self, seconds: int) -> str:
        """The header value: delta-seconds, or the HTTP-date form RFC 9110 also allows.

        A date has whole seconds, so it is rounded up: a client that waits until then is never early.
        """
        if not self.http_date:
            return str(seconds)
        return email.utils.formatdate(math.ceil(time.time() + seconds), usegmt=True)


@dataclass
class FlipFlop:
    """A paragraph that alternates between two texts on every request for the page."""

    index: int
    other_html: str


@dataclass
class Faults:
    removed: dict[Target, int] = field(default_factory=dict)  # -> 404 | 410
    blocked: set[Target] = field(default_factory=set)
    failing: dict[Target, int] = field(default_factory=dict)  # -> 5xx
    delays: dict[Target, float] = field(default_factory=dict)
    maintenance: set[Target] = field(default_factory=set)
    broken: dict[Target, str] = field(default_factory=dict)  # -> break_html mode
    rate: RateLimit | None = None
    redirects: dict[Target, tuple[int, str]] = field(default_factory=dict)  # -> (status, Location)
    misbehaving: dict[Target, tuple[str, int]] = field(default_factory=dict)  # -> (mode, size)
    flipping: dict[Target, FlipFlop] = field(default_factory=dict)
    offsite_related: dict[Target, list[str]] = field(default_factory=dict)  # -> extra related URLs
    unlisted: set[int] = field(default_factory=set)  # story ids in no listing or feed (their pages answer)
    browsers_only: bool = False  # refuse every client that does not present itself as a browser

    def removed_story_ids(self) -> set[int]:
        """Removed stories also vanish from listings and feeds, as on the real site."""
        return {v for k, v in self.removed if k == "id" and isinstance(v, int)}

    def refuses(self, headers: dict[str, str]) -> bool:
        """The bot wall of ``browsers_only``: a client without a browser's client hints is refused.

        Akamai tells clients apart by their TLS handshake, which this server cannot see; the
        ``Sec-CH-UA`` hints a browser (and curl_cffi's browser impersonation) sends stand in for it."""
        return self.browsers_only and not any(name.lower() == "sec-ch-ua" for name in headers)

    def hidden_story_ids(self) -> set[int]:
        """Stories no listing, feed or home page shows: removed ones and unlisted ones."""
        return self.removed_story_ids() | self.unlisted

    def delay_for(self, path: str) -> float:
        key = matches(self.delays, path)
        return self.delays[key] if key else 0.0
