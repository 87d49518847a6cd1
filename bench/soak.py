"""Daemon soak: `defwatch run` for hundreds of scheduled crawls while the site keeps changing.

What it does:

1. Starts ``SampleSite()`` and a local SMTP sink (``defwatch.mailsink``) in this process, crawls the
   site once (``defwatch crawl --mode full``) so the archive has its baseline, then starts
   ``python -m defwatch run`` as a child with a config of three jobs: ``discover`` every
   ``--discover-seconds``, a second crawl job (``--second-mode``, ``full`` by default: a ``revisit``
   would not re-fetch stories that are only minutes old) every ``--second-seconds``, and ``flush``
   every ``--flush-seconds``.
2. Watches the archive's ``runs`` table. Each time a scheduled run finishes, it applies one scripted
   change to the site, chosen by a seeded RNG (``--seed``): edit a paragraph, change a title, change
   a caption, add or drop a related link, publish a story, remove a story (404) or restore a removed
   one, or re-space a paragraph (a whitespace/Unicode-only edit, which must *not* be reported). A
   subject with a change still unseen gets no second change, so every event has one cause. The last
   ``--drain`` runs get no change, so the last edits can still be seen.
3. Every ``--sample-every`` runs it reads the daemon's VmRSS and Threads (/proc/<pid>/status), its
   open descriptors (/proc/<pid>/fd) and its child processes (a /proc scan for ppid).
4. After ``--runs`` scheduled runs it keeps watching, for at most ``--settle`` more runs, while some
   change is still unseen (the second job can be starved for dozens of runs, see below); then (or at
   ``--max-minutes``) it sends SIGTERM and waits for the daemon.
5. Reports: RSS after warm-up vs at the end (target: under 10 % growth), the fd trend, child processes
   left (target 0: every crawl child pid ever seen, and any process whose command line names the soak
   archive), and every scripted change checked against ``events``: each expected event exactly once
   (misses and duplicates listed; a miss that no run able to see it followed is marked UNSEEN), nothing
   reported for whitespace edits, no event without a cause.

Intervals: crawl jobs that fire at the same instant race for the one crawl slot and the loser is
skipped, not queued. With discover every 1 s and full every 2 s, every full firing coincides with a
discover firing and loses (12 of 12 runs were discover in a trial): the defaults are 1.5 s and 2 s,
with which full still goes dozens of runs without a turn at times.

Prints figures; not a test (exit status 0 whatever the verdict, 1 only if the soak itself broke).

    .venv/bin/python bench/soak.py [--runs 200] [--seed 1] [--sample-every 5] [--settle 40] [--keep] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.clock import parse_stamp, stamp
from defwatch.mailsink import SmtpSink
from samplesite import SampleSite
from samplesite.changes import story_paragraphs

REPO = Path(__file__).resolve().parent.parent
SUBSCRIBER_KINDS = {"story_new", "story_updated", "story_removed", "story_restored", "related_added",
                    "related_removed", "image_new", "image_updated", "image_removed", "image_restored"}
RSS_TARGET = 0.10  # at most 10 % growth from warm-up to the end
MAX_REMOVED = 3  # stories absent at once (removed or awaiting confirmation)
WORDS = ("satellite", "budget", "readiness", "logistics", "training", "exercise", "partners", "Pacific",
         "cyber", "recruiting", "shipyard", "hypersonic", "Arctic", "medical", "family", "housing")
CONFIG = """\
# bench/soak.py: short intervals, one archive, mail to a local sink
[crawl]
polite = false

[monitor]
removal_confirm_runs = 2

[[jobs]]
name = "discover"
mode = "discover"
interval_minutes = {discover}

[[jobs]]
name = "{second}"
mode = "{second}"
interval_minutes = {second_interval}

