"""``defwatch import``: history from WARC/WACZ files or the Wayback Machine, stored like a crawl.

An import is a run of mode ``import``. Each capture of a story, photo, listing or feed page becomes
a fetch dated by its capture time and goes through exactly what a crawled response goes through:
``crawler.outcomes.classify`` (a block page or a 5xx is never content), ``crawler.pages.parse_fetched``
(the parsers, and the check that the page is the one the URL names) and ``Archive.save_response``
(versions by content hash, one transaction per response). Nothing here parses or versions on its own.

What makes it history rather than news:
- captures are stored oldest first, so versions are numbered in capture order; a capture older than
  what the archive already holds for a page adds a version or widens a version's dates, and never
  replaces the page's current state (``Archive._historical``);
- the run's change detection marks its events ``imported``, dates them by capture, and they are
  never mailed; a crawl after an import is still a baseline until a crawl has finished, and compares
  each page with its newest version, wherever that came from;
- every fetch says where it came from (``source``: warc or wayback, ``source_ref``: file and record
  offset or the capture URL) and ``source_key`` names the capture, so an import stopped anywhere (a
  truncated file, a rate limit, Ctrl-C) imports the rest when run again, and nothing twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.config import Config
from core.fetch import FetchInfo
from core.urls import SITE_HOSTS, STORY_PREFIX_BY_KIND, classify_url, is_site_url
from core.urls import urlsplit as safe_urlsplit
from crawler.outcomes import classify
from crawler.pages import parse_fetched
from crawler.warc_import import BadArchiveFile, Capture, CaptureReader, WarcIndex, index_file
from crawler.wayback import IMPORTED_STATUSES, CdxQuery, CdxRow, WaybackClient, WaybackError
from db.archive import Archive
from db.queries import is_baseline
from monitor.changes import detect_changes

logger = logging.getLogger(__name__)

IMPORTED_PAGE_TYPES = ("story", "photo", "listing", "feed")
PHOTO_PREFIX = "/Multimedia/Photos/igphoto/"
Progress = Callable[[int, int], None]


@dataclass
class ImportSummary:
    """What an import did; ``as_json`` keys are for scripts."""

    run_id: int | None = None
    source: str = "warc"
    status: str = "ok"
    captures: int = 0  # captures considered (response and revisit records, or CDX rows)
    stored: int = 0
    already_imported: int = 0
    other_site: int = 0
    not_a_page: int = 0
    new_versions: int = 0
    events: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    requests: int = 0  # to the Wayback service
    reused: int = 0  # Wayback captures whose body was the page's previous capture's (not fetched again)

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "source": self.source, "status": self.status, "captures": self.captures,
            "stored": self.stored, "already_imported": self.already_imported, "other_site": self.other_site,
            "not_a_page": self.not_a_page, "new_versions": self.new_versions, "events": self.events,
            "outcomes": dict(self.outcomes), "problems": self.problems, "requests": self.requests,
            "reused": self.reused,
        }

    def line(self) -> str:
        skipped = [f"{n} {what}" for n, what in ((self.already_imported, "already imported"),
                                                  (self.other_site, "of other sites"),
                                                  (self.not_a_page, "not story, photo, listing or feed pages"))
                   if n]
        return (f"import run {self.run_id} ({self.source}) {self.status}: {self.stored} captures stored, "
                f"{self.new_versions} new versions, {self.events} imported events"
                + (f"; skipped {', '.join(skipped)}" if skipped else ""))


class ImportFailed(RuntimeError):
    """The import stopped: one line for the user, the exit status, and what was stored before."""

    def __init__(self, message: str, status: int, summary: ImportSummary | None = None):
        super().__init__(message)
        self.status = status
        self.summary = summary


# -- WARC and WACZ files ----------------------------------------------------------------------------


def import_files(config: Config, paths: Iterable[str], progress: Progress | None = None) -> ImportSummary:
    """Import every site capture of the files, all files' captures merged in capture order.

    Every file is indexed before anything is stored: a file that is not a WARC, or that holds no
    capture of the site, stops the import with nothing stored. A truncated file gives up only its
    cut record: what precedes it is imported, and the import then fails naming the cut."""
    indexes = []
    for path in paths:
        try:
            indexes.append(index_file(Path(path)))
        except BadArchiveFile as exc:
            raise ImportFailed(str(exc), 2) from exc
    hosts = site_hosts(config.site)
    for index in indexes:
        _check_holds_site(index, hosts, config.site)
    entries = sorted((entry, n) for n, index in enumerate(indexes) for entry in index.entries)
    truncated = [f"{index.path} is truncated at {index.truncated_at}: the record there is incomplete and was "
                 "not imported" for index in indexes if index.truncated_at]

    def captures() -> Iterator[Capture]:
        with CaptureReader() as reader:
            for entry, n in entries:
                yield reader.read(indexes[n], entry)

    summary = ImportSummary(source="warc")
    _run_import(config, summary, captures(), len(entries), hosts, progress)
    if truncated:
        summary.problems += truncated
        raise ImportFailed(f"{truncated[0]}; the {summary.stored} complete captures before it were imported",
                           2, summary)
    return summary


def _check_holds_site(index: WarcIndex, hosts: frozenset[str], site: str) -> None:
    if not index.entries and not index.truncated_at:
        raise ImportFailed(f"{index.path}: no HTTP responses in this WARC (only {index.records} other records)", 2)
    found = Counter((safe_urlsplit(e.uri).netloc or "?") for e in index.entries)
    if index.entries and not any(is_site_url(e.uri, hosts) for e in index.entries):
        seen = ", ".join(host for host, _ in found.most_common(3))
        raise ImportFailed(f"{index.path}: no captures of {site} or {', '.join(sorted(SITE_HOSTS))} "
                           f"(it holds {seen}); pass --site to import a capture of another host", 2)


def site_hosts(site: str) -> frozenset[str]:
    """Hosts whose captures are the site's: war.gov and defense.gov, and the configured site's host."""
    parts = urlsplit(site)
    return frozenset(filter(None, {parts.netloc.lower(), (parts.hostname or "").lower()}))


# -- the Wayback Machine ----------------------------------------------------------------------------


def import_wayback(config: Config, targets: list[str], window: tuple[str | None, str | None], limit: int,
                   progress: Progress | None = None) -> ImportSummary:
    """Ask the CDX API for captures of ``targets`` (story URLs or ids; default: every story and photo
    page), then fetch and import the captures not imported yet, oldest first, at most ``limit``."""
    client = WaybackClient(config.wayback, config.crawl.user_agent)
    summary = ImportSummary(source="wayback")
    archive = Archive.open(config.db)
    try:
        queries = wayback_queries(archive, config.site, targets)
        try:
            rows = _listed_captures(client, queries, window)
        except WaybackError as exc:
            summary.requests = client.requests
            raise ImportFailed(f"{exc}; nothing was imported", 1, summary) from exc
        done = {row[0] for row in archive.db.execute("SELECT source_key FROM fetches WHERE source = 'wayback'")}
    finally:
        archive.close()
    todo = [row for row in rows if row.key not in done]
    summary.already_imported = len(rows) - len(todo)
    if limit:
        todo = todo[:limit]

    def captures() -> Iterator[Capture]:
        previous: tuple[str, str | None, Capture] | None = None  # the page's last capture: (page, digest, it)
        for row in todo:
            page = _page_key(row)
            if previous and previous[0] == page and _same_bytes(row, previous[1], previous[2]):
                capture = replace(previous[2], captured_at=row.captured_at, source_key=row.key,
                                  source_ref=client.capture_url(row))
                summary.reused += 1
            else:
                capture = client.capture(row)
            previous = (page, row.digest, capture)
            yield capture

    try:
        _run_import(config, summary, captures(), len(todo), site_hosts(config.site), progress)
    except WaybackError as exc:
        summary.requests = client.requests
        left = len(todo) - summary.stored - summary.other_site - summary.not_a_page
        raise ImportFailed(f"{exc}; {summary.stored} captures were imported, {left} are left: run the same "
                           "command again to resume", 1, summary) from exc
    summary.requests = client.requests
    return summary


def wayback_queries(archive: Archive, site: str, targets: list[str]) -> list[CdxQuery]:
    """CDX queries for the given story URLs or ids, or for every story and photo page of the site."""
    hosts = _wayback_hosts(site)
    if not targets:
        prefixes = [*STORY_PREFIX_BY_KIND.values(), PHOTO_PREFIX]
        return [CdxQuery(f"{host}{prefix}", "prefix") for host in hosts for prefix in prefixes]
    queries = []
    for target in targets:
        if target.isdigit():
            queries += _id_queries(archive, int(target), hosts)
        elif classify_url(target).type in ("story", "photo") or target.startswith(("http://", "https://")):
            queries.append(CdxQuery(_without_scheme(target), "exact"))
        else:
            raise ImportFailed(f"{target!r} is neither a story id nor a URL", 2)
    return queries


def _id_queries(archive: Archive, story_id: int, hosts: list[str]) -> list[CdxQuery]:
    """A known story's own URL; an unknown id under every story section (its slug is unknown)."""
    row = archive.db.execute("SELECT url FROM stories WHERE id = ?", [story_id]).fetchone()
    if row:
        path = safe_urlsplit(row[0]).path.split(f"/{story_id}/", 1)[0] + f"/{story_id}/"
        return [CdxQuery(f"{host}{path}", "prefix") for host in hosts]
    return [CdxQuery(f"{host}{prefix}{story_id}/", "prefix") for host in hosts
            for prefix in STORY_PREFIX_BY_KIND.values()]


