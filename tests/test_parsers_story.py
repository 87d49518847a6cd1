"""Story and photo pages: the sample site (markup of samplesite/templates), hand-written pages with
different markup (fallbacks), error pages, and a fuzz test that parse_page never raises."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.records import Image, ParseError, Photo, RelatedLink, Story, Virin
from core.urls import photo_page_url, story_url
from crawler.parsers import detect_block, parse_page
from samplesite import Site, render_page

FIXTURES = Path(__file__).parent / "fixtures"
SITE = "https://www.war.gov"
STORY_3610656 = f"{SITE}/News/News-Stories/Article/Article/3610656/more-nations-meet-to-address-space-security/"


def fetch(url: str) -> tuple[bytes, str | None]:
    """A sample-site page as the crawler would get it (body, Content-Type)."""
    status, headers, body = render_page(url.removeprefix(SITE), base=SITE)
    assert status == 200, url
    return body, headers.get("Content-Type")


def parse_url(url: str):
    body, ctype = fetch(url)
    return parse_page(body, url, ctype)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# ---------------------------------------------------------------- story 3610656, in full


def test_story_3610656_full_record() -> None:
    expected = json.loads((FIXTURES / "story-3610656-expected.json").read_text(encoding="utf-8"))
    record = parse_url(STORY_3610656)
    assert isinstance(record, Story)
    assert record.to_dict() == expected


def test_story_3610656_paragraphs_match_the_rendered_reference_text() -> None:
    """Every body line of the real page's text rendering, in order, and nothing else."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "story-3610656-rendered-text.md"
    if not path.is_file():
        pytest.skip(f"reference text not available at {path} (../shared/reference beside the repository)")
    reference = path.read_text(encoding="utf-8")
    assert reference.strip(), f"{path} is empty"
    record = parse_url(STORY_3610656)
    text = " ".join(reference.split())
    for paragraph in record.paragraphs:
        assert paragraph in text
    assert len(record.paragraphs) == 9
    assert not any(p.startswith(("Spotlight", "Photo By", "VIRIN", "Download")) for p in record.paragraphs)


def test_str_and_bytes_bodies_give_the_same_record() -> None:
    body, ctype = fetch(STORY_3610656)
    assert parse_page(body.decode("utf-8"), STORY_3610656) == parse_page(body, STORY_3610656, ctype)


@pytest.mark.parametrize(("edit", "field", "value"), [
    (lambda body: body.replace(b'<div class="caption">', b'<div class="caption">Q&amp;A: ', 1), "caption",
     "Q&A: U.S. Air Force Academy cadets"),
    (lambda body: body.replace(b'<div class="mtitle">', b'<div class="mtitle"><em>New</em> ', 1), "title",
     "New Launch Time"),
    (lambda body: body.replace(b'<div class="credit">', b'<div class="credit" id="c1">', 1), "credit",
     "Justin Pacheco, Air Force"),
], ids=["entity", "markup", "attribute"])
def test_image_block_fields_with_entities_markup_or_attributes(edit, field: str, value: str) -> None:  # noqa: ANN001
    body, ctype = fetch(STORY_3610656)
    record = parse_page(edit(body), STORY_3610656, ctype)
    assert isinstance(record, Story) and len(record.images) == 4
    assert getattr(record.images[0], field).startswith(value)
    assert record.paragraphs == parse_page(body, STORY_3610656, ctype).paragraphs


# ---------------------------------------------------------------- other sample-site stories


def test_contract_page() -> None:
    url = story_url("contract", 3543120, site=SITE)
    record = parse_url(url)
    assert isinstance(record, Story)
    assert (record.id, record.kind, record.title) == (3543120, "contract", "Contracts for Sept. 29, 2023")
    assert record.published == "2023-09-29"
    assert (record.byline, record.authors, record.organisation, record.subtitle) == (None, [], None, None)
    assert record.canonical_url == f"{SITE}/News/Contracts/Contract/Article/3543120/"
    assert len(record.paragraphs) == 8
    assert [record.paragraphs[i] for i in (0, 3, 5, 7)] == ["ARMY", "NAVY", "AIR FORCE", "*Small business"]
    assert record.paragraphs[1].startswith("Northbridge Aerospace Inc., Huntsville, Alabama, was awarded")
    assert record.images == [] and record.related == [] and record.spotlights == []
    assert record.tags == ["contracts"]
    assert record.body_text == "\n\n".join(record.paragraphs)


