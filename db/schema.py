"""The archive's schema and its migrations.

The schema is plain SQL so analysts can read it here or with ``.schema`` in sqlite3. Migrations are
numbered steps applied in order inside one transaction each; ``PRAGMA user_version`` records the
last one applied, so opening an older archive upgrades it and opening a current one costs nothing.
Full-text search is an FTS5 table kept in sync by triggers (created with sqlite-utils).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from core.urls import same_site

SCHEMA_V1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    mode TEXT NOT NULL,                 -- discover | revisit | sweep | full
    site TEXT NOT NULL,
    started_at TEXT NOT NULL,           -- ISO 8601 UTC
    ended_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',  -- running | ok | failed | blocked | interrupted
    pid INTEGER,
    stats TEXT                          -- JSON: pages, versions, events, errors, outcome counts
);

CREATE TABLE raw_pages (
    sha256 TEXT PRIMARY KEY,            -- of the decoded body as received
    content BLOB NOT NULL,              -- zlib-compressed body
    content_type TEXT,
    size INTEGER NOT NULL,              -- uncompressed bytes
    first_seen TEXT NOT NULL
);

CREATE TABLE fetches (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    url TEXT NOT NULL,
    final_url TEXT,
    page_type TEXT,                     -- story | photo | listing | feed | robots | other
    subject_id INTEGER,                 -- story id or media id, when page_type names one
    status INTEGER,                     -- HTTP status; NULL for network errors
    outcome TEXT NOT NULL,              -- ok | not_modified | blocked | not_found | gone | error
    parse_status TEXT,                  -- parsed | generic | parse_error | skipped; NULL when not parsed
    error TEXT,                         -- why: exception, block reason, parse error reason
    version INTEGER,                    -- the subject's version this fetch showed (ok or not_modified)
    etag TEXT,
    last_modified TEXT,
    bytes INTEGER,
    sha256 TEXT REFERENCES raw_pages(sha256),
    elapsed_ms INTEGER,
    fetched_at TEXT NOT NULL
);
CREATE INDEX fetches_run ON fetches(run_id);
CREATE INDEX fetches_subject ON fetches(page_type, subject_id, id);

CREATE TABLE stories (
    id INTEGER PRIMARY KEY,             -- the article id: identity never depends on the host
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    canonical_url TEXT,
    title TEXT,
    subtitle TEXT,
    published TEXT,
    updated TEXT,
    byline TEXT,
    authors TEXT,                       -- JSON list
    organisation TEXT,
    dateline TEXT,
    body_text TEXT,
    captions TEXT,                      -- inline image captions, one per line (searchable)
    tags TEXT,                          -- JSON list
    status TEXT NOT NULL DEFAULT 'live',  -- live | missing | removed
    current_version INTEGER,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,            -- last time the page answered with this story
    last_fetched TEXT,
    missing_since TEXT,                 -- first 404/410 of the current absence
    removed_at TEXT,                    -- when the removal was confirmed
    etag TEXT,                          -- validators of the stored version, for conditional GET
    last_modified TEXT,
    parser_version TEXT,
    first_run_id INTEGER REFERENCES runs(id)
);
CREATE INDEX stories_published ON stories(published);
CREATE INDEX stories_kind ON stories(kind);

CREATE TABLE story_versions (
    id INTEGER PRIMARY KEY,
    story_id INTEGER NOT NULL REFERENCES stories(id) DEFERRABLE INITIALLY DEFERRED,
    version INTEGER NOT NULL,           -- 1, 2, 3 ... per story
    content_hash TEXT NOT NULL,         -- sha256 over the normalized fields
    title TEXT,
    subtitle TEXT,
    byline TEXT,
    published TEXT,
    body_text TEXT,
    record TEXT NOT NULL,               -- the full parsed record as JSON
    parser_version TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    first_run_id INTEGER REFERENCES runs(id),
    last_run_id INTEGER REFERENCES runs(id),
    fetch_id INTEGER REFERENCES fetches(id),   -- provenance: the fetch that first showed it
    raw_sha256 TEXT REFERENCES raw_pages(sha256),
    UNIQUE (story_id, version),
    UNIQUE (story_id, content_hash)
);

CREATE TABLE images (
    media_id INTEGER PRIMARY KEY,
    page_url TEXT,
    src TEXT,
    download_url TEXT,
    alt TEXT,
    title TEXT,
    caption TEXT,
    credit TEXT,
    size_bytes INTEGER,
    published TEXT,
    virin TEXT,                          -- raw VIRIN, always kept
    virin_shot_date TEXT,
    virin_branch_code TEXT,
    virin_branch TEXT,
    virin_originator_id TEXT,
    virin_sequence TEXT,
    virin_suffix TEXT,
    source TEXT NOT NULL,                -- photo_page | inline: where the current fields came from
    status TEXT NOT NULL DEFAULT 'live', -- live | missing | removed (of the photo page)
    current_version INTEGER,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_fetched TEXT,
    missing_since TEXT,
    removed_at TEXT,
    etag TEXT,
    last_modified TEXT,
    parser_version TEXT,
    first_run_id INTEGER REFERENCES runs(id)
);
CREATE INDEX images_virin ON images(virin);
CREATE INDEX images_shot ON images(virin_shot_date);

CREATE TABLE image_versions (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES images(media_id) DEFERRABLE INITIALLY DEFERRED,
    version INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    title TEXT,
    caption TEXT,
    credit TEXT,
    record TEXT NOT NULL,
    parser_version TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    first_run_id INTEGER REFERENCES runs(id),
    last_run_id INTEGER REFERENCES runs(id),
    fetch_id INTEGER REFERENCES fetches(id),
    raw_sha256 TEXT REFERENCES raw_pages(sha256),
    UNIQUE (media_id, version),
    UNIQUE (media_id, content_hash)
);

CREATE TABLE story_images (
    story_id INTEGER NOT NULL REFERENCES stories(id),
    media_id INTEGER NOT NULL REFERENCES images(media_id),
    position INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (story_id, media_id)
);
CREATE INDEX story_images_media ON story_images(media_id);

CREATE TABLE related_links (
    story_id INTEGER NOT NULL REFERENCES stories(id),
    related_id INTEGER NOT NULL,         -- may not be archived (yet)
    url TEXT,
    title TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    removed_at TEXT,                     -- set when a later parse of story_id no longer lists it
    first_run_id INTEGER REFERENCES runs(id),
    removed_run_id INTEGER REFERENCES runs(id),
    PRIMARY KEY (story_id, related_id)
);
CREATE INDEX related_links_target ON related_links(related_id);

CREATE TABLE tags (
    story_id INTEGER NOT NULL REFERENCES stories(id),
    name TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (story_id, name)
);
CREATE INDEX tags_name ON tags(name);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES runs(id),
    kind TEXT NOT NULL,                  -- story_new | story_updated | ... | parser_degraded
    subject_type TEXT NOT NULL,          -- story | image | run
    subject_id INTEGER,
    url TEXT,
    title TEXT,
    from_version INTEGER,
    to_version INTEGER,
    changed_fields TEXT,                 -- JSON list
    summary TEXT NOT NULL,
    diff TEXT,                           -- JSON: field -> paragraph-level diff
    detected_at TEXT NOT NULL,
    audience TEXT NOT NULL DEFAULT 'subscriber',  -- subscriber | operator
    held INTEGER NOT NULL DEFAULT 0,     -- 1 while parser health holds subscriber alerts
    alerted_at TEXT,                     -- when it was put in an outbox mail
    UNIQUE (run_id, kind, subject_type, subject_id)
);
CREATE INDEX events_detected ON events(detected_at);
CREATE INDEX events_kind ON events(kind);
CREATE INDEX events_subject ON events(subject_type, subject_id);
CREATE INDEX events_unalerted ON events(run_id) WHERE alerted_at IS NULL;

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,     -- stable: a retried mail keeps its Message-ID
    kind TEXT NOT NULL,                  -- digest | immediate | operator | test
    run_id INTEGER REFERENCES runs(id),
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,            -- JSON list
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT,
    status TEXT NOT NULL DEFAULT 'pending',  -- pending | sending | sent | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX outbox_status ON outbox(status, next_attempt_at);
"""


