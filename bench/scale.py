"""An archive the size of years of war.gov: build time, size per story, and how fast analysts' queries stay.

Why in-process: crawling 100,000 stories over HTTP would take most of an hour and measure the
crawler again (``crawl_speed.py`` does that). Here the sample site renders each page with
``Site.respond`` (the bytes a GET would get), ``parse_page`` parses it and ``Archive.save_response``
stores it: the real write path, minus the network. Rendering, parsing and compressing run in worker
processes (``scale_pages`` says how, and what it checks) so the single writer, as in a crawl, sets
the pace; it commits every ``BUILD_BATCH_SIZE`` pages.

Then about 5 % of the stories get a paragraph edited (``Site.edit_paragraph``) and are stored again
in a second run, and ``monitor.changes.detect_changes`` turns that into events, so ``changes``
and ``history`` have something to read. Latencies are taken with the functions the CLI calls
(``db.analysis.search_stories``, ``db.events.list_events``, ``db.analysis.story_versions``), plus a
few timed ``python -m defwatch ...`` children for end-to-end figures (interpreter start-up
included). ``crawler.reparse.reparse_archive`` (dry run) gives the re-parse rate, in one process and in
``--reparse-workers``. Prints figures; not a test.

The build (``scale_pages``): ``--stories 101600`` stores about 400,000 real-size pages (stories and
the photo pages they link, as a crawl stores them), the size of the live site, in a file of about
16 GB; keep it out of /tmp (``--db /work/bench-data/scale.db``) and reuse it with the same ``--db``.

Searches are a documented mix drawn from the archive itself (see ``MIX``): rare, mid-frequency and
common words (classed by the share of stories FTS5 says they match), recurring phrases, word stems
with ``*``, and words narrowed by ``--kind``, ``--since`` or ``title:``; stop words are timed apart.

    .venv/bin/python bench/scale.py [--stories 100000] [--db PATH] [--queries 280] [--stopword-queries 20]
                                    [--history 200] [--cli-runs 8] [--reparse-sample 5000] [--reparse-all]
                                    [--reparse-workers N] [--reparse-compare] [--reparse-real] [--workers N]
                                    [--keep] [--resume]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import Any

from cpu_meter import CpuMeter
from crawl_speed import CONFIG_TEXT, REPO, child_env, table_sizes
from scale_pages import BenchArchive, StoredBody, parse_fast, stored_body

from core.clock import utcnow
from core.constants import DEFAULT_SITE
from core.fetch import FetchInfo
from core.records import Photo, Record, Story
from core.urls import photo_page_url, story_url
from crawler.outcomes import classify
from crawler.parsers import parse_page
from crawler.reparse import count_versions, reparse_archive
from db.analysis import search_stories, story, story_versions
from db.archive import Archive
from db.events import list_events
from db.queries import is_baseline
from db.versions import changed_story_fields
from monitor.changes import detect_changes
from samplesite import Site
from samplesite.synthetic import FUNCTION_WORDS, SYN_BASE_ID

SEARCH_P50_MS = 20.0  # targets of the issue: an analyst's search must feel instant
SEARCH_P95_MS = 100.0
BATCH_SIZE = 50  # responses per transaction, as crawler.pipelines.ArchivePipeline.BATCH_SIZE
BUILD_BATCH_SIZE = 2000  # the build's transactions: no reader waits on it, and each commit costs
CHUNK = 100  # stories per worker task: big enough to amortise pickling, small enough to stream
EDIT_SEED = 20_251_215


# --- rendering and parsing (worker processes) ---------------------------------------------------


@dataclass
class Fetched:
    """One page as the crawler would hand it to the archive (``fetched_at`` is stamped at save time)."""

    fetch: FetchInfo
    body: bytes | StoredBody | None  # StoredBody: compressed by a build worker (scale_pages)
    record: Record | None


_site: Site | None = None


def init_worker(stories: int) -> None:
    """Each worker builds its own site: generation is deterministic, so every copy serves the same pages."""
    global _site
    _site = Site(synthetic=stories)


def render_chunk(ids: range) -> list[Fetched]:
    """The story pages of ``ids`` and, after each, the photo pages its parsed record links to."""
    assert _site is not None
    pages = []
    for story_id in ids:
        pages.extend(story_with_photos(_site, story_id))
    _site.clear_requests()  # the request log would otherwise hold every page of the build
    return pages


def story_with_photos(site: Site, story_id: int) -> list[Fetched]:
    """What a crawl fetches for one new story: the page, then its photo pages (the spider follows them).

    Built for the archive (``scale_pages``): bodies compressed here, records read without the chrome.
    """
    data = site.content.story(story_id)
    assert data is not None
    page = fetch_page(site, story_url(data["kind"], story_id, data.get("slug") or ""), "story", story_id, fast=True)
    pages = [page]
    if isinstance(page.record, Story):
        seen: set[int] = set()
        for image in page.record.images:
            if image.media_id is not None and image.media_id not in seen:
                seen.add(image.media_id)
                url = image.page_url or photo_page_url(image.media_id)
                pages.append(fetch_page(site, url, "photo", image.media_id, fast=True))
    return pages


def fetch_page(site: Site, url: str, page_type: str, subject_id: int, *, fast: bool = False) -> Fetched:
    """Answer, classify and parse one GET the way the spider does (``SiteSpider._result``).

    ``fast``: the build's way (``scale_pages``), the same rows for a fraction of the cost.
    """
    resp = site.respond("GET", url.removeprefix(DEFAULT_SITE), {}, base=DEFAULT_SITE)
    ctype = resp.headers.get("Content-Type")
    outcome, reason = classify(resp.status, resp.headers, resp.body)
    record = None
    if outcome == "ok":
        record = parse_fast(resp.body, url, ctype, DEFAULT_SITE) if fast else parse_page(resp.body, url, ctype)
    if isinstance(record, Story | Photo) and _record_id(record) != subject_id:
        outcome, reason = "error", f"expected {page_type} {subject_id}, got {record.type}"
    fetch = FetchInfo(url=url, outcome=outcome, page_type=page_type, subject_id=subject_id, status=resp.status,
                      etag=resp.headers.get("ETag"), last_modified=resp.headers.get("Last-Modified"),
                      content_type=ctype, error=reason)
    body = (stored_body(resp.body) if fast else resp.body) if resp.body else None
    return Fetched(fetch, body, record)


def _record_id(record: Story | Photo) -> int | None:
    return record.id if isinstance(record, Story) else record.media_id


# --- building ----------------------------------------------------------------------------------


@dataclass
class Build:
    """What the build stored and how long each part took."""

    stories: int
    wall: float = 0.0
    save_seconds: float = 0.0  # main process inside save_response/commit: the single writer's share
    pages: Counter[str] = field(default_factory=Counter)
    parse_errors: int = 0
    new_versions: int = 0
    baseline_seconds: float = 0.0

    @property
    def page_count(self) -> int:
        return sum(self.pages.values())


class Writer:
    """Stores pages through ``Archive.save_response`` in batches, like the crawl pipeline's writer thread."""

    def __init__(self, archive: Archive, run_id: int, build: Build, batch_size: int = BATCH_SIZE):
        self.archive, self.run_id, self.build, self.batch_size = archive, run_id, build, batch_size
        self.batched = 0

    def save(self, page: Fetched) -> None:
        start = time.perf_counter()
        if self.batched == 0:
            self.archive.begin_batch()
        page.fetch.fetched_at = utcnow()
        result = self.archive.save_response(self.run_id, page.fetch, page.body, page.record)
        self.batched += 1
        if self.batched >= self.batch_size:
            self.flush()
        self.build.save_seconds += time.perf_counter() - start
        self.build.pages[page.fetch.page_type or "other"] += 1
        self.build.parse_errors += bool(page.record is not None and page.record.type == "error")
        self.build.new_versions += result.new_version

    def flush(self) -> None:
        self.archive.commit_batch()
        self.batched = 0


