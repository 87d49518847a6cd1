"""Datasette over the archive (``defwatch browse``), and the archive's own descriptions.

Descriptions come from one place so they cannot drift: column descriptions are the ``--`` comments
of ``db.schema.SCHEMA_TEXT`` (a comment on a ``CREATE TABLE`` line is the table's purpose). Tables
and columns the schema leaves uncommented fall back to ``TABLE_PURPOSES`` and ``COLUMN_NOTES``
below; a schema comment always wins, and the tests fail if a note names a column that does not
exist. The same descriptions feed Datasette's metadata and ``scripts/schema_docs.py``.

Datasette opens the file read-write-capable and mutable (never ``-i``/immutable): the daemon keeps
writing, WAL lets both proceed, and an immutable open would cache counts and miss new rows.
"""

from __future__ import annotations

import json
import re
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from db.analysis import BM25_WEIGHTS, SNIPPET_TOKENS
from db.schema import FTS_COLUMNS, SCHEMA_TEXT

INSTALL_HINT = "pip install defwatch[browse]"
SQL_TIME_LIMIT_MS = 5000  # Datasette's 1 s default is short for FTS ranking over a large archive

TITLE = "defwatch archive"
DESCRIPTION = (
    "Versioned archive of www.defense.gov / www.war.gov stories and photos: every fetch, every distinct "
    "version of every story and photo page, the changes detected between them, and the alert outbox."
)

# Used only where the schema text has no comment on the CREATE TABLE line.
TABLE_PURPOSES: dict[str, str] = {
    "index_pages": "Feeds and listing pages as last parsed: their validators (for conditional GET) and, for "
                   "a listing, its next page, so an unchanged listing chain is walked with 304s.",
    "known_pages": "Story and photo pages the archive has heard of (a related-story link, an inline photo, a feed "
                   "or listing item) before it archived them: due until archived or confirmed gone (404/410 on "
                   "two runs), with their failed attempts. `defwatch stats` counts those still waiting.",
    "runs": "One row per crawl run: its mode, when it started and ended, its status and its statistics.",
    "raw_pages": "Every response body received, zlib-compressed and stored once per sha256, so any stored "
                 "version can be re-parsed (`defwatch reparse`).",
    "fetches": "Every request a crawl made: URL, HTTP status, outcome, parse status, validators, size and the "
               "sha256 of the body.",
    "stories": "The current state of every archived story, one row per article id (full-text searchable "
               "through stories_fts).",
    "story_versions": "Every distinct version of every story (content hash over the normalized fields), with "
                      "when it was first and last seen and the fetch that first showed it.",
    "images": "The current state of every image, one row per media id, with its parsed VIRIN: from its photo "
              "page, or from a story's inline block until the photo page is fetched.",
    "image_versions": "Every distinct version of every photo page.",
    "story_images": "Which images each story currently shows, in page order.",
    "related_links": "The related-story graph: the links each story lists, with when each appeared and when it "
                     "disappeared.",
    "tags": "Each story's current tags, one row per tag.",
    "events": "One row per detected change (story_new, story_updated, story_removed, ...) or operator event "
              "(crawl_blocked, crawl_failed, parser_degraded), with the changed fields and the diff.",
    "outbox": "Alert mails, rendered before they are sent: pending ones are retried, sent ones never sent again.",
    "frontier": "The daemon's budgeted crawl frontier: per archived story or photo page, when its next "
                "revisit is due, its estimated change rate and history, and when the site last answered for it.",
    "frontier_state": "The frontier's small shared state: when feeds were last read, the hourly census and "
                      "revisit scale, each listing walk's cursor and the last slice's plan.",
    "subscribers": "Each [[subscribers]] address since it was first configured, and when its last digest was "
                   "queued (for hourly and daily cadences).",
    "subscriber_events": "Which events each subscriber's digests carried, or its filter left out: an event "
                         "reaches a subscriber at most once.",
    "stories_fts": "FTS5 full-text index (porter stemming) over the stories' title, subtitle, body_text and "
                   "captions, kept in sync by triggers; its rowid is stories.id.",
    "story_versions_fts": "FTS5 full-text index (porter stemming) of the versions stories have moved on from "
                          "(text since edited out: `search --all-versions`), filled by a trigger when a story's "
                          "current_version moves on; its rowid is story_versions.id.",
}

