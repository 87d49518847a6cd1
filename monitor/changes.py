"""Turn one crawl run into change events.

The crawler only records what it saw (fetches and versions). Here a run's fetches are compared with
the state before the run:

- a page whose version differs from the version of its last good fetch is ``*_updated`` (or
  ``*_new`` when it had none), with the changed fields and a paragraph-level diff;
- a 404/410 makes a live page ``missing``; it becomes ``removed`` (``*_removed``) only when the
  absence is confirmed on another run (or has lasted a configured delay); a page answering again
  is ``live`` once more, and ``*_restored`` if its removal had been announced;
- 403 blocks, 5xx, timeouts and connection errors change nothing at all, and pages a run did not
  visit are untouched, so a run cut short cannot make anything look removed;
- run health becomes operator events (``monitor.health``) when it changes: ``crawl_blocked``,
  ``crawl_failed`` and ``parser_degraded`` (which also holds the run's subscriber events until the
  parser recovers) when a problem starts, ``crawl_unblocked``, ``crawl_recovered`` and
  ``parser_recovered`` when it ends.

A page flapping between two versions (A, B, A, B...) is reported for its first change and its
first revert only. Detection is idempotent: events are unique per run, kind and subject, so running it twice for a run
changes nothing. The first run into an empty archive is a baseline and announces nothing, and so is
every run after it until one has finished its crawl (a first crawl killed half-way must not make the
next run announce the other half of the site). A run that died before its detection committed
(``runs.detected_at`` still NULL) is detected by the next one.

Time stamps never decide on their own: removals are counted in runs by fetch order and their delay
measured between observations, and ``detected_at`` never goes backwards, so a wall clock that jumps
(an NTP step, a VM restored from a snapshot) neither invents, loses nor hides an event.

Every decision is made here, top to bottom; the archive only answers. The questions come from
``db.runs`` (what a run fetched and how it ended), ``db.page_history`` (a page's state, versions
and absences before the run) and ``db.events`` (the events table), each named as what it asks.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlite_utils

from core.clock import parse_stamp, stamp, utcnow
from core.config import MonitorConfig
from core.constants import SUBSCRIBER_EVENT_KINDS
from core.fetch import GOOD_OUTCOMES, REMOVAL_OUTCOMES
from db.events import hold_run_events, insert_event, latest_detection_time, release_held_events
from db.page_history import (
    first_absence_in_run,
    page_state,
    runs_absent_since_last_answer,
    set_page_status,
    stories_showing_image,
    version_before_run,
    version_record,
    versions_shown_before_run,
)
from db.queries import is_baseline
from db.runs import (
    SubjectFetch,
    capture_time_in_run,
    crawl_finished_before,
    fetch_counts,
    images_first_archived_in_run,
    mark_run_detected,
    page_fetches_in_run,
    related_links_changed_in_run,
    runs_awaiting_detection,
    was_import_run,
)
from db.versions import changed_image_fields, changed_story_fields
from monitor.diff import field_diffs
from monitor.health import CLOSING_KINDS, OPENING_KINDS, health_events, healthy

logger = logging.getLogger(__name__)

SUBSCRIBER_KINDS = SUBSCRIBER_EVENT_KINDS
OPERATOR_KINDS = (*OPENING_KINDS, *CLOSING_KINDS)
TEXT_DIFF_FIELDS = {"body": "paragraphs"}
NOUN = {"story": "story", "photo": "image"}
REMOVED_PARAGRAPHS = 3  # of the last archived text, in a removal's mail


@dataclass
class Detection:
    run_id: int
    event_ids: list[int] = field(default_factory=list)
    baseline: bool = False
    blocked: bool = False
    degraded: bool = False
    failed: bool = False


def detect_changes(
    db: sqlite_utils.Database,
    run_id: int,
    policy: MonitorConfig | None = None,
    *,
    finish_reason: str = "finished",
    baseline: bool = False,
    now: str | None = None,
) -> Detection:
    """Write the run's events in one transaction and return what was found.

    Earlier runs that died before their own detection are caught up first (``detect_missed_runs``).
    """
    policy = policy or MonitorConfig()
    detect_missed_runs(db, policy, before=run_id)
    return _detect(db, run_id, policy, finish_reason, baseline, now)


def detect_missed_runs(
    db: sqlite_utils.Database, policy: MonitorConfig | None = None, *, before: int
) -> list[Detection]:
    """Detect the changes of runs before ``before`` that stored pages but never got to detection.

    A crawl killed (kill -9, OOM, power loss) or failed (disk full) after its archive writer
    committed pages, and before its own detection committed, leaves fetches nobody compared: the
    next run would compare its pages with the dead run's and find nothing, so the change would never
    be reported. Each such run is detected now, in order, as the run it was (its events carry its
    run id); they are mailed with the next run's pending alerts. Runs still ``running`` are left
    alone: their process may be alive. ``monitor.run`` calls this before the next crawl, so the
    state it compares against is the one the dead run left.
    """
    policy = policy or MonitorConfig()
    found = []
    for run_id in runs_awaiting_detection(db, before):
        logger.warning("run %s ended before its changes were detected: detecting them now", run_id)
        found.append(_detect(db, run_id, policy, "shutdown", is_baseline(db, run_id), None))
    return found


def event_time(db: sqlite_utils.Database) -> str:
    """Now, for ``events.detected_at``, never earlier than an event already recorded.

    ``defwatch changes --since`` and every poller of the events table rely on detection times only
    moving forward. After the wall clock went back (an NTP step, a VM restored from a snapshot), new
    events get the newest recorded time plus a microsecond until the clock has caught up.
    """
    now = utcnow()
    last = latest_detection_time(db)
    if last is None or last < now:
        return now
    return stamp(parse_stamp(last) + timedelta(microseconds=1))


def _detect(db: sqlite_utils.Database, run_id: int, policy: MonitorConfig, finish_reason: str, baseline: bool,
            now: str | None) -> Detection:
    now = now or event_time(db)
    # A first crawl cut short (killed, stopped, failed) recorded part of the site: the runs after it
    # record the rest, they do not announce it as new, until one has finished a crawl.
    baseline = baseline or not crawl_finished_before(db, run_id)
    detection = Detection(run_id, baseline=baseline)
    imported = was_import_run(db, run_id)
    with db.atomic():
        # an import's captures span months: read in capture order, the newest is the page's state
        fetches = page_fetches_in_run(db, run_id, capture_order=imported)
        for fetch in decisive_fetches(fetches, latest_wins=imported):
            for event in _page_events(db, fetch, run_id, policy, now, baseline):
                _add(db, detection, event, run_id, now, imported)
        if not baseline:
            for event in _image_new_events(db, run_id) + _related_events(db, run_id):
                _add(db, detection, event, run_id, now, imported)
        # an import's old captures say nothing of today's site: no operator event starts or ends on them
        for event in [] if imported else health_events(db, run_id, policy, finish_reason, detection):
            _add(db, detection, event, run_id, now, imported)
        if detection.degraded:
            hold_run_events(db, run_id)
        elif not imported and healthy(fetch_counts(db, run_id), policy):  # old captures: not today
            release_held_events(db)
        mark_run_detected(db, run_id, now)  # in the same transaction: detected exactly once
    return detection


def _add(db: sqlite_utils.Database, detection: Detection, event: dict[str, Any], run_id: int, now: str,
         imported: bool = False) -> None:
    """Record one event. An import run's events are history: marked ``imported`` (never mailed) and
    dated by the capture that showed them, so they never sort among today's news."""
    if imported:
        seen = capture_time_in_run(db, run_id, event["subject_type"], event.get("subject_id"))
        event = {**event, "imported": 1, "detected_at": seen or now}
    event_id = insert_event(db, {"run_id": run_id, "detected_at": now, **event})
    if event_id is not None:
        detection.event_ids.append(event_id)


