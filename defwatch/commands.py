"""The operational commands: crawl, run, init, parse, sample-site, changes, alerts, demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.clock import parse_instant
from core.constants import CRAWL_MODES
from defwatch.cli import UsageError, config_from, print_json, read_archive

EXIT_CTRL_C = 130  # 128 + SIGINT


def _common(p: argparse.ArgumentParser, *, site: bool = False) -> None:
    p.add_argument("--config", metavar="FILE", help="config file (default: $DEFWATCH_CONFIG or ./defwatch.toml)")
    p.add_argument("--db", metavar="PATH", help="archive file (default: $DEFWATCH_DB or ./defwatch.db)")
    if site:
        p.add_argument("--site", metavar="URL", help="swap scheme and host of every site URL, e.g. http://127.0.0.1:8000")


def _command(commands: Any, name: str, help_text: str, example: str) -> argparse.ArgumentParser:
    return commands.add_parser(
        name, help=help_text, description=f"{help_text}\n\nexample:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# -- crawl ------------------------------------------------------------------------------------------


def register_crawl(commands: Any) -> None:
    p = _command(commands, "crawl", "Run one crawl, then detect changes and queue alerts.",
                 "defwatch crawl --site http://127.0.0.1:8000 --mode full --db demo.db")
    _common(p, site=True)
    p.add_argument("--mode", choices=CRAWL_MODES, default="discover", help="what to fetch (default: discover)")
    p.add_argument("--max-pages", type=int, default=0, metavar="N", help="cap on story and photo pages (0: none)")
    p.add_argument("--no-mail", action="store_true", help="queue alert mails but do not send them now")
    p.add_argument("--json", action="store_true", help="print only the run summary as JSON")
    p.set_defaults(handler=cmd_crawl)


def cmd_crawl(args: argparse.Namespace) -> int:
    from db.schema import ArchiveUnavailable, storage_errors
    from monitor.run import run_once

    if args.max_pages < 0:
        raise UsageError("--max-pages must be 0 or more")
    config = config_from(args)
    progress = {"DEFWATCH_PROGRESS": sys.stderr.isatty() and not args.json}
    try:
        with storage_errors(config.db):  # read-only, disk full: one line, not a traceback
            summary = run_once(config, mode=args.mode, max_pages=args.max_pages, send_mail=not args.no_mail,
                               settings_overrides=progress)
    except ArchiveUnavailable as exc:
        print(f"defwatch crawl: {exc}", file=sys.stderr)
        return 2 if exc.not_an_archive else 1
    if args.json:
        print(json.dumps(summary.as_json(), sort_keys=True))
    else:
        print(summary.line())
        for line in _error_lines(config.db, summary.run_id) if summary.errors else []:
            print(line)
        print(json.dumps(summary.as_json(), sort_keys=True))
    if summary.status == "interrupted" and "SIGINT" in summary.stop_signals:
        return EXIT_CTRL_C  # Ctrl-C: what a shell expects; the daemon's SIGTERM stop stays 0
    return {"ok": 0, "interrupted": 0, "blocked": 3}.get(summary.status, 1)


def _error_lines(db_path: str, run_id: int, shown: int = 3) -> list[str]:
    """Why the run's requests failed, read back from its fetch rows: the commonest errors first."""
    import sqlite3

    from db.schema import ArchiveUnreadable, connect_for_reading

    try:  # only an explanation: an archive that cannot be read now (disk trouble) goes without it
        db = connect_for_reading(db_path)
        try:
            rows = db.execute(
                """SELECT error, COUNT(*), MIN(url) FROM fetches WHERE run_id = ? AND outcome = 'error'
                   GROUP BY error ORDER BY COUNT(*) DESC, error LIMIT ?""", [run_id, shown]).fetchall()
        finally:
            db.conn.close()
    except (sqlite3.Error, ArchiveUnreadable):
        return []
    return [f"  {count} failed: {error or 'no reason recorded'} (e.g. {url})" for error, count, url in rows]


# -- run / init -------------------------------------------------------------------------------------