FTS_COLUMNS = ("title", "subtitle", "body_text", "captions")

# sqlite-utils' own update trigger fires on every UPDATE, so touching last_seen on a revisit would
# rewrite the story's index entry; these fire only when an indexed column changes.
FTS_TRIGGERS = """
CREATE TRIGGER stories_ai AFTER INSERT ON stories BEGIN
  INSERT INTO stories_fts (rowid, title, subtitle, body_text, captions)
  VALUES (new.rowid, new.title, new.subtitle, new.body_text, new.captions);
END;
CREATE TRIGGER stories_ad AFTER DELETE ON stories BEGIN
  INSERT INTO stories_fts (stories_fts, rowid, title, subtitle, body_text, captions)
  VALUES ('delete', old.rowid, old.title, old.subtitle, old.body_text, old.captions);
END;
CREATE TRIGGER stories_au AFTER UPDATE OF title, subtitle, body_text, captions ON stories BEGIN
  INSERT INTO stories_fts (stories_fts, rowid, title, subtitle, body_text, captions)
  VALUES ('delete', old.rowid, old.title, old.subtitle, old.body_text, old.captions);
  INSERT INTO stories_fts (rowid, title, subtitle, body_text, captions)
  VALUES (new.rowid, new.title, new.subtitle, new.body_text, new.captions);
END;
"""


