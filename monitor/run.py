"""One monitoring run, start to end: crawl, detect changes, queue and send alerts, close the run.

This is the one place that says what a run is. ``defwatch crawl`` (and so every scheduled crawl job
of the daemon, which runs it in a child process) crawls in this process (``LocalCrawl``); the
distributed writer's crawl is a seed and a drain of results from workers
(``crawler.distributed.writer.DistributedCrawl``). Both go through ``run``:

    open the archive -> start the run -> detect a dead run's missed changes -> crawl -> detect
    changes -> summarise -> queue (and send) alerts -> close the run

Each step commits before the next starts, so a run killed at any point leaves a consistent archive:
the next run first detects the changes in whatever a dead run stored (``detect_missed_runs``), then
looks at its own fetches, and mails queued in the outbox are sent by the next flush.

The archive is opened once here; the crawl reads what it must know of the archive before its first
request (archived ids, validators, start pages) through this same connection. Only the archive
writer process of a local crawl (``crawler.archiver``) opens the file again, in its own process.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from core.config import Config
from crawler.run import CrawlResult, StopSignals, crawl_settings, is_local, run_crawl, transport_values
from db.archive import Archive
from db.queries import is_baseline, stored_run_stats
from monitor.changes import Detection, detect_changes, detect_missed_runs

logger = logging.getLogger(__name__)

FINISHED = ("finished", "closespider_pagecount")
SLICE_PACE = 0.9  # a frontier slice's requests are spaced this share of the budget's interval


class Crawl(Protocol):
    """How a run's pages get fetched and stored, under a run id the runner has started."""

    def __call__(self, archive: Archive, run_id: int) -> CrawlResult:
        """Crawl and store into ``archive``; what Scrapy (or the drain) says of it."""

    def stop_signals(self) -> list[str]:
        """The signals that asked the run to stop (SIGINT: Ctrl-C): its mails are then queued, not sent."""

    def aborted(self, exc: BaseException) -> tuple[str, str]:
        """The run's status and error line when ``exc`` ended it before it was closed."""

    def run_facts(self) -> dict[str, Any]:
        """What this kind of crawl adds to the run's stored stats (empty for a local crawl)."""


@dataclass
class RunSummary:
    run_id: int
    mode: str
    status: str
    finish_reason: str
    pages: int = 0
    new_versions: int = 0
    events: int = 0
    errors: int = 0
    blocked: int = 0
    not_modified: int = 0
    baseline: bool = False
    mails_queued: int = 0
    mails_sent: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # the crawl's reactor thread and archive writer
    # The hand-off between them: the reactor blocked on the pipe, the writer idle, pages parsed in the
    # crawl process because the writer was behind (crawler.pipelines).
    hand_off: dict[str, float] = field(default_factory=dict)
    stop_signals: list[str] = field(default_factory=list)  # what stopped the run early (SIGINT: Ctrl-C)
    candidates: int = 0  # pages a finished listing walk made removal candidates (fetched soon, never removed by it)
    not_stored: int = 0  # fetched pages the archive writer or a pipeline failed on (see the log): the run failed

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return (
            f"run {self.run_id} ({self.mode}) {self.status}: {self.pages} pages, {self.new_versions} new versions, "
            f"{self.events} events, {self.errors} errors, {self.blocked} blocked, {self.not_modified} not modified"
            + (f", {self.not_stored} fetched but not stored (see the log)" if self.not_stored else "")
        )


def run_once(
    config: Config, *, mode: str, max_pages: int = 0, send_mail: bool = True, settings_overrides: dict | None = None
) -> RunSummary:
    """Run one crawl of ``config.site`` into ``config.db`` in this process, and everything that follows it.

    SIGTERM/SIGINT at any point stop the run rather than kill the process: the crawl stops promptly
    (``crawler.run.PromptStop``), what it stored is committed, changes are detected, and the run is
    closed ``interrupted``. Its mails are queued but left to the next flush, so a stop never waits
    on an SMTP server.
    """
    transport_values(config)  # an impersonate transport that cannot run here fails before any run starts
    with StopSignals() as stop:
        return run(config, mode, LocalCrawl(config, mode, stop, max_pages, settings_overrides), send_mail=send_mail)


