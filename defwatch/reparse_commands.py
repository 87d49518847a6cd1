"""Archive maintenance and browsing commands: ``reparse`` and ``browse``.

``reparse`` rewrites stored versions in place with the current parsers (``crawler.reparse``); ``browse``
serves the archive with Datasette (``defwatch.browse``). Both import their heavy parts lazily, so
``defwatch --help`` stays fast and works without the optional ``browse`` extra.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from core.clock import parse_instant
from core.progress import Progress
from defwatch.cli import UsageError, config_from, existing_db, print_json
from defwatch.commands import _command, _common

PROGRESS_INTERVAL_S = 0.1  # redraw at most ten times a second: a terminal is slower than the parser


# -- reparse ----------------------------------------------------------------------------------------


def register_reparse(commands: Any) -> None:
    p = _command(commands, "reparse",
                 "Re-run the current parsers over the stored raw pages and refresh the stored records in place"
                 " (no new versions, no events: a parser fix is not a story change).",
                 "defwatch reparse --db defwatch.db --since 2026-01-01 --json")
    _common(p)
    p.add_argument("--since", metavar="ISO", help="only versions first stored at or after this UTC date/time")
    p.add_argument("--id", type=int, metavar="ID", help="only this story (article id) or image (media id)")
    p.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    p.add_argument("--workers", type=int, default=default_workers(), metavar="N",
                   help=f"processes that parse (default: the CPUs here, {default_workers()}; 1: in this process)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_reparse)


def default_workers() -> int:
    """The CPUs this process may run on: parsing is the cost, and it splits across them."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def cmd_reparse(args: argparse.Namespace) -> int:
    from crawler.reparse import count_versions, reparse_archive
    from db.schema import connect

    if args.workers < 1:
        raise UsageError(f"--workers must be 1 or more, not {args.workers}")
    since = parse_instant(args.since) if args.since else None
    db = connect(existing_db(config_from(args).db))
    if args.id is not None and not count_versions(db, subject_id=args.id):
        raise UsageError(f"no stored version of a story or image with id {args.id}")
    progress = Progress("reparse", unit="versions")
    report = reparse_archive(db, since=since, subject_id=args.id, dry_run=args.dry_run, progress=progress.update,
                             workers=args.workers)
    progress.finish()
    data = report.as_json()
    print_json(data) if args.json else _print_report(data)
    return 0


def _print_report(data: dict[str, Any]) -> None:
    verb = "would re-parse" if data["dry_run"] else "re-parsed"
    processes = f", parsed by {data['workers']} processes" if data["workers"] > 1 else ""
    print(f"{verb} {data['reparsed']} stored version(s) with parser {data['parser_version']} "
          f"in {data['elapsed_s']:.1f}s ({data['pages_per_second']:.1f} pages/s){processes}")
    by = data["by_subject"]
    for status in ("changed", "unchanged", "failed"):
        split = ", ".join(f"{noun} {counts[status]}" for noun, counts in by.items())
        print(f"  {status:<10}{data[status]:>6}  ({split})")
    print(f"  hashes moved {data['hash_changed']}, current rows refreshed {data['current_updated']}, "
          f"re-stamped {data['restamped']}")
    if data["fields"]:
        print("fields changed: " + ", ".join(f"{k} {v}" for k, v in data["fields"].items()))
    if data["failed_by_reason"]:
        print("failed (left as stored): " + ", ".join(f"{k} {v}" for k, v in data["failed_by_reason"].items()))
    for failure in data["failures"]:
        print(f"  {failure['subject_type']} {failure['subject_id']} v{failure['version']}: "
              f"{failure['reason']}: {failure['detail']}")
    for dup in data["duplicates"]:
        print(f"duplicate: {dup['subject_type']} {dup['subject_id']} version {dup['version']} now reads the same as "
              f"version {dup['same_as_version']}; both kept, it keeps hash {dup['kept_hash'][:12]}")
    if data["dry_run"]:
        print("nothing was written (--dry-run)")


# -- browse -----------------------------------------------------------------------------------------


def register_browse(commands: Any) -> None:
    p = _command(commands, "browse",
                 "Browse and query the archive in Datasette (tables, full-text search, canned analyst queries)."
                 " Needs the optional extra: pip install defwatch[browse].",
                 "defwatch browse --db defwatch.db --port 8001")
    _common(p)
    p.add_argument("--port", type=int, default=8001, help="port to listen on (default: 8001)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    p.set_defaults(handler=cmd_browse)


def cmd_browse(args: argparse.Namespace) -> int:
    from defwatch.browse import DatasetteMissing, serve

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, not {args.port}")
    path = existing_db(config_from(args).db)
    try:
        return serve(path, host=args.host, port=args.port)
    except DatasetteMissing as exc:
        print(f"defwatch: {exc}", file=sys.stderr)
        return 2


REGISTRY: list[Callable[[Any], None]] = [register_reparse, register_browse]