def build_archive(archive: Archive, stories: int, workers: int, first: int = SYN_BASE_ID) -> Build:
    """Run 1: every synthetic story from ``first`` on and its photo pages, stored as one baseline crawl run."""
    end = SYN_BASE_ID + stories
    build = Build(end - first)
    run_id = archive.start_run("full", DEFAULT_SITE)
    writer = Writer(archive, run_id, build, BUILD_BATCH_SIZE)
    chunks = [range(s, min(s + CHUNK, end)) for s in range(first, end, CHUNK)]
    progress = Progress("build", build.stories)
    start = time.perf_counter()
    for done, pages in enumerate(rendered(chunks, stories, workers), 1):
        for page in pages:
            writer.save(page)
        progress.update(min(build.stories, done * CHUNK))
    writer.flush()
    build.wall = time.perf_counter() - start
    archive.finish_run(run_id, "ok", {"pages": build.page_count, "bench": "scale"})
    start = time.perf_counter()
    detect_changes(archive.db, run_id, baseline=is_baseline(archive.db, run_id))
    build.baseline_seconds = time.perf_counter() - start
    return build


def rendered(chunks: list[range], stories: int, workers: int) -> Iterator[list[Fetched]]:
    """Chunks rendered and parsed in order, by ``workers`` processes (0: in this process)."""
    if workers <= 0:
        init_worker(stories)
        yield from map(render_chunk, chunks)
        return
    with get_context("fork").Pool(workers, initializer=init_worker, initargs=(stories,)) as pool:
        yield from _windowed(pool, chunks, window=2 * workers + 2)