def test_transcript_page_with_presenter_subtitle() -> None:
    record = parse_url(story_url("transcript", 3425533, "pentagon-press-secretary-holds-a-press-briefing", SITE))
    assert isinstance(record, Story)
    assert (record.kind, record.published) == ("transcript", "2023-06-13")
    assert record.subtitle == "Pentagon Press Secretary Navy Capt. Ellen Marsh"
    assert record.byline is None
    assert len(record.paragraphs) == 6
    assert record.paragraphs[0] == ("PENTAGON PRESS SECRETARY NAVY CAPT. ELLEN MARSH: Good afternoon, everyone. "
                                    "I have a couple of items to pass along, and then I'll be happy to take your "
                                    "questions.")
    assert record.paragraphs[-1].endswith("pass a full-year appropriation. Thank you, everyone.")
    assert record.tags == ["press briefing", "NATO"]


def test_release_with_organisation_only_byline() -> None:
    record = parse_url(f"{SITE}/News/Releases/Release/Article/4218890/army-announces-upcoming-unit-deployments/")
    assert isinstance(record, Story)
    assert record.kind == "release"
    assert (record.byline, record.authors, record.organisation) == (
        "U.S. Army Public Affairs", [], "U.S. Army Public Affairs")
    assert record.published == "2025-06-18"
    assert record.paragraphs[0] == ("The Department of the Army announced today the upcoming deployment of two "
                                    "units as part of regular rotations.")
    assert len(record.paragraphs) == 3
    assert [r.id for r in record.related] == [4262870]


def test_feature_story_with_subheadings_and_escaped_markup() -> None:
    record = parse_url(f"{SITE}/News/Feature-Stories/Story/Article/3342560/medal-of-honor-monday-army-cpl-tibor-rubin/")
    assert isinstance(record, Story)
    assert record.kind == "feature-story"
    assert record.subtitle == "He survived a concentration camp, then saved his fellow prisoners in Korea."
    assert record.paragraphs[1] == "Holding the Hill"
    assert record.paragraphs[4] == "Recognition, Decades Later"
    # the data file escapes the <em>, so the page shows the tags as text
    assert record.paragraphs[-1] == ("Rubin received the Medal of Honor in 2005. He died in 2015 and is buried at "
                                     "the <em>Riverside National Cemetery</em> in California.")
    assert record.images == [Image(
        media_id=2003205518,
        page_url=f"{SITE}/Multimedia/Photos/igphoto/2003205518/",
        src="https://media.defense.gov/2023/Mar/27/2003205518/825/780/0/230324-D-D0439-003.JPG",
        download_url="https://media.defense.gov/2023/Mar/27/2003205518/-1/-1/0/230324-D-D0439-003.JPG",
        alt="A black and white portrait of a soldier.",
        title="Cpl. Tibor Rubin",
        caption="Army Cpl. Tibor Rubin in an undated photo.",
        credit="Courtesy photo",
        size_bytes=422226,  # 412.33 KB
        virin=Virin("230324-D-D0439-003", "2023-03-24", "D", "Department of Defense", "D0439", "003", None),
    )]


