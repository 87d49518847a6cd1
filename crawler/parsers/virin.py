"""VIRIN parsing (``YYMMDD-S-IIIII-NNNN[suffix][-CC]``), see reference/VIRIN.md.

The raw identifier is always kept: the site prints odd values (placeholders, legacy originator
fields, impossible dates) and an archive must not lose what was published. Fields are filled only
as far as they can be read.
"""

from __future__ import annotations

import re
from datetime import date

from core.records import Virin

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
    value = text.strip()
    if value[:6].upper() == "VIRIN:":
        value = value[6:].strip()
    elif ":" in value:
        label = _LABEL_RE.search(value)
        if label:
            value = label.group(1)
    m = _VIRIN_RE.match(value) or _VIRIN_RE.search(value)
    if m:
        return _from_match(m, today or date.today())
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
    return _from_match(m, today or date.today()) if m else None


def virin_from_filename(name: str | None, *, today: date | None = None) -> Virin | None:
    """The VIRIN in a media file name ("231111-F-NU281-1013M.JPG"); None unless it has the grammar,
    so a "logo.png" never becomes a VIRIN."""
    if not name:
        return None
    m = _VIRIN_RE.search(name)
    return _from_match(m, today or date.today()) if m else None


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


def shot_date(yymmdd: str, today: date) -> str | None:
    """ISO date of a YYMMDD field: 20YY when YY <= this year's YY + 1, else 19YY (1944 photos exist)."""
    if len(yymmdd) != 6 or not yymmdd.isdigit():
        return None
    yy = int(yymmdd[:2])
    year = 2000 + yy if yy <= (today.year % 100) + 1 else 1900 + yy
    try:
        return date(year, int(yymmdd[2:4]), int(yymmdd[4:])).isoformat()
    except ValueError:
        return None
