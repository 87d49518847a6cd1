"""Security properties, end to end with real `defwatch` child processes.

One archive is built by real crawls of the sample site with an SMTP password in the environment and
an SMTP server that requires it, while the site carries hostile text: a story title, a paragraph and
a caption that hold ``<script>alert(1)</script>`` and ``\\r\\nBcc: x@evil.example``, and related links
to www.war.gov, defense.gov, media.defense.gov, evil.example and a second local server ("evil").

- The password (as typed, and in the base64 forms AUTH PLAIN and AUTH LOGIN send) appears in no log
  line, no command output, no cell of any table (compressed raw pages included), not in the archive
  file's bytes and not in ``runs.stats`` - also when the server refuses the login and when a server
  echoes the credentials back in its error reply.
- Scraped text never becomes a mail header, a recipient or markup: no Bcc/Cc header, envelope
  recipients are the configured ones only, the HTML part, ``defwatch diff --html`` and Datasette show
  the script escaped, and a ``javascript:`` URL never becomes a link.
- CLI input reaches SQL only as parameters: SQL-looking search queries and filters give an error or no
  rows, and every table is still there.
- Only the site is requested: the crawl child runs with ``http_proxy``/``https_proxy`` pointing at the
  evil server (``no_proxy=127.0.0.1``), so a request to any other host name, www.war.gov included,
  would land there, as would a direct request to the evil server's own address. It must see nothing.
  A positive control shows the trap does catch a crawl aimed at www.war.gov.
- ``--site`` misuse exits 2.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import socketserver
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from defwatch.cli import main
from samplesite import SampleSite
from tests.conftest import ROOT, crawl_env
from tests.smtp_sink import Received, SmtpSink

USER = "alerts@example.org"
PASSWORD = "Pa55-w0rd_for-defwatch-security-test!"
SECRETS = [PASSWORD, base64.b64encode(PASSWORD.encode()).decode(),
           base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode(),
           base64.b64encode(USER.encode() + b"\0" + PASSWORD.encode()).decode()]
RECIPIENTS = {"analyst@example.org", "ops@example.org"}
ALLOWED_HEADERS = {"subject", "from", "to", "date", "message-id", "auto-submitted", "x-defwatch-kind",
                   "mime-version", "content-type", "content-transfer-encoding"}

SCRIPT = "<script>alert(1)</script>"
INJECTION = f"{SCRIPT}\r\nBcc: x@evil.example"
HOSTILE_TITLE = f"Budget Talks {SCRIPT}\r\nBcc: x@evil.example\u2028Cc: y@evil.example"
EDITED = 3610656  # paragraph and title edited
REMOVED = 3386221  # hostile title from the start, removed: its title goes into an immediate mail's Subject
LINKER = 3342560  # lists related links to other hosts
CAPTIONED = 2003198811  # image whose caption is edited
RAW_EVENT_SUBJECT = 1  # an event written straight into the archive with raw CR/LF in its title

CONFIG = """\
[monitor]
removal_confirm_runs = 2

