"""Re-running the current parsers over the stored raw pages (``defwatch reparse``).

It lives with the crawler because it runs the parsers; the archive layer (``db``) never imports them.

A parser fix changes what we *read* from a page, not what the site *said*, so it must never look
like a story change: re-parsing rewrites the stored version rows in place (record, summary columns,
content hash, parser version) and the current-state row of a subject whose current version it is,
and it never adds a version or writes an event. Only ``stories``/``images`` (with the FTS index, by
trigger) and ``tags`` follow; ``related_links`` and ``story_images`` keep the history the crawler
observed (their first-seen/removed dates drive events) and are refreshed by the next crawl.

Each subject is rewritten in its own short ``BEGIN IMMEDIATE`` transaction, after parsing outside
it, so a daemon writing the same archive waits milliseconds and a crash leaves every subject either
re-parsed or untouched. Hashes are reassigned inside the transaction from the rows as they are then,
so a version the daemon added meanwhile is respected.

Parsing is most of the cost (a real-size page takes a few milliseconds), so ``workers`` > 1 parses
in a process pool: the main process reads the selected versions in batches of whole subjects, the
workers inflate and parse them, and the main process alone writes, subject by subject in the order
of the single-process path, so both give the same report and the same rows. The rows a worker
parses were read a batch or two before they are written; a version the daemon added meanwhile is
still respected, as above.

Two versions of one subject may now read the same (the difference was a parser artefact). Both are
kept, the UNIQUE (subject, content_hash) constraint is honoured by giving the new hash to one of
them, and the other keeps its stored hash and is reported as a duplicate. The current version is
preferred, then the newest: the next crawl of an unchanged page then matches the current version.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from core.records import PARSER_VERSION
from crawler.parsers import parse_page
from db.rows import image_columns, story_columns, write_tags
from db.versions import content_hash, image_content, story_content

BATCH_VERSIONS = 64  # versions per pool task: pickling amortised, little held in flight
MAX_LISTED_FAILURES = 50  # the counts are complete; the examples are for a person to look at
IGNORED_KEYS = ("parser_version",)  # a new stamp alone is not a change in the extraction

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Subject:
    """One kind of versioned subject and where its rows live."""

    noun: str  # story | image
    versions: str
    key: str
    state: str
    state_key: str
    record_type: str  # the record type its pages must parse to
    record_id: str  # the record key holding the subject id
    columns: tuple[str, ...]  # version-row columns copied from the record
    content: Callable[[dict[str, Any]], dict[str, Any]]


STORY = Subject("story", "story_versions", "story_id", "stories", "id", "story", "id",
                ("title", "subtitle", "byline", "published", "body_text"), story_content)
IMAGE = Subject("image", "image_versions", "media_id", "images", "media_id", "photo", "media_id",
                ("title", "caption", "credit"), image_content)
SUBJECTS = (STORY, IMAGE)
BY_NOUN = {subject.noun: subject for subject in SUBJECTS}


@dataclass
class VersionRow:
    """One stored version as read for re-parsing; the record and the raw page stay as stored until parsed."""

    id: int
    subject_id: int
    version: int
    content_hash: str
    record_json: str
    parser_version: str
    raw_sha256: str | None
    url: str | None
    content_type: str | None
    first_seen: str
    raw: bytes | None  # the zlib-compressed body from raw_pages, None when it was not stored


@dataclass
class Outcome:
    """What re-parsing one version gave: ``changed``, ``unchanged`` or ``failed``."""

    row: VersionRow
    status: str
    record: dict[str, Any] | None = None
    digest: str | None = None
    fields: list[str] = field(default_factory=list)
    reason: str | None = None
    detail: str | None = None

    @property
    def restamp(self) -> bool:
        return self.record is not None and self.row.parser_version != self.record.get("parser_version")


@dataclass
class Duplicate:
    """A version that now reads like another one of the same subject and kept its stored hash."""

    version: int
    same_as: int
    kept_hash: str


@dataclass
class ReparseReport:
    """What the re-parse changed in the extraction; ``as_json`` keys are a contract with scripts."""

    dry_run: bool = False
    workers: int = 1  # processes that parsed (1: in this process)
    reparsed: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    restamped: int = 0
    hash_changed: int = 0
    current_updated: int = 0
    fields: Counter[str] = field(default_factory=Counter)
    failed_by_reason: Counter[str] = field(default_factory=Counter)
    by_subject: dict[str, Counter[str]] = field(default_factory=lambda: {s.noun: Counter() for s in SUBJECTS})
    failures: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def pages_per_second(self) -> float:
        return round(self.reparsed / self.elapsed_s, 1) if self.elapsed_s > 0 else 0.0

    def count(self, noun: str, outcome: Outcome) -> None:
        self.reparsed += 1
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)
        self.by_subject[noun][outcome.status] += 1
        self.fields.update(outcome.fields)
        if outcome.restamp and outcome.status != "failed":
            self.restamped += 1
        if outcome.status == "failed":
            self.failed_by_reason[outcome.reason or "unknown"] += 1
            if len(self.failures) < MAX_LISTED_FAILURES:
                self.failures.append({"subject_type": noun, "subject_id": outcome.row.subject_id,
                                      "version": outcome.row.version, "reason": outcome.reason,
                                      "detail": outcome.detail})

    def as_json(self) -> dict[str, Any]:
        return {
            "parser_version": PARSER_VERSION, "dry_run": self.dry_run, "workers": self.workers,
            "reparsed": self.reparsed,
            "changed": self.changed, "unchanged": self.unchanged, "failed": self.failed,
            "restamped": self.restamped, "hash_changed": self.hash_changed, "current_updated": self.current_updated,
            "fields": dict(sorted(self.fields.items())),
            "failed_by_reason": dict(sorted(self.failed_by_reason.items())),
            "by_subject": {noun: {k: counts[k] for k in ("changed", "unchanged", "failed")}
                           for noun, counts in self.by_subject.items()},
            "failures": self.failures, "duplicates": self.duplicates,
            "elapsed_s": round(self.elapsed_s, 3), "pages_per_second": self.pages_per_second,
        }


# -- selection ------------------------------------------------------------------------------------


def _filters(subject: Subject, since: str | None, subject_id: int | None) -> tuple[str, list[Any]]:
    clauses, params = ["1"], []
    if since:
        clauses.append("v.first_seen >= ?")  # stored since then: what a parser in use since then produced
        params.append(since)
    if subject_id is not None:
        clauses.append(f"v.{subject.key} = ?")
        params.append(subject_id)
    return " AND ".join(clauses), params


def count_versions(db: sqlite_utils.Database, *, since: str | None = None, subject_id: int | None = None) -> int:
    """How many stored versions a re-parse with these filters would visit."""
    total = 0
    for subject in SUBJECTS:
        where, params = _filters(subject, since, subject_id)
        total += db.execute(f"SELECT COUNT(*) FROM {subject.versions} v WHERE {where}", params).fetchone()[0]
    return int(total)


def _subject_ids(db: sqlite_utils.Database, subject: Subject, since: str | None, subject_id: int | None) -> list[int]:
    where, params = _filters(subject, since, subject_id)
    sql = f"SELECT DISTINCT v.{subject.key} FROM {subject.versions} v WHERE {where} ORDER BY 1"
    return [row[0] for row in db.execute(sql, params)]


def _version_rows(db: sqlite_utils.Database, subject: Subject, sid: int, since: str | None) -> list[VersionRow]:
    """The subject's selected versions, each with the URL it was fetched from (parsers classify by it)."""
    where, params = _filters(subject, since, sid)
    rows = db.execute(
        f"""SELECT v.id, v.{subject.key}, v.version, v.content_hash, v.record, v.parser_version, v.raw_sha256,
                   COALESCE(f.final_url, f.url), r.content_type, v.first_seen, r.content
            FROM {subject.versions} v
            LEFT JOIN fetches f ON f.id = v.fetch_id
            LEFT JOIN raw_pages r ON r.sha256 = v.raw_sha256
            WHERE {where} ORDER BY v.version""",
        params,
    ).fetchall()
    return [VersionRow(*r) for r in rows]