# -- pages --------------------------------------------------------------------------------------


def decisive_fetches(fetches: list[SubjectFetch], *, latest_wins: bool = False) -> list[SubjectFetch]:
    """Each page's decisive fetch among a run's, in the order the pages were first fetched.

    In a crawl a good answer beats a failed retry, and a 404/410 beats a block or an error (which
    say nothing about the page); among equals the later fetch wins. In an import (``latest_wins``,
    fetches in capture order) the newest capture is the page's state, whatever it answered.
    """
    decisive: dict[tuple[str, int], SubjectFetch] = {}
    for fetch in fetches:
        key = (fetch.page_type, fetch.subject_id)
        earlier = decisive.get(key)
        if earlier is None or latest_wins or _rank(fetch) >= _rank(earlier):
            decisive[key] = fetch
    return list(decisive.values())


def _rank(fetch: SubjectFetch) -> int:
    if fetch.outcome in GOOD_OUTCOMES and fetch.version is not None:
        return 3
    if fetch.outcome in REMOVAL_OUTCOMES:
        return 2
    return 1


def _page_events(
    db: sqlite_utils.Database, fetch: SubjectFetch, run_id: int, policy: MonitorConfig, now: str, baseline: bool
) -> list[dict[str, Any]]:
    """A page's events from its decisive fetch: an answer with a version is a sighting, a 404/410 an
    absence; a block, an error or an unparsed page says nothing about the page."""
    state = page_state(db, fetch.page_type, fetch.subject_id)
    if state is None:
        return []  # never archived: a 404 for an unknown page, or a page that did not parse
    if fetch.outcome in GOOD_OUTCOMES and fetch.version is not None:
        return _seen_events(db, fetch, state, run_id, now, baseline)
    if fetch.outcome in REMOVAL_OUTCOMES:
        return _absence_events(db, fetch, state, policy, now, run_id)
    return []  # blocked, error, parse error: nothing is known about the page