def test_dateline_and_1944_photo() -> None:
    record = parse_url(story_url("news-story", 3800555, "leaders-mark-80th-anniversary-of-d-day-in-normandy", SITE))
    assert isinstance(record, Story)
    assert record.dateline == "COLLEVILLE-SUR-MER, France"
    assert record.paragraphs[0].startswith("U.S. and allied leaders gathered with veterans")
    assert [img.virin.raw for img in record.images] == ["440606-O-ZZ999-001C", "240606-A-LK803-1172"]
    assert record.images[0].virin.shot_date == "1944-06-06"
    assert record.images[0].credit == "Robert F. Sargent, U.S. Coast Guard"
    assert record.images[1].size_bytes == 2757755  # 2.63 MB
    assert record.related == [RelatedLink(
        3342560, f"{SITE}/News/Feature-Stories/Story/Article/3342560/medal-of-honor-monday-army-cpl-tibor-rubin/",
        "Medal of Honor Monday: Army Cpl. Tibor Rubin")]


def _expected_paragraphs(story: dict) -> list[str]:
    out = []
    for block in story["body"]:
        if block["type"] == "p":
            out.append(" ".join(re.sub(r"<[^>]+>", "", block["html"]).replace("&lt;", "<").replace("&gt;", ">")
                                .replace("&amp;", "&").split()))
        elif block["type"] == "h2":
            out.append(block["text"])
    return out


def test_every_sample_site_story_parses_to_its_data() -> None:
    site = Site()
    stories = list(site.content.stories.values())
    assert len(stories) >= 10
    for story in stories:
        url = story_url(story["kind"], story["id"], story.get("slug") or "", site=SITE)
        record = parse_url(url)
        assert isinstance(record, Story), (url, record)
        assert (record.id, record.kind, record.title) == (story["id"], story["kind"], story["title"])
        assert record.published == story["published"]
        assert record.byline == story["byline"]
        assert record.subtitle == story["subtitle"]
        assert record.paragraphs == _expected_paragraphs(story), url
        assert record.tags == story["tags"]
        assert [r.id for r in record.related] == [r for r in story["related"] if r in site.content.stories]
        assert [i.media_id for i in record.images] == [b["media_id"] for b in story["body"] if b["type"] == "image"]


def test_synthetic_benchmark_stories_parse() -> None:
    site = Site(synthetic=12)
    for story_id in site.content.synth.ids():
        story = site.content.story(story_id)
        url = story_url(story["kind"], story_id, story.get("slug") or "", site=SITE)
        resp = site.respond("GET", url.removeprefix(SITE), {}, base=SITE)
        record = parse_page(resp.body, url, resp.headers.get("Content-Type"))
        assert isinstance(record, Story), record
        assert (record.id, record.title, record.byline) == (story_id, story["title"], story["byline"])
        assert record.paragraphs == _expected_paragraphs(story)


# ---------------------------------------------------------------- photo pages


def test_photo_page_full_record() -> None:
    url = photo_page_url(2003354108, SITE)
    record = parse_url(url)
    assert record == Photo(
        media_id=2003354108,
        page_url=url,
        src="https://media.defense.gov/2023/Dec/07/2003354108/825/780/0/231111-F-NU281-1013M.JPG",
        download_url="https://media.defense.gov/2023/Dec/07/2003354108/-1/-1/0/231111-F-NU281-1013M.JPG",
        alt="People watch a space launch.",
        title="Launch Time",
        caption=("U.S. Air Force Academy cadets watch the deployment of FalconSAT-X on SpaceX’s Falcon 9 at "
                 "Vandenberg Space Force Base, Calif., Nov. 11, 2023."),
        credit="Justin Pacheco, Air Force",
        size_bytes=3051356,
        virin=Virin("231111-F-NU281-1013M", "2023-11-11", "F", "Air Force", "NU281", "1013", "M"),
        url=url,
        published="2023-12-07",
    )
    assert record.to_dict()["type"] == "photo"


def test_every_sample_site_photo_page() -> None:
    site = Site()
    for img in site.content.images.values():
        url = photo_page_url(img["media_id"], SITE)
        record = parse_url(url)
        assert isinstance(record, Photo), url
        assert (record.media_id, record.title, record.caption, record.credit) == (
            img["media_id"], img["title"], img["caption"], img["credit"])
        assert record.virin.raw == img["virin"]  # printed with ".JPG" on the page
        assert record.published == img["uploaded"]


