"""Distributed mode (issue: distributed crawl): workers share a Redis frontier, one writer archives.

The end-to-end test runs what a user runs: a real redis-server on a free port, the sample site,
one `defwatch distributed writer` and two `defwatch distributed worker` processes. Outside CI it
is skipped when redis-server or the `distributed` extra is missing; in CI it must run (.ci/run
installs redis-server).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from scrapy import Request

from core.urls import classify_url
from tests.conftest import ROOT, crawl_env, run_crawl

REDIS_SERVER = shutil.which("redis-server")
HAS_EXTRA = all(importlib.util.find_spec(name) is not None for name in ("redis", "scrapy_redis"))
PAGE_TYPES = ("story", "photo")
# Outside CI a missing extra skips; in CI the test runs and fails on the import.
needs_extra = pytest.mark.skipif(not HAS_EXTRA and not os.environ.get("CI"),
                                 reason="the distributed extra is not installed (pip install -e '.[distributed]')")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the distributed test (.ci/run installs redis-server)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    """A private redis-server on a free port, gone when the test ends."""
    if REDIS_SERVER is None:
        _missing("redis-server is not installed (apt-get install redis-server)")
    if not HAS_EXTRA:
        _missing("the distributed extra is not installed (pip install -e '.[distributed]')")
    import redis

    port = _free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_redis(redis.Redis.from_url(url), proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_for_redis(client, proc: subprocess.Popen) -> None:
    import redis

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    pytest.fail(f"redis-server did not start (exit status {proc.poll()})")


@pytest.fixture
def distributed():
    """Start `defwatch distributed ...` as a user would; whatever a failed test left running is killed."""
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "defwatch", "distributed", *args], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, dict, str]:
    """Exit status, the last JSON line printed, and stderr."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{proc.args[3:5]} did not finish in {timeout}s:\n{err[-3000:]}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return proc.returncode, json.loads(lines[-1]) if lines else {}, err


