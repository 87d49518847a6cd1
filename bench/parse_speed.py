"""How fast ``crawler.parsers.parse_page`` turns story pages into records, against two yardsticks.

Why these yardsticks: ``lxml.html.fromstring`` is the floor (building the tree, no extraction), so
``parse_page / lxml`` says how much our extraction adds on top of parsing; ``trafilatura.extract`` is
the generic extractor we chose not to use, so ``parse_page / trafilatura`` says what writing our
own parser bought. All three run on the same pages in the same process, interleaved round by round,
so machine noise hits them alike.

Pages, measured as two sets: the real pages of ``../shared/reference/real/`` (the war.gov 2025
article pages, 130-180 KiB as a browser saved them, and the af.mil print views; ``--real DIR``), and
the sample site's stories (rendered once each with ``samplesite.render_page``) plus ``--pages``
synthetic stories from ``samplesite.Site(synthetic=N)``. Rendering happens before any timing.
Prints figures; it is not a test (exit status 0 whatever the verdict).

    .venv/bin/python bench/parse_speed.py [--pages 300] [--rounds 5] [--real DIR] [--profile]
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
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html

from core.constants import DEFAULT_SITE
from core.urls import story_url
from crawler.parsers import parse_page
from samplesite import Site, render_page

TARGET_VS_LXML = 0.4  # parse_page must keep at least this share of lxml's parse-only speed
TARGET_VS_TRAFILATURA = 5.0  # and be this many times faster than trafilatura


@dataclass(frozen=True)
class Page:
    url: str
    body: bytes
    content_type: str | None


# --- pages -----------------------------------------------------------------------------------------


REAL = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "real"
# Real story pages and the URL each was served at (see SOURCES.md there).
REAL_STORIES = {
    "wargov-2025-11-release-3981590-dod-2024-defense-acquisition-awards.puppeteer-dom.html":
        "https://www.war.gov/News/Releases/Release/Article/3981590/dod-announces-2024-defense-acquisition-awards/",
    "wargov-2025-11-contract-4319114-contracts-for-sept-30-2025.puppeteer-dom.html":
        "https://www.war.gov/News/Contracts/Contract/Article/4319114//",
}
REAL_SIZE = 100 * 1024  # the live site's article pages weigh 130-180 KiB
AFMIL_PRINT = "http://www.af.mil/DesktopModules/ArticleCS/Print.aspx?PortalId=1&ModuleId=850&Article={id}"


def real_pages(folder: Path) -> list[Page]:
    """The real story pages in ``folder``: the war.gov 2025 articles (130-180 KiB, the size of the
    live site's pages) and the af.mil 2016 print views (6-25 KiB, an older and smaller template)."""
    pages = [Page(url, (folder / name).read_bytes(), "text/html; charset=utf-8")
             for name, url in REAL_STORIES.items() if (folder / name).is_file()]
    for path in sorted(folder.glob("afmil-2016-*print-*.html")):
        article = next(part for part in path.name.split("-") if part.isdigit() and len(part) >= 6)
        pages.append(Page(AFMIL_PRINT.format(id=article), path.read_bytes(), "text/html"))
    return pages


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
    """CPU seconds of this process for one pass (all three contenders are single-threaded: CPU time
    is what they cost, and unlike wall time it does not count the moments other work on a shared
    machine had the core); a collection first so one contender's garbage is not billed to the next."""
    gc.collect()
    start = time.process_time()
    fn(pages)
    return time.process_time() - start


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
    parser.add_argument("--real", type=Path, default=REAL, metavar="DIR",
                        help=f"folder of the real reference pages (default {REAL})")
    parser.add_argument("--profile", action="store_true", help="also profile parse_page (cProfile, top 25)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.pages < 0:
        parser.error("--rounds must be >= 1 and --pages >= 0")

    real = real_pages(args.real) if args.real.is_dir() else []
    wargov = [p for p in real if "war.gov" in p.url]
    afmil = [p for p in real if "war.gov" not in p.url]
    sample, synthetic = sample_pages(), synthetic_pages(args.pages)
    print(f"python {sys.version.split()[0]}, lxml {'.'.join(map(str, lxml.etree.LXML_VERSION))}, "
          f"trafilatura {_trafilatura_version()}; {args.rounds} timed rounds after 1 warm-up per set")
    sets = {"real war.gov 2025 article pages (real size)": wargov, "real af.mil 2016 print views": afmil,
            "sample site": sample + synthetic}
    if not real:
        print(f"real pages: none ({args.real} is absent)")
    for name, pages in sets.items():
        if not pages:
            continue
        size = sum(len(p.body) for p in pages)
        print(f"\n== {name}: {len(pages)} story pages, mean {size / len(pages) / 1024:.1f} KiB"
              + (f" ({len(sample)} sample-site + {len(synthetic)} synthetic)" if name == "sample site" else ""))
        print(f"parse_page records: {dict(check_records(pages))}")
        if size / len(pages) < REAL_SIZE:
            print(f"(smaller than the live site's pages, {REAL_SIZE // 1024}+ KiB: the per-page work of extraction "
                  "weighs more against lxml's parse; the targets are set for real-size pages)")
        report(measure(pages, args.rounds))
    pages = real + sample + synthetic
    if args.profile:
        profile(pages, min(args.rounds, 3))
    return 0


def _trafilatura_version() -> str:
    import trafilatura

    return getattr(trafilatura, "__version__", "?")


if __name__ == "__main__":
    sys.exit(main())
