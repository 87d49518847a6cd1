"""Web-archive interchange on the command line: ``export --format warc|wacz`` and ``import``.

The work is done by ``db.warc_export``, ``db.wacz`` and ``monitor.history_import``; this module only
checks the options, shows progress on a terminal and prints one line (and JSON with ``--json``).
A file is written under a temporary name and renamed when complete, so an export that fails never
leaves a truncated archive where a finished one is expected.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.progress import Progress
from defwatch.cli import UsageError, config_from, print_json
from defwatch.commands import _command, _common

if TYPE_CHECKING:
    import sqlite_utils

    from db.warc_export import ExportReport


# -- export -----------------------------------------------------------------------------------------


def export_web_archive(args: argparse.Namespace, db: sqlite_utils.Database, since: str | None) -> int:
    """``defwatch export --format warc|wacz``: every selected fetch as WARC records (in a WACZ package)."""
    if not args.output:
        raise UsageError(f"--format {args.format} needs --output FILE (a binary file, never standard output)")
    if args.table:
        raise UsageError(f"--format {args.format} exports the fetches; --table does not apply")
    if args.run is not None and db.execute("SELECT 1 FROM runs WHERE id = ?", [args.run]).fetchone() is None:
        raise UsageError(f"no run {args.run} in the archive")
    output = Path(args.output)
    archive_path = config_from(args).db
    try:
        with tempfile.TemporaryDirectory(prefix=".defwatch-export-", dir=output.parent) as work:
            warc = Path(work) / (output.name if args.format == "warc" else _warc_name(output))
            report = _write_warc(db, warc, output, archive_path, since, args.run)
            if args.format == "wacz":
                _write_wacz(db, warc, Path(work), output, archive_path, since, args.run)
            else:
                os.replace(warc, output)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    print(report.line(), file=sys.stderr)
    return 0


def _write_warc(db: sqlite_utils.Database, warc: Path, output: Path, archive_path: str, since: str | None,
                run_id: int | None) -> ExportReport:
    from db.warc_export import export_warc

    progress = Progress("export warc", unit="fetches")
    with open(warc, "wb") as out:
        report = export_warc(db, out, path=str(output), archive_path=archive_path, since=since, run_id=run_id,
                             progress=progress.update, filename=warc.name)
    progress.finish()
    return report


def _write_wacz(db: sqlite_utils.Database, warc: Path, work: Path, output: Path, archive_path: str,
                since: str | None, run_id: int | None) -> None:
    from db.wacz import WaczUnavailable, package_wacz, write_pages

    pages = work / "pages.jsonl"
    write_pages(db, pages, since, run_id)
    package = work / output.name
    try:
        package_wacz(warc, pages, package, title=f"defwatch archive {Path(archive_path).name}",
                     description=f"Fetches of {archive_path}" + (f" since {since}" if since else "")
                     + (f", run {run_id}" if run_id is not None else ""))
    except WaczUnavailable as exc:
        raise UsageError(str(exc)) from exc
    os.replace(package, output)


def _warc_name(output: Path) -> str:
    stem = output.name.removesuffix(".wacz") or "defwatch"
    return f"{stem}.warc.gz"


# -- import -----------------------------------------------------------------------------------------


def register_import(commands: Any) -> None:
    p = _command(commands, "import",
                 "Import history from WARC or WACZ files, or from the Wayback Machine: captured stories, photos, "
                 "listings and feeds become versions dated by capture time. Imported history never sends mail.",
                 "defwatch import crawl-2025.warc.gz collection.wacz\n"
                 "  defwatch import --wayback --from 2025-01-01 --to 2025-06-30 --limit 500\n"
                 "  defwatch import --wayback 4001234 https://www.war.gov/News/Releases/Release/Article/4001235/")
    _common(p, site=True)
    p.add_argument("sources", nargs="*", metavar="FILE | URL or id",
                   help="WARC/WACZ files; with --wayback, story URLs or ids (default: every story and photo page)")
    p.add_argument("--wayback", action="store_true", help="import captures from the Wayback Machine's CDX API")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="--wayback: captures on or after this date")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="--wayback: captures on or before this date")
    p.add_argument("--limit", type=int, default=0, metavar="N", help="--wayback: at most N captures (0: all)")
    p.add_argument("--json", action="store_true", help="print the import summary as JSON")
    p.set_defaults(handler=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from monitor.history_import import ImportFailed, import_files, import_wayback

    config = config_from(args)
    if args.limit < 0:
        raise UsageError("--limit must be 0 (all) or more")
    if args.wayback:
        window = (_wayback_date(args.date_from, "--from"), _wayback_date(args.date_to, "--to"))
        runner = lambda progress: import_wayback(config, args.sources, window, args.limit, progress)  # noqa: E731
    else:
        if args.date_from or args.date_to or args.limit:
            raise UsageError("--from, --to and --limit apply to --wayback only")
        if not args.sources:
            raise UsageError("import needs WARC or WACZ files, or --wayback")
        missing = [s for s in args.sources if not Path(s).is_file()]
        if missing:
            raise UsageError(f"no such file: {missing[0]}")
        runner = lambda progress: import_files(config, args.sources, progress)  # noqa: E731
    progress = Progress("import", unit="records")
    try:
        summary = runner(progress.update)
    except ImportFailed as exc:
        progress.finish()
        print(f"defwatch import: {exc}", file=sys.stderr)
        if exc.summary is not None and args.json:
            print_json(exc.summary.as_json())
        return exc.status
    progress.finish()
    print(summary.line())
    if args.json:
        print_json(summary.as_json())
    return 0


def _wayback_date(text: str | None, option: str) -> str | None:
    """A date or date-time as the CDX API's ``YYYYMMDDhhmmss`` prefix."""
    if not text:
        return None
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"{option} needs a date like 2025-01-31 or 2025-01-31T12:00, not {text!r}") from exc
    return moment.strftime("%Y%m%d%H%M%S") if "T" in text or " " in text else moment.strftime("%Y%m%d")


REGISTRY = [register_import]
