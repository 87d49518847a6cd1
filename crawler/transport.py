"""How requests reach the site: Scrapy's own HTTP client, or a browser's TLS fingerprint.

war.gov sits behind Akamai, which public reports say refuses plain HTTP clients by their TLS
handshake (curl, wget, python-requests, Twisted) whatever their User-Agent, with a 403 "Access
Denied" page. ``[crawl] transport = "impersonate"`` swaps Scrapy's download handler for
scrapy-impersonate's (curl_cffi: libcurl with a browser's TLS and HTTP/2 fingerprint). Everything
else stays Scrapy's and stays polite: robots.txt, the download delay and per-host concurrency
(scheduler and downloader slots), conditional GETs and the site-only rule (downloader
middlewares), redirects (RedirectMiddleware, hop by hop), the honest User-Agent and the
operator's ``From`` header (request headers). The handler adds what scrapy-impersonate leaves out:
``DOWNLOAD_TIMEOUT``, ``DOWNLOAD_MAXSIZE`` on the decoded body (a gzip bomb is cut while it
inflates), connection reuse (one session per crawl) and the prompt stop of ``crawler.run``.

The extra is optional (``pip install 'defwatch[impersonate]'``); ``impersonate_problem`` says in
one line why it cannot be used here.
"""

from __future__ import annotations

import time
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
)
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes

from core.constants import DEFAULT_BROWSER, TRANSPORTS
from crawler.run import CuttableDownloads

HANDLER = "crawler.transport.ImpersonateHandler"
INSTALL_HINT = "pip install 'defwatch[impersonate]'"

try:  # the optional extra
    from curl_cffi.requests import AsyncSession
    from curl_cffi.requests import exceptions as curl_errors
    from scrapy_impersonate import ImpersonateDownloadHandler, RequestParser
except ImportError as missing:  # pragma: no cover - depends on the installation
    _MISSING: ImportError | None = missing
    ImpersonateDownloadHandler = object  # type: ignore[assignment,misc]
else:
    _MISSING = None


def impersonate_problem() -> str | None:
    """Why the impersonate transport cannot run here (one line), or None when it can."""
    if _MISSING is None:
        return None
    return f"the impersonate transport needs curl_cffi and scrapy-impersonate ({_MISSING}); {INSTALL_HINT}"


def transport_settings(transport: str, browser: str = DEFAULT_BROWSER, *, verify_tls: bool = True) -> dict[str, Any]:
    """Scrapy settings for ``transport``: the impersonating handler for http and https, or nothing."""
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}; expected one of {', '.join(TRANSPORTS)}")
    if transport == "scrapy":
        return {}
    return {
        "DOWNLOAD_HANDLERS": {"http": HANDLER, "https": HANDLER},
        "DEFWATCH_IMPERSONATE": browser,
        "DEFWATCH_TLS_VERIFY": verify_tls,
    }


class ImpersonateHandler(CuttableDownloads, ImpersonateDownloadHandler):  # type: ignore[misc,valid-type]
    """scrapy-impersonate's handler with every request sent as ``DEFWATCH_IMPERSONATE`` (a browser).

    scrapy-impersonate opens a session per request, waits for the whole body and has no timeout of
    its own; a crawl needs the opposite on all three, so the transfer itself is done here, with its
    ``RequestParser`` turning the Scrapy request into curl_cffi's arguments (headers, body, proxy;
    redirects left to Scrapy)."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.browser = settings.get("DEFWATCH_IMPERSONATE") or DEFAULT_BROWSER
        self.timeout = settings.getfloat("DOWNLOAD_TIMEOUT")
        self.maxsize = settings.getint("DOWNLOAD_MAXSIZE")
        self.verify = settings.getbool("DEFWATCH_TLS_VERIFY", True)
        self.stats = crawler.stats
        self.session: AsyncSession | None = None
        self.watch_for_cuts(crawler)

    async def download_request(self, request: Request) -> Response:  # type: ignore[override]
        return await self.cuttable(request, self._download)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
        await super().close()

    async def _download(self, request: Request) -> Response:
        timeout = float(request.meta.get("download_timeout") or self.timeout)
        maxsize = int(request.meta.get("download_maxsize", self.maxsize))
        args = RequestParser(request.copy()).as_dict() | {
            "impersonate": request.meta.get("impersonate") or self.browser,
            "timeout": timeout, "verify": self.verify, "stream": True, "allow_redirects": False,
        }
        if self.session is None:
            self.session = AsyncSession()
        started = time.monotonic()
        try:
            answer = await self.session.request(**args)
            try:
                body = await _read_capped(answer, maxsize, request)
            finally:
                await answer.aclose()
        except curl_errors.Timeout as exc:
            raise DownloadTimeoutError(f"Getting {request.url} took longer than {timeout} seconds.") from exc
        except curl_errors.ConnectionError as exc:
            raise DownloadConnectionRefusedError(f"{request.url}: {exc}") from exc
        except curl_errors.RequestException as exc:
            raise DownloadFailedError(f"{request.url}: {exc}") from exc
        # libcurl decoded the body (gzip, br, zstd): it must not be decoded again downstream.
        headers = Headers(answer.headers.multi_items())
        headers.pop("Content-Encoding", None)
        headers.pop("Content-Length", None)
        response_class = responsetypes.from_args(headers=headers, url=answer.url, body=body)
        response = response_class(url=answer.url, status=answer.status_code, headers=headers, body=body,
                                  flags=["impersonate"], request=request)
        response.meta["download_latency"] = time.monotonic() - started
        if self.stats is not None:
            self.stats.inc_value("defwatch/transport/impersonate")
        return response


async def _read_capped(answer: Any, maxsize: int, request: Request) -> bytes:
    """The decoded body, abandoned as soon as it passes ``maxsize`` (0: no cap)."""
    chunks, size = [], 0
    async for chunk in answer.aiter_content():
        size += len(chunk)
        if maxsize and size > maxsize:
            raise DownloadCancelledError(
                f"Received {size} bytes (decoded) which is larger than download max size ({maxsize}, "
                f"DOWNLOAD_MAXSIZE) in request {request}."
            )
        chunks.append(chunk)
    return b"".join(chunks)
