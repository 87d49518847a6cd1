"""Recognise responses that are not content: bot protection, rate limits, maintenance, empty 200s.

None of these is a change of the watched page, so the crawler must never parse them into a story or
count them as a removal. Strong signatures (Akamai's "Access Denied ... Reference #") are trusted
anywhere; weak ones (a "maintenance" or "captcha" word) only on small pages without article markup,
so a story *about* aircraft maintenance is never mistaken for a maintenance page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Reasons returned by detect_block (stable strings: the crawler logs and counts them).
ACCESS_DENIED = "access_denied"  # Akamai / CDN "Access Denied" page (any status)
FORBIDDEN = "forbidden"  # a 403 without a recognisable page
RATE_LIMITED = "rate_limited"  # 429
MAINTENANCE = "maintenance"  # maintenance / service-unavailable page
CAPTCHA = "captcha"  # bot challenge
LOGIN = "login"  # a sign-in wall served instead of the page
EMPTY = "empty"  # 200 with no body

_HEAD_BYTES = 8192
# Akamai's denial page is ~400 bytes: its signature is always at the very start.
_AKAMAI_BYTES = 2048
_SMALL_PAGE = 20_000
_AKAMAI_RE = re.compile(
    rb"<title>\s*Access Denied\s*</title>|You don(?:'|&#39;|&#x27;)t have permission to access|"
    rb"Reference(?:\s|&#32;)*(?:#|&#35;)\s*\d+(?:\.|&#46;)[0-9a-f]+|errors(?:\.|&#46;)edgesuite(?:\.|&#46;)net",
    re.I,
)
# Words of Akamai's page: the regex runs only on a head where one of them occurs.
_AKAMAI_PROBES = (b"ccess Denied", b"Reference", b"edgesuite")
_CONTENT_MARKERS = (b"maintitle", b"listing-with-preview", b"da_print_body", b"<rss", b"data-article-id",
                    b"media-inline", b"adetail")
_WEAK: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    (CAPTCHA, re.compile(rb"captcha|are you a robot|verify you are (?:a )?human|challenge-platform", re.I)),
    (MAINTENANCE, re.compile(rb"(?:down for|under|scheduled|site) maintenance|temporarily unavailable|"
                             rb"service unavailable|<title>[^<]*maintenance[^<]*</title>", re.I)),
    (LOGIN, re.compile(rb"<title>[^<]*(?:sign in|log ?in)[^<]*</title>|type=[\"']?password", re.I)),
)


def detect_block(status: int, headers: Mapping[str, str | bytes] | None, body: bytes | str | None) -> str | None:
    """A reason string when the response is a block/maintenance/error page rather than content,
    else None. 404/410 and ordinary 5xx are not blocks: their status already says what happened."""
    data = body.encode("utf-8", "replace") if isinstance(body, str) else (body or b"")
    head = data[:_HEAD_BYTES]
    server = _header(headers, "server").lower()
    if status == 429:
        return RATE_LIMITED
    if _akamai(head):
        return ACCESS_DENIED
    if status == 403:
        return ACCESS_DENIED if "akamai" in server else FORBIDDEN
    weak = sniff_block_page(data)
    if weak:
        return weak
    if status == 503:
        return MAINTENANCE
    if status == 200 and not data.strip():
        return EMPTY
    return None


def sniff_block_page(body: bytes) -> str | None:
    """A reason when the body itself is a block page (whatever the status), else None."""
    head = body[:_HEAD_BYTES]
    if _akamai(head):
        return ACCESS_DENIED
    if len(body) > _SMALL_PAGE or any(marker in body for marker in _CONTENT_MARKERS):
        return None
    for reason, pattern in _WEAK:
        if pattern.search(head):
            return reason
    return None


def _akamai(body: bytes) -> bool:
    head = body[:_AKAMAI_BYTES]
    for probe in _AKAMAI_PROBES:
        if probe in head:
            return _AKAMAI_RE.search(head) is not None
    return False


def _header(headers: Mapping[str, str | bytes] | None, name: str) -> str:
    """Case-insensitive header lookup that accepts Scrapy-style bytes values and lists."""
    if not headers:
        return ""
    for key, value in headers.items():
        key_text = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if key_text.lower() == name:
            if isinstance(value, (list, tuple)):
                value = value[0] if value else ""
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return ""