def register_run(commands: Any) -> None:
    p = _command(commands, "run", "Run the scheduler daemon (discover, revisit, sweep, alert flush).",
                 "defwatch run --config defwatch.toml")
    _common(p, site=True)
    p.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from db.archive import Archive
    from db.schema import ArchiveUnavailable
    from monitor.daemon import run_daemon

    config = config_from(args)
    try:
        Archive.open(config.db).close()  # an archive it cannot write: say so now, not at every job
    except ArchiveUnavailable as exc:
        print(f"defwatch run: {exc}", file=sys.stderr)
        return 2 if exc.not_an_archive else 1
    return run_daemon(config)


def register_init(commands: Any) -> None:
    p = _command(commands, "init", "Write a commented defwatch.toml with every setting and its default.",
                 "defwatch init --path defwatch.toml")
    p.add_argument("--path", default="defwatch.toml", help="where to write it (default: ./defwatch.toml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(handler=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from core.config import render_init_template

    path = Path(args.path)
    if path.exists() and not args.force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    path.write_text(render_init_template(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


# -- parse ------------------------------------------------------------------------------------------


def register_parse(commands: Any) -> None:
    p = _command(commands, "parse", "Parse one saved page (or a site URL) and print its record.",
                 "defwatch parse page.html --json \\\n"
                 "    --url https://www.war.gov/News/News-Stories/Article/Article/3610656/x/")
    p.add_argument("source", metavar="FILE_OR_URL")
    p.add_argument("--url", help="the page's URL, which tells what kind of page it is")
    p.add_argument("--json", action="store_true", help="print the record as JSON (the default)")
    p.set_defaults(handler=cmd_parse)


def cmd_parse(args: argparse.Namespace) -> int:
    from crawler.parsers import parse_page

    body, url, content_type = _read_source(args.source, args.url)
    record = parse_page(body, url, content_type)
    print_json(record.to_dict())
    return 1 if record.type == "error" else 0


def _read_source(source: str, url: str | None) -> tuple[bytes, str, str | None]:
    if source.startswith(("http://", "https://")):
        return _fetch(source)
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"no such file: {source}")
    return path.read_bytes(), url or path.resolve().as_uri(), None


def _fetch(url: str) -> tuple[bytes, str, str | None]:
    import urllib.request

    from core.constants import USER_AGENT
    from core.urls import is_site_url

    if not is_site_url(url, frozenset({"127.0.0.1", "localhost"})):
        raise UsageError(f"{url} is not a page of the watched site")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - site hosts only
            return response.read(), response.geturl(), response.headers.get("Content-Type")
    except OSError as exc:
        raise UsageError(f"could not fetch {url}: {exc}") from exc


# -- sample site ------------------------------------------------------------------------------------


def register_sample_site(commands: Any) -> None:
    p = _command(commands, "sample-site", "Serve the offline sample site (defense.gov-shaped pages) on 127.0.0.1.",
                 "defwatch sample-site --port 8000 --stories 2000")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--stories", type=int, default=0, metavar="N", help="add N synthetic stories (benchmarks)")
    p.add_argument("--held-out", action="store_true",
                   help="also serve the markup variants the parsers are known to misread (samplesite/variants.py)")
    p.set_defaults(handler=cmd_sample_site)


def cmd_sample_site(args: argparse.Namespace) -> int:
    from samplesite.server import serve_forever

    serve_forever(args.port, synthetic=args.stories, held_out=args.held_out)
    return 0


# -- changes ----------------------------------------------------------------------------------------

EVENT_KEYS = ("id", "kind", "subject_type", "subject_id", "url", "title", "run_id", "detected_at",
              "changed_fields", "summary", "from_version", "to_version", "audience", "held", "diff", "imported",
              "details")


def register_changes(commands: Any) -> None:
    p = _command(commands, "changes", "List detected change events.",
                 "defwatch changes --since 2026-11-01 --kind story_updated --json")
    _common(p)
    p.add_argument("--since", metavar="ISO", help="only events detected at or after this date/time (UTC)")
    p.add_argument("--kind", help="only this event kind, e.g. story_updated")
    p.add_argument("--run", type=int, metavar="RUN_ID", help="only this run's events")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_changes)


def cmd_changes(args: argparse.Namespace) -> int:
    from db.events import list_events

    if args.kind:
        _check_kind(args.kind)
    since = parse_instant(args.since) if args.since else None
    db = read_archive(config_from(args).db)
    events = list_events(db, since=since, kind=args.kind, run_id=args.run)
    if args.json:
        print_json([{k: e.get(k) for k in EVENT_KEYS} for e in events])
        return 0
    if events:
        print(f"{'detected (UTC)':<19}  {'run':<8} {'kind':<16} summary")
    for event in events:
        mark = " [imported]" if event.get("imported") else ""
        print(f"{event['detected_at'][:19]}  run {event['run_id']:<4} {event['kind']:<16} {event['summary']}{mark}")
        if event["url"]:
            print(f"{'':42}{event['url']}")
    if not events:
        print("no events", file=sys.stderr)
    return 0


def _check_kind(kind: str) -> None:
    """Imported only for ``--kind``: the monitor's modules are not needed to list events."""
    from monitor.changes import OPERATOR_KINDS, SUBSCRIBER_KINDS

    if kind not in SUBSCRIBER_KINDS + OPERATOR_KINDS:
        raise UsageError(f"unknown kind {kind!r}; one of: {', '.join(SUBSCRIBER_KINDS + OPERATOR_KINDS)}")


# -- alerts -----------------------------------------------------------------------------------------


def register_alerts(commands: Any) -> None:
    p = _command(commands, "alerts", "Send pending alert mails, list the outbox, or send a test mail.",
                 "DEFWATCH_SMTP_HOST=mail.example.org defwatch alerts flush")
    _common(p)
    p.add_argument("action", choices=("flush", "list", "test"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_alerts)


def cmd_alerts(args: argparse.Namespace) -> int:
    from db.outbox import list_outbox, retry_now
    from db.schema import connect
    from monitor.compose import queue_pending_alerts, queue_test_mail
    from monitor.mailer import flush_outbox

    config = config_from(args)
    if args.action == "list":  # only reads: the archive is not created, migrated or written
        mails = list_outbox(read_archive(config.db))
        if args.json:
            print_json(mails)
        if mails and not args.json:
            print(f"{'id':>5} {'status':<8} {'attempts':<10} {'kind':<9} subject")
        for mail in [] if args.json else mails:
            status = f"{mail['status']:<8} attempts={mail['attempts']}"
            print(f"{mail['id']:>5} {status} {mail['kind']:<9} {mail['subject']}")
        return 0
    if not (config.alerts.recipients or config.alerts.operator_recipients or config.subscribers):
        raise UsageError("no recipients configured: set [alerts] recipients, [[subscribers]] or DEFWATCH_ALERT_TO")
    db = connect(config.db)
    if args.action == "test":
        for mail_id in queue_test_mail(db, config.alerts, subscribers=config.subscribers):
            print(f"queued test mail {mail_id}")
    else:
        from monitor.subscribers import queue_subscriber_digests

        queue_pending_alerts(db, config.alerts)
        queue_subscriber_digests(db, config.alerts, config.subscribers)
        retry_now(db)  # an explicit flush does not wait out the retry backoff
    result = flush_outbox(db, config.smtp, config.alerts)
    print(f"sent {result.sent}, failed {result.failed}, pending {result.pending}")
    return 0 if not result.failed and (args.action != "test" or result.sent) else 1


# -- demo -------------------------------------------------------------------------------------------


def register_demo(commands: Any) -> None:
    p = _command(commands, "demo", "Offline end to end: sample site, crawl, scripted changes, events, alert mail.",
                 "defwatch demo --db demo.db")
    p.add_argument("--db", default="defwatch-demo.db", help="archive to create (default: ./defwatch-demo.db, replaced)")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from defwatch.demo import run_demo

    return run_demo(args.db)


REGISTRY = [
    register_demo, register_crawl, register_run, register_init, register_changes, register_alerts,
    register_parse, register_sample_site,
]
