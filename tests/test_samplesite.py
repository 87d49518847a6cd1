"""The sample site over real HTTP on 127.0.0.1: pages, validators, noise, changes and faults."""

from __future__ import annotations

import json
import re
import time
import unicodedata
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import lxml.etree
import lxml.html
import pytest

from core.urls import CONTENT_TYPE_KIND, feed_url, listing_url
from samplesite import SampleSite, render_page
from samplesite.content import load_data
from samplesite.site import Site
from samplesite.views import the_story_url

STORY = "/News/News-Stories/Article/Article/3610656/more-nations-meet-to-address-space-security/"
PHOTOS = {2003354108: ("231111-F-NU281-1013M", "2.91 MB", "Justin Pacheco, Air Force"),
          2003354115: ("231207-D-D0439-1234", "931.84 KB", "OSDPA"),
          2003354121: ("230803-X-NY190-1001", "563.2 KB", "Space Force Senior Airman Samuel Becker"),
          2003354127: ("230103-X-KD758-1001", "2.75 MB", "Joshua Conti, Space Force")}
DATA = load_data()
BY_ID = {s["id"]: s for s in DATA["stories"]}


@pytest.fixture(scope="module")
def server():
    with SampleSite() as site:
        yield site


@pytest.fixture
def site(server):
    server.reset()
    server.clear_requests()
    yield server
    server.reset()


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET", data: bytes | None = None,
        timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def admin(site: SampleSite, action: str, **kwargs) -> tuple[int, dict]:
    status, _, body = get(f"{site.base_url}/__admin__/{action}", {"Content-Type": "application/json"},
                          method="POST", data=json.dumps(kwargs).encode())
    return status, json.loads(body)


def doc(body: bytes) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(body)


def text(el) -> str:
    return " ".join(el.text_content().split())


def _url(story: dict) -> str:
    """The story's path (site-relative)."""
    return the_story_url(story, "")


# --- pages --------------------------------------------------------------------------------------
def test_story_3610656_is_faithful(site):
    status, headers, body = get(site.base_url + STORY)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = doc(body)
    assert text(page.cssselect("h1.maintitle")[0]) == "More Nations Meet to Address Space Security"
    # the 2025 template: header.content-wrap > div.date-line > span.date, the byline, the AddToAny block
    line = page.cssselect("div.adetail > header.content-wrap > div.date-line")[0]
    assert [text(s) for s in line.cssselect("span.date, span.pipe, span.byline")][:3] == [
        "Dec. 7, 2023", "|", "By David Vergun , DOD News"]
    assert line.cssselect(".social-block .a2a_kit")[0].get("data-a2a-url") == site.base_url + STORY
    paras = [p.text_content() for p in page.cssselect(".body > p")]
    assert len(paras) == 9
    assert paras[0] == ("The Defense Department participated in a meeting of the Combined Space Operations "
                        "Initiative Principals Board, known as CSpO, in Berlin.")
    assert paras[7].startswith('"The CSpO Initiative') and "toward\u202fcombined" in paras[7]
    assert paras[8].endswith("the complex challenges we collectively face.\"")
    blocks = page.cssselect(".body .media-inline")
    assert [b.get("data-media-id") for b in blocks] == [str(m) for m in PHOTOS]
    logo = blocks[1]
    assert logo.cssselect("img")[0].get("alt") == "logo"
    assert text(logo.cssselect(".mtitle")[0]) == "CSpO Logo" and text(logo.cssselect(".caption")[0]) == "CSpO logo"
    assert text(logo.cssselect(".download-link")[0]) == "Download: Full Size (931.84 KB)"
    assert text(logo.cssselect(".credit")[0]) == "Photo By: OSDPA"
    assert text(logo.cssselect(".virin")[0]) == "VIRIN: 231207-D-D0439-1234"
    assert "SpaceX’s Falcon 9" in text(blocks[0].cssselect(".caption")[0])
    assert blocks[0].cssselect("img")[0].get("src") == (
        "https://media.defense.gov/2023/Dec/07/2003354108/825/780/0/231111-F-NU281-1013M.JPG")
    # body order: image after paragraph 1, spotlight between the Plumb and Dickinson quotes
    order = [el.tag if el.tag != "div" else el.get("class").split()[0] for el in page.cssselect(".body > *")]
    assert order == ["p", "media-inline", "p", "p", "media-inline", "p", "p", "media-inline", "p", "p",
                     "spotlight-inline", "p", "p", "media-inline"]
    spot = page.cssselect(".spotlight-inline a")[0]
    assert spot.get("href") == "https://www.defense.gov/Spotlights/DOD-Space-Strategy/"
    assert [text(a) for a in page.cssselect(".tags a")] == [
        "space", "Space Force", "innovation", "Science", "technology", "Engineering", "partnerships", "Space Command"]
    related = page.cssselect(".related .item a.title")
    assert len(related) == 2
    for a in related:
        assert a.get("href").startswith(site.base_url + "/News/")
        assert get(a.get("href"))[0] == 200
    assert page.cssselect("meta[property='og:url']")[0].get("content") == site.base_url + STORY


