"""The sample site's markup is the real 2025 war.gov markup: structure, page size, variants, and
what the parsers read from it compared with what the site knows it printed (samplesite.truth)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import lxml.html
import pytest

from core.records import Story
from crawler.parsers import parse_page
from samplesite.site import Site
from samplesite.truth import expected_story
from samplesite.variants import (
    BR_GALLERY,
    BR_INLINE_MEDIA,
    CONTRACT_2025,
    DEFAULT_POOL,
    DOWNLOAD_LABEL,
    HELD_OUT_VARIANTS,
    LEGACY,
    MODERN,
    NO_PHOTO_LINK,
    NO_VIRIN,
    story_variant,
)
from samplesite.views import the_story_url

SITE = "https://www.war.gov"
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "real"
REAL_RELEASE = REAL / "wargov-2025-11-release-3981590-dod-2024-defense-acquisition-awards.puppeteer-dom.html"
KIB = 1024
SYNTHETIC = 150


def pages(site: Site, held_out: bool = False) -> list[tuple[int, str, str, bytes]]:
    """(story id, variant, url, body) of every story of ``site``."""
    out = []
    for story_id in site.content.all_story_ids():
        story = site.content.story(story_id)
        url = the_story_url(story, SITE)
        resp = site.respond("GET", url.removeprefix(SITE), {}, base=SITE)
        assert resp.status == 200, url
        out.append((story_id, story_variant(story, held_out), url, resp.body))
    return out


@pytest.fixture(scope="module")
def default_pages() -> tuple[Site, list[tuple[int, str, str, bytes]]]:
    site = Site(synthetic=SYNTHETIC)
    return site, pages(site)


@pytest.fixture(scope="module")
def held_out_pages() -> tuple[Site, list[tuple[int, str, str, bytes]]]:
    site = Site(synthetic=SYNTHETIC, held_out=True)
    return site, pages(site, held_out=True)


def doc(body: bytes) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(body)


def text(el) -> str:  # noqa: ANN001
    return " ".join(el.text_content().split())


# ---------------------------------------------------------------- size and structure

def test_story_pages_weigh_what_real_ones_do(default_pages, held_out_pages) -> None:  # noqa: ANN001
    """The real 2025 story pages weigh 130-180 KiB (132 KB and 183 KB saved)."""
    for _, batch in (default_pages, held_out_pages):
        sizes = [len(body) / KIB for *_, body in batch]
        assert min(sizes) >= 130 and max(sizes) <= 180, (min(sizes), max(sizes))


def test_other_pages_carry_the_same_chrome() -> None:
    site = Site()
    for path in ("/News/News-Stories/", "/News/Contracts/?Page=2", "/Multimedia/Photos/igphoto/2003354108/", "/"):
        resp = site.respond("GET", path, {}, base=SITE)
        assert resp.status == 200 and len(resp.body) > 120 * KIB, path
        page = doc(resp.body)
        assert page.cssselect("header#header-main nav.main li.top-level") and page.cssselect("footer#footer-main")


# Landmarks of the real 2025 article page, checked on the real page and on ours alike.
LANDMARKS = [
    "form#Form input#__VIEWSTATE",
    "header#header-main .header_banner_container",
    "header#header-main nav.main li.parent.top-level div.level2-container ul.level2",
    "div.DnnModule-ArticleCSViewArticle div.article-view > div.adetail.abanner.aframe[itemscope]",
    "div.adetail > header.content-wrap > div.cont-type > a.content-type-text",
    "div.adetail > header.content-wrap > h1.maintitle",
    "div.adetail > header.content-wrap > div.date-line > span.date",
    "div.date-line > span.social-block span.a2a_kit[data-a2a-url]",
    "div.adetail > div.content.content-wrap > div.inside.ntext > div.body > p",
    "div.subscribe",
    "div#footer div.footer-nav-col ul.footer-nav",
    "footer#footer-main",
    "div#addtoany",
    "script[type='application/ld+json']",
    "meta[property='og:url']",
    "meta#MetaDescription",
]


@pytest.mark.skipif(not REAL_RELEASE.exists(), reason="real pages not available (../shared/reference/real/)")
def test_a_2025_story_has_the_landmarks_of_the_real_release_page() -> None:
    real = doc(REAL_RELEASE.read_bytes())
    site = Site()
    story = site.content.story(3702388)  # a release
    assert story_variant(story) == MODERN
    ours = doc(site.respond("GET", the_story_url(story, ""), {}, base=SITE).body)
    for selector in LANDMARKS:
        assert real.cssselect(selector), f"real page lacks {selector}"
        assert ours.cssselect(selector), f"sample page lacks {selector}"
    for page in (real, ours):
        assert "content-type-9" in page.cssselect("div.adetail")[0].get("class").split()
        assert text(page.cssselect(".presenterinfoType.immediate-flag")[0]) == "Immediate Release"
        assert not page.cssselect("link[rel=canonical]")  # none on the real page
        # the module's inline style sits before the article; a script follows it
        module = page.cssselect("div.DnnModule-ArticleCSViewArticle")[0]
        assert module.cssselect("style") and module.cssselect("script")
        assert page.cssselect("meta#MetaDescription")[0].get("content").endswith(", ")
    title = ours.findtext(".//title").strip()
    assert title == f"{story['title']} > U.S. Department of War > Release | U.S. Department of War"


def test_contract_pages_print_agency_headers_as_centred_paragraphs() -> None:
    site = Site()
    body = site.respond("GET", the_story_url(site.content.story(3543120), ""), {}, base=SITE).body
    paras = doc(body).cssselect("div.body > p")
    headers = [p for p in paras if p.get("style") == "text-align: center;"]
    assert [text(p) for p in headers] == ["ARMY", "NAVY", "AIR FORCE"]
    assert all(p.cssselect("strong") for p in headers)
    assert text(paras[-1]) == "*Small business"


def test_photo_page_prints_what_the_real_photo_pages_show() -> None:
    """Order of the real photo-page text: section, blurb, title, caption, download, credit, VIRIN."""
    site = Site()
    body = site.respond("GET", "/Multimedia/Photos/igphoto/2003354115/", {}, base=SITE).body
    main = doc(body).cssselect("main")[0]
    lines = [line for line in (" ".join(t.split()) for t in main.itertext()) if line]
    want = ["Photos", "Snapshots of what’s happening in the Defense Department.", "CSpO Logo", "CSpO logo",
            "Download Image: Full Size (931.84 KB)", "Photo By: OSDPA", "VIRIN: 231207-D-D0439-1234.JPG",
            "Photo Gallery"]
    positions = [lines.index(w) for w in want]
    assert positions == sorted(positions)


def test_listing_is_the_2025_listing_markup() -> None:
    site = Site()
    page = doc(site.respond("GET", "/News/Releases/", {}, base=SITE).body)
    items = page.cssselect("div.alist div.alist-inner.alist-more-here > feature-template > listing-with-preview")
    assert len(items) == 6
    assert {i.get("content-type-name") for i in items} == {"News Release"}
    assert {i.get("content-type-val") for i in items} == {"9"}


# ---------------------------------------------------------------- variants

def test_variants_are_stable_and_the_default_pool_is_served(default_pages) -> None:  # noqa: ANN001
    site, batch = default_pages
    seen = Counter(variant for _, variant, _, _ in batch)
    assert set(seen) == {name for name, _ in DEFAULT_POOL}
    assert seen[MODERN] > len(batch) / 2
    again = Site(synthetic=SYNTHETIC)
    assert all(story_variant(again.content.story(i)) == v for i, v, _, _ in batch)


def test_each_default_variant_prints_its_template(default_pages) -> None:  # noqa: ANN001
    _, batch = default_pages
    for _, variant, url, body in batch:
        page = doc(body)
        if variant == LEGACY:
            assert page.cssselect("article.adetail > header.header .info span.date"), url
        elif variant == BR_GALLERY:
            assert page.cssselect("div.adetail div.body br") and not page.cssselect("div.body p"), url
            assert not page.cssselect("div.body .media-inline"), url
        else:
            assert page.cssselect("div.adetail > header.content-wrap div.date-line span.date"), url
            assert not page.cssselect("article.adetail"), url


def test_held_out_variants_print_the_markup_of_their_miss_class(held_out_pages) -> None:  # noqa: ANN001
    site, batch = held_out_pages
    seen = Counter(variant for _, variant, _, _ in batch)
    assert set(seen) >= HELD_OUT_VARIANTS
    for story_id, variant, url, body in batch:
        page = doc(body)
        blocks = page.cssselect("div.body .media-inline")
        if variant == BR_INLINE_MEDIA:
            assert page.cssselect("div.body br") and blocks and not page.cssselect("div.body > p"), url
        elif variant == DOWNLOAD_LABEL:
            lone = page.cssselect("div.body > div.media-download > a")
            assert len(lone) == len(blocks) > 0 and all(re.fullmatch(r"Download: Full Size \([\d.]+ [KM]B\)",
                                                                     text(a)) for a in lone), url
            assert not any(b.cssselect("a.download-link") for b in blocks), url
        elif variant == NO_PHOTO_LINK:
            for block in blocks:
                assert block.get("data-media-id") is None and not block.cssselect("a[href*=igphoto]"), url
                src = block.cssselect("img")[0].get("src")
                assert re.match(SITE + r"/media/\d{4}/[A-Z][a-z]{2}/\d{2}/\d+/825/780/0/", src), src
        elif variant == NO_VIRIN:
            expected = expected_story(site.content, story_id)["images"]
            for block, img in zip(blocks, expected, strict=True):
                assert "VIRIN" not in text(block) and not block.cssselect("a.download-link"), url
                assert block.cssselect("img")[0].get("data-src").endswith(f"/{img['virin']}.JPG"), url
        elif variant == CONTRACT_2025:
            assert not page.cssselect("div.date-line span.date"), url
            story = site.content.story(story_id)
            assert page.findtext(".//title").strip().startswith("> U.S. Department of War > Contracts")
            og_title = page.cssselect("meta[property='og:title']")[0].get("content")
            assert re.fullmatch(r"Contracts for [A-Z][a-z]+ \d{1,2}, \d{4}", og_title) and "." not in og_title
            assert page.cssselect("meta[property='og:url']")[0].get("content").endswith(f"/{story['id']}//")


def test_held_out_listings_print_the_2024_pager_and_titles_only_items() -> None:
    site = Site(held_out=True)
    page = doc(site.respond("GET", "/News/Contracts/", {}, base=SITE).body)
    assert page.cssselect("listing-titles-only") and not page.cssselect("listing-with-preview")
    assert {i.get("article-title") for i in page.cssselect("listing-titles-only")} == {""}
    page = doc(site.respond("GET", "/News/News-Stories/", {}, base=SITE).body)
    nxt = page.cssselect("div.apager > div.nextprev > a[aria-label=Next]")
    assert len(nxt) == 2 and nxt[0].get("href").endswith("/News/News-Stories/?Page=2")


# ---------------------------------------------------------------- what the parsers read

def _misses(site: Site, batch: list[tuple[int, str, str, bytes]]) -> list[str]:
    """Every field where the parser's record differs from what the site printed."""
    misses = []
    for story_id, variant, url, body in batch:
        record = parse_page(body, url, "text/html; charset=utf-8")
        want = expected_story(site.content, story_id)
        if not isinstance(record, Story):
            misses.append(f"{variant} {story_id}: {record}")
            continue
        got_images = [(i.media_id, i.virin.raw if i.virin else None, i.title, i.caption, i.credit)
                      for i in record.images]
        want_images = [(i["media_id"], i["virin"], i["title"], i["caption"], i["credit"]) for i in want["images"]]
        for field, got, expected in (("title", record.title, want["title"]),
                                     ("published", record.published, want["published"]),
                                     ("paragraphs", record.paragraphs, want["paragraphs"]),
                                     ("images", got_images, want_images)):
            if got != expected:
                misses.append(f"{variant} {story_id} {field}: {got!r} != {expected!r}")
    return misses


def test_parsers_read_every_default_variant_exactly(default_pages) -> None:  # noqa: ANN001
    site, batch = default_pages
    assert _misses(site, batch) == []


def test_parsers_read_every_held_out_variant_exactly(held_out_pages) -> None:  # noqa: ANN001
    site, batch = held_out_pages
    assert _misses(site, batch) == []
