"""Golden records of the real pages in ``../shared/reference/real/`` (see its SOURCES.md).

The expected values were written by reading each page as a browser shows it (title, dates, byline,
paragraph count, first and last paragraph, images), not by dumping the parser's output. Where a
page has many paragraphs, BeautifulSoup reads the same body independently as a second opinion.
The pages are never copied into the repository: the tests skip when the folder is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from core.records import Image, Listing, ListingItem, ParseError, Story, Virin
from crawler.parsers import parse_page
from crawler.parsers.images import is_label_line

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "real"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"real reference pages not available ({REAL})")

RELEASE = "wargov-2025-11-release-3981590-dod-2024-defense-acquisition-awards.puppeteer-dom.html"
RELEASE_URL = "https://www.war.gov/News/Releases/Release/Article/3981590/dod-announces-2024-defense-acquisition-awards/"
CONTRACT = "wargov-2025-11-contract-4319114-contracts-for-sept-30-2025.puppeteer-dom.html"
CONTRACT_URL = "https://www.war.gov/News/Contracts/Contract/Article/4319114//"


def real(name: str) -> bytes:
    return (REAL / name).read_bytes()


def story(name: str, url: str) -> Story:
    record = parse_page(real(name), url, "text/html; charset=utf-8")
    assert isinstance(record, Story), record
    return record


def oracle_paragraphs(name: str) -> list[str]:
    """Every non-empty <p> of the article body, read by BeautifulSoup (an independent parser)."""
    soup = BeautifulSoup(real(name), "html.parser")
    body = soup.select_one("div.adetail div.body")
    texts = (" ".join(p.get_text().split()) for p in body.find_all("p"))
    return [t for t in texts if t]


# ---------------------------------------------------------------- war.gov 2025 article pages


def test_release_3981590() -> None:
    record = story(RELEASE, RELEASE_URL)
    assert (record.id, record.kind, record.url, record.canonical_url) == (3981590, "release", RELEASE_URL, RELEASE_URL)
    assert record.title == "DOD Announces 2024 Defense Acquisition Awards"
    assert (record.subtitle, record.published, record.updated) == (None, "2024-12-02", None)
    assert (record.byline, record.authors, record.organisation, record.dateline) == (None, [], None, None)
    # 5 paragraphs of text, 5 award group heads, 19 category heads, 31 names and teams
    assert len(record.paragraphs) == 60
    assert record.paragraphs[0] == (
        "The Honorable William A. LaPlante, Under Secretary of Defense for Acquisition and Sustainment, is pleased "
        "to announce the winners of the 2024 Defense Acquisition Awards. The five annual awards, representing 23 "
        "separate categories, recognize individual and team accomplishments that have advanced the National Defense "
        "Strategy and supported the Secretary of Defense's priorities through excellence in acquisition. The winners "
        "will be honored in a ceremony held at Defense Acquisition University's Howell Auditorium in Scott Hall on "
        "December 11, 2024.")
    assert record.paragraphs[3] == "For more information, please visit: HCI - What We Do - Awards"
    assert record.paragraphs[5:8] == ["INDIVIDUAL ACHIEVEMENT AWARDS", "Acquisition Security",
                                      "Israel Reyes, U.S. Special Operations Command, MacDill Air Force Base, Florida"]
    assert record.paragraphs[-6] == "DAVID PACKARD EXCELLENCE IN ACQUISITION AWARDS"
    assert record.paragraphs[-1] == ("Special Operations Forces Counter Unmanned Systems, U.S. Special Operations "
                                     "Command, MacDill Air Force Base, Florida")
    assert record.paragraphs == oracle_paragraphs(RELEASE)
    assert (record.images, record.tags, record.related, record.spotlights) == ([], [], [], [])
    assert record.extraction == "template"
    assert not any(word in record.body_text for word in ("Copy Link", "Facebook", "WhatsApp", "copyToClipboard",
                                                          "Immediate Release", "Subscribe"))


def test_contracts_for_sept_30_2025() -> None:
    record = story(CONTRACT, CONTRACT_URL)
    assert (record.id, record.kind, record.canonical_url) == (4319114, "contract", CONTRACT_URL)
    assert record.title == "Contracts For Sept. 30, 2025"
    assert record.published == "2025-09-30"  # printed only in the title and og:title
    assert (record.byline, record.subtitle, record.dateline) == (None, None, None)
    assert len(record.paragraphs) == 59
    assert [record.paragraphs[i] for i in (0, 34, 54, 58)] == ["NAVY", "AIR FORCE", "DEFENSE LOGISTICS AGENCY",
                                                               "*Small business"]
    assert record.paragraphs[1].startswith("701C LLC,* Sterling, Virginia (N00023-25-D-0150); Anovaeon LLC,* San "
                                           "Antonio, Texas (N00023-25-D-0151);")
    assert record.paragraphs[57].startswith("ETI Tech LLC, Kettering, Ohio, has been awarded a maximum $45,577,024 "
                                            "firm-fixed-price, indefinite-delivery requirements contract")
    assert record.paragraphs[57].endswith("Defense Logistics Agency Aviation, Warner Robins, Georgia "
                                          "(SPRWA1-25-D-0009).")
    assert "Ukraine. Type of appropriation is fiscal 2024 through 2025" in record.body_text  # &nbsp; is a space
    assert record.paragraphs == oracle_paragraphs(CONTRACT)
    assert (record.images, record.tags, record.related, record.extraction) == ([], [], [], "template")


@pytest.mark.parametrize(("name", "url"), [(RELEASE, RELEASE_URL), (CONTRACT, CONTRACT_URL)])
def test_the_generic_extractor_reads_the_same_paragraphs_when_the_template_is_gone(name: str, url: str) -> None:
    """The real page with every class and id stripped (a redesign keeps the words only)."""
    html = real(name).decode("utf-8")
    stripped = re.sub(r'\s(?:class|id|itemtype)="[^"]*"|\sitemscope(?:="")?(?=[\s>])', "", html)
    record = parse_page(stripped.encode("utf-8"), url, "text/html; charset=utf-8")
    assert isinstance(record, Story) and record.extraction == "generic"
    template = story(name, url)
    assert (record.title, record.published) == (template.title, template.published)
    assert record.paragraphs == template.paragraphs


# ---------------------------------------------------------------- listings


def test_contracts_listing_2024_page_1() -> None:
    """<listing-titles-only> items with an empty article-title, shown by the page as "Contracts For {date}",
    and a pager of div.nextprev (the first one disabled)."""
    url = "https://www.defense.gov/News/Contracts/"
    record = parse_page(real("defensegov-2024-09-listing-contracts-page1.bs4-prettified.html"), url, "text/html")
    assert isinstance(record, Listing)
    assert [item.id for item in record.items] == [3905806, 3843433, 3902891, 3901563, 3899963, 3897899, 3896400,
                                                  3894847, 3893110, 3891642]
    assert record.items[0] == ListingItem(
        id=3905806, url="https://www.defense.gov/News/Contracts/Contract/Article/3905806/",
        title="Contracts For Sept. 13, 2024", published="2024-09-13T17:00:09", kind="contract", image_url=None,
        summary="Today's Defense Department contracts valued at $7.5 million or more are now live on Defense.gov.")
    assert record.items[-1].title == "Contracts For Aug. 30, 2024"
    assert {item.kind for item in record.items} == {"contract"}
    assert record.next_page == "https://www.defense.gov/News/Contracts/?Page=2"


@pytest.mark.parametrize(("name", "expected"), [
    ("defensegov-2024-12-listing-fragment-feature-story-4014615.html", ListingItem(
        id=4014615,
        url="https://www.defense.gov/News/Feature-Stories/Story/Article/4014615/"
            "medal-of-honor-monday-army-col-robert-l-howard/",
        title="Medal of Honor Monday: Army Col. Robert L. Howard", published="2024-12-30T07:37:17",
        kind="feature-story",
        image_url="https://media.defense.gov/2024/Dec/20/2003617742/825/780/0/241220-A-D0439-0082M.JPG",
        summary="Army Col. Robert Lewis Howard is the most decorated soldier to have served in the Vietnam War and is "
                "the only soldier to have been nominated three times for the Medal of Honor.")),
    ("defensegov-2024-12-listing-fragment-contracts-4016173.html", ListingItem(
        id=4016173, url="https://www.defense.gov/News/Contracts/Contract/Article/4016173//",
        title="Contracts for Dec. 23, 2024", published="2024-12-23T17:00:31", kind="contract", image_url=None,
        summary="Today's Defense Department contracts valued at $7.5 million or more are now live on Defense.gov.")),
])
def test_listing_fragments(name: str, expected: ListingItem) -> None:
    record = parse_page(real(name), "https://www.defense.gov/News/", "text/html")
    assert isinstance(record, Listing) and record.items == [expected]


def test_release_fragment_keeps_its_turkish_letters() -> None:
    record = parse_page(real("defensegov-2024-12-listing-fragment-release-4016543.html"),
                        "https://www.defense.gov/News/Releases/", "text/html")
    assert isinstance(record, Listing)
    (item,) = record.items
    assert (item.id, item.kind, item.published) == (4016543, "release", "2024-12-24T14:57:00")
    assert item.title == ("Readout of Secretary of Defense Lloyd J. Austin III's Phone Call With Turkish Minister "
                          "of National Defense Yaşar Güler")


# ---------------------------------------------------------------- photo pages (visible text only)


def _excerpt_lines(name: str) -> list[str]:
    return [" ".join(line.split()) for line in (REAL / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_legacy_photo_page_labels() -> None:
    """The 2016 photo page's labels: size, credit and VIRIN (with its extension and suffix letter)."""
    from crawler.parsers.images import fill_from_label

    lines = _excerpt_lines("dod-defensegov-oir-gallery-photo-igphoto-2001696404.text-excerpt.txt")
    labels = [line for line in lines if is_label_line(line)]
    assert labels == ["Download Image: Full Size (0.19 MB)",
                      "Photo by: Army photo | VIRIN: 160208-D-ZZ999-0208A.JPG"]
    image = Image(media_id=2001696404)
    for label in labels:
        fill_from_label(image, label, None)
    assert image.size_bytes == 199229  # 0.19 MB
    assert image.credit == "Army photo"
    assert image.virin == Virin("160208-D-ZZ999-0208A", "2016-02-08", "D", "Department of Defense", "ZZ999",
                                "0208", "A")
    caption = next(line for line in lines if line.startswith("Army Sgt. William H. Carney"))
    assert not is_label_line(caption)


def test_wargov_photo_page_title_and_caption_are_not_labels() -> None:
    lines = _excerpt_lines("wargov-2025-10-photo-igphoto-2002032228.text-excerpt.txt")
    title = "Secretary Hagel applauds after presenting the Medal of Honor flag to former Army Capt. William Swenson"
    assert title in lines
    assert not any(is_label_line(line) for line in lines)  # no label printed: nothing of the photo is dropped


# ---------------------------------------------------------------- pages that are not articles


@pytest.mark.parametrize(("name", "url"), [
    ("defensegov-2020-11-homepage-saved-by-browser.html", "https://www.defense.gov/"),
    ("uscgmil-2025-10-raw-listing-cgcca-opinions.non-article.html",
     "https://www.uscg.mil/Resources/Legal/Court-of-Criminal-Appeals/CGCCA-Opinions/"),
])
def test_pages_that_are_not_articles_are_no_story(name: str, url: str) -> None:
    record = parse_page(real(name), url, "text/html")
    assert isinstance(record, ParseError) and record.reason == "unknown_page"

