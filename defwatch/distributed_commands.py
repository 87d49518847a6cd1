"""``defwatch distributed``: one site crawled by many workers sharing a Redis frontier.

The writer (one per site, on the machine that holds the archive) starts the run, seeds the frontier
and stores every result; workers (any number, anywhere that reaches Redis and the site) crawl. See
docs/DISTRIBUTED.md. Needs the ``distributed`` extra (scrapy-redis, redis).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

from core.config import Config
from core.constants import CRAWL_MODES
from defwatch.cli import UsageError, config_from, print_json
from defwatch.commands import _command

# Every mode: a frontier slice is planned by the writer from the archive (monitor.frontier) and seeded
# into Redis as the slice's start requests; workers fetch it like any seeded run.
DISTRIBUTED_MODES = CRAWL_MODES
EXTRA_HINT = "distributed mode needs scrapy-redis and redis: pip install -e '.[distributed]'"


def register_distributed(commands: Any) -> None:
    p = _command(commands, "distributed",
                 "Crawl one site with many workers sharing a Redis frontier; one writer keeps the archive.",
                 "defwatch distributed writer --redis redis://10.0.0.5:6379/0 --site https://www.af.mil "
                 "--db afmil.db --mode full\n"
                 "  defwatch distributed worker --redis redis://10.0.0.5:6379/0 --site https://www.af.mil")
    steps = p.add_subparsers(dest="step", required=True, metavar="STEP")
    _register_writer(steps)
    _register_worker(steps)
    _register_status(steps)


def _base(steps: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p = steps.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--redis", required=True, metavar="URL", help="Redis shared by the writer and the workers")
    p.add_argument("--site", metavar="URL", help="the site to crawl (default: the config's); names the crawl in Redis")
    p.add_argument("--config", metavar="FILE", help="config file (default: $DEFWATCH_CONFIG or ./defwatch.toml)")
    return p


def _register_writer(steps: Any) -> None:
    p = _base(steps, "writer", "Start a run: seed the frontier from the archive, store every result, then "
              "detect changes and queue alerts. One per site.")
    p.add_argument("--db", metavar="PATH", help="archive file (default: $DEFWATCH_DB or ./defwatch.db)")
    p.add_argument("--mode", choices=DISTRIBUTED_MODES, default="discover", help="what to fetch (default: discover)")
    p.add_argument("--no-mail", action="store_true", help="queue alert mails but do not send them now")
    p.add_argument("--wait", type=float, default=600, metavar="SECONDS",
                   help="end the run (interrupted) after this long without a live worker (default: 600; 0: never)")
    p.add_argument("--json", action="store_true", help="print only the run summary as JSON")
    p.set_defaults(handler=cmd_writer)


def _register_worker(steps: Any) -> None:
    p = _base(steps, "worker", "Crawl a share of the seeded run until the whole run is done. Any number.")
    p.add_argument("--mode", choices=DISTRIBUTED_MODES, help="refuse to work unless the seeded run has this mode")
    p.add_argument("--wait", type=float, default=600, metavar="SECONDS",
                   help="how long to wait for the writer to seed a run (default: 600; 0: forever)")
    p.add_argument("--name", help="worker name in Redis and summaries (default: HOST-PID)")
    p.add_argument("--concurrency", type=int, default=0, metavar="N",
                   help="requests in flight in this worker (default: the config's); the site sees N per worker")
    p.set_defaults(handler=cmd_worker)


def _register_status(steps: Any) -> None:
    p = _base(steps, "status", "Print the run's progress in Redis: queued, workers, results waiting.")
    p.set_defaults(handler=cmd_status)


# -- writer -----------------------------------------------------------------------------------------


def cmd_writer(args: argparse.Namespace) -> int:
    _need_extra()
    from monitor.lock import ArchiveLock, LockHeld, lock_path_for

    if args.wait < 0:
        raise UsageError("--wait must be 0 (never) or more seconds")
    config = config_from(args)
    signal.signal(signal.SIGTERM, _interrupt)  # systemd stops with SIGTERM: end the run cleanly
    lock = ArchiveLock(lock_path_for(config.db))
    try:
        lock.acquire()
    except LockHeld as exc:
        raise UsageError(str(exc)) from exc
    try:
        summary, extra = run_writer(config, args.redis, args.mode, send_mail=not args.no_mail, wait=args.wait)
    finally:
        lock.release()
    data = summary.as_json() | {"distributed": extra}
    if not args.json:
        print(summary.line())
    print(json.dumps(data, sort_keys=True))
    return {"ok": 0, "interrupted": 0, "blocked": 3}.get(summary.status, 1)


def run_writer(
    config: Config, redis_url: str, mode: str, *, send_mail: bool, wait: float = 600
) -> tuple[Any, dict[str, Any]]:
    """A run (``monitor.run.run``) whose crawl is seed + drain: same detection, same alerts."""
    from crawler.distributed.keys import Keys
    from crawler.distributed.writer import DistributedCrawl, WriterClaim
    from monitor.run import run

    client, keys = _connect(redis_url), Keys.for_site(config.site)
    claim = WriterClaim(client, keys)
    if not claim.acquire():
        raise UsageError(f"another writer is running for {config.site} on this Redis (key {keys.writer})")
    try:
        crawl = DistributedCrawl(client, keys, claim, config, redis_url, mode, wait,
                                 plan=_frontier_slice(config) if mode == "frontier" else None)
        summary = run(config, mode, crawl, send_mail=send_mail)
        return summary, crawl.facts
    finally:
        _quietly(claim.release)


def _frontier_slice(config: Config) -> Any:
    """Plans the run's slice from the archive at its start, as a local ``--mode frontier`` run does."""
    from core.clock import wall_clock
    from monitor.frontier_runs import slice_spider_args

    return lambda archive, run_id: slice_spider_args(archive.db, config, wall_clock(), run_id)