def run(config: Config, mode: str, crawl: Crawl, *, send_mail: bool) -> RunSummary:
    """Start a run, crawl it with ``crawl``, detect its changes, queue its alerts and close it.

    Whatever ends it early (an exception, Ctrl-C in the distributed writer) still closes it, with
    what was stored committed: each response is complete on its own."""
    archive = Archive.open(config.db)
    try:
        run_id = archive.start_run(mode, config.site)
        try:
            return _run(archive, run_id, config, mode, crawl, send_mail)
        except BaseException as exc:
            archive.commit_batch()
            status, error = crawl.aborted(exc)
            archive.finish_run(run_id, status, {"error": error})
            raise
    finally:
        archive.close()


def _run(archive: Archive, run_id: int, config: Config, mode: str, crawl: Crawl, send_mail: bool) -> RunSummary:
    detect_missed_runs(archive.db, config.monitor, before=run_id)  # a killed run's changes, before this crawl
    result = crawl(archive, run_id)
    if result.finish_reason == "archive_writer_failed":  # its last batch was rolled back: count what is stored
        result.stats = _counted_in_archive(result.stats, stored_run_stats(archive.db, run_id))
    baseline = is_baseline(archive.db, run_id)
    detection = detect_changes(
        archive.db, run_id, config.monitor, finish_reason=result.finish_reason, baseline=baseline
    )
    summary = summarise(run_id, mode, result.finish_reason, result.stats, detection)
    summary.stop_signals = crawl.stop_signals()
    summary.candidates = _learn(archive, run_id, config)
    send = send_mail and not summary.stop_signals
    summary.mails_queued, summary.mails_sent = queue_and_send_alerts(archive, run_id, config, send)
    stats = summary.as_json() | {"config": config.redacted()} | crawl.run_facts()
    archive.finish_run(run_id, summary.status, stats)
    return summary


def _learn(archive: Archive, run_id: int, config: Config) -> int:
    """Teach the frontier this run's fetches (any mode); never fails the run that was crawled."""
    from monitor.frontier_runs import record_run

    try:
        return record_run(archive.db, run_id, config)
    except Exception as exc:  # noqa: BLE001 - the run's pages and events are stored; the frontier catches up
        logger.warning("could not update the crawl frontier after run %s: %s", run_id, exc)
        return 0


class LocalCrawl:
    """A Scrapy crawl in this process, storing through the archive writer process."""

    def __init__(self, config: Config, mode: str, stop: StopSignals, max_pages: int = 0,
                 overrides: dict | None = None):
        self.config = config
        self.mode = mode
        self.stop = stop
        self.max_pages = max_pages
        self.overrides = overrides

    def __call__(self, archive: Archive, run_id: int) -> CrawlResult:
        crawl, overrides = self.config.crawl, self.overrides
        frontier = _frontier_args(archive, self.config, run_id) if self.mode == "frontier" else {}
        if self.mode == "frontier" and crawl.polite and not is_local(self.config.site):
            # One request at a time, paced so a slice's share ends a little before the next slice fires:
            # paced at exactly the budget's rate it would overrun its interval and the scheduler would skip
            # every other firing. The average stays the budget's: the allowance is what bounds it.
            pace = {"CONCURRENT_REQUESTS_PER_DOMAIN": 1,
                    "DOWNLOAD_DELAY": SLICE_PACE * 3600 / self.config.frontier.requests_per_hour}
            overrides = pace | (overrides or {})
        return run_crawl(
            crawl_settings(self.config, run_id, overrides),
            stop=self.stop,
            mode=self.mode,
            max_pages=self.max_pages or crawl.max_pages,
            listing_pages=crawl.discover_listing_pages,
            feeds=list(crawl.feeds),
            revisit=asdict(self.config.revisit),
            archive_db=archive.db,  # the spider's start reads go through the run's connection
            **frontier,
        )

    def stop_signals(self) -> list[str]:
        return list(self.stop.received)

    def aborted(self, exc: BaseException) -> tuple[str, str]:
        return "failed", "run aborted; see the log"

    def run_facts(self) -> dict[str, Any]:
        return {}