FTS_TABLES = ("stories_fts", "story_versions_fts")
_BRANCH_CODES = "A Army, N Navy, F Air Force, M Marine Corps, X Space Force, G Coast Guard, Z National Guard, D DoD"

# Used only where the schema text has no comment on the column; "table.column" beats "column".
COLUMN_NOTES: dict[str, str] = {
    "id": "row id",
    "run_id": "the run (runs.id)",
    "story_id": "the story's article id (stories.id)",
    "media_id": "the image's media id: /igphoto/<id>/ and the id in its media.defense.gov path",
    "url": "the page URL",
    "title": "title as printed",
    "caption": "caption as printed",
    "credit": "credit line, without the 'Photo By:' label",
    "alt": "the image's alt text",
    "first_seen": "ISO 8601 UTC: when the crawler first saw it",
    "last_seen": "ISO 8601 UTC: when the crawler last saw it",
    "first_run_id": "the run that first saw it (runs.id)",
    "last_run_id": "the last run that saw it (runs.id)",
    "last_fetched": "ISO 8601 UTC: the last request for the page, whatever its outcome",
    "current_version": "the version the page shows now",
    "parser_version": "the parser that produced the fields (PARSER_VERSION; `defwatch reparse` refreshes it)",
    "raw_sha256": "the raw page this version was parsed from (raw_pages.sha256)",
    "etag": "ETag the server sent, for conditional GET",
    "last_modified": "Last-Modified the server sent, for conditional GET",
    "published": "publication date, ISO 8601 date or date-time",
    "updated": "last-updated date the page prints, ISO 8601",
    "byline": "byline as printed, e.g. 'By Jim Garamone, DOD News'",
    "subtitle": "subtitle as printed",
    "body_text": "the paragraphs joined by a blank line",
    "runs.site": "site base URL crawled",
    "runs.ended_at": "ISO 8601 UTC; NULL while running",
    "runs.pid": "process id of the crawl",
    "fetches.url": "URL requested",
    "fetches.final_url": "URL after redirects, when different",
    "fetches.bytes": "body size in bytes",
    "fetches.elapsed_ms": "download time in milliseconds",
    "fetches.fetched_at": "ISO 8601 UTC",
    "stories.kind": "news-story | feature-story | release | transcript | speech | advisory | contract",
    "stories.url": "the story's URL as last fetched",
    "stories.canonical_url": "the page's canonical link",
    "stories.organisation": "issuing organisation, when printed",
    "stories.dateline": "dateline, e.g. 'WASHINGTON'",
    "images.page_url": "the photo page /Multimedia/Photos/igphoto/<id>/",
    "images.src": "image URL shown on the page",
    "images.download_url": "full-size download URL on media.defense.gov",
    "images.size_bytes": "full-size file size, from 'Full Size (2.91 MB)'",
    "images.virin_shot_date": "ISO date from the VIRIN's first six digits; NULL when they are not a valid date",
    "images.virin_branch_code": f"VIRIN service letter: {_BRANCH_CODES}, ...",
    "images.virin_branch": "service branch named by the VIRIN letter",
    "images.virin_originator_id": "VIRIN originator: VISION ID, DVIAN or legacy field",
    "images.virin_sequence": "VIRIN sequence number, as text (leading zeros kept)",
    "images.virin_suffix": "letters after the VIRIN sequence, e.g. M",
    "images.missing_since": "first 404/410 of the current absence of the photo page",
    "images.removed_at": "when the photo page's removal was confirmed",
    "story_images.position": "0-based position of the image in the story",
    "tags.name": "the tag",
    "raw_pages.content_type": "Content-Type header of the response",
    "fetches.sha256": "the body received (raw_pages.sha256)",
    "image_versions.version": "1, 2, 3 ... per image",
    "image_versions.content_hash": "sha256 over the normalized fields",
    "image_versions.record": "the full parsed record as JSON",
    "image_versions.fetch_id": "provenance: the fetch that first showed it",
    "related_links.removed_run_id": "the run whose parse of story_id no longer listed it",
    "events.subject_id": "story id, media id or run id, per subject_type",
    "events.from_version": "the version before the change",
    "events.to_version": "the version after the change",
    "events.summary": "one line for people, e.g. 'Updated (body): <title>'",
    "events.detected_at": "ISO 8601 UTC",
    "outbox.sender": "From address",
    "outbox.subject": "Subject header (scraped text never reaches it raw)",
    "outbox.body_text": "text/plain part",
    "outbox.body_html": "text/html part",
    "outbox.attempts": "SMTP attempts so far",
    "outbox.last_error": "why the last attempt failed",
    "outbox.next_attempt_at": "ISO 8601 UTC: not retried before then",
    "outbox.created_at": "ISO 8601 UTC",
    "outbox.sent_at": "ISO 8601 UTC; NULL until sent",
}


