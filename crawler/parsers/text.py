"""Text, date, size and byline normalization shared by every parser.

Change detection compares these values, so they must not move when only markup, whitespace or
Unicode form changes: everything goes through :func:`norm` (NFC, whitespace collapsed).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Characters that render as nothing but are not Python whitespace (zero-width, BOM, soft hyphen).
_INVISIBLE_RE = re.compile("[\u200b\u200c\u200d\ufeff\u00ad]")


def norm(text: str | None) -> str:
    """NFC text with every whitespace run (incl. NBSP, newlines) collapsed to one space, stripped."""
    if not text:
        return ""
    if text.isascii():  # O(1) for str: a flag CPython keeps
        # Already clean (the common case on the hot path): no whitespace but single inner spaces.
        # isprintable() looks up every character in the Unicode tables: for a paragraph, one
        # memchr-based ``in`` per ASCII whitespace character is several times cheaper. (Other
        # control characters survive the split and join unchanged, so either test is exact.)
        if text[0] == " " or text[-1] == " " or "  " in text:
            return " ".join(text.split())
        if len(text) < 48:
            return text if text.isprintable() else " ".join(text.split())
        if ("\n" in text or "\t" in text or "\r" in text or "\x0b" in text or "\x0c" in text or "\x1c" in text
                or "\x1d" in text or "\x1e" in text or "\x1f" in text):
            return " ".join(text.split())
        return text
    # Printable means no tab, newline, NBSP or zero-width character.
    if text.isprintable() and "  " not in text and text[0] != " " and text[-1] != " ":
        return unicodedata.normalize("NFC", text)
    if _INVISIBLE_RE.search(text):
        text = _INVISIBLE_RE.sub("", text)
    return unicodedata.normalize("NFC", " ".join(text.split()))


def norm_all(texts: list[str | None]) -> list[str]:
    """``[norm(t) for t in texts]``, with one check of all of them at once in the common case
    (already clean ASCII): an image block has half a dozen short fields, and a norm() call each
    cost more than the check."""
    if None not in texts:
        joined = "\x00".join(texts)  # type: ignore[arg-type]  # no None: checked above
        if (joined.isascii() and joined[0] != " " and joined[-1] != " " and "  " not in joined
                and "\x00 " not in joined and " \x00" not in joined and "\n" not in joined and "\t" not in joined
                and "\r" not in joined and "\x0b" not in joined and "\x0c" not in joined and "\x1c" not in joined
                and "\x1d" not in joined and "\x1e" not in joined and "\x1f" not in joined):
            return texts  # type: ignore[return-value]
    return [norm(t) for t in texts]


def norm_or_none(text: str | None) -> str | None:
    """Like :func:`norm` but None for empty text, so absent fields stay null in the JSON."""
    return norm(text) or None


# ---------------------------------------------------------------- dates

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}
# "Dec. 7, 2023", "Sept. 30, 2023", "December 09, 2015", "May 27, 2015 10:30 AM"
_MDY_RE = re.compile(
    r"\b(?P<mon>[A-Za-z]{3,9})\.?\s+(?P<day>\d{1,2}),?\s+(?P<year>\d{4})"
    r"(?:,?\s+(?:at\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?)?"
)
# A whole printed date: then _MDY_RE matches all of it at its start, with the same groups.
_PRINTED_DATE_RE = re.compile(r"([A-Za-z]{3,9})\.? ([0-9]{1,2}), ([0-9]{4})")
_ISO_RE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?")


def parse_date(text: str | None) -> str | None:
    """An ISO 8601 date ("2023-12-07") or datetime ("2023-12-07T10:30:00") from the date forms
    the site prints (AP style "Dec. 7, 2023", full month names, ISO); None when there is none.

    A time is kept only when the page gives one, so a date-only page never gains a fake midnight.
    """
    if not text:
        return None
    printed = _PRINTED_DATE_RE.fullmatch(text)
    if printed is not None:  # "Jan. 16, 2023" as the site prints it: _MDY_RE's match, without its search
        mon, day, year = printed.groups()
        month = _MONTHS.get(mon[:3].lower())
        return iso_date(int(year), month, int(day)) if month is not None else None
    m = _ISO_RE.match(text) if text.lstrip()[:1].isdigit() else None
    if m:
        return _iso_from_match(text, m)
    m = _MDY_RE.search(text)
    if not m:
        return None
    mon, day, year, hour, minute, ampm = m.group("mon", "day", "year", "h", "m", "ampm")
    month = _MONTHS.get(mon[:3].lower())
    if month is None:
        return None
    return _build(int(year), month, int(day), hour, minute, ampm)


def _iso_from_match(text: str, m: re.Match[str]) -> str | None:
    """Keep an ISO value as given (validated); zone designators are kept when present."""
    y, mo, d, h, mi, s = m.groups()
    try:
        if h is None:
            return datetime(int(y), int(mo), int(d)).date().isoformat()
        value = text.strip()
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.isoformat()
    except ValueError:
        return None


def _build(year: int, month: int, day: int, hour: str | None, minute: str | None, ampm: str | None) -> str | None:
    if hour is None:
        return iso_date(year, month, day)
    try:
        h = int(hour)
        if ampm:
            pm = ampm[0].lower() == "p"
            h = (h % 12) + (12 if pm else 0)
        return datetime(year, month, day, h, int(minute or 0)).isoformat()
    except ValueError:
        return None


_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def iso_date(year: int, month: int, day: int) -> str | None:
    """``date(year, month, day).isoformat()``, None for an impossible date: the same answer without
    building a date object and catching its ValueError (this runs for every image and story)."""
    if not (1 <= month <= 12 and day >= 1 and 1 <= year <= 9999):
        return None
    if day > _DAYS_IN_MONTH[month] and not (
            month == 2 and day == 29 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        return None
    return (str(year) if year >= 1000 else f"{year:04d}") + _TWO_DIGITS[month] + _TWO_DIGITS[day]


_TWO_DIGITS = tuple(f"-{i:02d}" for i in range(32))  # "-07": a format spec costs more than the rest


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
    if not text:
        return None
    printed = _PRINTED_SIZE_RE.fullmatch(text)
    if printed is not None:  # the site's own wording in one match: _SIZE_RE's first match, same groups
        whole, frac, unit = printed.groups()
        scale = _POW10[len(frac)] if frac else 1
        return (2 * int(whole + frac if frac else whole) * _PRINTED_UNITS[unit] + scale) // (2 * scale)
    m = _SIZE_RE.search(text)
    if not m:
        return None
    whole, _, frac = m.group(1).replace(",", "").partition(".")
    if not (whole or frac) or not (whole or "0").isdigit() or not (frac or "0").isdigit():
        return None
    scale = 10 ** len(frac)
    numerator = int(whole or "0") * scale + int(frac or "0")
    unit = _UNITS[m.group(2).lower()]
    return (2 * numerator * unit + scale) // (2 * scale)  # round half up


# A download label exactly as the site prints it ("Download: Full Size (1.08 MB)"): no "full" comes
# before the number, so _SIZE_RE's first match is this one.
_PRINTED_SIZE_RE = re.compile(r"(?:Download(?: Image)?: )?Full Size \(([0-9]+)(?:\.([0-9]{1,3}))? (B|bytes|KB|MB|GB)\)")
_PRINTED_UNITS = {"B": 1, "bytes": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_POW10 = (1, 10, 100, 1000)


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