def _frontier_args(archive: Archive, config: Config, run_id: int) -> dict[str, Any]:
    """Spider arguments for a frontier slice, planned from the archive at this run's start."""
    from core.clock import wall_clock
    from monitor.frontier_runs import slice_spider_args

    return slice_spider_args(archive.db, config, wall_clock(), run_id)


def _counted_in_archive(stats: dict[str, Any], stored: dict[str, int]) -> dict[str, Any]:
    """The crawl's stats with its page, outcome and version counters replaced by the archive's."""
    counters = ("defwatch/fetches", "defwatch/outcome/", "defwatch/new_versions/")
    return {k: v for k, v in stats.items() if not k.startswith(counters)} | stored


HAND_OFF_STATS = ("pipe_wait_seconds", "writer_idle_seconds", "parsed_in_crawl")


def summarise(run_id: int, mode: str, reason: str, stats: dict[str, Any], detection: Detection) -> RunSummary:
    prefix = "defwatch/outcome/"
    outcomes = {k.removeprefix(prefix): v for k, v in stats.items() if k.startswith(prefix)}
    versions = sum(v for k, v in stats.items() if k.startswith("defwatch/new_versions/"))
    status = "ok" if reason in FINISHED else "interrupted" if reason == "shutdown" else "failed"
    if detection.blocked:
        status = "blocked"
    elif detection.failed:  # e.g. every request refused or timed out: not a run that saw the site
        status = "failed"
    # A page fetched and then lost on the way to the archive is a defect of this run, never a quiet gap.
    not_stored = int(stats.get("defwatch/store_errors", 0)) + int(stats.get("defwatch/not_stored", 0))
    if not_stored and status == "ok":
        status = "failed"
    return RunSummary(
        run_id=run_id, mode=mode, status=status, finish_reason=reason,
        pages=int(stats.get("defwatch/fetches", 0)), new_versions=versions, events=len(detection.event_ids),
        errors=outcomes.get("error", 0), blocked=outcomes.get("blocked", 0),
        not_modified=outcomes.get("not_modified", 0), baseline=detection.baseline, outcomes=outcomes,
        cpu_seconds={part: stats[f"defwatch/{part}_cpu_seconds"] for part in ("reactor", "writer")
                     if f"defwatch/{part}_cpu_seconds" in stats},
        hand_off={key: stats[f"defwatch/{key}"] for key in HAND_OFF_STATS if f"defwatch/{key}" in stats},
        not_stored=not_stored,
    )


def queue_and_send_alerts(archive: Archive, run_id: int, config: Config, send_mail: bool) -> tuple[int, int]:
    """Queue this run's mails; send what is due when SMTP is configured. Mail trouble never fails a run."""
    from monitor.compose import queue_pending_alerts, queue_run_alerts
    from monitor.mailer import flush_outbox
    from monitor.subscribers import queue_subscriber_digests

    queued = queue_run_alerts(archive.db, run_id, config.alerts)
    queued += queue_pending_alerts(archive.db, config.alerts)
    queued += queue_subscriber_digests(archive.db, config.alerts, config.subscribers, current_run=run_id)
    if not send_mail or not (config.alerts.recipients or config.alerts.operator_recipients or config.subscribers):
        return len(queued), 0
    try:
        result = flush_outbox(archive.db, config.smtp, config.alerts)
    except Exception as exc:  # noqa: BLE001 - the outbox keeps the mail; the next flush retries
        logger.warning("could not send alerts: %s", exc)
        return len(queued), 0
    return len(queued), result.sent
