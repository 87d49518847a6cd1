"""What a digest says: change events grouped so that one change is one item.

The events table is the complete log: a caption edited on a photo is both the story's ``captions``
change and the photo's ``image_updated``; a new story's photos are each an ``image_new``. A reader
wants one item per story: what happened to it, its diff, and the photos that changed with it
beneath. Here events become such items (``group``); the templates only draw them.

Each kind says what a reader needs to act on it: a new story its opening (first paragraph, byline,
date, section), a removed one its last archived text, when it was last seen, the command that shows
the archived copy and the Wayback Machine's captures of the URL; an update its diff. The title is
the item's heading and never repeated inside it, and times are dates, not run numbers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from core.clock import parse_stamp

# Sections in the order a reader wants them: (primary kind, heading).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("story_new", "New stories"),
    ("story_updated", "Updated stories"),
    ("story_removed", "Removed stories"),
    ("story_restored", "Restored stories"),
    ("related_added", "Related stories added"),
    ("related_removed", "Related stories removed"),
    ("image_new", "New images"),
    ("image_updated", "Updated images"),
    ("image_removed", "Removed images"),
    ("image_restored", "Restored images"),
)
# Which event of a story's several decides its section: a story new in the run is "new" even though
# its related links changed too.
STORY_PRECEDENCE = ("story_new", "story_removed", "story_restored", "story_updated", "related_added",
                    "related_removed")
IMAGE_KINDS = ("image_new", "image_updated", "image_removed", "image_restored")
SUBJECT_COUNTS = ("updated", "new", "removed", "restored", "related")
WAYBACK = "https://web.archive.org/web/*/"
IMAGE_WHAT = {"image_new": "new photo", "image_removed": "photo removed", "image_restored": "photo back online"}
# A story field whose change the photos beneath it show already: the story's own diff of it is left out.
SHOWN_BY_IMAGES = {"captions": ("image_updated",), "images": ("image_new", "image_removed", "image_restored")}


@dataclass
class Entry:
    """One item of the digest: a story (with its photos) or a photo on its own."""

    kind: str  # the primary kind: decides the section and the subject's count
    subject_type: str
    subject_id: int
    events: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)  # image events shown beneath a story

    @property
    def first(self) -> dict[str, Any]:
        return self.events[0]


def parse(event: dict[str, Any]) -> dict[str, Any]:
    """An events row with its JSON columns decoded (junk tolerated: one bad row must not stop a digest)."""
    return {**event, "changed_fields": _json(event.get("changed_fields"), list),
            "diff": _json(event.get("diff"), dict), "details": _json(event.get("details"), dict)}


def group(events: list[dict[str, Any]]) -> list[Entry]:
    """One entry per story (its events together, its photos beneath) and per photo without a story here."""
    parsed = [parse(e) for e in events]
    stories: dict[int, Entry] = {}
    for event in parsed:
        if event["kind"] in STORY_PRECEDENCE:
            entry = stories.setdefault(event["subject_id"], Entry(event["kind"], "story", event["subject_id"]))
            entry.events.append(event)
            entry.kind = min(entry.kind, event["kind"], key=STORY_PRECEDENCE.index)
    entries: list[Entry] = list(stories.values())
    for event in parsed:
        if event["kind"] in STORY_PRECEDENCE:
            continue
        parent = next((stories[s] for s in event["details"].get("story_ids") or [] if s in stories), None)
        if parent is not None and event["kind"] in IMAGE_KINDS:
            parent.images.append(event)
        else:
            entries.append(Entry(event["kind"], event["subject_type"], event["subject_id"], [event]))
    for entry in entries:
        entry.events.sort(key=lambda e: STORY_PRECEDENCE.index(e["kind"]) if e["kind"] in STORY_PRECEDENCE else 99)
    return entries


def counts(entries: list[Entry]) -> str:
    """``2 updated, 1 new, 1 removed``: one count per item, most interesting first."""
    found: dict[str, int] = {}
    for entry in entries:
        verb = "related" if entry.kind.startswith("related_") else entry.kind.rpartition("_")[2]
        found[verb] = found.get(verb, 0) + 1
    order = [*SUBJECT_COUNTS, *sorted(set(found) - set(SUBJECT_COUNTS))]
    return ", ".join(f"{found[v]} {v}" for v in order if v in found)


def sections(entries: list[Entry]) -> list[tuple[str, str, list[Entry]]]:
    """``(kind, heading, entries)`` in reading order; unknown kinds last, named after themselves."""
    known = [kind for kind, _ in SECTIONS]
    extra = sorted({e.kind for e in entries} - set(known))
    labels = dict(SECTIONS) | {k: k.replace("_", " ").capitalize() for k in extra}
    grouped = []
    for kind in [*known, *extra]:
        members = [e for e in entries if e.kind == kind]
        if members:
            grouped.append((kind, labels[kind], members))
    return grouped


def hidden_fields(entry: Entry) -> set[str]:
    """Story fields not diffed in the item because the photos beneath it show the same change."""
    kinds = {image["kind"] for image in entry.images}
    return {name for name, by in SHOWN_BY_IMAGES.items() if kinds & set(by)}


# -- the lines an item shows -----------------------------------------------------------------------


def what_line(event: dict[str, Any]) -> str:
    """The one line under the heading that says what happened (never the title again)."""
    kind, details = event["kind"], event["details"]
    if kind == "story_new":
        parts = [f"New {(details.get('section') or 'story').replace('-', ' ')}"]
        parts += [f"by {details['byline']}"] if details.get("byline") else []
        parts += [f"published {details['published']}"] if details.get("published") else []
        return ", ".join(parts)
    if kind == "story_updated" or kind == "image_updated":
        return "Changed: " + ", ".join(str(f) for f in event["changed_fields"]) if event["changed_fields"] \
            else "Changed"
    if kind.endswith("_removed") and not kind.startswith("related"):
        seen = when(details.get("last_seen")) if details.get("last_seen") else "unknown"
        return f"Gone ({details.get('http_status') or 'not found'}), last seen {seen}"
    if kind.endswith("_restored"):
        return "Back online after its removal"
    if kind.startswith("related_"):
        return ""  # the list of links carries its own heading (``related_label``)
    if kind in IMAGE_WHAT:
        return IMAGE_WHAT[kind]
    return kind.replace("_", " ").capitalize()


def image_what(event: dict[str, Any]) -> str:
    """``new photo``, ``caption changed``: what happened to a photo shown beneath its story."""
    if event["kind"] == "image_updated":
        fields = [str(f) for f in event["changed_fields"]] or ["photo"]
        return " and ".join(fields) + " changed"
    return IMAGE_WHAT.get(event["kind"], event["kind"].replace("_", " "))


def related_label(event: dict[str, Any]) -> str:
    return "Related stories added" if event["kind"] == "related_added" else "Related stories no longer listed"


def links(event: dict[str, Any]) -> list[dict[str, str | None]]:
    """The related stories an event lists, as ``{title, url}``."""
    found = event["details"].get("links")
    if isinstance(found, list):
        return [{"title": str(link.get("title") or link.get("id")), "url": link.get("url")}
                for link in found if isinstance(link, dict)]
    lines = [line for op in event["diff"].get("related") or [] for line in (op.get("new") or op.get("old") or [])]
    parsed = [re.fullmatch(r"(.*) <(\S+)>", str(line)) for line in lines]
    return [{"title": m.group(1) if m else str(line), "url": m.group(2) if m else None}
            for m, line in zip(parsed, lines, strict=True)]


def wayback(url: str | None) -> str | None:
    return WAYBACK + url if url else None


def when(stamp: str | None) -> str:
    """``2025-03-04 15:02 UTC`` for readers; whatever was stored if it does not parse."""
    try:
        return parse_stamp(stamp or "").astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return stamp or "unknown time"


def period(events: list[dict[str, Any]]) -> str:
    """When the changes were seen: one time, or first to last."""
    stamps = sorted(e["detected_at"] for e in events if e.get("detected_at"))
    if not stamps:
        return ""
    first, last = when(stamps[0]), when(stamps[-1])
    if first == last:
        return first
    if first[:10] == last[:10]:
        return f"{first[:-4]}–{last[11:]}"
    return f"{first[:-4]} – {last}"


def _json(raw: Any, kind: type) -> Any:
    if isinstance(raw, kind):
        return raw
    try:
        value = json.loads(raw) if raw else kind()
    except (TypeError, ValueError):
        return kind()
    return value if isinstance(value, kind) else kind()
