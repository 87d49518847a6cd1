"""Pages for the scale benchmark's archive, prepared in render workers so 400,000 of them build in minutes.

Why: a crawl stores each page as a fetch row, its zlib-compressed raw body and the record parsed
from it. At the live site's size (about 100,000 stories and 300,000 photo pages, 130-148 KiB each)
parsing every full page and compressing it in the single writer take most of an hour on two cores.
Here the workers do the expensive parts, and the writer only inserts:

- the raw body is the sample site's full page, byte for byte what a GET returns (distinct on every
  answer: its ASP.NET view state is new each time); the worker compresses it at the crawler's level
  (:class:`StoredBody`) and :class:`BenchArchive` stores it with the row ``Archive.save_response``
  would write;
- the record is parsed from the page with the site's shared chrome cut out (menus, scripts and
  styles: about 118 KiB that are the same on every page and that the parsers skip), a quarter of
  the cost of a full parse. Every ``VERIFY_EVERY``-th page is parsed in full too and must give the
  same record, or the build stops. The dry-run re-parse of the built archive then compares every
  stored record with a parse of its full raw page: ``changed 0`` says they all agree.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import zlib
from dataclasses import dataclass

from core.records import Record
from crawler.parsers import parse_page
from db.archive import Archive, compress_raw
from samplesite.site import CDV_SENTINEL, CHROME_PARTS, chrome_html

VERIFY_EVERY = 25  # one page in 25 is also parsed in full and must give the same record
PAGE_END = b"</body></html>\n"  # what the cut leaves of the last chrome part: the page stays complete
_CDV = re.compile(rb"[?&]cdv=(\d+)")


class ChromeMismatch(RuntimeError):
    """A page parsed without its chrome gave another record than the full page: the shortcut is wrong."""


@dataclass(frozen=True)
class StoredBody:
    """A raw body as ``raw_pages`` keeps it, compressed in a worker; ``len()`` is the body's own size."""

    sha256: str
    blob: bytes
    size: int

    def __len__(self) -> int:
        return self.size

    def body(self) -> bytes:
        return zlib.decompress(self.blob)


def stored_body(body: bytes) -> StoredBody:
    return StoredBody(hashlib.sha256(body).hexdigest(), compress_raw(body), len(body))


class BenchArchive(Archive):
    """The archive's write side, taking raw bodies the workers compressed (every other row as in a crawl)."""

    def _store_raw(self, body: bytes | StoredBody, content_type: str | None, seen_at: str) -> str:
        if not isinstance(body, StoredBody):
            return super()._store_raw(body, content_type, seen_at)
        self.db.execute(
            "INSERT OR IGNORE INTO raw_pages (sha256, content, content_type, size, first_seen) VALUES (?, ?, ?, ?, ?)",
            [body.sha256, body.blob, content_type, body.size, seen_at],
        )
        return body.sha256


def without_chrome(body: bytes, base: str) -> bytes | None:
    """The page with the site's shared chrome cut out, or None when a part is not where it belongs."""
    found = _CDV.search(body)
    if found is None:
        return None
    cdv = found.group(1).decode()
    parts = chrome_html(base)
    pieces, at = [], 0
    for name in CHROME_PARTS:
        part = parts[name].replace(CDV_SENTINEL, cdv).encode()
        start = body.find(part, at)
        if start < 0:
            return None
        pieces.append(body[at:start])
        at = start + len(part)
    pieces.append(PAGE_END)
    pieces.append(body[at:])
    return b"".join(pieces)


_pages = itertools.count()


def parse_fast(body: bytes, url: str, content_type: str | None, base: str) -> Record:
    """``parse_page(body, url, content_type)``, read from the page without its chrome (checked, see above)."""
    slim = without_chrome(body, base)
    if slim is None:
        return parse_page(body, url, content_type)
    record = parse_page(slim, url, content_type)
    if next(_pages) % VERIFY_EVERY == 0:
        full = parse_page(body, url, content_type)
        if full.to_dict() != record.to_dict():
            raise ChromeMismatch(f"{url}: the page without its chrome parses to another record than the full page")
    return record