def test_photo_page_with_labels_only() -> None:
    url = "https://www.patrick.spaceforce.mil/News/Photos/igphoto/2003006214/"
    record = parse_page(fixture("photo-labels-only.html"), url, "text/html; charset=utf-8")
    assert record == Photo(
        media_id=2003006214,
        page_url=url,
        src="https://media.defense.gov/2022/May/19/2003006214/825/780/0/220519-X-QO603-1252.JPG",
        download_url="https://media.defense.gov/2022/May/19/2003006214/-1/-1/0/220519-X-QO603-1252.JPG",
        alt="Gamers watch a rocket launch on a screen.",
        title="Gaming Teams Watch Launch",
        caption=("U.S. Air Force and U.S. Space Force gaming teams watch a rocket launch at Patrick Space Force "
                 "Base, Fla., May 19, 2022. (U.S. Space Force photo by Senior Airman Thomas Sjoberg)"),
        credit="Senior Airman Thomas Sjoberg",
        size_bytes=8535409,  # 8.14 MB = 8535408.64
        virin=Virin("220519-X-QO603-1252", "2022-05-19", "X", "Space Force", "QO603", "1252", None),
        url=url,
        published=None,
    )


# ---------------------------------------------------------------- fallbacks: other markup


def test_fallback_paragraphs_in_article_figure_with_labels() -> None:
    url = f"{SITE}/News/News-Stories/Article/Article/4400001/soldiers-test-new-cold-weather-gear/"
    record = parse_page(fixture("fallback-story-article-paragraphs.html"), url)
    assert isinstance(record, Story)
    assert (record.id, record.kind, record.canonical_url) == (4400001, "news-story", url)
    assert record.title == "Soldiers Test New Cold-Weather Gear"
    assert record.published == "2024-03-05T14:30:00"
    assert (record.byline, record.authors, record.organisation) == (
        "By Jane Roe and John Doe , Army News Service", ["Jane Roe", "John Doe"], "Army News Service")
    assert record.paragraphs == [
        "Soldiers at Fort Wainwright, Alaska, spent two weeks testing a new layered uniform in temperatures "
        "that fell to 40 below zero.",
        "What changed",
        "The new system replaces seven layers with five and weighs two pounds less, testers said.",
        "It kept me warm and it kept me moving.",
    ]
    assert record.images == [Image(
        media_id=2003400001,
        page_url=f"{SITE}/Multimedia/Photos/igphoto/2003400001/",
        src="https://media.defense.gov/2024/Mar/05/2003400001/825/780/0/240305-A-AB123-1001.JPG",
        download_url="https://media.defense.gov/2024/Mar/05/2003400001/-1/-1/0/240305-A-AB123-1001.JPG",
        alt="Soldiers walk through deep snow.",
        title=None,
        caption="Soldiers walk through deep snow during a cold-weather test at Fort Wainwright, Alaska, Feb. 20, 2024.",
        credit="Staff Sgt. Alex Kim, Army",
        size_bytes=1572864,
        virin=Virin("240305-A-AB123-1001", "2024-03-05", "A", "Army", "AB123", "1001", None),
    )]
    assert record.tags == ["Army", "Arctic"]
    assert record.related == [RelatedLink(4390000, f"{SITE}/News/News-Stories/Article/Article/4390000/arctic-strategy/",
                                          "Arctic Strategy Update")]


