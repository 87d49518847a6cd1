"""Configuration: a TOML file (``defwatch.toml``) overridden by ``DEFWATCH_*`` environment variables.

Why this shape:
- The dataclasses below are the contract other modules code against; the file mirrors them one to
  one (top-level ``db``/``site``, one table per section, ``[[jobs]]``), so every setting has exactly
  one name and ``defwatch init`` can write all of them with their defaults.
- Everything is checked here, once, so a daemon never dies at 03:00 on a typo: every problem becomes
  a ``ConfigError`` naming where the value came from (file or environment variable), the key and
  what was expected.
- The SMTP password is accepted only from ``DEFWATCH_SMTP_PASSWORD``. Config files get copied,
  committed and pasted into bug reports; a password key in the file is an error, not a warning, and
  ``Config.redacted()`` (for logs and ``runs.stats``) never contains it.

Relative paths (``db``) are relative to the directory defwatch is started from, exactly like
``--db`` on the command line; a daemon should use an absolute path.

Requires Python 3.11 for ``tomllib``; on 3.10 the ``tomli`` backport is used if installed.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from importlib import resources
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from core.constants import (
    CONCURRENCY_PER_HOST,
    CRAWL_MODES,
    DEFAULT_BROWSER,
    DEFAULT_FEEDS,
    DEFAULT_SITE,
    DOWNLOAD_DELAY_SECONDS,
    DOWNLOAD_TIMEOUT_SECONDS,
    MAX_RESPONSE_BYTES,
    SECURITY_MODES,
    STORY_KINDS,
    SUBSCRIBER_EVENT_KINDS,
    TRANSPORTS,
    USER_AGENT,
)

if typing.TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

JOB_MODES = (*CRAWL_MODES, "flush")
CADENCES = ("each_run", "hourly", "daily")
# A subscriber's ``at`` per cadence: its pattern and what the error message asks for.
AT_FORMATS = {
    "daily": (r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})", "a time of day from 00:00 to 23:59 like '07:00'"),
    "hourly": (r":(?P<minute>[0-9]{2})", "minutes past the hour from :00 to :59 like ':15'"),
}
DEFAULT_CONFIG_FILE = "defwatch.toml"


class ConfigError(ValueError):
    """Bad configuration; the message names the source, the key and what is expected."""


@dataclass
class SmtpConfig:
    host: str = "localhost"
    port: int = 25
    security: str = "none"  # none | starttls | ssl
    user: str | None = None
    # Only ever from DEFWATCH_SMTP_PASSWORD; repr=False keeps it out of reprs in logs and tracebacks.
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0


@dataclass
class AlertConfig:
    sender: str = "defwatch@localhost"
    recipients: list[str] = field(default_factory=list)
    operator_recipients: list[str] = field(default_factory=list)  # crawl failures, blocking, parser health
    immediate_removals: bool = False
    max_attempts: int = 10
    retry_base_seconds: float = 60.0
    site_name: str = "war.gov"


@dataclass
class SubscriberConfig:
    """One reader of the digest and what they want from it (``[[subscribers]]``).

    Empty ``events``, ``sections`` or ``keywords`` mean "all". ``cadence`` says when their digest
    goes: after each run with changes, at most hourly, or once a day, each gathering everything
    since their last one. ``DEFWATCH_ALERT_TO`` / ``[alerts] recipients`` stay what they were:
    everything, after each run.

    ``at`` pins the digest to a time on the reader's clock, so it does not drift later by up to a run's
    interval each day, nor depend on when the daemon started: ``"07:00"`` for ``daily`` (a time of
    day), ``":15"`` for ``hourly`` (minutes past the hour), in ``timezone`` (an IANA name, e.g.
    ``"America/New_York"``; UTC by default), so 07:00 stays 07:00 across daylight saving changes.
    The digest then goes with the first run at or after that time; empty ``at``: a day or an hour
    after the last digest, as before.
    """

    address: str
    events: list[str] = field(default_factory=list)  # event kinds, e.g. ["story_new", "story_removed"]
    sections: list[str] = field(default_factory=list)  # story kinds, e.g. ["release", "contract"]
    keywords: list[str] = field(default_factory=list)  # any of these words in the title, text or change
    cadence: str = "each_run"  # each_run | hourly | daily
    at: str = ""  # daily: "HH:MM"; hourly: ":MM"; empty: a day (an hour) after the last digest
    timezone: str = "UTC"  # the IANA time zone ``at`` is read in


@dataclass
class DaemonConfig:
    crawl_at_start: bool = True  # run one crawl job as soon as the daemon starts, not one interval later
    start_job: str = ""  # which job; empty: the first crawl job in [[jobs]]


@dataclass
class CrawlConfig:
    polite: bool = True  # False for the local sample site: no AutoThrottle, high concurrency
    concurrency_per_host: int = CONCURRENCY_PER_HOST
    download_delay: float = DOWNLOAD_DELAY_SECONDS
    timeout: float = float(DOWNLOAD_TIMEOUT_SECONDS)
    user_agent: str = USER_AGENT
    max_pages: int = 0  # 0 = no cap
    discover_listing_pages: int = 3
    feeds: list[int] = field(default_factory=lambda: list(DEFAULT_FEEDS))  # ArticleCS ContentType values
    max_response_bytes: int = MAX_RESPONSE_BYTES
    # scrapy: Scrapy's HTTP client; impersonate: a browser's TLS fingerprint (curl_cffi), for a site whose
    # bot wall refuses plain clients by their TLS handshake (`defwatch doctor` tells which one gets in).
    transport: str = "scrapy"
    impersonate: str = DEFAULT_BROWSER
    contact: str = ""  # the operator's address, sent as the From header of every request


@dataclass
class RevisitConfig:
    fresh_days: int = 7
    fresh_interval_hours: float = 6.0
    recent_days: int = 90
    recent_interval_hours: float = 72.0
    old_interval_hours: float = 24.0 * 30


@dataclass
class MonitorConfig:
    removal_confirm_runs: int = 2
    removal_delay_hours: float = 0.0
    parser_health_threshold: float = 0.9
    block_threshold: float = 0.5


@dataclass
class WaybackConfig:
    """``defwatch import --wayback``: where the Wayback Machine is and how politely to ask it."""

    url: str = "https://web.archive.org"  # captures are read from {url}/web/{timestamp}id_/{original URL}
    cdx_url: str = ""  # the CDX API; empty: {url}/cdx/search/cdx
    delay: float = 2.0  # seconds between two requests to the Wayback service
    retries: int = 4  # tries of a request answered 429 or 5xx (waiting its Retry-After) before giving up
    max_wait: float = 300.0  # the longest single wait a Retry-After may ask for
    timeout: float = 60.0

    @property
    def cdx(self) -> str:
        return self.cdx_url or f"{self.url.rstrip('/')}/cdx/search/cdx"


@dataclass
class FrontierConfig:
    """The daemon's budgeted frontier (``--mode frontier`` slices); see ``monitor.frontier``.

    The defaults are polite for the live site: 1,800 requests an hour is 0.5 a second on average."""

    requests_per_hour: float = 1800.0
    burst: int = 300  # most requests one slice may spend, and the most over any burst/rate window
    slice_minutes: float = 5.0  # one run per slice: events and mails come at its end
    index_interval_minutes: float = 30.0  # feeds and first listing pages, never behind other work
    verify_days: float = 30.0  # every archived page fetched at least once in this period
    # ...but a photo page whose caption a live story shows within this one (0: verify_days): the story's
    # revisits already see its caption and the listing checks its story's removal and return, so the
    # longer period gives 6,700 requests a day to revisits (all edits p95 92 h -> 72 h at the live site's
    # size, bench/README.md); a change only the photo page shows (a photo removed without its story) waits
    # up to this long
    on_story_verify_days: float = 90.0
    # every listing page walked once in this period: a story gone from the site is a candidate within
    # two walks at most, so 1.5 days keeps removals under 3 days (10,000 listing pages: 6,700 requests a day)
    enumerate_days: float = 1.5
    # ...reading one listing page in this many (monitor.listings): a story gone from between two pages read
    # together changes the count of stories between them; the first walk of a kind reads every page
    listing_stride: int = 8
    fresh_days: float = 7.0  # pages this young are revisited at least every fresh_max_interval_hours
    fresh_max_interval_hours: float = 2.0
    min_interval_hours: float = 0.5
    prior_fresh_rate: float = 2.0  # expected changes a day at publication...
    prior_halflife_days: float = 1.0  # ...halving every this many days...
    prior_old_rate: float = 0.002  # ...down to this floor
    prior_weight: float = 4.0  # how many checks of history weigh as much as the age prior
    # share of the revisit budget spread evenly over the revisited pages, the rest by sqrt(rate): a year of
    # monthly checks sees most pages never change, yet they hold half the edits; spread evenly, this share
    # bounds every page's interval (days, not weeks) and with it the edits' p95 (monitor.frontier.census)
    even_share: float = 0.8
    retry_minutes: float = 60.0  # a blocked or failed fetch is tried again this much later


@dataclass
class JobConfig:
    name: str
    mode: str  # discover | revisit | sweep | full | flush
    interval_minutes: float | None = None
    cron: str | None = None  # crontab syntax: minute hour day-of-month month day-of-week
    max_pages: int = 0
    misfire_grace_seconds: int = 300


def default_jobs() -> list[JobConfig]:
    """The budgeted frontier in slices, mail every 10 min.

    The former defaults (discover every 30 min, revisit every 2 h, sweep nightly) still work as
    ``[[jobs]]``, but at the live site's size a nightly sweep of 400,000 pages never finishes at a
    polite rate and every discovery waits behind it; the frontier spends one budget by priority."""
    return [
        JobConfig(name="frontier", mode="frontier", interval_minutes=FrontierConfig.slice_minutes),
        JobConfig(name="flush", mode="flush", interval_minutes=10.0),
    ]


@dataclass
class Config:
    db: str = "./defwatch.db"
    site: str = DEFAULT_SITE
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    crawl: CrawlConfig = field(default_factory=CrawlConfig)
    revisit: RevisitConfig = field(default_factory=RevisitConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    wayback: WaybackConfig = field(default_factory=WaybackConfig)
    frontier: FrontierConfig = field(default_factory=FrontierConfig)
    jobs: list[JobConfig] = field(default_factory=default_jobs)
    subscribers: list[SubscriberConfig] = field(default_factory=list)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    source: str | None = None  # the file it was read from

    def redacted(self) -> dict[str, Any]:
        """A plain dict for logs and ``runs.stats``: the password is replaced by a marker."""
        data = dataclasses.asdict(self)
        data["smtp"]["password"] = "<redacted>" if self.smtp.password else None
        return data


SECTIONS: dict[str, type] = {
    "smtp": SmtpConfig,
    "alerts": AlertConfig,
    "crawl": CrawlConfig,
    "revisit": RevisitConfig,
    "monitor": MonitorConfig,
    "wayback": WaybackConfig,
    "frontier": FrontierConfig,
    "daemon": DaemonConfig,
}

# name -> (dotted key, kind); kind "list" means comma-separated addresses.
ENV_VARS: dict[str, tuple[str, str]] = {
    "DEFWATCH_DB": ("db", "str"),
    "DEFWATCH_SITE": ("site", "str"),
    "DEFWATCH_SMTP_HOST": ("smtp.host", "str"),
    "DEFWATCH_SMTP_PORT": ("smtp.port", "int"),
    "DEFWATCH_SMTP_SECURITY": ("smtp.security", "str"),
    "DEFWATCH_SMTP_USER": ("smtp.user", "str"),
    "DEFWATCH_SMTP_PASSWORD": ("smtp.password", "secret"),
    "DEFWATCH_ALERT_FROM": ("alerts.sender", "str"),
    "DEFWATCH_ALERT_TO": ("alerts.recipients", "list"),
    "DEFWATCH_OPERATOR_TO": ("alerts.operator_recipients", "list"),
    "DEFWATCH_WAYBACK_URL": ("wayback.url", "str"),
    "DEFWATCH_WAYBACK_CDX_URL": ("wayback.cdx_url", "str"),
}


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(path: str | None = None, env: Mapping[str, str] = os.environ) -> Config:
    """Defaults, then the file (explicit path, else $DEFWATCH_CONFIG, else ./defwatch.toml if it
    exists), then the environment; then validate the result as a whole."""
    source = resolve_config_path(path, env)
    origins = _Origins(source)
    config = _from_table(_read_toml(source), origins) if source else Config()
    config.source = source
    _apply_env(config, env, origins)
    _validate(config, origins)
    return config


def resolve_config_path(path: str | None, env: Mapping[str, str]) -> str | None:
    """An explicit or $DEFWATCH_CONFIG path must exist; the implicit ./defwatch.toml is optional."""
    explicit = path or env.get("DEFWATCH_CONFIG") or None
    if explicit:
        if not os.path.isfile(explicit):
            via = "" if path else " (from DEFWATCH_CONFIG)"
            raise ConfigError(f"{explicit}: config file not found{via}")
        return explicit
    return DEFAULT_CONFIG_FILE if os.path.isfile(DEFAULT_CONFIG_FILE) else None


def render_init_template() -> str:
    """The commented ``defwatch.toml`` that ``defwatch init`` writes: every setting at its default."""
    return resources.files("core").joinpath("init_template.toml").read_text(encoding="utf-8")


def _read_toml(source: str) -> dict[str, Any]:
    try:
        with open(source, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not valid TOML: the file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file: {exc.strerror or exc}") from None


class _Origins:
    """Remembers where each value came from so errors can point at the right file or variable."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self._by_key: dict[str, str] = {}

    def set(self, key: str, origin: str) -> None:
        self._by_key[key] = origin

    def error(self, key: str, problem: str) -> ConfigError:
        """Name where ``key`` (or the nearest table or list holding it) was set."""
        candidate, origin = key, None
        while candidate and origin is None:
            origin = self._by_key.get(candidate)
            candidate = re.sub(r"(\[\d+\]|\.[^.\[]+)$", "", candidate) if re.search(r"[.\[]", candidate) else ""
        return ConfigError(f"{origin or 'default configuration'}: {key}: {problem}")