def test_photo_pages_of_story_3610656(site):
    for media_id, (virin, size, credit) in PHOTOS.items():
        status, _, body = get(f"{site.base_url}/Multimedia/Photos/igphoto/{media_id}/")
        assert status == 200
        page = doc(body)
        assert text(page.cssselect(".virin-value")[0]) == f"VIRIN: {virin}.JPG"
        assert text(page.cssselect(".download-link")[0]) == f"Download Image: Full Size ({size})"
        assert text(page.cssselect(".photographer")[0]) == f"Photo By: {credit}"
        assert page.cssselect(".download-link")[0].get("href").endswith(f"/{media_id}/-1/-1/0/{virin}.JPG")


def test_every_kind_has_a_page_and_contracts_have_no_slug(site):
    kinds = {s["kind"] for s in DATA["stories"]}
    assert {"news-story", "feature-story", "release", "transcript", "contract", "speech"} <= kinds
    for kind in kinds:
        story = next(s for s in DATA["stories"] if s["kind"] == kind)
        path = _url(story)
        if kind == "contract":
            assert re.fullmatch(r"/News/Contracts/Contract/Article/\d+/", path)
        status, _, body = get(site.base_url + path)
        assert status == 200, path
        assert text(doc(body).cssselect("h1.maintitle")[0]) == story["title"]
    contract = next(s for s in DATA["stories"] if s["kind"] == "contract")
    listed = doc(get(listing_url("contract", site=site.base_url))[2]).cssselect("listing-with-preview")[0]
    assert listed.get("article-url").endswith("//")  # as on the real listings
    assert get(listed.get("article-url"))[0] == 200
    paras = [text(p) for p in doc(get(site.base_url + _url(contract))[2]).cssselect(".body > p")]
    assert paras[0] in ("ARMY", "NAVY", "AIR FORCE") and paras[0].isupper()


def test_listing_pagination_reaches_every_story(site):
    for kind in ("news-story", "release", "contract"):
        url, seen, dates = listing_url(kind, site=site.base_url), [], []
        while url:
            status, _, body = get(url)
            assert status == 200
            items = doc(body).cssselect("listing-with-preview")
            assert 0 < len(items) <= 10
            seen += [int(i.get("article-id")) for i in items]
            dates += [i.get("publish-date-jss") for i in items]
            nxt = doc(body).cssselect(".apager li.nextprev a[aria-label='Next page']")
            url = urljoin(url, nxt[0].get("href")) if nxt else None
        expected = {s["id"] for s in DATA["stories"] if s["kind"] == kind}
        assert sorted(seen) == sorted(expected)
        assert dates == sorted(dates, reverse=True)
    first = doc(get(site.base_url + "/News/News-Stories/")[2]).cssselect("listing-with-preview")
    assert len(first) == 10


def test_feed_is_newest_first_and_honours_max(site):
    status, headers, body = get(feed_url(1, site=site.base_url, max_items=3))
    assert status == 200 and "xml" in headers["Content-Type"]
    items = lxml.etree.fromstring(body).findall("./channel/item")
    assert len(items) == 3
    news = sorted((s for s in DATA["stories"] if s["kind"] == CONTENT_TYPE_KIND[1]),
                  key=lambda s: s["published"], reverse=True)
    assert [i.findtext("title") for i in items] == [s["title"] for s in news[:3]]
    assert all(i.findtext("guid") == i.findtext("link") for i in items)
    all_items = lxml.etree.fromstring(get(feed_url(1, site=site.base_url, max_items=100))[2]).findall(".//item")
    assert len(all_items) == len(news)


def test_robots_and_not_found(site):
    status, _, body = get(site.base_url + "/robots.txt")
    assert status == 200
    assert "Disallow: /__admin__/" in body.decode() and "Disallow: /Search/" in body.decode()
    status, _, body = get(site.base_url + "/News/No-Such-Section/")
    assert status == 404 and b"Page not found" in body
    assert get(site.base_url + "/News/News-Stories/Article/Article/1234/nope/")[0] == 404