@dataclass
class ColumnDoc:
    name: str
    type: str
    notnull: bool
    default: str | None
    pk: bool
    references: str | None
    description: str


@dataclass
class TableDoc:
    name: str
    purpose: str
    columns: list[ColumnDoc] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)


# -- descriptions from the schema text ----------------------------------------------------------------

_CREATE = re.compile(r"^\s*CREATE TABLE (\w+)\s*\((.*)$", re.I)
_ADD_COLUMN = re.compile(r"^\s*ALTER TABLE (\w+) ADD COLUMN (\w+)", re.I)  # a later migration's column
_CONSTRAINT = ("UNIQUE", "PRIMARY", "FOREIGN", "CHECK", "CONSTRAINT")


def schema_comments(schema: str = SCHEMA_TEXT) -> dict[str, dict[str, Any]]:
    """``{table: {"purpose": str | None, "columns": {column: comment}}}`` from the ``--`` comments."""
    found: dict[str, dict[str, Any]] = {}
    table: str | None = None
    for line in schema.splitlines():
        code, _, comment = line.partition("--")
        create, added = _CREATE.match(code), _ADD_COLUMN.match(code)
        if added and added.group(1) in found:
            found[added.group(1)]["columns"][added.group(2)] = comment.strip()
        elif create:
            table = create.group(1)
            found[table] = {"purpose": comment.strip() or None, "columns": {}}
        elif table and code.strip().startswith(")"):
            table = None
        elif table and code.split() and code.split()[0].upper() not in _CONSTRAINT and comment.strip():
            found[table]["columns"][code.split()[0]] = comment.strip()
    return found


def _fts_comments() -> dict[str, dict[str, Any]]:
    past = {c: f"story_versions.{c} of a past version, indexed for MATCH" for c in FTS_COLUMNS}
    past["captions"] = "the past version's image captions (from its record), one per line, indexed for MATCH"
    return {"stories_fts": {"purpose": None, "columns": {c: f"stories.{c}, indexed for MATCH" for c in FTS_COLUMNS}},
            "story_versions_fts": {"purpose": None, "columns": past}}


def describe_column(table: str, column: str, comments: dict[str, dict[str, Any]] | None = None) -> str:
    """The schema comment of a column, else its note; empty when neither says anything."""
    comments = comments if comments is not None else {**schema_comments(), **_fts_comments()}
    said = comments.get(table, {}).get("columns", {}).get(column)
    return said or COLUMN_NOTES.get(f"{table}.{column}") or COLUMN_NOTES.get(column, "")


def describe_table(table: str, comments: dict[str, dict[str, Any]] | None = None) -> str:
    comments = comments if comments is not None else schema_comments()
    return comments.get(table, {}).get("purpose") or TABLE_PURPOSES.get(table, "")


