"""Normalization helpers shared by the parsers: text, dates, sizes, bylines, labels."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.parsers.text import (
    clean_dateline,
    norm,
    parse_date,
    parse_rfc822,
    parse_size,
    split_byline,
    strip_credit_label,
)


@pytest.mark.parametrize(("raw", "expected"), [
    ("  a \n\t b  ", "a b"),
    ("Cafe\u0301", "Caf\u00e9"),  # NFC
    ("x\u00a0\u00a0y", "x y"),  # NBSP is whitespace
    ("zero\u200bwidth\ufeff", "zerowidth"),
    ("", ""),
    (None, ""),
])
def test_norm(raw: str | None, expected: str) -> None:
    assert norm(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("Dec. 7, 2023", "2023-12-07"),
    ("Sept. 30, 2023", "2023-09-30"),
    ("June 8, 2023", "2023-06-08"),
    ("/ Published December 09, 2015", "2015-12-09"),
    ("Published September 22, 2015", "2015-09-22"),
    ("May 27, 2015 10:30 AM", "2015-05-27T10:30:00"),
    ("Jan. 3, 2024, 4:05 p.m.", "2024-01-03T16:05:00"),
    ("2024-12-30T07:37:17", "2024-12-30T07:37:17"),
    ("2024-04-01T09:15:00-04:00", "2024-04-01T09:15:00-04:00"),
    ("2024-04-01T13:15:00Z", "2024-04-01T13:15:00+00:00"),
    ("2023-12-07", "2023-12-07"),
    ("Feb. 30, 2023", None),
    ("Smarch 3, 2023", None),
    ("no date", None),
    (None, None),
])
def test_parse_date(raw: str | None, expected: str | None) -> None:
    assert parse_date(raw) == expected


def test_parse_rfc822_to_utc() -> None:
    assert parse_rfc822("Tue, 02 Jun 2015 12:22:00 GMT") == "2015-06-02T12:22:00+00:00"
    assert parse_rfc822("Tue, 24 Dec 2024 14:57:00 -0500") == "2024-12-24T19:57:00+00:00"
    assert parse_rfc822("") is None
    assert parse_rfc822("garbage") is None


@pytest.mark.parametrize(("raw", "expected"), [
    ("Download: Full Size (2.91 MB)", 3051356),  # round(2.91 * 1024**2)
    ("Full Size (931.84 KB)", 954204),
    ("Full Size (563.2 KB)", 576717),
    ("Download Image: Full Size (1 MB)", 1048576),
    ("full size (8.14 mb)", 8535409),
    ("Full Size (1,024 KB)", 1048576),
    ("Full Size (0.5 B)", 1),  # half rounds up
    ("Full Size (1.2.3 MB)", None),
    ("Download", None),
    (None, None),
])
def test_parse_size(raw: str | None, expected: int | None) -> None:
    assert parse_size(raw) == expected


@pytest.mark.parametrize(("raw", "authors", "org"), [
    ("By David Vergun , DOD News", ["David Vergun"], "DOD News"),
    ("By Jane Roe and John Doe , Army News Service", ["Jane Roe", "John Doe"], "Army News Service"),
    ("By A. One, B. Two and C. Three , DOD News", ["A. One", "B. Two", "C. Three"], "DOD News"),
    ("By Staff Sgt. Joe W. McFadden,   52nd Fighter Wing Public Affairs", ["Staff Sgt. Joe W. McFadden"],
     "52nd Fighter Wing Public Affairs"),
    ("By James Spellman Jr., Space and Missile Systems Center Public Affairs", ["James Spellman Jr."],
     "Space and Missile Systems Center Public Affairs"),
    ("By Jim Garamone, DOD News", ["Jim Garamone"], "DOD News"),
    ("By David Vergun", ["David Vergun"], None),
    ("By Jane Roe, Staff Sgt. John Doe", ["Jane Roe", "Staff Sgt. John Doe"], None),
    ("By John Smith, Jr., DOD News", ["John Smith, Jr."], "DOD News"),
    ("By Defense Media Activity,", [], "Defense Media Activity"),
    ("U.S. Army Public Affairs", [], "U.S. Army Public Affairs"),
    ("", [], None),
    (None, [], None),
])
def test_split_byline(raw: str | None, authors: list[str], org: str | None) -> None:
    assert split_byline(raw) == (authors, org)


def test_labels() -> None:
    assert strip_credit_label("Photo By: Justin Pacheco, Air Force") == "Justin Pacheco, Air Force"
    assert strip_credit_label("photo by:Senior Airman Thomas Sjoberg") == "Senior Airman Thomas Sjoberg"
    assert strip_credit_label("OSDPA") == "OSDPA"
    assert strip_credit_label("Photo By: ") is None
    assert clean_dateline("LUXEMBOURG (AFNS) -- ") == "LUXEMBOURG (AFNS)"
    assert clean_dateline("COLLEVILLE-SUR-MER, France —") == "COLLEVILLE-SUR-MER, France"
    assert clean_dateline("  ") is None


_INVISIBLE = "\u200b\u200c\u200d\ufeff\u00ad"


_ALPHABET = list("ab é\u0301\t\n\r\u00a0\u2003\u3000\x1c") + list(_INVISIBLE)


@given(st.text(alphabet=st.sampled_from(_ALPHABET), max_size=30))
def test_norm_fast_path_agrees_with_the_definition(text: str) -> None:
    """norm skips work for already-clean text; the result must equal the plain definition."""
    expected = unicodedata.normalize("NFC", " ".join("".join(c for c in text if c not in _INVISIBLE).split()))
    assert norm(text) == expected