Batch = list[tuple[Subject, int, list[VersionRow]]]


def _batches(db: sqlite_utils.Database, since: str | None, subject_id: int | None, size: int) -> Iterator[Batch]:
    """The selected subjects in order (stories, then images), grouped whole until a batch holds ``size`` versions."""
    batch: Batch = []
    held = 0
    for subject in SUBJECTS:
        for sid in _subject_ids(db, subject, since, subject_id):
            rows = _version_rows(db, subject, sid, since)
            batch.append((subject, sid, rows))
            held += len(rows)
            if held >= size:
                yield batch
                batch, held = [], 0
    if batch:
        yield batch


# -- parsing --------------------------------------------------------------------------------------


def reparse_version(subject: Subject, row: VersionRow) -> Outcome:
    """Parse one stored version's raw page again and compare the record with the stored one."""
    if row.raw is None:
        return Outcome(row, "failed", reason="no_raw_page", detail="the raw page was not stored")
    stored = json.loads(row.record_json)
    url = row.url or stored.get("url") or stored.get("page_url") or ""
    parsed = parse_page(zlib.decompress(row.raw), url, row.content_type)
    if parsed.type == "error":
        return Outcome(row, "failed", reason=parsed.reason, detail=parsed.detail)  # type: ignore[union-attr]
    record = json.loads(json.dumps(parsed.to_dict(), ensure_ascii=False))  # the shape the archive stores
    if parsed.type != subject.record_type or record.get(subject.record_id) != row.subject_id:
        found = f"{parsed.type} {record.get(subject.record_id) or ''}".strip()
        return Outcome(row, "failed", reason="wrong_page", detail=f"parsed as {found}, not {subject.noun} "
                                                                  f"{row.subject_id}")
    fields = changed_keys(stored, record)
    return Outcome(row, "changed" if fields else "unchanged", record, content_hash(subject.content(record)), fields)


