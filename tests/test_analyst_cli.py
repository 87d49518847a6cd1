"""The analysts' commands end to end: a real archive built offline, the CLI run in-process.

The archive has two runs a week apart: run 1 (baseline) archives three stories and a photo page;
run 2 edits one paragraph of story 101 (the new text carries a ``<script>`` tag) and swaps one of
its related links, retitles story 102, edits the photo's caption and gets a 404 for story 103.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import feedparser
import pytest

from core.fetch import FetchInfo
from core.records import Image, Photo, RelatedLink, Story
from crawler.parsers.virin import parse_virin
from db.archive import Archive
from db.events import insert_event
from defwatch.cli import main
from monitor.changes import detect_changes

RUN1_AT, RUN2_AT = "2026-01-05T09:00:00.000000Z", "2026-01-12T09:00:00.000000Z"  # ISO weeks 2 and 3
DETECT1_AT, DETECT2_AT = "2026-01-05T10:00:00.000000Z", "2026-01-12T10:00:00.000000Z"
SITE = "https://www.war.gov"
P1 = "The Space Force launched a new satellite from Vandenberg on Tuesday."
P2_OLD = "Officials said the satellite would reach orbit within hours."
P2_NEW = "Officials said the satellite reached orbit <script>alert(1)</script> within minutes."
P3 = "The mission is the third this year."
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def image(media_id: int, virin: str, credit: str, caption: str) -> Image:
    return Image(media_id=media_id, page_url=f"{SITE}/Multimedia/Photos/igphoto/{media_id}/",
                 src=f"https://media.defense.gov/2023/Nov/11/{media_id}/-1/-1/0/{virin}.JPG",
                 title=f"Photo {media_id}", caption=caption, credit=credit, virin=parse_virin(virin))


IMAGE_9001 = image(9001, "231111-F-NU281-1013M", "Senior Airman Jane Smith", "A rocket lifts off.")
IMAGE_9002 = image(9002, "240105-N-AB123-001", "Petty Officer John Doe", "A ship at sea.")
IMAGE_9003 = image(9003, "231111-A-XY999-2002", "Spc. Ann Smithers", "Soldiers train.")


def story(story_id: int, kind: str, title: str, paragraphs: list[str], **extra) -> Story:
    path = {"news-story": "News/News-Stories/Article/Article", "release": "News/Releases/Release/Article",
            "transcript": "News/Transcripts/Transcript/Article"}[kind]
    return Story(id=story_id, kind=kind, url=f"{SITE}/{path}/{story_id}/slug/", title=title,
                 paragraphs=paragraphs, body_text="\n\n".join(paragraphs), **extra)


def story_101(second: str, related: list[RelatedLink]) -> Story:
    return story(101, "news-story", "Space Force launches satellite", [P1, second, P3],
                 byline="By Jim Garamone, DOD News", published="2024-01-02", tags=["space", "launch"],
                 images=[IMAGE_9001, IMAGE_9003], related=related)


def story_102(title: str, caption: str = "A ship at sea.") -> Story:
    return story(102, "release", title, ["The budget request funds a satellite programme and ships."],
                 published="2024-03-01", images=[replace(IMAGE_9002, caption=caption)])


STORY_103 = story(103, "transcript", "Press briefing on readiness", ["Reporters asked about training schedules."],
                  published="2023-12-15", subtitle="Q&A \x1b]0;owned\x07\x1b[2Jsession")  # terminal escapes
RELATED_202 = RelatedLink(202, f"{SITE}/News/News-Stories/Article/Article/202/x/", "Older launch")
RELATED_203 = RelatedLink(203, f"{SITE}/News/News-Stories/Article/Article/203/y/", "Next launch")


def photo(caption: str) -> Photo:
    return Photo(media_id=9001, url=f"{SITE}/Multimedia/Photos/igphoto/9001/", title="Photo 9001", caption=caption,
                 credit="Senior Airman Jane Smith", virin=parse_virin("231111-F-NU281-1013M"),
                 download_url="https://media.defense.gov/2023/Nov/11/9001/-1/-1/0/231111-F-NU281-1013M.JPG")


def save(archive: Archive, run: int, record: Story | Photo | None, subject: int, at: str, outcome: str = "ok") -> None:
    page_type = "photo" if isinstance(record, Photo) or subject > 9000 else "story"
    fetch = FetchInfo(url=f"{SITE}/page/{subject}/", outcome=outcome, page_type=page_type, subject_id=subject,
                      status={"ok": 200, "not_found": 404}[outcome], fetched_at=at)
    body = f"<html>{subject} {record!r}</html>".encode() if record else None
    archive.save_response(run, fetch, body, record)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("analyst") / "archive.db")
    archive = Archive.open(path)
    run1 = archive.start_run("full", SITE)
    for record in (story_101(P2_OLD, [RELATED_202]), story_102("Budget request released"), STORY_103):
        save(archive, run1, record, record.id, RUN1_AT)
    save(archive, run1, photo("A rocket lifts off."), 9001, RUN1_AT)
    detect_changes(archive.db, run1, baseline=True, now=DETECT1_AT)
    archive.finish_run(run1, "ok", {"pages": 4, "new_versions": 4, "events": 0, "config": {"db": path}})
    run2 = archive.start_run("revisit", SITE)
    save(archive, run2, story_101(P2_NEW, [RELATED_203]), 101, RUN2_AT)
    save(archive, run2, story_102("Budget request <b>revised</b>", "A destroyer at sea."), 102, RUN2_AT)
    save(archive, run2, photo("A Falcon 9 rocket lifts off."), 9001, RUN2_AT)
    save(archive, run2, None, 103, RUN2_AT, outcome="not_found")
    detect_changes(archive.db, run2, now=DETECT2_AT)
    archive.finish_run(run2, "ok", {"pages": 4, "new_versions": 3, "events": 5})
    insert_event(archive.db, {"run_id": run1, "kind": "crawl_blocked", "subject_type": "run", "subject_id": run1,
                              "summary": "Blocked: 1 of 4 requests refused", "audience": "operator",
                              "detected_at": "2026-01-05T11:00:00.000000Z"})
    for run, start, end in ((run1, "2026-01-05T09:00:00.000000Z", "2026-01-05T09:01:30.000000Z"),
                            (run2, "2026-01-12T09:00:00.000000Z", "2026-01-12T09:00:12.500000Z")):
        archive.db.execute("UPDATE runs SET started_at = ?, ended_at = ? WHERE id = ?", [start, end, run])
    archive.close()
    return path


def run(capsys: pytest.CaptureFixture[str], db_path: str, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--db", db_path])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], db_path: str, *argv: str):
    code, out, err = run(capsys, db_path, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


# -- search -----------------------------------------------------------------------------------------


def test_search_ranks_title_matches_first_with_marked_snippets(capsys, db_path):
    hits = run_json(capsys, db_path, "search", "satellite")
    assert [h["id"] for h in hits] == [101, 102]
    assert list(hits[0])[:7] == ["id", "kind", "title", "url", "published", "snippet", "rank"]
    assert hits[0]["kind"] == "news-story" and hits[0]["published"] == "2024-01-02"
    assert hits[0]["rank"] < hits[1]["rank"] < 0  # bm25: lower is better
    assert "**satellite**" in hits[1]["snippet"] and "\x02" not in hits[1]["snippet"]
    stemmed = run_json(capsys, db_path, "search", "launches")  # porter stemming: launched, launches
    assert {h["id"] for h in stemmed} == {101}


def test_search_filters_by_kind_date_and_limit(capsys, db_path):
    assert [h["id"] for h in run_json(capsys, db_path, "search", "satellite", "--kind", "release")] == [102]
    assert [h["id"] for h in run_json(capsys, db_path, "search", "satellite", "--since", "2024-02-01")] == [102]
    assert [h["id"] for h in run_json(capsys, db_path, "search", "satellite", "--limit", "1")] == [101]
    assert [h["id"] for h in run_json(capsys, db_path, "search", "rocket")] == [101]  # captions are indexed too
    either_title = run_json(capsys, db_path, "search", "--fts", "title:budget OR title:briefing")
    assert {h["id"] for h in either_title} == {102, 103}
    assert run_json(capsys, db_path, "search", "--fts", "body_text:budget AND kind") == []


def test_search_text_output_is_plain_when_not_a_terminal(capsys, db_path):
    code, out, _ = run(capsys, db_path, "search", '"third this year"')
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["101", "news-story", "2024-01-02"]
    assert lines[1].strip() == f"{SITE}/News/News-Stories/Article/Article/101/slug/"
    assert lines[2] == "           …The mission is the **third this year**."  # a phrase is marked as one
    assert not ANSI.search(out)


@pytest.mark.parametrize(("query", "reason"), [('"space', "unterminated string"), ("space AND", "syntax error"),
                                               ("byline:garamone", "no such column")])
def test_search_syntax_error_is_a_one_line_usage_error(capsys, db_path, query, reason):
    code, out, err = run(capsys, db_path, "search", "--fts", query)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("defwatch: cannot read search query")
    assert reason in err and "Traceback" not in err


def test_search_rejects_bad_dates_and_limits(capsys, db_path):
    assert run(capsys, db_path, "search", "x", "--since", "last week")[0] == 2
    code, _, err = run(capsys, db_path, "search", "x", "--limit", "0")
    assert (code, err) == (2, "defwatch: --limit must be 1 or more\n")


# -- show -------------------------------------------------------------------------------------------


def test_show_current_story_with_images_and_related_links(capsys, db_path):
    data = run_json(capsys, db_path, "show", "101")
    assert (data["id"], data["status"], data["version"], data["current_version"]) == (101, "live", 2, 2)
    assert data["paragraphs"] == [P1, P2_NEW, P3]
    assert data["tags"] == ["space", "launch"] and data["authors"] == []
    assert [i["media_id"] for i in data["images"]] == [9001, 9003]
    first = data["images"][0]
    assert (first["virin"], first["virin_shot_date"], first["virin_branch_code"], first["virin_branch"],
            first["virin_sequence"], first["virin_suffix"]) == ("231111-F-NU281-1013M", "2023-11-11", "F",
                                                               "Air Force", "1013", "M")
    assert first["caption"] == "A Falcon 9 rocket lifts off."  # the photo page owns the image's fields
    related = {r["related_id"]: r for r in data["related"]}
    assert related[203]["removed"] is False and related[203]["removed_at"] is None
    assert related[202]["removed"] is True and related[202]["removed_at"] == RUN2_AT
    assert [r["related_id"] for r in data["related"]] == [203, 202]  # current links first


def test_show_text_pins_key_lines(capsys, db_path):
    code, out, _ = run(capsys, db_path, "show", "101")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "story 101  news-story  live  version 2 of 2"
    assert lines[1] == "Space Force launches satellite"
    assert "By Jim Garamone, DOD News  |  published 2024-01-02" in lines
    assert "seen 2026-01-05 09:00:00 .. 2026-01-12 09:00:00" in lines
    assert P2_NEW in lines
    assert "  9001  231111-F-NU281-1013M  shot 2023-11-11  F (Air Force)  Senior Airman Jane Smith" in lines
    assert f"  202  Older launch  {RELATED_202.url}  [removed 2026-01-12 09:00:00]" in lines
    assert f"  203  Next launch  {RELATED_203.url}" in lines


def test_show_older_version_is_the_record_as_then_parsed(capsys, db_path):
    data = run_json(capsys, db_path, "show", "101", "--version", "1")
    assert (data["version"], data["current_version"], data["first_seen"]) == (1, 2, RUN1_AT)
    assert data["paragraphs"] == [P1, P2_OLD, P3]
    assert [(r["related_id"], r["title"]) for r in data["related"]] == [(202, "Older launch")]
    assert data["images"][0]["caption"] == "A rocket lifts off." and data["images"][0]["virin_branch"] == "Air Force"


def test_show_unknown_story_or_version_is_exit_2(capsys, db_path):
    assert run(capsys, db_path, "show", "999")[1:] == ("", "defwatch: no story with id 999 in the archive\n")
    assert run(capsys, db_path, "show", "999")[0] == 2
    code, _, err = run(capsys, db_path, "show", "101", "--version", "7")
    assert (code, err) == (2, "defwatch: story 101 has no version 7 (versions 1-2)\n")
    assert run(capsys, db_path, "show")[0] == 2
    code, _, err = run(capsys, db_path, "show", "101", "--image", "9002")
    assert (code, err) == (2, "defwatch: image 9002 is not one of story 101's images\n")


def test_show_image_with_versions(capsys, db_path):
    data = run_json(capsys, db_path, "show", "--image", "9001")
    assert (data["media_id"], data["source"], data["current_version"]) == (9001, "photo_page", 2)
    assert [(v["version"], v["caption"], v["first_seen"]) for v in data["versions"]] == [
        (1, "A rocket lifts off.", RUN1_AT), (2, "A Falcon 9 rocket lifts off.", RUN2_AT)]
    assert [s["id"] for s in data["stories"]] == [101]
    assert data["virin_originator_id"] == "NU281"
    assert run_json(capsys, db_path, "show", "101", "--image", "9001", "--version", "1")["record"]["caption"] == \
        "A rocket lifts off."
    code, out, _ = run(capsys, db_path, "show", "--image", "9001")
    assert "virin:        231111-F-NU281-1013M  shot 2023-11-11  F (Air Force)  originator NU281  seq 1013  suffix M" \
        in out.splitlines()
    assert run(capsys, db_path, "show", "--image", "1")[2] == "defwatch: no image with media id 1 in the archive\n"


def test_show_strips_terminal_control_sequences_from_scraped_text(capsys, db_path):
    assert run_json(capsys, db_path, "show", "103")["subtitle"] == "Q&A \x1b]0;owned\x07\x1b[2Jsession"  # stored as is
    code, out, _ = run(capsys, db_path, "show", "103")
    assert code == 0 and "\x1b" not in out and "\x07" not in out
    assert out.splitlines()[2] == "Q&A ]0;owned[2Jsession"


# -- history ----------------------------------------------------------------------------------------


def test_history_lists_versions_with_changed_fields(capsys, db_path):
    data = run_json(capsys, db_path, "history", "101")
    assert (data["status"], data["current_version"]) == ("live", 2)
    assert [(v["version"], v["first_seen"], v["first_run_id"], v["changed"]) for v in data["versions"]] == [
        (1, RUN1_AT, 1, []), (2, RUN2_AT, 2, ["body"])]
    assert all(len(v["content_hash"]) == 12 for v in data["versions"])
    assert run_json(capsys, db_path, "history", "102")["versions"][1]["changed"] == ["title", "captions"]
    missing = run_json(capsys, db_path, "history", "103")
    assert (missing["status"], missing["missing_since"], len(missing["versions"])) == ("missing", RUN2_AT, 1)


def test_history_text(capsys, db_path):
    code, out, _ = run(capsys, db_path, "history", "103")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "story 103: Press briefing on readiness"
    assert lines[1].startswith("status: missing since 2026-01-12 09:00:00   current version: 1")
    assert lines[3].split()[-2:] == ["(first", "version)"]
    hash2 = run_json(capsys, db_path, "history", "101")["versions"][1]["content_hash"]
    code, out, _ = run(capsys, db_path, "history", "101")
    assert out.splitlines()[4].endswith(f"  {RUN2_AT[:10]} 09:00:00     2  {hash2}  body")
    assert run(capsys, db_path, "history", "404")[0] == 2


# -- diff -------------------------------------------------------------------------------------------


def test_diff_default_is_previous_to_current_with_word_marks(capsys, db_path):
    code, out, _ = run(capsys, db_path, "diff", "101")
    assert code == 0 and not ANSI.search(out)
    lines = out.splitlines()
    assert lines[2] == "version 1 (first seen 2026-01-05 09:00:00) -> version 2 (first seen 2026-01-12 09:00:00)"
    assert lines[3] == "changed: body"
    body = lines.index("body:")
    assert lines[body + 1] == "  @@ paragraph 2 @@"
    assert lines[body + 2] == ("  ~ Officials said the satellite [-would reach-]{+reached+} orbit "
                               "{+<script>alert(1)</script> +}within [-hours-]{+minutes+}.")
    assert P1 not in out  # unchanged paragraphs are not repeated


def test_diff_other_fields_read_old_to_new(capsys, db_path):
    code, out, _ = run(capsys, db_path, "diff", "102", "--from", "1", "--to", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[3] == "changed: title, captions"
    assert lines[lines.index("title:") + 1] == "  Budget request released → Budget request <b>revised</b>"
    # captions are long text: word marks, as in the mail, rather than the whole caption twice
    captions = lines[lines.index("captions:") + 1]
    assert captions == "  ~ Photo 9002 | A [-ship-]{+destroyer+} at sea. | Petty Officer John Doe"
    assert "body:" not in lines


def test_diff_colour_only_on_a_terminal(capsys, db_path, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, _ = run(capsys, db_path, "diff", "101")
    assert code == 0
    assert "\x1b[9;31mwould reach\x1b[0m\x1b[4;32mreached\x1b[0m" in out
    assert "[-" not in out
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ANSI.search(run(capsys, db_path, "diff", "101")[1])


def test_diff_html_is_a_standalone_escaped_page(capsys, db_path):
    code, out, _ = run(capsys, db_path, "diff", "101", "--html")
    assert code == 0 and out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "<script" not in out
    assert "<del>would reach</del><ins>reached</ins>" in out
    assert 'class="field-body"' in out and 'class="field-title"' not in out
    title_page = run(capsys, db_path, "diff", "102", "--html")[1]
    assert "<ins>Budget request &lt;b&gt;revised&lt;/b&gt;</ins>" in title_page and "<b>" not in title_page


def test_diff_version_errors_and_single_version(capsys, db_path):
    code, _, err = run(capsys, db_path, "diff", "101", "--from", "5")
    assert (code, err) == (2, "defwatch: story 101 has no version 5 (versions 1-2)\n")
    code, _, err = run(capsys, db_path, "diff", "101", "--to", "1")
    assert (code, err) == (2, "defwatch: version 1 is story 101's first; there is nothing before it to compare\n")
    code, out, _ = run(capsys, db_path, "diff", "103")
    assert (code, out) == (0, "story 103 has only one version; nothing to compare\n")
    code, out, _ = run(capsys, db_path, "diff", "101", "--from", "2", "--to", "2")
    assert code == 0 and "changed: nothing a reader would see" in out


# -- images -----------------------------------------------------------------------------------------


def test_images_filter_by_virin_branch_dates_and_credit(capsys, db_path):
    def ids(*argv: str) -> list[int]:
        return [i["media_id"] for i in run_json(capsys, db_path, "images", *argv)]

    assert ids() == [9002, 9001, 9003]  # newest shot first
    assert ids("--virin", "231111-F-*") == [9001]
    assert ids("--virin", "231111-*") == [9001, 9003]
    assert ids("--virin", "231111-?-*-2002") == [9003]
    assert ids("--virin", "231111_F%") == []  # LIKE's own wildcards are literal
    assert ids("--branch", "n") == [9002]
    assert ids("--shot-from", "2023-11-11", "--shot-to", "2023-11-30") == [9001, 9003]
    assert ids("--shot-from", "2024-01-01") == [9002]
    assert ids("--credit", "smith") == [9001, 9003]
    assert ids("--credit", "jane smith", "--branch", "F") == [9001]
    item = run_json(capsys, db_path, "images", "--virin", "240105-N-AB123-001")[0]
    assert (item["virin_shot_date"], item["virin_branch"], item["story_ids"]) == ("2024-01-05", "Navy", [102])


def test_images_bad_input(capsys, db_path):
    code, _, err = run(capsys, db_path, "images", "--shot-from", "2024-02-01", "--shot-to", "2024-01-01")
    assert (code, err) == (2, "defwatch: --shot-from 2024-02-01 is after --shot-to 2024-01-01\n")
    assert run(capsys, db_path, "images", "--shot-to", "Nov 2023")[0] == 2


# -- export -----------------------------------------------------------------------------------------


def test_export_csv_each_table(capsys, db_path):
    for table, key, expected in (("stories", "id", ["101", "102", "103"]),
                                 ("images", "media_id", ["9001", "9002", "9003"])):
        code, out, _ = run(capsys, db_path, "export", "--format", "csv", "--table", table)
        rows = list(csv.DictReader(io.StringIO(out)))
        assert code == 0 and [r[key] for r in rows] == expected
    stories = list(csv.DictReader(io.StringIO(run(capsys, db_path, "export", "--format", "csv")[1])))
    assert json.loads(stories[0]["tags"]) == ["space", "launch"] and stories[2]["status"] == "missing"
    events = list(csv.DictReader(io.StringIO(run(capsys, db_path, "export", "--format", "csv", "--table",
                                                 "events")[1])))
    assert sorted(e["kind"] for e in events) == ["crawl_blocked", "image_updated", "related_added",
                                                 "related_removed", "story_updated", "story_updated"]


def test_export_json_and_jsonl_decode_list_columns(capsys, db_path):
    stories = json.loads(run(capsys, db_path, "export", "--format", "json")[1])
    assert [s["id"] for s in stories] == [101, 102, 103] and stories[0]["tags"] == ["space", "launch"]
    code, out, _ = run(capsys, db_path, "export", "--format", "jsonl", "--table", "events")
    events = [json.loads(line) for line in out.splitlines()]
    updated = next(e for e in events if e["kind"] == "story_updated" and e["subject_id"] == 101)
    assert updated["changed_fields"] == ["body"]
    assert updated["diff"]["body"] == [{"op": "replace", "old": [P2_OLD], "new": [P2_NEW]}]
    images = json.loads(run(capsys, db_path, "export", "--format", "json", "--table", "images")[1])
    assert images[0]["virin_branch_code"] == "F"
    assert json.loads(run(capsys, db_path, "export", "--format", "json", "--since", "2030-01-01")[1]) == []


def test_export_since_selects_new_and_changed_rows(capsys, db_path):
    events = json.loads(run(capsys, db_path, "export", "--format", "json", "--table", "events",
                            "--since", "2026-01-10")[1])
    assert "crawl_blocked" not in {e["kind"] for e in events} and len(events) == 5
    stories = json.loads(run(capsys, db_path, "export", "--format", "json", "--since", "2026-01-10T00:00Z")[1])
    assert [s["id"] for s in stories] == [101, 102]  # 103 did not change, it is only missing
    assert run(capsys, db_path, "export", "--format", "json", "--since", "yesterday")[0] == 2


def test_export_atom_is_a_valid_feed_of_events(capsys, db_path):
    code, out, _ = run(capsys, db_path, "export", "--format", "atom")
    assert code == 0
    feed = feedparser.parse(out)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10" and feed.feed.updated == DETECT2_AT
    assert len(feed.entries) == 6
    events = {e["id"]: e for e in json.loads(run(capsys, db_path, "export", "--format", "json", "--table",
                                                 "events")[1])}
    for entry in feed.entries:
        event = events[int(entry.id.removeprefix("tag:defwatch,2026:event/"))]
        assert entry.title == event["summary"] and entry.updated == event["detected_at"]
        if event["url"]:  # run events have none (feedparser then shows the id as the link)
            assert entry.link == event["url"]
    update = next(e for e in feed.entries if e.tags[0].term == "story_updated" and "Space Force" in e.title)
    assert update.title == "Updated (body): Space Force launches satellite"
    # a related_added entry names the story whose list changed, and links to that story
    related = next(e for e in feed.entries if e.tags[0].term == "related_added")
    assert related.title == "Related stories added to Space Force launches satellite: Next launch"
    assert related.link == update.link
    assert "{+reached+}" in update.content[0].value and update.tags[0].term == "story_updated"
    assert [e.updated for e in feed.entries] == [DETECT2_AT] * 5 + ["2026-01-05T11:00:00.000000Z"]  # newest first


def test_export_atom_only_for_events_and_writes_files(capsys, db_path, tmp_path: Path):
    code, _, err = run(capsys, db_path, "export", "--format", "atom", "--table", "stories")
    assert (code, err) == (2, "defwatch: --format atom exports events only; use --table events or another format\n")
    target = tmp_path / "events.atom"
    code, out, err = run(capsys, db_path, "export", "--format", "atom", "--since", "2026-01-10",
                         "--output", str(target))
    assert (code, out, err) == (0, "", f"wrote 5 events to {target}\n")
    assert len(feedparser.parse(target.read_text(encoding="utf-8")).entries) == 5
    empty = feedparser.parse(run(capsys, db_path, "export", "--format", "atom", "--since", "2030-01-01")[1])
    assert empty.bozo == 0 and empty.entries == []


# -- stats ------------------------------------------------------------------------------------------


def test_stats_counts(capsys, db_path):
    stats = run_json(capsys, db_path, "stats")
    assert stats["stories"] == {"total": 3, "by_kind": {"news-story": 1, "release": 1, "transcript": 1},
                                "by_status": {"live": 2, "missing": 1}}
    assert stats["versions"] == {"story": 5, "image": 2}
    assert stats["images"]["total"] == 3 and stats["images"]["by_source"] == {"inline": 2, "photo_page": 1}
    assert stats["events"]["total"] == 6
    assert stats["events"]["by_kind"]["story_updated"] == 2
    assert stats["events"]["by_week"] == {"2026-W02": 1, "2026-W03": 5}
    assert [(r["id"], r["mode"], r["status"], r["duration_s"]) for r in stats["runs"]] == [
        (2, "revisit", "ok", 12.5), (1, "full", "ok", 90.0)]
    assert stats["runs"][1]["stats"] == {"pages": 4, "new_versions": 4, "events": 0}  # no config snapshot
    code, out, _ = run(capsys, db_path, "stats")
    assert code == 0
    assert "stories         3  news-story 1, release 1, transcript 1; live 2, missing 1" in out.splitlines()
    assert "          2026-W03  5" in out.splitlines()
    assert "versions        7  story 5, image 2" in out.splitlines()


def test_missing_archive_is_a_usage_error(capsys, tmp_path):
    code, _, err = run(capsys, str(tmp_path / "none.db"), "stats")
    assert code == 2 and err.startswith("defwatch: no archive at")
    assert not (tmp_path / "none.db").exists()


# -- help -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["search", "show", "history", "diff", "images", "export", "stats"])
def test_every_command_help_has_an_example(capsys, command):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    example = out.split("example:\n", 1)[1].splitlines()[0].strip()
    assert example.startswith(f"defwatch {command}")
    assert "--db PATH" in out
