"""The analysts' commands over the archive: search, show, history, diff, images, export, stats.

All of them only read. Queries live in ``db.analysis``; diff drawing in ``defwatch.render``. The
``--json`` shapes (and the export columns) are a contract with users' scripts: add keys, never
rename them. Bad input (an unknown id, an FTS syntax error, a malformed date) is a one-line
message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO
from xml.etree import ElementTree as ET

from core.clock import parse_day, parse_instant, stamp
from core.constants import STORY_KINDS
from core.progress import Progress
from db import analysis, provenance
from defwatch import lookups, render
from defwatch.cli import UsageError, config_from, print_json, read_archive
from defwatch.commands import _command, _common

if TYPE_CHECKING:  # the CLI loads this module for every command: keep sqlite_utils out of --help
    import sqlite_utils

SEARCH_KEYS = ("id", "kind", "title", "url", "published", "snippet", "rank", "status", "missing_since", "removed_at",
               "version", "current", "current_version", "first_seen", "last_seen")
STORY_KEYS = ("id", "kind", "url", "canonical_url", "title", "subtitle", "published", "updated", "byline",
              "authors", "organisation", "dateline", "tags", "status", "version", "current_version",
              "first_seen", "last_seen", "missing_since", "removed_at", "body_text", "paragraphs",
              "images", "related", "source")
STORY_IMAGE_KEYS = ("position", "media_id", "title", "caption", "credit", "alt", "src", "download_url", "page_url",
                    "size_bytes", "virin", "virin_shot_date", "virin_branch_code", "virin_branch",
                    "virin_originator_id", "virin_sequence", "virin_suffix")
RELATED_KEYS = ("related_id", "url", "title", "archived", "first_seen", "last_seen", "removed", "removed_at")
IMAGE_KEYS = ("media_id", "virin", "virin_shot_date", "virin_branch_code", "virin_branch", "virin_originator_id",
              "virin_sequence", "virin_suffix", "title", "caption", "credit", "size_bytes", "page_url",
              "download_url", "source", "status", "first_seen", "story_ids")
HISTORY_VERSION_KEYS = ("version", "first_seen", "last_seen", "first_run_id", "last_run_id", "content_hash",
                        "parser_version", "changed", "source")
EXPORT_FORMATS = ("csv", "json", "jsonl", "atom", "warc", "wacz")
EXPORT_TABLES = ("stories", "images", "events")
HASH_PREFIX = 12
TAG_PREFIX = "tag:defwatch,2026:"
ATOM_NS = "http://www.w3.org/2005/Atom"


# -- shared helpers ---------------------------------------------------------------------------------


def _open(args: argparse.Namespace) -> sqlite_utils.Database:
    """The archive named by --db / config, read only; anything but a readable archive is a usage error."""
    return read_archive(config_from(args).db)


def _positive(value: int, option: str) -> int:
    if value < 1:
        raise UsageError(f"{option} must be 1 or more")
    return value


def _story_or_fail(db: sqlite_utils.Database, story_id: int) -> dict[str, Any]:
    story = analysis.story(db, story_id)
    if story is None:
        raise UsageError(f"no story with id {story_id} in the archive")
    return story


def _pick(row: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {key: row.get(key) for key in keys}


def _short(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _stamp(value: str | None) -> str:
    """Archive times shown to the second: the microseconds are for sorting, not for reading."""
    return (value or "")[:19].replace("T", " ")


# -- search -----------------------------------------------------------------------------------------


def register_search(commands: Any) -> None:
    p = _command(commands, "search",
                 "Full-text search of stories (title, subtitle, body, captions), best match first. Every word"
                 " typed must match, as typed (Indo-Pacific, Navy's, U.S.-Japan); \"a phrase\" in double"
                 " quotes; a trailing * for a prefix (hyperson*).",
                 "defwatch search 'Indo-Pacific \"space force\" launch*' --kind news-story --since 2024-01-01\n"
                 "  defwatch search --all-versions 'counter-drone'   # also text since edited out\n"
                 "  defwatch search --fts 'title:budget OR title:briefing'")
    _common(p)
    p.add_argument("query", metavar="QUERY",
                   help='words to find, "a phrase", prefix* (or an FTS5 query with --fts)')
    p.add_argument("--fts", action="store_true",
                   help="read QUERY as SQLite FTS5 syntax: AND / OR / NOT, NEAR(), column:word, ^start")
    p.add_argument("--all-versions", action="store_true",
                   help="also search the versions a story has moved on from (text edited out since); each hit"
                        " names its version, when that version was first and last seen, and if it is current")
    p.add_argument("--kind", choices=STORY_KINDS, help="only stories of this kind")
    p.add_argument("--since", metavar="DATE", help="only stories published on or after this date (YYYY-MM-DD)")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N results (default: 20)")
    p.add_argument("--json", action="store_true",
                   help=f"print JSON items ({', '.join(SEARCH_KEYS)}); hits are **marked**")
    p.set_defaults(handler=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    from db.fts_query import EmptyQuery, looks_like_fts_syntax, plain_query

    since = parse_day(args.since, "--since") if args.since else None
    limit = _positive(args.limit, "--limit")
    if args.fts and not args.query.strip():
        raise UsageError("search needs at least one word to look for")
    try:
        query = args.query if args.fts else plain_query(args.query)
    except EmptyQuery as exc:
        raise UsageError(f"{exc}, e.g. defwatch search 'Indo-Pacific'") from exc
    db = _open(args)
    if args.all_versions and not analysis.has_table(db, "story_versions_fts"):
        raise UsageError("this archive has no index of past versions yet (it was made by an older defwatch);"
                         " the next `defwatch crawl` on it adds one")
    try:
        hits = analysis.search_stories(db, query, kind=args.kind, since=since, limit=limit,
                                       all_versions=args.all_versions)
    except analysis.SearchQueryError as exc:
        raise UsageError(f"cannot read search query {args.query!r} as FTS5 syntax ({exc}); without --fts every"
                         " word is searched for as typed") from exc
    if args.json:
        print_json([_pick({**hit, "snippet": _marked(hit["snippet"], "**", "**")}, SEARCH_KEYS) for hit in hits])
    else:
        _print_hits(render.terminal_safe(hits), render.Painter(render.use_color(sys.stdout)), args.all_versions)
    if not hits and not args.fts and looks_like_fts_syntax(args.query):
        print("note: the words were searched for as typed; for FTS5 syntax (OR, NOT, column:) add --fts",
              file=sys.stderr)
    return 0


def _marked(snippet: str | None, start: str, end: str) -> str:
    return (snippet or "").replace(analysis.HIT_START, start).replace(analysis.HIT_END, end)


def _print_hits(hits: list[dict[str, Any]], painter: render.Painter, all_versions: bool) -> None:
    if not hits:
        print("no matching stories", file=sys.stderr)
    start, end = (render.BOLD + "\x1b[33m", render.RESET) if painter.color else ("**", "**")
    for hit in hits:
        print(f"{hit['id']:>9}  {hit['kind']:<14} {(hit['published'] or '')[:10]:<10}  "
              f"{painter.paint(hit['title'] or '(untitled)', render.BOLD)}{_status_note(hit)}")
        if all_versions:
            which = "current" if hit["current"] else f"not current (now version {hit['current_version']})"
            print(f"{'':11}version {hit['version']}, {which}; seen {_stamp(hit['first_seen'])} .. "
                  f"{_stamp(hit['last_seen'])}")
        print(f"{'':11}{hit['url']}")
        print(f"{'':11}{' '.join(_marked(hit['snippet'], start, end).split())}")


def _status_note(hit: dict[str, Any]) -> str:
    """A story that is no longer on the site says so beside its title."""
    if hit["status"] == "removed":
        return f"  [removed {_stamp(hit['removed_at'])[:10]}]"
    if hit["status"] == "missing":
        return f"  [missing since {_stamp(hit['missing_since'])[:10]}]"
    return ""


# -- show -------------------------------------------------------------------------------------------


def register_show(commands: Any) -> None:
    p = _command(commands, "show",
                 "Show a story as archived (current state, or an older version) with its images and related links;"
                 " or, with --image, an image and its versions.",
                 "defwatch show 3610656 --version 1   |   defwatch show --image 8123456 --json\n"
                 "  defwatch show https://www.war.gov/News/News-Stories/Article/Article/3610656/x/ --at 2024-01-31")
    _common(p)
    p.add_argument("id", metavar="ID", nargs="?",
                   help="the story's article id, or its URL (war.gov, defense.gov); a photo URL shows the image")
    version = p.add_mutually_exclusive_group()
    version.add_argument("--version", type=int, metavar="N",
                         help="show the record of version N instead of the current state")
    version.add_argument("--at", metavar="DATE",
                         help="show the version that was current at this UTC date-time (a date: at its end)")
    p.add_argument("--image", metavar="MEDIA_ID",
                   help="show this image, by media id or photo URL (with ID: one of that story's)")
    p.add_argument("--json", action="store_true",
                   help="print the story (images, related and paragraphs included) or the image as JSON")
    p.set_defaults(handler=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    if args.id is None and args.image is None:
        raise UsageError("show needs a story ID (or its URL), or --image MEDIA_ID")
    kind, number = lookups.subject(args.id) if args.id is not None else ("image", None)
    image_id = lookups.media_id(args.image) if args.image is not None else number if kind == "image" else None
    story_id = number if kind == "story" else None
    at = _until(args.at, "--at") if args.at else None
    db = _open(args)
    if image_id is not None:
        if at:
            raise UsageError("--at applies to stories; an image lists all its versions with their dates")
        data = _image_view(db, image_id, story_id, args.version)
        print_json(data) if args.json else _print_image(render.terminal_safe(data))
        return 0
    story = _story_or_fail(db, story_id)
    version = args.version if args.version is not None else _version_at(db, story, at) if at else None
    data = _version_view(db, story, version) if version is not None else _current_view(db, story)
    print_json(data) if args.json else _print_story(render.terminal_safe(data))
    return 0


def _until(text: str, option: str) -> str:
    """An instant to look back to; a bare date means the end of that day (what was current that day)."""
    instant = parse_instant(text, option)
    return instant[:10] + "T23:59:59.999999Z" if len(text.strip()) == 10 else instant


def _version_at(db: sqlite_utils.Database, story: dict[str, Any], at: str) -> int:
    version = analysis.story_version_at(db, story["id"], at)
    if version is None:
        raise UsageError(f"story {story['id']} was first archived {_stamp(story['first_seen'])} UTC, after {at[:19]}")
    return version


def _current_view(db: sqlite_utils.Database, story: dict[str, Any]) -> dict[str, Any]:
    current = analysis.story_version(db, story["id"], story["current_version"] or 0)
    paragraphs = (current or {}).get("record", {}).get("paragraphs") or _split_body(story["body_text"])
    view = {**story, "version": story["current_version"], "paragraphs": paragraphs,
            "source": _source(db, (current or {}).get("fetch_id")),
            "images": [_pick(i, STORY_IMAGE_KEYS) for i in analysis.story_images(db, story["id"])],
            "related": [_pick(r, RELATED_KEYS) for r in analysis.related_links(db, story["id"])]}
    return _pick(view, STORY_KEYS)


def _version_view(db: sqlite_utils.Database, story: dict[str, Any], version: int) -> dict[str, Any]:
    """The record as parsed when version N was first seen; status stays the story's current one."""
    row = analysis.story_version(db, story["id"], version)
    if row is None:
        raise UsageError(f"story {story['id']} has no version {version} (versions 1-{story['current_version']})")
    record = row["record"]
    archived = {r["related_id"] for r in analysis.related_links(db, story["id"]) if r["archived"]}
    view = {
        **record, "status": story["status"], "version": version, "current_version": story["current_version"],
        "first_seen": row["first_seen"], "last_seen": row["last_seen"],
        "missing_since": story["missing_since"], "removed_at": story["removed_at"],
        "source": _source(db, row["fetch_id"]),
        "images": [_record_image(image, position) for position, image in enumerate(record.get("images") or [])],
        "related": [_record_related(link, archived) for link in record.get("related") or []],
    }
    return _pick(view, STORY_KEYS)


