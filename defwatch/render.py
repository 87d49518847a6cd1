"""Rendering story diffs for a terminal and as a standalone HTML page.

A diff is computed once into plain data (:class:`FieldDiff` -> :class:`Hunk` -> :class:`Para`
-> word segments) and then drawn: as text with ``[-gone-]{+added+}`` marks (the ``git diff
--word-diff`` convention, so it survives pipes, files and e-mail), with ANSI colour only when a
person is watching a terminal, or as HTML through Jinja2 with autoescaping, because every string
in it was scraped from a web page and must never become markup.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Any, TextIO

from db.versions import changed_story_fields, story_content

Segment = tuple[str, str]  # ("", same) | ("del", gone) | ("ins", added)

# Below this share of surviving words, word marks are noise: show the old and new paragraph whole.
SIMILARITY = 0.4
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
        """Non-body fields read best as ``old → new``."""
        return self.name != "body"


# -- computing ----------------------------------------------------------------------------------------


def story_diff(old: dict[str, Any], new: dict[str, Any]) -> list[FieldDiff]:
    """Reader-visible differences between two story records, in the order events name fields.

    The body is diffed here, with paragraph positions, on the same normalized paragraphs the
    version hash uses (so re-wrapped white space never shows as a change); the other fields come
    from :func:`monitor.changes.field_diffs`, the diff the change events carry.
    """
    from monitor.changes import field_diffs  # pulls in the archive writer: only when a diff is drawn

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
    return difflib.SequenceMatcher(None, _TOKEN.findall(old), _TOKEN.findall(new), autojunk=False).ratio() >= SIMILARITY


def word_segments(old: str, new: str) -> list[Segment]:
    """Runs of kept, deleted and inserted words; a lone space between two changes joins them."""
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


# -- terminal -----------------------------------------------------------------------------------------

RED, GREEN, BOLD, DIM, RESET = "\x1b[31m", "\x1b[32m", "\x1b[1m", "\x1b[2m", "\x1b[0m"
STRIKE_RED, UNDER_GREEN = "\x1b[9;31m", "\x1b[4;32m"


# C0 and C1 controls (ESC above all) except tab and newline; STX/ETX are search-hit markers and inert.
_CONTROL = re.compile("[\x00-\x01\x04-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(value: Any) -> Any:
    """Scraped strings without control characters, recursively: a page must not drive the terminal."""
    if isinstance(value, str):
        return _CONTROL.sub("", value)
    if isinstance(value, list):
        return [terminal_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: terminal_safe(v) for k, v in value.items()}
    return value


def use_color(stream: TextIO) -> bool:
    """Colour for a person at a terminal only; NO_COLOR (no-color.org) turns it off."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in os.environ


class Painter:
    """Text styling that degrades to plain marks when colour is off."""

    def __init__(self, color: bool):
        self.color = color

    def paint(self, text: str, style: str) -> str:
        return f"{style}{text}{RESET}" if self.color and text else text

    def segment(self, kind: str, text: str) -> str:
        if kind == "del":
            return self.paint(text, STRIKE_RED) if self.color else f"[-{text}-]"
        if kind == "ins":
            return self.paint(text, UNDER_GREEN) if self.color else f"{{+{text}+}}"
        return text


def diff_text(diffs: list[FieldDiff], painter: Painter) -> list[str]:
    """The diff as terminal lines, field by field."""
    lines: list[str] = []
    for diff in diffs:
        lines.append(painter.paint(f"{diff.name}:", BOLD))
        for hunk in diff.hunks:
            lines += _inline_lines(hunk, painter) if diff.inline else _hunk_lines(hunk, painter)
        lines.append("")
    return lines


def _hunk_lines(hunk: Hunk, painter: Painter) -> list[str]:
    lines = [painter.paint(f"  @@ {hunk.label} @@", DIM)] if hunk.label else []
    for para in hunk.paras:
        text = "".join(painter.segment(kind, value) for kind, value in para.segments)
        if para.kind == "changed":
            lines.append(f"  ~ {text}")
        elif para.kind == "deleted":
            lines.append(painter.paint(f"  - {para.segments[0][1]}", RED))
        else:
            lines.append(painter.paint(f"  + {para.segments[0][1]}", GREEN))
    return lines