def _from_table(data: dict[str, Any], origins: _Origins) -> Config:
    src = origins.source or "config"
    allowed = ["db", "site", *SECTIONS, "jobs", "subscribers"]
    _reject_unknown(data, allowed, "", src)
    kwargs: dict[str, Any] = {}
    for key in ("db", "site"):
        if key in data:
            kwargs[key] = _typed(data[key], str, key, src)
            origins.set(key, src)
    for name, cls in SECTIONS.items():
        if name in data:
            kwargs[name] = _build_section(cls, data[name], name, src, origins)
    if "jobs" in data:
        kwargs["jobs"] = _build_jobs(data["jobs"], src, origins)
    if "subscribers" in data:
        kwargs["subscribers"] = _build_tables(SubscriberConfig, data["subscribers"], "subscribers", src, origins)
    return Config(**kwargs)


def _build_section(cls: type, table: Any, name: str, src: str, origins: _Origins) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{src}: {name}: expected a table [{name}], got {_describe(table)}")
    if cls is SmtpConfig and "password" in table:
        raise ConfigError(
            f"{src}: smtp.password: the SMTP password must not be stored in the config file; "
            "remove it and set the environment variable DEFWATCH_SMTP_PASSWORD instead"
        )
    return _build(cls, table, name, src, origins, exclude=("password",))


