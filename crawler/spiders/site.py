"""The one spider: discovers, revisits and sweeps story and photo pages.

Modes (``defwatch crawl --mode``):

- ``discover``: RSS feeds and the first listing pages; fetches stories and photos not archived yet.
- ``revisit``: archived stories that are due by age (fresh often, old rarely) and their photos.
- ``sweep``: every archived story and photo page, slowly; finds removals and restorations.
- ``full``: every feed, listing page and archived page, and every story and photo they lead to.
- ``frontier``: one slice of the daemon's budgeted frontier (``monitor.frontier``): the pages it
  picked from the archive, the index pages when they are due, and listing pages of its walk; new
  stories and photos they lead to are fetched as in ``discover``.

Pages the archive has heard of (a related-story link, an inline photo, a feed or listing item) and
never archived (``known_pages``) go first in every mode but ``revisit``: a run that died or failed
to fetch them must not lose them once their referrer answers 304. A 304 story is still followed to
what its stored copy links to, a 304 feed or listing to what its stored copy lists (both read through
the run's archive).

Scrapy's shape: the callbacks parse and yield the page's record (in a ``PageResult``) and the requests
it leads to; the pipeline stores, in the archive writer process (``crawler.archiver``). Photo pages,
which lead nowhere, go to the writer unparsed and are parsed there, off the reactor's thread: they
are most of a crawl's pages, and the two processes then share its CPU about evenly (docs/ARCHITECTURE.md,
"The crawl's shape").

Every response, whatever its status, becomes one ``PageResult`` item so the archive's fetch log is
complete; only the pipeline writes. The spider reads the archive once at start (which pages it knows)
and otherwise only remembers which ids and index URLs it scheduled in this run (workers sharing a
frontier would share those sets instead of Scrapy's URL duplicate filter).

Redirects are followed (www.defense.gov answers with a redirect to www.war.gov), every hop through
``SiteOnlyMiddleware``; the fetch row names the URL asked for and the URL answered. A story or photo
request that lands on any other page (the home page, another story) is an ``error`` fetch, never
content and never a removal; so is an off-site hop, a redirect loop, or a body over the size cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import sqlite_utils
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider
from scrapy.http import Response
from twisted.python.failure import Failure

from core.clock import utcnow, wall_clock
from core.constants import CRAWL_MODES, DEFAULT_FEEDS, DEFAULT_SITE
from core.fetch import FetchInfo
from core.urls import LISTING_BY_KIND, classify_url, feed_url, index_key, listing_url, photo_page_url, rebase
from crawler.items import PageResult
from crawler.middlewares import SiteOnlyMiddleware
from crawler.outcomes import classify
from crawler.pages import Followups, followups, parse_fetched, unchanged_index
from db import queries
from db.schema import connect

FEED_PRIORITY, LISTING_PRIORITY, STORY_PRIORITY, PHOTO_PRIORITY = 30, 20, 10, 0
HEARD_OF_PRIORITY = 40  # pages heard of and never archived go before everything else
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Outcomes that say the site answered us; anything else between two blocks keeps a block storm going.
ANSWERED = frozenset({"ok", "not_modified", "not_found", "gone"})


class SiteSpider(Spider):
    name = "site"
    # Every status reaches the callbacks (a 404 is a fact to record, not an error to drop) except the
    # redirects, which RedirectMiddleware must see to follow them: ``handle_httpstatus_all`` in the
    # request meta made it hand every 301 to the parser, so a moved page parsed as a broken story.
    handle_httpstatus_list = [status for status in range(100, 600) if status not in REDIRECT_STATUSES]

    def __init__(
        self,
        mode: str = "discover",
        max_pages: int | str = 0,
        listing_pages: int | str = 3,
        feeds: str | Sequence[int] = DEFAULT_FEEDS,
        revisit: dict[str, float] | None = None,
        frontier_pages: list[queries.KnownPage] | None = None,
        frontier_index: bool = False,
        frontier_listings: list[tuple[str, int]] | None = None,
        archive_db: sqlite_utils.Database | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if mode not in CRAWL_MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(CRAWL_MODES)}")
        self.mode = mode
        self.max_pages = int(max_pages or 0)
        self.listing_pages = int(listing_pages)
        self.feeds = [int(f) for f in feeds.split(",")] if isinstance(feeds, str) else list(feeds)
        self.revisit = revisit or {}
        self.frontier_pages = list(frontier_pages or [])
        self.frontier_index = bool(frontier_index)
        self.frontier_listings = list(frontier_listings or [])
        self.archive_db = archive_db  # the run's open archive (monitor.run); None: open DEFWATCH_DB to read it
        self.site = DEFAULT_SITE
        self.db_path = "./defwatch.db"
        self.scheduled: set[tuple[str, int]] = set()  # identity is the id, not the URL (slugs vary)
        self.indexed: set[str] = set()  # feed and listing URLs already asked for in this run
        self.site_only = SiteOnlyMiddleware(None)
        self.blocked_in_a_row = 0
        self.block_storm = 25
        self.known: dict[str, set[int]] = {"story": set(), "photo": set()}
        self.index_next: dict[str, str] = {}
        self.parse_in_writer = False
        self.closing = False

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SiteSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.site = crawler.settings.get("DEFWATCH_SITE") or DEFAULT_SITE
        spider.site_only = SiteOnlyMiddleware(crawler.settings.get("DEFWATCH_SITE"))
        spider.db_path = crawler.settings.get("DEFWATCH_DB")
        spider.block_storm = crawler.settings.getint("DEFWATCH_BLOCK_STORM")
        # Only the archive pipeline parses a page it is sent unparsed; with any other writer, parse here.
        writer = crawler.settings.getdict("ITEM_PIPELINES").get("crawler.pipelines.ArchivePipeline")
        spider.parse_in_writer = crawler.settings.getbool("DEFWATCH_PARSE_IN_WRITER") and writer is not None
        crawler.signals.connect(spider._not_stored, signal=signals.item_dropped)
        crawler.signals.connect(spider._failed_in_pipeline, signal=signals.item_error)
        return spider

    # -- start --------------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        for request in self._start_requests():
            yield request

    def validators(self) -> dict[tuple[str, Any], tuple[str | None, str | None]]:
        """The archive's validators for conditional GET (``ConditionalGetMiddleware`` asks for them)."""
        with self._archive() as db:
            return queries.validators(db)

    @contextmanager
    def _archive(self) -> Iterator[sqlite_utils.Database]:
        """The run's connection when the runner gave one; else the archive opened for this read."""
        if self.archive_db is not None:
            yield self.archive_db
            return
        db = connect(self.db_path)
        try:
            yield db
        finally:
            db.conn.close()

    def _start_requests(self) -> Iterator[Request]:
        with self._archive() as db:
            self.known = {"story": queries.known_ids(db, "story"), "photo": queries.known_ids(db, "photo")}
            self.index_next = queries.index_next_pages(db)
            # Heard of, never archived: due first, whatever became of the referrer. A frontier slice
            # has them in its plan already, within its budget (monitor.frontier).
            if self.mode not in ("revisit", "frontier"):
                yield from self._heard_of_requests(queries.pages_heard_of(db, include_gone=self.mode != "discover"))
            if self.mode in ("discover", "full"):
                yield from self._index_requests()
            if self.mode == "full":  # a 304 story is not parsed, so its photos come from the archive
                yield from self._known_page_requests(queries.all_known_pages(db))
            elif self.mode == "revisit":
                yield from self._revisit_requests(db)
            elif self.mode == "sweep":  # discover never re-fetches what is archived: that is a sweep
                yield from self._known_page_requests(queries.all_known_pages(db))
            elif self.mode == "frontier":
                yield from self._frontier_requests()

    def _index_requests(self) -> Iterator[Request]:
        for content_type in self.feeds:
            request = self._index_request(feed_url(content_type, self.site), "feed", FEED_PRIORITY)
            if request is not None:
                yield request
        for kind in LISTING_BY_KIND:
            request = self._index_request(listing_url(kind, 1, self.site), "listing", LISTING_PRIORITY, page=1)
            if request is not None:
                yield request

    def _frontier_requests(self) -> Iterator[Request]:
        """The slice the frontier planned: index pages first (highest priority), then its pages in
        priority order, then the listing walk's pages (not followed to their next page)."""
        if self.frontier_index:
            yield from self._index_requests()
        for rank, page in enumerate(self.frontier_pages):
            request = self._page_request(page.url, page.page_type, page.id, force=True)
            if request is not None:  # Scrapy takes higher priorities first: keep the frontier's order
                yield request.replace(priority=PHOTO_PRIORITY - 1 - rank // 50)
        for kind, page in self.frontier_listings:
            request = self._index_request(listing_url(kind, page, self.site), "listing", PHOTO_PRIORITY - 100,
                                          page=page)
            if request is not None:
                request.meta["walk"] = True
                yield request

    def _revisit_requests(self, db: Any) -> Iterator[Request]:
        due = queries.due_for_revisit(db, now=wall_clock(), **self.revisit)
        pages = due + queries.story_media_ids(db, [p.id for p in due])
        yield from self._known_page_requests(pages)

    def _heard_of_requests(self, pages: Iterable[queries.KnownPage]) -> Iterator[Request]:
        """Pages a stored page named (related story, inline photo, feed or listing item) that no fetch
        archived yet: a killed run, a failed fetch or a page cap left them, and their referrer may
        answer 304 from now on. They were on the site when heard of, so they are asked of this site."""
        for page in pages:
            url = _on_this_site(page.url, self.site) if page.url else photo_page_url(page.id, self.site)
            request = self._page_request(url, page.page_type, page.id, force=True, priority=HEARD_OF_PRIORITY)
            if request is not None:
                yield request

    def _known_page_requests(self, pages: Iterable[queries.KnownPage]) -> Iterator[Request]:
        for page in pages:
            request = self._page_request(page.url, page.page_type, page.id, force=True)
            if request is not None:
                yield request

    # -- requests -----------------------------------------------------------------------------

    def _index_request(self, url: str, page_type: str, priority: int, page: int = 0) -> Request | None:
        """A feed or listing request, once per URL per run (a listing's "next" may point back)."""
        url = rebase(url, self.site)
        if url in self.indexed or not self._on_site(url):
            return None
        self.indexed.add(url)
        return Request(
            url,
            callback=self.parse_index,
            errback=self.on_error,
            priority=priority,
            dont_filter=True,  # see _page_request
            meta={"page_type": page_type, "listing_page": page, "validator_key": ("index", index_key(url))},
        )

    def _page_request(self, url: str, page_type: str, subject_id: int, *, force: bool = False,
                      priority: int | None = None) -> Request | None:
        """A story or photo page request, unless the mode leaves it out or the page cap is reached."""
        if (page_type, subject_id) in self.scheduled:
            return None
        if not force and not self._wants(page_type, subject_id):
            return None
        if self.max_pages and len(self.scheduled) >= self.max_pages:
            return None
        url = rebase(url, self.site)
        if not self._on_site(url):
            return None  # e.g. a related link to another host: its article id is not this site's
        self.scheduled.add((page_type, subject_id))
        return Request(
            url,
            callback=self.parse_page,
            errback=self.on_error,
            priority=priority if priority is not None else STORY_PRIORITY if page_type == "story" else PHOTO_PRIORITY,
            # The spider dedups by id itself. Scrapy's duplicate filter would silently drop the
            # second hop of a redirect loop (A -> B -> A), leaving no fetch row at all; without it
            # REDIRECT_MAX_TIMES ends the loop with an error the archive records.
            dont_filter=True,
            meta={"page_type": page_type, "subject": (page_type, subject_id)},
        )

    def _on_site(self, url: str) -> bool:
        if self.site_only.allows(url):
            return True
        self.logger.debug("off-site link not followed: %s", url)
        if self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value("defwatch/offsite_links")
        return False

    def _wants(self, page_type: str, subject_id: int) -> bool:
        """Full crawls fetch everything they meet; the other modes only pages not archived yet."""
        return self.mode == "full" or subject_id not in self.known[page_type]

    # -- callbacks ----------------------------------------------------------------------------

    async def parse_index(self, response: Response) -> AsyncIterator[Any]:
        """Feeds and listing pages: logged like any fetch, then followed to their stories."""
        result = self._result(response)
        yield result
        follow = await self._followups(result)
        if follow.outcome == "not_modified" and follow.record_type is None:  # no stored copy to re-read
            next_request = self._next_unchanged_listing(response)
            if next_request is not None:
                yield next_request
            return
        for url, story_id in follow.items:
            request = self._page_request(url, "story", story_id)
            if request is not None:
                yield request
        next_request = self._next_listing(response, follow)
        if next_request is not None:
            yield next_request

    def _next_listing(self, response: Response, follow: Followups) -> Request | None:
        if follow.record_type != "listing" or not follow.next_page or response.meta.get("walk"):
            return None
        page = response.meta.get("listing_page", 1) + 1
        if self.mode != "full" and page > self.listing_pages:
            return None
        return self._index_request(follow.next_page, "listing", LISTING_PRIORITY - page, page=page)

    def _next_unchanged_listing(self, response: Response) -> Request | None:
        """A 304 listing's next page, as it was when last parsed (a full crawl still walks them all)."""
        if response.meta.get("page_type") != "listing" or response.meta.get("walk"):
            return None
        next_key = self.index_next.get(index_key(response.request.url if response.request else response.url))
        page = response.meta.get("listing_page", 1) + 1
        if not next_key or (self.mode != "full" and page > self.listing_pages):
            return None
        return self._index_request(urljoin(self.site, next_key), "listing", LISTING_PRIORITY - page, page=page)

    async def parse_page(self, response: Response) -> AsyncIterator[Any]:
        """Story and photo pages: one item, then the related stories and photo pages they link to."""
        result = self._result(response)
        yield result
        if result.stored is not None:  # a photo page the writer parses: it leads nowhere, watch its outcome
            result.stored.add_done_callback(self._watch_answer)
            return
        follow = await self._followups(result)
        for request in self._follow_story(follow):
            yield request

    def _follow_story(self, follow: Followups) -> Iterator[Request]:
        for url, story_id in follow.related:
            request = self._page_request(url, "story", story_id)
            if request is not None:
                yield request
        for page_url, media_id in follow.photos:
            request = self._page_request(page_url or photo_page_url(media_id, self.site), "photo", media_id)
            if request is not None:
                yield request

    async def _followups(self, result: PageResult) -> Followups:
        """What to follow from a page the spider parsed (or, on a 304, from its stored copy).

        Async for subclasses that must wait for what they follow (``FrontierSpider``)."""
        self._watch_for_block_storm(result.fetch.outcome)
        if result.fetch.outcome == "not_modified":
            return self._unchanged(result.fetch)
        return followups(result.fetch.outcome, result.record)

    def _unchanged(self, fetch: FetchInfo) -> Followups:
        """A 304 is not parsed: a feed or listing is followed to what its last parsed copy listed, a story
        to the related stories and photos its stored copy links to. A capped or killed run stores pages
        whose links it never fetched: following only what changed would leave those unfound.

        Read through the run's archive; a spider without one (a distributed worker) follows what the
        distributed writer published instead (``FrontierSpider``)."""
        unchanged = Followups("not_modified")
        if self.archive_db is None:
            return unchanged
        if fetch.page_type in ("feed", "listing"):
            body = queries.index_body(self.archive_db, fetch.url)
            return unchanged_index(body, fetch.url, fetch.content_type) if body is not None else unchanged
        if fetch.page_type == "story" and fetch.subject_id is not None:
            related, photos = queries.story_links(self.archive_db, fetch.subject_id)
            return Followups("not_modified", "story", related=tuple(related), photos=tuple(photos))
        return unchanged

    def _watch_answer(self, stored: asyncio.Future[Any]) -> None:
        """The block storm watch for a page the writer parsed (a block page served with 200 is known
        only once parsed): a storm found here ends the crawl."""
        if stored.cancelled() or stored.exception() is not None or stored.result() is None:
            return
        try:
            self._watch_for_block_storm(stored.result().fetch.outcome)
        except CloseSpider as storm:
            if self.crawler is not None and self.crawler.engine is not None and not self.closing:
                self.closing = True
                asyncio.ensure_future(self.crawler.engine.close_spider_async(reason=storm.reason))

    def _not_stored(self, item: Any, **_: Any) -> None:
        """A page result dropped or failed in a pipeline never gets an answer: stop waiting for one."""
        stored = getattr(item, "stored", None)
        if stored is not None and not stored.done():
            stored.set_result(None)

    def _failed_in_pipeline(self, item: Any, **kwargs: Any) -> None:
        """A fetched page a pipeline raised on is lost to this run: counted, so the run cannot say ``ok``
        (``monitor.run.summarise``); Scrapy has logged the traceback."""
        if isinstance(item, PageResult) and self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value("defwatch/not_stored")
        self._not_stored(item, **kwargs)

    def on_error(self, failure: Failure) -> Iterator[PageResult]:
        """Network errors, timeouts, refused or looping redirects and oversized bodies are fetches
        too: recorded as ``error`` under the URL first asked for, never a removal."""
        request = failure.request  # type: ignore[attr-defined]
        asked = _asked_url(request.meta, request.url)
        page_type, subject_id = self._subject(request.meta, asked)
        error = f"{failure.type.__name__}: {failure.getErrorMessage()}"[:500]
        yield PageResult(
            FetchInfo(url=asked, final_url=request.url if request.url != asked else None, outcome="error",
                      page_type=page_type, subject_id=subject_id, error=error, fetched_at=utcnow())
        )

    # -- helpers ------------------------------------------------------------------------------

    def _result(self, response: Response) -> PageResult:
        request_url = _asked_url(response.meta, response.request.url if response.request else response.url)
        page_type, subject_id = self._subject(response.meta, request_url)
        headers = {k.decode("latin-1"): v[0].decode("latin-1") for k, v in response.headers.items() if v}
        outcome, reason = classify(response.status, headers, response.body)
        if outcome in ANSWERED and _landed_elsewhere(page_type, subject_id, response.url):
            # Not this page's content, nor its absence: a 404 of the page redirected to is not ours.
            outcome, reason = "error", f"HTTP {response.status} from another page after redirect: {response.url}"
        fetch = FetchInfo(
            url=request_url, final_url=response.url if response.url != request_url else None,
            outcome=outcome, page_type=page_type, subject_id=subject_id, status=response.status,
            etag=_header(response, "ETag"), last_modified=_header(response, "Last-Modified"),
            content_type=_header(response, "Content-Type"), elapsed_ms=response.meta.get("elapsed_ms"),
            error=reason, fetched_at=utcnow(), response_headers=_header_pairs(response.headers),
            request_headers=_header_pairs(response.request.headers) if response.request else None,
        )
        body = response.body if response.body else None
        if outcome != "ok":
            return PageResult(fetch, body)
        if self.parse_in_writer and page_type == "photo":
            # It leads nowhere, so nothing waits for its record: the archive writer process parses it,
            # off the reactor's thread, and its answer only feeds the block storm watch.
            return PageResult(fetch, body, parse_url=response.url, stored=asyncio.get_running_loop().create_future())
        return PageResult(fetch, body, parse_fetched(fetch, response.body, response.url))

    @staticmethod
    def _subject(meta: dict[str, Any], url: str) -> tuple[str, int | None]:
        subject = meta.get("subject")
        if subject:
            return subject[0], subject[1]
        if meta.get("page_type"):
            return meta["page_type"], None
        ref = classify_url(url)
        return ref.type, ref.id

    def _watch_for_block_storm(self, outcome: str) -> None:
        """Many blocked responses in a row end the run: hammering a bot wall only makes it worse.

        Every page counts (feeds and listings too); an error between two blocks (a bot wall also
        drops connections) does not break the streak, only a real answer from the site does.
        """
        if outcome == "blocked":
            self.blocked_in_a_row += 1
        elif outcome in ANSWERED:
            self.blocked_in_a_row = 0
        if self.block_storm and self.blocked_in_a_row >= self.block_storm:
            raise CloseSpider("blocked")


def _on_this_site(url: str, site: str) -> str:
    """``url``'s path and query on ``site``: a page heard of in an earlier run, perhaps under another
    ``--site`` (a sample site's port changes between runs)."""
    parts, base = urlsplit(url), urlsplit(site)
    return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))


def _asked_url(meta: dict[str, Any], url: str) -> str:
    """The URL the spider asked for, before any redirect (Scrapy keeps the hops in ``redirect_urls``)."""
    hops = meta.get("redirect_urls")
    return hops[0] if hops else url


def _landed_elsewhere(page_type: str, subject_id: int | None, final_url: str) -> bool:
    """A story or photo request answered, after redirects, by a URL that names a different page.

    A new slug, section or host for the same id is the same page (www.defense.gov -> www.war.gov);
    the home page or another article is not, and must never be stored as this page's content.
    """
    if page_type not in ("story", "photo") or subject_id is None:
        return False
    ref = classify_url(final_url)
    return ref.type != page_type or ref.id != subject_id


def _header_pairs(headers: Any) -> list[tuple[str, str]]:
    """Every header and every value of a repeated one, for a faithful WARC record of the fetch."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, values in headers.items() for value in values]


def _header(response: Response, name: str) -> str | None:
    """A response header, whatever its case (Scrapy normalizes ``ETag`` to ``Etag``)."""
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None
