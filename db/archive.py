"""Writing crawl results into the archive.

One call, ``Archive.save_response``, stores everything one HTTP response produced (the raw body,
the fetch log row, and for a parsed story or photo the current state, the version and the links)
inside one transaction. A crawl killed at any point therefore leaves either the whole response or
none of it, never a version without its fetch or a fetch pointing at a missing body.

The crawler never decides what is a *change*: it records what it saw, and ``monitor/`` compares a
run's fetches with the state before the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import sqlite_utils
from isal import isal_zlib

from core.clock import boot_time, utcnow
from core.fetch import FetchInfo, SaveResult
from core.process import pid_alive
from core.records import Feed, Listing, Photo, Record, Story
from core.urls import index_key, same_site
from db import queries
from db.rows import image_columns, marks, read_raw, story_columns, write_tags
from db.schema import check_writable, connect
from db.versions import content_hash, image_content, story_content

# How raw pages are compressed. History: zlib level 6 until a7687ae (5.8 ms a 130-150 KiB page, the
# largest CPU cost of a crawl), then zlib level 1 (2.2 ms; raw_pages about 16% larger). Now ISA-L's
# deflate (python-isal) at its level 2, which writes the same zlib stream (RFC 1950) that
# zlib.decompress reads, as every stored row is and users' scripts expect; rows of any earlier level
# read the same. Why: on the sample site's real-size pages (130-147 KiB) it takes 0.24 ms a page where
# zlib's level 1 took 1.2-1.4 ms (the largest CPU cost left in the archive writer), and the rows come
# out slightly smaller (25.0% of the page; 25.2% at zlib level 1). Measured December 2026, load 6,
# best of 15 (bench/crawl_speed.py shows the writer's CPU a page).
RAW_ISAL_LEVEL = 2


class Archive:
    """The archive's write side. Reads for the CLI and the monitor live in ``db.queries``."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db

    @classmethod
    def open(cls, path: str) -> Archive:
        """Open for writing; ``ArchiveUnavailable`` at once if the archive cannot be written."""
        db = connect(path)
        try:
            check_writable(db, path)
        except BaseException:
            db.conn.close()
            raise
        return cls(db)

    def close(self) -> None:
        self.db.conn.close()

    # -- runs ---------------------------------------------------------------------------------

    def start_run(self, mode: str, site: str) -> int:
        with self.db.atomic():
            self._close_stale_runs()
            cursor = self.db.execute(
                "INSERT INTO runs (mode, site, started_at, status, pid) VALUES (?, ?, ?, 'running', ?)",
                [mode, site, utcnow(), os.getpid()],
            )
        return int(cursor.lastrowid)

    def _close_stale_runs(self) -> None:
        """Runs left 'running' by a process that no longer exists (kill -9, power loss) were interrupted.

        A run started before this machine booted is over whatever its pid says: after a reboot the
        pid may belong to another process, which would keep the run 'running' for good."""
        booted = boot_time()
        rows = self.db.execute("SELECT id, pid, started_at FROM runs WHERE status = 'running'").fetchall()
        for run_id, pid, started_at in rows:
            if pid is None or not pid_alive(pid) or (booted is not None and started_at < booted):
                self.db.execute(
                    "UPDATE runs SET status = 'interrupted', ended_at = ? WHERE id = ?", [utcnow(), run_id]
                )

    def finish_run(self, run_id: int, status: str, stats: dict[str, Any]) -> None:
        with self.db.atomic():
            self.db.execute(
                "UPDATE runs SET status = ?, ended_at = ?, stats = ? WHERE id = ?",
                [status, utcnow(), json.dumps(stats, sort_keys=True), run_id],
            )

    # -- responses ----------------------------------------------------------------------------

    def save_response(
        self, run_id: int, fetch: FetchInfo, body: bytes | None = None, record: Record | None = None
    ) -> SaveResult:
        """Store one response and what was parsed from it, atomically."""
        seen_at = fetch.fetched_at or utcnow()
        with self.db.atomic():
            historical = self._historical(fetch, seen_at)
            sha = self._store_raw(body, fetch.content_type, seen_at) if body else None
            fetch_id = self._insert_fetch(run_id, fetch, sha, len(body) if body else None, seen_at, record,
                                          historical)
            result = SaveResult(fetch_id)
            if fetch.outcome == "ok" and isinstance(record, Story):
                result = self._store_story(record, run_id, fetch_id, sha, fetch, seen_at, historical)
            elif fetch.outcome == "ok" and isinstance(record, Photo):
                result = self._store_photo(record, run_id, fetch_id, sha, fetch, seen_at, historical)
            elif historical:
                pass  # an older capture of a page whose later state is known: history, never its state
            elif fetch.outcome == "ok" and isinstance(record, Listing | Feed):
                self._store_index(fetch, record, seen_at, sha)
                self._hear_of_items(record, fetch, run_id, seen_at)
            elif fetch.outcome == "not_modified" and fetch.subject_id is not None:
                result.version = self._touch(fetch.page_type, fetch.subject_id, run_id, seen_at)
            else:
                self._note_attempt(fetch.page_type, fetch.subject_id, seen_at)
            if result.version is None and fetch.page_type in ("story", "photo") and fetch.subject_id is not None:
                self._note_known_attempt(fetch, record, run_id, seen_at)
            if result.version is not None:
                self.db.execute("UPDATE fetches SET version = ? WHERE id = ?", [result.version, fetch_id])
        return result

    def _store_raw(self, body: bytes, content_type: str | None, seen_at: str) -> str:
        """The body under its SHA-256, compressed once: a body stored before (a page unchanged since
        an earlier run) is not compressed again only to be ignored."""
        sha = hashlib.sha256(body).hexdigest()
        if self.db.execute("SELECT 1 FROM raw_pages WHERE sha256 = ?", [sha]).fetchone() is None:
            self.db.execute(
                "INSERT INTO raw_pages (sha256, content, content_type, size, first_seen) VALUES (?, ?, ?, ?, ?)",
                [sha, compress_raw(body), content_type, len(body), seen_at],
            )
        return sha

    def raw_body(self, sha256: str) -> bytes | None:
        return read_raw(self.db, sha256)

    def _insert_fetch(
        self, run_id: int, fetch: FetchInfo, sha: str | None, size: int | None, seen_at: str, record: Record | None,
        historical: bool = False,
    ) -> int:
        parse_status, error = None, fetch.error
        if record is not None:
            parse_status = "parse_error" if record.type == "error" else "parsed"
            if getattr(record, "extraction", "template") == "generic":
                parse_status = "generic"  # the template is gone: see monitor.changes (parser_degraded)
            if record.type == "error":
                error = error or f"{record.reason}: {record.detail}"  # type: ignore[union-attr]
        cursor = self.db.execute(
            """INSERT INTO fetches (run_id, url, final_url, page_type, subject_id, status, outcome, parse_status,
                   error, etag, last_modified, bytes, sha256, elapsed_ms, fetched_at, request_headers,
                   response_headers, source, source_ref, source_key, historical)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [run_id, fetch.url, fetch.final_url, fetch.page_type, fetch.subject_id, fetch.status, fetch.outcome,
             parse_status, error, fetch.etag, fetch.last_modified, size, sha, fetch.elapsed_ms, seen_at,
             _headers_json(fetch.request_headers), _headers_json(fetch.response_headers), fetch.source,
             fetch.source_ref, fetch.source_key, int(historical)],
        )
        return int(cursor.lastrowid)

    # -- stories ------------------------------------------------------------------------------

    def _store_story(
        self, story: Story, run_id: int, fetch_id: int, sha: str | None, fetch: FetchInfo, seen_at: str,
        historical: bool = False,
    ) -> SaveResult:
        record = story.to_dict()
        digest = content_hash(story_content(record))
        new_subject = self.db.execute("SELECT 1 FROM stories WHERE id = ?", [story.id]).fetchone() is None
        version, new_version = self._upsert_version(
            "story_versions", "story_id", story.id, digest, run_id, fetch_id, sha, seen_at, record,
            {"title": story.title, "subtitle": story.subtitle, "byline": story.byline,
             "published": story.published, "body_text": story.body_text}, historical=historical,
        )
        if historical:
            return SaveResult(fetch_id, version, new_version, False)
        state = {
            "id": story.id, "url": story.url, **story_columns(record), "current_version": version,
            "last_seen": seen_at, "last_fetched": seen_at, "etag": fetch.etag, "last_modified": fetch.last_modified,
        }
        self._upsert_state("stories", "id", state, seen_at, run_id, new_subject)
        if story.extraction != "generic":  # the generic extractor reads the body only: what it cannot see is not gone
            self._store_story_images(story, run_id, seen_at)
            self._store_related(story, run_id, seen_at)
            write_tags(self.db, story.id, story.tags, seen_at)
        self._archived("story", story.id, seen_at)
        self._hear_of_links(story, fetch.final_url or fetch.url, run_id, seen_at)
        return SaveResult(fetch_id, version, new_version, new_subject)

    def _upsert_version(
        self, table: str, key: str, subject_id: int, digest: str, run_id: int, fetch_id: int,
        sha: str | None, seen_at: str, record: dict[str, Any], columns: dict[str, Any], historical: bool = False,
    ) -> tuple[int, bool]:
        row = self.db.execute(
            f"SELECT version FROM {table} WHERE {key} = ? AND content_hash = ?", [subject_id, digest]
        ).fetchone()
        if row and historical:
            self._widen_version(table, key, subject_id, int(row[0]), run_id, fetch_id, sha, seen_at)
            return int(row[0]), False
        if row:
            self.db.execute(
                f"UPDATE {table} SET last_seen = ?, last_run_id = ? WHERE {key} = ? AND version = ?",
                [seen_at, run_id, subject_id, row[0]],
            )
            return int(row[0]), False
        latest = self.db.execute(f"SELECT MAX(version) FROM {table} WHERE {key} = ?", [subject_id]).fetchone()[0]
        version = (latest or 0) + 1
        values = {
            key: subject_id, "version": version, "content_hash": digest, **columns,
            "record": json.dumps(record, ensure_ascii=False), "parser_version": record["parser_version"],
            "first_seen": seen_at, "last_seen": seen_at, "first_run_id": run_id, "last_run_id": run_id,
            "fetch_id": fetch_id, "raw_sha256": sha,
        }
        self._insert(table, values)
        return version, True

    def _widen_version(self, table: str, key: str, subject_id: int, version: int, run_id: int, fetch_id: int,
                       sha: str | None, seen_at: str) -> None:
        """An imported capture older than what the archive holds showed a known version: it was seen
        that early (or that late) too. Seen earlier, its provenance becomes that capture."""
        self.db.execute(
            f"""UPDATE {table} SET
                  fetch_id = CASE WHEN :at < first_seen THEN :fetch ELSE fetch_id END,
                  raw_sha256 = CASE WHEN :at < first_seen THEN :sha ELSE raw_sha256 END,
                  first_run_id = CASE WHEN :at < first_seen THEN :run ELSE first_run_id END,
                  first_seen = MIN(first_seen, :at), last_seen = MAX(last_seen, :at)
                WHERE {key} = :id AND version = :version""",
            {"at": seen_at, "fetch": fetch_id, "sha": sha, "run": run_id, "id": subject_id, "version": version},
        )

    def _historical(self, fetch: FetchInfo, seen_at: str) -> bool:
        """An imported capture no newer than what the archive last saw of the page: it adds history (a
        version, an earlier first-seen) but never replaces the page's current state, and change
        detection skips its fetch (``fetches.historical``), which otherwise reads a page's fetches in
        order as its timeline. A capture taken at the very time of the last fetch is that fetch seen
        again (an archive's own export re-imported), so it is history too."""
        if not fetch.source:
            return False
        if fetch.page_type in ("feed", "listing"):
            sql, params = "SELECT last_fetched FROM index_pages WHERE key = ?", [index_key(fetch.url)]
        elif fetch.page_type == "story" and fetch.subject_id is not None:
            sql, params = "SELECT COALESCE(last_fetched, last_seen) FROM stories WHERE id = ?", [fetch.subject_id]
        elif fetch.page_type == "photo" and fetch.subject_id is not None:
            sql = "SELECT COALESCE(last_fetched, last_seen) FROM images WHERE media_id = ? AND source = 'photo_page'"
            params = [fetch.subject_id]
        else:
            return False
        row = self.db.execute(sql, params).fetchone()
        return bool(row) and row[0] is not None and row[0] >= seen_at

    def _upsert_state(
        self, table: str, key: str, state: dict[str, Any], seen_at: str, run_id: int, new_subject: bool
    ) -> None:
        if new_subject:
            self._insert(table, {**state, "first_seen": seen_at, "first_run_id": run_id})
        else:
            self._update(table, key, state)

    def _store_story_images(self, story: Story, run_id: int, seen_at: str) -> None:
        current: list[int] = []
        for position, image in enumerate(story.images):
            if image.media_id is None or image.media_id in current:
                continue
            current.append(image.media_id)
            self._ensure_inline_image(image, run_id, seen_at)
            self.db.execute(
                """INSERT INTO story_images (story_id, media_id, position, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (story_id, media_id)
                   DO UPDATE SET position = excluded.position, last_seen = excluded.last_seen""",
                [story.id, image.media_id, position, seen_at, seen_at],
            )
        self.db.execute(
            f"DELETE FROM story_images WHERE story_id = ? AND media_id NOT IN ({marks(current)})", [story.id, *current]
        )

    def _ensure_inline_image(self, image: Any, run_id: int, seen_at: str) -> None:
        """An image first met inline gets a row; a photo page, when fetched, owns its fields."""
        row = self.db.execute("SELECT source FROM images WHERE media_id = ?", [image.media_id]).fetchone()
        fields = {"media_id": image.media_id, **image_columns(asdict(image))}
        if row is None:
            self._insert(
                "images",
                {**fields, "source": "inline", "first_seen": seen_at, "last_seen": seen_at, "first_run_id": run_id},
            )
        elif row[0] == "inline":
            self._update("images", "media_id", {**fields, "last_seen": seen_at})

    def _store_related(self, story: Story, run_id: int, seen_at: str) -> None:
        current = {}
        for link in story.related:
            if link.id != story.id:
                current.setdefault(link.id, link)
        for link in current.values():
            self.db.execute(
                """INSERT INTO related_links (story_id, related_id, url, title, first_seen, last_seen, first_run_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (story_id, related_id) DO UPDATE SET
                     url = excluded.url, title = excluded.title, last_seen = excluded.last_seen,
                     first_run_id = CASE WHEN removed_at IS NULL THEN first_run_id ELSE excluded.first_run_id END,
                     first_seen = CASE WHEN removed_at IS NULL THEN first_seen ELSE excluded.first_seen END,
                     removed_at = NULL, removed_run_id = NULL""",
                [story.id, link.id, link.url, link.title, seen_at, seen_at, run_id],
            )
        self.db.execute(
            f"""UPDATE related_links SET removed_at = ?, removed_run_id = ?
                WHERE story_id = ? AND removed_at IS NULL AND related_id NOT IN ({marks(current)})""",
            [seen_at, run_id, story.id, *current],
        )

    # -- photos -------------------------------------------------------------------------------

    def _store_photo(
        self, photo: Photo, run_id: int, fetch_id: int, sha: str | None, fetch: FetchInfo, seen_at: str,
        historical: bool = False,
    ) -> SaveResult:
        if photo.media_id is None:
            return SaveResult(fetch_id)
        record = photo.to_dict()
        digest = content_hash(image_content(record))
        row = self.db.execute("SELECT source FROM images WHERE media_id = ?", [photo.media_id]).fetchone()
        version, new_version = self._upsert_version(
            "image_versions", "media_id", photo.media_id, digest, run_id, fetch_id, sha, seen_at, record,
            {"title": photo.title, "caption": photo.caption, "credit": photo.credit}, historical=historical,
        )
        if historical:
            return SaveResult(fetch_id, version, new_version, False)
        state = {
            "media_id": photo.media_id, **image_columns(record), "source": "photo_page", "current_version": version,
            "last_seen": seen_at, "last_fetched": seen_at, "etag": fetch.etag, "last_modified": fetch.last_modified,
        }
        self._upsert_state("images", "media_id", state, seen_at, run_id, row is None)
        self._archived("photo", photo.media_id, seen_at)
        return SaveResult(fetch_id, version, new_version, row is None)

    # -- pages heard of, not archived yet -----------------------------------------------------
    # A related-story link, an inline photo or a feed/listing item names a page; until a fetch archives it,
    # it stays due in ``known_pages``, whatever happens to its referrer (a 304 from then on, a killed run)
    # or to its own fetches (a 500, a timeout, a block, a page cap). Written in the referrer's transaction,
    # so a stored referrer never exists without the pages it made known.

    def _hear_of_links(self, story: Story, page_url: str, run_id: int, seen_at: str) -> None:
        heard_from = f"story:{story.id}"
        for link in story.related:
            if link.id != story.id and same_site(link.url, page_url):
                self._hear_of("story", link.id, link.url, heard_from, run_id, seen_at)
        for image in story.images:
            if image.media_id is not None:
                self._hear_of("photo", image.media_id, image.page_url, heard_from, run_id, seen_at)

    def _hear_of_items(self, record: Listing | Feed, fetch: FetchInfo, run_id: int, seen_at: str) -> None:
        heard_from = f"{record.type}:{index_key(fetch.url)}"
        for item in record.items:
            if same_site(item.url, fetch.final_url or fetch.url):
                self._hear_of("story", item.id, item.url, heard_from, run_id, seen_at)

    def _hear_of(self, page_type: str, page_id: int, url: str | None, heard_from: str, run_id: int,
                 seen_at: str) -> None:
        """Note a page named by another one, unless it is archived already (then nothing is due)."""
        archived = ("SELECT 1 FROM stories WHERE id = :id" if page_type == "story"
                    else "SELECT 1 FROM images WHERE media_id = :id AND source = 'photo_page'")
        self.db.execute(
            f"""INSERT INTO known_pages (page_type, id, url, heard_from, first_heard, first_run_id, last_heard)
                SELECT :type, :id, :url, :from, :now, :run, :now WHERE NOT EXISTS ({archived})
                ON CONFLICT (page_type, id) DO UPDATE SET
                  last_heard = excluded.last_heard, url = COALESCE(excluded.url, known_pages.url)""",
            {"type": page_type, "id": page_id, "url": url, "from": heard_from, "now": seen_at, "run": run_id},
        )

    def _archived(self, page_type: str, page_id: int, seen_at: str) -> None:
        self.db.execute(
            "UPDATE known_pages SET archived_at = ? WHERE page_type = ? AND id = ? AND archived_at IS NULL",
            [seen_at, page_type, page_id],
        )

    def _note_known_attempt(self, fetch: FetchInfo, record: Record | None, run_id: int, seen_at: str) -> None:
        """A fetch of a page heard of that did not archive it: the page stays due, unless a 404/410 seen
        on two runs confirms it gone (as a removal is confirmed; one 404 may be a hiccup)."""
        row = self.db.execute(
            """SELECT missing_since, missing_run_id FROM known_pages
               WHERE page_type = ? AND id = ? AND archived_at IS NULL""",
            [fetch.page_type, fetch.subject_id],
        ).fetchone()
        if row is None:
            return
        missing_since, missing_run, gone_at = row[0], row[1], None
        if fetch.outcome in ("not_found", "gone"):
            if missing_since is None:
                missing_since, missing_run = seen_at, run_id
            elif missing_run != run_id:
                gone_at = seen_at
        elif fetch.outcome == "ok":  # it answered (with a page that did not parse): not absent
            missing_since = missing_run = None
        outcome = "parse_error" if fetch.outcome == "ok" and record is not None and record.type == "error" \
            else fetch.outcome
        self.db.execute(
            """UPDATE known_pages SET attempts = attempts + 1, last_attempt = ?, last_outcome = ?,
                 missing_since = ?, missing_run_id = ?, gone_at = COALESCE(gone_at, ?)
               WHERE page_type = ? AND id = ?""",
            [seen_at, outcome, missing_since, missing_run, gone_at, fetch.page_type, fetch.subject_id],
        )

    def _store_index(self, fetch: FetchInfo, record: Listing | Feed, seen_at: str, sha: str | None) -> None:
        next_page = record.next_page if isinstance(record, Listing) and record.items else None
        self.db.execute(
            """INSERT INTO index_pages (key, page_type, etag, last_modified, next_page, last_fetched, raw_sha256)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified,
                 next_page = excluded.next_page, last_fetched = excluded.last_fetched,
                 raw_sha256 = excluded.raw_sha256""",
            [index_key(fetch.url), record.type, fetch.etag, fetch.last_modified,
             index_key(next_page) if next_page else None, seen_at, sha],
        )

    def index_bodies(self) -> Iterator[tuple[str, bytes, str | None]]:
        """(key, last parsed copy, its Content-Type) of every feed and listing page a conditional
        GET may find unchanged (the ones with validators): what distributed workers follow on a 304."""
        rows = self.db.execute(
            """SELECT i.key, r.content, r.content_type FROM index_pages i JOIN raw_pages r ON r.sha256 = i.raw_sha256
               WHERE i.etag IS NOT NULL OR i.last_modified IS NOT NULL"""
        )
        for key_, content, content_type in rows:
            yield key_, zlib.decompress(content), content_type

    # -- plain SQL for the hot path --------------------------------------------------------------
    # sqlite-utils' insert()/update() introspect the table on every call, which is most of the cost of
    # storing a page; the columns here are known, so plain statements do.

    def _insert(self, table: str, values: dict[str, Any]) -> None:
        columns, marks = ", ".join(values), ", ".join("?" * len(values))
        self.db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values()))

    def _update(self, table: str, key: str, values: dict[str, Any]) -> None:
        fields = [k for k in values if k != key]
        assignments = ", ".join(f"{k} = ?" for k in fields)
        params = [values[k] for k in fields] + [values[key]]
        self.db.execute(f"UPDATE {table} SET {assignments} WHERE {key} = ?", params)

    # -- batches --------------------------------------------------------------------------------

    def begin_batch(self) -> None:
        """Group the next responses in one transaction (each stays a savepoint of its own).

        Committing every response is most of a crawl's write cost; the crawl pipeline commits a
        batch every few dozen responses instead. A crash loses at most the open batch, never
        leaves part of a response, and the next run fetches those pages again.
        """
        if not self.db.conn.in_transaction:
            self.db.execute("BEGIN")

    def commit_batch(self) -> None:
        if self.db.conn.in_transaction:
            self.db.execute("COMMIT")

    # -- not modified and failed attempts -----------------------------------------------------

    def _touch(self, page_type: str | None, subject_id: int, run_id: int, seen_at: str) -> int | None:
        table, key, versions = _subject_tables(page_type)
        if table is None:
            return None
        row = self.db.execute(f"SELECT current_version FROM {table} WHERE {key} = ?", [subject_id]).fetchone()
        if row is None or row[0] is None:
            return None
        self.db.execute(
            f"UPDATE {table} SET last_seen = ?, last_fetched = ? WHERE {key} = ?", [seen_at, seen_at, subject_id]
        )
        self.db.execute(
            f"UPDATE {versions} SET last_seen = ?, last_run_id = ? WHERE {key} = ? AND version = ?",
            [seen_at, run_id, subject_id, row[0]],
        )
        return int(row[0])

    def _note_attempt(self, page_type: str | None, subject_id: int | None, seen_at: str) -> None:
        table, key, _ = _subject_tables(page_type)
        if table is not None and subject_id is not None:
            self.db.execute(f"UPDATE {table} SET last_fetched = ? WHERE {key} = ?", [seen_at, subject_id])

    # -- reads the crawler needs --------------------------------------------------------------

    def validators(self) -> dict[tuple[str, Any], tuple[str | None, str | None]]:
        """Stored ETag/Last-Modified of every archived page, feed and listing (``queries.validators``)."""
        return queries.validators(self.db)


def _subject_tables(page_type: str | None) -> tuple[str | None, str, str]:
    if page_type == "story":
        return "stories", "id", "story_versions"
    if page_type == "photo":
        return "images", "media_id", "image_versions"
    return None, "", ""


def _headers_json(headers: list[tuple[str, str]] | None) -> str | None:
    """Compact JSON: stored with every fetch, so every byte counts over months of revisits."""
    if headers is None:
        return None
    return json.dumps([list(pair) for pair in headers], ensure_ascii=False, separators=(",", ":"))


def compress_raw(body: bytes) -> bytes:
    """A raw page as stored in ``raw_pages.content``: a zlib stream (``zlib.decompress`` reads it),
    written by ISA-L (see ``RAW_ISAL_LEVEL``)."""
    return isal_zlib.compress(body, RAW_ISAL_LEVEL)