def _windowed(pool: Pool, chunks: Iterable[range], window: int) -> Iterator[list[Fetched]]:
    """Keep a few chunks in flight: ``imap`` would queue every result in memory if the writer lags."""
    todo = iter(chunks)
    pending: deque[AsyncResult[list[Fetched]]] = deque()
    for chunk in todo:
        pending.append(pool.apply_async(render_chunk, (chunk,)))
        if len(pending) >= window:
            break
    while pending:
        pages = pending.popleft().get()
        chunk = next(todo, None)
        if chunk is not None:
            pending.append(pool.apply_async(render_chunk, (chunk,)))
        yield pages


class Progress:
    """A line on stderr every 5 %: a 100,000-story build takes minutes."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.start, self.next = label, total, time.perf_counter(), 0.05

    def update(self, done: int) -> None:
        if self.total and done / self.total >= self.next:
            elapsed = time.perf_counter() - self.start
            print(f"  {self.label}: {done}/{self.total} ({elapsed:.0f} s, {done / elapsed:.0f}/s)",
                  file=sys.stderr, flush=True)
            self.next += 0.05


# --- the second version ------------------------------------------------------------------------


@dataclass
class EditRun:
    run_id: int
    edited: list[int]
    new_versions: int
    events: int
    seconds: float
    detect_seconds: float


def edit_run(archive: Archive, stories: int, share: float) -> EditRun:
    """Run 2: edit one paragraph of ``share`` of the stories on the site, fetch those stories again, detect."""
    site = Site(synthetic=stories)
    rng = random.Random(EDIT_SEED)
    chosen = sorted(rng.sample(range(SYN_BASE_ID, SYN_BASE_ID + stories), max(1, round(stories * share))))
    for story_id in chosen:
        site.edit_paragraph(story_id, 0, f"Update: officials revised this report; the review now covers "
                                         f"{rng.randint(2, 40)} installations and {rng.choice(WORDS)} programs.")
    build = Build(stories)
    run_id = archive.start_run("revisit", DEFAULT_SITE)
    writer = Writer(archive, run_id, build)
    start = time.perf_counter()
    for story_id in chosen:
        data = site.content.story(story_id)
        assert data is not None
        writer.save(fetch_page(site, story_url(data["kind"], story_id, data.get("slug") or ""), "story", story_id))
    writer.flush()
    seconds = time.perf_counter() - start
    archive.finish_run(run_id, "ok", {"pages": build.page_count, "bench": "scale-edits"})
    start = time.perf_counter()
    detection = detect_changes(archive.db, run_id, baseline=is_baseline(archive.db, run_id))
    return EditRun(run_id, chosen, build.new_versions, len(detection.event_ids), seconds, time.perf_counter() - start)


WORDS = ["training", "logistics", "readiness", "satellite", "housing", "maintenance", "partnership", "cyber"]


# --- latency -----------------------------------------------------------------------------------


@dataclass
class Latency:
    """Seconds per call of one operation; percentiles by nearest rank. ``matches``: stories per search."""

    name: str
    samples: list[float] = field(default_factory=list)
    matches: list[int] = field(default_factory=list)

    def pct(self, q: float) -> float:
        return _pct(self.samples, q)

    def line(self) -> str:
        ms = [1000 * self.pct(q) for q in (0.5, 0.95, 1.0)]
        hits = f"{_pct(self.matches, 0.5):>10}{max(self.matches):>10}" if self.matches else ""
        return f"  {self.name:<34}{len(self.samples):>6}{ms[0]:>10.1f}{ms[1]:>10.1f}{ms[2]:>10.1f}{hits}"


def _pct(values: list[Any], q: float) -> Any:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else 0


def timed(latency: Latency, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = fn()
    latency.samples.append(time.perf_counter() - start)
    return result


# --- search queries ----------------------------------------------------------------------------
#
# Classes by document frequency: the share of archived stories a single word matches, counted with
# FTS5 itself. Words come from the text of 1,000 random archived stories (title, body, captions).
WORD_CLASSES = {"rare word": (0.0, 0.001), "mid word": (0.001, 0.02), "common word": (0.02, 0.5),
                "stop word": (0.5, 1.0)}  # (share above, share up to)
# The timed mix, per 20 queries: what an analyst types is mostly specific (names, systems, places),
# sometimes a broad topic word, a phrase, a word stem, or a word narrowed by --kind, --since or title:.
MIX = (("rare word", 5), ("mid word", 5), ("common word", 3), ("phrase", 3), ("prefix", 2), ("filtered", 2))
STOPWORD_CLASS = "stop word"  # timed apart, outside the mix: "the" alone is not an analyst's search


@dataclass(frozen=True)
class Query:
    style: str
    text: str
    kind: str | None = None
    since: str | None = None


@dataclass
class Corpus:
    """Token lists of random archived stories, their titles' words, kinds and dates; exact FTS shares."""

    db: Any
    stories: int
    texts: list[list[str]]
    titles: list[list[str]]
    kinds: list[str]
    dates: list[str]
    hits: dict[str, int] = field(default_factory=dict)

    def matches(self, text: str) -> int:
        """Stories an FTS query matches (cached): what bm25 has to rank."""
        if text not in self.hits:
            sql = "SELECT COUNT(*) FROM stories_fts WHERE stories_fts MATCH ?"
            self.hits[text] = int(self.db.execute(sql, [text]).fetchone()[0])
        return self.hits[text]

    def share(self, word: str) -> float:
        return self.matches(f'"{word}"') / max(1, self.stories)


