"""Faults the live site shows, end to end: nothing is lost and nothing is invented.

Each scenario crawls the sample site once healthy (the baseline), then with faults, then checks the
archive: every request has a fetch row with the right outcome, no fault becomes a version or a
removal, and the only events are the real changes the scenario made. A second sample site on
another port stands for "another host" (evil.example): it must never see a request.

Most faults run together on different stories of one archive, so the whole file stays near a
minute (each crawl is a ~3 s child process).

Flip-flopping content (a story that alternates between two texts on every request, as behind two
out-of-sync caches) is reported for its first change and its first revert; from the next alternation
on the monitor calls it flapping and stays quiet. Within one run there is at most one event per story.
"""

from __future__ import annotations

import http.client
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from crawler.middlewares import SiteOnlyMiddleware
from crawler.outcomes import classify
from crawler.spiders.site import _landed_elsewhere
from samplesite import SampleSite
from tests.conftest import ROOT, CrawlRun, crawl_env, run_crawl

TIMEOUT = 2  # DOWNLOAD_TIMEOUT for the faulty runs, in seconds (1 s is the TCP SYN retry interval)
MAX_BYTES = 10_000_000  # crawl.max_response_bytes in the scenario's config (the default is 20 MB)
ROLES = ("http500", "http502", "http503", "not_found", "gone", "timeout", "reset", "truncate", "empty",
         "login", "oversize", "gzip_bomb", "to_home", "loop", "offsite_redirect", "moved", "flip", "linker")
# What run 2 (and run 3, with the faults still on) must record for each story: (outcome, HTTP status).
EXPECTED = {
    "http500": ("error", 500), "http502": ("error", 502), "http503": ("error", 503),
    "not_found": ("not_found", 404), "gone": ("gone", 410),
    "timeout": ("error", None), "reset": ("error", None), "truncate": ("error", None),
    "empty": ("error", 200), "login": ("blocked", 200),
    "oversize": ("error", None), "gzip_bomb": ("error", None),
    "to_home": ("error", 200), "loop": ("error", None), "offsite_redirect": ("error", None),
    "moved": ("not_modified", 304), "flip": ("ok", 200), "linker": ("not_modified", 304),
}
ERROR_TEXT = {
    "oversize": "max size", "gzip_bomb": "DOWNLOAD_MAXSIZE",
    "loop": "max redirections", "offsite_redirect": "off-site request refused", "to_home": "another page",
    "empty": "empty body", "http503": "HTTP 503",
}
OPERATOR_KINDS = {"crawl_failed", "crawl_blocked", "parser_degraded"}

# `defwatch crawl`, with Scrapy settings on top (a short DOWNLOAD_TIMEOUT): monitor.run.run_once.
RUN_ONCE = """
import json, logging, sys
from dataclasses import replace
from core.config import load_config
from monitor.run import run_once
db, site, mode, settings = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
logging.basicConfig(level=logging.WARNING)
summary = run_once(replace(load_config(), db=db, site=site), mode=mode, send_mail=False, settings_overrides=settings)
print(json.dumps(summary.as_json()))
"""