def _source(db: sqlite_utils.Database, fetch_id: int | None) -> dict[str, Any] | None:
    """Where the shown version was first seen (``db.provenance``)."""
    return provenance.sources(db, [fetch_id]).get(fetch_id) if fetch_id is not None else None


def _record_image(image: dict[str, Any], position: int) -> dict[str, Any]:
    virin = image.get("virin") or {}
    flat = {**image, "position": position, "virin": virin.get("raw")}
    flat |= {f"virin_{k}": virin.get(k) for k in ("shot_date", "branch_code", "branch", "originator_id",
                                                  "sequence", "suffix")}
    return _pick(flat, STORY_IMAGE_KEYS)


def _record_related(link: dict[str, Any], archived: set[int]) -> dict[str, Any]:
    return _pick({"related_id": link.get("id"), "url": link.get("url"), "title": link.get("title"),
                  "archived": link.get("id") in archived}, RELATED_KEYS)


def _split_body(body: str | None) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", body or "") if p.strip()]


def _print_story(view: dict[str, Any]) -> None:
    painter = render.Painter(render.use_color(sys.stdout))
    print(f"story {view['id']}  {view['kind']}  {view['status']}  version {view['version']} "
          f"of {view['current_version']}")
    print(painter.paint(view["title"] or "(untitled)", render.BOLD))
    for line in (view["subtitle"], _byline(view), view["url"]):
        if line:
            print(line)
    print(f"source: {provenance.label(view['source'])}" + (f"  {view['source']['url']}" if view["source"] else ""))
    print(f"seen {_stamp(view['first_seen'])} .. {_stamp(view['last_seen'])}"
          + (f"  removed {_stamp(view['removed_at'])}" if view["removed_at"] else "")
          + (f"  missing since {_stamp(view['missing_since'])}" if view["missing_since"] else ""))
    if view["tags"]:
        print(f"tags: {', '.join(view['tags'])}")
    print()
    for paragraph in view["paragraphs"]:
        print(paragraph, end="\n\n")
    _print_story_images(view["images"])
    _print_related(view["related"])


