"""VIRIN parsing: every case named in reference/VIRIN.md, plus the edge rules of the parser."""

from __future__ import annotations

from datetime import date

import pytest

from core.records import Virin
from crawler.parsers.virin import BRANCHES, find_virin, parse_virin, shot_date, virin_from_filename

TODAY = date(2026, 11, 26)


def v(text: str) -> Virin | None:
    return parse_virin(text, today=TODAY)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # S1 example (DIMOC "How to Create a VIRIN")
        ("060515-M-AA987-1001", Virin("060515-M-AA987-1001", "2006-05-15", "M", "Marine Corps", "AA987", "1001", None)),
        # S5 example, legacy 3-digit sequence and the ZZ999 placeholder Vision ID
        ("060515-M-ZZ999-001", Virin("060515-M-ZZ999-001", "2006-05-15", "M", "Marine Corps", "ZZ999", "001", None)),
        # D-Day 1944 on the 2020 home page: two-digit year 44 is 1944, suffix C
        ("440606-O-ZZ999-001C", Virin("440606-O-ZZ999-001C", "1944-06-06", "O", "Other", "ZZ999", "001", "C")),
        # 1991 photo in an af.mil 2016 feed
        ("910310-F-ZZ999-003", Virin("910310-F-ZZ999-003", "1991-03-10", "F", "Air Force", "ZZ999", "003", None)),
        # story 3610656: 4-digit sequence with suffix M
        ("231111-F-NU281-1013M", Virin("231111-F-NU281-1013M", "2023-11-11", "F", "Air Force", "NU281", "1013", "M")),
        # DVIAN in field 3 (OSD), DoD code
        ("231207-D-D0439-1234",
         Virin("231207-D-D0439-1234", "2023-12-07", "D", "Department of Defense", "D0439", "1234", None)),
        # field-2 letter and DVIAN letter differ
        ("241220-A-D0439-0082M", Virin("241220-A-D0439-0082M", "2024-12-20", "A", "Army", "D0439", "0082", "M")),
        # photo pages print the VIRIN with its extension: raw drops it
        ("161112-D-SW162-143B.JPG",
         Virin("161112-D-SW162-143B", "2016-11-12", "D", "Department of Defense", "SW162", "143", "B")),
        # Space Force (X), seen only on patrick.spaceforce.mil
        ("220519-X-QO603-1252.JPG",
         Virin("220519-X-QO603-1252", "2022-05-19", "X", "Space Force", "QO603", "1252", None)),
        # 2020 home page values with suffixes Y, M, C
        ("201110-D-ZZ999-101Y",
         Virin("201110-D-ZZ999-101Y", "2020-11-10", "D", "Department of Defense", "ZZ999", "101", "Y")),
        ("201108-F-KY568-031M", Virin("201108-F-KY568-031M", "2020-11-08", "F", "Air Force", "KY568", "031", "M")),
        ("201103-A-ID763-053C", Virin("201103-A-ID763-053C", "2020-11-03", "A", "Army", "ID763", "053", "C")),
        # legacy SSN-based originator field and placeholders
        ("020926-O-9999G-908", Virin("020926-O-9999G-908", "2002-09-26", "O", "Other", "9999G", "908", None)),
        ("160115-F-ZZZZZ-902", Virin("160115-F-ZZZZZ-902", "2016-01-15", "F", "Air Force", "ZZZZZ", "902", None)),
        ("150601-F-XXZZZ-001", Virin("150601-F-XXZZZ-001", "2015-06-01", "F", "Air Force", "XXZZZ", "001", None)),
        ("150601-N-0000J-001", Virin("150601-N-0000J-001", "2015-06-01", "N", "Navy", "0000J", "001", None)),
        ("150601-A-JZ000-001", Virin("150601-A-JZ000-001", "2015-06-01", "A", "Army", "JZ000", "001", None)),
        ("150601-Z-XXXXX-001", Virin("150601-Z-XXXXX-001", "2015-06-01", "Z", "National Guard", "XXXXX", "001", None)),
        # foreign photographer country code (field 5) stays in raw, is not a suffix
        ("060515-M-AA987-1001-BE",
         Virin("060515-M-AA987-1001-BE", "2006-05-15", "M", "Marine Corps", "AA987", "1001", None)),
        # two-letter suffix, lower-case extension
        ("231111-F-NU281-1013AB.jpg",
         Virin("231111-F-NU281-1013AB", "2023-11-11", "F", "Air Force", "NU281", "1013", "AB")),
    ],
)
def test_documented_virins(text: str, expected: Virin) -> None:
    assert v(text) == expected