@pytest.mark.parametrize("url", [
    f"{SITE}/News/Releases/Release/Article/4400002/statement-on-pacific-partnership-talks/",
    "file:///tmp/saved-page.html",  # `defwatch parse FILE`: type, id and kind come from the page
])
def test_fallback_og_title_article_body_and_data_media_id(url: str) -> None:
    record = parse_page(fixture("fallback-story-og-title.html"), url)
    assert isinstance(record, Story)
    assert (record.id, record.kind) == (4400002, "release")
    assert record.title == "Statement on Pacific Partnership Talks"
    assert record.canonical_url == story_url("release", 4400002, "statement-on-pacific-partnership-talks", SITE)
    assert record.published == "2024-04-01T09:15:00-04:00"
    assert record.authors == ["Sam Lee", "Jordan Poe", "Alex Wu"]
    assert record.organisation == "DOD News"
    assert record.dateline == "WASHINGTON"
    assert record.paragraphs == [
        "Officials from five nations met today to discuss maritime security.",
        "The talks will continue next month in Manila.",
        "Maritime domain awareness",
        "Disaster response",
    ]
    image = record.images[0]
    assert (image.media_id, image.caption, image.credit, image.download_url, image.size_bytes) == (
        2003400002, "Officials meet at the Pentagon, April 1, 2024.", "Senior Airman Thomas Sjoberg", None, None)
    assert image.virin.raw == "240401-D-XY987-0042"
    assert record.tags == ["Pacific"]


# ---------------------------------------------------------------- broken markup (sample-site faults)


def _broken(story_id: int, mode: str) -> tuple[str, bytes, str | None]:
    site = Site()
    story = site.content.stories[story_id]
    url = story_url(story["kind"], story_id, story.get("slug") or "", site=SITE)
    clean = site.respond("GET", url.removeprefix(SITE), {}, base=SITE)
    site.break_html(story_id, mode=mode)
    broken = site.respond("GET", url.removeprefix(SITE), {}, base=SITE)
    assert clean.status == broken.status == 200
    return url, broken.body, parse_page(clean.body, url, clean.headers.get("Content-Type"))


@pytest.mark.parametrize("story_id", [3610656, 3800555, 3543120])
@pytest.mark.parametrize("mode", ["truncate", "shell"])
def test_truncated_and_empty_shell_pages_are_errors(story_id: int, mode: str) -> None:
    url, body, _ = _broken(story_id, mode)
    record = parse_page(body, url, "text/html; charset=utf-8")
    assert isinstance(record, ParseError) and record.reason == "no_body"


@pytest.mark.parametrize("story_id", [3610656, 3800555, 3342560, 3543120])
def test_tag_soup_gives_the_same_story_as_the_clean_page(story_id: int) -> None:
    """Unclosed paragraphs and image blocks nest the rest of the body inside them; a browser still
    shows the story, and so must the parser (a markup-only change is not an update)."""
    url, body, clean = _broken(story_id, "garbage")
    assert b" & <<br" in body
    assert parse_page(body, url, "text/html; charset=utf-8") == clean


@pytest.mark.parametrize("story_id", [3800555, 3342560, 3543120, 4218890])
def test_redesigned_class_names_fall_back_to_the_same_story(story_id: int) -> None:
    """New class names (and no og:title): h1, article paragraphs, data-media-id image blocks with
    fuzzy field classes, and the printed "Tags:" / "Related Stories" labels give the same record."""
    url, body, clean = _broken(story_id, "redesign")
    assert b"maintitle" not in body and b"media-inline" not in body
    assert parse_page(body, url, "text/html; charset=utf-8") == clean


# ---------------------------------------------------------------- errors and blocks

AKAMAI = b"""<HTML><HEAD>
<TITLE>Access Denied</TITLE>
</HEAD><BODY>
<H1>Access Denied</H1>

You don't have permission to access "http&#58;&#47;&#47;www&#46;war&#46;gov&#47;News&#47;" on this server.<P>
Reference&#32;&#35;18&#46;5f3b1002&#46;1732573200&#46;1a2b3c4d
<P>https&#58;&#47;&#47;errors&#46;edgesuite&#46;net&#47;18&#46;5f3b1002&#46;1732573200&#46;1a2b3c4d</P>
</BODY>
</HTML>
"""
MAINTENANCE = (b"<html><head><title>Site Maintenance</title></head><body><h1>We'll be back soon</h1>"
               b"<p>War.gov is down for maintenance. Please try again later.</p></body></html>")
