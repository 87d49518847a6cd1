"""How one response travels from a worker to the writer: JSON, the body in base64.

The worker sends what it fetched (the ``FetchInfo``, already classified: blocked, wrong page, ...)
and the raw body, not its parsed record: the writer parses the body again with the same inputs the
spider used (body, final URL, Content-Type). That keeps the writer authoritative and the message
independent of the record classes, and it is the same parse ``defwatch reparse`` relies on.

JSON rather than pickle: the results list is data, and nothing read from it can run code.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass

from core.fetch import FetchInfo
from crawler.items import PageResult
from crawler.pages import Followups
from crawler.parsers import parse_page


@dataclass
class Envelope:
    run_id: int
    worker: str
    result: PageResult


def encode(item: PageResult, run_id: int, worker: str) -> bytes:
    message = {
        "run_id": run_id,
        "worker": worker,
        "fetch": asdict(item.fetch),
        "body": base64.b64encode(item.body).decode("ascii") if item.body else None,
        "parsed": item.record is not None,
    }
    return json.dumps(message, separators=(",", ":")).encode()


def decode(data: bytes) -> Envelope:
    """The response as the spider yielded it, with its record parsed again from the body."""
    message = json.loads(data)
    fetch = FetchInfo(**message["fetch"])
    body = base64.b64decode(message["body"]) if message["body"] else None
    record = None
    if message["parsed"]:  # the spider parsed it: every "ok" response, before any reclassification
        record = parse_page(body or b"", fetch.final_url or fetch.url, fetch.content_type)
    return Envelope(int(message["run_id"]), str(message["worker"]), PageResult(fetch, body, record))


def encode_followups(follow: Followups) -> str:
    """A 304 index page's followups (``crawler.pages.unchanged_index``), as the writer publishes them."""
    return json.dumps({"record_type": follow.record_type, "items": follow.items, "next_page": follow.next_page},
                      separators=(",", ":"))


def decode_followups(data: bytes | str) -> Followups:
    message = json.loads(data)
    items = tuple((str(url), int(story_id)) for url, story_id in message["items"])
    return Followups("not_modified", message["record_type"], items=items, next_page=message["next_page"])