def _seen_events(
    db: sqlite_utils.Database, fetch: SubjectFetch, state: dict[str, Any], run_id: int, now: str, baseline: bool
) -> list[dict[str, Any]]:
    """The page answered with a version: back online if its removal had been announced; new if no
    earlier run read it (stories only, and never in a baseline); updated if its version differs from
    the last one seen before this run, unless it is flapping or no reader would call it a change."""
    events: list[dict[str, Any]] = []
    noun = NOUN[fetch.page_type]
    if state["status"] == "removed":
        events.append(_subject_event(f"{noun}_restored", fetch, state, f"Back online: {_title(state)}"))
    if state["status"] != "live":
        set_page_status(db, fetch.page_type, fetch.subject_id, "live", now)
    previous = version_before_run(db, fetch.page_type, fetch.subject_id, run_id)
    if previous is None:
        if not baseline and fetch.page_type == "story":
            kind = state.get("kind") or "story"
            event = _subject_event("story_new", fetch, state, f"New {kind}: {_title(state)}", to=fetch.version)
            record = version_record(db, "story", fetch.subject_id, fetch.version or 0)
            events.append({**event, "details": story_details(record, state, paragraphs=1)})
    elif previous != fetch.version and not _flapping(db, fetch, run_id):
        update = _update_event(db, fetch, state, previous)
        if update:
            events.append(update)
    return events


def _flapping(db: sqlite_utils.Database, fetch: SubjectFetch, run_id: int) -> bool:
    """A page alternating between two versions (A, B, A, now B): out-of-sync caches, not edits.

    The first change and its first revert are reported (a real edit can be undone); from the next
    alternation on, the page is flapping and further flips are not news.
    """
    history = versions_shown_before_run(db, fetch.page_type, fetch.subject_id, run_id)
    flapping = len(history) == 3 and fetch.version == history[1] and history[2] == history[0]
    if flapping:
        logger.info("%s %s flaps between versions %s and %s: not reported", fetch.page_type, fetch.subject_id,
                    history[1], history[2])
    return flapping


