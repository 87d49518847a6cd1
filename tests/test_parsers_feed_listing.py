"""ArticleCS RSS feeds (every real feed in reference/real) and listing pages (the three real 2024
<listing-with-preview> fragments, other attribute orders, the sample site's paginated listings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.records import Feed, Listing, ListingItem, ParseError
from core.urls import feed_url, listing_url
from crawler.parsers import parse_page
from samplesite import Site, render_page

# outside the repository: ../shared/reference/real beside the checkout (CI has it there too)
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "real"
AFMIL_FEED = "http://www.af.mil/DesktopModules/ArticleCS/RSS.ashx?ContentType={ct}&Site=1&max=20"
SITE = "https://www.war.gov"

needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="reference pages not available")


def real(name: str) -> bytes:
    return (REAL / name).read_bytes()


def parse_feed_file(name: str, url: str) -> Feed:
    record = parse_page(real(name), url, "application/rss+xml; charset=utf-8")
    assert isinstance(record, Feed), record
    return record


# ---------------------------------------------------------------- real RSS feeds


@needs_real
@pytest.mark.parametrize(("name", "ct", "title", "count", "with_image"), [
    ("afmil-2016-rss-contenttype1-news-category11616.xml", 1, "Air Force Link News", 20, 11),
    ("afmil-2016-rss-contenttype1-news-site1.xml", 1, "Air Force Link News", 20, 18),
    ("afmil-2016-rss-contenttype10-factsheets.xml", 10, "Air Force Link Fact Sheets", 20, 18),
    ("afmil-2016-rss-contenttype3-biographies.xml", 3, "Air Force Link Biographies", 20, 20),
    ("afmil-2016-rss-contenttype7-commentaries-3items.xml", 7, "Air Force Link Commentaries", 3, 1),
])
def test_afmil_feeds(name: str, ct: int, title: str, count: int, with_image: int) -> None:
    feed = parse_feed_file(name, AFMIL_FEED.format(ct=ct))
    assert (feed.type, feed.title, len(feed.items)) == ("feed", title, count)
    assert sum(item.image_url is not None for item in feed.items) == with_image
    for item in feed.items:
        assert item.url.startswith("http://www.af.mil/") and f"/Article/{item.id}/" in item.url
        assert item.published.endswith("+00:00") and len(item.published) == 25
        assert item.title == " ".join(item.title.split()) and item.title
        assert item.kind is None  # af.mil ContentType numbers are not defense.gov's; URLs are not its grammar
        assert item.summary and "<img" not in item.summary and "<br" not in item.summary
    assert len({item.id for item in feed.items}) == count


@needs_real
def test_afmil_news_feed_first_item_in_full() -> None:
    feed = parse_feed_file("afmil-2016-rss-contenttype1-news-category11616.xml", AFMIL_FEED.format(ct=1))
    assert feed.items[0] == ListingItem(
        id=590267,
        url="http://www.af.mil/News/ArticleDisplay/tabid/223/Article/590267/womens-af-history-expands-with-new-four-star.aspx",
        title="Women’s AF history expands with new four-star",  # trailing space stripped
        published="2015-06-02T12:22:00+00:00",
        kind=None,
        image_url="http://media.defense.gov/2015/Jun/02/2001051541/670/394/0/150601-F-EK235-674.JPG",
        summary="Lt. Gen. Ellen Pawlikowski, the assistant secretary of the Air Force for acquisition, military "
                "deputy, was promoted to the rank of general, effective June 8.",
    )


@needs_real
def test_commentary_feed_entities_and_missing_enclosure() -> None:
    feed = parse_feed_file("afmil-2016-rss-contenttype7-commentaries-3items.xml", AFMIL_FEED.format(ct=7))
    first, second, third = feed.items
    assert first.summary.startswith("\"Honorable.\" That was the word used")
    assert first.image_url is None
    assert "It's also about more than thanking everyone" in second.summary  # &#39; decoded
    assert (third.id, third.published) == (141336, "2012-05-25T15:57:00+00:00")
    assert third.image_url == "http://media.defense.gov/2012/May/18/2000150405/670/394/0/120516-F-IW762-001.JPG"


@needs_real
def test_spaceforce_feed_with_malformed_self_link() -> None:
    url = "http://www.spaceforce.mil/DesktopModules/ArticleCS/RSS.ashx?ContentType=1&Site=1060&max=10"
    feed = parse_feed_file("spaceforcemil-2021-07-rss-contenttype1-site1060.decoded.xml", url)
    assert (feed.title, len(feed.items)) == ("United States Space Force News", 10)
    assert feed.items[0] == ListingItem(
        id=2705653,
        url="https://www.spaceforce.mil/News/Article/2705653/senate-confirms-gina-ortiz-jones-to-be-air-force-under-secretary/",
        title="Senate confirms Gina Ortiz Jones to be Air Force Under Secretary",
        published="2021-07-23T15:29:00+00:00",
        kind=None,
        image_url="https://media.defense.gov/2021/May/19/2002809800/670/394/0/210519-F-GO452-0001.JPG",
        summary="In explaining the basis for choosing Jones, the White House highlighted that she was commissioned "
                "through the Air Force ROTC program while a student at Boston University and “has spent her career "
                "working to protect U.S. economic and national security.”",
    )
    assert feed.items[-1].id == 2632370


def test_broken_feed_skips_empty_items_and_recovers() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>War News & Notes</title>
<atom:link href="http://www.war.gov/RSS.ashx?max=10?ContentType=1&Site=945&max=10" rel="self"/>
<item><title></title><link></link><description></description></item>
<item><title>No link at all</title></item>
<item><title> Good&nbsp; item </title><link>https://www.war.gov/News/Releases/Release/Article/4016543/readout/</link>
<pubDate>Tue, 24 Dec 2024 14:57:00 -0500</pubDate><description>Text &amp; more&lt;br/&gt;</description></item>
<item><title>Unclosed
"""
    record = parse_page(body, feed_url(1, SITE))
    assert isinstance(record, Feed)
    assert record.items == [ListingItem(
        id=4016543, url="https://www.war.gov/News/Releases/Release/Article/4016543/readout/", title="Good item",
        published="2024-12-24T19:57:00+00:00", kind="release", image_url=None, summary="Text & more")]


