"""What readers open in a browser, rendered by headless Debian chromium: the HTML digest mail,
``defwatch diff --html`` and the ``defwatch browse`` pages (Datasette: home, a story, each canned query).

Each page must show the expected text as rendered (``innerText``, after scripts and CSS) and load
without a console error, an uncaught exception or a failed request. One real scenario feeds them
all: the sample site crawled, changed and crawled again, its mails received by a real SMTP server.

``DEFWATCH_SCREENSHOTS=1`` also writes the screenshots the README shows into ``docs/``.
"""

from __future__ import annotations

import html
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from defwatch.browse import CANNED_QUERIES
from samplesite import SampleSite
from samplesite.changes import story_paragraphs
from tests.browser import Chromium, Page, require_chromium
from tests.conftest import ROOT, run_crawl
from tests.smtp_sink import SmtpSink
from tests.test_monitor_e2e import CAPTIONED_IMAGE, EDITED, LINKED, NEW_LINK_TARGET, REMOVED, mail_env

# A reporter's kind of edit: a few words of a long paragraph (the word-level marks are what to see).
ORIGINAL = ("The annual event, held this week, brought together DOD political and military space leadership from "
            "the U.S., Australia, Canada, France, Germany, New Zealand, the United Kingdom, and also welcomed three "
            "new members of CSpO: Italy, Japan and Norway.")
EDIT = ("The annual event, held this week, brought together DOD political and military space leadership from "
        "the U.S., Australia, Canada, France, Germany, New Zealand, the United Kingdom, and also welcomed four "
        "new members of CSpO: Italy, Japan, Norway and Poland.")
CAPTION = "Ministers pose for a group photo after the talks; the caption was rewritten after publication."
DOCS = ROOT / "docs"
MARKS = {tag: f"[...document.querySelectorAll('{tag}')].map(e => e.textContent)" for tag in ("del", "ins")}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """Baseline; an edit, a caption rewrite, a related link, a new story and a removal; one more run."""
    require_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    (tmp / "defwatch-test.toml").write_text("[monitor]\nremoval_confirm_runs = 1\n", encoding="utf-8")
    db = tmp / "archive.db"
    with SampleSite() as site, SmtpSink() as sink:
        env = mail_env(tmp, sink)
        assert run_crawl(db, site.base_url, env=env).returncode == 0
        old = html.unescape(story_paragraphs(site.content.stories[EDITED])[1]["html"])
        assert old.startswith(ORIGINAL), old
        site.edit_paragraph(EDITED, 1, EDIT + old.removeprefix(ORIGINAL))
        site.set_caption(CAPTIONED_IMAGE, CAPTION)
        site.add_related(LINKED, NEW_LINK_TARGET)
        new_id = site.publish()
        site.remove(REMOVED, status=404)
        run = run_crawl(db, site.base_url, env=env)
        assert run.returncode == 0, run.stderr
        mails = [m.message for m in sink.messages if "analyst@example.org" in m.rcpt_tos]
    return {"db": db, "env": env, "tmp": tmp, "mails": mails, "new_id": new_id}


def keep(page: Page, name: str) -> None:
    """Save the screenshot for the README when asked to; always check that it is a real image."""
    assert page.screenshot.startswith(b"\x89PNG") and len(page.screenshot) > 10_000
    if os.environ.get("DEFWATCH_SCREENSHOTS"):
        (DOCS / name).write_bytes(page.screenshot)


def cli(scenario, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "defwatch", *args, "--db", str(scenario["db"])],
                          env=scenario["env"], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)


def test_diff_html_in_a_browser(scenario, tmp_path):
    done = cli(scenario, "diff", str(EDITED), "--html")
    assert done.returncode == 0, done.stderr
    page_file = tmp_path / "diff.html"
    page_file.write_text(done.stdout, encoding="utf-8")
    with Chromium(tmp_path) as browser:
        page = browser.load(page_file.as_uri(), probes=MARKS)
    assert page.errors == []
    assert "More Nations Meet to Address Space Security" in page.text
    assert "welcomed threefour new members" in page.text  # one paragraph, word-level marks
    assert page.probes == {"del": ["three", "Norway"], "ins": ["four", ", Norway", "Poland"]}
    assert "version 1 → 2" in page.title
    keep(page, "diff-html.png")


