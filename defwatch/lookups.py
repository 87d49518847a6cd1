"""Story, image and branch references as people hold them, read into the archive's keys.

An analyst has a story as a link copied from the browser or a mail (www.war.gov, www.defense.gov,
the sample site), a photo as its page or its media.defense.gov file, a service branch as a name.
The archive's keys are the article id, the media id and the VIRIN's one-letter code; identity never
depends on the host, so any http(s) URL whose path names a story or a photo is read the same way.
Anything else is a ``UsageError`` that says what would have been understood.
"""

from __future__ import annotations

from core.urls import classify_url
from defwatch.cli import UsageError

# Names people use for a branch beyond the VIRIN table's own ("Marines" for "Marine Corps").
BRANCH_ALIASES = {"marines": "M", "usmc": "M", "dod": "D", "usaf": "F", "ussf": "X", "uscg": "G", "guard": "Z"}


def subject(text: str) -> tuple[str, int]:
    """``("story", id)`` or ``("image", media_id)`` from an id or a story, photo page or media URL."""
    text = text.strip()
    if text.isdigit():
        return "story", int(text)
    if not text.lower().startswith(("http://", "https://")) and "/" in text:
        text = "https://" + text  # www.war.gov/News/... as copied without its scheme
    ref = classify_url(text) if text.lower().startswith(("http://", "https://")) else None
    if ref is not None and ref.id is not None and ref.type == "story":
        return "story", ref.id
    if ref is not None and ref.id is not None and ref.type in ("photo", "media"):
        return "image", ref.id
    raise UsageError(f"{text!r} is neither a story id nor a story or photo URL of the site "
                     "(e.g. 3610656 or https://www.war.gov/News/News-Stories/Article/Article/3610656/...)")


def story_id(text: str) -> int:
    """An article id, from the number or from a story URL."""
    kind, number = subject(text)
    if kind != "story":
        raise UsageError(f"{text!r} is a photo, not a story; `defwatch show --image {number}` shows it")
    return number


def media_id(text: str) -> int:
    """A media id, from the number or from a photo page or media.defense.gov URL."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    kind, number = subject(text)
    if kind != "image":
        raise UsageError(f"{text!r} is a story, not a photo; `defwatch show {number}` shows it")
    return number


def branch_code(text: str) -> str:
    """The VIRIN service code for a code or a name, any case ("n", "Navy", "space force")."""
    from crawler.parsers.virin import BRANCHES  # the parsers package loads lxml: only when asked

    wanted = " ".join(text.split()).lower()
    for code, name in BRANCHES.items():
        if wanted in (code.lower(), name.lower()):
            return code
    if wanted in BRANCH_ALIASES:
        return BRANCH_ALIASES[wanted]
    known = ", ".join(f"{code} {name}" for code, name in BRANCHES.items())
    raise UsageError(f"unknown branch {text!r}; one of: {known}")