Reading = tuple[str, dict[str, Any] | None, str | None, list[str], str | None, str | None]


def _parse_batch(batch: list[tuple[str, list[VersionRow]]]) -> list[list[Reading]]:
    """A pool task: each subject's versions parsed, returned without the rows the main process still holds.

    A record that changes nothing (same fields, same stamp) is not sent back: nothing will write it.
    """
    readings = []
    for noun, rows in batch:
        outcomes = [reparse_version(BY_NOUN[noun], row) for row in rows]
        readings.append([_reading(o) for o in outcomes])
    return readings


def _reading(o: Outcome) -> Reading:
    if o.status == "unchanged" and not o.restamp:
        return (o.status, None, None, o.fields, o.reason, o.detail)
    return (o.status, o.record, o.digest, o.fields, o.reason, o.detail)


def _parsed_in_process(batches: Iterable[Batch]) -> Iterator[tuple[Subject, int, list[Outcome]]]:
    for batch in batches:
        for subject, sid, rows in batch:
            yield subject, sid, [reparse_version(subject, row) for row in rows]


def _context() -> multiprocessing.context.BaseContext:
    """Workers started clean (never forked from a process holding an SQLite connection and threads)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["crawler.reparse"])  # the parsers imported once, not in every worker
    return context


def _parsed_in_pool(batches: Iterable[Batch], workers: int) -> Iterator[tuple[Subject, int, list[Outcome]]]:
    """Batches parsed by ``workers`` processes, yielded in order; a few in flight so the workers never wait.

    Batches are read here, in the caller's thread, a few ahead of the writes (``Pool.imap`` would read
    them in a thread of its own, on a connection that thread must not share).
    """
    with _context().Pool(workers) as pool:
        pending: deque[tuple[Batch, Any]] = deque()
        todo = iter(batches)
        while True:
            while len(pending) < 2 * workers and (batch := next(todo, None)) is not None:
                task = [(subject.noun, rows) for subject, _, rows in batch]
                pending.append((batch, pool.apply_async(_parse_batch, (task,))))
            if not pending:
                return
            batch, result = pending.popleft()
            for (subject, sid, rows), readings in zip(batch, result.get(), strict=True):
                yield subject, sid, [Outcome(row, *reading) for row, reading in zip(rows, readings, strict=True)]


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Record keys whose value differs, in the record's own order, the parser stamp left out."""
    keys = list(new) + [k for k in old if k not in new]
    return [k for k in keys if k not in IGNORED_KEYS and old.get(k) != new.get(k)]


# -- hash assignment ------------------------------------------------------------------------------


def assign_hashes(
    existing: dict[int, str], desired: dict[int, str], current_version: int | None
) -> tuple[dict[int, str], list[Duplicate]]:
    """New content hashes for re-parsed versions, unique per subject.

    ``existing`` maps every version of the subject to its stored hash, ``desired`` the re-parsed ones
    to their new hash. Versions whose hash does not move keep it; the others take the new hash in
    order current first, then newest first, and one that would collide keeps its stored hash (or, if
    even that is taken, a hash derived from the new one and its version, which no crawl can produce).
    """
    final = {v: h for v, h in existing.items() if desired.get(v, h) == h}
    taken = {h: v for v, h in final.items()}
    moving = sorted((v for v in desired if v not in final), key=lambda v: (v != current_version, -v))
    duplicates = []
    for version in moving:
        digest = desired[version]
        if digest in taken:
            twin = taken[digest]
            digest = existing[version]
            if digest in taken:
                digest = hashlib.sha256(f"{desired[version]}:duplicate:{version}".encode()).hexdigest()
            duplicates.append(Duplicate(version, twin, digest))
        final[version] = digest
        taken[digest] = version
    return {v: final[v] for v in desired}, duplicates


# -- writing --------------------------------------------------------------------------------------


