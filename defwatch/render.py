"""Rendering story diffs for a terminal and as a standalone HTML page.

A diff is computed once into plain data by ``monitor.diff`` (``FieldDiff`` -> ``Hunk`` -> ``Para``
-> word segments) and then drawn here: as text with ``[-gone-]{+added+}`` marks (the ``git diff
--word-diff`` convention, so it survives pipes, files and e-mail), with ANSI colour only when a
person is watching a terminal, or as HTML through Jinja2 with autoescaping, because every string
in it was scraped from a web page and must never become markup.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the analyst commands import this module; the diff itself only when one is drawn
    from monitor.diff import FieldDiff, Hunk

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