def corpus(db: Any, stories: int, sample: int, rng: random.Random) -> Corpus:
    """Tokens of ``sample`` random archived stories, in order (phrases need neighbours), as FTS5 splits them."""
    low, high = db.execute("SELECT MIN(rowid), MAX(rowid) FROM stories").fetchone()
    ids = rng.sample(range(low, high + 1), min(sample, high - low + 1))
    marks = ",".join("?" * len(ids))
    rows = db.execute(f"SELECT title, body_text, captions, kind, published FROM stories WHERE rowid IN ({marks}) "
                      "ORDER BY rowid", ids).fetchall()
    tokens = re.compile(r"[^\W_]+")
    # One list per story, its columns apart ("|" is no token): a phrase never spans two columns.
    texts = [[t for i in range(3) for t in ["|", *tokens.findall((r[i] or "").lower())]][1:] for r in rows]
    titles = [tokens.findall((r[0] or "").lower()) for r in rows]
    return Corpus(db, stories, [t for t in texts if len(t) >= 2], titles, sorted({r[3] for r in rows}),
                  sorted({r[4][:10] for r in rows if r[4]}))


def _is_word(token: str) -> bool:
    return len(token) >= 3 and token.isalpha()


class QueryMaker:
    """Draws the queries of each class from the corpus; a word at most once per class."""

    def __init__(self, corpus: Corpus, rng: random.Random):
        self.corpus, self.rng = corpus, rng
        seen_in: Counter[str] = Counter()
        for words in corpus.texts:
            seen_in.update({w for w in words if _is_word(w)})
        # Sample share first (no query), exact share from FTS only for the candidates tried.
        n = len(corpus.texts)
        self.pools = {"rare word": [w for w, c in seen_in.items() if c <= 2],
                      "mid word": [w for w, c in seen_in.items() if 1 <= c <= 0.04 * n],
                      "common word": [w for w, c in seen_in.items() if 0.01 * n <= c <= 0.7 * n],
                      "stop word": [w for w, c in seen_in.items() if c >= 0.3 * n]}
        for pool in self.pools.values():
            pool.sort()
            rng.shuffle(pool)
        self.stop = {w for w, c in seen_in.items() if c > 0.5 * n}
        self.next = dict.fromkeys(self.pools, 0)  # where each class's pool is up to
        # Phrases an analyst would type: ones that recur (in 2+ sampled stories), two words or a
        # function word between two ("quality of life"), never starting or ending with one.
        function_words = set(FUNCTION_WORDS)
        edge = (lambda w: _is_word(w) and w not in self.stop and w not in function_words)  # noqa: E731
        phrases: Counter[str] = Counter()
        for words in corpus.texts:
            found = set()
            for pos in range(len(words) - 1):
                first, second = words[pos], words[pos + 1]
                if not edge(first):
                    continue
                if edge(second):
                    found.add(f"{first} {second}")
                elif second in function_words and pos + 2 < len(words) and edge(words[pos + 2]):
                    found.add(f"{first} {second} {words[pos + 2]}")
            phrases.update(found)
        self.phrases = sorted(p for p, c in phrases.items() if c >= 2)
        rng.shuffle(self.phrases)

    def word(self, cls: str, min_length: int = 3) -> str | None:
        """The class's next word (of at least ``min_length`` letters) whose exact share falls in the class."""
        low, high = WORD_CLASSES[cls]
        pool = self.pools[cls]
        while self.next[cls] < len(pool):
            word = pool[self.next[cls]]
            self.next[cls] += 1
            if len(word) >= min_length and low < self.corpus.share(word) <= high:
                return word
        return None

    def make(self, style: str) -> Query | None:
        rng, c = self.rng, self.corpus
        if style in WORD_CLASSES:
            word = self.word(style)
            return Query(style, f'"{word}"') if word else None
        if style == "phrase":  # "missile defense", "secretary of defense"
            return Query(style, f'"{self.phrases.pop()}"') if self.phrases else None
        if style == "prefix":  # the stem of a rare, mid or common word, 4 letters or more: "hyperson*"
            word = self.word(rng.choice(("rare word", "mid word", "common word")), min_length=6)
            return Query(style, f"{word[:max(4, len(word) - rng.randint(1, 3))]}*") if word else None
        # filtered: a word of a sampled title in the title column, or a mid or common word narrowed
        # down to one kind or to the stories since a date
        variant = rng.choice(("title", "kind", "since"))
        if variant == "title":
            title_words = [w for w in rng.choice(c.titles) if _is_word(w) and w not in self.stop]
            return Query(style, f'title:"{rng.choice(title_words)}"') if title_words else None
        word = self.word(rng.choice(("mid word", "common word")))
        if word is None:
            return None
        if variant == "kind":
            return Query(style, f'"{word}"', kind=rng.choice(c.kinds))
        return Query(style, f'"{word}"', since=rng.choice(c.dates))