def archive_tables(db: Any) -> list[str]:
    """User-facing tables of a live archive in schema order: FTS shadow tables are internals."""
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid").fetchall()
    fts_shadows = ("_data", "_idx", "_docsize", "_config", "_content")
    return [r[0] for r in rows if not (r[0].startswith(FTS_TABLES) and r[0].endswith(fts_shadows))
            and not r[0].startswith("sqlite_")]


def table_docs(db: Any) -> list[TableDoc]:
    """Every table of a live archive with its columns (types from SQLite itself) and descriptions."""
    comments = {**schema_comments(), **_fts_comments()}
    docs = []
    for table in archive_tables(db):
        refs = {r[3]: f"{r[2]}({r[4]})" for r in db.execute(f"PRAGMA foreign_key_list({table})").fetchall()}
        doc = TableDoc(table, describe_table(table, comments))
        for _, name, ctype, notnull, default, pk in db.execute(f"PRAGMA table_info({table})").fetchall():
            doc.columns.append(ColumnDoc(name, ctype or "", bool(notnull), default, bool(pk), refs.get(name),
                                         describe_column(table, name, comments)))
        doc.indexes = _indexes(db, table)
        docs.append(doc)
    return docs


def _indexes(db: Any, table: str) -> list[str]:
    found = []
    for _, name, unique, origin, *_ in db.execute(f"PRAGMA index_list({table})").fetchall():
        if origin == "pk":
            continue
        columns = ", ".join(r[2] for r in db.execute(f"PRAGMA index_info({name})").fetchall())
        found.append(f"{'UNIQUE ' if unique else ''}({columns})")
    return sorted(found)


# -- Datasette metadata ---------------------------------------------------------------------------------

_WEIGHTS = ", ".join(str(w) for w in BM25_WEIGHTS)

