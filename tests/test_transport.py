"""The two transports (Scrapy's client, a browser's TLS fingerprint) and ``defwatch doctor``.

Real ``defwatch crawl`` / ``defwatch doctor`` child processes against the sample site over HTTP and
over HTTPS (a self-signed certificate made here with ``cryptography``). The sample site's
``browsers_only`` bot wall answers non-browser clients with Akamai's exact 403 "Access Denied" page,
as war.gov's edge does to plain HTTP clients.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import sqlite3
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import Config, ConfigError, CrawlConfig, load_config
from crawler import transport
from samplesite import SampleSite
from tests.conftest import ROOT, crawl_env, run_crawl

pytest.importorskip("curl_cffi", reason="the impersonate transport needs the [impersonate] extra")

CONTACT = "ops@example.org"
BOMBED, OVERSIZE = 3610656, 3599817
BLOCKED = 3386221


def query(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.fixture(params=["http", "https"])
def served(request, tls_context) -> Iterator[SampleSite]:
    site = SampleSite()
    site.start(tls=tls_context if request.param == "https" else None)
    try:
        assert site.base_url.startswith(request.param + "://")
        yield site
    finally:
        site.stop()


def configure(tmp_path: Path, name: str, *extra: str) -> dict[str, str]:
    lines = ["[monitor]", "removal_confirm_runs = 2", "[crawl]", f'transport = "{name}"', f'contact = "{CONTACT}"',
             "max_response_bytes = 2000000", *extra]
    (tmp_path / "defwatch-test.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return crawl_env(tmp_path)


def story_outcomes(db: Path, run_id: int) -> dict[int, tuple[str, str | None]]:
    rows = query(db, "SELECT subject_id, outcome, error FROM fetches WHERE run_id = ? AND page_type = 'story'",
                 (run_id,))
    return {subject: (outcome, error) for subject, outcome, error in rows}


@pytest.mark.parametrize("name", ["scrapy", "impersonate"])
def test_each_transport_crawls_the_site_politely(served, tmp_path, name):
    """A full crawl archives every page; robots.txt is read, every request names the operator (From),
    size caps hold (an oversize body and a gzip bomb are errors, never versions), and the next crawl
    is conditional (304s)."""
    site, db = served, tmp_path / "archive.db"
    env = configure(tmp_path, name)
    site.misbehave("gzip_bomb", BOMBED, size=20_000_000)
    site.misbehave("oversize", OVERSIZE, size=3_000_000)
    first = run_crawl(db, site.base_url, env=env)
    assert first.returncode == 0, first.stderr
    archived = {s for (s,) in query(db, "SELECT id FROM stories")}
    assert archived == set(site.content.stories) - {BOMBED, OVERSIZE}
    outcomes = story_outcomes(db, 1)
    for story in (BOMBED, OVERSIZE):
        assert outcomes[story][0] == "error" and re.search("max size|DOWNLOAD_MAXSIZE", outcomes[story][1]), \
            outcomes[story]
    requests = site.requests
    assert any(r.path == "/robots.txt" for r in requests)
    assert all(r.headers.get("From") == CONTACT for r in requests), "every request names the operator"
    browser_hints = {any(k.lower() == "sec-ch-ua" for k in r.headers) for r in requests}
    assert browser_hints == {name == "impersonate"}  # the transport really is the one configured
    assert all("defwatch/" in r.headers.get("User-Agent", "") for r in requests)  # an honest User-Agent either way

    site.behave()
    site.clear_requests()
    second = run_crawl(db, site.base_url, env=env)
    assert second.returncode == 0, second.stderr
    outcomes = story_outcomes(db, 2)
    assert {s for s, (o, _) in outcomes.items() if o == "not_modified"} == archived
    assert {s for s, (o, _) in outcomes.items() if o == "ok"} == {BOMBED, OVERSIZE}
    assert all(r.headers.get("If-None-Match") or r.headers.get("If-Modified-Since")
               for r in site.requests if "/Article/" in r.path and f"/{BOMBED}/" not in r.path
               and f"/{OVERSIZE}/" not in r.path)


@pytest.mark.parametrize("name", ["scrapy", "impersonate"])
def test_the_akamai_block_page_is_a_block_never_a_version_nor_a_removal(served, tmp_path, name):
    site, db = served, tmp_path / "archive.db"
    env = configure(tmp_path, name)
    assert run_crawl(db, site.base_url, env=env).returncode == 0
    site.block(BLOCKED)  # 403, Server: AkamaiGHost, <title>Access Denied</title>, Reference #18....
    for _ in range(2):  # two runs: a 404 seen twice would be a confirmed removal; a block never is
        assert run_crawl(db, site.base_url, env=env).returncode == 0
    rows = query(db, "SELECT outcome, status, error FROM fetches WHERE subject_id = ? AND run_id > 1", (BLOCKED,))
    assert rows == [("blocked", 403, "access_denied")] * 2
    assert query(db, "SELECT COUNT(*) FROM story_versions WHERE story_id = ?", (BLOCKED,)) == [(1,)]
    assert query(db, "SELECT status FROM stories WHERE id = ?", (BLOCKED,)) == [("live",)]
    assert query(db, "SELECT kind FROM events WHERE subject_id = ?", (BLOCKED,)) == []


def doctor(site: str, env: dict[str, str]) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "defwatch", "doctor", "--site", site, "--json"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_doctor_names_the_akamai_block_and_recommends_the_transport_that_gets_in(served, tmp_path):
    served.browsers_only()
    status, report = doctor(served.base_url, configure(tmp_path, "scrapy"))
    by_name = {t["transport"]: t for t in report["transports"]}
    assert status == 3 and report["exit_status"] == 3  # the configured transport is blocked
    assert by_name["scrapy"]["verdict"] == "blocked"
    refused = [p for p in by_name["scrapy"]["probes"] if p["result"] == "block"]
    assert [p["probe"] for p in refused] == ["robots", "feed", "listing"]
    assert all(p["status"] == 403 and p["block"].startswith("Akamai Access Denied (Reference #18.") for p in refused)
    assert 'transport = "impersonate"' in by_name["scrapy"]["advice"]
    got_in = by_name["impersonate"]
    assert got_in["verdict"] == "content"
    assert [(p["probe"], p["status"], p["result"]) for p in got_in["probes"]] == [
        (probe, 200, "content") for probe in ("robots", "feed", "listing", "story", "photo")]
    assert "/Article/" in got_in["probes"][3]["url"] and "/igphoto/" in got_in["probes"][4]["url"]
    assert 'set [crawl] transport = "impersonate"' in report["recommendation"]

    status, report = doctor(served.base_url, configure(tmp_path, "impersonate"))
    assert status == 0 and report["recommendation"].startswith('keep transport = "impersonate"')


def test_doctor_text_and_exit_status_when_every_transport_gets_in_or_none_answers(tmp_path):
    env = configure(tmp_path, "scrapy")
    with SampleSite() as site:
        proc = subprocess.run([sys.executable, "-m", "defwatch", "doctor", "--site", site.base_url], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("advice: the site lets this transport in") == 2
    assert 'recommendation: keep transport = "scrapy"' in proc.stdout
    status, report = doctor(site.base_url, env)  # the site is gone: nothing listens on the port any more
    assert status == 1
    assert {t["verdict"] for t in report["transports"]} == {"error"}
    assert "no transport reached the site" in report["recommendation"]


def test_an_impersonate_transport_that_cannot_run_here_fails_before_the_run(tmp_path, monkeypatch):
    from crawler.run import transport_values

    monkeypatch.setattr(transport, "_MISSING", ImportError("No module named 'curl_cffi'"))
    config = Config(site="https://www.war.gov", crawl=CrawlConfig(transport="impersonate"))
    with pytest.raises(ConfigError, match=r"pip install 'defwatch\[impersonate\]'"):
        transport_values(config)
    assert transport_values(Config(site="https://www.war.gov")) == {}  # scrapy needs nothing extra


@pytest.mark.parametrize(("key", "value"), [("transport", '"curl"'), ("contact", '"not an address"'),
                                            ("impersonate", '"Chrome 120!"')])
def test_bad_transport_settings_are_refused_by_name(tmp_path, key, value):
    path = tmp_path / "bad.toml"
    path.write_text(f"[crawl]\n{key} = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"crawl.{key}"):
        load_config(str(path), env={})