def _build_jobs(value: Any, src: str, origins: _Origins) -> list[JobConfig]:
    return _build_tables(JobConfig, value, "jobs", src, origins)


def _build_tables(cls: type, value: Any, name: str, src: str, origins: _Origins) -> list[Any]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{src}: {name}: expected [[{name}]] tables, got {_describe(value)}")
    return [_build(cls, table, f"{name}[{i}]", src, origins) for i, table in enumerate(value)]


def _build(cls: type, table: dict[str, Any], prefix: str, src: str, origins: _Origins,
           exclude: tuple[str, ...] = ()) -> Any:
    """Type-check one table against a dataclass's annotations and construct it."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in exclude]
    _reject_unknown(table, names, prefix, src)
    origins.set(prefix, src)
    kwargs = {}
    for key, value in table.items():
        dotted = f"{prefix}.{key}"
        kwargs[key] = _typed(value, hints[key], dotted, src)
        origins.set(dotted, src)
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    for key in required:
        if key not in kwargs:
            raise ConfigError(f"{src}: {prefix}.{key}: missing (required)")
    return cls(**kwargs)


def _reject_unknown(table: dict[str, Any], allowed: list[str], prefix: str, src: str) -> None:
    for key in table:
        if key not in allowed:
            dotted = f"{prefix}.{key}" if prefix else key
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = f"[{prefix}]" if prefix and "[" not in prefix else (prefix or "the top level")
            raise ConfigError(
                f"{src}: {dotted}: unknown setting{hint} (valid in {where}: {', '.join(allowed)})"
            )


def _typed(value: Any, hint: Any, key: str, src: str) -> Any:
    """Check a TOML value against a field type; ints are accepted (and converted) for floats."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _typed(value, inner[0], key, src)
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{src}: {key}: expected a list of {_TYPE_NAMES[item]}, got {_describe(value)}")
        return [_typed(v, item, f"{key}[{i}]", src) for i, v in enumerate(value)]
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[hint]
    if not ok:
        raise ConfigError(f"{src}: {key}: expected {_TYPE_NAMES[hint]}, got {_describe(value)}")
    return float(value) if hint is float else value


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list",
            dict: "table"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