def make_queries(n: int, stopwords: int, c: Corpus, rng: random.Random) -> tuple[list[Query], list[Query]]:
    """``n`` queries in the proportions of ``MIX`` (in turn), and ``stopwords`` stop-word queries apart."""
    maker = QueryMaker(c, rng)
    pattern = [style for _, style in sorted(((k + 0.5) / weight, style) for style, weight in MIX
                                           for k in range(weight))]  # interleaved: rare, mid, rare, ...
    queries: list[Query] = []
    for i in range(n):
        style = pattern[i % len(pattern)]
        for _ in range(1000):
            query = maker.make(style)
            if query is not None:
                queries.append(query)
                break
        else:
            print(f"  note: found no {style} query in the sample", file=sys.stderr)
    stop = [q for q in (maker.make(STOPWORD_CLASS) for _ in range(stopwords)) if q is not None]
    return queries, stop


def search_latency(c: Corpus, queries: list[Query], name: str, *, all_versions: bool = False
                   ) -> tuple[Latency, dict[str, Latency], list[tuple[float, Query, int]]]:
    """Each query once through ``search_stories`` (the CLI's default limit of 20), after one warm-up pass;
    ``all_versions``: as ``search --all-versions`` (past versions too)."""
    def run(q: Query) -> list[dict[str, Any]]:
        return search_stories(c.db, q.text, kind=q.kind, since=q.since, limit=20, all_versions=all_versions)

    for query in queries[:20]:
        run(query)
    overall, by_style, slowest = Latency(name), {}, []
    for query in queries:
        hits = timed(overall, lambda q=query: run(q))
        overall.matches.append(c.matches(query.text))
        row = by_style.setdefault(query.style, Latency(f"  {query.style}"))
        row.samples.append(overall.samples[-1])
        row.matches.append(overall.matches[-1])
        slowest.append((overall.samples[-1], query, len(hits)))
    return overall, by_style, sorted(slowest, key=lambda s: -s[0])[:5]


def history(db: Any, story_id: int) -> list[list[str]]:
    """What ``defwatch history`` reads: the story, every version, and the fields each one changed."""
    story(db, story_id)
    changed, previous = [], None
    for row in story_versions(db, story_id):
        changed.append(changed_story_fields(previous, row["record"]) if previous is not None else [])
        previous = row["record"]
    return changed


