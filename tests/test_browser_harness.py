"""The browser harness itself: it must see rendered text and catch every kind of page error.

A harness that reports no errors because it cannot see them would make every page test pass.
"""

from __future__ import annotations

import functools
import http.server
import threading

import pytest

from tests.browser import Chromium, require_chromium

BAD = """<!doctype html><html><head><title>bad</title><link rel="stylesheet" href="/missing.css"></head>
<body><p id="x">as served</p>
<script>document.getElementById('x').textContent = 'rendered by script'; console.error('boom'); undefinedFn();
</script></body></html>"""
GOOD = """<!doctype html><html><head><title>good</title><style>p{color:#123}</style></head>
<body><p>All <b>fine</b> here.</p><p hidden>not shown</p></body></html>"""


@pytest.fixture
def server(tmp_path):
    (tmp_path / "bad.html").write_text(BAD)
    (tmp_path / "good.html").write_text(GOOD)
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_rendered_text_and_every_kind_of_error_are_seen(server, tmp_path):
    require_chromium()
    with Chromium(tmp_path) as browser:
        bad = browser.load(f"{server}/bad.html")
        good = browser.load(f"{server}/good.html")
    assert bad.text.strip() == "rendered by script" and bad.title == "bad"
    assert "console: boom" in bad.errors
    assert any(e.startswith("exception: ReferenceError: undefinedFn is not defined") for e in bad.errors)
    assert f"HTTP 404: {server}/missing.css" in bad.errors
    assert good.text.strip() == "All fine here." and good.errors == []
    assert good.screenshot.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_file_url_page_loads(tmp_path):
    require_chromium()
    page_file = tmp_path / "good.html"
    page_file.write_text(GOOD)
    with Chromium(tmp_path) as browser:
        page = browser.load(page_file.as_uri())
    assert page.text.strip() == "All fine here." and page.errors == []