def test_html_error_page_at_a_feed_url_is_not_a_feed() -> None:
    record = parse_page(b"<html><body><h1>Server Error</h1></body></html>", feed_url(1, SITE), "text/html")
    assert isinstance(record, ParseError)
    assert (record.reason, record.page_type) == ("not_html", "feed")


def test_sample_site_feed() -> None:
    url = feed_url(1, SITE, max_items=10)
    status, headers, body = render_page(url.removeprefix(SITE))
    assert status == 200
    feed = parse_page(body, url, headers.get("Content-Type"))
    assert isinstance(feed, Feed)
    assert (feed.title, len(feed.items)) == ("U.S. Department of War News Stories", 10)
    news = {s["id"] for s in Site().content.stories.values() if s["kind"] == "news-story"}
    assert {item.id for item in feed.items} <= news
    assert {item.kind for item in feed.items} == {"news-story"}
    first = feed.items[0]
    assert first.published.endswith("+00:00") and first.url.startswith(f"{SITE}/News/News-Stories/Article/Article/")


# ---------------------------------------------------------------- listing fragments


@needs_real
@pytest.mark.parametrize(("name", "expected"), [
    ("defensegov-2024-12-listing-fragment-feature-story-4014615.html", ListingItem(
        id=4014615,
        url="https://www.defense.gov/News/Feature-Stories/Story/Article/4014615/medal-of-honor-monday-army-col-robert-l-howard/",
        title="Medal of Honor Monday: Army Col. Robert L. Howard",
        published="2024-12-30T07:37:17",
        kind="feature-story",
        image_url="https://media.defense.gov/2024/Dec/20/2003617742/825/780/0/241220-A-D0439-0082M.JPG",
        summary="Army Col. Robert Lewis Howard is the most decorated soldier to have served in the Vietnam War and is "
                "the only soldier to have been nominated three times for the Medal of Honor.")),
    ("defensegov-2024-12-listing-fragment-release-4016543.html", ListingItem(
        id=4016543,
        url="https://www.defense.gov/News/Releases/Release/Article/4016543/readout-of-secretary-of-defense-lloyd-j-austin-iiis-phone-call-with-turkish-min/",
        title="Readout of Secretary of Defense Lloyd J. Austin III's Phone Call With Turkish Minister of National "
              "Defense Yaşar Güler",
        published="2024-12-24T14:57:00",
        kind="release",
        image_url=None,  # article-image-url is empty; image-url is only the default social image
        summary="Secretary of Defense Lloyd J. Austin III spoke by phone with his Turkish counterpart about the "
                "ongoing situation in Syria.")),
    ("defensegov-2024-12-listing-fragment-contracts-4016173.html", ListingItem(
        id=4016173,
        url="https://www.defense.gov/News/Contracts/Contract/Article/4016173//",
        title="Contracts for Dec. 23, 2024",
        published="2024-12-23T17:00:31",
        kind="contract",
        image_url=None,
        summary="Today's Defense Department contracts valued at $7.5 million or more are now live on Defense.gov.")),
])
def test_real_listing_fragments(name: str, expected: ListingItem) -> None:
    url = "https://www.defense.gov/News/News-Stories/"
    record = parse_page(real(name), url)
    assert record == Listing(url=url, items=[expected], next_page=None)


