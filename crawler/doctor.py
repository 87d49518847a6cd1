"""``defwatch doctor``: which transport the site lets in, and what a refusal looked like.

For each transport (``crawler.transport``) a real Scrapy crawl asks for robots.txt, a feed, a
listing, a story the index pages list and a photo page that story shows, with the crawl's own
politeness (robots.txt, delay, per-host concurrency, site-only requests, User-Agent, ``From``).
Each answer is judged as a crawl would judge it (``crawler.outcomes.classify``, then the parsers):
``content``, ``block`` (and which: Akamai "Access Denied" with its reference, a rate limit, a
captcha, a login wall...), ``missing`` (404/410), ``disallowed`` (robots.txt) or ``error``. The
transports run one after the other in one reactor, so the site never sees both at once.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.http import Response
from scrapy.settings import Settings
from scrapy.utils.reactor import install_reactor
from twisted.python.failure import Failure

from core.records import Feed, Listing, Story
from core.urls import feed_url, listing_url, photo_page_url
from crawler import settings as default_settings
from crawler.outcomes import classify
from crawler.parsers import parse_page
from crawler.parsers.block import ACCESS_DENIED, CAPTCHA, FORBIDDEN, LOGIN, MAINTENANCE, RATE_LIMITED
from crawler.run import is_local

PROBES = ("robots", "feed", "listing", "story", "photo")
STORIES_TRIED = 3  # stories read while looking for one that shows a photo
BLOCK_NAMES = {
    RATE_LIMITED: "rate limit (429)", CAPTCHA: "bot challenge (captcha)", LOGIN: "sign-in wall",
    MAINTENANCE: "maintenance page", FORBIDDEN: "403 Forbidden (no known block page)",
}
_REFERENCE = re.compile(rb"Reference(?:\s|&#32;)*(?:#|&#35;)\s*([0-9a-f]+(?:(?:\.|&#46;)[0-9a-f]+)+)", re.I)


@dataclass
class Probe:
    """One page asked for with one transport, and what came back."""

    probe: str  # robots | feed | listing | story | photo
    url: str | None
    result: str  # content | block | missing | disallowed | error | skipped
    status: int | None = None
    block: str | None = None  # which block page, for result "block"
    detail: str | None = None


@dataclass
class TransportReport:
    transport: str
    available: bool = True
    probes: list[Probe] = field(default_factory=list)
    problem: str | None = None  # why the transport could not run at all

    @property
    def verdict(self) -> str:
        """content (every page that was asked for came back as content), blocked, error or unavailable."""
        if not self.available:
            return "unavailable"
        results = {p.result for p in self.probes}
        if "block" in results:
            return "blocked"
        if results & {"error", "missing"} or not any(p.result == "content" for p in self.probes):
            return "error"
        return "content"

    def as_json(self) -> dict[str, Any]:
        return {"transport": self.transport, "available": self.available, "verdict": self.verdict,
                "problem": self.problem, "probes": [asdict(p) for p in self.probes]}


def block_name(reason: str | None, headers: dict[str, str], body: bytes) -> str:
    """Which block page this is, in words an operator can search for."""
    if reason == ACCESS_DENIED:
        server = next((v for k, v in headers.items() if k.lower() == "server"), "")
        who = "Akamai" if "akamai" in server.lower() or b"edgesuite" in body[:4096] else "CDN"
        reference = _REFERENCE.search(body[:4096])
        ref = reference.group(1).decode("ascii").replace("&#46;", ".") if reference else None
        return f"{who} Access Denied" + (f" (Reference #{ref})" if ref else "")
    return BLOCK_NAMES.get(reason or "", reason or "block page")


class DoctorSpider(Spider):
    """Asks for the five probe pages once each and records a ``Probe`` for every answer.

    The story is the first one the feed or listing lists; when it shows no photo, up to
    ``STORIES_TRIED`` stories are read to find one (those extra reads are not reported)."""

    name = "doctor"
    handle_httpstatus_list = [s for s in range(100, 600) if s not in (301, 302, 303, 307, 308)]

    def __init__(self, report: TransportReport, site: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report = report
        self.site = site
        self.stories: list[str] = []  # story URLs the index pages listed, in order
        self.stories_read = 0
        self.photo_asked = False
        self.queued: list[Request] = []

    async def start(self) -> AsyncIterator[Request]:
        yield self._request("robots", f"{self.site}/robots.txt", dont_obey_robotstxt=True)
        yield self._request("feed", feed_url(1, self.site, max_items=10))
        yield self._request("listing", listing_url("news-story", 1, self.site))

    def _request(self, probe: str, url: str, **meta: Any) -> Request:
        return Request(url, callback=self.on_answer, errback=self.on_failure, dont_filter=True,
                       meta={"probe": probe, **meta})

    def on_answer(self, response: Response) -> Iterator[Request]:
        probe = response.meta["probe"]
        headers = {k.decode("latin-1"): v[0].decode("latin-1") for k, v in response.headers.items() if v}
        outcome, reason = classify(response.status, headers, response.body)
        found = Probe(probe, response.url, "error", response.status)
        if outcome == "blocked":
            found.result, found.block = "block", block_name(reason, headers, response.body)
        elif outcome in ("not_found", "gone"):
            found.result, found.detail = "missing", f"HTTP {response.status}"
        elif outcome == "ok":
            found.result, found.detail = self._content(probe, response)
            if found.result == "block":
                found.block = block_name(reason, headers, response.body)
        else:
            found.detail = reason or f"HTTP {response.status}"
        if probe != "photo-hunt":
            self.report.probes.append(found)
        yield from self._drain()

    def on_failure(self, failure: Failure) -> Iterator[Request]:
        request = failure.request  # type: ignore[attr-defined]
        message = failure.getErrorMessage() or failure.type.__name__
        if request.meta["probe"] != "photo-hunt":
            self.report.probes.append(Probe(
                request.meta["probe"], request.url, "disallowed" if "robots.txt" in message else "error",
                detail=f"{failure.type.__name__}: {message}"[:300],
            ))
        yield from self._drain()

    def _content(self, probe: str, response: Response) -> tuple[str, str | None]:
        """Is a 200 the page asked for? The parsers say; a page they cannot read is an error here."""
        if probe == "robots":
            return "content", None
        content_type = response.headers.get("Content-Type", b"").decode("latin-1") or None
        record = parse_page(response.body, response.url, content_type)
        if record.type == "error":
            reason = getattr(record, "reason", "")
            return ("block", None) if reason == "block_page" else ("error", f"not a readable {probe} page ({reason})")
        if isinstance(record, Feed | Listing):
            self.stories += [item.url for item in record.items if item.url not in self.stories]
            if not self.stories_read and self.stories:
                self._read_story("story")
            return "content", f"{len(record.items)} stories listed"
        if isinstance(record, Story):
            self._follow_story(record)
            return "content", record.title
        return "content", getattr(record, "title", None) or record.type

    def _read_story(self, probe: str) -> None:
        self.queued.append(self._request(probe, self.stories[self.stories_read]))
        self.stories_read += 1

    def _follow_story(self, story: Story) -> None:
        photos = [image for image in story.images if image.media_id is not None]
        if photos and not self.photo_asked:
            self.photo_asked = True
            self.queued.append(self._request("photo", photos[0].page_url or photo_page_url(photos[0].media_id,
                                                                                          self.site)))
        elif not self.photo_asked and self.stories_read < min(STORIES_TRIED, len(self.stories)):
            self._read_story("photo-hunt")

    def _drain(self) -> Iterator[Request]:
        queued, self.queued = self.queued, []
        yield from queued

    def closed(self, reason: str) -> None:
        asked = {p.probe for p in self.report.probes}
        for probe in PROBES:
            if probe not in asked:
                why = ("no story found on the feed or the listing" if probe == "story" else
                       "no photo on the stories read" if probe == "photo" else f"not answered: {reason}")
                self.report.probes.append(Probe(probe, None, "skipped", detail=why))
        self.report.probes.sort(key=lambda p: PROBES.index(p.probe))


def doctor_settings(site: str, values: dict[str, Any]) -> Settings:
    """The crawl's settings (politeness included) without the archive: nothing is stored."""
    settings = Settings()
    settings.setmodule(default_settings, priority="project")
    if is_local(site):
        settings.setdict(default_settings.local_overrides(), priority="project")
    middlewares = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
    middlewares.pop("crawler.middlewares.ConditionalGetMiddleware", None)  # full answers, no archive needed
    settings.setdict({"ITEM_PIPELINES": {}, "DOWNLOADER_MIDDLEWARES": middlewares, "DEFWATCH_SITE": site,
                      "RETRY_TIMES": 1, "LOG_LEVEL": "ERROR", "LOG_INSTALL_ROOT_HANDLER": False,
                      "EXTENSIONS": {"scrapy.extensions.remote_control.RemoteControl": None}}, priority="cmdline")
    settings.setdict(values, priority="cmdline")
    return settings