# ---------------------------------------------------------------------------------------------
# Environment


def _apply_env(config: Config, env: Mapping[str, str], origins: _Origins) -> None:
    """Environment beats the file. An empty variable counts as unset (compose files and systemd
    units often pass blank values for "not configured")."""
    for name, (key, kind) in ENV_VARS.items():
        raw = env.get(name)
        if raw is None or not raw.strip():
            continue
        origin = f"environment variable {name}"
        origins.set(key, origin)
        _set_key(config, key, _env_value(raw, kind, key, origin))


def _env_value(raw: str, kind: str, key: str, origin: str) -> Any:
    if kind == "secret":
        return raw  # passwords may legitimately start or end with spaces
    if kind == "list":
        return [part.strip() for part in raw.split(",") if part.strip()]
    if kind == "int":
        try:
            return int(raw.strip())
        except ValueError:
            raise ConfigError(f"{origin}: {key}: expected an integer, got {raw.strip()!r}") from None
    return raw.strip()


def _set_key(config: Config, key: str, value: Any) -> None:
    target: Any = config
    *path, last = key.split(".")
    for part in path:
        target = getattr(target, part)
    setattr(target, last, value)


# ---------------------------------------------------------------------------------------------
# Validation of values (after env, so variables are checked as strictly as the file)