def _execute_script(db: sqlite_utils.Database, script: str) -> None:
    """Run statements one by one: executescript() would commit the migration's transaction."""
    for statement in _split_sql(script):
        db.execute(statement)


def _split_sql(script: str) -> list[str]:
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return [s for s in statements if s and not s.startswith("--")]


def _v1(db: sqlite_utils.Database) -> None:
    _execute_script(db, SCHEMA_V1)
    db["stories"].enable_fts(list(FTS_COLUMNS), fts_version="FTS5", tokenize="porter")
    _execute_script(db, FTS_TRIGGERS)


SCHEMA_V2 = """
CREATE TABLE index_pages (
    key TEXT PRIMARY KEY,               -- path and query of a feed or listing page (host-independent)
    page_type TEXT NOT NULL,            -- feed | listing
    etag TEXT,                          -- validators of the last parsed copy, for conditional GET
    last_modified TEXT,
    next_page TEXT,                     -- path and query of its next listing page, followed on a 304
    last_fetched TEXT NOT NULL
);
"""


SCHEMA_V3 = """
ALTER TABLE index_pages ADD COLUMN raw_sha256 TEXT;  -- last parsed copy (raw_pages): a 304 still lists what it listed
"""

SCHEMA_V4 = """
ALTER TABLE runs ADD COLUMN detected_at TEXT;  -- when its change detection committed; NULL: not yet (caught up later)
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;  -- the sending process (pid@boot/pid namespace)
"""

SCHEMA_V5 = """
CREATE TABLE known_pages (  -- story and photo pages heard of (a link, an inline photo, a listing item) before archived
    page_type TEXT NOT NULL,            -- story | photo
    id INTEGER NOT NULL,                -- article id (story) or media id (photo)
    url TEXT,                           -- the link it was heard of by (NULL: a photo page named only by its media id)
    heard_from TEXT NOT NULL,           -- story:<id> (related link, inline photo), feed:<key>, listing:<key>
    first_heard TEXT NOT NULL,          -- when a stored page first named it
    first_run_id INTEGER REFERENCES runs(id),
    last_heard TEXT NOT NULL,           -- when a stored page last named it
    attempts INTEGER NOT NULL DEFAULT 0,  -- fetches of it that did not archive it (5xx, timeout, 403, 404...)
    last_attempt TEXT,                  -- when the last of those was
    last_outcome TEXT,                  -- its outcome (fetches.outcome, or parse_error)
    missing_since TEXT,                 -- first 404/410 of the current absence
    missing_run_id INTEGER REFERENCES runs(id),  -- the run of that first 404/410
    gone_at TEXT,                       -- confirmed gone: a 404/410 again on a later run; no longer due
    archived_at TEXT,                   -- when a fetch first archived it; NULL (and not gone): still due
    PRIMARY KEY (page_type, id)
);
CREATE INDEX known_pages_due ON known_pages(first_heard) WHERE archived_at IS NULL;
"""

