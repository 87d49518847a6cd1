"""The package graph, read from the source: layers stay layers, and the sample site stays independent.

Layers from the bottom: ``core`` (shared vocabulary, imports nothing of ours); ``db`` and ``crawler``
(``crawler`` may import ``db``, never the reverse); ``monitor``; the CLI (``defwatch``) on top.
``samplesite`` stands in for war.gov and imports no product package, so a mistake in the crawler's
URL grammar cannot be served by the site the tests check it against.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core import urls
from core.constants import STORY_KINDS
from samplesite import paths

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("core", "crawler", "db", "monitor", "defwatch")
PACKAGES = (*PRODUCT, "samplesite")
# What each package may import (besides itself); anything else is a layer violation.
ALLOWED = {
    "core": set(),
    "db": {"core"},
    "crawler": {"core", "db"},
    "monitor": {"core", "db", "crawler"},
    "defwatch": {"core", "db", "crawler", "monitor", "samplesite"},
    "samplesite": set(),
}


def imported_packages(source: str) -> set[str]:
    """Top-level packages of ours that a module imports anywhere (in functions and TYPE_CHECKING too)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


def package_graph(root: Path = ROOT) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        edges: set[str] = set()
        for path in (root / package).rglob("*.py"):
            edges |= imported_packages(path.read_text(encoding="utf-8"))
        graph[package] = edges - {package}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path (first node repeated at the end), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            cycle = visit(nxt, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_the_package_graph_has_no_cycle():
    assert find_cycle(package_graph()) is None


def test_every_package_imports_only_the_layers_below_it():
    graph = package_graph()
    wrong = {package: sorted(edges - ALLOWED[package]) for package, edges in graph.items() if edges - ALLOWED[package]}
    assert not wrong


def test_samplesite_imports_no_product_package():
    assert not package_graph()["samplesite"] & set(PRODUCT)


def test_the_checks_see_imports_and_cycles():
    """The checks above could pass by reading nothing: they must see an import inside a function and a cycle."""
    source = "import os\nfrom db.archive import Archive\ndef f():\n    from crawler import urls\n    import monitor.x\n"
    assert imported_packages(source) == {"db", "crawler", "monitor"}
    assert find_cycle({"db": {"crawler"}, "crawler": {"core", "db"}, "core": set()}) == ["crawler", "db", "crawler"]
    assert find_cycle({"crawler": {"db"}, "db": {"core"}, "core": set()}) is None


def test_story_kinds_are_the_url_grammar_kinds():
    assert set(urls.STORY_PREFIX_BY_KIND) == set(urls.LISTING_BY_KIND) == set(urls.STORY_PATHS.values()) \
        == set(STORY_KINDS)


@pytest.mark.parametrize("kind", paths.STORY_KINDS)
def test_the_crawler_reads_the_sample_site_urls_as_the_site_means_them(kind):
    """The site's own URL table and the crawler's grammar are written apart; here they must agree."""
    assert urls.classify_url(paths.story_url(kind, 3610656, "some-slug")) == urls.PageRef("story", 3610656, kind)
    assert paths.route(urls.story_url(kind, 3610656, "x", site="")) == paths.Route("story", 3610656, kind)
    assert urls.classify_url(paths.listing_url(kind)) == urls.PageRef("listing", kind=kind)
    assert paths.route(urls.listing_url(kind, site="")) == paths.Route("listing", kind=kind)


def test_photo_and_feed_urls_agree():
    assert urls.classify_url(paths.photo_url(2003354321)) == urls.PageRef("photo", 2003354321)
    assert paths.route(urls.photo_page_url(2003354321, site="")) == paths.Route("photo", 2003354321)
    assert paths.FEED_KIND == urls.CONTENT_TYPE_KIND
    for content_type in paths.FEED_KIND:
        assert urls.classify_url(paths.feed_url(content_type)).type == "feed"
        assert urls.feed_url(content_type, site="http://h") == paths.feed_url(content_type, site="http://h")