def test_attribute_order_and_content_type_kind() -> None:
    """The order live war.gov scrapers rely on; kind from content-type-val when the URL has no grammar."""
    body = b"""<div class="alist"><div class="alist-inner alist-more-here">
<listing-with-preview article-id="4300055" article-title="Statement &amp; Update" article-alt="x"
  article-url="/News/Releases/Release/Article/4300055/statement/" publish-date-jss="2025-09-05T10:00:00"
  content-type-val="9" article-summary="  Two   spaces " article-image-url=""></listing-with-preview>
<listing-with-preview content-type-val="400" publish-date-ap="Dec. 19, 2025" article-url="https://www.war.gov/Go/4360120"
  article-title="Contracts" article-id="4360120"></listing-with-preview>
<listing-with-preview article-title="No id, no article URL" article-url="https://www.war.gov/About/"></listing-with-preview>
</div>
<div class="apager dgov-pager"><ul><li class="nextprev"><a href="?Page=1">&laquo;</a></li>
<li><a href="?Page=1">1</a></li>
<li class="active"><a href="?Page=2">2</a></li><li><a href="?Page=3">3</a></li>
<li class="nextprev"><a href="?Page=3">&raquo;</a></li></ul></div></div>"""
    url = f"{SITE}/News/Releases/?Page=2"
    record = parse_page(body, url)
    assert record == Listing(url=url, next_page=f"{SITE}/News/Releases/?Page=3", items=[
        ListingItem(4300055, f"{SITE}/News/Releases/Release/Article/4300055/statement/", "Statement & Update",
                    "2025-09-05T10:00:00", "release", None, "Two spaces"),
        ListingItem(4360120, "https://www.war.gov/Go/4360120", "Contracts", "2025-12-19", "contract", None, None),
    ])


def test_sample_site_listing_pagination_covers_every_story() -> None:
    first = listing_url("news-story", 1, SITE)
    status, headers, body = render_page(first.removeprefix(SITE))
    page1 = parse_page(body, first, headers.get("Content-Type"))
    assert isinstance(page1, Listing)
    assert page1.next_page == f"{SITE}/News/News-Stories/?Page=2"
    status, headers, body = render_page(page1.next_page.removeprefix(SITE))
    page2 = parse_page(body, page1.next_page, headers.get("Content-Type"))
    assert isinstance(page2, Listing) and page2.next_page is None
    items = page1.items + page2.items
    stories = {s["id"]: s for s in Site().content.stories.values() if s["kind"] == "news-story"}
    assert sorted(i.id for i in items) == sorted(stories)
    assert all(i.kind == "news-story" and i.title == stories[i.id]["title"] for i in items)
    assert [i.published for i in items] == sorted((i.published for i in items), reverse=True)


def test_empty_listing_page_is_a_listing_not_an_error() -> None:
    body = b'<div class="alist"><h1 class="maintitle">News</h1><div class="alist-inner"></div></div>'
    assert parse_page(body, f"{SITE}/News/News-Stories/?Page=99") == Listing(url=f"{SITE}/News/News-Stories/?Page=99")
    error = parse_page(b"<html><body><p>Nothing here</p></body></html>", f"{SITE}/News/News-Stories/")
    assert isinstance(error, ParseError) and (error.reason, error.page_type) == ("no_body", "listing")
