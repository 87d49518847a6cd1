"""``[[subscribers]]`` and ``[daemon]`` in the config: read, typed, and refused with one clear line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from core.config import (
    ConfigError,
    DaemonConfig,
    SubscriberConfig,
    all_recipients,
    load_config,
    render_init_template,
    start_job,
)
from tests.conftest import ROOT


def load(tmp_path, text: str, env: dict[str, str] | None = None):
    path = tmp_path / "defwatch.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config(str(path), env=env or {})


def test_subscribers_are_read_with_their_choices(tmp_path):
    config = load(tmp_path, """
        [alerts]
        recipients = ["all@example.org"]

        [[subscribers]]
        address = "Desk <desk@example.org>"
        events = ["story_new", "story_removed"]
        sections = ["release", "contract"]
        keywords = ["Indo-Pacific", "drone"]
        cadence = "daily"

        [[subscribers]]
        address = "hourly@example.org"
        cadence = "hourly"
    """, env={"DEFWATCH_ALERT_TO": "env@example.org"})
    assert config.subscribers == [
        SubscriberConfig("Desk <desk@example.org>", ["story_new", "story_removed"], ["release", "contract"],
                         ["Indo-Pacific", "drone"], "daily"),
        SubscriberConfig("hourly@example.org", cadence="hourly"),
    ]
    # DEFWATCH_ALERT_TO still replaces [alerts] recipients: those get everything after each run
    assert config.alerts.recipients == ["env@example.org"]
    assert all_recipients(config) == ["env@example.org", "Desk <desk@example.org>", "hourly@example.org"]


@pytest.mark.parametrize("table, expected", [
    ('address = "nobody"', "subscribers[0].address: expected an email address like 'someone@example.org', "
                           "got 'nobody'"),
    ('address = "a@example.org"\nevents = ["story_new", "crawl_blocked"]',
     "subscribers[0].events[1]: expected one of story_new, story_updated"),
    ('address = "a@example.org"\nsections = ["press"]',
     "subscribers[0].sections[0]: expected one of news-story, feature-story, release"),
    ('address = "a@example.org"\ncadence = "weekly"',
     "subscribers[0].cadence: expected one of each_run, hourly, daily, got 'weekly'"),
    ('address = "a@example.org"\nkeywords = ["  "]', "subscribers[0].keywords[0]: expected a word or phrase"),
    ('address = "a@example.org"\nkeyword = ["x"]', "subscribers[0].keyword: unknown setting; did you mean 'keywords'?"),
    ('events = ["story_new"]', "subscribers[0].address: missing (required)"),
    ('address = "a@example.org"\ncadence = 1', "subscribers[0].cadence: expected a string, got integer 1"),
])
def test_bad_subscriber_settings_name_the_key(tmp_path, table, expected):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "[[subscribers]]\n" + table + "\n")
    assert expected in str(info.value)
    assert str(info.value).startswith(str(tmp_path / "defwatch.toml") + ": ")


def test_a_subscriber_listed_twice_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"subscribers\[1\].address: 'A@example.org' is subscribed twice"):
        load(tmp_path, '[[subscribers]]\naddress = "a@example.org"\n[[subscribers]]\naddress = "A@example.org"\n')


def test_daemon_start_job_must_be_a_crawl_job(tmp_path):
    jobs = ('[[jobs]]\nname = "discover"\nmode = "discover"\ninterval_minutes = 30\n'
            '[[jobs]]\nname = "sweep"\nmode = "sweep"\ncron = "0 3 * * *"\n'
            '[[jobs]]\nname = "flush"\nmode = "flush"\ninterval_minutes = 10\n')
    with pytest.raises(ConfigError, match=r"daemon.start_job: expected the name of a crawl job "
                                          r"\(discover, sweep\), got 'flush'"):
        load(tmp_path, '[daemon]\nstart_job = "flush"\n' + jobs)
    assert start_job(load(tmp_path, '[daemon]\nstart_job = "sweep"\n' + jobs)).name == "sweep"
    assert start_job(load(tmp_path, jobs)).name == "discover"  # the first crawl job
    assert start_job(load(tmp_path, "")).name == "frontier"  # the default schedule's slice, at once
    assert start_job(load(tmp_path, "[daemon]\ncrawl_at_start = false\n")) is None
    assert load(tmp_path, "").daemon == DaemonConfig(crawl_at_start=True, start_job="")


def test_the_templates_subscriber_example_loads(tmp_path):
    text = render_init_template()
    example = re.search(r"^# \[\[subscribers\]\]\n(?:# .*\n)+", text, re.M).group(0)
    uncommented = text + "\n" + re.sub(r"^# ", "", example, flags=re.M)
    config = load(tmp_path, uncommented)
    assert config.subscribers == [SubscriberConfig(
        "desk@example.org", ["story_new", "story_updated", "story_removed"], ["release", "contract"],
        ["Indo-Pacific", "drone"], "daily")]


def test_a_digest_time_and_time_zone_are_read(tmp_path):
    config = load(tmp_path, """
        [[subscribers]]
        address = "morning@example.org"
        cadence = "daily"
        at = "07:00"
        timezone = "America/New_York"

        [[subscribers]]
        address = "quarter@example.org"
        cadence = "hourly"
        at = ":15"
    """)
    assert config.subscribers == [
        SubscriberConfig("morning@example.org", cadence="daily", at="07:00", timezone="America/New_York"),
        SubscriberConfig("quarter@example.org", cadence="hourly", at=":15", timezone="UTC"),
    ]
    assert load(tmp_path, '[[subscribers]]\naddress = "a@example.org"\n').subscribers[0].at == ""


BAD_DIGEST_TIMES = [
    ('cadence = "daily"\nat = "25:00"', "subscribers[1].at: expected a time of day from 00:00 to 23:59 like '07:00' "
                                        "with cadence = 'daily', got '25:00' (subscriber b@example.org)"),
    ('cadence = "daily"\nat = "7am"', "subscribers[1].at: expected a time of day from 00:00 to 23:59"),
    ('cadence = "daily"\nat = "06:60"', "subscribers[1].at: expected a time of day from 00:00 to 23:59"),
    ('cadence = "hourly"\nat = ":60"', "subscribers[1].at: expected minutes past the hour from :00 to :59"),
    ('cadence = "hourly"\nat = "07:00"', "subscribers[1].at: expected minutes past the hour from :00 to :59 like "
                                         "':15' with cadence = 'hourly', got '07:00' (subscriber b@example.org)"),
    ('at = "07:00"', "subscribers[1].at: only a daily or hourly digest has a time, not cadence 'each_run' "
                     "(subscriber b@example.org)"),
    ('cadence = "daily"\nat = "07:00"\ntimezone = "Mars/Olympus_Mons"',
     "subscribers[1].timezone: expected an IANA time zone like 'America/New_York' or 'UTC', got 'Mars/Olympus_Mons' "
     "(subscriber b@example.org)"),
    ('cadence = "daily"\nat = "07:00"\ntimezone = "../etc/passwd"', "subscribers[1].timezone: expected an IANA"),
    ('cadence = "daily"\ntimezone = "Europe/Paris"', "subscribers[1].timezone: a time zone is used only with at"),
    ('cadence = "daily"\nat = 7', "subscribers[1].at: expected a string, got integer 7"),
]


@pytest.mark.parametrize("table, expected", BAD_DIGEST_TIMES)
def test_a_bad_digest_time_names_the_subscriber_and_the_key(tmp_path, table, expected):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, '[[subscribers]]\naddress = "a@example.org"\n[[subscribers]]\naddress = "b@example.org"\n'
                       + table + "\n")
    assert expected in str(info.value)
    assert str(info.value).startswith(str(tmp_path / "defwatch.toml") + ": ")


@pytest.mark.parametrize("table, expected", [(table, line) for table, line in BAD_DIGEST_TIMES
                                             if line.endswith("(subscriber b@example.org)")])  # whole lines
def test_the_cli_refuses_a_bad_digest_time_with_one_line_and_status_2(tmp_path, table, expected):
    config = tmp_path / "defwatch.toml"
    config.write_text('[[subscribers]]\naddress = "a@example.org"\n[[subscribers]]\naddress = "b@example.org"\n'
                      + table + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "defwatch", "alerts", "flush", "--config", str(config),
                           "--db", str(tmp_path / "a.db")], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          check=False, env={**os.environ, "DEFWATCH_ALERT_TO": ""})
    assert done.returncode == 2
    assert done.stderr == f"defwatch: {config}: {expected}\n"
    assert done.stdout == "" and not (tmp_path / "a.db").exists()  # nothing was created or written