SCHEMA_V7 = """
CREATE TABLE frontier (  -- the budgeted crawl frontier: one row per archived story or photo page, what to fetch next
    page_type TEXT NOT NULL,            -- story | photo
    subject_id INTEGER NOT NULL,        -- article id or media id
    url TEXT NOT NULL,
    kind TEXT,                          -- the story's kind (its listing), NULL for photo pages
    published TEXT,                     -- publication date: a page's age sets its prior change rate
    urgency INTEGER NOT NULL DEFAULT 0, -- 3 removal unconfirmed, 2 not archived yet, 1 gone from its listing, 0 none
    due_at TEXT NOT NULL,               -- when its next revisit is due (expected change rate and budget)
    change_rate REAL,                   -- estimated changes per day (age prior blended with the page's own history)
    checks INTEGER NOT NULL DEFAULT 0,  -- answered fetches counted by the estimator (past the fresh window)
    changes INTEGER NOT NULL DEFAULT 0, -- of those, fetches that showed a new version
    observed_days REAL NOT NULL DEFAULT 0,  -- time those checks covered
    version INTEGER,                    -- the version its last answered fetch showed
    last_checked TEXT,                  -- last fetch of any outcome
    verified_at TEXT,                   -- last time the site answered for it (200, 304, 404 or 410)
    listed_at TEXT,                     -- last time a listing enumeration showed it (stories)
    added_at TEXT,                      -- when it entered the frontier (a listing walk begun earlier cannot miss it)
    band INTEGER NOT NULL DEFAULT 0,    -- 2 fresh, 1 changed before, 0 rest, -1 photo a live story shows; higher first
    PRIMARY KEY (page_type, subject_id)
);
CREATE INDEX frontier_due ON frontier(urgency, band, due_at);
CREATE INDEX frontier_verified ON frontier(verified_at);
CREATE INDEX frontier_listed ON frontier(kind, listed_at);
CREATE INDEX fetches_time ON fetches(fetched_at);

CREATE TABLE frontier_state (  -- the frontier's small shared state: last index check, revisit scale, listing cursors
    key TEXT PRIMARY KEY,               -- index_at | scale | scale_at | listing:<kind> (enumeration cursor)
    value TEXT NOT NULL                 -- JSON
);
"""

# Text edited out of a story stays findable (``search --all-versions``). The current text is in
# stories_fts already; only the versions a story has moved on from are indexed here, so the index
# grows with edits, not with the archive (most stories never change). Its rowid is story_versions.id.
# A version is retired into it by a trigger the moment a story's current_version moves on (whatever
# writes: the crawler, the distributed writer, reparse), and re-indexed when reparse rewrites it.
PAST_VERSIONS_CAPTIONS = """(SELECT group_concat(json_extract(i.value, '$.caption'), char(10))
      FROM json_each(v.record, '$.images') AS i WHERE coalesce(json_extract(i.value, '$.caption'), '') <> '')"""
SCHEMA_V8 = f"""
CREATE VIRTUAL TABLE IF NOT EXISTS story_versions_fts USING fts5(title, subtitle, body_text, captions,
    tokenize='porter');
CREATE TRIGGER IF NOT EXISTS story_versions_fts_retire
AFTER UPDATE OF current_version ON stories
WHEN old.current_version IS NOT NULL AND new.current_version IS NOT old.current_version BEGIN
  INSERT INTO story_versions_fts (rowid, title, subtitle, body_text, captions)
  SELECT v.id, v.title, v.subtitle, v.body_text, {PAST_VERSIONS_CAPTIONS}
  FROM story_versions v WHERE v.story_id = old.id AND v.version = old.current_version
    AND NOT EXISTS (SELECT 1 FROM story_versions_fts f WHERE f.rowid = v.id);
END;
CREATE TRIGGER IF NOT EXISTS story_versions_fts_reparse
AFTER UPDATE OF title, subtitle, body_text, record ON story_versions
WHEN EXISTS (SELECT 1 FROM story_versions_fts f WHERE f.rowid = new.id) BEGIN
  DELETE FROM story_versions_fts WHERE rowid = new.id;
  INSERT INTO story_versions_fts (rowid, title, subtitle, body_text, captions)
  SELECT v.id, v.title, v.subtitle, v.body_text, {PAST_VERSIONS_CAPTIONS} FROM story_versions v WHERE v.id = new.id;
END;
"""

