"""Captured HTTP responses read from WARC and WACZ files, oldest capture first.

Web archives are written by many tools (defwatch's own export, Heritrix, Browsertrix, wget
``--warc-file``, warcio's ``capture_http``, the End of Term crawls). Whatever wrote them, each
``response`` record is one capture: a URI, a date and an HTTP response. This module reads them with
warcio and hands them over as ``Capture`` objects dated by ``WARC-Date``, so that the importer
(``monitor.history_import``) feeds them through the same classification, parsers and archive writer
as a live crawl.

Files are read twice: a first pass indexes every capture (date, offset, URI) and checks that the file
is a WARC at all, and complete; the second pass reads the captures in date order by seeking to each
record. Memory grows with the number of records (a few dozen bytes each), never with their bodies.

Revisits are resolved: a ``server-not-modified`` revisit (a 304) is a capture without a body; an
``identical-payload-digest`` revisit (deduplicating crawlers) gets the body of the record it names.
"""

from __future__ import annotations

import functools
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import ChunkedDataException
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeadersParserException

READ_ERRORS = (ArchiveLoadFailed, ChunkedDataException, StatusAndHeadersParserException, OSError, EOFError,
               zlib.error, ValueError)


class BadArchiveFile(ValueError):
    """Not a WARC (or WACZ) file at all: nothing of it can be imported. The message is one line."""


@dataclass
class Capture:
    """One captured response, as the archive writer needs it."""

    uri: str
    captured_at: str  # ISO 8601 UTC with microseconds and Z, like every archive time stamp
    status: int
    headers: list[tuple[str, str]]
    body: bytes | None
    source: str  # warc | wayback
    source_ref: str  # where it is: FILE#offset, or the Wayback capture URL
    source_key: str  # its identity, for resuming: the WARC-Record-ID, or the Wayback timestamp and URI
    not_modified: bool = False  # a server-not-modified revisit: the response was a 304

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


@dataclass(order=True)
class _Entry:
    captured_at: str
    member: str  # the WARC inside a WACZ, or "" for a plain WARC file
    offset: int
    uri: str = field(compare=False)
    record_id: str = field(compare=False)


@dataclass
class WarcIndex:
    """What the first pass found in one file."""

    path: Path
    entries: list[_Entry] = field(default_factory=list)
    digests: dict[str, tuple[str, int]] = field(default_factory=dict)  # payload digest -> (member, offset)
    truncated_at: str | None = None  # "member#offset" of the record cut short, if the file is truncated
    records: int = 0


def index_file(path: Path) -> WarcIndex:
    """Index the response and revisit records of a WARC or WACZ file, checking it is one.

    Raises ``BadArchiveFile`` when the file is not a web archive; a file cut short keeps the
    records before the cut and says where it was cut (``truncated_at``)."""
    index = WarcIndex(path)
    with _members(path) as members:
        for member, opener in members:
            with opener() as stream:
                _index_stream(index, member, stream)
    return index


def _index_stream(index: WarcIndex, member: str, stream: IO[bytes]) -> None:
    iterator = ArchiveIterator(stream)
    offset = 0
    try:
        for record in iterator:
            offset = iterator.get_record_offset()
            if record.format == "arc":  # warcio reads any first line as an ARC header; ARC is not imported
                raise ArchiveLoadFailed("not WARC records: an ARC file or no web archive at all")
            digest = record.rec_headers.get_header("WARC-Payload-Digest")
            record_type = record.rec_type
            if record_type in ("response", "revisit") and record.http_headers is not None:
                uri = record.rec_headers.get_header("WARC-Target-URI") or ""
                record_id = record.rec_headers.get_header("WARC-Record-ID") or f"{index.path.name}#{member}{offset}"
                index.entries.append(_Entry(warc_date(record.rec_headers.get_header("WARC-Date")), member, offset,
                                            uri, record_id))
            _drain(record)
            if getattr(record.raw_stream, "limit", 0):  # the file ended inside this record
                index.truncated_at = f"{member}#{offset}" if member else f"offset {offset}"
                index.entries = [e for e in index.entries if not (e.member == member and e.offset == offset)]
                return
            if record_type == "response" and digest:
                index.digests.setdefault(digest, (member, offset))
            index.records += 1
    except READ_ERRORS as exc:
        if index.records == 0 and offset == 0:
            raise BadArchiveFile(f"{index.path}: not a WARC or WACZ file ({_first_line(exc)})") from exc
        index.truncated_at = f"{member}#{offset}" if member else f"offset {offset}"


def _drain(record: Any) -> None:
    stream = record.content_stream()
    while stream.read(1 << 16):
        pass


class CaptureReader:
    """Reads indexed captures by seeking to them, across files, keeping each file open once."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._openers: dict[Path, dict[str, Callable[[], IO[bytes]]]] = {}
        self._streams: dict[tuple[Path, str], IO[bytes]] = {}

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def read(self, index: WarcIndex, entry: _Entry) -> Capture:
        record, body = self._record_at(index.path, entry.member, entry.offset)
        headers = list(record.http_headers.headers)
        status = int(record.http_headers.get_statuscode() or 0)
        not_modified = False
        if record.rec_type == "revisit":
            profile = record.rec_headers.get_header("WARC-Profile") or ""
            not_modified = profile.endswith("server-not-modified") or status == 304
            body = None if not_modified else self._original_body(index, record)
            if not not_modified and body is None:
                raise BadArchiveFile(f"{index.path}: revisit {entry.record_id} names a record the file does not hold")
        ref = f"{index.path.name}#{entry.member + ':' if entry.member else ''}{entry.offset}"
        return Capture(entry.uri, entry.captured_at, status, headers, body, "warc", ref, entry.record_id,
                       not_modified=not_modified)

    def _original_body(self, index: WarcIndex, revisit: Any) -> bytes | None:
        where = index.digests.get(revisit.rec_headers.get_header("WARC-Payload-Digest") or "")
        if where is None:
            return None
        _, body = self._record_at(index.path, *where)
        return body

    def _record_at(self, path: Path, member: str, offset: int) -> tuple[Any, bytes]:
        stream = self._stream(path, member)
        stream.seek(offset)
        record = next(iter(ArchiveIterator(stream)))
        return record, record.content_stream().read()

    def _stream(self, path: Path, member: str) -> IO[bytes]:
        if (path, member) not in self._streams:
            if path not in self._openers:
                self._openers[path] = dict(self._stack.enter_context(_members(path)))
            self._streams[(path, member)] = self._stack.enter_context(self._openers[path][member]())
        return self._streams[(path, member)]


@contextmanager
def _members(path: Path) -> Iterator[list[tuple[str, Callable[[], IO[bytes]]]]]:
    """(member name, opener) of each WARC in the file: the file itself, or each archive/ WARC of a WACZ."""
    if not zipfile.is_zipfile(path):
        yield [("", functools.partial(open, path, "rb"))]
        return
    try:
        package = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadArchiveFile(f"{path}: not a WARC or WACZ file ({exc})") from exc
    with package:
        names = [n for n in package.namelist() if n.startswith("archive/") and n.endswith((".warc", ".warc.gz"))]
        if not names:
            raise BadArchiveFile(f"{path}: a ZIP file without archive/*.warc.gz members, so not a WACZ")
        yield [(name, (lambda n=name: package.open(n))) for name in names]


def warc_date(value: str | None) -> str:
    """A WARC-Date (``2025-03-01T12:00:00Z``, with or without fractions) as an archive time stamp."""
    if not value:
        raise ArchiveLoadFailed("record without WARC-Date")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]
