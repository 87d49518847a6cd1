"""Shared fixtures: a real sample site on 127.0.0.1 and real `defwatch crawl` child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from samplesite import SampleSite

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CrawlRun:
    returncode: int
    summary: dict[str, Any]
    stdout: str
    stderr: str


def crawl_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no DEFWATCH_* from the developer's shell, an empty config file."""
    config = tmp_path / "defwatch-test.toml"
    if not config.exists():
        config.write_text("[monitor]\nremoval_confirm_runs = 2\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEFWATCH_")}
    env["DEFWATCH_CONFIG"] = str(config)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_crawl(db: Path, site: str, mode: str = "full", *, env: dict[str, str], timeout: float = 120,
              extra_args: tuple[str, ...] = ()) -> CrawlRun:
    """`python -m defwatch crawl` exactly as a user (or the daemon) runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "defwatch", "crawl", "--db", str(db), "--site", site, "--mode", mode, "--json",
         *extra_args],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    summary = json.loads(lines[-1]) if lines else {}
    return CrawlRun(proc.returncode, summary, proc.stdout, proc.stderr)


@pytest.fixture
def site():
    with SampleSite() as running:
        yield running
