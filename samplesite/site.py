"""The sample site without the network: route a request, apply faults, render, answer.

:class:`Site` holds the content and the faults and answers ``(method, path, headers)`` with a
:class:`Response`. The HTTP server (``server.py``) and :func:`samplesite.render_page` both go
through :meth:`Site.respond`, so a page rendered in-process is byte-for-byte what a GET returns
(apart from the volatile noise, which differs on every response by design).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import random
import threading
import time
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape

from samplesite import breakage
from samplesite.changes import ChangesMixin, story_paragraphs
from samplesite.chrome import chrome
from samplesite.content import Content, load_data
from samplesite.faults import LOGIN_PAGE, DropConnection, Faults, ShortBody, gzip_bomb, matches
from samplesite.paths import DEFAULT_SITE, listing_url, route
from samplesite.response import LoggedRequest, Response
from samplesite.variants import DEFAULT_HELD_OUT
from samplesite.views import (
    Page,
    feed_page,
    home_page,
    listing_page,
    photo_page,
    rfc822,
    robots_page,
    story_page,
)

TEMPLATES = Path(__file__).parent / "templates"
ENV = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html", "xml"]),
    keep_trailing_newline=True,
)
ORIGIN_SERVER = "Microsoft-IIS/10.0"
SITE_NAME = "U.S. Department of War"
DEFAULT_FEED_MAX = 10
VIEWSTATE_BYTES = 7_400
MAX_FEED_MAX = 1000


class Site(ChangesMixin):
    """Content + faults + request log, safe to share between server threads."""

    def __init__(self, data: dict[str, Any] | str | Path | None = None, *, synthetic: int = 0,
                 seed: int = 1, held_out: bool = DEFAULT_HELD_OUT) -> None:
        """``held_out`` adds the markup variants the parsers are known to misread (``samplesite.variants``)."""
        if data is None or isinstance(data, (str, Path)):
            data = load_data(data)
        self.lock = threading.RLock()
        self.content = Content(data, synthetic=synthetic, seed=seed)
        self.faults = Faults()
        self.held_out = held_out
        self._log: list[LoggedRequest] = []
        self._hits = random.randrange(1000, 50000)
        self._markup_mtime = 0.0

    # --- request log ---------------------------------------------------------------------
    @property
    def requests(self) -> list[LoggedRequest]:
        """A copy of the request log, oldest first."""
        with self.lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self.lock:
            self._log.clear()

    # --- answering -------------------------------------------------------------------------
    def respond(self, method: str, target: str, headers: dict[str, str] | None = None,
                base: str = DEFAULT_SITE) -> Response:
        """Answer one request for ``target`` (path plus query) as seen from ``base``."""
        headers = headers or {}
        base = base.rstrip("/")
        with self.lock:
            try:
                resp = self._respond(method.upper(), target, headers, base)
            except DropConnection:  # logged with status 0: the request arrived, no answer left
                self._log.append(LoggedRequest(method.upper(), target, 0, dict(headers)))
                raise
            self._log.append(LoggedRequest(method.upper(), target, resp.status, dict(headers)))
        return resp  # for HEAD the server sends the headers only

    def _respond(self, method: str, target: str, headers: dict[str, str], base: str) -> Response:
        parts = urlsplit(target)
        path = parts.path or "/"
        self._hits += 1
        if method not in ("GET", "HEAD"):
            return self._finish(self._error(405), path, headers, base, {"Allow": "GET, HEAD"})
        f = self.faults
        if f.rate is not None and (retry := f.rate.check()) is not None:
            return self._finish(self._error(429), path, headers, base, {"Retry-After": f.rate.retry_after(retry)})
        if matches(f.blocked, path) or f.refuses(headers):
            return breakage.akamai_denied(base + target)
        if key := matches(f.redirects, path):
            return _redirect(*f.redirects[key], base)
        self._flip(path)
        if key := matches(f.misbehaving, path):
            return self._misbehave(*f.misbehaving[key], path, parts.query, base)
        delay = f.delay_for(path)
        if key := matches(f.failing, path):
            resp = self._finish(self._error(f.failing[key]), path, headers, base)
        elif matches(f.maintenance, path):
            resp = self._finish(Page(200, "maintenance.html"), path, headers, base)
        elif key := matches(f.removed, path):
            resp = self._finish(Page(f.removed[key], "notfound.html", {"status": f.removed[key]}),
                                path, headers, base)
        else:
            resp = self._finish(self._route(path, parts.query, base), path, headers, base)
        resp.delay = delay
        return resp

    def _flip(self, path: str) -> None:
        """A flip-flopping story swaps its paragraph for the other text before every answer."""
        key = matches(self.faults.flipping, path)
        if key is None or key[0] != "id":
            return
        flip = self.faults.flipping[key]
        block = story_paragraphs(self.content.edit_story(int(str(key[1]))))[flip.index]
        block["html"], flip.other_html = flip.other_html, block["html"]

    def _misbehave(self, mode: str, size: int, path: str, query: str, base: str) -> Response:
        """Answer ``path`` badly on the wire; conditional headers are ignored so the fault always shows."""
        if mode == "reset":
            raise DropConnection(f"dropping the connection for {path}")
        html_type = {"Content-Type": "text/html; charset=utf-8", "Server": ORIGIN_SERVER}
        if mode == "empty":
            return Response(200, html_type, b"")
        if mode == "login":
            return Response(200, html_type, LOGIN_PAGE)
        if mode == "gzip_bomb":
            return Response(200, html_type | {"Content-Encoding": "gzip"}, gzip_bomb(size))
        page = self._finish(self._route(path, query, base), path, {}, base)
        if mode == "oversize":
            padding = max(0, size - len(page.body) - 7)
            page.body = page.body + b"<!--" + b"x" * padding + b"-->"
        else:  # truncate: announce the whole page, send half of it, hang up
            page.body = ShortBody(page.body[: len(page.body) // 2], claimed=len(page.body))
            page.headers["Connection"] = "close"
        return page

    def _route(self, path: str, query: str, base: str) -> Page:
        ref = route(path)
        hidden = self.faults.hidden_story_ids()
        params = {k.lower(): v for k, v in parse_qsl(query)}
        if ref.page == "story" and ref.id is not None:
            story = self.content.story(ref.id)
            if story is None or story["kind"] != ref.kind:
                return self._error(404)
            page = story_page(self.content, story, base, self.held_out)
            page.mtime = max(page.mtime or 0.0, self._markup_mtime)
            self._add_offsite_related(page, path)
            mode = self._broken_mode(path)
            if mode:
                page.ctx["broken"] = mode
            return page
        if ref.page == "photo" and ref.id is not None:
            img = self.content.image(ref.id)
            return photo_page(self.content, img, base) if img else self._error(404)
        if ref.page == "listing" and ref.kind:
            return listing_page(self.content, ref.kind, _int(params.get("page"), 1, 1), base, hidden, self.held_out)
        if ref.page == "feed":
            ctype = _int(params.get("contenttype"), None, 0)
            max_items = min(_int(params.get("max"), DEFAULT_FEED_MAX, 0) or 0, MAX_FEED_MAX)
            return feed_page(self.content, ctype, max_items, base, hidden)
        if ref.page == "robots":
            return robots_page()
        if path in ("/", "/News", "/News/"):
            return home_page(self.content, base, hidden)
        return self._error(404)

    def _add_offsite_related(self, page: Page, path: str) -> None:
        """Related links to other hosts (``add_offsite_related``): in the context, so the ETag moves too."""
        key = matches(self.faults.offsite_related, path)
        if key is not None:
            extra = [{"id": None, "url": url, "title": "Elsewhere on the web", "published_ap": ""}
                     for url in self.faults.offsite_related[key]]
            page.ctx["related"] = list(page.ctx.get("related", [])) + extra

    def _broken_mode(self, path: str) -> str | None:
        key = matches(self.faults.broken, path)
        return self.faults.broken[key] if key else None

    @staticmethod
    def _error(status: int) -> Page:
        template = "notfound.html" if status in (404, 410) else "error.html"
        return Page(status, template, {"status": status})

    def _finish(self, page: Page, path: str, headers: dict[str, str], base: str,
                extra_headers: dict[str, str] | None = None) -> Response:
        """Add validators, answer conditional requests, render with fresh noise."""
        out = {"Content-Type": page.content_type, "Cache-Control": "private", "Server": ORIGIN_SERVER,
               "X-Powered-By": "ASP.NET"}
        out |= page.headers | (extra_headers or {})
        validated = page.status == 200 and page.mtime is not None
        if validated:
            etag = '"' + hashlib.sha1(_stable_json(page), usedforsecurity=False).hexdigest()[:20] + '"'
            out["ETag"] = etag
            out["Last-Modified"] = rfc822(page.mtime or 0.0)
            if _not_modified(headers, etag, page.mtime or 0.0):
                return Response(304, out, b"")
        return Response(page.status, out, self._render(page, path, base))

    def _render(self, page: Page, path: str, base: str) -> bytes:
        if page.template is None:
            return page.body
        minutes = self._hits % 59 + 1
        ctx = page.ctx | {
            "site": base,
            "site_name": SITE_NAME,
            "request_path": path,
            "views": f"{self._hits:,}",
            "rendered_ago": f"{minutes} minute{'s' if minutes > 1 else ''} ago",
            # ASP.NET view state: about 10 KB of opaque base64 on the real pages, new on every answer
            "viewstate": base64.b64encode(os.urandom(VIEWSTATE_BYTES)).decode(),
            "chrome_html": chrome_html(base),
            "cdv": random.randrange(10**8, 10**9),
            "build_date": rfc822(_now()),
        }
        if page.template == "listing.html":
            kind, site = page.ctx["kind"], base
            ctx["page_url"] = lambda n: _listing_url(kind, n, site)
        body = ENV.get_template(page.template).render(ctx).replace(CDV_SENTINEL, str(ctx["cdv"]))
        if page.ctx.get("broken"):
            body = breakage.apply(body, page.ctx["broken"])
        return body.encode("utf-8")


CDV_SENTINEL = "__samplesite_cdv__"
CHROME_PARTS = ("head_links", "head_tail", "postback", "top", "bottom", "tail", "end")


@lru_cache(maxsize=16)
def chrome_html(base: str) -> dict[str, str]:
    """The page chrome of a site served at ``base``, rendered once (about 120 KB of a story page's
    130-180 KB): rendering the menus and scripts on every answer would make the site, not the
    crawler, the bottleneck of a crawl benchmark. The per-answer cache-buster is a sentinel that
    ``_render`` replaces."""
    ctx = {"chrome": chrome(base), "site": base, "site_name": SITE_NAME, "cdv": CDV_SENTINEL}
    return {part: ENV.get_template(f"_chrome_{part}.html").render(ctx) for part in CHROME_PARTS}


def _redirect(status: int, location: str, base: str) -> Response:
    """A bare redirect; a path is made absolute on the served base, a URL is sent as given."""
    target = base + location if location.startswith("/") else location
    headers = {"Location": target, "Content-Type": "text/html; charset=utf-8", "Server": ORIGIN_SERVER}
    body = f'<html><body>Moved to <a href="{html.escape(target)}">here</a></body></html>'
    return Response(int(status), headers, body.encode())


def _listing_url(kind: str, n: int, site: str) -> str:
    return listing_url(kind, n, site=site)


def _stable_json(page: Page) -> bytes:
    return json.dumps([page.template, page.status, page.ctx], sort_keys=True, default=str,
                      ensure_ascii=False).encode("utf-8")


def _not_modified(headers: dict[str, str], etag: str, mtime: float) -> bool:
    """RFC 9110: If-None-Match wins over If-Modified-Since; weak comparison for ETags."""
    low = {k.lower(): v for k, v in headers.items()}
    inm = low.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag in tags
    ims = low.get("if-modified-since")
    if ims:
        try:
            return int(mtime) <= parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError, IndexError):
            return False
    return False


def _int(value: str | None, default: int | None, minimum: int) -> int | None:
    try:
        return max(minimum, int(value)) if value is not None else default
    except ValueError:
        return default


def _now() -> float:
    return time.time()