def _byline(view: dict[str, Any]) -> str:
    parts = [view["byline"], view["dateline"],
             f"published {view['published']}" if view["published"] else None,
             f"updated {view['updated']}" if view["updated"] else None]
    return "  |  ".join(p for p in parts if p)


def _print_story_images(images: list[dict[str, Any]]) -> None:
    print(f"images ({len(images)}):")
    for image in images:
        print(f"  {image['media_id']}  {image['virin'] or '-'}  shot {image['virin_shot_date'] or '?'}  "
              f"{_branch(image)}  {image['credit'] or ''}".rstrip())
        if image["caption"] or image["title"]:
            print(f"      {_short(image['caption'] or image['title'], 110)}")


def _branch(image: dict[str, Any]) -> str:
    code = image.get("virin_branch_code")
    return f"{code} ({image.get('virin_branch')})" if code and image.get("virin_branch") else code or "-"


def _print_related(related: list[dict[str, Any]]) -> None:
    print(f"related ({len(related)}):")
    for link in related:
        flag = f"  [removed {_stamp(link['removed_at'])}]" if link.get("removed") else ""
        print(f"  {link['related_id']}  {link['title'] or ''}  {link['url'] or ''}{flag}")


def _image_view(
    db: sqlite_utils.Database, media_id: int, story_id: int | None, version: int | None
) -> dict[str, Any]:
    image = analysis.image(db, media_id)
    if image is None:
        raise UsageError(f"no image with media id {media_id} in the archive")
    stories = analysis.image_stories(db, media_id)
    if story_id is not None and story_id not in {s["id"] for s in stories}:
        _story_or_fail(db, story_id)
        raise UsageError(f"image {media_id} is not one of story {story_id}'s images")
    versions = analysis.image_versions(db, media_id)
    origins = provenance.sources(db, [v["fetch_id"] for v in versions])
    for row in versions:
        row["source"] = origins.get(row["fetch_id"])
    view = {**_pick(image, IMAGE_KEYS[:-1]), "alt": image["alt"], "src": image["src"],
            "published": image["published"], "current_version": image["current_version"],
            "last_seen": image["last_seen"], "removed_at": image["removed_at"],
            "stories": stories, "versions": [_image_version(v) for v in versions]}
    if version is not None:
        match = [v for v in versions if v["version"] == version]
        if not match:
            raise UsageError(f"image {media_id} has no version {version} ({len(versions)} stored)")
        view["record"] = match[0]["record"]
    return view