[alerts]
immediate_removals = true
"""


# ------------------------------------------------------------------------------------- helpers


class CountingServer(socketserver.ThreadingTCPServer):
    """Records the first line of every connection (a GET, or a proxy's CONNECT) and answers 404."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _CountingHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> CountingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _CountingHandler(socketserver.StreamRequestHandler):
    server: CountingServer

    def handle(self) -> None:
        self.connection.settimeout(5)
        try:
            line = self.rfile.readline(65536).decode("latin-1").strip()
        except OSError:
            line = "<no request line>"
        with self.server.lock:
            self.server.lines.append(line)
        with contextlib.suppress(OSError):
            self.wfile.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class EchoingSmtp(socketserver.ThreadingTCPServer):
    """A bad SMTP server that refuses every login and echoes the credentials in its 535 reply."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def __enter__(self) -> EchoingSmtp:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _EchoHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.connection.settimeout(10)
        self._reply("220 echo ESMTP")
        login = False
        for raw in self.rfile:
            line = raw.decode("latin-1").strip()
            verb = line.split(" ", 1)[0].upper()
            if login:
                self._reply(f"535 5.7.8 rejected {line}")
                login = False
            elif verb in ("EHLO", "HELO"):
                self._reply("250-echo\r\n250 AUTH PLAIN LOGIN")
            elif verb == "AUTH" and line.upper().startswith("AUTH LOGIN"):
                login = True
                self._reply("334 UGFzc3dvcmQ6")
            elif verb == "AUTH":
                self._reply(f"535 5.7.8 rejected {line}")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 5.5.2 no")

    def _reply(self, text: str) -> None:
        self.wfile.write(text.encode("latin-1") + b"\r\n")


@dataclass
class Output:
    label: str
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Scenario:
    db: Path
    env: dict[str, str]
    site_url: str
    evil_lines: list[str]
    site_paths: list[str]
    messages: list[Received]
    auth_attempts: list[tuple[str, bool]]
    refused_attempts: list[tuple[str, bool]]
    published: int
    outputs: list[Output] = field(default_factory=list)


def defwatch(*args: str, env: dict[str, str], label: str = "", timeout: float = 180) -> Output:
    proc = subprocess.run([sys.executable, "-m", "defwatch", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)
    return Output(label or " ".join(args[:2]), proc.returncode, proc.stdout, proc.stderr)


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def table_names(db: Path) -> list[str]:
    return [r[0] for r in query(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def leaks(text: str | bytes) -> list[str]:
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return [s for s in SECRETS if s.encode() in data]


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()


def header_block(content: bytes) -> bytes:
    return re.split(rb"\r?\n\r?\n", content, maxsplit=1)[0]


# ------------------------------------------------------------------------------------- the scenario


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("security")
    (tmp / "defwatch-test.toml").write_text(CONFIG, encoding="utf-8")
    db = tmp / "security.db"
    with SampleSite() as site, CountingServer() as evil, SmtpSink(auth=(USER, PASSWORD)) as sink, \
            SmtpSink(auth=(USER, "another password")) as refusing, EchoingSmtp() as echoing:
        env = crawl_env(tmp, DEFWATCH_SMTP_HOST=sink.host, DEFWATCH_SMTP_PORT=str(sink.port),
                        DEFWATCH_SMTP_USER=USER, DEFWATCH_SMTP_PASSWORD=PASSWORD,
                        DEFWATCH_ALERT_TO="analyst@example.org", DEFWATCH_OPERATOR_TO="ops@example.org",
                        http_proxy=evil.url, https_proxy=evil.url, HTTP_PROXY=evil.url, HTTPS_PROXY=evil.url,
                        no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
        site.set_title(REMOVED, HOSTILE_TITLE)
        for url in (f"{evil.url}/News/News-Stories/Article/Article/999/evil/",
                    "https://evil.example/News/News-Stories/Article/Article/998/evil/",
                    "https://www.war.gov/News/News-Stories/Article/Article/997/live-site/",
                    "http://www.defense.gov/News/News-Stories/Article/Article/996/old-host/",
                    "https://media.defense.gov/2023/Dec/07/2003354108/-1/-1/0/231111-F-NU281-1013M.JPG",
                    f"{evil.url}/Multimedia/Photos/igphoto/2003999999/"):
            site.add_offsite_related(LINKER, url)
        result = Scenario(db, env, site.base_url, evil.lines, [], sink.messages, sink.auth_attempts,
                          refusing.auth_attempts, published=0)

        def crawl(label: str) -> None:
            out = defwatch("-vv", "crawl", "--db", str(db), "--site", site.base_url, "--mode", "full", "--json",
                           env=env, label=label)
            assert out.returncode == 0, out.stderr[-3000:]
            result.outputs.append(out)

        crawl("crawl 1 (baseline)")
        site.edit_paragraph(EDITED, 0, INJECTION)
        site.set_title(EDITED, HOSTILE_TITLE)
        site.set_caption(CAPTIONED, INJECTION)
        result.published = site.publish({"title": HOSTILE_TITLE, "paragraphs": [INJECTION, "A second paragraph."]})
        site.remove(REMOVED)
        crawl("crawl 2 (edits)")
        crawl("crawl 3 (removal confirmed)")
        _add_raw_event(db)
        result.outputs.append(defwatch("-vv", "alerts", "flush", "--db", str(db), env=env, label="flush raw event"))
        bad_login = env | {"DEFWATCH_SMTP_PORT": str(refusing.port)}
        result.outputs.append(defwatch("-vv", "alerts", "test", "--db", str(db), env=bad_login, label="refused"))
        echo = env | {"DEFWATCH_SMTP_PORT": str(echoing.port)}
        result.outputs.append(defwatch("-vv", "alerts", "test", "--db", str(db), env=echo, label="echoed"))
        for args in (("alerts", "list", "--json"), ("changes", "--json"), ("stats", "--json"),
                     ("export", "--format", "json", "--table", "events")):
            result.outputs.append(defwatch(*args, "--db", str(db), env=env))
        result.site_paths = [r.path for r in site.requests]
        yield result


def _add_raw_event(db: Path) -> None:
    """An event as a buggy parser or a hand edit could leave it: raw CR/LF and a javascript: URL."""
    run_id = query(db, "SELECT MAX(id) FROM runs")[0][0]
    conn = sqlite3.connect(db)
    try:
        conn.execute(
            "INSERT INTO events (run_id, kind, subject_type, subject_id, url, title, summary, changed_fields, diff,"
            " detected_at, audience) VALUES (?, 'story_removed', 'story', ?, ?, ?, ?, '[]', '{}', ?, 'subscriber')",
            (run_id, RAW_EVENT_SUBJECT, "javascript:alert(1)//https://www.war.gov/",
             f"Raw {INJECTION}\r\n\r\nInjected body", f"Removed: {INJECTION}\nBcc: z@evil.example",
             datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")))
        conn.commit()
    finally:
        conn.close()


# ------------------------------------------------------------------------------------- secrets


def test_the_password_was_really_used(scenario: Scenario) -> None:
    """Not vacuous: the crawls logged in with the password, and the bad servers were really tried."""
    assert (USER, True) in scenario.auth_attempts
    assert scenario.refused_attempts and not any(ok for _, ok in scenario.refused_attempts)
    assert scenario.messages, "no mail was delivered"
    errors = [row[0] for row in query(scenario.db, "SELECT last_error FROM outbox WHERE last_error IS NOT NULL")]
    assert any("535" in e for e in errors), errors  # the refusals were recorded (and redacted)
    assert any("***" in e for e in errors), errors  # the echoed credentials were masked


def test_secrets_never_in_logs_or_command_output(scenario: Scenario) -> None:
    assert len(scenario.outputs) >= 10
    for out in scenario.outputs:
        assert not leaks(out.stderr), f"{out.label}: stderr shows {leaks(out.stderr)}"
        assert not leaks(out.stdout), f"{out.label}: stdout shows {leaks(out.stdout)}"


def test_secrets_never_in_any_cell_of_any_table(scenario: Scenario) -> None:
    checked = 0
    for table in table_names(scenario.db):
        conn = sqlite3.connect(scenario.db)
        try:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            columns = [c[0] for c in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    data = _cell_bytes(value)
                    assert not leaks(data), f"{table}.{column} holds {leaks(data)}"
                    checked += 1
        finally:
            conn.close()
    assert checked > 1000


def _cell_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, bytes):
        try:
            return value + zlib.decompress(value)
        except zlib.error:
            return value
    return str(value).encode()


def test_secrets_never_in_the_archive_files(scenario: Scenario) -> None:
    """Freed pages and the WAL keep old bytes: grep the files, not just the rows."""
    for path in scenario.db.parent.glob(scenario.db.name + "*"):
        assert not leaks(path.read_bytes()), f"{path.name} holds {leaks(path.read_bytes())}"


def test_run_stats_hold_a_redacted_config(scenario: Scenario) -> None:
    rows = query(scenario.db, "SELECT id, stats FROM runs ORDER BY id")
    assert len(rows) >= 3
    for run_id, raw in rows:
        assert not leaks(raw or ""), f"runs.stats of run {run_id}"
        stats = json.loads(raw)
        assert stats["config"]["smtp"]["password"] == "<redacted>"
        assert stats["config"]["smtp"]["user"] == USER


# ------------------------------------------------------------------------------------- mail


def test_mails_carry_no_injected_header_or_recipient(scenario: Scenario) -> None:
    kinds = set()
    for received in scenario.messages:
        message = received.message
        kinds.add(message["X-Defwatch-Kind"])
        names = {name.lower() for name in message}
        assert names <= ALLOWED_HEADERS, names - ALLOWED_HEADERS
        assert set(received.rcpt_tos) <= RECIPIENTS, received.rcpt_tos
        head = header_block(received.content)
        assert not re.search(rb"(?im)^(bcc|cc|to|from|reply-to)[ \t]*:.*evil", head), head.decode()
        for name, value in message.items():  # unfolded: the scraped text stays inside Subject
            assert "evil.example" not in value or name == "Subject", (name, value)
        for part in message.walk():
            assert "bcc" not in {k.lower() for k in part}
        subject = str(message["Subject"])
        assert "\r" not in subject and "\n" not in subject
    assert {"digest", "immediate"} <= kinds, kinds


def test_immediate_mail_subject_keeps_the_hostile_title_on_one_line(scenario: Scenario) -> None:
    immediate = [m.message for m in scenario.messages if m.message["X-Defwatch-Kind"] == "immediate"]
    subjects = [str(m["Subject"]) for m in immediate]
    assert any("Budget Talks" in s and "Bcc: x@evil.example" in s for s in subjects), subjects  # text, not header
    assert any("Raw " in s for s in subjects), subjects  # the raw CR/LF event was mailed too
    for received in scenario.messages:
        for line in header_block(received.content).splitlines():
            assert not line.lower().startswith((b"bcc", b"cc:")), line


def test_html_mail_shows_scraped_script_escaped(scenario: Scenario) -> None:
    digests = [m.message for m in scenario.messages if m.message["X-Defwatch-Kind"] in ("digest", "immediate")]
    htmls = [html_part(m) for m in digests]
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in h for h in htmls)  # the text arrived ...
    for html in htmls:
        assert "<script" not in html.lower()  # ... as text, never as markup
        assert "javascript:" not in html.lower()
        for href in re.findall(r'href="([^"]*)"', html):
            assert href.startswith(("http://", "https://")), href
    texts = [m.get_body(preferencelist=("plain",)).get_content() for m in digests]
    assert any(SCRIPT in t for t in texts)  # plain text shows it as it is: harmless there


def test_diff_html_escapes_scraped_text(scenario: Scenario) -> None:
    out = defwatch("diff", str(EDITED), "--html", "--db", str(scenario.db), env=scenario.env)
    assert out.returncode == 0, out.stderr
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out.stdout
    assert "<script" not in out.stdout.lower()
    for href in re.findall(r'href="([^"]*)"', out.stdout):
        assert href.startswith(("http://", "https://")), href


def test_datasette_metadata_and_pages_never_carry_scraped_markup(scenario: Scenario) -> None:
    from defwatch.browse import datasette_metadata

    metadata = json.dumps(datasette_metadata(scenario.db))
    assert "<script" not in metadata.lower() and "evil.example" not in metadata and "Budget Talks" not in metadata
    app = pytest.importorskip("datasette.app")
    ds = app.Datasette([str(scenario.db)], metadata=datasette_metadata(scenario.db))
    name = scenario.db.stem
    paths = [f"/{name}/latest_changes", f"/{name}/events", f"/{name}/stories", f"/{name}/story_versions",
             f"/{name}/search?q=Budget", f"/{name}/outbox", f"/{name}/images"]

    async def fetch() -> list[str]:
        pages = []
        for path in paths:
            response = await ds.client.get(path)
            assert response.status_code == 200, (path, response.text[:300])
            pages.append(response.text)
        return pages

    pages = asyncio.run(fetch())
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in page for page in pages)
    for path, page in zip(paths, pages, strict=True):
        assert "<script>alert(1)" not in page, path


# ------------------------------------------------------------------------------------- SQL


SQL_LOOKING = ["x' OR 1=1 --", '"); DROP TABLE stories; --', "'; DROP TABLE stories; --", "* OR 1=1",
               "x\" OR \"1\"=\"1", "') UNION SELECT sql, 1, 1, 1, 1, 1, 1 FROM sqlite_master --"]


def cli(scenario: Scenario, capsys: pytest.CaptureFixture[str], *args: str) -> Output:
    """``defwatch ARGS --db <archive>`` in this process (same argparse and handlers, no interpreter start)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("DEFWATCH_")]:
            patch.delenv(name)
        patch.setenv("DEFWATCH_CONFIG", scenario.env["DEFWATCH_CONFIG"])
        capsys.readouterr()
        try:
            code = main([*args, "--db", str(scenario.db)])
        except SystemExit as exc:  # argparse rejects the value
            code = exc.code if isinstance(exc.code, int) else 2
        captured = capsys.readouterr()
    return Output(" ".join(args), code, captured.out, captured.err)


