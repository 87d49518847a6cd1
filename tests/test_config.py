"""Configuration: defaults, file and environment precedence, strict errors, the init template."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from core.config import (
    SECTIONS,
    AlertConfig,
    Config,
    ConfigError,
    CrawlConfig,
    JobConfig,
    MonitorConfig,
    RevisitConfig,
    SmtpConfig,
    cron_trigger,
    is_valid_address,
    load_config,
    render_init_template,
)

UTC = dt.UTC


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "defwatch.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def error_for(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    return str(info.value)


# ---------------------------------------------------------------- defaults and resolution


def test_defaults_without_file_or_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config == Config()
    assert config.source is None
    assert config.db == "./defwatch.db" and config.site == "https://www.war.gov"
    assert config.smtp == SmtpConfig(host="localhost", port=25, security="none", user=None, password=None)
    assert config.crawl.feeds == [1, 9, 400, 800]
    assert config.crawl.max_response_bytes == 20 * 1024 * 1024
    assert [(j.name, j.mode, j.interval_minutes, j.cron) for j in config.jobs] == [
        ("frontier", "frontier", 5.0, None),
        ("flush", "flush", 10.0, None),
    ]


def test_default_lists_are_not_shared():
    a, b = Config(), Config()
    a.alerts.recipients.append("x@example.org")
    a.crawl.feeds.append(5)
    a.jobs.pop()
    assert b.alerts.recipients == [] and b.crawl.feeds == [1, 9, 400, 800] and len(b.jobs) == 2


def test_implicit_defwatch_toml_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, 'db = "cwd.db"\n')
    config = load_config(env={})
    assert config.db == "cwd.db" and config.source == "defwatch.toml"


def test_defwatch_config_env_chooses_file_and_explicit_path_beats_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, 'db = "implicit.db"\n')
    via_env = tmp_path / "env.toml"
    via_env.write_text('db = "env.db"\n')
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('db = "explicit.db"\n')
    assert load_config(env={"DEFWATCH_CONFIG": str(via_env)}).db == "env.db"
    assert load_config(str(explicit), env={"DEFWATCH_CONFIG": str(via_env)}).db == "explicit.db"
    assert load_config(str(explicit), env={}).source == str(explicit)


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found$"):
        load_config(str(tmp_path / "nope.toml"), env={})
    with pytest.raises(ConfigError, match=r"gone\.toml: config file not found \(from DEFWATCH_CONFIG\)"):
        load_config(env={"DEFWATCH_CONFIG": str(tmp_path / "gone.toml")})


# ---------------------------------------------------------------- file values and env overrides

FULL_FILE = """
    db = "/srv/defwatch/archive.db"
    site = "http://127.0.0.1:8000/"

    [smtp]
    host = "mail.example.org"
    port = 587
    security = "starttls"
    user = "bot"
    timeout = 5

    [alerts]
    sender = "Defwatch <defwatch@example.org>"
    recipients = ["desk@example.org", "b@example.org"]
    operator_recipients = ["ops@example.org"]
    immediate_removals = true
    max_attempts = 3
    retry_base_seconds = 2

    [crawl]
    polite = false
    concurrency_per_host = 16
    download_delay = 0
    feeds = [1]
    max_pages = 50

    [revisit]
    fresh_days = 2
    recent_interval_hours = 12

    [monitor]
    removal_confirm_runs = 3
    block_threshold = 0.25

    [[jobs]]
    name = "quick"
    mode = "discover"
    interval_minutes = 5
    max_pages = 10

    [[jobs]]
    name = "weekly"
    mode = "full"
    cron = "30 4 * * 0"
    misfire_grace_seconds = 3600
