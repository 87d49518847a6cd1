"""The sample site over HTTP: a ThreadingHTTPServer on 127.0.0.1 in a daemon thread.

``SampleSite`` is a :class:`~samplesite.site.Site` (so every change command is a method) that can
also serve itself. Another process drives it with ``POST /__admin__/<command>`` and a JSON body of
keyword arguments; GET never reaches the admin API, and admin calls bypass every fault.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from samplesite.changes import ADMIN_ACTIONS
from samplesite.site import Site
from samplesite.variants import DEFAULT_HELD_OUT

ADMIN_PREFIX = "/__admin__/"


class SampleSite(Site):
    """A sample site you can start, stop, change and break.

    >>> with SampleSite() as site:
    ...     site.set_title(3610656, "New title")
    ...     urllib.request.urlopen(site.base_url + "/News/News-Stories/")
    """

    def __init__(self, data: dict[str, Any] | str | Path | None = None, *, synthetic: int = 0,
                 seed: int = 1, held_out: bool = DEFAULT_HELD_OUT) -> None:
        super().__init__(data, synthetic=synthetic, seed=seed, held_out=held_out)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self, port: int = 0, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> str:
        """Serve in a daemon thread; returns the base URL (``http://127.0.0.1:PORT``).

        With ``tls`` (a server-side context holding a certificate) it serves HTTPS instead. The TLS
        handshake happens in each connection's own thread, on its first read, so one slow client never
        holds up the others."""
        if self._server is not None:
            return self.base_url
        self._server = _Server((host, port), _handler_for(self))
        scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
            scheme = "https"
        self.base_url = f"{scheme}://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="samplesite", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> SampleSite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def admin(self, action: str, args: dict[str, Any]) -> Any:
        """Run one admin command by name (the HTTP admin endpoint's entry point)."""
        if action not in ADMIN_ACTIONS:
            raise LookupError(action)
        if action == "requests":
            return [r._asdict() for r in self.requests]
        return getattr(self, action)(**args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False  # a client's idle keep-alive connection must not hang stop()
    request_queue_size = 128  # the default backlog of 5 drops connections when a crawler opens 32 at once


def _handler_for(site: SampleSite) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.site = site
    return Handler


class _Handler(BaseHTTPRequestHandler):
    site: SampleSite
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections end, so handler threads do not pile up

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the stdlib's per-request stderr line: ``site.requests`` is the log."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        if self.path.lower().startswith(ADMIN_PREFIX):
            self._admin()
        else:
            self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        if self.path.lower().startswith(ADMIN_PREFIX):
            self._send(405, {"Allow": "POST", "Content-Type": "text/plain"}, b"admin API: POST only\n", method)
            return
        if method not in ("GET", "HEAD"):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))  # keep the connection usable
        # Links use the served base, whatever Host the client sent, so a crawler of 127.0.0.1 stays here.
        resp = self.site.respond(method, self.path, dict(self.headers.items()), base=self.site.base_url)
        if resp.delay > 0:
            time.sleep(resp.delay)
        self._send(resp.status, resp.headers, resp.body, method)

    def _admin(self) -> None:
        action = self.path[len(ADMIN_PREFIX):].split("?")[0].strip("/")
        length = int(self.headers.get("Content-Length") or 0)
        try:
            args = json.loads(self.rfile.read(length) or b"{}") if length else {}
            result = self.site.admin(action, args)
            status, payload = 200, {"ok": True, "result": result}
        except LookupError as exc:
            status, payload = 404, {"ok": False, "error": f"unknown action or id: {exc}"}
        except (TypeError, ValueError) as exc:
            status, payload = 400, {"ok": False, "error": str(exc)}
        body = json.dumps(payload).encode()
        self._send(status, {"Content-Type": "application/json"}, body, "POST")

    def _send(self, status: int, headers: dict[str, str], body: bytes, method: str) -> None:
        self.send_response_only(status)
        headers = dict(headers)
        self.send_header("Server", headers.pop("Server", "Microsoft-IIS/10.0"))
        self.send_header("Date", self.date_time_string())
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        try:
            self.end_headers()
            if method != "HEAD" and status != 304 and body:
                self.wfile.write(body)
        except ConnectionError:
            self.close_connection = True  # the client gave up (e.g. timed out during delay())


def serve_forever(port: int = 8000, synthetic: int = 0, host: str = "127.0.0.1",
                  held_out: bool = DEFAULT_HELD_OUT) -> None:
    """Serve until interrupted (``defwatch sample-site --port N [--held-out]``)."""
    site = SampleSite(synthetic=synthetic, held_out=held_out)
    url = site.start(port, host=host)
    print(f"sample site at {url}/  (admin: POST {url}{ADMIN_PREFIX}<command>)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()