def _image_version(row: dict[str, Any]) -> dict[str, Any]:
    return {"version": row["version"], "content_hash": row["content_hash"][:HASH_PREFIX], "title": row["title"],
            "caption": row["caption"], "credit": row["credit"], "first_seen": row["first_seen"],
            "last_seen": row["last_seen"], "first_run_id": row["first_run_id"], "source": row["source"]}


def _print_image(view: dict[str, Any]) -> None:
    print(f"image {view['media_id']}  {view['status']}  source {view['source']}  "
          f"version {view['current_version'] or '-'}")
    for label in ("title", "caption", "credit", "alt", "page_url", "download_url", "published"):
        if view.get(label):
            print(f"{label + ':':<14}{view[label]}")
    print(f"{'virin:':<14}{view['virin'] or '-'}  shot {view['virin_shot_date'] or '?'}  {_branch(view)}  "
          f"originator {view['virin_originator_id'] or '-'}  seq {view['virin_sequence'] or '-'}"
          f"{'  suffix ' + view['virin_suffix'] if view['virin_suffix'] else ''}")
    print(f"in stories:   {', '.join(str(s['id']) for s in view['stories']) or '-'}")
    print(f"versions ({len(view['versions'])}):")
    for v in view["versions"]:
        print(f"  v{v['version']}  {_stamp(v['first_seen'])} .. {_stamp(v['last_seen'])}  {v['content_hash']}  "
              f"{provenance.label(v['source'])}  {_short(v['caption'] or v['title'], 60)}")
    if "record" in view:
        print_json(view["record"])