"""


def test_file_values_are_read_and_typed(tmp_path):
    config = load_config(write(tmp_path, FULL_FILE), env={})
    assert config.db == "/srv/defwatch/archive.db"
    assert config.site == "http://127.0.0.1:8000"  # trailing slash dropped
    assert config.smtp == SmtpConfig("mail.example.org", 587, "starttls", "bot", None, 5.0)
    assert isinstance(config.smtp.timeout, float)
    assert config.alerts == AlertConfig(
        sender="Defwatch <defwatch@example.org>", recipients=["desk@example.org", "b@example.org"],
        operator_recipients=["ops@example.org"], immediate_removals=True, max_attempts=3,
        retry_base_seconds=2.0,
    )
    assert config.crawl == CrawlConfig(polite=False, concurrency_per_host=16, download_delay=0.0,
                                       feeds=[1], max_pages=50)
    assert config.revisit == RevisitConfig(fresh_days=2, recent_interval_hours=12.0)
    assert config.monitor == MonitorConfig(removal_confirm_runs=3, block_threshold=0.25)
    assert config.jobs == [
        JobConfig("quick", "discover", interval_minutes=5.0, max_pages=10),
        JobConfig("weekly", "full", cron="30 4 * * 0", misfire_grace_seconds=3600),
    ]


ENV_CASES = [
    ("DEFWATCH_DB", "/tmp/other.db", lambda c: c.db, "/tmp/other.db"),
    ("DEFWATCH_SITE", "https://www.defense.gov", lambda c: c.site, "https://www.defense.gov"),
    ("DEFWATCH_SMTP_HOST", "smtp.env.example", lambda c: c.smtp.host, "smtp.env.example"),
    ("DEFWATCH_SMTP_PORT", " 465 ", lambda c: c.smtp.port, 465),
    ("DEFWATCH_SMTP_SECURITY", "SSL", lambda c: c.smtp.security, "ssl"),
    ("DEFWATCH_SMTP_USER", "envuser", lambda c: c.smtp.user, "envuser"),
    ("DEFWATCH_SMTP_PASSWORD", " s3cret pass ", lambda c: c.smtp.password, " s3cret pass "),
    ("DEFWATCH_ALERT_FROM", "env@example.org", lambda c: c.alerts.sender, "env@example.org"),
    ("DEFWATCH_ALERT_TO", "a@example.org, b@example.org,,", lambda c: c.alerts.recipients,
     ["a@example.org", "b@example.org"]),
    ("DEFWATCH_OPERATOR_TO", "oncall@example.org, Ops <o2@example.org>", lambda c: c.alerts.operator_recipients,
     ["oncall@example.org", "Ops <o2@example.org>"]),
]


@pytest.mark.parametrize(("name", "value", "get", "expected"), ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_each_env_var_overrides_the_file(tmp_path, name, value, get, expected):
    path = write(tmp_path, FULL_FILE)
    from_file = load_config(path, env={})
    assert get(from_file) != expected
    config = load_config(path, env={name: value})
    assert get(config) == expected
    # everything else is still the file's
    assert dataclasses.replace(config, smtp=from_file.smtp, alerts=from_file.alerts,
                               db=from_file.db, site=from_file.site) == from_file


@pytest.mark.parametrize(("name", "value", "get", "expected"), ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_each_env_var_without_a_file(tmp_path, monkeypatch, name, value, get, expected):
    monkeypatch.chdir(tmp_path)
    assert get(load_config(env={name: value})) == expected


def test_empty_env_values_count_as_unset(tmp_path):
    path = write(tmp_path, FULL_FILE)
    config = load_config(path, env={"DEFWATCH_SMTP_HOST": "", "DEFWATCH_ALERT_TO": "  ",
                                    "DEFWATCH_SMTP_PASSWORD": ""})
    assert config.smtp.host == "mail.example.org"
    assert config.alerts.recipients == ["desk@example.org", "b@example.org"]
    assert config.smtp.password is None


def test_load_config_reads_os_environ_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEFWATCH_DB", "/from/os/environ.db")
    assert load_config().db == "/from/os/environ.db"


# ---------------------------------------------------------------- the password


def test_password_only_from_env(tmp_path):
    path = write(tmp_path, '[smtp]\nuser = "bot"\n')
    assert load_config(path, env={}).smtp.password is None
    assert load_config(path, env={"DEFWATCH_SMTP_PASSWORD": "hunter2"}).smtp.password == "hunter2"


def test_password_in_file_is_refused_with_a_clear_message(tmp_path):
    message = error_for(tmp_path, '[smtp]\nuser = "bot"\npassword = "hunter2"\n',
                        env={"DEFWATCH_SMTP_PASSWORD": "x"})
    assert message.startswith(str(tmp_path / "defwatch.toml") + ": smtp.password: ")
    assert "DEFWATCH_SMTP_PASSWORD" in message
    assert "hunter2" not in message


def test_redacted_never_contains_the_password():
    config = Config(smtp=SmtpConfig(user="bot", password="hunter2-secret"))
    data = config.redacted()
    assert "hunter2-secret" not in repr(data)
    assert "hunter2-secret" not in repr(config)
    assert data["smtp"]["password"] == "<redacted>"
    assert data["smtp"]["user"] == "bot"
    assert data["jobs"][0] == {"name": "frontier", "mode": "frontier", "interval_minutes": 5.0, "cron": None,
                               "max_pages": 0, "misfire_grace_seconds": 300}
    assert set(data) == {f.name for f in dataclasses.fields(Config)}
    assert Config().redacted()["smtp"]["password"] is None


# ---------------------------------------------------------------- errors

BAD_FILES = [
    # (file text, env, expected message after "<file>: ")
    ('dbb = "x"\n', {}, "dbb: unknown setting; did you mean 'db'?"),
    ('[smtp]\nhots = "x"\n', {}, "smtp.hots: unknown setting; did you mean 'host'?"),
    ('[crawls]\npolite = true\n', {}, "crawls: unknown setting; did you mean 'crawl'?"),
    ('smtp = "mail"\n', {}, "smtp: expected a table [smtp], got string 'mail'"),
    ('[smtp]\nport = "25"\n', {}, "smtp.port: expected an integer, got string '25'"),
    ('[smtp]\nport = 25.5\n', {}, "smtp.port: expected an integer, got number 25.5"),
    ('[crawl]\npolite = "yes"\n', {}, "crawl.polite: expected true or false, got string 'yes'"),
    ('[crawl]\nconcurrency_per_host = true\n', {}, "crawl.concurrency_per_host: expected an integer, got boolean"),
    ('[crawl]\nfeeds = 1\n', {}, "crawl.feeds: expected a list of an integer, got integer 1"),
    ('[crawl]\nfeeds = [1, "9"]\n', {}, "crawl.feeds[1]: expected an integer, got string '9'"),
    ('[alerts]\nrecipients = "a@example.org"\n', {}, "alerts.recipients: expected a list of a string"),
    ('[smtp]\nsecurity = "tls"\n', {}, "smtp.security: expected one of none, starttls, ssl, got 'tls'"),
    ('[smtp]\nport = 0\n', {}, "smtp.port: expected a port from 1 to 65535, got 0"),
    ('[smtp]\nport = 70000\n', {}, "smtp.port: expected a port from 1 to 65535, got 70000"),
    ('[alerts]\nsender = "not an address"\n', {}, "alerts.sender: expected an email address"),
    ('[alerts]\nrecipients = ["ok@example.org", "bad@"]\n', {}, "alerts.recipients[1]: expected an email address"),
    ('[alerts]\noperator_recipients = ["a@example.org, b@example.org"]\n', {},
     "alerts.operator_recipients[0]: expected an email address"),
    ('site = "www.war.gov"\n', {}, "site: expected a site root like 'https://www.war.gov'"),
    ('site = "https://www.war.gov/News/"\n', {}, "site: expected a site root"),
    ('[monitor]\nblock_threshold = 1.5\n', {}, "monitor.block_threshold: expected a share from 0 to 1, got 1.5"),
    ('[crawl]\nmax_pages = -1\n', {}, "crawl.max_pages: expected a value >= 0, got -1"),
    ('[[jobs]]\nname = "j"\nmode = "discover"\ninterval_minutes = 5\ncron = "* * * * *"\n', {},
     "jobs[0]: job 'j' needs exactly one of interval_minutes or cron"),
    ('[[jobs]]\nname = "j"\nmode = "discover"\n', {}, "jobs[0]: job 'j' needs exactly one of interval_minutes or cron"),
    ('[[jobs]]\nname = "j"\nmode = "discover"\ncron = "61 3 * * *"\n', {}, "jobs[0].cron: expected a crontab"),
    ('[[jobs]]\nname = "j"\nmode = "discover"\ncron = "0 3 * *"\n', {}, "jobs[0].cron: expected a crontab"),
    ('[[jobs]]\nname = "j"\nmode = "discover"\ncron = "0 3 1 * 1"\n', {}, "jobs[0].cron: expected a crontab"),
    ('[[jobs]]\nname = "j"\nmode = "crawl"\ninterval_minutes = 5\n', {},
     "jobs[0].mode: expected one of discover, revisit, sweep, full, frontier, flush, got 'crawl'"),
    ('[[jobs]]\nmode = "discover"\ninterval_minutes = 5\n', {}, "jobs[0].name: missing (required)"),
    ('[[jobs]]\nname = "j"\nmode = "discover"\ninterval_minutes = 0\n', {},
     "jobs[0].interval_minutes: expected a number of minutes > 0, got 0.0"),
    ('[[jobs]]\nname = "j"\nmode = "discover"\nevery = 5\n', {}, "jobs[0].every: unknown setting"),
    ('[[jobs]]\nname = "a"\nmode = "discover"\ninterval_minutes = 1\n'
     '[[jobs]]\nname = "a"\nmode = "flush"\ninterval_minutes = 1\n', {}, "jobs[1].name: job name 'a' is used twice"),
    ('jobs = 3\n', {}, "jobs: expected [[jobs]] tables, got integer 3"),
    ('db = [\n', {}, "not valid TOML: "),
]


@pytest.mark.parametrize(("text", "env", "expected"), BAD_FILES, ids=[b[2][:40] for b in BAD_FILES])
def test_bad_file_values_name_file_key_and_expectation(tmp_path, text, env, expected):
    message = error_for(tmp_path, text, env)
    assert message.startswith(f"{tmp_path / 'defwatch.toml'}: {expected}"), message
    assert "\n" not in message and "Traceback" not in message


BAD_ENV = [
    ("DEFWATCH_SMTP_PORT", "abc", "environment variable DEFWATCH_SMTP_PORT: smtp.port: expected an integer, got 'abc'"),
    ("DEFWATCH_SMTP_PORT", "99999", "environment variable DEFWATCH_SMTP_PORT: smtp.port: expected a port from 1 to "
                                    "65535, got 99999"),
    ("DEFWATCH_SMTP_SECURITY", "tls", "environment variable DEFWATCH_SMTP_SECURITY: smtp.security: expected one of "
                                      "none, starttls, ssl, got 'tls'"),
    ("DEFWATCH_ALERT_TO", "a@example.org,nobody", "environment variable DEFWATCH_ALERT_TO: alerts.recipients[1]: "
                                                  "expected an email address"),
    ("DEFWATCH_OPERATOR_TO", "x", "environment variable DEFWATCH_OPERATOR_TO: alerts.operator_recipients[0]: "
                                  "expected an email address"),
    ("DEFWATCH_ALERT_FROM", "a@b\r\nBcc: x@y", "environment variable DEFWATCH_ALERT_FROM: alerts.sender: "
                                               "expected an email address"),
    ("DEFWATCH_SITE", "ftp://x", "environment variable DEFWATCH_SITE: site: expected a site root"),
]


@pytest.mark.parametrize(("name", "value", "expected"), BAD_ENV, ids=[f"{b[0]}={b[1]!r}" for b in BAD_ENV])
def test_bad_env_values_name_the_variable(tmp_path, monkeypatch, name, value, expected):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(env={name: value})
    assert str(info.value).startswith(expected), str(info.value)


def test_env_error_names_the_variable_even_when_a_file_sets_the_key(tmp_path):
    path = write(tmp_path, "[smtp]\nport = 587\n")
    with pytest.raises(ConfigError, match=r"^environment variable DEFWATCH_SMTP_PORT: smtp\.port: .*0$"):
        load_config(path, env={"DEFWATCH_SMTP_PORT": "0"})


def test_unreadable_file_is_a_config_error(tmp_path):
    path = tmp_path / "defwatch.toml"
    path.write_bytes(b'db = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match=r"defwatch\.toml: not valid TOML"):
        load_config(str(path), env={})
    with pytest.raises(ConfigError, match=r"config file not found"):
        load_config(str(tmp_path), env={})  # a directory is not a config file


@pytest.mark.parametrize("addr", ["a@b", "defwatch@localhost", "x.y+tag@mail.example.org",
                                  "Desk <desk@example.org>", "  padded@example.org "])
def test_valid_addresses(addr):
    assert is_valid_address(addr)


@pytest.mark.parametrize("addr", ["", "plain", "@example.org", "a@", "a b@example.org", "a@b,c@d",
                                  "Desk <desk@example.org", "x@y\nBcc: z@w", "a@-bad-"])
def test_invalid_addresses(addr):
    assert not is_valid_address(addr)


# ---------------------------------------------------------------- crontab meaning


def fires(expr: str, start: dt.datetime, count: int) -> list[dt.datetime]:
    trigger = cron_trigger(expr, timezone=UTC)
    out, prev, now = [], None, start
    for _ in range(count):
        nxt = trigger.get_next_fire_time(prev, now)
        out.append(nxt)
        prev, now = nxt, nxt + dt.timedelta(seconds=1)
    return out


MONDAY = dt.datetime(2024, 1, 1, tzinfo=UTC)  # 2024-01-01 was a Monday


@pytest.mark.parametrize(("expr", "weekdays"), [
    ("0 3 * * 0", {"Sun"}), ("0 3 * * 7", {"Sun"}), ("0 3 * * 1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
    ("0 3 * * */2", {"Sun", "Tue", "Thu", "Sat"}), ("0 3 * * 5-7", {"Fri", "Sat", "Sun"}),
    ("0 3 * * sat,sun", {"Sat", "Sun"}), ("0 3 * * *", {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}),
])
def test_cron_weekdays_follow_crontab_not_apscheduler(expr, weekdays):
    times = fires(expr, MONDAY, 14)
    assert {t.strftime("%a") for t in times} == weekdays
    assert all((t.hour, t.minute) == (3, 0) for t in times)


def test_cron_macros_and_default_sweep():
    assert fires("@daily", MONDAY, 2) == [MONDAY, MONDAY + dt.timedelta(days=1)]
    assert fires("@weekly", MONDAY, 1) == [dt.datetime(2024, 1, 7, tzinfo=UTC)]
    assert fires("0 3 * * *", MONDAY, 1) == [MONDAY.replace(hour=3)]


# ---------------------------------------------------------------- init template


def test_init_template_loads_to_exactly_the_defaults(tmp_path):
    path = write(tmp_path, render_init_template())
    config = load_config(path, env={})
    assert config.source == path
    assert dataclasses.replace(config, source=None) == Config()


def test_init_template_lists_every_setting(tmp_path):
    data = tomllib.loads(render_init_template())
    assert set(data) == {"db", "site", *SECTIONS, "jobs"}
    for name, cls in SECTIONS.items():
        expected = {f.name for f in dataclasses.fields(cls)} - {"password", "user"}
        assert set(data[name]) == expected, name
    text = render_init_template()
    assert re.search(r"^# user = ", text, re.M)  # optional: shown commented out
    assert "DEFWATCH_SMTP_PASSWORD" in text and not re.search(r"^password\s*=", text, re.M)
    for job in data["jobs"]:
        assert set(job) | {"cron", "interval_minutes"} == {f.name for f in dataclasses.fields(JobConfig)}
    for var in ("DEFWATCH_DB", "DEFWATCH_SITE", "DEFWATCH_CONFIG", "DEFWATCH_SMTP_HOST", "DEFWATCH_SMTP_PORT",
                "DEFWATCH_SMTP_SECURITY", "DEFWATCH_SMTP_USER", "DEFWATCH_ALERT_FROM", "DEFWATCH_ALERT_TO",
                "DEFWATCH_OPERATOR_TO"):
        assert var in text


def test_template_is_package_data():
    import core

    assert (Path(core.__file__).parent / "init_template.toml").read_text(encoding="utf-8") \
        == render_init_template()