def crawl_with_settings(db: Path, site: str, env: dict[str, str], settings: dict[str, Any],
                        mode: str = "full") -> CrawlRun:
    proc = subprocess.run([sys.executable, "-c", RUN_ONCE, str(db), site, mode, json.dumps(settings)],
                          env=env, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return CrawlRun(proc.returncode, json.loads(lines[-1]) if lines else {}, proc.stdout, proc.stderr)


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def run_events(db: Path, run_id: int) -> list[tuple[str, int]]:
    return sorted(query(db, "SELECT kind, subject_id FROM events WHERE run_id = ?", (run_id,)))


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


@dataclass
class Scenario:
    db: Path
    roles: dict[str, int]
    elsewhere: str
    runs: list[CrawlRun] = field(default_factory=list)
    requests: list[Counter] = field(default_factory=list)  # per run: path -> times the site saw it
    statuses: list[dict[int, str]] = field(default_factory=list)  # per run: story id -> status after it
    elsewhere_requests: int = 0
    stories: int = 0


def break_site(site: SampleSite, roles: dict[str, int], urls: dict[int, str], elsewhere: str) -> None:
    """One fault per story, all at once."""
    site.fail(roles["http500"], 500)
    site.fail(roles["http502"], 502)
    site.fail(roles["http503"], 503)
    site.remove(roles["not_found"], 404)
    site.remove(roles["gone"], 410)
    site.delay(4, roles["timeout"])  # longer than the crawl's DOWNLOAD_TIMEOUT
    for mode in ("reset", "truncate", "empty", "login"):
        site.misbehave(mode, roles[mode])
    site.misbehave("oversize", roles["oversize"], size=MAX_BYTES + 5_000_000)
    site.misbehave("gzip_bomb", roles["gzip_bomb"], size=50 * 1024 * 1024)
    site.redirect(roles["to_home"], "/")
    site.redirect(roles["loop"], "/loop/")
    site.redirect("/loop/", path_of(urls[roles["loop"]]))
    site.redirect(roles["offsite_redirect"], elsewhere + "/News/")
    old = path_of(urls[roles["moved"]])  # the same story at a new address (as defense.gov -> war.gov)
    site.redirect(old, old.rstrip("/").rsplit("/", 1)[0] + "/a-new-slug/")
    site.flip_flop(roles["flip"], "A paragraph that comes and goes with every request.")


def heal_site(site: SampleSite, roles: dict[str, int]) -> None:
    site.heal()
    site.restore(roles["not_found"])
    site.restore(roles["gone"])
    site.delay(0, roles["timeout"])
    site.behave()
    site.unredirect()
    site.stop_flip_flop()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    """Baseline; every fault (run 2); still faulty (run 3: 404/410 confirmed); healed (run 4)."""
    tmp = tmp_path_factory.mktemp("faults")
    (tmp / "defwatch-test.toml").write_text(
        f"[monitor]\nremoval_confirm_runs = 2\n[crawl]\nmax_response_bytes = {MAX_BYTES}\n", encoding="utf-8")
    env = crawl_env(tmp)
    db = tmp / "faults.db"
    with SampleSite() as site, SampleSite() as other_host:
        ids = sorted(site.content.stories)
        roles = dict(zip(ROLES, ids, strict=False))
        result = Scenario(db, roles, other_host.base_url, stories=len(ids))
        site.add_offsite_related(roles["linker"], other_host.base_url + "/News/News-Stories/Article/Article/999/x/")

        def crawl(step: Any) -> None:
            site.clear_requests()
            result.runs.append(step())
            result.requests.append(Counter(r.path for r in site.requests))
            result.statuses.append(dict(query(db, "SELECT id, status FROM stories")))

        crawl(lambda: run_crawl(db, site.base_url, env=env))
        urls = dict(query(db, "SELECT id, url FROM stories"))
        break_site(site, roles, urls, other_host.base_url)
        for _ in range(2):
            crawl(lambda: crawl_with_settings(db, site.base_url, env, {"DOWNLOAD_TIMEOUT": TIMEOUT}))
        heal_site(site, roles)
        crawl(lambda: crawl_with_settings(db, site.base_url, env, {"DOWNLOAD_TIMEOUT": TIMEOUT}))
        result.elsewhere_requests = len(other_host.requests)
    for run in result.runs:
        assert run.returncode == 0, run.stderr[-3000:]
    return result


def fetch_rows(scenario: Scenario, run_id: int) -> dict[str, tuple]:
    rows = query(scenario.db, """SELECT subject_id, outcome, status, error, final_url, sha256, version FROM fetches
                                 WHERE run_id = ? AND page_type = 'story'""", (run_id,))
    by_id = {row[0]: row[1:] for row in rows}
    assert len(by_id) == len(rows), "a story was fetched twice in one run"
    return {role: by_id[story_id] for role, story_id in scenario.roles.items()}


@pytest.mark.parametrize("run_id", [2, 3])
def test_every_fault_is_recorded_with_its_outcome(scenario, run_id):
    rows = fetch_rows(scenario, run_id)
    got = {role: (row[0], row[1]) for role, row in rows.items()}
    assert got == EXPECTED
    for role, text in ERROR_TEXT.items():
        assert text in (rows[role][2] or ""), (role, rows[role][2])
    assert re.search("took longer than|timeout", rows["timeout"][2]), rows["timeout"][2]
    for role in ("oversize", "gzip_bomb"):
        assert rows[role][4] is None  # cut off, never stored or parsed


def test_no_fault_makes_a_version_or_a_false_event(scenario):
    roles = scenario.roles
    versions = query(scenario.db, "SELECT story_id, COUNT(*) FROM story_versions GROUP BY story_id HAVING COUNT(*) > 1")
    assert versions in ([(roles["flip"], 2)], [])  # flipping back reuses version 1: never a third version
    assert query(scenario.db, "SELECT COUNT(*) FROM story_versions")[0][0] == scenario.stories + len(versions)
    others = [[e for e in run_events(scenario.db, run_id) if e[1] != roles["flip"]] for run_id in (1, 2, 3, 4)]
    assert others == [
        [],
        [],
        sorted([("story_removed", roles["not_found"]), ("story_removed", roles["gone"])]),
        sorted([("story_restored", roles["not_found"]), ("story_restored", roles["gone"])]),
    ]
    assert [run.summary["status"] for run in scenario.runs] == ["ok"] * 4


def test_flip_flopping_is_one_update_per_run_at_most(scenario):
    """A run reports the text it saw if it differs from the last run's, unless the page is flapping.

    Which text a run sees is not fixed (a retried request sees the other one), so the expected
    events are derived from the versions the runs recorded: a change is reported unless the last
    three distinct versions were A, B, A and this run shows B again.
    """
    flip = scenario.roles["flip"]
    shown = dict(query(scenario.db, "SELECT run_id, version FROM fetches WHERE subject_id = ? AND page_type = 'story'",
                       (flip,)))
    assert set(shown) == {1, 2, 3, 4}
    expected = [run for run in (2, 3, 4) if shown[run] != shown[run - 1] and not _flaps(shown, run)]
    got = [run for run in (2, 3, 4) for kind, subject in run_events(scenario.db, run) if subject == flip]
    assert got == expected
    assert {kind for run in (2, 3, 4) for kind, subject in run_events(scenario.db, run) if subject == flip} <= {
        "story_updated"}


def _flaps(shown: dict[int, int], run: int) -> bool:
    history: list[int] = []
    for earlier in range(1, run):
        if not history or history[-1] != shown[earlier]:
            history.append(shown[earlier])
    last = history[-3:]
    return len(last) == 3 and shown[run] == last[1] and last[2] == last[0]


def test_only_404_and_410_move_a_story_out_of_live(scenario):
    gone = {scenario.roles["not_found"], scenario.roles["gone"]}
    after = [{sid for sid, status in statuses.items() if status != "live"} for statuses in scenario.statuses]
    assert after == [set(), gone, gone, set()]
    assert {scenario.statuses[1][sid] for sid in gone} == {"missing"}
    assert {scenario.statuses[2][sid] for sid in gone} == {"removed"}


def test_server_errors_are_retried_then_recorded(scenario):
    """Retried (RETRY_TIMES = 2), then one error row. The server may see a retry less (a connect that
    timed out in the sample site's small accept backlog) or one more (Twisted re-sends a request once
    when a reused keep-alive connection closes before answering)."""
    urls = dict(query(scenario.db, "SELECT id, url FROM stories"))
    for role in ("http500", "http502", "http503", "reset", "truncate", "timeout"):
        assert scenario.requests[1][path_of(urls[scenario.roles[role]])] >= 2, role


def test_redirects_are_followed_on_the_site_only(scenario):
    rows = fetch_rows(scenario, 2)
    site = query(scenario.db, "SELECT site FROM runs WHERE id = 1")[0][0]
    assert rows["to_home"][3] == site + "/"
    assert rows["offsite_redirect"][3] == scenario.elsewhere + "/News/"
    assert rows["moved"][3].endswith("/a-new-slug/") and rows["moved"][5] == 1  # the same page, still version 1
    assert scenario.elsewhere_requests == 0  # neither the redirect nor the related link reached it
    asked = query(scenario.db, "SELECT COUNT(*) FROM fetches WHERE url LIKE ?", (scenario.elsewhere + "%",))
    assert asked == [(0,)]


def test_an_offsite_link_is_not_a_related_story(scenario):
    rows = query(scenario.db, "SELECT url FROM related_links WHERE url LIKE ?", (scenario.elsewhere + "%",))
    assert rows == []


def late_robots_txt(site: SampleSite, monkeypatch: pytest.MonkeyPatch, seconds: float = 1.0) -> None:
    """robots.txt answers ``seconds`` late, as on a loaded machine: every request Scrapy holds behind it
    meets the site's answer at once (the sample site's ``delay`` does not slow a block page)."""
    respond = site.respond

    def late(method: str, target: str, headers: dict[str, str] | None = None, base: str = "") -> Any:
        if target.startswith("/robots.txt"):
            time.sleep(seconds)
        return respond(method, target, headers, base=base)

    monkeypatch.setattr(site, "respond", late)


def test_block_storm_ends_the_run_and_429_with_an_http_date_is_waited_out(site, tmp_path, monkeypatch):
    db = tmp_path / "storm.db"
    env = crawl_env(tmp_path)
    assert run_crawl(db, site.base_url, env=env).returncode == 0
    site.block(None)
    site.clear_requests()
    with monkeypatch.context() as patch:
        late_robots_txt(site, patch)
        blocked = run_crawl(db, site.base_url, env=env)
    storm_requests = len(site.requests)
    assert blocked.returncode == 3 and blocked.summary["finish_reason"] == "blocked", blocked.stderr[-2000:]
    # DEFWATCH_BLOCK_STORM, robots.txt, and a request or two in flight when the storm was counted. The
    # requests held behind a late robots.txt are not a wave on top: until the site has answered without
    # refusing, the downloader holds one request (crawler.middlewares.BackoffMiddleware).
    assert storm_requests <= 25 + 3
    assert storm_requests < query(db, "SELECT COUNT(*) FROM fetches WHERE run_id = 1")[0][0]  # ended early
    assert run_events(db, 2) == [("crawl_blocked", 2)]
    assert query(db, "SELECT DISTINCT outcome FROM fetches WHERE run_id = 2") == [("blocked",)]

    site.unblock()
    site.rate_limit(20, retry_after=1, http_date=True)
    site.clear_requests()
    limited = run_crawl(db, site.base_url, env=env)
    assert limited.returncode == 0, limited.stderr[-2000:]
    refused = [r for r in site.requests if r.status == 429]
    assert refused and all(r.headers for r in refused)
    answered = {r.path for r in site.requests if r.status in (200, 304)}
    assert {r.path for r in refused} <= answered  # every refused request was retried and answered
    assert query(db, "SELECT COUNT(*) FROM fetches WHERE run_id = 3 AND outcome NOT IN ('ok', 'not_modified')") \
        == [(0,)]
    assert run_events(db, 3) == [("crawl_unblocked", 3)]  # the end of the block, and nothing else
    assert query(db, "SELECT COUNT(*) FROM stories WHERE status != 'live'") == [(0,)]
    assert query(db, "SELECT COUNT(*) FROM story_versions")[0][0] == len(site.content.stories)


# -- the pieces, without a crawl ------------------------------------------------------------------


def raw_get(base: str, path: str) -> tuple[int, dict[str, str], bytes] | str:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    except (http.client.HTTPException, OSError) as exc:
        return type(exc).__name__
    finally:
        conn.close()


def test_sample_site_misbehaves_on_command(site):
    story = "/News/News-Stories/Article/Article/3610656/"
    site.misbehave("reset", 3610656)
    assert raw_get(site.base_url, story) == "RemoteDisconnected"
    site.misbehave("truncate", 3610656)
    assert raw_get(site.base_url, story) == "IncompleteRead"
    site.misbehave("gzip_bomb", 3610656, size=5_000_000)
    status, headers, body = raw_get(site.base_url, story)
    assert headers["Content-Encoding"] == "gzip" and len(body) < 20_000
    site.behave()
    site.redirect(3610656, "/", status=302)
    assert raw_get(site.base_url, story)[:2][0] == 302
    site.unredirect()
    site.flip_flop(3610656, "Now you see it.")
    seen = [b"Now you see it." in raw_get(site.base_url, story)[2] for _ in range(3)]
    assert seen == [True, False, True]
    site.rate_limit(0, retry_after=30, http_date=True)
    assert raw_get(site.base_url, story)[1]["Retry-After"].endswith(" GMT")
    assert site.requests[0].status == 0  # a dropped connection is logged too


def test_empty_200_and_unfollowed_redirects_are_errors_and_a_login_wall_is_not_content():
    assert classify(200, {}, b"") == ("error", "empty body")
    assert classify(301, {}, b"") == ("error", "HTTP 301")
    assert classify(200, {}, b"<html><head><title>Sign In</title></head><input type=password></html>")[0] \
        == "blocked"


def test_a_redirect_to_the_same_id_is_the_same_page():
    story = "https://www.war.gov/News/News-Stories/Article/Article/3610656/new-slug/"
    assert not _landed_elsewhere("story", 3610656, story)
    assert _landed_elsewhere("story", 3610656, "https://www.war.gov/")
    assert _landed_elsewhere("story", 3610656, story.replace("3610656", "3610657"))
    assert not _landed_elsewhere("listing", None, "https://www.war.gov/")


def test_site_only_allows_the_given_site():
    local = SiteOnlyMiddleware("http://127.0.0.1:8000")
    assert local.allows("http://127.0.0.1:8000/News/") and not local.allows("http://127.0.0.1:8001/News/")
    live = SiteOnlyMiddleware(None)
    assert live.allows("https://www.defense.gov/News/") and not live.allows("https://evil.example/News/")