# -- history ----------------------------------------------------------------------------------------


def register_history(commands: Any) -> None:
    p = _command(commands, "history", "List every archived version of a story and what changed in each.",
                 "defwatch history 3610656 --json")
    _common(p)
    p.add_argument("id", metavar="ID", help="the story's article id, or its URL")
    p.add_argument("--json", action="store_true",
                   help="print {id, title, url, status, current_version, missing_since, removed_at, versions}")
    p.set_defaults(handler=cmd_history)


def cmd_history(args: argparse.Namespace) -> int:
    from db.versions import changed_story_fields

    story_id = lookups.story_id(args.id)
    db = _open(args)
    story = _story_or_fail(db, story_id)
    versions, previous = [], None
    rows = analysis.story_versions(db, story_id)
    origins = provenance.sources(db, [row["fetch_id"] for row in rows])
    for row in rows:
        changed = changed_story_fields(previous, row["record"]) if previous is not None else []
        versions.append(_pick({**row, "content_hash": row["content_hash"][:HASH_PREFIX], "changed": changed,
                               "source": origins.get(row["fetch_id"])}, HISTORY_VERSION_KEYS))
        previous = row["record"]
    data = {**_pick(story, ("id", "title", "url", "status", "current_version", "missing_since", "removed_at")),
            "versions": versions}
    print_json(data) if args.json else _print_history(render.terminal_safe(data))
    return 0


def _print_history(data: dict[str, Any]) -> None:
    print(f"story {data['id']}: {data['title'] or '(untitled)'}")
    status = data["status"] + (f" since {_stamp(data['removed_at'] or data['missing_since'])}"
                               if data["status"] != "live" else "")
    print(f"status: {status}   current version: {data['current_version']}   {data['url']}")
    print(f"{'ver':>4}  {'first seen':<19}  {'last seen':<19}  {'run':>4}  {'hash':<12}  changed")
    for v in data["versions"]:
        changed = ", ".join(v["changed"]) if v["version"] > 1 else "(first version)"
        imported = v["source"] and v["source"]["type"] != "crawl"  # the run column says which crawl
        print(f"{v['version']:>4}  {_stamp(v['first_seen']):<19}  {_stamp(v['last_seen']):<19}  "
              f"{v['first_run_id'] or '-':>4}  {v['content_hash']:<12}  {changed or '(no reader-visible change)'}"
              + (f"  [{provenance.label(v['source'])}]" if imported else ""))


# -- diff -------------------------------------------------------------------------------------------