def query(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def archived(db: Path) -> dict[str, dict[int, str]]:
    """Every story and image of the archive with the content hash of its version."""
    return {
        "story": dict(query(db, "SELECT story_id, content_hash FROM story_versions")),
        "photo": dict(query(db, "SELECT media_id, content_hash FROM image_versions")),
    }


def page_fetches(site) -> Counter:
    """(page type, id) -> how many GETs the site answered for it, whatever the URL's slug."""
    refs = (classify_url(site.base_url + r.path) for r in site.requests)
    return Counter((ref.type, ref.id) for ref in refs if ref.type in PAGE_TYPES)


def test_two_workers_share_a_full_crawl_and_no_page_is_fetched_twice(site, redis_url, distributed, tmp_path):
    site.delay(0.1)  # pages take a moment, as on a real site: one worker alone cannot be done at once
    env = crawl_env(tmp_path)
    db = tmp_path / "distributed.db"
    common = ("--redis", redis_url, "--site", site.base_url)
    writer = distributed("writer", *common, "--db", str(db), "--mode", "full", "--no-mail", "--json", env=env)
    workers = [distributed("worker", *common, "--mode", "full", "--name", name, "--concurrency", "3",
                           "--wait", "60", env=env) for name in ("w1", "w2")]

    status, summary, err = finish(writer)
    assert status == 0, err[-3000:]
    reports = {}
    for proc in workers:
        worker_status, report, worker_err = finish(proc, timeout=60)
        assert worker_status == 0 and report["finish_reason"] == "finished", worker_err[-3000:]
        reports[report["worker"]] = report["pages"]

    stories, images = set(site.content.stories), set(site.content.images)
    assert summary["status"] == "ok" and summary["finish_reason"] == "finished" and summary["baseline"]
    assert summary["outcomes"] == {"ok": summary["pages"]}
    # The archive holds every story and every photo page of the site.
    got = archived(db)
    assert set(got["story"]) == stories and set(got["photo"]) == images
    assert {source for (source,) in query(db, "SELECT DISTINCT source FROM images")} == {"photo_page"}
    # Each page was fetched exactly once across both workers (by id: slugs may differ) ...
    fetched = page_fetches(site)
    assert set(fetched) == {("story", i) for i in stories} | {("photo", i) for i in images}
    assert max(fetched.values()) == 1, [page for page, n in fetched.items() if n > 1]
    paths = Counter(r.path for r in site.requests if r.path != "/robots.txt")
    assert max(paths.values()) == 1, [path for path, n in paths.items() if n > 1]
    # ... and recorded once: one fetch row per request the site answered.
    assert query(db, "SELECT COUNT(*) FROM fetches")[0][0] == sum(paths.values()) == summary["pages"]
    # Both workers did a share, and the writer stored exactly what they sent.
    assert set(reports) == {"w1", "w2"} and all(n > 0 for n in reports.values()), reports
    assert summary["distributed"]["workers"] == reports and summary["distributed"]["lost"] == 0

    # The same site crawled by one process archives the same pages with the same content.
    site.delay(0)
    single = run_crawl(tmp_path / "single.db", site.base_url, env=env)
    assert single.returncode == 0, single.stderr
    assert archived(tmp_path / "single.db") == got
    assert single.summary["pages"] == summary["pages"]


def test_a_second_run_uses_the_archives_validators_and_finds_no_change(site, redis_url, distributed, tmp_path):
    """Workers never open the archive: conditional GET works from what the writer published."""
    env = crawl_env(tmp_path)
    db = tmp_path / "distributed.db"
    first = run_crawl(db, site.base_url, env=env)
    assert first.returncode == 0, first.stderr
    site.clear_requests()
    common = ("--redis", redis_url, "--site", site.base_url)
    writer = distributed("writer", *common, "--db", str(db), "--mode", "sweep", "--no-mail", "--json", env=env)
    worker = distributed("worker", *common, "--wait", "60", env=env)
    status, summary, err = finish(writer)
    assert status == 0, err[-3000:]
    assert finish(worker, timeout=60)[0] == 0
    pages = len(site.content.stories) + len(site.content.images)
    assert summary["not_modified"] == summary["pages"] == pages
    assert summary["new_versions"] == 0 and summary["events"] == 0 and not summary["baseline"]


def test_a_block_storm_in_one_worker_stops_every_worker_and_the_run_is_blocked(
    site, redis_url, distributed, tmp_path
):
    """Against a bot wall, more workers must not mean more hammering: the first storm stops all."""
    env = crawl_env(tmp_path)
    db = tmp_path / "distributed.db"
    assert run_crawl(db, site.base_url, env=env).returncode == 0
    site.block()  # every page answers with the Akamai 403 page from now on
    site.delay(0.02)
    site.clear_requests()
    common = ("--redis", redis_url, "--site", site.base_url)
    writer = distributed("writer", *common, "--db", str(db), "--mode", "sweep", "--no-mail", "--json", env=env)
    workers = [distributed("worker", *common, "--name", name, "--concurrency", "2", "--wait", "60", env=env)
               for name in ("w1", "w2")]
    status, summary, err = finish(writer)
    reasons = {finish(proc, timeout=60)[1].get("finish_reason") for proc in workers}

    assert status == 3 and summary["status"] == "blocked" and summary["finish_reason"] == "blocked", err[-3000:]
    assert "blocked" in reasons and reasons <= {"blocked", "finished"}
    pages = len(site.content.stories) + len(site.content.images)
    assert summary["outcomes"] == {"blocked": summary["pages"]} and summary["pages"] < pages
    assert len(page_fetches(site)) < pages  # the sweep stopped: the rest of the frontier was never asked for


def test_304_listings_still_lead_workers_to_the_stories_they_list(site, redis_url, distributed, tmp_path):
    """A capped run stores feeds and listings whose stories it never fetched. Workers have no archive
    to re-read a 304 listing from: they follow what the writer published of its last parsed copy."""
    env = crawl_env(tmp_path)
    db = tmp_path / "distributed.db"
    capped = run_crawl(db, site.base_url, env=env, extra_args=("--max-pages", "5"))
    assert capped.returncode == 0, capped.stderr
    assert 0 < query(db, "SELECT COUNT(*) FROM stories")[0][0] <= 5
    common = ("--redis", redis_url, "--site", site.base_url)
    writer = distributed("writer", *common, "--db", str(db), "--mode", "full", "--no-mail", "--json", env=env)
    worker = distributed("worker", *common, "--wait", "60", env=env)
    status, summary, err = finish(writer)
    assert status == 0, err[-3000:]
    assert finish(worker, timeout=60)[0] == 0
    index_outcomes = query(db, "SELECT DISTINCT outcome FROM fetches WHERE run_id = 2 AND page_type != 'story'"
                               " AND page_type != 'photo'")
    assert index_outcomes == [("not_modified",)]
    assert set(archived(db)["story"]) == set(site.content.stories)
    assert set(archived(db)["photo"]) == set(site.content.images)


def test_a_download_cut_by_a_workers_stop_goes_back_to_the_frontier(site, redis_url, distributed, tmp_path):
    """SIGTERM to a worker while a page hangs: the stop cuts that download. The page was taken from
    the shared frontier, so it goes back there (never to the writer as an error fetch), and the
    next worker fetches it: the run still archives the whole site, each page once."""
    env = crawl_env(tmp_path)
    db = tmp_path / "distributed.db"
    hanging = sorted(site.content.stories)[0]
    site.delay(120, hanging)
    common = ("--redis", redis_url, "--site", site.base_url)
    writer = distributed("writer", *common, "--db", str(db), "--mode", "full", "--no-mail", "--json", env=env)
    first = distributed("worker", *common, "--name", "w1", "--wait", "60", env=env)
    deadline = time.monotonic() + 60
    while not any(str(hanging) in r.path for r in site.requests) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any(str(hanging) in r.path for r in site.requests), "the hanging story was never requested"
    time.sleep(1)  # the other pages in flight are answered
    first.send_signal(signal.SIGTERM)
    status, report, err = finish(first, timeout=60)
    assert status == 0 and report["finish_reason"] == "shutdown", err[-3000:]
    assert writer.poll() is None  # the cut page is queued again: the run is not over
    site.delay(0, hanging)
    second = distributed("worker", *common, "--name", "w2", "--wait", "60", env=env)
    status, summary, err = finish(writer)
    assert status == 0 and summary["status"] == "ok", (summary, err[-3000:])
    assert finish(second, timeout=60)[0] == 0
    assert query(db, f"SELECT outcome FROM fetches WHERE subject_id = {hanging}") == [("ok",)]
    assert query(db, "SELECT COUNT(*) FROM fetches WHERE outcome != 'ok'") == [(0,)]
    assert set(archived(db)["story"]) == set(site.content.stories)


FRONTIER_SLICE_CONFIG = """\
[monitor]
removal_confirm_runs = 2

[frontier]
requests_per_hour = 100000.0
burst = 100
enumerate_days = 0.001
"""


def test_a_frontier_slice_is_planned_by_the_writer_and_fetched_by_the_workers(site, redis_url, distributed, tmp_path):
    """`--mode frontier`: the writer plans one slice of the budgeted frontier from the archive (as a local
    slice would), seeds exactly its requests, and the run's fetches teach the frontier afterwards."""
    config = tmp_path / "frontier.toml"
    config.write_text(FRONTIER_SLICE_CONFIG, encoding="utf-8")
    env = crawl_env(tmp_path, DEFWATCH_CONFIG=str(config))
    db = tmp_path / "distributed.db"
    assert run_crawl(db, site.base_url, env=env).returncode == 0  # the baseline fills the frontier
    pages = len(site.content.stories) + len(site.content.images)
    assert query(db, "SELECT COUNT(*) FROM frontier") == [(pages,)]
    site.clear_requests()
    common = ("--redis", redis_url, "--site", site.base_url)
    writer = distributed("writer", *common, "--db", str(db), "--mode", "frontier", "--no-mail", "--json", env=env)
    workers = [distributed("worker", *common, "--mode", "frontier", "--name", name, "--wait", "60", env=env)
               for name in ("w1", "w2")]
    status, summary, err = finish(writer)
    assert status == 0 and summary["status"] == "ok" and summary["mode"] == "frontier", err[-3000:]
    assert all(finish(proc, timeout=60)[0] == 0 for proc in workers)

    run_id = summary["run_id"]
    plan = json.loads(query(db, "SELECT value FROM frontier_state WHERE key = 'slice'")[0][0])
    assert plan["run_id"] == run_id and plan["allowance"] == 100  # planned for this run, within the burst
    tiers = plan["tiers"]
    picked = tiers["urgent"] + tiers["due"] + tiers["verify"] + tiers["ahead"]
    fetched = page_fetches(site)
    # A slice, not a sweep: the pages the plan picked, each once (nothing new to discover), and the walk's
    # listing pages besides the index check's first pages; never more requests than the allowance.
    assert 0 < picked < pages and len(fetched) == sum(fetched.values()) == picked
    walked = {(kind, page) for kind, page in plan["listings"]}
    assert len(walked) == tiers["enumerate"] > 0
    requests = [r for r in site.requests if r.path != "/robots.txt"]
    assert len(requests) <= plan["allowance"]
    assert tiers["index"] > 0 and summary["pages"] == len(requests)
    # The frontier learned from the workers' fetches (run through the writer's archive).
    checked = query(db, f"""SELECT page_type, subject_id FROM frontier WHERE last_checked >=
                            (SELECT started_at FROM runs WHERE id = {run_id})""")
    assert set(checked) == set(fetched)


def test_a_worker_with_no_run_to_join_gives_up_after_wait(redis_url, distributed, tmp_path):
    worker = distributed("worker", "--redis", redis_url, "--site", "http://127.0.0.1:9", "--wait", "0.5",
                         env=crawl_env(tmp_path))
    status, _, err = finish(worker, timeout=60)
    assert status == 1 and "no run of http://127.0.0.1:9 was seeded" in err


def test_a_silent_worker_is_taken_for_gone_and_what_it_held_for_lost(redis_url):
    import redis

    from crawler.distributed.keys import DEAD_AFTER_SECONDS, Keys, read_progress
    from crawler.distributed.writer import end_reason

    client, keys = redis.Redis.from_url(redis_url), Keys("defwatch:example")
    now = client.time()[0]
    client.hset(keys.meta, mapping={"state": "crawling", "run_id": 7})
    client.hset(keys.alive, mapping={"live": now, "killed": now - DEAD_AFTER_SECONDS - 1})
    client.hset(keys.in_hand, mapping={"live": 0, "killed": 3})
    progress = read_progress(client, keys)
    assert (progress.run_id, progress.in_hand, progress.lost) == (7, {"live": 0}, 3)
    assert progress.settled and end_reason(progress) == "shutdown"  # the run ends, reported interrupted


# -- the rules, without Redis -----------------------------------------------------------------------


@needs_extra
def test_the_run_ends_only_when_nothing_is_queued_or_held_and_says_why():
    from crawler.distributed.keys import Progress
    from crawler.distributed.writer import end_reason

    def state(queued: int, in_hand: dict[str, int], **more) -> Progress:
        return Progress("crawling", 1, queued=queued, results=0, in_hand=in_hand, **more)

    assert end_reason(state(0, {"w1": 2, "w2": 0})) is None  # w1 may still add links
    assert end_reason(state(5, {})) is None  # seeded, waiting for workers
    assert end_reason(state(0, {"w1": 0, "w2": 0})) == "finished"
    assert end_reason(state(0, {}, lost=2)) == "shutdown"
    assert end_reason(state(40, {"w1": 1}, stop="blocked")) is None  # w1 still settling its last page
    assert end_reason(state(40, {"w1": 0}, stop="blocked")) == "blocked"
    with pytest.raises(RuntimeError, match="another writer"):
        end_reason(Progress("done", 2, queued=0, results=0))


@needs_extra
def test_a_page_is_one_identity_whatever_its_slug_and_redirect_hops_pass():
    from crawler.distributed.frontier import SubjectDupeFilter, page_identity

    base = "http://127.0.0.1:8000/News/News-Stories/Article/Article/3610656/"
    feed = Request(base + "more-nations-meet/", meta={"subject": ("story", 3610656)})
    related = Request(base, meta={"subject": ("story", 3610656)})
    assert page_identity(feed) == page_identity(related) == "story:3610656"
    listing = Request("http://127.0.0.1:8000/News/News-Stories/?Page=2")
    assert page_identity(listing) != page_identity(Request("http://127.0.0.1:8000/News/News-Stories/?Page=3"))
    # A redirect hop is part of a fetch already admitted: never a duplicate (no Redis is touched).
    hop = related.replace(meta={**related.meta, "redirect_urls": [base + "old-slug/"]})
    assert SubjectDupeFilter(server=None, key="unused").request_seen(hop) is False


def test_ci_installs_redis_server_before_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").rstrip("\n").splitlines()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert script[-1] in readme  # the README's test command stays the last line, byte for byte
    assert any("redis-server" in line for line in script[:-1])
