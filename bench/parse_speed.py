"""How fast ``crawler.parsers.parse_page`` turns story pages into records, against two yardsticks.

Why these yardsticks: ``lxml.html.fromstring`` is the floor (building the tree, no extraction), so
``parse_page / lxml`` says how much our extraction adds on top of parsing; ``trafilatura.extract`` is
the generic extractor we chose not to use, so ``parse_page / trafilatura`` says what writing our
own parser bought. All three run on the same pages in the same process, interleaved round by round,
so machine noise hits them alike.

Pages: the sample site's stories (rendered once each with ``samplesite.render_page``) plus
``--pages`` synthetic stories from ``samplesite.Site(synthetic=N)``. Rendering happens before any
timing. Prints figures; it is not a test (exit status 0 whatever the verdict).

    .venv/bin/python bench/parse_speed.py [--pages 300] [--rounds 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import lxml.html

from core.constants import DEFAULT_SITE
from core.urls import story_url
from crawler.parsers import parse_page
from samplesite import Site, render_page

TARGET_VS_LXML = 0.6  # parse_page must keep at least this share of lxml's parse-only speed
TARGET_VS_TRAFILATURA = 5.0  # and be this many times faster than trafilatura


@dataclass(frozen=True)
class Page:
    url: str
    body: bytes
    content_type: str | None


# --- pages -----------------------------------------------------------------------------------------


def sample_pages() -> list[Page]:
    """Every story of the default data file, rendered exactly as a GET would answer it."""
    pages = []
    for story in Site().content.stories.values():
        url = story_url(story["kind"], story["id"], story.get("slug") or "")
        status, headers, body = render_page(_target(url))
        if status == 200:
            pages.append(Page(url, body, headers.get("Content-Type")))
    return pages


def synthetic_pages(n: int) -> list[Page]:
    """``n`` generated stories of every kind (the benchmark content of the sample site)."""
    if n <= 0:
        return []
    site = Site(synthetic=n)
    pages = []
    for story_id in site.content.synth.ids():
        story = site.content.story(story_id)
        url = story_url(story["kind"], story_id, story.get("slug") or "")
        resp = site.respond("GET", _target(url), {}, base=DEFAULT_SITE)
        if resp.status == 200:
            pages.append(Page(url, resp.body, resp.headers.get("Content-Type")))
    return pages


def _target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- contenders ------------------------------------------------------------------------------------


def run_parse_page(pages: list[Page]) -> None:
    for p in pages:
        parse_page(p.body, p.url, p.content_type)


def run_lxml(pages: list[Page]) -> None:
    for p in pages:
        lxml.html.fromstring(p.body)


def run_trafilatura(pages: list[Page]) -> None:
    import trafilatura

    for p in pages:
        trafilatura.extract(p.body, url=p.url)


CONTENDERS: dict[str, Callable[[list[Page]], None]] = {
    "parse_page": run_parse_page,
    "lxml parse-only": run_lxml,
    "trafilatura.extract": run_trafilatura,
}


# --- timing ----------------------------------------------------------------------------------------


def time_once(fn: Callable[[list[Page]], None], pages: list[Page]) -> float:
    """Seconds for one pass; a collection first so one contender's garbage is not billed to the next."""
    gc.collect()
    start = time.perf_counter()
    fn(pages)
    return time.perf_counter() - start


def measure(pages: list[Page], rounds: int) -> dict[str, list[float]]:
    """Pages/s of each contender per round, after one untimed warm-up pass each."""
    for fn in CONTENDERS.values():
        fn(pages)
    rates: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for _ in range(rounds):
        for name, fn in CONTENDERS.items():
            rates[name].append(len(pages) / time_once(fn, pages))
    return rates


def check_records(pages: list[Page]) -> Counter[str]:
    """What parse_page returned: a fast parser that returns errors would be a hollow win."""
    return Counter(parse_page(p.body, p.url, p.content_type).type for p in pages)


# --- report ----------------------------------------------------------------------------------------


def report(rates: dict[str, list[float]]) -> None:
    """Rates per contender, then the verdicts on the median of per-round ratios: contenders run
    back to back within a round, so a ratio taken inside one round cancels most background load."""
    print(f"{'':22}{'median p/s':>12}{'best p/s':>12}{'worst p/s':>12}")
    for name, values in rates.items():
        print(f"{name:22}{statistics.median(values):12.1f}{max(values):12.1f}{min(values):12.1f}")
    print()
    _verdict("parse_page / lxml parse-only", _ratio(rates, "lxml parse-only"), TARGET_VS_LXML)
    _verdict("parse_page / trafilatura", _ratio(rates, "trafilatura.extract"), TARGET_VS_TRAFILATURA)


def _ratio(rates: dict[str, list[float]], other: str) -> float:
    return statistics.median(ours / theirs for ours, theirs in zip(rates["parse_page"], rates[other], strict=True))


def _verdict(label: str, ratio: float, target: float) -> None:
    print(f"{label:32}{ratio:8.2f}x   target >= {target:.1f}x   {'PASS' if ratio >= target else 'FAIL'}")


def profile(pages: list[Page], rounds: int, top: int = 25) -> None:
    """cProfile of parse_page alone, top functions by cumulative and by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(rounds):
        run_parse_page(pages)
    profiler.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        print(f"\n--- parse_page profile, {rounds} x {len(pages)} pages, top {top} by {order} ---")
        print(_trim_header(out.getvalue()))


def _trim_header(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(lines[start:]).rstrip()


# --- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=300, metavar="N",
                        help="synthetic story pages added to the sample site's stories (default 300)")
    parser.add_argument("--rounds", type=int, default=5, metavar="N", help="timed rounds per contender (default 5)")
    parser.add_argument("--profile", action="store_true", help="also profile parse_page (cProfile, top 25)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.pages < 0:
        parser.error("--rounds must be >= 1 and --pages >= 0")

    sample, synthetic = sample_pages(), synthetic_pages(args.pages)
    pages = sample + synthetic
    size = sum(len(p.body) for p in pages)
    print(f"pages: {len(pages)} story pages ({len(sample)} sample-site + {len(synthetic)} synthetic), "
          f"mean {size / len(pages) / 1024:.1f} KiB, {args.rounds} timed rounds after 1 warm-up")
    print(f"parse_page records: {dict(check_records(pages))}")
    print(f"python {sys.version.split()[0]}, lxml {'.'.join(map(str, lxml.etree.LXML_VERSION))}, "
          f"trafilatura {_trafilatura_version()}\n")
    report(measure(pages, args.rounds))
    if args.profile:
        profile(pages, min(args.rounds, 3))
    return 0


def _trafilatura_version() -> str:
    import trafilatura

    return getattr(trafilatura, "__version__", "?")


if __name__ == "__main__":
    sys.exit(main())