@pytest.mark.parametrize("text", SQL_LOOKING)
def test_search_input_is_a_parameter(scenario: Scenario, capsys: pytest.CaptureFixture[str], text: str) -> None:
    before = {t: query(scenario.db, f'SELECT COUNT(*) FROM "{t}"')[0][0] for t in ("stories", "events", "runs")}
    out = cli(scenario, capsys, "search", text, "--json")
    assert out.returncode in (0, 2), out.stderr
    if out.returncode == 0:
        hits = json.loads(out.stdout)
        assert all(set(hit) >= {"id", "title"} for hit in hits)  # real story rows, never schema text
        assert "CREATE TABLE" not in out.stdout
    else:
        assert "cannot read search query" in out.stderr
    assert {t: query(scenario.db, f'SELECT COUNT(*) FROM "{t}"')[0][0] for t in before} == before


@pytest.mark.parametrize("args", [
    ("images", "--virin", "' OR 1=1 --", "--json"),
    ("images", "--credit", "%' OR 1=1; DROP TABLE images; --", "--json"),
    ("images", "--branch", "A' OR '1'='1", "--json"),
    ("changes", "--kind", "x' OR 1=1 --", "--json"),
    ("changes", "--since", "2020' OR 1=1 --"),
    ("export", "--format", "json", "--table", "stories", "--since", "'; DROP TABLE stories; --"),
    ("search", "space", "--since", "2020' OR 1=1 --"),
    ("show", "1 OR 1=1"),
    ("history", "3610656; DROP TABLE stories"),
])
def test_other_filters_are_parameters(scenario: Scenario, capsys: pytest.CaptureFixture[str],
                                      args: tuple[str, ...]) -> None:
    tables = table_names(scenario.db)
    out = cli(scenario, capsys, *args)
    assert out.returncode in (0, 2), (out.returncode, out.stderr[-2000:])
    if out.returncode == 0 and "--json" in args:
        assert json.loads(out.stdout) == []
    assert table_names(scenario.db) == tables
    assert query(scenario.db, "SELECT COUNT(*) FROM stories")[0][0] > 30