def _update_event(
    db: sqlite_utils.Database, fetch: SubjectFetch, state: dict[str, Any], previous: int
) -> dict[str, Any] | None:
    old = version_record(db, fetch.page_type, fetch.subject_id, previous)
    new = version_record(db, fetch.page_type, fetch.subject_id, fetch.version or 0)
    if extraction_switched(old, new):
        logger.info("story %s: extraction changed from %s to %s; like a parser upgrade, not an update",
                    fetch.subject_id, extraction_of(old), extraction_of(new))
        return None
    details: dict[str, Any] = {}
    if fetch.page_type == "story":
        fields, kind = changed_story_fields(old, new), "story_updated"
    else:
        fields, kind = changed_image_fields(old, new), "image_updated"
        details = {"story_ids": stories_showing_image(db, fetch.subject_id)}  # the mail shows it under its story
    if not fields:
        return None  # the hash moved on something no reader would call a change
    summary = f"Updated ({', '.join(fields)}): {_title(state)}"
    event = _subject_event(kind, fetch, state, summary, to=fetch.version)
    return {**event, "from_version": previous, "changed_fields": fields, "diff": field_diffs(old, new, fields),
            "details": details or None}


def extraction_of(record: dict[str, Any]) -> str:
    """How a stored story record's body was read ("template" for records made before the field)."""
    return record.get("extraction") or "template"


