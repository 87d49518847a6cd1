"""af.mil 2016 ArticleCS print views (reference/real/afmil-2016-*print*.html), parsed with the
original URLs from SOURCES.md. Expected values were read off the HTML files."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.records import Image, RelatedLink, Story, Virin
from crawler.parsers import parse_page

# outside the repository: ../shared/reference/real beside the checkout (CI has it there too)
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "real"
PRINT = "http://www.af.mil/DesktopModules/ArticleCS/Print.aspx?PortalId=1&ModuleId={module}&Article={id}"

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="reference pages not available")


def parse(name: str, article: int, module: int = 850) -> Story:
    record = parse_page((REAL / name).read_bytes(), PRINT.format(module=module, id=article))
    assert isinstance(record, Story), record
    return record


CASES = [
    # file, article id, module, title, byline, published, dateline, paragraph count, first, last
    ("afmil-2016-raw-print-article-589842-luxembourg-memorial-day-5img.html", 589842, 850,
     "Luxembourg, US honor freedom's sacrifice during Memorial Day",
     "By Staff Sgt. Joe W. McFadden, 52nd Fighter Wing Public Affairs", "2015-05-27", "LUXEMBOURG (AFNS)", 9,
     "More than 300 Luxembourgers and Americans paused to reflect on the sacrifices of fallen U.S. service members "
     "as part of a Memorial Day ceremony at the Luxembourg American Cemetery and Memorial here, May 23.",
     "We need to remember these Soldiers and what they did.\""),
    ("afmil-2016-print-article-643126-gulf-war-critical-care.html", 643126, 850,
     "Gulf War created need for better critical care",
     "By Kevin M. Hymel, Air Force Surgeon General Public Affairs", "2016-01-14", "FALLS CHURCH, Va. (AFNS)", 22,
     "January 2016 marks the 25th anniversary of Desert Storm, and also a turning point in Air Force Medical "
     "Service’s Critical Care Transport Teams.",
     "it took a war to liberate Kuwait some 25 years ago for the military to realize how badly it was needed."),
    ("afmil-2016-print-article-643299-acquisitions-enterprise.html", 643299, 850,
     "Acquisitions enterprise: Experimentation and agility",
     "By Senior Airman Ashley Powell, Secretary of the Air Force Public Affairs Command Information", "2016-01-15",
     "WASHINGTON (AFNS)", 12,
     "A key leader in Air Force acquisitions testified Jan.7 on Capitol Hill before the House Armed Services "
     "Committee on acquisition reform, explaining how the Air Force is improving its acquisitions processes through "
     "agility and experimentation.",
     "to ensure our Airmen have what they need to meet any challenge or any threat, anywhere in the world.”"),
    ("afmil-2016-print-article-643350-desert-storm-look-back.html", 643350, 850,
     "A look back at Desert Storm, 25 years later",
     "By Senior Airman Hailey Haux, Secretary of the Air Force Public Affairs", "2016-01-15", "WASHINGTON (AFNS)", 13,
     "Twenty-five years ago, the Air Force participated in Operation Desert Storm, the largest air campaign since "
     "the conflict in Southeast Asia. The campaign’s purpose was to drive the Iraqi military out of Kuwait, release "
     "the country from Saddam Hussein’s invasion and reestablish its sovereignty.",
     "critically important to the future of the United States of America.”"),
    ("afmil-2016-raw-print-article-633486-twins-legion-of-honor-3img.html", 633486, 850,
     "AF twins receive French Legion of Honor for WWII service",
     "By James Spellman Jr., Space and Missile Systems Center Public Affairs", "2015-12-09",
     "LOS ANGELES AIR FORCE BASE, Calif. (AFNS)", 20,
     "Seventy-one years after their World War II service in the Army Air Forces, identical twin brothers -- retired "
     "Air Force Reserve Majs. Raymond \"Glenn\" Clanin and Russell \"Lynn\" Clanin -- received the French "
     "government's highest distinction, the Legion of Honor medal.",
     "Today, there are approximately 95,000 recipients of the Legion of Honor."),
    ("afmil-2016-raw-print-commentary-639565-volunteer-no-img.html", 639565, 1042,
     "Volunteer for the right reasons",
     "By Staff Sgt. Michael Battles, 39th Air Base Wing Public Affairs", "2015-12-30",
     "INCIRLIK AIR BASE, Turkey (AFNS)", 8,
     "The word \"volunteer\" is defined by the Merriam-Webster Dictionary as \"a person who voluntarily undertakes "
     "or expresses a willingness to undertake a service.\"",
     "Volunteer because you want to make a difference in lives around you, and the rewards will follow."),
    ("afmil-2016-raw-print-factsheet-104527-sniper-pod.html", 104527, 854, "Sniper Pod", None, "2015-09-22", None, 26,
     "Mission", "e-mail: accpa.operations@us.af.mil"),
    ("afmil-2016-raw-print-biography-107922-general-robin-rand.html", 107922, 858, "GENERAL ROBIN RAND", None, None,
     None, 70,
     "Gen. Robin Rand is the Commander, Air Force Global Strike Command, Barksdale Air Force Base, Louisiana.",
     "(Current as of November 2015)"),
]


@pytest.mark.parametrize(("name", "article", "module", "title", "byline", "published", "dateline", "count", "first",
                          "last"), CASES, ids=[c[1] for c in CASES])
def test_print_view_story_fields(name: str, article: int, module: int, title: str, byline: str | None,
                                 published: str | None, dateline: str | None, count: int, first: str,
                                 last: str) -> None:
    story = parse(name, article, module)
    assert (story.id, story.kind, story.title) == (article, "news-story", title)
    assert story.url == PRINT.format(module=module, id=article)
    assert (story.byline, story.published, story.dateline) == (byline, published, dateline)
    assert len(story.paragraphs) == count
    assert story.paragraphs[0].startswith(first)
    assert story.paragraphs[-1].endswith(last)
    assert story.body_text == "\n\n".join(story.paragraphs)
    assert all(p == " ".join(p.split()) and p for p in story.paragraphs)


def test_luxembourg_images_tags_and_iframe_dropped() -> None:
    story = parse("afmil-2016-raw-print-article-589842-luxembourg-memorial-day-5img.html", 589842)
    assert story.authors == ["Staff Sgt. Joe W. McFadden"]
    assert story.organisation == "52nd Fighter Wing Public Affairs"
    assert story.tags == ["Luxembourg American Cemetery and Memorial", "Memorial Day", "World War II"]
    assert not any("youtube" in p for p in story.paragraphs)
    assert [(i.media_id, i.virin.raw) for i in story.images] == [
        (2001050289, "150523-F-ZL078-838"), (2001050287, "150523-F-ZL078-473"), (2001050286, "150523-F-ZL078-315"),
        (2001050288, "150523-F-ZL078-573"), (2001050290, "150523-F-ZL078-999")]
    caption = ("An honor guard detail executes a ceremonial volley during a Memorial Day ceremony at the Luxembourg "
               "American Cemetery and Memorial May 23, 2015. The base's Airmen also served as a ceremonial flight in "
               "service dress, caretakers of the cemetery's Luxembourg and U.S. flags, and escorts for guests to lay "
               "wreaths. (U.S. Air Force photo/Staff Sgt. Joe W. McFadden)")
    assert story.images[0] == Image(
        media_id=2001050289,
        page_url="http://www.af.mil/News/Photos/tabid/129/igphoto/2001050289/Default.aspx",
        src="http://media.defense.gov/2015/May/27/2001050289/670/394/0/150523-F-ZL078-838.JPG",
        download_url="http://media.defense.gov/2015/May/27/2001050289/-1/-1/0/150523-F-ZL078-838.JPG",
        alt=caption,
        title=None,
        caption=caption,
        credit="U.S. Air Force photo/Staff Sgt. Joe W. McFadden",
        size_bytes=None,
        virin=Virin("150523-F-ZL078-838", "2015-05-23", "F", "Air Force", "ZL078", "838", None),
    )


def test_httrack_mirrored_links_are_repaired() -> None:
    story = parse("afmil-2016-print-article-643126-gulf-war-critical-care.html", 643126)
    image = story.images[0]
    assert image.src == "http://media.defense.gov/2016/Jan/14/2001335005/670/394/0/160114-F-EX708-001.JPG"
    assert image.download_url == "http://media.defense.gov/2016/Jan/14/2001335005/-1/-1/0/160114-F-EX708-001.JPG"
    assert image.page_url == "http://www.af.mil/News/Photos/tabid/129/igphoto/2001335005/mediaid/875051/Default.html"
    assert (image.media_id, image.credit) == (2001335005, "Courtesy photo")
    assert image.virin == Virin("160114-F-EX708-001", "2016-01-14", "F", "Air Force", "EX708", "001", None)
    assert story.tags[-1] == "Operation Desert Storm" and len(story.tags) == 7


def test_desert_storm_legacy_virins_and_captionless_image() -> None:
    story = parse("afmil-2016-print-article-643350-desert-storm-look-back.html", 643350)
    first, second = story.images
    assert first.virin == Virin("020926-O-9999G-908", "2002-09-26", "O", "Other", "9999G", "908", None)
    assert first.credit == "U.S. Air Force archive photo"
    assert second.virin.raw == "160115-F-ZZZZZ-902" and second.virin.originator_id == "ZZZZZ"
    assert (second.caption, second.credit, second.alt) == (None, None, None)


def test_week_in_photos_twelve_images_and_organisation_byline() -> None:
    story = parse("afmil-2016-raw-print-article-632669-af-week-in-photos-12img.html", 632669)
    assert (story.byline, story.authors, story.organisation) == (
        "By Defense Media Activity,", [], "Defense Media Activity")
    assert story.published == "2015-12-04"
    assert len(story.images) == 12
    assert story.images[3].virin.branch == "National Guard"  # 151124-Z-MW427-025
    assert story.images[3].credit == "U.S. Air National Guard photo/Staff Sgt. Edward Eagerton"
    assert story.images[1].credit is None  # caption without a trailing "(... photo ...)"
    assert "wing’s rescue squadrons" in story.images[3].caption  # raw UTF-8 bytes, no charset declared
    assert story.tags == ["AF WIP", "Top Photos", "Week in Photos", "WIP"]


def test_related_link_and_three_secaf_images() -> None:
    twins = parse("afmil-2016-raw-print-article-633486-twins-legion-of-honor-3img.html", 633486)
    assert twins.related == [RelatedLink(
        620334, "http://www.af.mil/News/ArticleDisplay/tabid/223/Article/620334/yesterdays-air-force-flak-bait.aspx",
        "Yesterday’s Air Force: Flak-Bait")]
    assert twins.images[2].credit == "Courtesy photo/U.S. Army Air Forces, AAF Training Command"
    secaf = parse("afmil-2016-print-article-643334-secaf-csis.html", 643334)
    assert [i.virin.raw for i in secaf.images] == ["160114-F-FC975-590", "160114-F-FC975-761", "160114-F-FC975-788"]
    assert {i.credit for i in secaf.images} == {"U.S. Air Force photo/Jim Varhegyi"}


def test_fact_sheet_canonical_url_from_the_email_link_and_headings() -> None:
    story = parse("afmil-2016-raw-print-factsheet-104527-sniper-pod.html", 104527, 854)
    assert story.canonical_url == "http://www.af.mil/AboutUs/FactSheets/Display/tabid/224/Article/104527/sniper-pod.aspx"
    assert (story.authors, story.organisation) == ([], None)
    assert story.paragraphs[4] == "Features" and story.paragraphs[13] == "General characteristics"
    assert story.paragraphs[14] == ("Primary function: positive identification, automatic tracking and laser "
                                    "designation, NTISR")
    assert story.images[0].virin.raw == "111012-F-PB123-001"


def test_biography_image_without_photo_page_link() -> None:
    story = parse("afmil-2016-raw-print-biography-107922-general-robin-rand.html", 107922, 858)
    assert story.paragraphs[3] == "EDUCATION"
    (image,) = story.images
    assert (image.media_id, image.alt, image.page_url, image.caption) == (2000714994, "RandOct2013", None, None)
    assert image.virin.raw == "131010-F-PB123-104"


def test_article_id_from_the_form_when_the_url_has_none() -> None:
    body = (REAL / "afmil-2016-raw-print-commentary-639565-volunteer-no-img.html").read_bytes()
    record = parse_page(body, "file:///saved/print.html")
    assert isinstance(record, Story)
    assert (record.id, record.title) == (639565, "Volunteer for the right reasons")