def examine(site: str, transports: dict[str, dict[str, Any] | str]) -> list[TransportReport]:
    """Probe ``site`` with each transport in turn: name -> its settings, or the one-line reason it
    cannot run here (then it is reported ``unavailable`` and not tried)."""
    reports = [TransportReport(name) for name in transports]
    process = CrawlerProcess({"LOG_INSTALL_ROOT_HANDLER": False})
    runnable: list[tuple[Crawler, TransportReport]] = []
    for report, values in zip(reports, transports.values(), strict=True):
        if isinstance(values, str):
            report.available, report.problem = False, values
            continue
        runnable.append((Crawler(DoctorSpider, doctor_settings(site, values)), report))

    if runnable:
        # Scrapy's reactor (a Crawler made here does not install it); each crawl starts when the one
        # before it ended, and the reactor stops after the last, whatever became of them.
        install_reactor(runnable[0][0].settings.get("TWISTED_REACTOR"))
        from twisted.internet import defer, reactor

        def one_after_another() -> None:
            done: defer.Deferred[Any] = defer.succeed(None)
            for crawler, report in runnable:
                done.addBoth(lambda _, c=crawler, r=report: process.crawl(c, report=r, site=site.rstrip("/")))
            done.addBoth(_stop_reactor)

        reactor.callWhenRunning(one_after_another)
        process.start(stop_after_crawl=False, install_signal_handlers=False)
    return reports


def _stop_reactor(result: Any) -> Any:
    from twisted.internet import reactor

    if reactor.running:
        reactor.stop()
    return None if isinstance(result, Failure) else result