LOGIN = (b"<html><head><title>Sign In</title></head><body><form><input name=user>"
         b"<input type=password name=pw></form></body></html>")


@pytest.mark.parametrize("body", [AKAMAI, MAINTENANCE, LOGIN])
def test_block_pages_served_with_200_are_block_page_errors(body: bytes) -> None:
    record = parse_page(body, STORY_3610656, "text/html")
    assert isinstance(record, ParseError)
    assert (record.reason, record.page_type) == ("block_page", "story")


def test_detect_block() -> None:
    story, _ = fetch(STORY_3610656)
    assert detect_block(403, {"Server": "AkamaiGHost"}, b"") == "access_denied"
    assert detect_block(403, {"server": "nginx"}, b"<html>forbidden</html>") == "forbidden"
    assert detect_block(200, {}, AKAMAI) == "access_denied"
    assert detect_block(429, {"Retry-After": "120"}, b"slow down") == "rate_limited"
    assert detect_block(503, {}, MAINTENANCE) == "maintenance"
    assert detect_block(503, {}, b"") == "maintenance"
    assert detect_block(200, {}, MAINTENANCE) == "maintenance"
    assert detect_block(200, {}, LOGIN) == "login"
    assert detect_block(200, {}, b"<html><body><div class='g-recaptcha'>captcha</div></body></html>") == "captcha"
    assert detect_block(200, {}, b"  \n") == "empty"
    assert detect_block(200, {b"Server": [b"AkamaiGHost"]}, story) is None  # Scrapy-style headers
    assert detect_block(404, {}, b"<html><title>Page Not Found</title></html>") is None
    assert detect_block(500, {}, b"<html>error</html>") is None


def test_story_about_maintenance_is_not_a_block() -> None:
    body, ctype = fetch(STORY_3610656)
    body = body.replace(b"More Nations Meet to Address Space Security", b"Airmen Finish Scheduled Maintenance")
    assert detect_block(200, {}, body) is None
    record = parse_page(body, STORY_3610656, ctype)
    assert isinstance(record, Story) and record.title == "Airmen Finish Scheduled Maintenance"


def test_title_starting_with_error_is_not_a_soft_404() -> None:
    body, ctype = fetch(STORY_3610656)
    body = body.replace(b"More Nations Meet to Address Space Security", b"Error Rates Fall in Pay System")
    record = parse_page(body, STORY_3610656, ctype)
    assert isinstance(record, Story) and record.title == "Error Rates Fall in Pay System"


@pytest.mark.parametrize(("body", "ctype", "reason"), [
    (b"", None, "no_body"),
    (b"   \n\t", "text/html", "no_body"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None, "not_html"),
    (b"%PDF-1.7 ...", None, "not_html"),
    (b"<html><body><p>fine</p></body></html>", "image/jpeg", "not_html"),
    (b"<html><head></head><body><div class=adetail><p>No heading or title here.</p></div></body></html>",
     "text/html", "no_title"),
    (b"<html><body><article class='adetail'><header><h1 class='maintitle'>Only a Title</h1></header>"
     b"<div class='body'></div></article></body></html>", "text/html", "no_body"),
    (b"<html><head><title>Page Not Found</title></head><body><main><h1>Page Not Found</h1>"
     b"<p>The page you requested does not exist.</p></main></body></html>", "text/html", "no_title"),
])
def test_story_url_errors(body: bytes, ctype: str | None, reason: str) -> None:
    record = parse_page(body, STORY_3610656, ctype)
    assert isinstance(record, ParseError)
    assert (record.reason, record.page_type, record.url) == (reason, "story", STORY_3610656)
    assert record.to_dict()["type"] == "error"


def test_unknown_page() -> None:
    record = parse_page(b"<html><body><p>Hello</p></body></html>", f"{SITE}/About/")
    assert isinstance(record, ParseError)
    assert (record.reason, record.page_type) == ("unknown_page", None)


