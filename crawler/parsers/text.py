"""Text, date, size and byline normalization shared by every parser.

Change detection compares these values, so they must not move when only markup, whitespace or
Unicode form changes: everything goes through :func:`norm` (NFC, whitespace collapsed).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import lru_cache

from dateutil import parser as dateparser
from dateutil.parser import isoparse

# Characters that render as nothing but are not Python whitespace (zero-width, BOM, soft hyphen).
_INVISIBLE_RE = re.compile("[\u200b\u200c\u200d\ufeff\u00ad]")


def norm(text: str | None) -> str:
    """NFC text with every whitespace run (incl. NBSP, newlines) collapsed to one space, stripped,
    and characters that render as nothing (zero-width, BOM, soft hyphen) removed."""
    if not text:
        return ""
    if not text.isascii():
        text = unicodedata.normalize("NFC", _INVISIBLE_RE.sub("", text))
    return " ".join(text.split())


def norm_or_none(text: str | None) -> str | None:
    """Like :func:`norm` but None for empty text, so absent fields stay null in the JSON."""
    return norm(text) or None


# ---------------------------------------------------------------- dates

# A printed date: "Dec. 7, 2023", "Sept. 30, 2023", "December 09, 2015", "May 27, 2015 10:30 AM",
# "Jan. 3, 2024, 4:05 p.m.". The regex finds the candidate, dateutil reads it.
_MDY_RE = re.compile(
    r"\b[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4}"
    r"(?P<time>,?\s+(?:at\s+)?\d{1,2}:\d{2}\s*(?:[AaPp]\.?[Mm]\.?)?)?"
)
_ISO_RE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?\s*$")


@lru_cache(maxsize=4096)
def parse_date(text: str | None) -> str | None:
    """An ISO 8601 date ("2023-12-07") or datetime ("2023-12-07T10:30:00") from the date forms
    the site prints (AP style "Dec. 7, 2023", full month names, ISO); None when there is none.

    A time is kept only when the page gives one, so a date-only page never gains a fake midnight;
    a zone is kept when the page gives one. Memoized: a site prints the same few dates on every page.
    """
    if not text:
        return None
    if _ISO_RE.match(text):
        value = text.strip()
        try:
            parsed = isoparse(value)
        except (ValueError, OverflowError):
            return None
        return parsed.date().isoformat() if len(value) == 10 else parsed.isoformat()
    m = _MDY_RE.search(text)
    if not m:
        return None
    try:
        parsed = dateparser.parse(m.group(0).replace(" at ", " "))
    except (ValueError, OverflowError):
        return None
    return parsed.isoformat() if m.group("time") else parsed.date().isoformat()


def date_in_title(title: str | None) -> str | None:
    """The date a title states ("Contracts For Sept. 30, 2025", "Contracts for September 30, 2025"):
    a Contracts page prints its date nowhere else."""
    return parse_date(title) if title else None


def parse_rfc822(text: str | None) -> str | None:
    """RSS ``pubDate`` ("Tue, 02 Jun 2015 12:22:00 GMT") as an ISO datetime in UTC.

    ``+00:00`` rather than ``Z`` so ``datetime.fromisoformat`` reads it back on Python 3.10.
    """
    if not text or not text.strip():
        return None
    try:
        dt = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return parse_date(text)
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat()


# ---------------------------------------------------------------- sizes

_SIZE_RE = re.compile(r"Full\s*Size\s*\(\s*([\d.,]+)\s*(B|bytes|KB|MB|GB)\s*\)", re.I)
_UNITS = {"b": 1, "bytes": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_size(text: str | None) -> int | None:
    """Bytes from "Full Size (2.91 MB)" / "(931.84 KB)" / "(1 MB)", binary units, rounded half up.

    Exact integer arithmetic keeps the result identical on every platform (2.91 MB = 3051356).
    """
    m = _SIZE_RE.search(text or "")
    if not m:
        return None
    whole, _, frac = m.group(1).replace(",", "").partition(".")
    if not (whole or frac) or not (whole or "0").isdigit() or not (frac or "0").isdigit():
        return None
    scale = 10 ** len(frac)
    numerator = int(whole or "0") * scale + int(frac or "0")
    unit = _UNITS[m.group(2).lower()]
    return (2 * numerator * unit + scale) // (2 * scale)  # round half up


# ---------------------------------------------------------------- bylines

_BY_RE = re.compile(r"^\s*by\s*:?\s+", re.I)
_NAME_SUFFIX_RE = re.compile(r"^(?:Jr|Sr|II|III|IV|V)\.?$")
# Words that make the last comma-separated part of a byline an organisation, not a person.
_ORG_RE = re.compile(
    r"\b(?:News|Affairs|Office|Command|Department|DOD|DoD|Agency|Services?|Media|Cent(?:er|re)|Wing|Group|"
    r"Squadron|Division|Brigade|Battalion|Regiment|Fleet|Base|Headquarters|Bureau|Institute|University|"
    r"Academy|Activity|Communications|Public|Corps|Forces?|Army|Navy|Guard|Administration|Council|"
    r"Directorate|Program|Laborator(?:y|ies)|Staff|Secretary|Press|Operations|District|Station|School)\b"
)
_RANK_START_RE = re.compile(r"^(?:Staff|Master|Tech|Senior|Chief|Command|Army|Navy|Air Force|Marine|Space Force|"
                            r"Coast Guard)\b[^,]*\b(?:Sgt|Lt|Capt|Col|Maj|Gen|Adm|Airman|Cmdr|Spc|Pvt|Cpl|Ens|"
                            r"Officer|Petty)\b")


def split_byline(byline: str | None) -> tuple[list[str], str | None]:
    """(authors, organisation) from "By A and B , Org" / "By A, B and C , Org" / "By A, Org".

    The site separates the organisation with " , " (space before the comma); older pages use a plain
    comma, so then the last part counts as the organisation only when it reads like one.
    """
    text = norm(byline)
    if not text:
        return [], None
    text = text[3:] if text[:3] in ("By ", "BY ", "by ") else _BY_RE.sub("", text)
    if " , " in text:
        people, org = text.split(" , ", 1)
        return _split_people(people), norm_or_none(org)
    parts = _merge_suffixes([p.strip() for p in text.split(",") if p.strip()])
    if len(parts) > 1 and _looks_like_org(parts[-1]):
        return _split_people(", ".join(parts[:-1])), parts[-1]
    if len(parts) == 1 and _looks_like_org(parts[0]):
        return [], parts[0]
    return _split_people(", ".join(parts)), None


def _looks_like_org(part: str) -> bool:
    return bool(_ORG_RE.search(part)) and not _RANK_START_RE.match(part)


def _split_people(text: str) -> list[str]:
    if "," not in text and " and " not in text and "&" not in text:
        return [text] if text else []  # one name, the common case
    names: list[str] = []
    for chunk in _merge_suffixes([c.strip() for c in text.split(",")]):
        names.extend(n.strip() for n in re.split(r"\s+and\s+|\s*&\s*", chunk))
    return [norm(n) for n in names if n.strip()]


def _merge_suffixes(parts: list[str]) -> list[str]:
    """Re-attach "Jr." / "III" that a comma split from the name before it."""
    merged: list[str] = []
    for part in parts:
        if merged and _NAME_SUFFIX_RE.match(part):
            merged[-1] = f"{merged[-1]}, {part}"
        elif part:
            merged.append(part)
    return merged


# ---------------------------------------------------------------- labels

_CREDIT_LABEL_RE = re.compile(r"^\s*(?:Photo|Image|Video|Graphic|Illustration)\s+(?:By|Credit)\s*:\s*", re.I)
_DATELINE_TAIL_RE = re.compile(r"\s*(?:--|—|–|-)\s*$")


def strip_credit_label(text: str | None) -> str | None:
    """ "Photo By: Justin Pacheco, Air Force" -> "Justin Pacheco, Air Force"."""
    return norm_or_none(_CREDIT_LABEL_RE.sub("", norm(text)))


def clean_dateline(text: str | None) -> str | None:
    """ "LUXEMBOURG (AFNS) -- " -> "LUXEMBOURG (AFNS)": the dash is punctuation, not content."""
    return norm_or_none(_DATELINE_TAIL_RE.sub("", norm(text)))