_ADDR = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_NAMED_ADDR = re.compile(r"([^<>\",;@\r\n]*?)\s*<([^<>]+)>")


def is_valid_address(text: str) -> bool:
    """``user@host`` or ``Display Name <user@host>``; one address, nothing that could break a header."""
    text = text.strip()
    if not text or "\r" in text or "\n" in text:
        return False
    named = _NAMED_ADDR.fullmatch(text)
    return bool(_ADDR.fullmatch(named.group(2) if named else text))


def _validate(config: Config, origins: _Origins) -> None:
    _validate_top(config, origins)
    _validate_smtp(config.smtp, origins)
    _validate_alerts(config.alerts, origins)
    _validate_crawl(config.crawl, origins)
    _validate_revisit(config.revisit, origins)
    _validate_monitor(config.monitor, origins)
    _validate_wayback(config.wayback, origins)
    _validate_frontier(config.frontier, origins)
    _validate_jobs(config.jobs, origins)
    _validate_subscribers(config.subscribers, origins)
    _validate_daemon(config.daemon, config.jobs, origins)


def _check(ok: bool, origins: _Origins, key: str, problem: str) -> None:
    if not ok:
        raise origins.error(key, problem)


def _validate_top(config: Config, origins: _Origins) -> None:
    _check(bool(config.db.strip()), origins, "db", "expected a path to the archive file, got an empty string")
    parts = urlsplit(config.site)
    _check(
        parts.scheme in ("http", "https") and bool(parts.hostname) and parts.path in ("", "/")
        and not parts.query and not parts.fragment,
        origins, "site", f"expected a site root like 'https://www.war.gov', got {config.site!r}",
    )
    config.site = config.site.rstrip("/")


def _validate_wayback(wayback: WaybackConfig, origins: _Origins) -> None:
    for key in ("url", "cdx_url"):
        value = getattr(wayback, key)
        parts = urlsplit(value)
        _check((key == "cdx_url" and not value) or (parts.scheme in ("http", "https") and bool(parts.hostname)),
               origins, f"wayback.{key}", f"expected an http(s) URL like 'https://web.archive.org', got {value!r}")
    wayback.url = wayback.url.rstrip("/")
    _check(wayback.delay >= 0, origins, "wayback.delay", f"expected seconds >= 0, got {wayback.delay}")
    _check(wayback.retries >= 1, origins, "wayback.retries", f"expected at least 1, got {wayback.retries}")
    _check(wayback.max_wait >= 0, origins, "wayback.max_wait", f"expected seconds >= 0, got {wayback.max_wait}")
    _check(wayback.timeout > 0, origins, "wayback.timeout", f"expected seconds > 0, got {wayback.timeout}")