# ------------------------------------------------------------------------------------- hosts


def test_only_the_site_was_ever_requested(scenario: Scenario) -> None:
    assert scenario.evil_lines == [], scenario.evil_lines
    assert len(scenario.site_paths) > 100  # the crawls did run against the sample site
    urls = [row[0] for row in query(scenario.db, "SELECT url FROM fetches")]
    assert urls and all(u.startswith(scenario.site_url + "/") for u in urls), \
        [u for u in urls if not u.startswith(scenario.site_url + "/")]
    related = {row[0] for row in query(scenario.db, "SELECT related_id FROM related_links WHERE story_id = ?",
                                       (LINKER,))}
    assert not related & {999, 998, 997, 996}


def test_the_proxy_trap_catches_a_crawl_of_the_live_host(tmp_path: Path) -> None:
    """Positive control for the test above: aimed at www.war.gov, the child's first request reaches the trap."""
    with CountingServer() as trap:
        env = crawl_env(tmp_path, http_proxy=trap.url, https_proxy=trap.url, HTTP_PROXY=trap.url,
                        HTTPS_PROXY=trap.url, no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
        child = subprocess.Popen([sys.executable, "-m", "defwatch", "crawl", "--db", str(tmp_path / "live.db"),
                                  "--site", "https://www.war.gov", "--mode", "discover", "--max-pages", "2"],
                                 env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not trap.lines and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            child.kill()  # our own child; a graceful stop would wait out the live site's retries (~25 s)
            child.wait(timeout=30)
        assert any("www.war.gov" in line for line in trap.lines), trap.lines


# ------------------------------------------------------------------------------------- --site


@pytest.mark.parametrize("site", ["file:///etc", "http://x/path", "ftp://127.0.0.1/", "http://", "//x",
                                  "javascript:alert(1)", "127.0.0.1:8000", "http://x/path?q=1"])
def test_site_misuse_exits_2(tmp_path: Path, site: str) -> None:
    db = tmp_path / "misuse.db"
    commands = [("crawl", "--mode", "discover")] + ([("run",)] if site in ("file:///etc", "http://x/path") else [])
    for command in commands:
        out = defwatch(*command, "--db", str(db), "--site", site, env=crawl_env(tmp_path), timeout=60)
        assert out.returncode == 2, (command, site, out.returncode, out.stderr[-1000:])
        assert "--site" in out.stderr
    assert not db.exists() or query(db, "SELECT COUNT(*) FROM fetches")[0][0] == 0


def test_site_misuse_from_the_environment_exits_2(tmp_path: Path) -> None:
    out = defwatch("crawl", "--db", str(tmp_path / "env.db"), "--mode", "discover",
                   env=crawl_env(tmp_path, DEFWATCH_SITE="file:///etc"), timeout=60)
    assert out.returncode == 2, out.stderr[-1000:]


def test_site_with_credentials_exits_2(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port where nothing listens: if accepted, the crawl fails fast
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = defwatch("crawl", "--db", str(tmp_path / "cred.db"), "--site", f"http://user:{PASSWORD}@127.0.0.1:{port}",
                   "--mode", "discover", "--max-pages", "1", env=crawl_env(tmp_path), timeout=60)
    assert out.returncode == 2


def _closed_port() -> int:
    """A port where nothing listens: a crawl that wrongly started against it fails fast."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _archive_with_one_run(db: Path) -> list[tuple]:
    from db.archive import Archive

    archive = Archive.open(str(db))
    try:
        archive.finish_run(archive.start_run("discover", "http://127.0.0.1:8000"), "ok", {"pages": 0})
    finally:
        archive.close()
    return query(db, "SELECT * FROM runs")


@pytest.mark.parametrize(("suffix", "problem"), [
    ("?x=1", "a query string (?x=1)"), ("/?x=1", "a query string (?x=1)"), ("#a", "a fragment (#a)"),
    ("/#a", "a fragment (#a)"), ("/News/?Page=2", "a path (/News/) and a query string (?Page=2)"),
])
def test_site_with_a_query_fragment_or_path_exits_2_naming_it(tmp_path: Path, suffix: str, problem: str) -> None:
    """``--site`` keeps only scheme and host: whatever else it carries would be silently dropped."""
    db = tmp_path / "kept.db"
    before = _archive_with_one_run(db)
    site = f"http://127.0.0.1:{_closed_port()}{suffix}"
    out = defwatch("crawl", "--db", str(db), "--site", site, "--mode", "discover", "--max-pages", "1",
                   env=crawl_env(tmp_path), timeout=60)
    assert out.returncode == 2, (site, out.returncode, out.stderr[-1000:])
    assert f"--site: {site!r} has {problem}, which would be silently dropped" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert query(db, "SELECT * FROM runs") == before  # nothing stored was touched, no run was started


@pytest.mark.parametrize("command", [("run",), ("distributed", "writer"), ("distributed", "worker"),
                                     ("distributed", "status")])
def test_every_command_taking_a_site_rejects_a_query_or_fragment(tmp_path: Path, command: tuple[str, ...]) -> None:
    redis = ("--redis", f"redis://127.0.0.1:{_closed_port()}/0") if command[0] == "distributed" else ()
    db = ("--db", str(tmp_path / "x.db")) if command[-1] in ("run", "writer") else ()
    for site in ("http://127.0.0.1:8000/?x=1", "http://127.0.0.1:8000#a"):
        out = defwatch(*command, *redis, *db, "--site", site, env=crawl_env(tmp_path), timeout=30)
        assert out.returncode == 2, (command, site, out.stderr[-1000:])
        assert f"--site: {site!r} has a " in out.stderr, out.stderr


def test_configured_site_with_credentials_exits_2_without_echoing_them(tmp_path: Path) -> None:
    db = tmp_path / "cred.db"
    before = _archive_with_one_run(db)
    site = f"http://user:{PASSWORD}@127.0.0.1:{_closed_port()}"
    config = tmp_path / "site.toml"
    config.write_text(f'site = "{site}"\n', encoding="utf-8")
    for env in (crawl_env(tmp_path, DEFWATCH_SITE=site), crawl_env(tmp_path, DEFWATCH_CONFIG=str(config))):
        out = defwatch("crawl", "--db", str(db), "--mode", "discover", env=env, timeout=60)
        assert out.returncode == 2, out.stderr[-1000:]
        assert "must not carry credentials" in out.stderr and "***@127.0.0.1" in out.stderr
        assert not leaks(out.stdout + out.stderr)
    assert query(db, "SELECT * FROM runs") == before
