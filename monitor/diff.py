"""The one paragraph- and word-level diff: change events, alert mails and ``defwatch diff`` all use it.

Events store :func:`field_diffs` (paragraph operations per field); mails and the terminal/HTML views
pair the replaced paragraphs of a passage (:func:`pair_paragraphs`) and mark words inside a pair
that stayed similar (:func:`word_segments`). Writing it once keeps a mail and ``defwatch diff``
from disagreeing about what changed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from db.versions import changed_story_fields, story_content

Segment = tuple[str, str]  # ("", same) | ("del", gone) | ("ins", added)

# Below this share of surviving words, word marks are noise: show the old and new paragraph whole.
SIMILARITY = 0.4
WORD_LEVEL_FIELDS = ("body", "captions")  # drawn with word marks by ``defwatch diff`` (FieldDiff.inline)
_TOKEN = re.compile(r"\w+|[^\w\s]+|\s+")


@dataclass
class Para:
    kind: str  # changed | deleted | inserted
    segments: list[Segment]


@dataclass
class Hunk:
    """Consecutive changed paragraphs; starts are 1-based paragraph numbers (None: not positional)."""

    old_start: int | None
    old_count: int
    new_start: int | None
    new_count: int
    paras: list[Para] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.new_start is None:
            return ""
        if not self.new_count:
            return f"old paragraph {_span(self.old_start or 0, self.old_count)} deleted"
        return f"paragraph {_span(self.new_start, self.new_count)}"


@dataclass
class FieldDiff:
    name: str
    hunks: list[Hunk]

    @property
    def inline(self) -> bool:
        """Short fields read best as ``old → new``; the body and captions (long text, where a reader
        wants to see which words changed) get word marks, as in the digest mail."""
        return self.name not in WORD_LEVEL_FIELDS




def story_diff(old: dict[str, Any], new: dict[str, Any]) -> list[FieldDiff]:
    """Reader-visible differences between two story records, in the order events name fields.

    The body is diffed here, with paragraph positions, on the same normalized paragraphs the
    version hash uses (so re-wrapped white space never shows as a change); the other fields come
    from :func:`field_diffs`, the diff the change events carry.
    """
    fields = changed_story_fields(old, new)
    others = field_diffs(old, new, [f for f in fields if f != "body"])
    diffs = []
    for name in fields:
        if name == "body":
            hunks = paragraph_hunks(story_content(old)["paragraphs"], story_content(new)["paragraphs"])
        else:
            hunks = [hunk_from_op(op) for op in others[name]]
        diffs.append(FieldDiff(name, hunks))
    return diffs


def paragraph_hunks(old: list[str], new: list[str]) -> list[Hunk]:
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    return [
        Hunk(i1 + 1, i2 - i1, j1 + 1, j2 - j1, pair_paragraphs(old[i1:i2], new[j1:j2]))
        for op, i1, i2, j1, j2 in matcher.get_opcodes()
        if op != "equal"
    ]


def hunk_from_op(op: dict[str, Any]) -> Hunk:
    old, new = [str(v) for v in op.get("old") or []], [str(v) for v in op.get("new") or []]
    return Hunk(None, len(old), None, len(new), pair_paragraphs(old, new))


def pair_paragraphs(old: list[str], new: list[str]) -> list[Para]:
    """Pair replaced paragraphs in order; a similar pair gets word marks, others show whole."""
    paras = []
    for index in range(max(len(old), len(new))):
        before = old[index] if index < len(old) else None
        after = new[index] if index < len(new) else None
        if before is not None and after is not None and similar(before, after):
            paras.append(Para("changed", word_segments(before, after)))
            continue
        if before is not None:
            paras.append(Para("deleted", [("del", before)]))
        if after is not None:
            paras.append(Para("inserted", [("ins", after)]))
    return paras


def similar(old: str, new: str) -> bool:
    """Word marks only help when most words survive; otherwise show old and new whole."""
    return difflib.SequenceMatcher(None, _TOKEN.findall(old), _TOKEN.findall(new), autojunk=False).ratio() >= SIMILARITY


def shares_words(old: str, new: str) -> bool:
    """Most *words* survive (spaces and punctuation not counted).

    ``similar`` counts every token, which suits a ``title | caption | credit`` line (the unchanged
    title and credit carry it); a caption on its own, rewritten, shares its spaces and commas with
    the old one and nothing else, and marked word by word it would read as one run-on line.
    """
    words = [re.findall(r"\w+", text) for text in (old, new)]
    return difflib.SequenceMatcher(None, *words, autojunk=False).ratio() >= SIMILARITY


def word_segments(old: str, new: str) -> list[Segment]:
    """Runs of kept, deleted and inserted words; a lone space between two changes joins them.

    "a b" -> "x y" then reads as one replacement rather than a chequerboard of one-word marks. Only
    white space is folded: a kept comma or word between two changes stays visible.
    """
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    ops = [[tag == "equal", "".join(a[i1:i2]), "".join(b[j1:j2])]
           for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()]
    for i in range(1, len(ops) - 1):
        if ops[i][0] and ops[i][1].isspace() and not ops[i - 1][0] and not ops[i + 1][0]:
            ops[i][0] = False
    runs: list[list[Any]] = []  # [equal, old text, new text]
    for op in ops:
        if runs and not op[0] and not runs[-1][0]:
            runs[-1][1] += op[1]
            runs[-1][2] += op[2]
        else:
            runs.append(op)
    segments: list[Segment] = []
    for equal, before, after in runs:
        if equal:
            segments.append(("", before))
        else:
            segments += [("del", before)] if before else []
            segments += [("ins", after)] if after else []
    return segments


def _span(start: int, count: int) -> str:
    return str(start) if count <= 1 else f"{start}-{start + count - 1}"


# -- the diff change events store --------------------------------------------------------------


def field_diffs(old: dict[str, Any], new: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """Paragraph-level diff for the body; old/new values for the other fields."""
    diffs: dict[str, Any] = {}
    for name in fields:
        if name == "body":
            diffs[name] = paragraph_diff(old.get("paragraphs") or [], new.get("paragraphs") or [])
        elif name in ("captions", "images"):
            diffs[name] = paragraph_diff(_image_lines(old), _image_lines(new))
        else:
            diffs[name] = [{"op": "replace", "old": [_text(old, name)], "new": [_text(new, name)]}]
    return diffs


def paragraph_diff(old: list[str], new: list[str]) -> list[dict[str, Any]]:
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    return [
        {"op": op, "old": old[i1:i2], "new": new[j1:j2]}
        for op, i1, i2, j1, j2 in matcher.get_opcodes()
        if op != "equal"
    ]


def _image_lines(record: dict[str, Any]) -> list[str]:
    lines = []
    for image in record.get("images") or []:
        parts = [image.get("title"), image.get("caption"), image.get("credit")]
        lines.append(" | ".join(p for p in parts if p) or str(image.get("media_id")))
    return lines


def _text(record: dict[str, Any], name: str) -> str:
    if name == "tags":
        return ", ".join(record.get("tags") or [])
    if name == "byline":
        return " ".join(filter(None, [record.get("byline"), record.get("dateline")]))
    if name == "published":
        return " ".join(filter(None, [record.get("published"), record.get("updated")]))
    value = record.get(name)
    return "" if value is None else str(value)
