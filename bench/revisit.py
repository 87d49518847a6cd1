"""A revisit of an unchanged archive: what conditional GETs save, and that nothing unchanged looks changed.

Why: a monitor re-fetches the whole site again and again; on an unchanged site every story and
photo page should come back ``304 Not Modified`` (the archive's own ETag/Last-Modified sent back),
so a second full crawl moves a small share of the first one's bytes, writes no version and raises
no event. The target is under 10 % of the first crawl's bytes.

How: a ``SampleSite(synthetic=--stories)`` runs in this process on a free port, wrapped so that
every answer is metered as it goes on the wire (status line, headers and body, computed exactly as
``samplesite.server`` writes them; the request line and headers too). Then two real crawls, each
a child process like in ``crawl_speed.py``:
``python -m defwatch crawl --db <tmp> --site <base> --mode full --json --no-mail`` with
``DEFWATCH_CONFIG`` holding only ``polite = false``. Bytes are read off the meter per run; the
archive's ``fetches.bytes`` (bodies as stored) is printed next to them. For the second run it
prints the share of 304s, bytes against the first run (all pages, and story/photo pages alone:
feeds and listing pages are not conditional), new versions and events. Prints figures; not a test.

    .venv/bin/python bench/revisit.py [--stories 10000] [--keep]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawl_speed import CONFIG_TEXT, _path, child_env, full_cmd, run_child

from core.constants import DEFAULT_SITE
from core.urls import classify_url, photo_page_url, story_url
from samplesite import SampleSite
from samplesite.response import Response

TARGET_BYTES = 0.10  # the revisit may move at most this share of the first crawl's response bytes
DATE_HEADER = len("Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n")  # http.server's date_time_string is fixed width
PAGE_TYPES = ("story", "photo", "listing", "feed", "robots")


@dataclass
class Traffic:
    """What crossed the wire in one run, per page type."""

    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    response_bytes: Counter[str] = field(default_factory=Counter)  # status line + headers + body
    body_bytes: Counter[str] = field(default_factory=Counter)
    request_bytes: Counter[str] = field(default_factory=Counter)

    def total(self, name: str, types: tuple[str, ...] | None = None) -> int:
        counter: Counter[str] = getattr(self, name)
        return sum(v for k, v in counter.items() if types is None or k in types)

    def status_count(self, status: int, types: tuple[str, ...] | None = None) -> int:
        return sum(v for (t, s), v in self.statuses.items() if s == status and (types is None or t in types))


class MeteredSite(SampleSite):
    """The sample site, counting the bytes of every answer (``Site.respond`` is where all requests pass)."""

    def __init__(self, stories: int):
        super().__init__(synthetic=stories)
        self.meter_lock = threading.Lock()
        self.traffic = Traffic()

    def respond(self, method: str, target: str, headers: dict[str, str] | None = None,
                base: str = DEFAULT_SITE) -> Response:
        resp = super().respond(method, target, headers, base)
        self._meter(method.upper(), target, headers or {}, resp)
        return resp

    def take_traffic(self) -> Traffic:
        """This run's traffic; the meter starts again from zero."""
        with self.meter_lock:
            traffic, self.traffic = self.traffic, Traffic()
        return traffic

    def _meter(self, method: str, target: str, headers: dict[str, str], resp: Response) -> None:
        kind = page_type(target)
        body = len(resp.body) if method != "HEAD" and resp.status != 304 else 0
        with self.meter_lock:
            t = self.traffic
            t.requests[kind] += 1
            t.statuses[(kind, resp.status)] += 1
            t.body_bytes[kind] += body
            t.response_bytes[kind] += head_bytes(resp) + body
            t.request_bytes[kind] += len(f"{method} {target} HTTP/1.1\r\n\r\n") + _header_bytes(headers)


def page_type(target: str) -> str:
    found = classify_url(urlsplit(target).path or "/").type
    return found if found in PAGE_TYPES else "other"


def head_bytes(resp: Response) -> int:
    """Status line and headers as ``samplesite.server._Handler._send`` writes them (Date is added there)."""
    try:
        phrase = HTTPStatus(resp.status).phrase
    except ValueError:
        phrase = ""
    size = len(f"HTTP/1.1 {resp.status} {phrase}\r\n") + DATE_HEADER + _header_bytes(resp.headers) + 2
    if "Server" not in resp.headers:
        size += len("Server: Microsoft-IIS/10.0\r\n")
    if resp.status != 304:
        size += len(f"Content-Length: {len(resp.body)}\r\n")
    return size