def test_windows_1252_page_without_charset() -> None:
    body = ("<html><body><article class='adetail'><header><h1 class='maintitle'>Caf\u00e9 \u201cNews\u201d</h1>"
            "</header><div class='body'><p>It\u2019s here.</p></div></article></body></html>").encode("cp1252")
    record = parse_page(body, STORY_3610656)
    assert isinstance(record, Story)
    assert (record.title, record.paragraphs) == ("Caf\u00e9 \u201cNews\u201d", ["It\u2019s here."])


def test_declared_latin1_header_and_unicode_normalization() -> None:
    body = ("<html><body><article class='adetail'><header><h1 class='maintitle'>Cafe\u0301\u00a0 Talk</h1>"
            "</header><div class='body'><p> a\u200b  b </p></div></article></body></html>").encode("utf-8")
    record = parse_page(body, STORY_3610656, "text/html; charset=utf-8")
    assert (record.title, record.paragraphs) == ("Caf\u00e9 Talk", ["a b"])  # NFC, NBSP and zero-width gone
    latin = "<html><body><article class='adetail'><h1 class='maintitle'>Gr\u00fc\u00dfe</h1><div class='body'>" \
            "<p>\u00e9t\u00e9</p></div></article></body></html>"
    record = parse_page(latin.encode("latin-1"), STORY_3610656, "text/html; charset=ISO-8859-1")
    assert (record.title, record.paragraphs) == ("Gr\u00fc\u00dfe", ["\u00e9t\u00e9"])


# ---------------------------------------------------------------- never raises


FUZZ_URLS = [STORY_3610656, f"{SITE}/Multimedia/Photos/igphoto/1/", f"{SITE}/News/News-Stories/",
             f"{SITE}/DesktopModules/ArticleCS/RSS.ashx", "https://www.af.mil/Print.aspx?Article=1", "not a url"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.sampled_from(FUZZ_URLS))
def test_random_bytes_never_raise(body: bytes, url: str) -> None:
    record = parse_page(body, url)
    assert record.type in ("story", "photo", "listing", "feed", "error")
    if isinstance(record, Story):
        assert record.title and record.paragraphs


_PAGE, _CTYPE = fetch(STORY_3610656)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_PAGE) - 1), st.integers(0, 400), st.binary(max_size=40)),
                min_size=1, max_size=6))
def test_mutated_story_pages_never_raise(edits: list[tuple[int, int, bytes]]) -> None:
    body = _PAGE
    for pos, cut, insert in edits:
        body = body[:pos] + insert + body[pos + cut:]
    record = parse_page(body, STORY_3610656, _CTYPE)
    assert record.type in ("story", "error")
    if isinstance(record, Story):
        assert record.id == 3610656 and record.title and record.paragraphs
        assert record.body_text == "\n\n".join(record.paragraphs)


def test_related_links_to_other_hosts_are_not_related_stories() -> None:
    """Another AFPIMS site uses the same /Article/<id>/ grammar with its own ids."""
    body, ctype = fetch(STORY_3610656)
    assert b'<div class="related ntext">' in body  # the 2025 template's related-stories block
    related = b'<div class="related ntext">'
    body = body.replace(related, related + b'<div class="item"><a class="title" '
                        b'href="https://www.af.mil/News/Article/Article/999/x/">Elsewhere</a></div>'
                        b'<div class="item"><a href="https://www.defense.gov/News/News-Stories/Article/Article/'
                        b'3500874/guard/">Old host</a></div>')
    record = parse_page(body, STORY_3610656, ctype)
    assert [r.id for r in record.related] == [3500874, 3599817, 3727730]
    local = "http://127.0.0.1:8000/News/News-Stories/Article/Article/3610656/x/"
    record = parse_page(body.replace(b"https://www.war.gov/", b"http://127.0.0.1:8000/"), local, ctype)
    assert [r.id for r in record.related] == [3599817, 3727730]  # only the sample site's own host