SCHEMA_V6 = """
ALTER TABLE fetches ADD COLUMN request_headers TEXT;   -- JSON [[name, value], ...] as sent; NULL before schema v6
ALTER TABLE fetches ADD COLUMN response_headers TEXT;  -- JSON [[name, value], ...] as received; NULL before schema v6
ALTER TABLE fetches ADD COLUMN source TEXT;            -- where the response came from: NULL live crawl | warc | wayback
ALTER TABLE fetches ADD COLUMN source_ref TEXT;        -- WARC file and record offset, or Wayback timestamp and URL
ALTER TABLE fetches ADD COLUMN source_key TEXT;  -- the imported capture's identity (WARC-Record-ID, Wayback capture)
ALTER TABLE fetches ADD COLUMN historical INTEGER NOT NULL DEFAULT 0;  -- 1: an import older than the page's known state
CREATE UNIQUE INDEX fetches_source_key ON fetches(source_key) WHERE source_key IS NOT NULL;
ALTER TABLE events ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;  -- 1: found in imported history, never mailed
"""

# Digests per subscriber and what a mail shows beyond the diff (issue 13's digest part; issue 13's
# search part took step 8).
SCHEMA_V9 = """
ALTER TABLE events ADD COLUMN details TEXT;  -- JSON: what a mail shows beyond the diff (opening, last text, figures)

CREATE TABLE subscribers (
    address TEXT PRIMARY KEY,           -- a [[subscribers]] address as configured
    since_event_id INTEGER NOT NULL,    -- events up to this id came before the subscription: never mailed to it
    added_at TEXT NOT NULL,
    last_digest_at TEXT                 -- last digest queued; with `at`: also a digest time passed with nothing to send
);

CREATE TABLE subscriber_events (
    address TEXT NOT NULL REFERENCES subscribers(address),
    event_id INTEGER NOT NULL REFERENCES events(id),
    outbox_id INTEGER REFERENCES outbox(id),  -- the digest that carried it; NULL: its filter left it out
    queued_at TEXT NOT NULL,
    PRIMARY KEY (address, event_id)
);
"""

# Listing checks (issue 12): the site's listing order, learned from the pages, lets a walk read one listing
# page in ``listing_stride`` and still notice every story gone from it (``monitor.listings``).
SCHEMA_V10 = """
ALTER TABLE frontier ADD COLUMN listing_key REAL;  -- its place in its listing (larger: newer); NULL: not learned
ALTER TABLE frontier ADD COLUMN delisted_at TEXT;  -- when a listing check found it gone from its listing; NULL: listed
CREATE INDEX frontier_listing ON frontier(kind, listing_key) WHERE delisted_at IS NULL;
"""

# Every table's DDL with its comments, for generated docs and Datasette descriptions.
SCHEMA_TEXT = (SCHEMA_V1 + SCHEMA_V2 + SCHEMA_V3 + SCHEMA_V4 + SCHEMA_V5 + SCHEMA_V6 + SCHEMA_V7 + SCHEMA_V9
               + SCHEMA_V10)


def _add_missing(db: sqlite_utils.Database, script: str) -> None:
    """Run a step's ``ALTER TABLE ... ADD COLUMN`` and ``CREATE ... INDEX`` statements, skipping a column
    or index that is already there: steps are numbered ahead of the work and merged from branches in
    any order, so a step may meet an archive that another build has already given part of it."""
    for statement in _split_sql(script):
        added = re.match(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", statement)
        if added and added.group(2) in {row[1] for row in db.execute(f"PRAGMA table_info({added.group(1)})")}:
            continue
        db.execute(statement.replace("CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX IF NOT EXISTS ", 1)
                   .replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))


def _v2(db: sqlite_utils.Database) -> None:
    """Validators of feeds and listings: an unchanged site's revisit is then almost all 304s."""
    _execute_script(db, SCHEMA_V2)


def _v3(db: sqlite_utils.Database) -> None:
    """A 304 feed or listing was only followed to its next page: stories it listed that an
    interrupted or capped run never fetched stayed undiscovered until the page changed."""
    _execute_script(db, SCHEMA_V3)


