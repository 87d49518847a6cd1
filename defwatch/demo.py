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
import time
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
    config_path = Path(db_path).with_suffix(".toml")
    config_path.write_text(DEMO_CONFIG, encoding="utf-8")
    with SampleSite() as site, SmtpSink() as sink:
        env = _child_env(db_path, site.base_url, sink.port, str(config_path))
        _say(f"sample site at {site.base_url}, SMTP sink at 127.0.0.1:{sink.port}, archive {db_path}")
        first = _crawl(env, "full")
        _say(f"run {first['run_id']} (baseline): {first['pages']} pages fetched")
        _print_archive(db_path)
        script = apply_changes(site)
        _say("changes applied on the sample site:")
        for line in script:
            print(f"  - {line}")
        for _ in range(2):
            summary = _crawl(env, "full")
            _say(f"run {summary['run_id']}: {summary['pages']} pages, {summary['new_versions']} new versions, "
                 f"{summary['events']} events, {summary['blocked']} blocked, {summary['mails_sent']} mails sent")
        _print_events(db_path)
        _print_mail(sink.wait_for(1, timeout=10))
    return 0


def apply_changes(site: Any) -> list[str]:
    """The scripted changes; returns what was done, in words."""
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
    return [
        f"story {EDITED_STORY}: paragraph 2 rewritten",
        f"image {media_id}: caption changed",
        f"story {linked}: related story {EDITED_STORY} added",
        f"story {new_id}: published",
        f"story {removed}: removed (404)",
        f"story {blocked}: blocked (403 Access Denied) - must not read as a change or a removal",
        f"story {spaced}: whitespace and Unicode-form edit only - must not read as a change",
    ]


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