def _inline_lines(hunk: Hunk, painter: Painter) -> list[str]:
    """``old → new`` per changed value; an added or dropped value shows ``(none)`` on its missing side."""
    lines = []
    for para in hunk.paras:
        old = "".join(text for kind, text in para.segments if kind != "ins") if para.kind != "inserted" else None
        new = "".join(text for kind, text in para.segments if kind != "del") if para.kind != "deleted" else None
        lines.append(f"  {painter.paint(_shown(old), RED)} → {painter.paint(_shown(new), GREEN)}")
    return lines


def _shown(value: str | None) -> str:
    return "(none)" if value is None else value if value.strip() else "(empty)"


# -- HTML ---------------------------------------------------------------------------------------------

_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>defwatch diff: story {{ story.id }}, version {{ old.version }} → {{ new.version }}</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; } .meta { color: #666; font-size: .9rem; }
  section { margin: 1.5rem 0; } h2 { font-size: 1.1rem; border-bottom: 1px solid #ddd; }
  .hunk { margin: 1rem 0; } .where { color: #888; font-size: .85rem; font-family: monospace; }
  p { margin: .4rem 0; padding: .3rem .6rem; border-left: 4px solid #ccc; }
  p.changed { border-color: #d9a400; } p.deleted { border-color: #c62828; background: #fdecea; }
  p.inserted { border-color: #2e7d32; background: #e8f5e9; }
  del { background: #ffcdd2; color: #8e0000; } ins { background: #c8e6c9; color: #1b5e20; text-decoration: none; }
  .arrow { color: #888; padding: 0 .4rem; } .none { color: #999; font-style: italic; }
</style>
</head>
<body>
<h1>{{ story.title or ("Story " ~ story.id) }}</h1>
<p class="meta">Story {{ story.id }}{% if story.kind %} ({{ story.kind }}){% endif %}
{%- if url %} · <a href="{{ url }}">{{ url }}</a>{% endif %}<br>
Version {{ old.version }} (first seen {{ old.first_seen | when }})
→ version {{ new.version }} (first seen {{ new.first_seen | when }})
</p>
{% for diff in diffs %}
<section class="field-{{ diff.name }}">
<h2>{{ diff.name }}</h2>
{% for hunk in diff.hunks %}
<div class="hunk">
{% if hunk.label %}<div class="where">{{ hunk.label }}</div>{% endif %}
{% for para in hunk.paras %}
{% if diff.inline %}
<p class="{{ para.kind }}">
{%- if para.kind == "inserted" %}<span class="none">(none)</span>{% else %}<del>{{ old_text(para) }}</del>{% endif -%}
<span class="arrow">→</span>
{%- if para.kind == "deleted" %}<span class="none">(none)</span>{% else %}<ins>{{ new_text(para) }}</ins>{% endif -%}
</p>
{% else %}
<p class="{{ para.kind }}">
{%- for kind, text in para.segments -%}
{%- if kind == "del" %}<del>{{ text }}</del>
{%- elif kind == "ins" %}<ins>{{ text }}</ins>
{%- else %}{{ text }}{% endif -%}
{%- endfor -%}
</p>
{% endif %}
{% endfor %}
</div>
{% endfor %}
</section>
{% else %}
<p>No reader-visible differences.</p>
{% endfor %}
</body>
</html>
"""

def diff_html(story: dict[str, Any], old: dict[str, Any], new: dict[str, Any], diffs: list[FieldDiff]) -> str:
    """A standalone page (inline CSS, no scripts, no external resources) showing the diff."""
    from jinja2 import Environment

    env = Environment(autoescape=True, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = lambda stamp: (stamp or "")[:19].replace("T", " ") + " UTC"
    template = env.from_string(_HTML)
    return template.render(
        story=story, old=old, new=new, diffs=diffs, url=safe_url(story.get("url")),
        old_text=lambda p: "".join(t for k, t in p.segments if k != "ins"),
        new_text=lambda p: "".join(t for k, t in p.segments if k != "del"),
    )


def safe_url(url: str | None) -> str | None:
    """Only http(s) links: a scraped ``javascript:`` URL must not become a clickable link."""
    return url if url and url.lower().startswith(("http://", "https://")) else None