def _wayback_hosts(site: str) -> list[str]:
    host = urlsplit(site).netloc
    return [host, "www.defense.gov"] if host == "www.war.gov" else [host]


def _without_scheme(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _listed_captures(client: WaybackClient, queries: list[CdxQuery], window: tuple[str | None, str | None]
                     ) -> list[CdxRow]:
    """Every capture of a story or photo page worth reading (content, or the evidence of a removal),
    page by page, each page's oldest first: its versions are numbered in capture order."""
    rows: set[CdxRow] = set()
    for query in queries:
        rows.update(row for row in client.captures(query, *window, 0)
                    if row.status in IMPORTED_STATUSES and classify_url(row.original).type in ("story", "photo"))
    return sorted(rows, key=lambda row: (_page_key(row), row.timestamp, row.original))


def _page_key(row: CdxRow) -> str:
    identity = classify_url(row.original)
    return f"{identity.type}:{identity.id}"


def _same_bytes(row: CdxRow, digest: str | None, capture: Capture) -> bool:
    """The CDX says this capture's body is the page's previous capture's, byte for byte: it is read
    from that one instead of asking the service again (it still dates the version it shows)."""
    return bool(row.digest) and row.digest == digest and row.status == 200 and capture.status == 200


# -- storing captures -------------------------------------------------------------------------------


def _run_import(config: Config, summary: ImportSummary, captures: Iterator[Capture], total: int,
                hosts: frozenset[str], progress: Progress | None) -> None:
    """One import run: store each capture in its own transaction, then detect its (imported) events.

    However the captures stop (a truncated file, a rate limit, an interrupt), the run is closed and
    what was stored is compared, so nothing stored is left undetected."""
    archive = Archive.open(config.db)
    try:
        summary.run_id = archive.start_run("import", config.site)
        failure: BaseException | None = None
        try:
            for done, capture in enumerate(captures, 1):
                summary.captures += 1
                _store(archive, summary, capture, hosts)
                if progress:
                    progress(done, total)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            _close_run(archive, config, summary, failure)
    finally:
        archive.close()


def _close_run(archive: Archive, config: Config, summary: ImportSummary, failure: BaseException | None) -> None:
    run_id = summary.run_id or 0
    detection = detect_changes(archive.db, run_id, config.monitor, finish_reason="finished",
                               baseline=is_baseline(archive.db, run_id))
    summary.events = len(detection.event_ids)
    summary.status = "ok" if failure is None else "interrupted" if isinstance(failure, KeyboardInterrupt) else "failed"
    archive.finish_run(run_id, summary.status, summary.as_json())


def _store(archive: Archive, summary: ImportSummary, capture: Capture, hosts: frozenset[str]) -> None:
    ref = classify_url(capture.uri)
    if not is_site_url(capture.uri, hosts):
        summary.other_site += 1
        return
    if ref.type not in IMPORTED_PAGE_TYPES:
        summary.not_a_page += 1
        return
    if archive.db.execute("SELECT 1 FROM fetches WHERE source_key = ?", [capture.source_key]).fetchone():
        summary.already_imported += 1
        return
    fetch, body, record = _fetch_of(capture, ref.type, ref.id)
    result = archive.save_response(summary.run_id or 0, fetch, body, record)
    summary.stored += 1
    summary.outcomes[fetch.outcome] += 1
    summary.new_versions += int(result.new_version)


def _fetch_of(capture: Capture, page_type: str, subject_id: int | None) -> tuple[FetchInfo, bytes | None, Any]:
    """The capture as the crawler would have recorded the response: classified, and parsed if content."""
    body = capture.body or b""
    headers = dict(capture.headers)
    if capture.not_modified:
        outcome, reason = "not_modified", None
    else:
        outcome, reason = classify(capture.status, headers, body)
    fetch = FetchInfo(
        url=capture.uri, outcome=outcome, page_type=page_type, subject_id=subject_id, status=capture.status,
        etag=capture.header("ETag"), last_modified=capture.header("Last-Modified"),
        content_type=capture.header("Content-Type"), error=reason, fetched_at=capture.captured_at,
        response_headers=capture.headers, source=capture.source, source_ref=capture.source_ref,
        source_key=capture.source_key,
    )
    record = parse_fetched(fetch, body, capture.uri) if outcome == "ok" else None
    return fetch, body or None, record