def _header_bytes(headers: dict[str, str]) -> int:
    return sum(len(f"{k}: {v}\r\n".encode("latin-1", "replace")) for k, v in headers.items())


def start_site(stories: int) -> MeteredSite:
    """A started, warmed site (templates compiled) whose meter reads zero."""
    site = MeteredSite(stories)
    first = site.content.story(site.content.synth.ids()[0]) if site.content.synth else None
    if first is not None:
        site.respond("GET", _path(story_url(first["kind"], first["id"], first.get("slug") or "")), {})
        for block in first["body"]:
            if block.get("type") == "image":
                site.respond("GET", _path(photo_page_url(block["media_id"])), {})
    site.respond("GET", "/News/News-Stories/", {})
    site.clear_requests()
    site.take_traffic()
    site.start(port=0)
    return site


# --- the archive -------------------------------------------------------------------------------


@dataclass
class RunFacts:
    """One run as the archive recorded it."""

    run_id: int
    outcomes: Counter[tuple[str, str]]  # (page type, outcome) -> fetches
    stored_bytes: int  # sum of fetches.bytes: bodies the crawler kept
    new_story_versions: int
    new_image_versions: int
    events: Counter[str]


def run_facts(db: Path, run_id: int) -> RunFacts:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        outcomes = Counter({(t or "other", o): n for t, o, n in conn.execute(
            "SELECT page_type, outcome, COUNT(*) FROM fetches WHERE run_id = ? GROUP BY 1, 2", [run_id])})
        stored = conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM fetches WHERE run_id = ?", [run_id]).fetchone()[0]
        stories = conn.execute("SELECT COUNT(*) FROM story_versions WHERE first_run_id = ?", [run_id]).fetchone()[0]
        images = conn.execute("SELECT COUNT(*) FROM image_versions WHERE first_run_id = ?", [run_id]).fetchone()[0]
        events = Counter(dict(conn.execute("SELECT kind, COUNT(*) FROM events WHERE run_id = ? GROUP BY kind",
                                           [run_id]).fetchall()))
    finally:
        conn.close()
    return RunFacts(run_id, outcomes, int(stored), int(stories), int(images), events)


# --- one crawl ---------------------------------------------------------------------------------


@dataclass
class Crawl:
    name: str
    summary: dict[str, Any]
    wall: float
    traffic: Traffic
    facts: RunFacts


def crawl(site: MeteredSite, db: Path, work: Path, env: dict[str, str], name: str) -> Crawl:
    """One ``defwatch crawl --mode full`` child against the site; the meter is read right after it exits."""
    summary, wall = run_child(full_cmd(db, site.base_url), env, work / f"{name}.log")
    traffic = site.take_traffic()
    return Crawl(name, summary, wall, traffic, run_facts(db, int(summary["run_id"])))


# --- report ------------------------------------------------------------------------------------


def report_run(run: Crawl) -> None:
    t, s = run.traffic, run.summary
    print(f"\n{run.name} (run {s['run_id']}, {s['status']}, baseline {s['baseline']}): {run.wall:.1f} s, "
          f"{s['pages']} pages, {s['new_versions']} new versions, {s['events']} events, outcomes {s['outcomes']}")
    print(f"  {'type':<9}{'requests':>9}{'200':>8}{'304':>8}{'other':>7}{'response MB':>13}{'body MB':>10}"
          f"{'request MB':>12}")
    for kind in (*PAGE_TYPES, "other"):
        if not t.requests[kind]:
            continue
        ok, nm = t.statuses[(kind, 200)], t.statuses[(kind, 304)]
        sizes = (t.response_bytes[kind] / 1e6, t.body_bytes[kind] / 1e6, t.request_bytes[kind] / 1e6)
        print(f"  {kind:<9}{t.requests[kind]:>9}{ok:>8}{nm:>8}{t.requests[kind] - ok - nm:>7}"
              f"{sizes[0]:>13.2f}{sizes[1]:>10.2f}{sizes[2]:>12.2f}")
    print(f"  {'all':<9}{t.total('requests'):>9}{t.status_count(200):>8}{t.status_count(304):>8}"
          f"{t.total('requests') - t.status_count(200) - t.status_count(304):>7}"
          f"{t.total('response_bytes') / 1e6:>13.2f}{t.total('body_bytes') / 1e6:>10.2f}"
          f"{t.total('request_bytes') / 1e6:>12.2f}")
    print(f"  archive: fetches.bytes {run.facts.stored_bytes / 1e6:.2f} MB; new story versions "
          f"{run.facts.new_story_versions}, new image versions {run.facts.new_image_versions}; "
          f"events {dict(run.facts.events) or 0}")