def _validate_smtp(smtp: SmtpConfig, origins: _Origins) -> None:
    _check(bool(smtp.host.strip()) and not re.search(r"\s", smtp.host), origins, "smtp.host",
           f"expected a host name, got {smtp.host!r}")
    _check(1 <= smtp.port <= 65535, origins, "smtp.port", f"expected a port from 1 to 65535, got {smtp.port}")
    smtp.security = smtp.security.lower()
    _check(smtp.security in SECURITY_MODES, origins, "smtp.security",
           f"expected one of {', '.join(SECURITY_MODES)}, got {smtp.security!r}")
    _check(smtp.user is None or bool(smtp.user.strip()), origins, "smtp.user",
           "expected a user name (leave the setting out to send without logging in)")
    _check(smtp.timeout > 0, origins, "smtp.timeout", f"expected a number of seconds > 0, got {smtp.timeout}")


def _validate_alerts(alerts: AlertConfig, origins: _Origins) -> None:
    _check(is_valid_address(alerts.sender), origins, "alerts.sender",
           f"expected an email address like 'defwatch@example.org', got {alerts.sender!r}")
    for key in ("recipients", "operator_recipients"):
        for i, addr in enumerate(getattr(alerts, key)):
            _check(is_valid_address(addr), origins, f"alerts.{key}[{i}]",
                   f"expected an email address like 'someone@example.org', got {addr!r}")
    _check(alerts.max_attempts >= 1, origins, "alerts.max_attempts", f"expected at least 1, got {alerts.max_attempts}")
    _check(alerts.retry_base_seconds > 0, origins, "alerts.retry_base_seconds",
           f"expected a number of seconds > 0, got {alerts.retry_base_seconds}")
    _check(bool(alerts.site_name.strip()), origins, "alerts.site_name", "expected a non-empty name")


def _validate_crawl(crawl: CrawlConfig, origins: _Origins) -> None:
    _at_least(crawl.concurrency_per_host, 1, origins, "crawl.concurrency_per_host")
    _at_least(crawl.download_delay, 0, origins, "crawl.download_delay")
    _check(crawl.timeout > 0, origins, "crawl.timeout", f"expected a number of seconds > 0, got {crawl.timeout}")
    _check(bool(crawl.user_agent.strip()) and not re.search(r"[\r\n]", crawl.user_agent), origins,
           "crawl.user_agent", "expected a one-line User-Agent with a contact URL")
    _at_least(crawl.max_pages, 0, origins, "crawl.max_pages")
    _at_least(crawl.discover_listing_pages, 0, origins, "crawl.discover_listing_pages")
    for i, feed in enumerate(crawl.feeds):
        _at_least(feed, 1, origins, f"crawl.feeds[{i}]")
    _at_least(crawl.max_response_bytes, 1, origins, "crawl.max_response_bytes")
    _check(crawl.transport in TRANSPORTS, origins, "crawl.transport",
           f"expected one of {', '.join(TRANSPORTS)}, got {crawl.transport!r}")
    _check(bool(re.fullmatch(r"[a-z0-9_]+", crawl.impersonate)), origins, "crawl.impersonate",
           f"expected a browser name like 'chrome' or 'firefox', got {crawl.impersonate!r}")
    _check(not crawl.contact or is_valid_address(crawl.contact), origins, "crawl.contact",
           f"expected an email address like 'operator@example.org', got {crawl.contact!r}")


def _validate_revisit(revisit: RevisitConfig, origins: _Origins) -> None:
    _at_least(revisit.fresh_days, 0, origins, "revisit.fresh_days")
    _check(revisit.recent_days >= revisit.fresh_days, origins, "revisit.recent_days",
           f"expected at least fresh_days ({revisit.fresh_days}), got {revisit.recent_days}")
    for key in ("fresh_interval_hours", "recent_interval_hours", "old_interval_hours"):
        value = getattr(revisit, key)
        _check(value > 0, origins, f"revisit.{key}", f"expected a number of hours > 0, got {value}")


def _validate_monitor(monitor: MonitorConfig, origins: _Origins) -> None:
    _at_least(monitor.removal_confirm_runs, 1, origins, "monitor.removal_confirm_runs")
    _at_least(monitor.removal_delay_hours, 0, origins, "monitor.removal_delay_hours")
    for key in ("parser_health_threshold", "block_threshold"):
        value = getattr(monitor, key)
        _check(0 <= value <= 1, origins, f"monitor.{key}", f"expected a share from 0 to 1, got {value}")


