"""VIRIN parsing (``YYMMDD-S-IIIII-NNNN[suffix][-CC]``), see reference/VIRIN.md.

The raw identifier is always kept: the site prints odd values (placeholders, legacy originator
fields, impossible dates) and an archive must not lose what was published. Fields are filled only
as far as they can be read.
"""

from __future__ import annotations

import re
import time
from datetime import date

from core.records import Virin
from crawler.parsers.text import iso_date

# Field-2 service / status codes (DoDI 5040.02 via DIMOC; X from observed Space Force photos).
BRANCHES: dict[str, str] = {
    "A": "Army",
    "C": "Coalition",
    "D": "Department of Defense",
    "F": "Air Force",
    "G": "Coast Guard",
    "H": "Department of Homeland Security",
    "J": "Joint",
    "L": "Multinational",
    "M": "Marine Corps",
    "N": "Navy",
    "O": "Other",
    "S": "Department of State",
    "X": "Space Force",
    "Z": "National Guard",
}

_EXT = r"(?:\.(?:jpe?g|png|gif|tiff?|mp4|mov|pdf))"
_VIRIN_RE = re.compile(
    r"(?<![0-9A-Za-z])(?P<raw>(?P<date>\d{6})-(?P<svc>[A-Za-z])-(?P<id>[A-Za-z0-9]{5})-(?P<seq>\d{3,4})"
    r"(?P<suffix>[A-Za-z]{1,2})?(?:-(?P<cc>[A-Za-z]{2}))?)" + _EXT + r"?(?![0-9A-Za-z-])",
    re.I,
)
_LABEL_RE = re.compile(r"VIRIN\s*:\s*([^\s|,;]+)", re.I)
_TRAILING_EXT_RE = re.compile(_EXT + r"$", re.I)


def parse_virin(text: str | None, *, today: date | None = None) -> Virin | None:
    """A :class:`Virin` from a VIRIN value ("231111-F-NU281-1013M", "VIRIN: 161112-D-SW162-143B.JPG").

    A value that does not follow the grammar is still returned with only ``raw`` set (the site
    printed it as a VIRIN); None only when there is no value at all. ``today`` pins the two-digit
    year rule for tests.
    """
    if not text:
        return None
    printed = _PRINTED_RE.fullmatch(text)
    if printed is not None:  # the common case in one match; _from_match for anything else
        raw, yy, mm, dd, code, originator, seq, suffix = printed.groups()
        # positional: the field order is checked by crawler.parsers.record_order
        return Virin(raw, _ascii_shot_date(yy, mm, dd, today or _today()), code, BRANCHES.get(code), originator, seq,
                     suffix)
    value = text.strip()
    if value[:6].upper() == "VIRIN:":
        value = value[6:].strip()
    elif ":" in value:
        label = _LABEL_RE.search(value)
        if label:
            value = label.group(1)
    m = _VIRIN_RE.match(value) or _VIRIN_RE.search(value)
    if m:
        return _from_match(m, today or _today())
    value = _TRAILING_EXT_RE.sub("", value.strip().strip(".,;|"))
    if not value or any(c.isspace() for c in value):
        return None
    return Virin(raw=value)


def find_virin(text: str | None, *, today: date | None = None) -> Virin | None:
    """The VIRIN printed after a "VIRIN:" label in ``text``, else the first VIRIN-shaped token
    (e.g. an image file name); None when there is neither."""
    if not text:
        return None
    label = _LABEL_RE.search(text)
    if label:
        return parse_virin(label.group(1), today=today)
    m = _VIRIN_RE.search(text)
    return _from_match(m, today or _today()) if m else None


def virin_from_filename(name: str | None, *, today: date | None = None) -> Virin | None:
    """The VIRIN in a media file name ("231111-F-NU281-1013M.JPG"); None unless it has the grammar,
    so a "logo.png" never becomes a VIRIN."""
    if not name:
        return None
    m = _VIRIN_RE.search(name)
    return _from_match(m, today or _today()) if m else None


def _from_match(m: re.Match[str], today: date) -> Virin:
    raw, yymmdd, svc, originator, seq, suffix = m.group("raw", "date", "svc", "id", "seq", "suffix")
    code = svc.upper()
    return Virin(
        raw=raw,
        shot_date=shot_date(yymmdd, today),
        branch_code=code,
        branch=BRANCHES.get(code),
        originator_id=originator.upper(),
        sequence=seq,
        suffix=suffix.upper() if suffix else None,
    )


# "VIRIN: 230113-N-FF348-870" or the bare value, upper case with ASCII digits, as the site prints it:
# then parse_virin's label handling leaves exactly the VIRIN and _VIRIN_RE's match is all of it,
# with the same groups (nothing follows it, so no lookahead or file extension can apply).
_PRINTED_RE = re.compile(
    r"(?:VIRIN: )?(([0-9]{2})([0-9]{2})([0-9]{2})-([A-Z])-([A-Z0-9]{5})-([0-9]{3,4})([A-Z]{1,2})?(?:-[A-Z]{2})?)"
)


_today_cache: tuple[float, date] = (0.0, date.min)


def _today() -> date:
    """Today's date, re-read at most once a minute (date.today() is a measurable cost per image)."""
    global _today_cache
    now = time.monotonic()
    if now - _today_cache[0] > 60:
        _today_cache = (now, date.today())
    return _today_cache[1]


def shot_date(yymmdd: str, today: date) -> str | None:
    """ISO date of a YYMMDD field: 20YY when YY <= this year's YY + 1, else 19YY (1944 photos exist)."""
    if len(yymmdd) != 6 or not yymmdd.isdigit():
        return None
    if yymmdd.isascii():
        return _ascii_shot_date(yymmdd[:2], yymmdd[2:4], yymmdd[4:], today)
    yy = int(yymmdd[:2])
    year = 2000 + yy if yy <= (today.year % 100) + 1 else 1900 + yy
    return iso_date(year, int(yymmdd[2:4]), int(yymmdd[4:]))


# Every "-MM-DD" a year can have ("-02-29" only in leap years, checked apart).
_MONTH_DAYS = frozenset(f"-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 32)
                        if d <= (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[m - 1])


def _ascii_shot_date(yy: str, mm: str, dd: str, today: date) -> str | None:
    """:func:`shot_date` for ASCII digits by comparing the digits themselves: every image has a
    VIRIN, and int() and date() calls were a measurable share of a story's parse."""
    pivot = today.year % 100 + 1
    century = "20" if pivot >= 99 or yy <= _TWO_DIGITS[pivot] else "19"
    month_day = f"-{mm}-{dd}"
    if month_day not in _MONTH_DAYS or month_day == "-02-29" and not _leap(int(century + yy)):
        return None
    return century + yy + month_day


_TWO_DIGITS = tuple(f"{i:02d}" for i in range(100))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