def _v4(db: sqlite_utils.Database) -> None:
    """A run killed between storing its pages and detecting their changes lost those changes: the next
    run compared with what the dead run had stored. ``runs.detected_at`` says which runs still need
    detection; every run before this version is taken as done (there is no telling which were not).
    A mail whose sender died mid-send waited out its whole lease: ``outbox.claimed_by`` names the sender."""
    _execute_script(db, SCHEMA_V4)
    db.execute("UPDATE runs SET detected_at = COALESCE(ended_at, started_at)")


def _v5(db: sqlite_utils.Database) -> None:
    """A page the archive had heard of (a related-story link, an inline photo) was lost when the run
    that heard of it died or could not fetch it: the referrer answered 304 from then on and was not
    parsed again. ``known_pages`` keeps such pages due until they are archived or confirmed gone.

    Idempotent (the table is made once, rows are ``INSERT OR IGNORE``), so a merge that numbers steps
    differently can run it again harmlessly. Archives from before it are seeded with what they already
    know and have not archived: current related links and images only ever seen inline."""
    if "known_pages" not in db.table_names():
        _execute_script(db, SCHEMA_V5)
    for story_id, related_id, url, first_seen, run_id in db.execute(
        """SELECT story_id, related_id, url, first_seen, first_run_id FROM related_links
           WHERE removed_at IS NULL AND related_id NOT IN (SELECT id FROM stories)"""
    ).fetchall():
        page_url = db.execute("SELECT url FROM stories WHERE id = ?", [story_id]).fetchone()
        if url and page_url and not same_site(url, page_url[0]):
            continue  # a related link to another host: never fetched, so never due
        db.execute(
            """INSERT OR IGNORE INTO known_pages (page_type, id, url, heard_from, first_heard, first_run_id, last_heard)
               VALUES ('story', ?, ?, ?, ?, ?, ?)""",
            [related_id, url, f"story:{story_id}", first_seen, run_id, first_seen],
        )
    db.execute(
        """INSERT OR IGNORE INTO known_pages (page_type, id, url, heard_from, first_heard, first_run_id, last_heard)
           SELECT 'photo', i.media_id, i.page_url,
                  'story:' || COALESCE((SELECT MIN(s.story_id) FROM story_images s WHERE s.media_id = i.media_id), ''),
                  i.first_seen, i.first_run_id, i.last_seen
           FROM images i WHERE i.source = 'inline'"""
    )


def _v6(db: sqlite_utils.Database) -> None:
    """Web-archive interchange (WARC export, WARC/WACZ/Wayback import): a faithful WARC record needs
    the headers as sent and received, and every imported response must say where it came from.
    Fetches stored before this version keep NULL headers: an export rebuilds the few it knows
    (Content-Type, ETag, Last-Modified, Content-Length) and says so in the record."""
    _add_missing(db, SCHEMA_V6)

def _v7(db: sqlite_utils.Database) -> None:
    """The budgeted crawl frontier: per-page revisit state (next due time, change-rate estimate, last
    verification, last listing sighting), indexed so the next due batch is a short index range even at
    400,000 pages. Existing pages enter it due in the order they were last fetched, this week's stories
    in the first band, so the backlog of a whole archive due at once cannot hold back fresh pages."""
    _execute_script(db, SCHEMA_V7)
    db.execute(
        """INSERT OR IGNORE INTO frontier (page_type, subject_id, url, kind, published, urgency, due_at,
                                            version, last_checked, verified_at, added_at, band)
           SELECT 'story', id, url, kind, published, CASE status WHEN 'missing' THEN 3 ELSE 0 END,
                  COALESCE(last_fetched, first_seen), current_version, last_fetched, last_fetched, first_seen,
                  CASE WHEN published >= date('now', '-7 days') THEN 2 ELSE 0 END
           FROM stories""")
    db.execute(
        """INSERT OR IGNORE INTO frontier (page_type, subject_id, url, published, urgency, due_at,
                                            version, last_checked, verified_at, added_at)
           SELECT 'photo', media_id, page_url, published, CASE status WHEN 'missing' THEN 3 ELSE 0 END,
                  COALESCE(last_fetched, first_seen), current_version, last_fetched, last_fetched, first_seen
           FROM images WHERE source = 'photo_page' AND page_url IS NOT NULL""")