def register_diff(commands: Any) -> None:
    p = _command(commands, "diff",
                 "Show what changed in a story between two versions (default: the previous one and the current"
                 " one), paragraph by paragraph with changed words marked.",
                 "defwatch diff 3610656 --from 1 --to 3   |   defwatch diff 3610656 --html > diff.html")
    _common(p)
    p.add_argument("id", metavar="ID", help="the story's article id, or its URL")
    p.add_argument("--from", dest="from_version", type=int, metavar="V", help="older version (default: --to minus 1)")
    p.add_argument("--to", dest="to_version", type=int, metavar="V", help="newer version (default: the current one)")
    p.add_argument("--html", action="store_true", help="print a standalone HTML page instead of text")
    p.set_defaults(handler=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    story_id = lookups.story_id(args.id)
    db = _open(args)
    story = _story_or_fail(db, story_id)
    current = story["current_version"] or 0
    to_version = args.to_version if args.to_version is not None else current
    from_version = args.from_version if args.from_version is not None else to_version - 1
    if args.from_version is None and args.to_version is None and current < 2:
        print(f"story {story_id} has only one version; nothing to compare")
        return 0
    if from_version < 1:
        raise UsageError(f"version {to_version} is story {story_id}'s first; there is nothing before it to compare")
    from monitor.diff import story_diff

    old, new = (_diff_version(db, story, v) for v in (from_version, to_version))
    if args.html:
        sys.stdout.write(render.diff_html(story, old, new, story_diff(old["record"], new["record"])))
        return 0
    story, old, new = render.terminal_safe([story, old, new])
    diffs = story_diff(old["record"], new["record"])
    painter = render.Painter(render.use_color(sys.stdout))
    print(f"story {story['id']}: {story['title'] or '(untitled)'}")
    print(f"{story['url']}")
    print(f"version {from_version} (first seen {_stamp(old['first_seen'])}) -> "
          f"version {to_version} (first seen {_stamp(new['first_seen'])})")
    print(f"changed: {', '.join(d.name for d in diffs) or 'nothing a reader would see'}")
    print()
    for line in render.diff_text(diffs, painter):
        print(line)
    return 0


def _diff_version(db: sqlite_utils.Database, story: dict[str, Any], version: int) -> dict[str, Any]:
    row = analysis.story_version(db, story["id"], version)
    if row is None:
        raise UsageError(f"story {story['id']} has no version {version} (versions 1-{story['current_version']})")
    return row


# -- images -----------------------------------------------------------------------------------------


def register_images(commands: Any) -> None:
    p = _command(commands, "images", "Find images by VIRIN metadata: pattern, service branch, shot date, credit.",
                 "defwatch images --virin '231111-F-*' --shot-from 2023-11-01 --shot-to 2023-11-30 --credit Smith")
    _common(p)
    p.add_argument("--virin", metavar="PATTERN", help="VIRIN with * and ? wildcards, any case, e.g. '231111-F-*'")
    p.add_argument("--branch", metavar="NAME",
                   help="service branch by name or VIRIN code, any case: Navy or N, 'Space Force' or X, Army, ...")
    p.add_argument("--shot-from", metavar="DATE", help="shot on or after this date (YYYY-MM-DD, from the VIRIN)")
    p.add_argument("--shot-to", metavar="DATE", help="shot on or before this date (YYYY-MM-DD)")
    p.add_argument("--credit", metavar="NAME", help="credit line contains NAME (any case)")
    p.add_argument("--limit", type=int, default=0, metavar="N", help="at most N images (default: all)")
    p.add_argument("--json", action="store_true", help=f"print JSON items ({', '.join(IMAGE_KEYS)})")
    p.set_defaults(handler=cmd_images)


def cmd_images(args: argparse.Namespace) -> int:
    shot_from = parse_day(args.shot_from, "--shot-from") if args.shot_from else None
    shot_to = parse_day(args.shot_to, "--shot-to") if args.shot_to else None
    if shot_from and shot_to and shot_from > shot_to:
        raise UsageError(f"--shot-from {shot_from} is after --shot-to {shot_to}")
    if args.limit < 0:
        raise UsageError("--limit must be 0 (all) or more")
    branch = lookups.branch_code(args.branch) if args.branch else None
    db = _open(args)
    images = analysis.find_images(db, virin_pattern=args.virin, branch=branch, shot_from=shot_from,
                                  shot_to=shot_to, credit=args.credit, limit=args.limit)
    if args.json:
        print_json([_pick(image, IMAGE_KEYS) for image in images])
        return 0
    if images:
        print(f"{'media id':>10}  {'VIRIN':<24} {'shot':<10}  {'branch':<18} {'credit':<28}  title")
    for image in render.terminal_safe(images):
        print(f"{image['media_id']:>10}  {image['virin'] or '-':<24} {image['virin_shot_date'] or '?':<10}  "
              f"{_branch(image):<18} {_short(image['credit'], 28):<28}  "
              f"{_short(image['title'] or image['caption'], 50)}")
    print(f"{len(images)} image(s)", file=sys.stderr)
    return 0


# -- export -----------------------------------------------------------------------------------------


def register_export(commands: Any) -> None:
    p = _command(commands, "export",
                 "Export stories, images or events as CSV, JSON or JSON Lines, events as an Atom feed, or the "
                 "fetches as WARC or WACZ.",
                 "defwatch export --format atom --since 2026-01-01 --output events.atom\n"
                 "  defwatch export --format warc --since 2026-01-01 --output site.warc.gz")
    _common(p)
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--table", choices=EXPORT_TABLES,
                   help="what to export (default: stories; events for atom, the only table Atom takes)")
    p.add_argument("--since", metavar="ISO",
                   help="only rows new or changed at or after this UTC date/time (events: detected then)")
    p.add_argument("--output", metavar="FILE", help="write here instead of standard output (warc, wacz: required)")
    p.add_argument("--run", type=int, metavar="N", help="warc, wacz: only the fetches of run N")
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    if args.format in ("warc", "wacz"):
        from defwatch.webarchive_commands import export_web_archive

        return export_web_archive(args, _open(args), parse_instant(args.since, "--since") if args.since else None)
    if args.run is not None:
        raise UsageError("--run applies to --format warc or wacz only")
    table = args.table or ("events" if args.format == "atom" else "stories")
    if args.format == "atom" and table != "events":
        raise UsageError("--format atom exports events only; use --table events or another format")
    since = parse_instant(args.since, "--since") if args.since else None
    db = _open(args)
    rows = analysis.export_rows(db, table, since)
    if args.output:  # stdout may be the terminal itself: then the rows are the progress
        rows = _with_progress(rows, Progress(f"export {table}", unit="rows"))
    writers: dict[str, Callable[[TextIO], int]] = {
        "csv": lambda out: _write_csv(out, analysis.export_columns(db, table), rows),
        "json": lambda out: _write_json(out, rows),
        "jsonl": lambda out: _write_jsonl(out, rows),
        "atom": lambda out: _write_atom(out, list(rows), since),
    }
    if not args.output:
        writers[args.format](sys.stdout)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            count = writers[args.format](out)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    print(f"wrote {count} {table} to {args.output}", file=sys.stderr)
    return 0