def _validate_frontier(frontier: FrontierConfig, origins: _Origins) -> None:
    positive = ("requests_per_hour", "slice_minutes", "index_interval_minutes", "verify_days", "enumerate_days",
                "fresh_max_interval_hours", "min_interval_hours", "prior_halflife_days", "prior_old_rate",
                "retry_minutes")
    for key in positive:
        value = getattr(frontier, key)
        _check(value > 0, origins, f"frontier.{key}", f"expected a number > 0, got {value}")
    _at_least(frontier.burst, 1, origins, "frontier.burst")
    _at_least(frontier.listing_stride, 1, origins, "frontier.listing_stride")
    for key in ("fresh_days", "prior_fresh_rate", "prior_weight"):
        _at_least(getattr(frontier, key), 0, origins, f"frontier.{key}")
    _at_least(frontier.on_story_verify_days, 0, origins, "frontier.on_story_verify_days")
    _check(0 <= frontier.even_share <= 1, origins, "frontier.even_share",
           f"expected a share from 0 to 1, got {frontier.even_share}")


def _at_least(value: float, low: float, origins: _Origins, key: str) -> None:
    _check(value >= low, origins, key, f"expected a value >= {low}, got {value}")


def _validate_jobs(jobs: list[JobConfig], origins: _Origins) -> None:
    seen: set[str] = set()
    for i, job in enumerate(jobs):
        key = f"jobs[{i}]"
        _check(bool(job.name.strip()), origins, f"{key}.name", "expected a non-empty job name")
        _check(job.name not in seen, origins, f"{key}.name", f"job name {job.name!r} is used twice")
        seen.add(job.name)
        _check(job.mode in JOB_MODES, origins, f"{key}.mode",
               f"expected one of {', '.join(JOB_MODES)}, got {job.mode!r}")
        _check((job.interval_minutes is None) != (job.cron is None), origins, key,
               f"job {job.name!r} needs exactly one of interval_minutes or cron")
        if job.interval_minutes is not None:
            _check(job.interval_minutes > 0, origins, f"{key}.interval_minutes",
                   f"expected a number of minutes > 0, got {job.interval_minutes}")
        if job.cron is not None:
            try:
                cron_trigger(job.cron)
            except ValueError as exc:
                raise origins.error(f"{key}.cron", f"expected a crontab expression like "
                                    f"'0 3 * * *', got {job.cron!r}: {exc}") from None
        _at_least(job.max_pages, 0, origins, f"{key}.max_pages")
        _at_least(job.misfire_grace_seconds, 1, origins, f"{key}.misfire_grace_seconds")


def _validate_subscribers(subscribers: list[SubscriberConfig], origins: _Origins) -> None:
    seen: set[str] = set()
    for i, sub in enumerate(subscribers):
        key = f"subscribers[{i}]"
        _check(is_valid_address(sub.address), origins, f"{key}.address",
               f"expected an email address like 'someone@example.org', got {sub.address!r}")
        _check(sub.address.lower() not in seen, origins, f"{key}.address",
               f"{sub.address!r} is subscribed twice; merge the two [[subscribers]] tables")
        seen.add(sub.address.lower())
        for field_name, allowed in (("events", SUBSCRIBER_EVENT_KINDS), ("sections", STORY_KINDS)):
            for j, value in enumerate(getattr(sub, field_name)):
                _check(value in allowed, origins, f"{key}.{field_name}[{j}]",
                       f"expected one of {', '.join(allowed)}, got {value!r}")
        for j, word in enumerate(sub.keywords):
            _check(bool(word.strip()), origins, f"{key}.keywords[{j}]", "expected a word or phrase, got ''")
        _check(sub.cadence in CADENCES, origins, f"{key}.cadence",
               f"expected one of {', '.join(CADENCES)}, got {sub.cadence!r}")
        _validate_digest_time(sub, key, origins)