def _v8(db: sqlite_utils.Database) -> None:
    """Past versions into their own full-text index (see SCHEMA_V8), filled with every version an
    archive already has that is not its story's current one."""
    _execute_script(db, SCHEMA_V8)
    db.execute(f"""INSERT INTO story_versions_fts (rowid, title, subtitle, body_text, captions)
                   SELECT v.id, v.title, v.subtitle, v.body_text, {PAST_VERSIONS_CAPTIONS}
                   FROM story_versions v JOIN stories s ON s.id = v.story_id
                   WHERE v.version IS NOT s.current_version
                     AND NOT EXISTS (SELECT 1 FROM story_versions_fts f WHERE f.rowid = v.id)""")


def _v9(db: sqlite_utils.Database) -> None:
    """Digests per subscriber (``[[subscribers]]``: their kinds, sections, keywords and cadence) need to
    know what each one was already sent; mails show what a reader needs beyond the diff (``details``)."""
    if "details" in {c.name for c in db["events"].columns}:
        return  # idempotent: a merge that numbers the steps differently may run it again
    _execute_script(db, SCHEMA_V9)


def _v10(db: sqlite_utils.Database) -> None:
    """Listing checks: a walk that reads one listing page in ``listing_stride`` needs each story's place in its
    listing. Existing stories have none until the first walk (which reads every page) gives it."""
    _add_missing(db, SCHEMA_V10)


# Steps by number; append new ones, never edit a released one. Numbers are assigned to pieces of
# work ahead of time, so a branch may carry a later step before an earlier one exists: an archive
# is brought up step by step over the numbers present, and a missing number is no step at all.
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {
    1: _v1, 2: _v2, 3: _v3, 4: _v4, 5: _v5, 6: _v6, 7: _v7, 8: _v8, 9: _v9, 10: _v10,
}
SCHEMA_VERSION = max(MIGRATIONS)


class ArchiveTooNew(RuntimeError):
    """The archive was written by a newer defwatch; refuse rather than risk it."""


def migrate(db: sqlite_utils.Database) -> int:
    """Bring the archive to SCHEMA_VERSION; return the version it had before."""
    current = db.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise ArchiveTooNew(
            f"archive schema version {current} is newer than this defwatch supports ({SCHEMA_VERSION}); "
            "upgrade defwatch"
        )
    for number in sorted(n for n in MIGRATIONS if n > current):
        with db.atomic():  # one transaction per step: a crash leaves the previous version intact
            MIGRATIONS[number](db)
            db.execute(f"PRAGMA user_version = {number}")
    return current


class ArchiveUnavailable(RuntimeError):
    """The archive cannot be opened or written: a read-only file, directory or file system, a full
    disk, an I/O error. The message is one line naming the file and the problem, for the operator.
    ``not_an_archive``: the path names something that is no archive at all (bad input, not a fault)."""

    def __init__(self, message: str, *, not_an_archive: bool = False) -> None:
        super().__init__(message)
        self.not_an_archive = not_an_archive


# SQLite's result codes (and their extended forms, e.g. SQLITE_IOERR_WRITE) that are about the file
# and the machine, not about defwatch's SQL: these end a run with a one-line error, not a traceback.
_STORAGE_HINTS = {
    "SQLITE_READONLY": "the archive, its directory or its file system is read-only",
    "SQLITE_CANTOPEN": "the archive's directory is missing or read-only (WAL mode creates -wal and -shm files)",
    "SQLITE_PERM": "permission denied",
    "SQLITE_FULL": "the disk is full",
    "SQLITE_IOERR": "the disk is full or failing, or the file hit a size limit",
    "SQLITE_NOTADB": "the file is not a SQLite archive",
    "SQLITE_CORRUPT": "the file is damaged; restore it from a backup",
}


def storage_problem(path: str, exc: BaseException) -> ArchiveUnavailable | None:
    """``exc`` as an ``ArchiveUnavailable`` when it is a storage problem; None for any other error."""
    if isinstance(exc, ArchiveUnavailable):
        return exc
    name = getattr(exc, "sqlite_errorname", None) or ""
    hint = next((text for code, text in _STORAGE_HINTS.items() if name == code or name.startswith(code + "_")), None)
    if not isinstance(exc, sqlite3.Error) or hint is None:
        return None
    if name == "SQLITE_NOTADB":
        return ArchiveUnavailable(f"{path} is not a defwatch archive: {exc}; {hint}", not_an_archive=True)
    return ArchiveUnavailable(f"cannot write the archive {path}: {exc}; {hint}")


