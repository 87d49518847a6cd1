"""The Redis keys of one site's distributed crawl, and the one atomic look at its progress.

A crawl is named by its site's host (``defwatch:www.war.gov:*``), so the crawls of many sites share
one Redis without meeting. Workers and the writer find each other through these keys only.

Knowing when a crawl is over is the hard part of sharing a frontier: an empty queue does not mean
done while some worker is still parsing a page that will add links. So every worker counts the
requests it has taken and not yet settled (``in_hand``, raised atomically with each pop and reset
when its engine is idle, after the page's links and results were pushed). The crawl is settled
when, in one atomic snapshot, the queue is empty and no live worker holds anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis

PREFIX = "defwatch"
# A worker silent this long (no heartbeat) is taken for gone and what it held for lost. Heartbeats
# come every POLL_SECONDS from the reactor, so only a worker whose reactor is stuck this long (or a
# dead one) misses them.
DEAD_AFTER_SECONDS = 30
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Keys:
    """Key names under one namespace (``defwatch:<host>``)."""

    ns: str

    @classmethod
    def for_site(cls, site: str) -> Keys:
        host = urlsplit(site).netloc.lower()
        if not host:
            raise ValueError(f"not a site URL: {site!r}")
        return cls(f"{PREFIX}:{host}")

    @property
    def requests(self) -> str:
        return f"{self.ns}:requests"  # scrapy-redis priority queue (sorted set of pickled requests)

    @property
    def dupefilter(self) -> str:
        return f"{self.ns}:dupefilter"  # page identities (story:ID, photo:ID, url:...) ever queued

    @property
    def results(self) -> str:
        return f"{self.ns}:results"  # list of encoded responses, workers push, the writer pops

    @property
    def meta(self) -> str:
        return f"{self.ns}:meta"  # hash: run_id, mode, site, listing_pages, state

    @property
    def in_hand(self) -> str:
        return f"{self.ns}:in_hand"  # hash: worker -> requests taken and not yet settled

    @property
    def alive(self) -> str:
        return f"{self.ns}:alive"  # hash: worker -> Redis time of its last heartbeat

    @property
    def closed(self) -> str:
        return f"{self.ns}:closed"  # hash: worker -> why it stopped, for workers that stopped early

    @property
    def stop(self) -> str:
        return f"{self.ns}:stop"  # set when every worker must stop: "blocked" or "shutdown"

    @property
    def validators(self) -> str:
        return f"{self.ns}:validators"  # hash: "story:ID" -> JSON [etag, last_modified]

    @property
    def unchanged_index(self) -> str:
        return f"{self.ns}:unchanged_index"  # hash: index key -> JSON of what its stored copy lists

    @property
    def writer(self) -> str:
        return f"{self.ns}:writer"  # the writer's claim, with a TTL it keeps renewing

    def known(self, page_type: str) -> str:
        return f"{self.ns}:known:{page_type}"  # set of archived ids, for discover mode

    def run_keys(self) -> list[str]:
        """Everything one run leaves behind, except the meta hash and the writer's claim."""
        return [self.requests, self.dupefilter, self.results, self.in_hand, self.alive, self.closed,
                self.stop, self.validators, self.unchanged_index, self.known("story"), self.known("photo")]


@dataclass
class Progress:
    """One consistent snapshot of a crawl (read in a single MULTI/EXEC)."""

    state: str  # "" before any seed, then seeding, crawling, done
    run_id: int | None
    queued: int
    results: int
    in_hand: dict[str, int] = field(default_factory=dict)  # live workers only
    lost: int = 0  # requests held by workers that went away without settling them
    stop: str | None = None
    closed: dict[str, str] = field(default_factory=dict)

    @property
    def settled(self) -> bool:
        """Nothing queued and nothing in a live worker's hands: no page is left to lead to another."""
        return self.state == "crawling" and self.queued == 0 and not any(self.in_hand.values())

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "run_id": self.run_id, "queued": self.queued, "results": self.results,
                "workers": self.in_hand, "lost": self.lost, "stop": self.stop, "closed": self.closed,
                "settled": self.settled}


def connect(url: str) -> redis.Redis:
    """A client that fails fast with a readable error when Redis is not there."""
    client = redis.Redis.from_url(url, socket_connect_timeout=10, socket_timeout=60, health_check_interval=30)
    client.ping()
    return client


def read_progress(client: redis.Redis, keys: Keys) -> Progress:
    pipe = client.pipeline(transaction=True)
    pipe.time()
    pipe.hgetall(keys.meta)
    pipe.zcard(keys.requests)
    pipe.llen(keys.results)
    pipe.hgetall(keys.alive)
    pipe.hgetall(keys.in_hand)
    pipe.get(keys.stop)
    pipe.hgetall(keys.closed)
    now, meta, queued, results, alive, in_hand, stop, closed = pipe.execute()
    meta, alive, in_hand, closed = (_texts(h) for h in (meta, alive, in_hand, closed))
    live = {w for w, beat in alive.items() if now[0] - int(beat) <= DEAD_AFTER_SECONDS}
    return Progress(
        state=meta.get("state", ""), run_id=int(meta["run_id"]) if meta.get("run_id") else None,
        queued=int(queued), results=int(results),
        in_hand={w: int(in_hand.get(w, 0)) for w in sorted(live)},
        lost=sum(int(n) for w, n in in_hand.items() if w not in live),
        stop=stop.decode() if stop else None, closed=closed,
    )


def read_meta(client: redis.Redis, keys: Keys) -> dict[str, str]:
    return _texts(client.hgetall(keys.meta))


def heartbeat(client: redis.Redis, keys: Keys, worker: str) -> None:
    """Stamp the worker alive with Redis's clock, so machines with skewed clocks agree."""
    client.hset(keys.alive, worker, client.time()[0])


def _texts(mapping: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in mapping.items()}