def report_verdict(first: Crawl, second: Crawl) -> None:
    pages = ("story", "photo")
    t1, t2, facts = first.traffic, second.traffic, second.facts
    subject_fetches = sum(n for (kind, _), n in facts.outcomes.items() if kind in pages)
    not_modified = sum(n for (kind, o), n in facts.outcomes.items() if kind in pages and o == "not_modified")
    all_fetches = sum(facts.outcomes.values())
    print("\nrevisit (second run) against the first:")
    print(f"  304 share: {not_modified}/{subject_fetches} story+photo fetches = {_pct(not_modified, subject_fetches)}; "
          f"{t2.status_count(304)}/{t2.total('requests')} of all requests = "
          f"{_pct(t2.status_count(304), t2.total('requests'))} (robots.txt, feeds and listings are not conditional); "
          f"archive: {sum(n for (_, o), n in facts.outcomes.items() if o == 'not_modified')}/{all_fetches} fetches")
    ratio = _ratio(t2.total("response_bytes"), t1.total("response_bytes"))
    rows = [
        ("response bytes, all", t2.total("response_bytes"), t1.total("response_bytes")),
        ("response bytes, story+photo", t2.total("response_bytes", pages), t1.total("response_bytes", pages)),
        ("response bytes, feeds+listings", t2.total("response_bytes", ("feed", "listing")),
         t1.total("response_bytes", ("feed", "listing"))),
        ("body bytes, all", t2.total("body_bytes"), t1.total("body_bytes")),
        ("request+response bytes, all", t2.total("response_bytes") + t2.total("request_bytes"),
         t1.total("response_bytes") + t1.total("request_bytes")),
        ("fetches.bytes (archive)", second.facts.stored_bytes, first.facts.stored_bytes),
    ]
    for label, now, before in rows:
        print(f"  {label:<32}{now / 1e6:>9.2f} MB of {before / 1e6:>8.2f} MB = {100 * _ratio(now, before):5.1f} %")
    versions = facts.new_story_versions + facts.new_image_versions
    events = sum(facts.events.values())
    print(f"  bytes vs full crawl  {100 * ratio:5.1f} %   target < {100 * TARGET_BYTES:.0f} %   "
          f"{'PASS' if ratio < TARGET_BYTES else 'FAIL'}")
    print(f"  new versions         {versions:5d}     target 0        {'PASS' if versions == 0 else 'FAIL'}")
    print(f"  events               {events:5d}     target 0        {'PASS' if events == 0 else 'FAIL'}"
          + (f"   {dict(facts.events)}" if events else ""))


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _pct(a: int, b: int) -> str:
    return f"{100 * _ratio(a, b):.1f} %"


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=10_000, metavar="N", help="synthetic stories (default 10000)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (archive and crawl logs)")
    args = parser.parse_args(argv)
    if args.stories < 1:
        parser.error("--stories must be >= 1")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    work = Path(tempfile.mkdtemp(prefix="defwatch-revisit-"))
    config = work / "defwatch.toml"
    config.write_text(CONFIG_TEXT, encoding="utf-8")
    env, db = child_env(config), work / "revisit.db"
    site = start_site(args.stories)
    try:
        print(f"sample site: {site.base_url}, {len(site.content.all_story_ids())} stories; work dir {work}; "
              f"{os.cpu_count()} CPUs; load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
        first = crawl(site, db, work, env, "first full crawl")
        report_run(first)
        second = crawl(site, db, work, env, "second full crawl (unchanged site)")
        report_run(second)
        report_verdict(first, second)
    finally:
        site.stop()
        if not args.keep:
            for path in work.iterdir():
                path.unlink()
            work.rmdir()
        else:
            print(f"\nkept {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