@pytest.fixture(scope="module")
def browse(scenario):
    """``defwatch browse`` on a free port, as a user starts it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "defwatch", "browse", "--db", str(scenario["db"]),
                             "--port", str(port)], env=scenario["env"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(base + "/-/versions.json", timeout=2).close()  # noqa: S310 - 127.0.0.1
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"defwatch browse did not answer: {proc.communicate()[1][-2000:]}") from None
            time.sleep(0.1)
    yield base
    proc.terminate()
    proc.communicate(timeout=10)


# page path -> what must be on it as rendered
BROWSE_PAGES = {
    "/": ["defwatch archive", "Versioned archive of www.defense.gov", "story_versions", "stories"],
    "/archive": ["Latest changes", "A story's history", "Full-text search", "Removed stories"],
    f"/archive/stories/{EDITED}": ["More Nations Meet to Address Space Security", EDIT],
    "/archive/latest_changes": ["story_updated", "story_removed", "story_new", "related_added"],
    f"/archive/story_history?id={EDITED}": ["More Nations Meet to Address Space Security"],
    "/archive/search?q=Poland": ["More Nations Meet to Address Space Security", "Poland"],
    "/archive/removed_stories": [str(REMOVED), "removed"],
    "/archive/virin_by_branch_month": ["Air Force"],
    "/archive/related_graph": [str(LINKED), str(NEW_LINK_TARGET)],
    "/archive/frontier": ["Crawl frontier"],  # a crawled (not daemon-run) archive: the page, no rows
    "/archive/frontier_next": ["Next pages the frontier fetches"],
}


ROW_PROBES = {
    "labels": "[...document.querySelectorAll('table.rows-and-columns td')].map(td => "
              "[td.className.match(/col-(\\S+)/)[1], getComputedStyle(td, '::before').content])",
    "tall": "document.documentElement.scrollHeight",
}


def test_every_canned_query_has_a_page_checked():
    assert {path.split("?")[0].removeprefix("/archive/") for path in BROWSE_PAGES} >= set(CANNED_QUERIES)


def test_browse_pages_in_a_browser(browse, tmp_path):
    seen = {}
    with Chromium(tmp_path, window=(1700, 900)) as browser:  # the event log is a wide table
        for path, expected in BROWSE_PAGES.items():
            page = browser.load(browse + path, probes=ROW_PROBES if "/stories/" in path else None)
            assert page.errors == [], (path, page.errors)
            missing = [text for text in expected if text not in page.text]
            assert not missing, (path, missing, page.text[:1500])
            seen[path] = page
    # a story's row page reads as labelled fields (the label over each value is its own column's name)
    story = seen[f"/archive/stories/{EDITED}"]
    assert story.probes["labels"] and all(label == f'"{column}"' for column, label in story.probes["labels"])
    assert story.probes["tall"] < 4000  # was over 5,000 px: the text squeezed into one table column
    keep(seen["/archive/latest_changes"], "browse-latest-changes.png")
    keep(seen[f"/archive/stories/{EDITED}"], "browse-story.png")


def test_digest_mail_in_a_browser(scenario, tmp_path):
    [mail] = scenario["mails"]
    html_part = mail.get_body(("html",)).get_content()
    page_file = tmp_path / "digest.html"
    page_file.write_text(html_part, encoding="utf-8")
    with Chromium(tmp_path) as browser:
        page = browser.load(page_file.as_uri(), probes=MARKS)
    assert page.errors == []
    text = page.text
    for expected in ("New stories (1)", "Updated stories (2)", "Removed stories (1)",
                     "National Guard Begins Drone Swarm Trial", "More Nations Meet to Address Space Security",
                     "Last archived text", f"defwatch show {REMOVED}", "Wayback Machine captures",
                     "Related stories added", "Photos", CAPTION.split(";")[1].strip()):
        assert expected in text, expected
    assert "run 2" not in text and "(run" not in text  # times, not run numbers
    assert "four" in page.probes["ins"] and "three" in page.probes["del"]
    # the photo's caption, rewritten outright, is shown old and new whole rather than as a run-on of marks
    assert any(d.startswith("The future expeditionary sea base") and d.endswith("2023.") for d in page.probes["del"])
    assert CAPTION in page.probes["ins"]
    keep(page, "digest-mail.png")