def is_storage_error(exc: BaseException) -> bool:
    """A read-only archive, a full disk, an I/O error: nothing more can be stored, whatever is tried."""
    return storage_problem("", exc) is not None


@contextmanager
def storage_errors(path: str) -> Iterator[None]:
    """Turn SQLite's storage errors (read-only, disk full, I/O) inside the block into ``ArchiveUnavailable``."""
    try:
        yield
    except sqlite3.Error as exc:
        problem = storage_problem(path, exc)
        if problem is None:
            raise
        raise problem from exc


def connect(path: str, *, readonly: bool = False, timeout: float = 30.0) -> sqlite_utils.Database:
    """Open the archive in WAL mode so analysts can read while the crawler writes.

    Raises ``ArchiveUnavailable`` when the file cannot be opened or upgraded (a read-only directory
    or file system, a full disk); ``check_writable`` tells whether it can be written at all.
    """
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
        return sqlite_utils.Database(conn)
    with storage_errors(path):
        # Autocommit mode: every transaction is an explicit ``db.atomic()`` block (savepoints when nested).
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            db = sqlite_utils.Database(conn)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
            migrate(db)
        except BaseException:
            conn.close()
            raise
    return db


def check_writable(db: sqlite_utils.Database, path: str) -> None:
    """Raise ``ArchiveUnavailable`` unless the archive can be written, without writing anything.

    SQLite opens a file it may not write read-only, without a word, and only the first write fails:
    for a crawl, after the site was fetched. An empty write transaction finds out first. A busy
    archive (another writer holds the lock) is writable: that is not waited for here.
    """
    conn = db.conn
    conn.execute("PRAGMA busy_timeout=0")
    try:
        with storage_errors(path):
            conn.execute("BEGIN")
            try:
                conn.execute("DELETE FROM runs WHERE 0")
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorname", "") != "SQLITE_BUSY":
                    raise
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
    finally:
        conn.execute("PRAGMA busy_timeout=30000")


class ArchiveUnreadable(RuntimeError):
    """The path is not an archive that can be read: a directory, an empty file, a file that is not
    SQLite or not defwatch's. One line naming the file and the problem."""


def connect_for_reading(path: str, *, timeout: float = 30.0) -> sqlite_utils.Database:
    """Open an existing archive to read it, changing nothing: no file created, no schema written.

    ``mode=rw`` rather than ``mode=ro`` where the file may be written: both refuse to create the
    file, but a read-only connection to a WAL archive leaves behind the -wal and -shm files it had
    to create, which the last read-write connection removes on closing. ``query_only`` keeps the
    connection from writing either way. An older archive is read as it is (not migrated); queries
    that need a later table check for it.
    """
    target = Path(path)
    if target.is_dir():
        raise ArchiveUnreadable(f"{path} is a directory, not an archive file")
    if not target.exists():
        raise ArchiveUnreadable(f"no archive at {path}")
    writable = os.access(target, os.W_OK) and os.access(target.resolve().parent, os.W_OK)
    uri = f"{target.resolve().as_uri()}?mode={'rw' if writable else 'ro'}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ArchiveUnreadable(f"cannot open {path}: {exc}") from exc
    try:
        conn.execute("PRAGMA query_only=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        has_stories = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stories'").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        hint = _STORAGE_HINTS.get(getattr(exc, "sqlite_errorname", ""), "")
        raise ArchiveUnreadable(f"cannot read {path}: {exc}" + (f"; {hint}" if hint else "")) from exc
    if version > SCHEMA_VERSION:
        conn.close()
        raise ArchiveTooNew(f"archive schema version {version} is newer than this defwatch supports "
                            f"({SCHEMA_VERSION}); upgrade defwatch")
    if not has_stories:
        conn.close()
        what = "an empty file" if target.stat().st_size == 0 else "a SQLite file without defwatch's tables"
        raise ArchiveUnreadable(f"{path} is not a defwatch archive ({what}); `defwatch crawl --db {path}` makes one")
    return sqlite_utils.Database(conn)