[[jobs]]
name = "flush"
mode = "flush"
interval_minutes = {flush}
"""

Subject = tuple[str, int]  # ("story" | "image", id)
Key = tuple[str, int]  # (event kind, subject id)


@dataclass(eq=False)  # identity: changes are dict values looked up by subject
class Change:
    n: int
    action: str
    after_run: int  # scheduled runs finished when it was applied
    applied_at: str  # ISO 8601 UTC, comparable with events.detected_at
    detail: dict[str, Any]
    subjects: list[Subject]
    expected: list[Key]
    seen: list[Key] = field(default_factory=list)  # expected events observed while the soak ran
    full_runs_needed: int = 0  # whitespace edits: held this many full runs, then released unseen


@dataclass
class Sample:
    run: int
    seconds: float
    rss_kb: int
    threads: int
    fds: int
    children: list[int]


def utc_stamp() -> str:
    return stamp(datetime.now(UTC))


# ------------------------------------------------------------------------------------------ the editor


class Editor:
    """Applies one seeded random change at a time and remembers what each must produce."""

    def __init__(self, site: SampleSite, rng: random.Random) -> None:
        self.site = site
        self.rng = rng
        self.changes: list[Change] = []
        self.busy: dict[Subject, Change] = {}  # subject -> the change not yet seen on it
        self.removed: set[int] = set()  # stories whose removal was announced
        self.counter = 0
        # Captions only of the data file's images: their photo pages are in the baseline archive.
        self.images = sorted(site.content.images)

    # -- choosing --------------------------------------------------------------------------------

    def live_stories(self) -> list[int]:
        absent = self.removed | {s[1] for s, c in self.busy.items() if c.action == "remove" and s[0] == "story"}
        return sorted(sid for sid in self.site.content.stories if sid not in absent)

    def free_stories(self) -> list[int]:
        return [sid for sid in self.live_stories() if ("story", sid) not in self.busy]

    def apply(self, after_run: int) -> Change | None:
        free = [sid for sid in self.free_stories() if story_paragraphs(self.site.content.stories[sid])]
        absent = len(self.removed) + sum(1 for c in self.busy.values() if c.action == "remove")
        options: list[tuple[str, float]] = [("publish", 1.5)]
        if free:
            options += [("edit_paragraph", 3.0), ("set_title", 1.0), ("add_related", 1.0), ("whitespace", 0.8)]
            if absent < MAX_REMOVED:
                options.append(("remove", 0.7))
            if any(self.site.content.stories[sid].get("related") for sid in free):
                options.append(("drop_related", 0.5))
            if self._caption_candidates():
                options.append(("set_caption", 1.0))
        if self.removed - {s[1] for s in self.busy}:
            options.append(("restore", 0.8))
        actions, weights = zip(*options, strict=True)
        action = self.rng.choices(actions, weights)[0]
        self.counter += 1
        change = getattr(self, f"_{action}")(free, after_run)
        self.changes.append(change)
        for subject in change.subjects:
            self.busy[subject] = change
        return change

    def _words(self) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(6))

    def _change(self, action: str, after_run: int, detail: dict[str, Any], subjects: list[Subject],
                expected: list[Key], full_runs_needed: int = 0) -> Change:
        return Change(self.counter, action, after_run, utc_stamp(), detail, subjects, expected,
                      full_runs_needed=full_runs_needed)

    # -- the changes -----------------------------------------------------------------------------

    def _edit_paragraph(self, free: list[int], after_run: int) -> Change:
        sid = self.rng.choice(free)
        paragraphs = story_paragraphs(self.site.content.stories[sid])
        index = self.rng.randrange(len(paragraphs))
        text = f"Soak edit {self.counter}: officials discussed {self._words()}."
        self.site.edit_paragraph(sid, index, text)
        return self._change("edit_paragraph", after_run, {"story": sid, "index": index, "text": text},
                            [("story", sid)], [("story_updated", sid)])

    def _set_title(self, free: list[int], after_run: int) -> Change:
        sid = self.rng.choice(free)
        title = f"Soak Title {self.counter}: {self._words().title()}"
        self.site.set_title(sid, title)
        return self._change("set_title", after_run, {"story": sid, "title": title}, [("story", sid)],
                            [("story_updated", sid)])

    def _caption_candidates(self) -> list[tuple[int, list[int]]]:
        """Images whose photo page and every story showing them are free (all of them must change)."""
        live, found = set(self.live_stories()), []
        for mid in self.images:
            shown = sorted(sid for sid, story in self.site.content.stories.items()
                           if any(b.get("media_id") == mid for b in story["body"] if b["type"] == "image"))
            if ("image", mid) in self.busy or not set(shown) <= live:
                continue
            if any(("story", sid) in self.busy for sid in shown):
                continue
            found.append((mid, shown))
        return found

    def _set_caption(self, free: list[int], after_run: int) -> Change:
        mid, shown = self.rng.choice(self._caption_candidates())
        caption = f"Soak caption {self.counter}: {self._words()}."
        self.site.set_caption(mid, caption)
        return self._change("set_caption", after_run, {"image": mid, "stories": shown, "caption": caption},
                            [("image", mid), *(("story", sid) for sid in shown)],
                            [("image_updated", mid), *(("story_updated", sid) for sid in shown)])

    def _add_related(self, free: list[int], after_run: int) -> Change:
        sid = self.rng.choice(free)
        current = set(self.site.content.stories[sid].get("related") or [])
        targets = [t for t in self.live_stories() if t != sid and t not in current]
        target = self.rng.choice(targets)
        self.site.add_related(sid, target)
        return self._change("add_related", after_run, {"story": sid, "related": target}, [("story", sid)],
                            [("related_added", sid)])

    def _drop_related(self, free: list[int], after_run: int) -> Change:
        sid = self.rng.choice([s for s in free if self.site.content.stories[s].get("related")])
        target = self.rng.choice(self.site.content.stories[sid]["related"])
        self.site.drop_related(sid, target)
        return self._change("drop_related", after_run, {"story": sid, "related": target}, [("story", sid)],
                            [("related_removed", sid)])

    def _publish(self, free: list[int], after_run: int) -> Change:
        sid = self.site.publish()
        story = self.site.content.stories[sid]
        photos = [b["media_id"] for b in story["body"] if b.get("type") == "image"]  # each new photo is an event
        return self._change("publish", after_run, {"story": sid, "title": story["title"]},
                            [("story", sid), *(("image", m) for m in photos)],
                            [("story_new", sid), *(("image_new", m) for m in photos)])

    def _remove(self, free: list[int], after_run: int) -> Change:
        sid = self.rng.choice(free)
        self.site.remove(sid)
        return self._change("remove", after_run, {"story": sid}, [("story", sid)], [("story_removed", sid)])

    def _restore(self, free: list[int], after_run: int) -> Change:
        sid = self.rng.choice(sorted(self.removed - {s[1] for s in self.busy}))
        self.site.restore(sid)
        self.removed.discard(sid)
        return self._change("restore", after_run, {"story": sid}, [("story", sid)], [("story_restored", sid)])

    def _whitespace(self, free: list[int], after_run: int) -> Change:
        sid = self.rng.choice(free)
        index = self.site.whitespace_edit(sid)
        # Nothing may be reported: hold the story through two full runs so no other change hides a report.
        return self._change("whitespace", after_run, {"story": sid, "index": index}, [("story", sid)], [],
                            full_runs_needed=2)

    # -- seeing events while the soak runs -------------------------------------------------------

    def observe(self, kind: str, subject: Subject) -> None:
        change = self.busy.get(subject)
        key = (kind, subject[1])
        if change is None or key not in change.expected or key in change.seen:
            return
        change.seen.append(key)
        if set(change.seen) == set(change.expected):
            self._release(change)
            if change.action == "remove":
                self.removed.add(subject[1])

    def full_run_finished(self) -> None:
        for change in list(dict.fromkeys(self.busy.values())):
            if change.full_runs_needed:
                change.full_runs_needed -= 1
                if not change.full_runs_needed:
                    self._release(change)

    def _release(self, change: Change) -> None:
        for subject in change.subjects:
            if self.busy.get(subject) is change:
                del self.busy[subject]


# ------------------------------------------------------------------------------------------ /proc


def proc_status(pid: int) -> tuple[int, int]:
    """(VmRSS in kB, Threads) of a live process."""
    rss = threads = 0
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) for every process (comm may hold spaces and parentheses: split at the last ')')."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry)] = (int(rest[1]), rest[0])
    return table


def children_of(pid: int) -> list[int]:
    """Live (non-zombie) descendants of ``pid``."""
    table = process_table()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, (ppid, state) in table.items() if ppid == parent and state != "Z"]
        found += kids
        frontier += kids
    return sorted(found)


def processes_naming(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (this process excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


# ------------------------------------------------------------------------------------------ archive


def read_db(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    except sqlite3.OperationalError:
        return []
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def child_env(config: Path, sink_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEFWATCH_", "SCRAPY_"))}
    env |= {"DEFWATCH_CONFIG": str(config), "DEFWATCH_SMTP_HOST": "127.0.0.1", "DEFWATCH_SMTP_PORT": str(sink_port),
            "DEFWATCH_ALERT_TO": "soak@example.org", "DEFWATCH_OPERATOR_TO": "ops@example.org",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return env


# ------------------------------------------------------------------------------------------ the soak


@dataclass
class Soak:
    args: argparse.Namespace
    work: Path
    db: Path = field(init=False)
    samples: list[Sample] = field(default_factory=list)
    baseline_run: int = 0
    runs_done: int = 0
    full_runs_done: int = 0
    settle_runs: int = 0  # runs after --runs, waiting for the last changes to be seen
    started: float = 0.0
    stop_seconds: float = 0.0
    exit_code: int | None = None
    leftover: list[int] = field(default_factory=list)
    children_seen: set[int] = field(default_factory=set)
    timed_out: bool = False
    daemon_pid: int = 0
    mails: int = 0

    def __post_init__(self) -> None:
        self.db = self.work / "soak.db"

    def run(self) -> Editor:
        args = self.args
        config = self.work / "soak.toml"
        config.write_text(CONFIG.format(discover=args.discover_seconds / 60, second=args.second_mode,
                                        second_interval=args.second_seconds / 60, flush=args.flush_seconds / 60),
                          encoding="utf-8")
        site = SampleSite()
        base = site.start()
        with SmtpSink() as sink:
            env = child_env(config, sink.port) | {"DEFWATCH_DB": str(self.db), "DEFWATCH_SITE": base}
            print(f"site {base}, archive {self.db}, seed {args.seed}, {args.runs} runs", flush=True)
            self._baseline(env)
            editor = Editor(site, random.Random(args.seed))
            log = (self.work / "daemon.log").open("wb")
            self.started = time.monotonic()
            daemon = subprocess.Popen([sys.executable, "-m", "defwatch", "run"], cwd=REPO, env=env,
                                      stdout=log, stderr=subprocess.STDOUT)
            self.daemon_pid = daemon.pid
            try:
                self._watch(daemon, editor)
            finally:
                stop = time.monotonic()
                if daemon.poll() is None:
                    daemon.send_signal(signal.SIGTERM)
                try:
                    self.exit_code = daemon.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    print("daemon ignored SIGTERM for 120 s: killing it", flush=True)
                    daemon.kill()
                    self.exit_code = daemon.wait()
                self.stop_seconds = time.monotonic() - stop
                log.close()
                time.sleep(1.0)  # let a killed group finish dying before looking for leftovers
                self._leftovers()
                self.mails = len(sink.wait_for(0, timeout=0))
            site.stop()
        return editor

    def _baseline(self, env: dict[str, str]) -> None:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "defwatch", "crawl", "--mode", "full", "--json", "--no-mail"],
                              cwd=REPO, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"baseline crawl failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        self.baseline_run = read_db(self.db, "SELECT MAX(id) FROM runs")[0][0]
        print(f"baseline crawl: run {self.baseline_run}, {time.monotonic() - started:.1f} s", flush=True)

    def _watch(self, daemon: subprocess.Popen[bytes], editor: Editor) -> None:
        args = self.args
        last_event, next_sample = 0, 0
        deadline = self.started + args.max_minutes * 60
        while self.runs_done < args.runs + args.settle and (self.runs_done < args.runs or editor.busy):
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited by itself ({daemon.returncode}); see {self.work}/daemon.log")
            if time.monotonic() > deadline:
                self.timed_out = True
                print(f"--max-minutes reached after {self.runs_done} runs", flush=True)
                break
            finished = read_db(self.db, "SELECT id, mode FROM runs WHERE id > ? AND ended_at IS NOT NULL ORDER BY id",
                               (self.baseline_run,))
            for _, mode in finished[self.runs_done:]:
                self.runs_done += 1
                if mode in ("full", "sweep", "revisit"):
                    self.full_runs_done += 1
                    editor.full_run_finished()
                if self.runs_done <= args.runs - args.drain:
                    editor.apply(self.runs_done)
            for event_id, kind, subject_type, subject_id in read_db(
                    self.db, "SELECT id, kind, subject_type, subject_id FROM events WHERE id > ? ORDER BY id",
                    (last_event,)):
                last_event = event_id
                editor.observe(kind, (subject_type, subject_id))
            if self.runs_done >= next_sample:
                self._sample()
                next_sample = self.runs_done + args.sample_every
                if len(self.samples) % 10 == 1:
                    s = self.samples[-1]
                    print(f"  run {s.run:>4}  {s.seconds:6.0f} s  rss {s.rss_kb / 1024:6.1f} MB  fds {s.fds:>3}  "
                          f"threads {s.threads:>2}  children {len(s.children)}", flush=True)
            time.sleep(0.3)
        self.settle_runs = max(0, self.runs_done - args.runs)
        self._sample()

    def _sample(self) -> None:
        pid = self.daemon_pid
        try:
            rss, threads = proc_status(pid)
            fds = fd_count(pid)
        except OSError:
            return
        if not rss:  # not exec'd yet: no VmRSS line
            return
        kids = children_of(pid)
        self.children_seen.update(kids)
        self.samples.append(Sample(self.runs_done, time.monotonic() - self.started, rss, threads, fds, kids))

    def _leftovers(self) -> None:
        logged = set(map(int, re.findall(r"started child pid (\d+)", self._log_text())))
        self.children_seen |= logged
        self.leftover = sorted({p for p in self.children_seen if alive(p)} | set(processes_naming(str(self.db))))

    def _log_text(self) -> str:
        return (self.work / "daemon.log").read_text(encoding="utf-8", errors="replace")


# ------------------------------------------------------------------------------------------ accounting


@dataclass
class Verdict:
    ok: list[tuple[int, Key]] = field(default_factory=list)
    missed: list[tuple[Change, Key]] = field(default_factory=list)
    duplicated: list[tuple[Change, Key, int]] = field(default_factory=list)
    unexplained: list[tuple[dict[str, Any], Change | None]] = field(default_factory=list)
    operator: Counter[str] = field(default_factory=Counter)


def account(db: Path, baseline_run: int, changes: list[Change]) -> Verdict:
    """Each event belongs to the latest change on its subject made before it was detected."""
    verdict = Verdict()
    rows = read_db(db, "SELECT id, run_id, kind, subject_type, subject_id, detected_at, changed_fields FROM events "
                       "WHERE run_id > ? ORDER BY id", (baseline_run,))
    counts: Counter[tuple[int, Key]] = Counter()
    by_subject: dict[Subject, list[Change]] = {}
    for change in changes:
        for subject in change.subjects:
            by_subject.setdefault(subject, []).append(change)
    for event_id, run_id, kind, subject_type, subject_id, detected_at, fields in rows:
        if kind not in SUBSCRIBER_KINDS:
            verdict.operator[kind] += 1
            continue
        moment = parse_stamp(detected_at)
        before = [c for c in by_subject.get((subject_type, subject_id), []) if parse_stamp(c.applied_at) < moment]
        cause = before[-1] if before else None
        key = (kind, subject_id)
        if cause is not None and key in cause.expected:
            counts[(cause.n, key)] += 1
        else:
            event = {"id": event_id, "run": run_id, "kind": kind, "subject": f"{subject_type} {subject_id}",
                     "detected_at": detected_at, "fields": fields}
            verdict.unexplained.append((event, cause))
    for change in changes:
        for key in change.expected:
            seen = counts[(change.n, key)]
            if seen == 0:
                verdict.missed.append((change, key))
            elif seen > 1:
                verdict.duplicated.append((change, key, seen))
            else:
                verdict.ok.append((change.n, key))
    return verdict


def _able_runs(change: Change, visits: list[tuple[str, str]]) -> int:
    """Runs that started after the change and visit what it changed (discover sees only new stories)."""
    modes = {"full", "sweep"} | ({"discover"} if change.action == "publish" else set())
    applied = parse_stamp(change.applied_at)
    return sum(1 for mode, started in visits if mode in modes and parse_stamp(started) > applied)


def slope_per_100(points: list[tuple[int, float]]) -> float:
    if len(points) < 2:
        return 0.0
    xs, ys = zip(*points, strict=True)
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    return 0.0 if not var else 100 * sum((x - mean_x) * (y - mean_y) for x, y in points) / var


def report(soak: Soak, editor: Editor, verdict: Verdict) -> dict[str, Any]:
    args, samples = soak.args, soak.samples
    elapsed = (samples[-1].seconds if samples else 0.0)
    runs = read_db(soak.db, "SELECT mode, status, COUNT(*) FROM runs WHERE id > ? GROUP BY mode, status",
                   (soak.baseline_run,))
    print()
    stopped = " - STOPPED BY --max-minutes" if soak.timed_out else ""
    print(f"== soak: {soak.runs_done} scheduled runs in {elapsed / 60:.1f} min "
          f"({elapsed / max(1, soak.runs_done):.1f} s per run){stopped}; {soak.settle_runs} of them after "
          f"--runs {args.runs}, waiting for the last changes to be seen (--settle {args.settle})")
    print("runs by mode and status: " + ", ".join(f"{m}/{s} {n}" for m, s, n in runs))
    modes = "".join("F" if m == "full" else "d" if m == "discover" else "s" for (m,) in read_db(
        soak.db, "SELECT mode FROM runs WHERE id > ? ORDER BY id", (soak.baseline_run,)))
    streak = max((len(x) for x in re.findall(r"d+", modes)), default=0)
    print(f"run sequence (d discover, F {args.second_mode}): {modes}")
    print(f"longest stretch of discover runs with no {args.second_mode} run: {streak}")
    log = soak._log_text()
    skipped = Counter(re.findall(r"job (\S+) \(mode \S+\) skipped: crawl ", log))
    exits = re.findall(r"job \S+ finished: mode=\S+ duration=\S+ exit=(\S+)", log)
    stopped_by_us = 1 if exits and exits[-1] == "-15" else 0  # the crawl our SIGTERM ended
    failed = sum(e != "0" for e in exits) - stopped_by_us
    print(f"daemon log: {len(log.splitlines())} lines; firings skipped while a crawl ran: {dict(skipped) or 0}; "
          f"{failed} crawls with a non-zero exit (+{stopped_by_us} ended by the final SIGTERM); "
          f"{log.count('Traceback')} tracebacks; {len(re.findall(r' (?:ERROR|CRITICAL) ', log))} ERROR lines")

    warm_run = max(args.warmup, 1)
    warm = [s for s in samples if s.run >= warm_run]
    first, last = warm[:3], warm[-3:]
    result: dict[str, Any] = {"runs": soak.runs_done, "settle_runs": soak.settle_runs,
                              "minutes": round(elapsed / 60, 1), "timed_out": soak.timed_out,
                              "longest_discover_streak": streak, "run_modes": modes}
    if warm:
        rss_warm = statistics.median(s.rss_kb for s in first)
        rss_end = statistics.median(s.rss_kb for s in last)
        growth = (rss_end - rss_warm) / rss_warm
        print(f"RSS: {samples[0].rss_kb / 1024:.1f} MB at start, {rss_warm / 1024:.1f} MB after warm-up "
              f"(run {first[0].run}), {rss_end / 1024:.1f} MB at the end (run {last[-1].run}): "
              f"{growth:+.1%} (target < {RSS_TARGET:.0%}: {'ok' if growth < RSS_TARGET else 'MISSED'}); "
              f"max {max(s.rss_kb for s in samples) / 1024:.1f} MB; "
              f"trend {slope_per_100([(s.run, s.rss_kb / 1024) for s in warm]):+.2f} MB per 100 runs")
        fds = [s.fds for s in warm]
        print(f"open fds: {fds[0]} after warm-up, {fds[-1]} at the end, min {min(fds)}, max {max(fds)}, "
              f"trend {slope_per_100([(s.run, s.fds) for s in warm]):+.2f} per 100 runs")
        threads = [s.threads for s in warm]
        print(f"threads: {threads[0]} after warm-up, {threads[-1]} at the end, max {max(threads)}")
        result |= {"rss_warm_kb": rss_warm, "rss_end_kb": rss_end, "rss_growth": round(growth, 4),
                   "fds_warm": fds[0], "fds_end": fds[-1], "fds_max": max(fds)}
    busy = Counter(len(s.children) for s in samples)
    print(f"children while running (per sample): {dict(sorted(busy.items()))}; "
          f"{len(soak.children_seen)} crawl child pids seen")
    print(f"SIGTERM: daemon exited {soak.exit_code} after {soak.stop_seconds:.1f} s; leftover processes: "
          f"{len(soak.leftover)} {soak.leftover or ''} (target 0)")

    actions = Counter(c.action for c in editor.changes)
    expected = sum(len(c.expected) for c in editor.changes)
    print(f"scripted changes: {len(editor.changes)} ({', '.join(f'{a} {n}' for a, n in sorted(actions.items()))}), "
          f"{expected} expected events")
    print(f"events: {len(verdict.ok)} reported exactly once, {len(verdict.missed)} missed, "
          f"{len(verdict.duplicated)} duplicated, {len(verdict.unexplained)} without a scripted cause, "
          f"operator events {dict(verdict.operator) or 0}; mails received {soak.mails}")
    visits = read_db(soak.db, "SELECT mode, started_at FROM runs WHERE id > ?", (soak.baseline_run,))
    for change, key in verdict.missed:
        able = _able_runs(change, visits)
        needed = 2 if change.action == "remove" else 1
        why = (f"{able} run(s) able to see it started after it" if able >= needed
               else f"UNSEEN, not missed: only {able} run(s) able to see it started after it (needs {needed})")
        print(f"  MISSED {key[0]} {key[1]}: change {change.n} {change.action} after run {change.after_run} "
              f"{change.detail}; {why}")
    for change, key, seen in verdict.duplicated:
        print(f"  DUPLICATE x{seen} {key[0]} {key[1]}: change {change.n} {change.action} {change.detail}")
    for event, cause in verdict.unexplained:
        why = f"last change on it: {cause.n} {cause.action}" if cause else "no change on it"
        print(f"  UNEXPLAINED {event['kind']} {event['subject']} (run {event['run']}, {event['fields']}): {why}")
    whitespace = [c for c in editor.changes if c.action == "whitespace"]
    falsely = {e["subject"] for e, c in verdict.unexplained if c is not None and c.action == "whitespace"}
    print(f"whitespace-only edits: {len(whitespace)}, reported as changes: {len(falsely)}")
    result |= {"changes": len(editor.changes), "expected_events": expected, "ok": len(verdict.ok),
               "missed": len(verdict.missed), "duplicated": len(verdict.duplicated),
               "unexplained": len(verdict.unexplained), "operator_events": dict(verdict.operator),
               "leftover_processes": soak.leftover, "daemon_exit": soak.exit_code,
               "samples": [asdict(s) for s in samples], "change_log": [asdict(c) for c in editor.changes]}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="scheduled crawl runs to soak for (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the scripted changes (default 1)")
    parser.add_argument("--discover-seconds", type=float, default=1.5, help="discover job interval (default 1.5)")
    parser.add_argument("--second-mode", choices=("full", "revisit", "sweep"), default="full",
                        help="mode of the second crawl job (default full)")
    parser.add_argument("--second-seconds", type=float, default=2.0, help="its interval (default 2)")
    parser.add_argument("--flush-seconds", type=float, default=5.0, help="alert flush interval (default 5)")
    parser.add_argument("--sample-every", type=int, default=5, help="sample /proc every N runs (default 5)")
    parser.add_argument("--warmup", type=int, default=20, help="runs before the RSS baseline (default 20)")
    parser.add_argument("--drain", type=int, default=10, help="last runs without a change (default 10)")
    parser.add_argument("--settle", type=int, default=40,
                        help="at most this many extra runs after --runs while changes are still unseen (default 40)")
    parser.add_argument("--max-minutes", type=float, default=40.0, help="stop after this long (default 40)")
    parser.add_argument("--keep", action="store_true", help="keep the archive, config and daemon log")
    parser.add_argument("--json", metavar="FILE", help="also write the figures, samples and change log here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="defwatch-soak-"))
    soak = Soak(args, work)
    try:
        editor = soak.run()
        verdict = account(soak.db, soak.baseline_run, editor.changes)
        result = report(soak, editor, verdict)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            for path in sorted(work.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            work.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