def _with_progress(rows: Iterator[dict[str, Any]], progress: Progress) -> Iterator[dict[str, Any]]:
    count = 0
    for count, row in enumerate(rows, 1):
        progress.update(count)
        yield row
    progress.finish()


def _cell(value: Any) -> Any:
    """CSV keeps lists and objects as JSON text: lossless, and any CSV reader can still split columns."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


def _write_csv(out: TextIO, columns: list[str], rows: Iterator[dict[str, Any]]) -> int:
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
        count += 1
    return count


def _write_json(out: TextIO, rows: Iterator[dict[str, Any]]) -> int:
    """A JSON array written row by row, so a large archive is never held in memory at once."""
    count = 0
    out.write("[")
    for row in rows:
        out.write(("," if count else "") + "\n  " + json.dumps(row, ensure_ascii=False, default=str))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def _write_jsonl(out: TextIO, rows: Iterator[dict[str, Any]]) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        count += 1
    return count


# -- Atom -------------------------------------------------------------------------------------------

# XML 1.0 cannot carry most control characters at all; a scraped one would make the feed unreadable.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _write_atom(out: TextIO, events: list[dict[str, Any]], since: str | None) -> int:
    out.write(atom_feed(events, since))
    return len(events)


def atom_feed(events: list[dict[str, Any]], since: str | None = None) -> str:
    """An Atom 1.0 feed of events, newest first; entry ids are stable so readers never see one twice."""
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(_atom("feed"))
    newest = max((e["detected_at"] for e in events), default=None)
    _text(feed, "id", f"{TAG_PREFIX}events")
    _text(feed, "title", "defwatch change events" + (f" since {since[:10]}" if since else ""))
    _text(feed, "updated", newest or stamp(datetime.now(UTC)))
    _text(ET.SubElement(feed, _atom("author")), "name", "defwatch")
    _text(feed, "generator", "defwatch")
    for event in sorted(events, key=lambda e: (e["detected_at"], e["id"]), reverse=True):
        _atom_entry(feed, event)
    ET.indent(feed)
    return ET.tostring(feed, encoding="unicode", xml_declaration=True) + "\n"


def _atom_entry(feed: ET.Element, event: dict[str, Any]) -> None:
    entry = ET.SubElement(feed, _atom("entry"))
    _text(entry, "id", f"{TAG_PREFIX}event/{event['id']}")
    _text(entry, "title", event["summary"])
    url = render.safe_url(event.get("url"))
    if url:
        ET.SubElement(entry, _atom("link"), {"rel": "alternate", "href": url})
    _text(entry, "updated", event["detected_at"])
    ET.SubElement(entry, _atom("category"), {"term": event["kind"]})
    _text(entry, "content", _event_text(event), type="text")


def _event_text(event: dict[str, Any]) -> str:
    from monitor.diff import FieldDiff, hunk_from_op

    lines = [event["summary"], f"kind: {event['kind']}",
             f"{event['subject_type']}: {event['subject_id']}" + (f"  {event['url']}" if event.get("url") else "")]
    if event.get("changed_fields"):
        lines.append(f"changed: {', '.join(event['changed_fields'])}")
    diff = event.get("diff") if isinstance(event.get("diff"), dict) else {}
    fields = [FieldDiff(name, [hunk_from_op(op) for op in ops if isinstance(op, dict)])
              for name, ops in diff.items() if isinstance(ops, list)]
    if fields:
        lines += ["", *render.diff_text(fields, render.Painter(color=False))]
    return "\n".join(lines).rstrip() + "\n"


def _atom(tag: str) -> str:
    return f"{{{ATOM_NS}}}{tag}"


def _text(parent: ET.Element, tag: str, value: str | None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, _atom(tag), attrs)
    element.text = _XML_ILLEGAL.sub("", value or "")
    return element


# -- stats ------------------------------------------------------------------------------------------


def register_stats(commands: Any) -> None:
    p = _command(commands, "stats",
                 "Summarise the archive: stories by kind and status, versions, images, events by kind and ISO week,"
                 " and the last 10 runs.",
                 "defwatch stats --db defwatch.db --json")
    _common(p)
    p.add_argument("--json", action="store_true",
                   help="print {stories, versions, images, events, runs, known_pages}")
    p.set_defaults(handler=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    from core.clock import wall_clock
    from monitor.frontier import summary

    db = _open(args)
    stats = analysis.archive_stats(db)
    stats["frontier"] = summary(db, config_from(args).frontier, wall_clock())
    for run in stats["runs"]:
        run["stats"] = _run_summary(run["stats"])
    if args.json:
        print_json(stats)
        return 0
    _print_stats(render.terminal_safe(stats))
    return 0


def _run_summary(stats: Any) -> dict[str, Any]:
    """The run's own numbers; the configuration snapshot stored next to them is not a statistic."""
    if not isinstance(stats, dict):
        return {}
    return {k: v for k, v in stats.items() if not isinstance(v, dict | list) and k != "config"}