# -- worker -----------------------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    _need_extra()
    from crawler.distributed.keys import Keys
    from crawler.distributed.worker import frontier_settings, run_worker, wait_for_run
    from crawler.run import crawl_settings

    if args.wait < 0:
        raise UsageError("--wait must be 0 (forever) or more seconds")
    if args.concurrency < 0:
        raise UsageError("--concurrency must be 1 or more (0: the config's)")
    config = config_from(args)
    client, keys = _connect(args.redis), Keys.for_site(config.site)
    meta = wait_for_run(client, keys, args.wait)
    if meta is None:
        print(f"defwatch: no run of {config.site} was seeded within {args.wait:g}s "
              "(start `defwatch distributed writer` for it)", file=sys.stderr)
        return 1
    if meta["site"] != config.site:  # same host, other scheme: every seeded URL would be off-site here
        raise UsageError(f"the seeded run {meta['run_id']} crawls {meta['site']}, not {config.site}")
    if args.mode and args.mode != meta["mode"]:
        raise UsageError(f"the seeded run {meta['run_id']} is a {meta['mode']} crawl, not {args.mode}")
    run_id, worker = int(meta["run_id"]), args.name or f"{socket.gethostname()}-{os.getpid()}"
    settings = frontier_settings(crawl_settings(config, run_id), redis_url=args.redis, keys=keys, run_id=run_id,
                                 worker_id=worker)
    if args.concurrency:
        settings.setdict({"CONCURRENT_REQUESTS": args.concurrency, "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency},
                         priority="cmdline")
    result = run_worker(settings, mode=meta["mode"], listing_pages=int(meta["listing_pages"]))
    prefix = "defwatch/outcome/"
    print(json.dumps({
        "worker": worker, "run_id": run_id, "mode": meta["mode"], "finish_reason": result.finish_reason,
        "pages": result.stats.get("defwatch/fetches", 0),
        "outcomes": {k.removeprefix(prefix): v for k, v in result.stats.items() if k.startswith(prefix)},
    }, sort_keys=True))
    return {"finished": 0, "shutdown": 0, "blocked": 3}.get(result.finish_reason, 1)


# -- status -----------------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    _need_extra()
    from crawler.distributed.keys import Keys, read_meta, read_progress

    config = config_from(args)
    client, keys = _connect(args.redis), Keys.for_site(config.site)
    print_json({"namespace": keys.ns, **read_meta(client, keys), **read_progress(client, keys).as_json()})
    return 0


# -- helpers ----------------------------------------------------------------------------------------


def _need_extra() -> None:
    try:
        import redis  # noqa: F401
        import scrapy_redis  # noqa: F401
    except ImportError as exc:
        raise UsageError(EXTRA_HINT) from exc


def _connect(url: str) -> Any:
    import redis

    from crawler.distributed.keys import connect

    try:
        return connect(url)
    except (redis.RedisError, ValueError) as exc:
        raise UsageError(f"cannot reach Redis at {url}: {exc}") from exc


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _quietly(action: Any, *args: Any) -> None:
    """Cleanup that must not hide the error that brought us here."""
    try:
        action(*args)
    except Exception as exc:  # noqa: BLE001
        logging.getLogger(__name__).warning("cleanup step failed: %s", exc)


REGISTRY = [register_distributed]