@contextmanager
def _immediate(db: sqlite_utils.Database) -> Iterator[None]:
    """BEGIN IMMEDIATE: take the write lock first, so a concurrent daemon write cannot make our read stale."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _apply(
    db: sqlite_utils.Database, subject: Subject, sid: int, outcomes: list[Outcome], report: ReparseReport
) -> None:
    """Write one subject's re-parsed versions (unless a dry run) and count them."""
    for outcome in outcomes:
        report.count(subject.noun, outcome)
    good = [o for o in outcomes if o.record is not None and (o.status == "changed" or o.restamp)]
    if not good:
        return
    if report.dry_run:
        _resolve(db, subject, sid, good, report)
        return
    with _immediate(db):
        final = _resolve(db, subject, sid, good, report)
        _write_versions(db, subject, good, final)
        current = _current_version(db, subject, sid)
        for outcome in good:
            if outcome.row.version == current:
                _write_state(db, subject, sid, outcome)


def _current_version(db: sqlite_utils.Database, subject: Subject, sid: int) -> int | None:
    row = db.execute(f"SELECT current_version FROM {subject.state} WHERE {subject.state_key} = ?", [sid]).fetchone()
    return row[0] if row else None


def _resolve(
    db: sqlite_utils.Database, subject: Subject, sid: int, good: list[Outcome], report: ReparseReport
) -> dict[int, str]:
    """Final hashes for the subject's re-parsed versions, counted (and, for a dry run, only counted)."""
    existing = dict(db.execute(f"SELECT version, content_hash FROM {subject.versions} WHERE {subject.key} = ?",
                               [sid]).fetchall())
    current = _current_version(db, subject, sid)
    desired = {o.row.version: o.digest or o.row.content_hash for o in good}
    final, duplicates = assign_hashes(existing, desired, current)
    report.hash_changed += sum(1 for v, h in final.items() if h != existing.get(v))
    report.current_updated += sum(1 for o in good if o.row.version == current)
    report.duplicates += [{"subject_type": subject.noun, "subject_id": sid, "version": d.version,
                           "same_as_version": d.same_as, "kept_hash": d.kept_hash} for d in duplicates]
    return final


def _write_versions(db: sqlite_utils.Database, subject: Subject, good: list[Outcome], final: dict[int, str]) -> None:
    moving = [o for o in good if final[o.row.version] != o.row.content_hash]
    for outcome in moving:  # park first: a new hash may be another row's old one until that row moves
        db.execute(f"UPDATE {subject.versions} SET content_hash = ? WHERE id = ?",
                   [f"reparse:{outcome.row.id}", outcome.row.id])
    for outcome in good:
        record = outcome.record or {}
        columns = {name: record.get(name) for name in subject.columns}
        assignments = ", ".join(f"{name} = ?" for name in columns)
        db.execute(
            f"""UPDATE {subject.versions} SET {assignments}, record = ?, content_hash = ?, parser_version = ?
                WHERE id = ?""",
            [*columns.values(), json.dumps(record, ensure_ascii=False), final[outcome.row.version],
             record.get("parser_version") or PARSER_VERSION, outcome.row.id],
        )


def _write_state(db: sqlite_utils.Database, subject: Subject, sid: int, outcome: Outcome) -> None:
    record = outcome.record or {}
    values = story_columns(record) if subject is STORY else image_columns(record)
    assignments = ", ".join(f"{name} = ?" for name in values)
    db.execute(f"UPDATE {subject.state} SET {assignments} WHERE {subject.state_key} = ?", [*values.values(), sid])
    if subject is STORY:
        write_tags(db, sid, record.get("tags") or [], outcome.row.first_seen)


# -- entry point ----------------------------------------------------------------------------------


def reparse_archive(
    db: sqlite_utils.Database,
    *,
    since: str | None = None,
    subject_id: int | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    workers: int = 1,
    batch_versions: int | None = None,
) -> ReparseReport:
    """Re-parse every selected stored version (stories, then photo pages) and refresh the records.

    ``since`` selects versions first stored at or after that ISO instant; ``subject_id`` one story
    or image (story ids and media ids are both matched). A version whose page no longer parses, or
    parses to another page, is counted as failed and left exactly as it was. ``workers`` > 1 parses
    in that many processes when there is more than one batch of ``batch_versions`` (default
    ``BATCH_VERSIONS``) to share; the result is the same as in one process.
    """
    batch_versions = batch_versions or BATCH_VERSIONS
    total = count_versions(db, since=since, subject_id=subject_id)
    pooled = workers > 1 and total > batch_versions
    report = ReparseReport(dry_run=dry_run, workers=workers if pooled else 1)
    started = time.monotonic()
    batches = _batches(db, since, subject_id, batch_versions)
    parsed = _parsed_in_pool(batches, workers) if pooled else _parsed_in_process(batches)
    for subject, sid, outcomes in parsed:
        _apply(db, subject, sid, outcomes, report)
        if progress:
            progress(report.reparsed, total)
    report.elapsed_s = time.monotonic() - started
    return report
