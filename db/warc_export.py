"""The archive's fetches as a WARC 1.1 file (``defwatch export --format warc``), written with warcio.

Web archivists replay and index WARC files with their own tools (pywb, ReplayWeb.page, the
Wayback Machine's CDX indexers), so each fetch becomes the records those tools expect:

- a ``response`` record with the original status line, headers and body, dated by the fetch time,
  and its ``request`` record (``WARC-Concurrent-To`` the response);
- a 304 becomes a ``revisit`` record (profile ``server-not-modified``) that refers to the stored copy
  it confirmed: the last earlier 200 of the same page, by URI and date, with that copy's digest;
- one ``warcinfo`` record first, naming defwatch and the archive.

Bodies are stored decoded (Scrapy undoes gzip), so ``Content-Encoding`` and ``Transfer-Encoding``
are dropped from the headers and ``Content-Length`` is the stored body's: the record describes the
bytes it holds. Fetches stored before schema v6 kept no headers; their records carry the ones the
archive knows (Content-Type, ETag, Last-Modified, Content-Length) and ``WARC-Defwatch-Headers:
reconstructed``. Network errors have no HTTP response and are not written (they are counted).

Rows are read with one cursor and each body decompressed on its own, so memory stays flat however
large the archive is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from io import BytesIO
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import sqlite_utils
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

NOT_MODIFIED_PROFILE = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
DROPPED_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})
SOFTWARE = "defwatch (https://github.com/defwatch/defwatch)"

Progress = Callable[[int, int], None]


@dataclass
class ExportReport:
    """What went into the file; ``as_json`` keys are for scripts."""

    path: str
    responses: int = 0
    revisits: int = 0
    requests: int = 0
    reconstructed_headers: int = 0
    skipped_no_response: int = 0
    skipped_no_copy: int = 0
    uris: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "responses": self.responses, "revisits": self.revisits,
                "requests": self.requests, "reconstructed_headers": self.reconstructed_headers,
                "skipped_no_response": self.skipped_no_response, "skipped_no_copy": self.skipped_no_copy}

    def line(self) -> str:
        skipped = self.skipped_no_response + self.skipped_no_copy
        return (f"wrote {self.responses} responses and {self.revisits} revisits ({self.requests} requests) "
                f"to {self.path}" + (f"; {skipped} fetches without an HTTP response or stored copy skipped"
                                     if skipped else ""))


@dataclass
class _Fetch:
    id: int
    url: str
    final_url: str | None
    page_type: str | None
    subject_id: int | None
    status: int
    etag: str | None
    last_modified: str | None
    sha256: str | None
    fetched_at: str
    request_headers: str | None
    response_headers: str | None
    version: int | None

    @property
    def uri(self) -> str:
        return self.final_url or self.url


_COLUMNS = ("id, url, final_url, page_type, subject_id, status, etag, last_modified, sha256, fetched_at, "
            "request_headers, response_headers, version")
_WITHOUT_HEADERS = _COLUMNS.replace("request_headers, response_headers", "NULL, NULL")


def _columns(db: sqlite_utils.Database) -> str:
    """The fetch columns an export reads; an archive from before schema v6 (readers never migrate)
    kept no headers, so its records are all rebuilt from what it did keep."""
    present = {row[1] for row in db.execute("PRAGMA table_info(fetches)")}
    return _COLUMNS if "response_headers" in present else _WITHOUT_HEADERS


def selected_fetches(db: sqlite_utils.Database, since: str | None, run_id: int | None) -> tuple[str, list[Any]]:
    """The WHERE clause and parameters of the fetches an export takes (those with an HTTP status)."""
    clauses, params = ["status IS NOT NULL"], []
    if since:
        clauses.append("fetched_at >= ?")
        params.append(since)
    if run_id is not None:
        clauses.append("run_id = ?")
        params.append(run_id)
    return " AND ".join(clauses), params


def count_fetches(db: sqlite_utils.Database, since: str | None, run_id: int | None) -> tuple[int, int]:
    """(fetches with an HTTP response, fetches without one) in the selection."""
    clause, params = selected_fetches(db, since, run_id)
    answered = db.execute(f"SELECT COUNT(*) FROM fetches WHERE {clause}", params).fetchone()[0]
    everything = clause.replace("status IS NOT NULL", "status IS NULL")
    unanswered = db.execute(f"SELECT COUNT(*) FROM fetches WHERE {everything}", params).fetchone()[0]
    return answered, unanswered


def export_warc(
    db: sqlite_utils.Database, out: BinaryIO, *, path: str, archive_path: str, since: str | None = None,
    run_id: int | None = None, progress: Progress | None = None, filename: str | None = None,
) -> ExportReport:
    """Write the selected fetches to ``out`` as gzipped WARC 1.1 records, oldest fetch first.

    ``path`` is what the report names; ``filename`` the WARC's own name (``WARC-Filename``), which
    differs when the WARC goes into a WACZ package."""
    writer = WARCWriter(out, gzip=True, warc_version="1.1")
    report = ExportReport(path)
    total, report.skipped_no_response = count_fetches(db, since, run_id)
    name = filename or path.rsplit("/", 1)[-1]
    writer.write_record(writer.create_warcinfo_record(name, _warcinfo(archive_path, since, run_id)))
    clause, params = selected_fetches(db, since, run_id)
    last_copy: dict[str, tuple[str, str]] = {}  # feed/listing URI -> (date, sha) of its last 200 in this file
    cursor = db.conn.execute(f"SELECT {_columns(db)} FROM fetches WHERE {clause} ORDER BY id", params)
    for done, row in enumerate(cursor, 1):
        fetch = _Fetch(*row)
        if fetch.status == 304:
            _write_revisit(db, writer, fetch, last_copy, report)
        else:
            _write_response(db, writer, fetch, report)
            if fetch.sha256 and fetch.page_type not in ("story", "photo"):
                last_copy[fetch.uri] = (fetch.fetched_at, fetch.sha256)
        if progress:
            progress(done, total)
    return report


def _warcinfo(archive_path: str, since: str | None, run_id: int | None) -> dict[str, str]:
    selection = ", ".join(filter(None, [f"since {since}" if since else None,
                                         f"run {run_id}" if run_id is not None else None])) or "every fetch"
    return {
        "software": SOFTWARE,
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "hostname": socket.gethostname(),
        "description": f"defwatch archive {archive_path}: {selection}",
        "isPartOf": archive_path,
    }


def _write_response(db: sqlite_utils.Database, writer: WARCWriter, fetch: _Fetch, report: ExportReport) -> None:
    body = _body(db, fetch.sha256) or b""
    http_headers, rebuilt = _response_headers(db, fetch, len(body))
    extra = {"WARC-Date": fetch.fetched_at, "WARC-Defwatch-Fetch-Id": str(fetch.id)}
    if rebuilt:
        extra["WARC-Defwatch-Headers"] = "reconstructed"
        report.reconstructed_headers += 1
    response = writer.create_warc_record(fetch.uri, "response", payload=BytesIO(body), length=len(body),
                                         http_headers=http_headers, warc_headers_dict=extra)
    request = writer.create_warc_record(fetch.uri, "request", http_headers=_request_headers(fetch),
                                        warc_headers_dict={"WARC-Date": fetch.fetched_at})
    writer.write_request_response_pair(request, response)
    report.responses += 1
    report.requests += 1
    report.uris.add(fetch.uri)


def _write_revisit(
    db: sqlite_utils.Database, writer: WARCWriter, fetch: _Fetch, last_copy: dict[str, tuple[str, str]],
    report: ExportReport,
) -> None:
    copy = _stored_copy(db, fetch, last_copy)
    if copy is None:  # a 304 for a copy the archive never kept: nothing to point to
        report.skipped_no_copy += 1
        return
    copy_uri, copy_date, copy_sha = copy
    http_headers, _ = _response_headers(db, fetch, None)
    digest = _warc_digest(_body(db, copy_sha) or b"")
    revisit = writer.create_warc_record(fetch.uri, "revisit", http_headers=http_headers, warc_headers_dict={
        "WARC-Date": fetch.fetched_at, "WARC-Profile": NOT_MODIFIED_PROFILE, "WARC-Refers-To-Target-URI": copy_uri,
        "WARC-Refers-To-Date": copy_date, "WARC-Payload-Digest": digest, "WARC-Defwatch-Fetch-Id": str(fetch.id),
    })
    request = writer.create_warc_record(fetch.uri, "request", http_headers=_request_headers(fetch),
                                        warc_headers_dict={"WARC-Date": fetch.fetched_at})
    writer.write_request_response_pair(request, revisit)
    report.revisits += 1
    report.requests += 1
    report.uris.add(fetch.uri)


def _stored_copy(
    db: sqlite_utils.Database, fetch: _Fetch, last_copy: dict[str, tuple[str, str]]
) -> tuple[str, str, str] | None:
    """(URI, date, sha256) of the 200 a 304 confirmed: the last earlier stored copy of the page."""
    if fetch.page_type in ("story", "photo") and fetch.subject_id is not None:
        row = db.execute(
            """SELECT COALESCE(final_url, url), fetched_at, sha256 FROM fetches
               WHERE page_type = ? AND subject_id = ? AND id < ? AND status = 200 AND sha256 IS NOT NULL
               ORDER BY id DESC LIMIT 1""",
            [fetch.page_type, fetch.subject_id, fetch.id],
        ).fetchone()
        return (row[0], row[1], row[2]) if row else None
    if fetch.uri in last_copy:
        date, sha = last_copy[fetch.uri]
        return fetch.uri, date, sha
    row = db.execute(
        """SELECT fetched_at, sha256 FROM fetches WHERE COALESCE(final_url, url) = ? AND id < ? AND status = 200
           AND sha256 IS NOT NULL ORDER BY id DESC LIMIT 1""",
        [fetch.uri, fetch.id],
    ).fetchone()
    return (fetch.uri, row[0], row[1]) if row else None


def _response_headers(db: sqlite_utils.Database, fetch: _Fetch, length: int | None) -> tuple[StatusAndHeaders, bool]:
    """The response's status line and headers; rebuilt from the columns when none were stored."""
    stored = json.loads(fetch.response_headers) if fetch.response_headers else None
    if stored is not None:
        headers = [(name, value) for name, value in stored if name.lower() not in DROPPED_HEADERS]
    else:
        content_type = None
        if fetch.sha256:
            row = db.execute("SELECT content_type FROM raw_pages WHERE sha256 = ?", [fetch.sha256]).fetchone()
            content_type = row[0] if row else None
        headers = [(name, value) for name, value in (("Content-Type", content_type), ("ETag", fetch.etag),
                                                     ("Last-Modified", fetch.last_modified)) if value]
    if length is not None:
        headers.append(("Content-Length", str(length)))
    return StatusAndHeaders(f"{fetch.status} {_reason(fetch.status)}", headers, protocol="HTTP/1.1"), stored is None


def _request_headers(fetch: _Fetch) -> StatusAndHeaders:
    parts = urlsplit(fetch.uri)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    stored = json.loads(fetch.request_headers) if fetch.request_headers else []
    headers = [(name, value) for name, value in stored]
    if not any(name.lower() == "host" for name, _ in headers):
        headers.insert(0, ("Host", parts.netloc))
    return StatusAndHeaders(f"GET {target} HTTP/1.1", headers, is_http_request=True)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _body(db: sqlite_utils.Database, sha256: str | None) -> bytes | None:
    if not sha256:
        return None
    row = db.execute("SELECT content FROM raw_pages WHERE sha256 = ?", [sha256]).fetchone()
    return zlib.decompress(row[0]) if row else None


def _warc_digest(body: bytes) -> str:
    """The ``sha1:BASE32`` digest warcio writes, so a revisit's digest matches its copy's record."""
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")

