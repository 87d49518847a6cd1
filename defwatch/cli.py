"""The ``defwatch`` command line: one front door to the crawler, the archive and the monitor.

Each command is a small function over the packages; the parser of each carries an example in its
help. Exit status: 0 success, 1 a run or command failed, 2 bad input (usage, config), 3 the site
blocked the crawl.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from defwatch.config import Config, ConfigError, load_config

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2, nothing stored is touched."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(getattr(args, "verbose", 0), daemon=args.command == "run")
    try:
        return args.handler(args)
    except (UsageError, ConfigError) as exc:
        print(f"defwatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="defwatch",
        description="Crawl, archive and monitor defense.gov / war.gov stories and photos.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Start with `defwatch demo` (offline), or `defwatch init` then `defwatch crawl`.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for Scrapy's)")
    commands_parser = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from defwatch import analyst_commands, commands, distributed_commands, reparse_commands

    registries = (commands, analyst_commands, reparse_commands, distributed_commands)
    for register in [r for module in registries for r in module.REGISTRY]:
        register(commands_parser)
    return parser


def config_from(args: argparse.Namespace) -> Config:
    """The config file and environment, with command-line options on top."""
    config = load_config(getattr(args, "config", None))
    if getattr(args, "db", None):
        config = replace(config, db=args.db)
    if getattr(args, "site", None):
        config = replace(config, site=_check_site(args.site))
    return config


def _check_site(site: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(site)
    if parts.username or parts.password:  # they would be stored in runs.site and logged with every URL
        raise UsageError("--site must not carry credentials (user:password@)")
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise UsageError(f"--site must be a scheme and host like http://127.0.0.1:8000, not {site!r}")
    return f"{parts.scheme}://{parts.netloc}"


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def existing_db(path: str) -> str:
    if not Path(path).exists():
        raise UsageError(f"no archive at {path} (run `defwatch crawl` first, or pass --db)")
    return path


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


if __name__ == "__main__":
    raise SystemExit(main())