def test_noise_differs_but_etag_does_not(site):
    (s1, h1, b1), (s2, h2, b2) = get(site.base_url + STORY), get(site.base_url + STORY)
    assert s1 == s2 == 200 and b1 != b2
    assert h1["ETag"] == h2["ETag"] and h1["Last-Modified"] == h2["Last-Modified"]
    p1, p2 = doc(b1), doc(b2)
    for sel in (".hit-counter", ".render-time"):
        assert text(p1.cssselect(sel)[0]) != text(p2.cssselect(sel)[0])
    assert p1.cssselect("#__VIEWSTATE")[0].get("value") != p2.cssselect("#__VIEWSTATE")[0].get("value")
    assert re.search(rb"\?cdv=\d+", b1) and re.findall(rb"\?cdv=\d+", b1) != re.findall(rb"\?cdv=\d+", b2)
    strip = re.compile(rb'Page views: [\d,]+|Rendered \d+ minutes? ago|value="[^"]*"|\?cdv=\d+')
    assert strip.sub(b"", b1) == strip.sub(b"", b2)


def test_conditional_get(site):
    _, headers, _ = get(site.base_url + STORY)
    status, h304, body = get(site.base_url + STORY, {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b"" and h304["ETag"] == headers["ETag"]
    assert get(site.base_url + STORY, {"If-Modified-Since": headers["Last-Modified"]})[0] == 304
    assert get(site.base_url + STORY, {"If-None-Match": '"other"'})[0] == 200
    site.set_title(3610656, "More Nations Meet on Space Security")
    status, h2, _ = get(site.base_url + STORY, {"If-None-Match": headers["ETag"]})
    assert status == 200 and h2["ETag"] != headers["ETag"]
    assert parsedate_to_datetime(h2["Last-Modified"]) > parsedate_to_datetime(headers["Last-Modified"])
    assert get(site.base_url + STORY, {"If-Modified-Since": headers["Last-Modified"]})[0] == 200


def test_edits_are_visible(site):
    site.edit_paragraph(3610656, 2, "Established in 2014, the initiative has grown to 10 members.")
    paras = [text(p) for p in doc(get(site.base_url + STORY)[2]).cssselect(".body > p")]
    assert paras[2] == "Established in 2014, the initiative has grown to 10 members." and len(paras) == 9
    site.set_caption(2003354115, "The CSpO logo, updated.")
    assert "The CSpO logo, updated." in text(doc(get(site.base_url + STORY)[2]).cssselect(".media-inline")[1])
    photo = doc(get(f"{site.base_url}/Multimedia/Photos/igphoto/2003354115/")[2])
    assert text(photo.cssselect(".media-inline-popup .caption")[0]) == "The CSpO logo, updated."
    site.add_related(3610656, 4190050)
    site.drop_related(3610656, 3599817)
    ids = [re.search(r"/Article/(\d+)/", a.get("href")).group(1)
           for a in doc(get(site.base_url + STORY)[2]).cssselect(".related .item a")]
    assert ids == ["3727730", "4190050"]


def test_publish_appears_first(site):
    new_id = site.publish()
    first = doc(get(site.base_url + "/News/News-Stories/")[2]).cssselect("listing-with-preview")[0]
    kind = site.content.story(new_id)["kind"]
    if kind != "news-story":
        first = doc(get(listing_url(kind, site=site.base_url))[2]).cssselect("listing-with-preview")[0]
    assert int(first.get("article-id")) == new_id
    assert get(first.get("article-url"))[0] == 200
    given = site.publish({"title": "Pentagon Opens New Visitor Center", "paragraphs": ["One.", "Two."]})
    feed = lxml.etree.fromstring(get(feed_url(1, site=site.base_url, max_items=1))[2])
    assert feed.findtext("./channel/item/title") == "Pentagon Opens New Visitor Center"
    page = doc(get(f"{site.base_url}/News/News-Stories/Article/Article/{given}/x/")[2])
    assert [text(p) for p in page.cssselect(".body > p")] == ["One.", "Two."]


def test_remove_and_restore(site):
    site.remove(3610656, status=410)
    assert get(site.base_url + STORY)[0] == 410
    ids = [i.get("article-id") for i in doc(get(listing_url("news-story", site=site.base_url))[2])
           .cssselect("listing-with-preview")]
    assert "3610656" not in ids
    site.restore(3610656)
    assert get(site.base_url + STORY)[0] == 200
    site.remove("/Multimedia/Photos/igphoto/2003354108/")
    assert get(f"{site.base_url}/Multimedia/Photos/igphoto/2003354108/")[0] == 404
    assert get(f"{site.base_url}/Multimedia/Photos/igphoto/2003354115/")[0] == 200


def test_block_gives_akamai_403(site):
    site.block(3610656)
    status, headers, body = get(site.base_url + STORY)
    assert status == 403 and headers["Server"] == "AkamaiGHost"
    for marker in (b"<TITLE>Access Denied</TITLE>", b"<H1>Access Denied</H1>",
                   b"You don't have permission to access", b"on this server.", b"Reference&#32;&#35;18"):
        assert marker in body
    assert get(site.base_url + "/robots.txt")[0] == 200
    site.block(None)
    assert get(site.base_url + "/robots.txt")[0] == 403
    site.unblock()
    assert get(site.base_url + STORY)[0] == 200


def test_fail_delay_maintenance_and_rate_limit(site):
    site.fail(STORY, status=503)
    assert get(site.base_url + STORY)[0] == 503
    site.heal()
    site.delay(0.4, 3610656)
    start = time.monotonic()
    assert get(site.base_url + STORY)[0] == 200 and time.monotonic() - start >= 0.4
    site.delay(0)  # only removes the site-wide delay; the story one stays
    site.delay(0, 3610656)
    site.maintenance(None)
    status, _, body = get(site.base_url + STORY)
    assert status == 200 and b"Site Under Maintenance" in body and b"maintitle" not in body
    site.end_maintenance()
    site.rate_limit(2, retry_after=30)
    statuses = [get(site.base_url + "/robots.txt") for _ in range(3)]
    assert [s for s, _, _ in statuses] == [200, 200, 429]
    assert 1 <= int(statuses[2][1]["Retry-After"]) <= 30
    site.rate_limit(None)
    assert get(site.base_url + "/robots.txt")[0] == 200


def test_break_html_modes(site):
    _, h0, good = get(site.base_url + STORY)
    site.break_html(3610656)
    _, h1, broken = get(site.base_url + STORY)
    # cut inside the article body: nothing after it (the rest of the body, </main>, </html>) arrives
    assert b"</html>" not in broken and b"</main>" not in broken and broken.endswith(b'<div class="media-inl')
    assert broken.count(b"<p>") < good.count(b"<p>") and h1["ETag"] != h0["ETag"]
    site.break_html(None, mode="redesign")  # every story; the more specific "truncate" above still wins
    assert b"</html>" not in get(site.base_url + STORY)[2]
    site.fix_html(3610656)
    for path in (STORY, _url(BY_ID[4016173])):
        page = doc(get(site.base_url + path)[2])
        assert not page.cssselect("h1.maintitle") and not page.cssselect(".body p") and page.cssselect("p")
    site.break_html(3610656, mode="shell")
    page = doc(get(site.base_url + STORY)[2])
    assert page.findtext(".//title") == "U.S. Department of War" and not page.cssselect("main p, meta[property]")
    site.break_html(3610656, mode="garbage")
    assert b" & <<br" in get(site.base_url + STORY)[2]
    site.fix_html()
    assert doc(get(site.base_url + STORY)[2]).cssselect("h1.maintitle")


def test_whitespace_edit_keeps_words(site):
    def words(body: bytes) -> list[str]:
        return [" ".join(unicodedata.normalize("NFC", p.text_content()).split())
                for p in doc(body).cssselect(".body > p")]

    path = _url(BY_ID[4262870])  # has "Grafenwöhr"
    _, h0, before = get(site.base_url + path)
    index = site.whitespace_edit(4262870)
    _, h1, after = get(site.base_url + path)
    assert words(before) == words(after) and h1["ETag"] != h0["ETag"]
    raw = [p.text_content() for p in doc(after).cssselect(".body > p")][index]
    assert unicodedata.normalize("NFC", raw) != raw and "  " in raw


def test_http_admin_endpoint(site):
    status, payload = admin(site, "set_title", story_id=3610656, title="Retitled Over HTTP")
    assert status == 200 and payload["ok"]
    assert text(doc(get(site.base_url + STORY)[2]).cssselect("h1.maintitle")[0]) == "Retitled Over HTTP"
    status, payload = admin(site, "publish")
    assert status == 200 and isinstance(payload["result"], int)
    assert admin(site, "remove", path_or_id=STORY, status=404)[0] == 200
    assert get(site.base_url + STORY)[0] == 404
    assert admin(site, "restore", path_or_id=3610656)[0] == 200
    assert get(site.base_url + STORY)[0] == 200
    assert admin(site, "no_such_action")[0] == 404
    assert admin(site, "edit_paragraph", story_id=3610656, index=99, text="x")[0] == 404
    assert get(f"{site.base_url}/__admin__/set_title")[0] == 405
    assert admin(site, "requests")[1]["result"][-1]["path"] == STORY


def test_concurrent_requests_and_changes(site):
    paths = [STORY, "/News/News-Stories/?Page=2", "/Multimedia/Photos/igphoto/2003354108/", "/robots.txt"] * 10

    def fetch(i_path):
        i, path = i_path
        if i % 8 == 0:
            site.set_title(3610656, f"Title {i}")
        return get(site.base_url + path)[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(fetch, enumerate(paths)))
    assert statuses == [200] * len(paths)
    assert len(site.requests) == len(paths)


def test_request_log(site):
    get(site.base_url + "/robots.txt", {"X-Probe": "1"})
    get(site.base_url + "/nothing")
    log = site.requests
    assert [(r.method, r.path, r.status) for r in log] == [("GET", "/robots.txt", 200), ("GET", "/nothing", 404)]
    assert log[0].headers["X-Probe"] == "1"
    site.clear_requests()
    assert site.requests == []


def test_render_page_matches_the_server(site):
    status, headers, body = render_page(STORY, base=site.base_url)
    _, served_headers, _ = get(site.base_url + STORY)
    assert status == 200 and headers["ETag"] == served_headers["ETag"]
    assert render_page("/Multimedia/Photos/igphoto/2003354127/")[0] == 200
    assert b"https://www.war.gov/News/News-Stories/" in render_page("/News/News-Stories/?Page=2")[2]
    assert render_page("/robots.txt")[0] == 200 and render_page("/nope")[0] == 404
    assert render_page(feed_url(9, site=""))[0] == 200


def test_data_file_is_consistent():
    ids = set(BY_ID)
    media = {i["media_id"]: i for i in DATA["images"]}
    assert len(ids) >= 32 and len(media) == len(DATA["images"])
    virin = re.compile(r"\d{6}-[A-Z]-[A-Z0-9]{5}-\d{3,4}[A-Z]?")
    for img in media.values():
        assert virin.fullmatch(img["virin"]), img["virin"]
        assert re.fullmatch(r"\d+(\.\d+)? (MB|KB)", img["size"])
    assert "440606-O-ZZ999-001C" in {i["virin"] for i in media.values()}
    assert {i["virin"].split("-")[1] for i in media.values()} >= set("ADFMNX")
    for story in DATA["stories"]:
        assert set(story["related"]) <= ids - {story["id"]} and len(story["related"]) <= 3
        images = [b["media_id"] for b in story["body"] if b["type"] == "image"]
        assert set(images) <= set(media) and len(images) <= 4
    assert BY_ID[3610656]["tags"] == ["space", "Space Force", "innovation", "Science", "technology",
                                      "Engineering", "partnerships", "Space Command"]


def test_synthetic_2000(tmp_path):
    start = time.monotonic()
    with SampleSite(synthetic=2000, seed=7) as big:
        ids, url = [], listing_url("contract", site=big.base_url)
        while url:
            page = doc(get(url)[2])
            ids += [int(i.get("article-id")) for i in page.cssselect("listing-with-preview")]
            nxt = page.cssselect(".apager li.nextprev a[aria-label='Next page']")
            url = nxt[0].get("href") if nxt else None
        assert len(ids) == len(set(ids)) == len(big.content.ordered_ids("contract")) > 100
        for sid in big.content.ordered_ids(None)[:: 97]:
            story = big.content.story(sid)
            status, _, body = get(big.base_url + _url(story))
            assert status == 200 and text(doc(body).cssselect("h1.maintitle")[0]) == story["title"]
            for rel in doc(body).cssselect(".related .item a"):
                assert int(re.search(r"/Article/(\d+)/", rel.get("href")).group(1)) in big.content.all_story_ids()
            for block in doc(body).cssselect(".media-inline"):
                assert get(f"{big.base_url}/Multimedia/Photos/igphoto/{block.get('data-media-id')}/")[0] == 200
        items = lxml.etree.fromstring(get(feed_url(1, site=big.base_url, max_items=50))[2]).findall(".//item")
        assert len(items) == 50
    assert time.monotonic() - start < 10
    again = Site(synthetic=2000, seed=7)
    assert again.content.story(5_000_123) == Site(synthetic=2000, seed=7).content.story(5_000_123)
    assert again.content.story(5_000_123) != Site(synthetic=2000, seed=8).content.story(5_000_123)


def test_synthetic_100k_is_lazy():
    start = time.monotonic()
    site = Site(synthetic=100_000)
    resp = site.respond("GET", "/News/Releases/?Page=500")
    assert resp.status == 200 and resp.body.count(b"<listing-with-preview") == 10
    assert len(site.content.synth._cache) <= 50  # only what the page needed was generated
    assert time.monotonic() - start < 5