def history_latency(db: Any, edited: list[int], stories: int, n: int, rng: random.Random) -> Latency:
    """Half edited stories (two versions), half random ones."""
    ids = rng.sample(edited, min(len(edited), n // 2))
    ids += rng.sample(range(SYN_BASE_ID, SYN_BASE_ID + stories), n - len(ids))
    latency = Latency("history (story + versions + diff)")
    for story_id in ids:
        timed(latency, lambda s=story_id: history(db, s))
    return latency


def changes_latency(db: Any, started: str, repeat: int) -> tuple[list[Latency], dict[str, int]]:
    """``list_events`` since the edit run started (every event), since now (none), and by kind."""
    cases = {"changes --since <edit run>": {"since": started},
             "changes --since <now>": {"since": utcnow()},
             "changes --since .. --kind": {"since": started, "kind": "story_updated"}}
    result, counts = [], {}
    for name, kwargs in cases.items():
        latency = Latency(name)
        for _ in range(repeat):
            counts[name] = len(timed(latency, lambda k=kwargs: list_events(db, **k)))
        result.append(latency)
    return result, counts


def cli_latency(db_path: Path, queries: list[Query], edited: list[int], since: str, runs: int) -> list[Latency]:
    """``python -m defwatch ...`` children, start to exit: what a person at a terminal waits for."""
    work = Path(tempfile.mkdtemp(prefix="defwatch-scale-cli-"))
    config = work / "defwatch.toml"
    config.write_text(CONFIG_TEXT, encoding="utf-8")
    env = child_env(config)
    base = [sys.executable, "-m", "defwatch"]
    cases = {
        "cli search --fts QUERY --json": [[*base, "search", "--fts", q.text, *(["--kind", q.kind] if q.kind else []),
                                     *(["--since", q.since] if q.since else []), "--db", str(db_path), "--json"]
                                    for q in queries[:runs]],
        "cli history ID --json": [[*base, "history", str(s), "--db", str(db_path), "--json"] for s in edited[:runs]],
        "cli changes --since ISO --json": [[*base, "changes", "--since", since, "--db", str(db_path), "--json"]] * runs,
        "python -c pass (start-up floor)": [[sys.executable, "-c", "pass"]] * runs,
    }
    result = []
    for name, commands in cases.items():
        latency = Latency(name)
        for cmd in commands:
            proc = timed(latency, lambda c=cmd: subprocess.run(c, cwd=REPO, env=env, capture_output=True, check=False))
            if proc.returncode != 0:
                tail = proc.stderr.decode(errors="replace")[-300:]
                print(f"  ! {' '.join(cmd[2:5])} exited {proc.returncode}: {tail}", file=sys.stderr)
        result.append(latency)
    config.unlink()
    work.rmdir()
    return result


# --- re-parse ----------------------------------------------------------------------------------


def reparse(db: Any, args: argparse.Namespace) -> None:
    """Re-parses, each reported as it ends: the newest ``--reparse-sample`` stored pages, then all if asked.

    The sample is chosen with ``since`` (the only range ``reparse_archive`` takes), so it is the
    last pages the build stored plus the edit run's versions. It is re-parsed with
    ``--reparse-workers`` (and in one process first with ``--reparse-compare``: the speed-up, on the
    same pages), and with ``--reparse-real`` also for real: with the parser the archive was built
    with, nothing changes, so nothing is written.
    """
    workers = args.reparse_workers
    if args.reparse_sample > 0:
        row = db.execute("SELECT fetched_at FROM fetches WHERE sha256 IS NOT NULL ORDER BY id DESC LIMIT 1 OFFSET ?",
                         [args.reparse_sample - 1]).fetchone()
        since = row[0] if row else None
        label = f"newest pages (since {since})"
        for count in sorted({1, workers}) if args.reparse_compare else [workers]:
            report_reparse(label, *_reparse_once(db, since, count, dry_run=True))
        if args.reparse_real:
            report_reparse(label, *_reparse_once(db, since, workers, dry_run=False))
    if args.reparse_all:
        report_reparse("whole archive", *_reparse_once(db, None, workers, dry_run=True))


def _reparse_once(db: Any, since: str | None, workers: int, *, dry_run: bool) -> tuple[Any, float, float]:
    """One re-parse: its report, wall seconds and CPU seconds (this process and its workers)."""
    total = count_versions(db, since=since)
    print(f"  re-parsing {total} versions with {workers} worker(s) ({load()}) ...", file=sys.stderr, flush=True)
    progress = Progress("re-parse", total)
    start = time.perf_counter()
    with CpuMeter() as cpu:
        report = reparse_archive(db, since=since, dry_run=dry_run, workers=workers,
                                 progress=lambda done, _total: progress.update(done))
    return report, time.perf_counter() - start, cpu.seconds


# --- archive facts -----------------------------------------------------------------------------


def load() -> str:
    """Other work on the same cores moves every timing here; the load average says how much there was."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min)"


def archive_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def counts(db: Any) -> dict[str, int]:
    tables = ("stories", "story_versions", "images", "image_versions", "fetches", "raw_pages", "events", "runs")
    found = {t: int(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}
    photo_pages = db.execute("SELECT COUNT(*) FROM images WHERE source = 'photo_page'").fetchone()[0]
    found["photo_page_images"] = int(photo_pages)
    return found


def edited_ids(db: Any) -> list[int]:
    """Stories with a second version (an archive reused with ``--db``)."""
    return [r[0] for r in db.execute("SELECT DISTINCT story_id FROM story_versions WHERE version > 1 ORDER BY 1")]


# --- report ------------------------------------------------------------------------------------


def report_build(build: Build | None, edit: EditRun | None, facts: dict[str, int], size: int,
                 tables: dict[str, int]) -> None:
    stories = facts["stories"]
    if build is not None:
        rate = build.page_count / build.wall if build.wall else 0.0
        print(f"build: {build.stories} stories, {build.page_count} pages ({dict(build.pages)}) in {build.wall:.1f} s "
              f"= {rate:.0f} pages/s, {build.stories / build.wall:.0f} stories/s; "
              f"writer busy {build.save_seconds:.1f} s "
              f"({100 * build.save_seconds / build.wall:.0f} % of the wall); parse errors {build.parse_errors}; "
              f"baseline detection {build.baseline_seconds:.1f} s")
    if edit is not None:
        print(f"edit run {edit.run_id}: {len(edit.edited)} stories edited and re-stored in {edit.seconds:.1f} s, "
              f"{edit.new_versions} new versions; detect_changes {edit.detect_seconds:.1f} s -> {edit.events} events")
    images = facts["images"]
    print(f"archive: {stories} stories, {facts['story_versions']} story versions, {images} images "
          f"({images / max(1, stories):.2f} per story; {facts['photo_page_images']} from photo pages, "
          f"{facts['image_versions']} image versions), {facts['fetches']} fetches, {facts['raw_pages']} raw pages, "
          f"{facts['events']} events, {facts['runs']} runs")
    if abs(images - 3 * stories) > 0.05 * 3 * stories:
        print(f"  note: {images / max(1, stories):.2f} images per story, not about 3 (0-6 per non-contract story, "
              f"none for contracts): the archive holds {images} images, not about {3 * stories}")
    print(f"db size: {size / 1e6:.1f} MB = {size / max(1, stories):.0f} bytes per story "
          f"({size / max(1, stories) / 1024:.1f} KiB)")
    if tables:
        top = ", ".join(f"{name} {b / 1e6:.0f} MB" for name, b in list(tables.items())[:10])
        print(f"  largest: {top}")


def report_latency(rows: list[Latency], title: str) -> None:
    print(f"\n{title}")
    extra = f"{'p50 hits':>10}{'max hits':>10}" if any(row.matches for row in rows) else ""
    print(f"  {'operation':<34}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{extra}")
    for row in rows:
        print(row.line())


def report_search(overall: Latency) -> None:
    p50, p95 = 1000 * overall.pct(0.5), 1000 * overall.pct(0.95)
    ok50, ok95 = p50 < SEARCH_P50_MS, p95 < SEARCH_P95_MS
    print(f"\nsearch p50 {p50:.1f} ms   target < {SEARCH_P50_MS:.0f} ms    {'PASS' if ok50 else 'FAIL'}  (the mix)")
    print(f"search p95 {p95:.1f} ms   target < {SEARCH_P95_MS:.0f} ms   {'PASS' if ok95 else 'FAIL'}  (the mix)")


def by_match_share(overall: Latency, stories: int) -> list[Latency]:
    """Latency by how much of the archive a query matches: bm25 ranks every match, so broad words cost most."""
    names = ("  matching < 0.1 % of stories", "  matching 0.1-2 %", "  matching 2-10 %", "  matching 10-50 %",
             "  matching > 50 %")
    buckets = [Latency(name) for name in names]
    for seconds, hits in zip(overall.samples, overall.matches, strict=True):
        share = hits / max(1, stories)
        bucket = buckets[0 if share <= 0.001 else 1 if share <= 0.02 else 2 if share <= 0.1 else 3 if share <= 0.5
                         else 4]
        bucket.samples.append(seconds)
        bucket.matches.append(hits)
    return [b for b in buckets if b.samples]


def report_slowest(c: Corpus, slowest: list[tuple[float, Query, int]]) -> None:
    print("  slowest searches of the mix:")
    for seconds, query, hits in slowest:
        extra = f" --kind {query.kind}" if query.kind else f" --since {query.since}" if query.since else ""
        print(f"    {1000 * seconds:7.1f} ms  {query.style:<12} {query.text}{extra}  "
              f"({hits} shown of {c.matches(query.text)} matching)")


def report_reparse(label: str, rep: Any, wall: float, cpu: float) -> None:
    """One line per re-parse, with the load it ran under: the cores are shared, so a loaded figure is a floor.

    CPU ms per page (this process and its workers) does not move with the load: ``cores * 1000 /
    cpu_ms`` is what that many cores of our own would give if the work kept them all busy.
    """
    how = "dry run" if rep.dry_run else "real"
    per_page = 1000 * cpu / max(rep.reparsed, 1)
    print(f"\nre-parse ({how}, {rep.workers} parsing process{'es' if rep.workers > 1 else ''}), {label}: "
          f"{rep.reparsed} pages in {wall:.1f} s = {rep.reparsed / max(wall, 1e-9):.1f} pages/s "
          f"(reparse_archive says {rep.pages_per_second}); changed {rep.changed}, unchanged {rep.unchanged}, "
          f"failed {rep.failed}, restamped {rep.restamped}, hashes moved {rep.hash_changed}; {load()}; "
          f"CPU {cpu:.1f} s = {per_page:.2f} ms/page (at most {2000 / max(per_page, 1e-9):.0f} pages/s "
          f"on 2 cores of our own)")


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=100_000, metavar="N", help="synthetic stories (default 100000)")
    parser.add_argument("--db", type=Path, metavar="PATH",
                        help="archive to build (kept), or to reuse when it already holds stories")
    parser.add_argument("--edit-share", type=float, default=0.05, help="share of stories given a second version")
    parser.add_argument("--queries", type=int, default=280, metavar="N", help="timed searches of the mix (default 280)")
    parser.add_argument("--stopword-queries", type=int, default=20, metavar="N",
                        help="stop-word searches, timed apart from the mix (default 20)")
    parser.add_argument("--history", type=int, default=200, metavar="N", help="timed history look-ups (default 200)")
    parser.add_argument("--cli-runs", type=int, default=8, metavar="N", help="timed CLI children per command")
    parser.add_argument("--reparse-sample", type=int, default=5000, metavar="N",
                        help="dry-run re-parse of the newest N stored pages (0: skip)")
    parser.add_argument("--reparse-all", action="store_true", help="then dry-run re-parse the whole archive")
    parser.add_argument("--reparse-workers", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="re-parse processes (default: the CPUs); the sample is also re-parsed in one")
    parser.add_argument("--reparse-real", action="store_true",
                        help="also re-parse the sample for real (writes only what the parser now reads differently)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="render+parse processes for the build (default: the CPUs; 0: in the writer's process)")
    parser.add_argument("--keep", action="store_true", help="keep the temp archive (without --db)")
    parser.add_argument("--resume", action="store_true",
                        help="continue a --db build that was interrupted, up to --stories (before its edit run)")
    parser.add_argument("--reparse-compare", action="store_true",
                        help="also re-parse the sample in one process, to compare with --reparse-workers")
    args = parser.parse_args(argv)
    if args.stories < 1 or args.queries < 1 or args.history < 2 or args.reparse_workers < 1:
        parser.error("--stories, --queries and --reparse-workers must be >= 1, --history >= 2")
    return args


def prepare(args: argparse.Namespace, path: Path) -> tuple[Archive, Build | None, EditRun | None, list[int], int]:
    """Build (or reuse) the archive and its edit run; returns the story count the archive really has."""
    archive = BenchArchive.open(str(path))
    existing = archive.db.execute("SELECT COUNT(*), MAX(id) FROM stories").fetchone()
    build = edit = None
    if existing[0] and args.resume and not edited_ids(archive.db):
        first = int(existing[1])  # the last story stored, again: its photo pages may be in the batch a kill lost
        print(f"resuming the build of {path} from story {first} to --stories {args.stories}")
        stories = args.stories
        build = build_archive(archive, stories, args.workers, first)
    elif existing[0]:
        stories = int(existing[1]) - SYN_BASE_ID + 1
        print(f"reusing {path}: {existing[0]} stories (built with --stories {stories})")
        unfinished = archive.db.execute("SELECT COUNT(*) FROM runs WHERE status != 'ok'").fetchone()[0]
        if unfinished:
            print(f"  warning: {unfinished} run(s) of this archive did not finish: an interrupted build is partial")
    else:
        stories = args.stories
        build = build_archive(archive, stories, args.workers)
    edited = edited_ids(archive.db)
    if not edited and args.edit_share > 0:
        edit = edit_run(archive, stories, args.edit_share)
        edited = edit.edited
    archive.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return archive, build, edit, edited, stories


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # in step with the progress lines
    work = None if args.db else Path(tempfile.mkdtemp(prefix="defwatch-scale-"))
    path = args.db or work / "scale.db"  # type: ignore[operator]
    print(f"archive {path}; {os.cpu_count()} CPUs, {args.workers} render/parse workers; {load()}")
    archive, build, edit, edited, stories = prepare(args, path)
    db = archive.db
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = table_sizes(conn)
        conn.close()
        print(f"after the build: {load()}")
        report_build(build, edit, counts(db), archive_size(path), tables)
        run_queries(db, path, args, edited, stories)
        reparse(db, args)
    finally:
        archive.close()
        if work is not None and not args.keep:
            for p in work.iterdir():
                p.unlink()
            work.rmdir()
        elif work is not None:
            print(f"\nkept {path}")
    return 0


def run_queries(db: Any, path: Path, args: argparse.Namespace, edited: list[int], stories: int) -> None:
    rng = random.Random(7)
    sample = corpus(db, stories, 1000, rng)
    queries, stopwords = make_queries(args.queries, args.stopword_queries, sample, rng)
    overall, by_style, slowest = search_latency(sample, queries, "search (the mix)")
    stop = search_latency(sample, stopwords, f"  {STOPWORD_CLASS} (not in the mix)")[0] if stopwords else None
    every = search_latency(sample, queries, "search --all-versions (the mix)", all_versions=True)[0]
    past = db.execute("SELECT COUNT(*) FROM story_versions_fts").fetchone()[0]
    hist = history_latency(db, edited, stories, args.history, rng)
    row = db.execute("SELECT started_at FROM runs WHERE id = (SELECT MAX(run_id) FROM events)").fetchone()
    since = row[0] if row else "2000-01-01T00:00:00Z"  # the edit run: its events are the archive's newest
    changes, found = changes_latency(db, since, 20)
    vocabulary = len({w for words in sample.texts for w in words})
    mix = ", ".join(f"{style} {weight}" for style, weight in MIX)
    report_latency([overall, *(by_style[s] for s, _ in MIX if s in by_style), *([stop] if stop else []),
                    *by_match_share(overall, stories), every],
                   f"search, in-process (db.analysis.search_stories, limit 20): {len(queries)} queries in the mix "
                   f"({mix} per 20), drawn from {len(sample.texts)} random stories holding {vocabulary} distinct "
                   f"words; hits = stories the query matches; --all-versions also searches the {past} past "
                   f"versions indexed")
    report_slowest(sample, slowest)
    report_latency([hist, *changes], f"history and changes, in-process (events returned: {found})")
    report_search(overall)
    cli = cli_latency(path, queries, edited, since, args.cli_runs)
    report_latency(cli, "end to end (python -m defwatch ..., start to exit)")


if __name__ == "__main__":
    sys.exit(main())