@pytest.mark.parametrize(("code", "name"), sorted(BRANCHES.items()))
def test_every_branch_code_is_named(code: str, name: str) -> None:
    parsed = v(f"230101-{code}-AB123-001")
    assert parsed is not None
    assert (parsed.branch_code, parsed.branch) == (code, name)


def test_branch_table_is_the_documented_one() -> None:
    assert BRANCHES == {
        "A": "Army", "C": "Coalition", "D": "Department of Defense", "F": "Air Force", "G": "Coast Guard",
        "H": "Department of Homeland Security", "J": "Joint", "L": "Multinational", "M": "Marine Corps",
        "N": "Navy", "O": "Other", "S": "Department of State", "X": "Space Force", "Z": "National Guard",
    }


def test_unknown_service_letter_is_kept_without_a_name() -> None:
    assert v("231111-Q-NU281-1013") == Virin("231111-Q-NU281-1013", "2023-11-11", "Q", None, "NU281", "1013", None)


@pytest.mark.parametrize("yymmdd", ["231399", "230000", "231132", "230229", "999999"])
def test_invalid_date_keeps_raw_and_branch(yymmdd: str) -> None:
    parsed = v(f"{yymmdd}-F-NU281-1013M")
    assert parsed == Virin(f"{yymmdd}-F-NU281-1013M", None, "F", "Air Force", "NU281", "1013", "M")


def test_leap_day_is_valid() -> None:
    assert v("240229-A-AB123-001").shot_date == "2024-02-29"


def test_two_digit_year_rule_follows_today() -> None:
    # YY <= current YY + 1 is 20YY, else 19YY
    assert shot_date("270101", date(2026, 11, 26)) == "2027-01-01"
    assert shot_date("280101", date(2026, 11, 26)) == "1928-01-01"
    assert shot_date("280101", date(2027, 1, 2)) == "2028-01-01"
    assert shot_date("000101", date(2026, 1, 1)) == "2000-01-01"
    assert shot_date("12345", date(2026, 1, 1)) is None


def test_label_and_whitespace_are_stripped() -> None:
    assert v("  VIRIN: 231111-F-NU281-1013M ").raw == "231111-F-NU281-1013M"
    assert v("virin:231207-D-D0439-1234.png").raw == "231207-D-D0439-1234"


def test_value_outside_the_grammar_keeps_only_raw() -> None:
    assert v("VIRIN: 12345-F-AB-1") == Virin("12345-F-AB-1")
    assert v("231111-F-NU281-10134") == Virin("231111-F-NU281-10134")  # 5-digit sequence
    assert v("VIRIN: CUSTOM01.JPG") == Virin("CUSTOM01")


def test_no_value_is_none() -> None:
    assert parse_virin("") is None
    assert parse_virin(None) is None
    assert parse_virin("   ") is None
    assert parse_virin("not a virin at all") is None


def test_find_virin_after_label_in_a_credit_line() -> None:
    line = "Photo by: Senior Airman Thomas Sjoberg |  VIRIN: 220519-X-QO603-1252.JPG"
    assert find_virin(line, today=TODAY) == Virin("220519-X-QO603-1252", "2022-05-19", "X", "Space Force",
                                                  "QO603", "1252", None)


def test_find_virin_in_a_media_url_without_label() -> None:
    url = "https://media.defense.gov/2023/Dec/07/2003354108/825/780/0/231111-F-NU281-1013M.JPG"
    assert find_virin(url, today=TODAY).raw == "231111-F-NU281-1013M"
    assert find_virin("no identifier here", today=TODAY) is None


def test_virin_from_filename_needs_the_grammar() -> None:
    assert virin_from_filename("150523-F-ZL078-838.JPG").raw == "150523-F-ZL078-838"
    assert virin_from_filename("logo.png") is None
    assert virin_from_filename(None) is None
