"""The ``defwatch`` command line: one front door to the crawler, the archive and the monitor.

Each command is a small function over the packages; the parser of each carries an example in its
help. Exit status: 0 success, 1 a run or command failed, 2 bad input (usage, config), 3 the site
blocked the crawl.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.clock import DateInputError
from core.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    import sqlite_utils

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2, nothing stored is touched."""


# The module that registers each command. A command run imports only its own module: ``changes``
# has no use for the analyst commands' record, render and analysis modules. ``defwatch --help``,
# and any word not listed here (a typo gets argparse's list of choices), imports them all.
# tests/test_cli.py checks this table against the modules' REGISTRY lists.
COMMAND_MODULES: dict[str, str] = {
    **dict.fromkeys(("demo", "crawl", "run", "init", "changes", "alerts", "parse", "sample-site"), "commands"),
    **dict.fromkeys(("search", "show", "history", "diff", "images", "export", "stats"), "analyst_commands"),
    **dict.fromkeys(("reparse", "browse"), "reparse_commands"),
    "distributed": "distributed_commands",
    "doctor": "doctor_commands",
    "import": "webarchive_commands",
}
MODULES = ("commands", "analyst_commands", "reparse_commands", "distributed_commands", "doctor_commands",
           "webarchive_commands")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (bad input: 2, with one line on stderr)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    module = COMMAND_MODULES.get(_command_word(argv) or "")
    parser = _parser((module,)) if module else build_parser()
    args = parser.parse_args(argv)
    _setup_logging(getattr(args, "verbose", 0), daemon=args.command == "run")
    try:
        status = args.handler(args)
        sys.stdout.flush()  # here, where a reader that left is caught, not at exit
        return status
    except (UsageError, ConfigError, DateInputError) as exc:
        print(f"defwatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_left()
    except RuntimeError as exc:
        return _archive_unavailable(args.command, exc)
    except sqlite3.OperationalError as exc:
        if not str(exc).startswith(("no such column", "no such table")) or not _READ_ARCHIVES:
            raise
        print(f"defwatch: the archive predates this defwatch ({exc}); readers never upgrade it, the next "
              "`defwatch crawl` (or the daemon's) does", file=sys.stderr)
        return 2
    finally:
        _close_read_archives()


def _archive_unavailable(command: str, exc: RuntimeError) -> int:
    """An archive that cannot be opened or written, from any command: one line, not a traceback.
    Exit 2 when the path is no archive at all (bad input), 1 for a storage fault (read-only, disk full)."""
    schema = sys.modules.get("db.schema")  # loaded whenever it can have raised: not imported for --help
    if schema is None or not isinstance(exc, schema.ArchiveUnavailable):
        raise exc
    print(f"defwatch {command}: {exc}", file=sys.stderr)
    return 2 if exc.not_an_archive else 1


# What a Unix tool killed by SIGPIPE reports (128 + 13): ``defwatch export | head`` ends as ``cat`` would.
EXIT_BROKEN_PIPE = 141


def _reader_left() -> int:
    """The reader of standard output went away (``| head``): stop quietly, without a traceback.

    Python ignores SIGPIPE, so the write raised instead; standard output is pointed at /dev/null so
    that flushing what is still buffered at exit does not raise (and print) a second time.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, every command registered (what ``defwatch --help`` lists)."""
    return _parser(MODULES)


def _parser(modules: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="defwatch",
        description="Crawl, archive and monitor defense.gov / war.gov stories and photos.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Start with `defwatch demo` (offline), or `defwatch init` then `defwatch crawl`.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for Scrapy's)")
    commands_parser = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in modules:
        for register in importlib.import_module(f"defwatch.{name}").REGISTRY:
            register(commands_parser)
    return parser


def _command_word(argv: Sequence[str]) -> str | None:
    """The command argparse will see: the first argument that is not an option (the top-level
    options, ``-h`` and ``-v``, take no value)."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def config_from(args: argparse.Namespace) -> Config:
    """The config file and environment, with command-line options on top."""
    config = load_config(getattr(args, "config", None))
    if getattr(args, "db", None):
        config = replace(config, db=args.db)
    if hasattr(args, "db") and Path(config.db).is_dir():
        raise UsageError(f"{config.db} is a directory, not an archive file (pass --db FILE)")
    if getattr(args, "site", None):
        config = replace(config, site=_check_site(args.site, "--site"))
    elif hasattr(args, "site"):  # a command that crawls: the configured site gets the same check
        _check_site(config.site, _site_origin(config))
    return config


def _site_origin(config: Config) -> str:
    """Where the configured site came from: the environment overrides the file."""
    if os.environ.get("DEFWATCH_SITE"):
        return "DEFWATCH_SITE"
    return f"{config.source}: site" if config.source else "site"


def _check_site(site: str, origin: str) -> str:
    """The site's ``scheme://host``; anything it would silently drop or leak is a usage error."""
    from core.urls import SiteURLError, site_root

    try:
        return site_root(site)
    except SiteURLError as exc:
        raise UsageError(f"{origin}: {exc}") from None


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def existing_db(path: str) -> str:
    if not Path(path).exists():
        raise UsageError(f"no archive at {path} (run `defwatch crawl` first, or pass --db)")
    if Path(path).is_dir():
        raise UsageError(f"{path} is a directory, not an archive file (pass --db FILE)")
    return path


def read_archive(path: str) -> sqlite_utils.Database:
    """The archive at ``path`` opened for a command that only reads: nothing is created, migrated or
    written, and anything that is not a readable archive is a one-line usage error."""
    from db.schema import ArchiveTooNew, ArchiveUnreadable, connect_for_reading

    try:
        db = connect_for_reading(existing_db(path))
    except (ArchiveUnreadable, ArchiveTooNew) as exc:
        raise UsageError(str(exc)) from None
    _READ_ARCHIVES.append(db.conn)
    return db


# Closed when the command ends (also when main() runs in-process, as in tests): the last connection
# to a WAL archive to close removes its -wal and -shm files; one left to the garbage collector may not.
_READ_ARCHIVES: list[sqlite3.Connection] = []


def _close_read_archives() -> None:
    while _READ_ARCHIVES:
        _READ_ARCHIVES.pop().close()


def _setup_logging(verbosity: int, *, daemon: bool = False) -> None:
    """Filter on the handler: Scrapy's own logging setup resets its loggers' levels.

    The daemon logs one INFO line per job by default; other commands only warnings, unless -v.
    """
    level = logging.INFO if daemon else logging.WARNING
    if verbosity:
        level = logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    if verbosity < 2:
        for noisy in ("scrapy", "twisted", "filelock", "asyncio"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    if not verbosity:
        handler.addFilter(_not_recorded_failures)


# A request that failed for good is a fetch row with its error, counted in the run's summary; Scrapy's
# own ERROR lines for it (a traceback each for robots.txt) would bury that summary under ~80 lines
# when the site is down. -v shows them. A filter on the handler: Scrapy resets its loggers' levels.
QUIET_UNLESS_VERBOSE = ("scrapy.downloadermiddlewares.retry", "scrapy.downloadermiddlewares.robotstxt")


def _not_recorded_failures(record: logging.LogRecord) -> bool:
    return record.name not in QUIET_UNLESS_VERBOSE


if __name__ == "__main__":
    raise SystemExit(main())
