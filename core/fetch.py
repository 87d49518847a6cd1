"""What a fetch produced, as the crawler hands it to the archive.

These types travel between the crawler (which fills them in), the archive writer process and the
distributed writer (which store them): none of those sides owns them, so they live here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Every outcome a fetch row may record.
OUTCOMES = ("ok", "not_modified", "blocked", "not_found", "gone", "error")
# The page answered: its content is known (a 304 says it still matches a stored version).
GOOD_OUTCOMES = ("ok", "not_modified")
# The page said it is not there (404, 410): the start or the confirmation of a removal.
REMOVAL_OUTCOMES = ("not_found", "gone")


@dataclass
class FetchInfo:
    """What the crawler knows about one response, before any parsing."""

    url: str
    outcome: str
    final_url: str | None = None
    page_type: str | None = None
    subject_id: int | None = None
    status: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    elapsed_ms: int | None = None
    error: str | None = None
    fetched_at: str | None = None
    # For web-archive export (schema v6): the headers as sent and as received, in order.
    request_headers: list[tuple[str, str]] | None = None
    response_headers: list[tuple[str, str]] | None = None
    # Imported history (``monitor.history_import``): warc | wayback, where in it, and the capture's identity.
    source: str | None = None
    source_ref: str | None = None
    source_key: str | None = None


@dataclass
class SaveResult:
    """What storing one response did: its fetch row and, for a story or photo, the version it showed."""

    fetch_id: int
    version: int | None = None  # the subject's version this response showed
    new_version: bool = False
    new_subject: bool = False