def _validate_digest_time(sub: SubscriberConfig, key: str, origins: _Origins) -> None:
    """``at`` fits the cadence and ``timezone`` is a zone this machine knows, or the daemon would guess."""
    who = f" (subscriber {sub.address})"
    if sub.at:
        _check(sub.cadence in AT_FORMATS, origins, f"{key}.at",
               f"only a daily or hourly digest has a time, not cadence {sub.cadence!r}{who}")
        try:
            digest_time(sub.cadence, sub.at)
        except ValueError as exc:
            raise origins.error(f"{key}.at", f"{exc}{who}") from None
    else:
        _check(sub.timezone == "UTC", origins, f"{key}.timezone",
               f"a time zone is used only with at (e.g. at = \"07:00\"): set at or remove timezone{who}")
    try:
        ZoneInfo(sub.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise origins.error(f"{key}.timezone", f"expected an IANA time zone like 'America/New_York' or 'UTC', "
                                               f"got {sub.timezone!r}{who}") from None


def digest_time(cadence: str, text: str) -> time:
    """A subscriber's ``at`` as a time: ``"07:00"`` for daily, ``":15"`` (minute 15 of each hour) for hourly.

    ValueError says what was expected."""
    pattern, example = AT_FORMATS[cadence]
    match = re.fullmatch(pattern, text)
    parts = match.groupdict() if match else {}
    try:
        return time(int(parts.get("hour") or 0), int(parts["minute"]))  # ValueError past 23:59
    except (KeyError, ValueError):
        raise ValueError(f"expected {example} with cadence = {cadence!r}, got {text!r}") from None


def _validate_daemon(daemon: DaemonConfig, jobs: list[JobConfig], origins: _Origins) -> None:
    if daemon.start_job:
        crawl_jobs = [job.name for job in jobs if job.mode in CRAWL_MODES]
        _check(daemon.start_job in crawl_jobs, origins, "daemon.start_job",
               f"expected the name of a crawl job ({', '.join(crawl_jobs) or 'none configured'}), "
               f"got {daemon.start_job!r}")


def start_job(config: Config) -> JobConfig | None:
    """The crawl job the daemon runs at start-up, or None (``[daemon] crawl_at_start = false``)."""
    if not config.daemon.crawl_at_start:
        return None
    crawl_jobs = [job for job in config.jobs if job.mode in CRAWL_MODES]
    named = [job for job in crawl_jobs if job.name == config.daemon.start_job]
    return (named or crawl_jobs or [None])[0]


def all_recipients(config: Config) -> list[str]:
    """Every address that gets subscriber mail: ``[alerts] recipients`` and ``[[subscribers]]``."""
    return list(dict.fromkeys([*config.alerts.recipients, *(sub.address for sub in config.subscribers)]))


# ---------------------------------------------------------------------------------------------
# Crontab

_CRON_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]  # crontab numbering: 0 (and 7) = Sunday


def cron_trigger(expr: str, timezone: Any = None) -> CronTrigger:
    """A CronTrigger with real crontab meaning (ValueError if malformed).

    APScheduler 3's ``from_crontab`` numbers weekdays from Monday=0, so ``0 3 * * 0`` would run on
    Mondays; the day-of-week field is translated to names here. Crontab runs a job when *either*
    day field matches if both are restricted, APScheduler only when both do: rather than silently
    differ, that combination is refused.
    """
    from apscheduler.triggers.cron import CronTrigger

    fields_ = _CRON_MACROS.get(expr.strip().lower(), expr).split()
    if len(fields_) != 5:
        raise ValueError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields_)}")
    minute, hour, day, month, dow = fields_
    if day != "*" and dow != "*":
        raise ValueError("restricting both day-of-month and day-of-week is not supported; use two jobs")
    return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                       day_of_week=_crontab_weekdays(dow), timezone=timezone)


def _crontab_weekdays(field_: str) -> str:
    """Translate a crontab day-of-week field (0-7, names, ranges, steps) to APScheduler names."""
    if field_ == "*":
        return "*"
    days: set[int] = set()
    for part in field_.lower().split(","):
        rng, _, step_text = part.partition("/")
        step = _cron_int(step_text, "step") if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in day-of-week {part!r}")
        if rng == "*":
            lo, hi = 0, 6
        else:
            lo_text, _, hi_text = rng.partition("-")
            lo = _weekday(lo_text)
            hi = _weekday(hi_text) if hi_text else (6 if step_text else lo)
            if hi_text and hi_text.strip() == "7":
                hi = 7
        if hi < lo:
            raise ValueError(f"day-of-week range {rng!r} runs backwards")
        days.update(d % 7 for d in range(lo, hi + 1, step))
    return ",".join(_DOW_NAMES[d] for d in sorted(days))


def _weekday(text: str) -> int:
    text = text.strip()
    if text in _DOW_NAMES:
        return _DOW_NAMES.index(text)
    value = _cron_int(text, "day-of-week")
    if not 0 <= value <= 7:
        raise ValueError(f"day-of-week {value} is out of range 0-7")
    return value % 7


def _cron_int(text: str, what: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"bad {what} value {text!r}")
    return int(text)