def extraction_switched(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Two versions read by different methods (the page's template, the generic extractor): their
    differences are the methods', so, like a parser upgrade, the switch is never an update by itself."""
    return extraction_of(old) != extraction_of(new)


def _absence_events(
    db: sqlite_utils.Database, fetch: SubjectFetch, state: dict[str, Any], policy: MonitorConfig, now: str,
    run_id: int,
) -> list[dict[str, Any]]:
    """The page answered 404/410: a live page becomes missing; a missing one is removed, and announced,
    once the absence is confirmed (``_removal_confirmed``); a removed one stays removed, quietly."""
    if state["status"] == "removed":
        return []
    if state["status"] == "live":  # missing since the 404 itself, so this run counts towards confirmation
        set_page_status(db, fetch.page_type, fetch.subject_id, "missing", fetch.fetched_at)
        state = {**state, "status": "missing", "missing_since": fetch.fetched_at}
    if not _removal_confirmed(db, fetch, policy, run_id):
        return []
    set_page_status(db, fetch.page_type, fetch.subject_id, "removed", now)
    status = "410 Gone" if fetch.outcome == "gone" else "404 Not Found"
    noun = NOUN[fetch.page_type]
    event = _subject_event(f"{noun}_removed", fetch, state, f"Removed ({status}): {_title(state)}")
    return [{**event, "details": _last_archived(db, fetch, state, status)}]


def _removal_confirmed(db: sqlite_utils.Database, fetch: SubjectFetch, policy: MonitorConfig, run_id: int) -> bool:
    """``removal_confirm_runs`` runs saw the absence, or two or more did, ``removal_delay_hours`` apart.

    Runs are counted by fetch order and the delay is measured between the first 404 and this one,
    both as fetched, never against the clock at detection time: a wall clock jumping forward (or a
    detection caught up a day late) cannot confirm a single 404, and one set back cannot stall the
    count until it catches up with the first 404's time stamp.
    """
    runs = runs_absent_since_last_answer(db, fetch.page_type, fetch.subject_id, run_id)
    if len(runs) >= max(1, policy.removal_confirm_runs):
        return True
    if policy.removal_delay_hours <= 0 or len(runs) < 2:
        return False
    first = first_absence_in_run(db, fetch.page_type, fetch.subject_id, runs[0]) or fetch.fetched_at
    return parse_stamp(fetch.fetched_at) - parse_stamp(first) >= timedelta(hours=policy.removal_delay_hours)


def _last_archived(db: sqlite_utils.Database, fetch: SubjectFetch, state: dict[str, Any], status: str
                   ) -> dict[str, Any]:
    """What a reader of a removal needs: the text as last archived, when it was last seen, where to look."""
    record = version_record(db, fetch.page_type, fetch.subject_id, state.get("current_version") or 0)
    if fetch.page_type == "story":
        details = story_details(record, state, paragraphs=REMOVED_PARAGRAPHS)
    else:
        details = {"caption": record.get("caption") or state.get("caption"), "credit": state.get("credit"),
                   "story_ids": stories_showing_image(db, fetch.subject_id)}
    return details | {"last_seen": state.get("last_seen"), "version": state.get("current_version"),
                      "http_status": status}


def story_details(record: dict[str, Any], state: dict[str, Any], *, paragraphs: int) -> dict[str, Any]:
    """A story's opening as a reader meets it: first paragraphs, byline, date and section (its kind)."""
    return {
        "paragraphs": [p for p in record.get("paragraphs") or [] if p and p.strip()][:paragraphs],
        "byline": _byline(record),
        "published": record.get("published") or state.get("published"),
        "section": record.get("kind") or state.get("kind"),
        "subtitle": record.get("subtitle") or state.get("subtitle"),
    }


def _byline(record: dict[str, Any]) -> str | None:
    """``Katie Lange, DOD News``: the byline and dateline as one phrase, without the page's "By"."""
    parts = [re.sub(r"\s+,", ",", " ".join(str(record.get(key) or "").split())).strip(" ,;")
             for key in ("byline", "dateline")]
    parts[0] = re.sub(r"^By\s+", "", parts[0], flags=re.I)
    return ", ".join(p for p in parts if p) or None


def _subject_event(
    kind: str, fetch: SubjectFetch, state: dict[str, Any], summary: str, to: int | None = None
) -> dict[str, Any]:
    return {
        "kind": kind,
        "subject_type": NOUN[fetch.page_type],
        "subject_id": fetch.subject_id,
        "url": state.get("url") or state.get("page_url") or fetch.url,
        "title": state.get("title"),
        "to_version": to,
        "summary": summary,
    }


# -- images and related stories -----------------------------------------------------------------


def _image_new_events(db: sqlite_utils.Database, run_id: int) -> list[dict[str, Any]]:
    """Every image first archived in the run, those arriving with a new story too: the events are the
    complete log (``changes --kind image_new``); the mail groups them under their story."""
    return [
        {
            "kind": "image_new", "subject_type": "image", "subject_id": image["media_id"], "url": image["page_url"],
            "title": image["title"], "to_version": None,
            "summary": f"New image {image['virin'] or image['media_id']}: {_image_label(image)}".strip(),
            "details": {"story_ids": image["story_ids"], "caption": image["caption"], "credit": image["credit"],
                        "virin": image["virin"]},
        }
        for image in images_first_archived_in_run(db, run_id)
    ]


def _image_label(image: dict[str, Any]) -> str:
    return image["title"] or image["caption"] or ""


def _related_events(db: sqlite_utils.Database, run_id: int) -> list[dict[str, Any]]:
    """One event per story and direction: it names the story whose list changed and every link that came
    or went (the event's title and URL are that story's, so its summary must name it too)."""
    grouped: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for link in related_links_changed_in_run(db, run_id):
        grouped.setdefault((link["story_id"], link["change"]), []).append(link)
    events = []
    for (story_id, change), links in grouped.items():
        titles = "; ".join(link["title"] or str(link["related_id"]) for link in links)
        lines = [f"{link['title'] or link['related_id']} <{link['url']}>" for link in links]
        added = change == "added"
        story = links[0]["story_title"] or f"story {story_id}"
        events.append({
            "kind": f"related_{change}", "subject_type": "story", "subject_id": story_id,
            "url": links[0]["story_url"], "title": links[0]["story_title"],
            "changed_fields": ["related"],
            "summary": f"Related stories {change} {'to' if added else 'from'} {story}: {titles}",
            "diff": {"related": [{"op": "insert" if added else "delete",
                                  "old": [] if added else lines, "new": lines if added else []}]},
            "details": {"links": [{"id": link["related_id"], "title": link["title"], "url": link["url"]}
                                  for link in links]},
        })
    return events




def _title(state: dict[str, Any]) -> str:
    return state.get("title") or state.get("caption") or f"#{state.get('id') or state.get('media_id')}"

