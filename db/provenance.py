"""Where each stored version came from: a live crawl, a WARC/WACZ file, or the Wayback Machine.

A version row names the fetch that first showed it (``fetch_id``); that fetch says whether it was
crawled (``source`` NULL) or imported (``warc``: file and record offset in ``source_ref``;
``wayback``: the ``id_`` capture URL, whose path holds the capture's timestamp). The shape returned
here is what ``defwatch history`` and ``show`` print and put under the JSON key ``source``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this for --help: keep sqlite_utils out of it
    import sqlite_utils

_WAYBACK_STAMP = re.compile(r"/(\d{14})id_/")


def sources(db: sqlite_utils.Database, fetch_ids: list[int | None]) -> dict[int, dict[str, Any]]:
    """fetch id -> its provenance, for the given fetches (one query)."""
    wanted = sorted({i for i in fetch_ids if i is not None})
    if not wanted:
        return {}
    marks = ",".join("?" * len(wanted))
    # An archive from before schema v6 is read as it is (readers never migrate): all of it was crawled.
    imported = "source, source_ref" if has_provenance(db) else "NULL, NULL"
    rows = db.execute(
        f"""SELECT id, run_id, {imported}, fetched_at, COALESCE(final_url, url) FROM fetches
            WHERE id IN ({marks})""",
        wanted,
    ).fetchall()
    return {row[0]: describe(*row) for row in rows}


def has_provenance(db: sqlite_utils.Database) -> bool:
    """Whether the archive's fetches say where they came from (schema v6 and later)."""
    return "source" in {row[1] for row in db.execute("PRAGMA table_info(fetches)")}


def describe(fetch_id: int, run_id: int, source: str | None, ref: str | None, at: str, url: str) -> dict[str, Any]:
    """One fetch's provenance: ``type`` crawl | warc | wayback, with what locates it there."""
    found: dict[str, Any] = {"type": source or "crawl", "fetch_id": fetch_id, "run_id": run_id,
                             "captured_at": at, "url": url}
    if source == "warc" and ref:
        file, _, offset = ref.rpartition("#")
        member, _, offset = offset.rpartition(":")
        found |= {"file": file, "member": member or None, "offset": int(offset) if offset.isdigit() else None}
    elif source == "wayback" and ref:
        stamp = _WAYBACK_STAMP.search(ref)
        found |= {"timestamp": stamp.group(1) if stamp else None, "capture_url": ref}
    return found


def label(source: dict[str, Any] | None) -> str:
    """A short line for terminals: ``crawl run 3``, ``warc site.warc.gz @1234``, ``wayback 20250110090000``."""
    if not source:
        return "-"
    if source["type"] == "warc":
        where = f"{source['member']}:" if source.get("member") else ""
        return f"warc {source['file']} @{where}{source['offset']}"
    if source["type"] == "wayback":
        return f"wayback {source['timestamp']}"
    return f"crawl run {source['run_id']}"
