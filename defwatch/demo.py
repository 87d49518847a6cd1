"""``defwatch demo``: the whole mission, offline, in about a minute.

It starts the sample site and a local SMTP sink, crawls the site into a fresh archive (the baseline),
applies a scripted set of changes, crawls again (twice, because a removal needs confirmation on a
second run), and prints what the archive recorded and the digest mail the sink received. Every
number and event printed is read back from the archive or the mail, none is scripted text. Crawls
run as child processes (``python -m defwatch crawl``), exactly as the daemon runs them.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from db.events import list_events
from db.schema import connect

EDITED_STORY = 3610656
ACCENTED_STORY = 4016543  # its text has accents, so the whitespace edit also changes Unicode form

# The demo's own config file (written beside the demo archive); the environment adds site and SMTP.
DEMO_CONFIG = """\
# defwatch demo: a 404 must be seen on two runs before a story counts as removed.
[monitor]
removal_confirm_runs = 2

[alerts]
immediate_removals = false
"""


def run_demo(db_path: str) -> int:
    from defwatch.mailsink import SmtpSink
    from samplesite import SampleSite

    _fresh(db_path)
    # The config lives only as long as the demo: the archive is all it leaves in the directory.
    with tempfile.TemporaryDirectory(prefix="defwatch-demo-") as tmp, SampleSite() as site, SmtpSink() as sink:
        config_path = Path(tmp) / "defwatch-demo.toml"
        config_path.write_text(DEMO_CONFIG, encoding="utf-8")
        env = _child_env(db_path, site.base_url, sink.port, str(config_path))
        _say(f"sample site at {site.base_url}, SMTP sink at 127.0.0.1:{sink.port}, archive {db_path}")
        first = _crawl(env, "full")
        _say(f"run {first['run_id']} (baseline): {first['pages']} pages fetched")
        _print_archive(db_path)
        script = apply_changes(site)
        _say("changes applied on the sample site:")
        for line in script.lines:
            print(f"  - {line}")
        for _ in range(2):
            summary = _crawl(env, "full")
            _say(f"run {summary['run_id']}: {summary['pages']} pages, {summary['new_versions']} new versions, "
                 f"{summary['events']} events, {summary['blocked']} blocked, {summary['mails_sent']} mails sent")
        _print_quiet(db_path, script)
        _print_events(db_path)
        _print_mail(sink.wait_for(1, timeout=10))
    _print_next_steps(db_path, script)
    return 0


@dataclass
class Script:
    """What the demo did to the site: the lines it prints, and the stories whose outcome it explains."""

    lines: list[str]
    edited: int
    removed: int
    blocked: int
    spaced: int


def apply_changes(site: Any) -> Script:
    """The scripted changes; returns what was done, in words, and to which stories."""
    stories = sorted(site.content.all_story_ids())
    others = [s for s in stories if s not in (EDITED_STORY, ACCENTED_STORY)]
    removed, blocked, linked = others[0], others[1], others[2]
    spaced = ACCENTED_STORY
    media_id = _first_image_of(site, others[3:])
    new_text = "The ministers agreed to meet again in 2024, adding a working group on space debris."
    site.edit_paragraph(EDITED_STORY, 1, new_text)
    site.set_caption(media_id, "A new caption written after publication.")
    site.add_related(linked, EDITED_STORY)
    new_id = site.publish()
    site.remove(removed, status=404)
    site.block(blocked)
    site.whitespace_edit(spaced)
    return Script([
        f"story {EDITED_STORY}: paragraph 2 rewritten",
        f"image {media_id}: caption changed",
        f"story {linked}: related story {EDITED_STORY} added",
        f"story {new_id}: published",
        f"story {removed}: removed (404)",
        f"story {blocked}: blocked (403 Access Denied) - must not read as a change or a removal",
        f"story {spaced}: whitespace and Unicode-form edit only - must not read as a change",
    ], EDITED_STORY, removed, blocked, spaced)


def _first_image_of(site: Any, story_ids: list[int]) -> int:
    for story_id in story_ids:
        media = [b["media_id"] for b in site.content.story(story_id)["body"] if b["type"] == "image"]
        if media:
            return media[0]
    raise RuntimeError("the sample site has no story with an image")


def _fresh(db_path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(db_path + suffix).unlink(missing_ok=True)


def _child_env(db_path: str, site: str, smtp_port: int, config_path: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEFWATCH_")}
    env.update({
        "DEFWATCH_DB": db_path, "DEFWATCH_SITE": site, "DEFWATCH_CONFIG": config_path,
        "DEFWATCH_SMTP_HOST": "127.0.0.1", "DEFWATCH_SMTP_PORT": str(smtp_port), "DEFWATCH_SMTP_SECURITY": "none",
        "DEFWATCH_ALERT_FROM": "defwatch@localhost", "DEFWATCH_ALERT_TO": "analyst@example.org",
        "DEFWATCH_OPERATOR_TO": "operator@example.org",
    })
    return env


def _crawl(env: dict[str, str], mode: str) -> dict[str, Any]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "defwatch", "crawl", "--mode", mode, "--json"],
        env=env, capture_output=True, text=True, check=False,
    )
    if proc.returncode not in (0, 3):
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f"crawl failed with exit status {proc.returncode}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


def _print_archive(db_path: str) -> None:
    db = connect(db_path)
    counts = {t: db[t].count for t in ("stories", "story_versions", "images", "image_versions", "related_links",
                                       "fetches")}
    kinds = dict(db.execute("SELECT kind, COUNT(*) FROM stories GROUP BY kind ORDER BY kind").fetchall())
    db.conn.close()
    print("  archived: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    print("  stories by kind: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))


def _print_quiet(db_path: str, script: Script) -> None:
    """What did not alert, and why, as the archive recorded it: the fetches of the blocked, the
    re-spaced and the removed story on each run, their state, and the confirmation rule in force."""
    db = connect(db_path)
    try:
        fetches = {sid: _story_fetches(db, sid) for sid in (script.blocked, script.spaced, script.removed)}
        state = {sid: db.execute("SELECT status, current_version, missing_since, removed_at FROM stories "
                                 "WHERE id = ?", [sid]).fetchone() for sid in fetches}
        events = {sid: db.execute("SELECT run_id, kind FROM events WHERE subject_type = 'story' AND subject_id = ?"
                                  " ORDER BY id", [sid]).fetchall() for sid in fetches}
        confirm_runs = _config_value(db, "monitor", "removal_confirm_runs")
    finally:
        db.conn.close()
    _say("what did not alert, and why (read back from the archive):")
    blocked = [f for f in fetches[script.blocked] if f["outcome"] == "blocked"]
    print(f"  - story {script.blocked}: HTTP {_runs_said(blocked)} ({blocked[0]['error'] if blocked else '-'}): "
          f"a block is neither content nor a removal; it stays {state[script.blocked][0]} at version "
          f"{state[script.blocked][1]}, {_events_said(events[script.blocked])}")
    spaced = fetches[script.spaced]
    hashes = [f["sha256"][:10] for f in spaced if f["sha256"]]
    versions = ", ".join(sorted({str(f["version"]) for f in spaced}))
    print(f"  - story {script.spaced}: its page's bytes changed (sha256 {' -> '.join(dict.fromkeys(hashes))}) but "
          f"not its text once white space and Unicode form are normalized: every fetch showed version {versions}, "
          f"{_events_said(events[script.spaced])}")
    gone = [f for f in fetches[script.removed] if f["outcome"] in ("not_found", "gone")]
    removed_in = [run for run, kind in events[script.removed] if kind == "story_removed"]
    print(f"  - story {script.removed}: HTTP {_runs_said(gone)}; the first made it missing, not removed: a removal "
          f"needs a 404/410 on {confirm_runs} runs (removal_confirm_runs), so a passing error never reads as one. "
          f"It is {state[script.removed][0]}, with story_removed in run "
          f"{', '.join(map(str, removed_in)) or '(none yet)'}")


def _story_fetches(db: Any, story_id: int) -> list[dict[str, Any]]:
    cursor = db.execute("SELECT run_id, status, outcome, error, version, sha256 FROM fetches "
                        "WHERE page_type = 'story' AND subject_id = ? ORDER BY id", [story_id])
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _runs_said(fetches: list[dict[str, Any]]) -> str:
    """``403 on runs 2, 3``: the statuses the fetches answered and the runs they belong to."""
    statuses = "/".join(sorted({str(f["status"]) for f in fetches})) or "-"
    runs = ", ".join(str(f["run_id"]) for f in fetches)
    return f"{statuses} on run{'s' if len(fetches) > 1 else ''} {runs or '-'}"


def _events_said(events: list[tuple[int, str]]) -> str:
    return "no event" if not events else "events: " + ", ".join(f"{kind} (run {run})" for run, kind in events)


def _config_value(db: Any, section: str, key: str) -> Any:
    """A setting as the last run recorded it (its config snapshot), not as this module assumes it."""
    row = db.execute("SELECT stats FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    return ((json.loads(row[0]) if row and row[0] else {}).get("config") or {}).get(section, {}).get(key)


def _print_next_steps(db_path: str, script: Script) -> None:
    """The analyst commands to try on the archive the demo left behind."""
    db = f" --db {db_path}"
    _say(f"the archive stays in {db_path}; next, read it as an analyst would:")
    for command in (f"changes{db}", f"history {script.edited}{db}", f"diff {script.edited}{db}",
                    f"search 'space domain' --all-versions{db}", f"show {script.removed}{db}",
                    f"images --branch Navy{db}", f"stats{db}", f"browse{db}   (pip install -e '.[browse]')"):
        print(f"  defwatch {command}")


def _print_events(db_path: str) -> None:
    db = connect(db_path)
    events = list_events(db)
    db.conn.close()
    _say(f"{len(events)} events recorded:")
    for event in events:
        fields = f" [{', '.join(event['changed_fields'])}]" if event["changed_fields"] else ""
        print(f"  run {event['run_id']}  {event['kind']:<16}{fields} {event['summary']}")


def _print_mail(messages: list[bytes]) -> None:
    if not messages:
        _say("no alert mail arrived")
        return
    for raw in messages:
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        _say(f"mail received by the SMTP sink: {mail['Subject']}")
        print(f"  From: {mail['From']}\n  To: {mail['To']}")
        body = mail.get_body(preferencelist=("plain",))
        text = body.get_content() if body else ""
        print("\n".join(f"  | {line}" for line in text.splitlines()))


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)
