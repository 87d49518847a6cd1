"""Stand-ins for the Wayback Machine on 127.0.0.1, serving CDX and raw ``id_`` captures from local WARCs.

``Pywb`` runs the real thing: pywb's ``wayback`` server over a collection named ``web``, so its
layout is the Internet Archive's (``/web/<timestamp>id_/<url>``; CDX at ``/web/cdx``). pywb 2.x pins
redis 2.10.6 (through fakeredis 0.16), which cannot share a virtualenv with scrapy-redis's
redis>=4.2, so it lives in a virtualenv of its own: ``DEFWATCH_TEST_PYWB`` names its ``bin``
directory (default ``.venv-pywb/bin`` in the checkout, made by
``python3 -m venv .venv-pywb && .venv-pywb/bin/pip install pywb``).

``MiniWayback`` is the smallest faithful stand-in, for what pywb cannot be made to do and for
machines without it: the Internet Archive's own CDX shape (a JSON array under a header row, at
``/cdx/search/cdx``), captures read with warcio from the same WARCs, and faults on command (a CDX
API that answers 500, captures answered 429 with ``Retry-After``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from warcio.archiveiterator import ArchiveIterator

ROOT = Path(__file__).resolve().parent.parent


def pywb_bin() -> Path | None:
    """The directory holding pywb's ``wayback`` and ``wb-manager``, or None."""
    configured = os.environ.get("DEFWATCH_TEST_PYWB")
    candidates = [Path(configured)] if configured else [ROOT / ".venv-pywb" / "bin"]
    found = shutil.which("wayback")
    if found:
        candidates.append(Path(found).parent)
    return next((c for c in candidates if (c / "wayback").exists() and (c / "wb-manager").exists()), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Pywb:
    """pywb's ``wayback`` on 127.0.0.1 over the given WARCs, in collection ``web``."""

    def __init__(self, bin_dir: Path, root: Path, warcs: list[Path]):
        self.bin_dir, self.root, self.warcs = bin_dir, root, warcs
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdx_url(self) -> str:
        return f"{self.url}/web/cdx"

    def __enter__(self) -> Pywb:
        self.root.mkdir(parents=True, exist_ok=True)
        manager = str(self.bin_dir / "wb-manager")
        subprocess.run([manager, "init", "web"], cwd=self.root, check=True, capture_output=True, timeout=60)
        subprocess.run([manager, "add", "web", *map(str, self.warcs)], cwd=self.root, check=True,
                       capture_output=True, timeout=120)
        self.proc = subprocess.Popen([str(self.bin_dir / "wayback"), "-p", str(self.port), "-b", "127.0.0.1"],
                                     cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/web/cdx?url=example.org&output=json", timeout=2)  # noqa: S310
                return self
            except urllib.error.HTTPError:
                return self  # answering at all is ready
            except OSError:
                time.sleep(0.3)
        self.__exit__()
        raise RuntimeError("pywb did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class MiniWayback:
    """CDX (Internet Archive shape) and ``id_`` captures from WARCs, with faults on command."""

    def __init__(self, warcs: list[Path]):
        self.captures: list[dict[str, Any]] = []
        for path in warcs:
            with open(path, "rb") as stream:
                for record in ArchiveIterator(stream):
                    if record.rec_type != "response":
                        continue
                    date = datetime.fromisoformat(record.rec_headers.get_header("WARC-Date").replace("Z", "+00:00"))
                    self.captures.append({
                        "timestamp": date.strftime("%Y%m%d%H%M%S"), "date": date,
                        "original": record.rec_headers.get_header("WARC-Target-URI"),
                        "statuscode": record.http_headers.get_statuscode(),
                        "mimetype": (record.http_headers.get_header("Content-Type") or "").split(";")[0],
                        "digest": record.rec_headers.get_header("WARC-Payload-Digest", "").split(":")[-1],
                        "headers": record.http_headers.headers, "body": record.content_stream().read(),
                    })
        self.cdx_status: int | None = None  # answer every CDX query with this status
        self.captures_before_429: int | None = None  # after this many captures, answer 429
        self.served = 0
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> MiniWayback:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        wayback = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                wayback.requests.append(self.path)
                if self.path.startswith("/cdx/search/cdx"):
                    self._send(*wayback.cdx(parse_qs(urlsplit(self.path).query)))
                elif self.path.startswith("/web/"):
                    self._send(*wayback.replay(self.path[len("/web/"):]))
                else:
                    self._send(404, [("Content-Type", "text/plain")], b"not here")

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def cdx(self, query: dict[str, list[str]]) -> tuple[int, list[tuple[str, str]], bytes]:
        if self.cdx_status:
            return self.cdx_status, [("Content-Type", "text/plain"), ("Retry-After", "0")], b"CDX server error"
        url = query["url"][0]
        prefix = query.get("matchType", ["exact"])[0] == "prefix"
        lo, hi = query.get("from", [""])[0], query.get("to", ["99999999999999"])[0]
        rows = [c for c in self.captures
                if (_strip(c["original"]).startswith(url) if prefix else _strip(c["original"]) == url)
                and c["timestamp"] >= lo and c["timestamp"][:len(hi)] <= hi]
        rows.sort(key=lambda c: (c["original"], c["timestamp"]))
        fields = ["timestamp", "original", "statuscode", "digest", "mimetype"]
        table = [fields] + [[c[f] for f in fields] for c in rows] if rows else []
        return 200, [("Content-Type", "application/json")], json.dumps(table).encode()

    def replay(self, rest: str) -> tuple[int, list[tuple[str, str]], bytes]:
        stamp, _, original = rest.partition("id_/")
        match = [c for c in self.captures if c["timestamp"] == stamp and c["original"] == original]
        if not match:
            return 404, [("Content-Type", "text/html")], b"<html>Wayback Machine has not archived that URL.</html>"
        if self.captures_before_429 is not None and self.served >= self.captures_before_429:
            return 429, [("Content-Type", "text/plain"), ("Retry-After", "0")], b"Too Many Requests"
        self.served += 1
        capture = match[0]
        headers = [(f"X-Archive-Orig-{name}", value) for name, value in capture["headers"]]
        headers += [("Content-Type", capture["mimetype"] or "text/html"),
                    ("Memento-Datetime", format_datetime(capture["date"].astimezone(UTC), usegmt=True))]
        return int(capture["statuscode"]), headers, capture["body"]


def _strip(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc + parts.path + (f"?{parts.query}" if parts.query else "")