CANNED_QUERIES: dict[str, dict[str, str]] = {
    "latest_changes": {
        "title": "Latest changes",
        "description": "Change events, newest first (operator events such as crawl_blocked included).",
        "sql": """SELECT e.id, e.detected_at, e.kind, e.subject_type, e.subject_id, e.title, e.summary,
       e.changed_fields, e.from_version, e.to_version, e.url, e.run_id, e.audience, e.imported
FROM events e
ORDER BY e.detected_at DESC, e.id DESC
LIMIT 500""",
    },
    "story_history": {
        "title": "A story's history",
        "description": "Every stored version of story :id (its article id), oldest first, with where it was first "
                       "seen: a live crawl, a WARC file and record offset, or a Wayback Machine capture.",
        "sql": """SELECT v.version, v.first_seen, v.last_seen, v.first_run_id, v.last_run_id, v.title, v.byline,
       v.published, substr(v.content_hash, 1, 12) AS hash, v.parser_version, length(v.body_text) AS body_chars,
       v.fetch_id, v.raw_sha256, COALESCE(f.source, 'crawl') AS source, f.source_ref
FROM story_versions v LEFT JOIN fetches f ON f.id = v.fetch_id
WHERE v.story_id = :id
ORDER BY v.version""",
    },
    "search": {
        "title": "Full-text search",
        "description": "Stories matching an FTS5 query (:q, e.g. satellite, \"space security\", title:budget), "
                       "best first by bm25 (title matches weigh most), with a snippet; **marks** the hits.",
        "sql": f"""SELECT s.id, s.kind, s.title, s.published, s.status, s.url,
       snippet(stories_fts, -1, '**', '**', '…', {SNIPPET_TOKENS}) AS snippet,
       bm25(stories_fts, {_WEIGHTS}) AS rank
FROM stories_fts JOIN stories s ON s.id = stories_fts.rowid
WHERE stories_fts MATCH (CASE WHEN trim(:q) = '' THEN '""' ELSE :q END)
ORDER BY rank, s.id
LIMIT 100""",
    },
    "removed_stories": {
        "title": "Removed stories",
        "description": "Stories whose page is gone: removed (404/410 confirmed) first, then missing (awaiting "
                       "confirmation), most recent first.",
        "sql": """SELECT s.id, s.kind, s.title, s.status, s.removed_at, s.missing_since, s.last_seen,
       s.current_version, s.url
FROM stories s
WHERE s.status IN ('removed', 'missing')
ORDER BY s.status = 'missing', COALESCE(s.removed_at, s.missing_since) DESC, s.id""",
    },
    "virin_by_branch_month": {
        "title": "VIRINs by branch and shot month",
        "description": "How many images each service branch shot each month, from the parsed VIRINs.",
        "sql": """SELECT COALESCE(i.virin_branch, '(unknown)') AS branch, i.virin_branch_code AS code,
       substr(i.virin_shot_date, 1, 7) AS shot_month, COUNT(*) AS images
FROM images i
WHERE i.virin IS NOT NULL
GROUP BY branch, code, shot_month
ORDER BY shot_month DESC, images DESC, branch""",
    },
    "frontier": {
        "title": "Crawl frontier",
        "description": "The daemon's budgeted frontier now: pages due, removals awaiting confirmation, listing "
                       "candidates, requests spent in the last hour against the budget, the oldest verification "
                       "and, at the last day's pace, the days until every page is verified again "
                       "(`defwatch stats` shows the same).",
        "sql": """WITH now(t) AS (SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
SELECT (SELECT COUNT(*) FROM frontier) AS pages,
       (SELECT COUNT(*) FROM frontier, now WHERE urgency > 0 OR due_at <= now.t) AS due,
       (SELECT COUNT(*) FROM frontier WHERE urgency = 3) AS awaiting_confirmation,
       (SELECT COUNT(*) FROM frontier WHERE urgency = 1) AS listing_candidates,
       (SELECT COUNT(*) FROM fetches WHERE fetched_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour'))
         AS requests_last_hour,
       (SELECT value FROM frontier_state WHERE key = 'slice') AS last_slice,
       (SELECT MIN(verified_at) FROM frontier) AS oldest_verified_at,
       ROUND((julianday('now') - julianday((SELECT MIN(verified_at) FROM frontier))) * 24, 1)
         AS oldest_verification_age_hours,
       ROUND((SELECT COUNT(*) FROM frontier) * 1.0 / NULLIF((SELECT COUNT(*) FROM frontier
         WHERE verified_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')), 0), 1)
         AS expected_days_to_verify_all""",
    },
    "frontier_next": {
        "title": "Next pages the frontier fetches",
        "description": "Pages in the order the next slices take them: urgency (3 removal awaiting confirmation, "
                       "2 not archived yet, 1 gone from its listing), then the most overdue revisit.",
        "sql": """SELECT page_type, subject_id, urgency, due_at, ROUND(change_rate, 4) AS changes_per_day, checks,
       changes, verified_at, listed_at, url
FROM frontier
ORDER BY urgency DESC, due_at
LIMIT 200""",
    },
    "related_graph": {
        "title": "Related-story graph",
        "description": "Edges of the related-story graph as the stories list them now (story_id -> related_id); "
                       "related_archived is 0 for a story not archived (yet).",
        "sql": """SELECT r.story_id, s.title AS story_title, r.related_id,
       COALESCE(t.title, r.title) AS related_title, t.id IS NOT NULL AS related_archived, r.first_seen
FROM related_links r
JOIN stories s ON s.id = r.story_id
LEFT JOIN stories t ON t.id = r.related_id
WHERE r.removed_at IS NULL
ORDER BY r.story_id, r.related_id""",
    },
}


