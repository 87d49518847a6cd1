"""Headless Debian ``chromium`` driven over the DevTools protocol, for tests of anything that is a page.

Why the protocol rather than ``--dump-dom``: a test must see what a reader sees (the rendered text,
``document.body.innerText``, after scripts ran), every console error *and* every resource that failed
to load (a missing stylesheet only shows in the DevTools log, never in ``--enable-logging``), and a
screenshot, all from one page load. The client is a plain websocket (``websockets``' sync client).

    with Chromium(tmp_path) as browser:
        page = browser.load("http://127.0.0.1:8001/archive")
        assert "Latest changes" in page.text and page.errors == []
        Path("shot.png").write_bytes(page.screenshot)

Flags follow the machine notes: no sandbox (root), no GPU, no background networking, component
updates, first-run or sync (the machine's network is closed), and a fresh profile every time.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
         "--hide-scrollbars", "--remote-debugging-port=0", "--remote-allow-origins=*")
WINDOW = (1280, 900)


@dataclass
class Page:
    url: str
    text: str  # document.body.innerText: what a reader sees, after scripts ran
    title: str
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, failed loads
    screenshot: bytes = b""  # PNG of the whole page
    probes: dict[str, Any] = field(default_factory=dict)  # answers to the caller's JavaScript expressions


def require_chromium() -> str:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
    return CHROMIUM


class Chromium:
    """One headless browser for a test; each ``load`` opens a fresh tab."""

    def __init__(self, workdir: Path, window: tuple[int, int] = WINDOW) -> None:
        self.workdir = workdir
        self.window = window
        self.proc: subprocess.Popen[str] | None = None
        self.ws: Any = None
        self._ids = itertools.count(1)
        self._stderr: list[str] = []

    def __enter__(self) -> Chromium:
        from websockets.sync.client import connect

        binary = require_chromium()
        profile = self.workdir / f"chromium-profile-{time.monotonic_ns()}"
        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={self.window[0]},{self.window[1]}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        url = self._devtools_url()
        # Keep reading its stderr: a full pipe would stall the browser mid-test.
        threading.Thread(target=self._stderr.extend, args=(self.proc.stderr,), daemon=True).start()
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(connect(url, max_size=None, open_timeout=10))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ws is not None:
            self._stack.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _devtools_url(self, timeout: float = 20.0) -> str:
        assert self.proc is not None and self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            self._stderr.append(line)
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                return found.group(1)
        raise AssertionError("chromium did not start its DevTools endpoint:\n" + "".join(self._stderr[-20:]))

    # -- protocol -----------------------------------------------------------------------------------

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        return message_id

    def _call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
              events: list[dict[str, Any]] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        """Send one command and wait for its answer; events that arrive meanwhile go to ``events``."""
        message_id = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == message_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
            if events is not None and "method" in message:
                events.append(message)

    def _drain(self, events: list[dict[str, Any]], until: str, timeout: float) -> None:
        """Collect events until one named ``until`` arrived, then until the page is quiet for 0.5 s."""
        deadline = time.monotonic() + timeout
        seen = any(e["method"] == until for e in events)
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            try:
                message = json.loads(self.ws.recv(timeout=0.1))
            except TimeoutError:
                if seen and time.monotonic() - quiet_since >= 0.5:
                    return
                continue
            if "method" in message:
                events.append(message)
                seen = seen or message["method"] == until
                quiet_since = time.monotonic()
        if not seen:
            raise AssertionError(f"no {until} within {timeout} s")

    # -- pages --------------------------------------------------------------------------------------

    def load(self, url: str, timeout: float = 30.0, probes: dict[str, str] | None = None) -> Page:
        """Open ``url`` in a new tab, wait for it to load and settle, and read what a reader sees.

        ``probes`` maps names to JavaScript expressions evaluated on the loaded page (JSON results).
        """
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        events: list[dict[str, Any]] = []
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                self._call(f"{domain}.enable", session=session, events=events)
            self._call("Emulation.setDeviceMetricsOverride", {"width": self.window[0], "height": self.window[1],
                                                             "deviceScaleFactor": 1, "mobile": False},
                       session=session, events=events)
            navigation = self._call("Page.navigate", {"url": url}, session=session, events=events)
            if navigation.get("errorText"):
                raise AssertionError(f"{url}: {navigation['errorText']}")
            self._drain(events, "Page.loadEventFired", timeout)
            text = self._evaluate("document.body ? document.body.innerText : ''", session, events)
            title = self._evaluate("document.title", session, events)
            answers = {name: self._evaluate(js, session, events) for name, js in (probes or {}).items()}
            shot = self._call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                              session=session, events=events)
            return Page(url, text, title, _errors(events, session), base64.b64decode(shot["data"]), answers)
        finally:
            self._call("Target.closeTarget", {"targetId": target})

    def _evaluate(self, expression: str, session: str, events: list[dict[str, Any]]) -> Any:
        result = self._call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                            session=session, events=events)
        return result["result"].get("value")


def _errors(events: list[dict[str, Any]], session: str) -> list[str]:
    """Console errors, uncaught exceptions, failed loads and HTTP errors of the page's own requests."""
    errors = []
    for event in events:
        if event.get("sessionId") not in (None, session):
            continue
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append("exception: " + (details.get("exception", {}).get("description") or details.get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            errors.append(f"log: {entry['text']} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            errors.append(f"failed load: {params.get('errorText')} ({params.get('type')})")
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            errors.append(f"HTTP {params['response']['status']}: {params['response']['url']}")
    return list(dict.fromkeys(errors))