def _print_stats(stats: dict[str, Any]) -> None:
    stories, images, events = stats["stories"], stats["images"], stats["events"]
    print(f"stories   {stories['total']:>7}  {_counts(stories['by_kind'])}; {_counts(stories['by_status'])}")
    versions = stats["versions"]
    print(f"versions  {versions['story'] + versions['image']:>7}  story {versions['story']}, image {versions['image']}")
    print(f"images    {images['total']:>7}  {_counts(images['by_source'])}; {_counts(images['by_status'])}")
    print(f"events    {events['total']:>7}  {_counts(events['by_kind'])}")
    for week, count in events["by_week"].items():
        print(f"          {week}  {count}")
    _print_known(stats["known_pages"])
    _print_frontier(stats["frontier"])
    print("last runs:")
    if stats["runs"]:
        print(f"  {'run':>5}  {'mode':<8} {'status':<11} {'started (UTC)':<19}  {'duration':>8}  figures")
    for run in stats["runs"]:
        duration = f"{run['duration_s']:.1f}s" if run["duration_s"] is not None else "-"
        summary = " ".join(f"{k}={v}" for k, v in sorted(run["stats"].items()))
        print(f"  {run['id']:>5}  {run['mode']:<8} {run['status']:<11} {_stamp(run['started_at'])}  "
              f"{duration:>8}  {summary}")


def _print_known(known: dict[str, Any]) -> None:
    """Pages heard of and not archived yet: how many, and the one waiting longest (and why)."""
    gone = f"; confirmed gone {known['confirmed_gone']}" if known["confirmed_gone"] else ""
    print(f"unfetched {known['not_archived']:>7}  known, not archived yet: {_counts(known['by_type'])}{gone}")
    oldest = known["oldest"]
    if oldest:
        tried = (f"{oldest['attempts']} failed fetch(es), last {oldest['last_outcome']}" if oldest["attempts"]
                 else "not fetched yet")
        print(f"          oldest: {oldest['page_type']} {oldest['id']} heard of {_stamp(oldest['first_heard'])}"
              f" on {oldest['heard_from']}; {tried}")


def _print_frontier(front: dict[str, Any]) -> None:
    """The crawl frontier: what is due, the budget spent, how old the oldest verification is."""
    age = front["oldest_verification_age_hours"]
    horizon = front["expected_days_to_verify_all"]
    print(f"frontier  {front['pages']:>7}  due {front['due']} (awaiting removal confirmation "
          f"{front['awaiting_confirmation']}, listing candidates {front['listing_candidates']}, "
          f"not archived {front['unarchived']}); never verified {front['never_verified']}")
    print(f"          budget {front['budget_requests_per_hour']:g}/h: used {front['requests_last_hour']} in the last "
          f"hour ({front['budget_used_share']:.0%}), {front['requests_last_day']} in the last day; oldest "
          f"verification {'-' if age is None else f'{age:g} h ago'}; everything verified again in "
          f"{'-' if horizon is None else f'{horizon:g} days'} at the last day's pace")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "-"


REGISTRY: list[Callable[[Any], None]] = [
    register_search, register_show, register_history, register_diff, register_images, register_export,
    register_stats,
]