# A row page is one record with many columns: as a one-row table a story's text sat in a narrow
# column thousands of pixels tall. Row pages show each field as a labelled block instead (the layout
# Datasette itself uses on small screens), and long text keeps its paragraph breaks. Inline (a data:
# URL): `browse` needs no static files and makes no request that could fail.
_ROW_LAYOUT = (
    "body.row table.rows-and-columns, body.row .rows-and-columns tbody, body.row .rows-and-columns tr,"
    " body.row .rows-and-columns td { display: block; }"
    " body.row .rows-and-columns thead { display: none; }"
    " body.row .rows-and-columns td { border: none; border-bottom: 1px solid #eee; padding: 0.3em 0; max-width: 60em; }"
    " body.row .rows-and-columns td:before { display: block; margin: 0; font-size: 0.8em; color: #555; }"
    " td.col-body_text, td.col-captions { white-space: pre-line; }"
)


def row_page_css(columns: dict[str, list[str]]) -> str:
    """The row-page stylesheet as a data: URL, with each table's column names as field labels."""
    labels = " ".join(
        f'body.row.table-{table} .rows-and-columns td:nth-of-type({i}):before {{ content: "{name}"; }}'
        for table, names in columns.items() if re.fullmatch(r"[a-z][a-z0-9_]*", table)
        for i, name in enumerate(names, start=1)
    )
    return "data:text/css," + quote(_ROW_LAYOUT + " " + labels)


def database_name(path: str | Path) -> str:
    """The name Datasette gives a database file: its stem (``archive.db`` -> ``archive``)."""
    return Path(path).stem


def table_metadata(db: Any) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for doc in table_docs(db):
        columns = {c.name: c.description for c in doc.columns if c.description}
        tables[doc.name] = {"description": doc.purpose, "columns": columns}
    tables["stories"] |= {"fts_table": "stories_fts", "fts_pk": "id", "sort_desc": "published"}
    tables["events"]["sort_desc"] = "detected_at"
    tables["raw_pages"]["hidden"] = True  # compressed blobs: reachable by SQL, noise in the table list
    return tables


def datasette_metadata(path: str | Path) -> dict[str, Any]:
    """Datasette metadata for the archive at ``path``: descriptions, FTS and canned queries."""
    from db.schema import connect

    db = connect(str(path))  # also migrates an older archive, so Datasette sees the current schema
    try:
        tables = table_metadata(db)
        columns = {doc.name: [c.name for c in doc.columns] for doc in table_docs(db)}
    finally:
        db.conn.close()
    return {
        "title": TITLE,
        "description": DESCRIPTION,
        "extra_css_urls": [row_page_css(columns)],
        "databases": {
            database_name(path): {"description": DESCRIPTION, "tables": tables, "queries": CANNED_QUERIES},
        },
    }


# -- serving ----------------------------------------------------------------------------------------------


class DatasetteMissing(RuntimeError):
    """The optional ``browse`` extra is not installed."""


def serve_args(path: str, metadata_file: str, host: str, port: int) -> list[str]:
    """``datasette serve`` arguments: a mutable database (never ``-i``), our metadata and time limit."""
    return ["serve", str(path), "--metadata", metadata_file, "--host", host, "--port", str(port),
            "--setting", "sql_time_limit_ms", str(SQL_TIME_LIMIT_MS)]


def serve(path: str, *, host: str = "127.0.0.1", port: int = 8001) -> int:
    """Run Datasette on the archive until interrupted."""
    try:
        from datasette.cli import cli
    except ImportError as exc:
        raise DatasetteMissing(f"Datasette is not installed; {INSTALL_HINT}") from exc
    metadata = datasette_metadata(path)
    with _terminate_as_exit(), tempfile.TemporaryDirectory(prefix="defwatch-browse-") as tmp:
        metadata_file = Path(tmp) / "metadata.json"
        metadata_file.write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"serving {path} on http://{host}:{port}/{database_name(path)} (Ctrl-C stops)", flush=True)
        cli.main(serve_args(path, str(metadata_file), host, port), prog_name="datasette", standalone_mode=False)
    return 0


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM (a service manager, ``kill``) unwinds like Ctrl-C instead of killing the process on the
    spot, so the metadata's temporary directory is removed and the archive closed; exit status 143."""
    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
