"""bench/time_to_alert.py runs, at tiny scale, and prints its figures and its last line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

LAST = re.compile(r"time-to-alert: new p95 (\d+)m, fresh-edit p95 ([\d.]+)h, old-edit p95 ([\d.]+)d, "
                  r"removal p95 ([\d.]+)d, requests/day ([\d,]+); uniform: new p95 (\d+)m, "
                  r"fresh-edit p95 ([\d.]+)h, removal p95 ([\d.]+)d")


def test_bench_runs_at_tiny_scale():
    result = subprocess.run(
        [sys.executable, "bench/time_to_alert.py", "--stories", "400", "--photos", "1200", "--days", "1",
         "--new-per-day", "40", "--wave-start", "0.1", "--wave-days", "0.2", "--wave-pages", "60",
         "--restore-start", "0.5", "--restore-share", "0.5", "--requests-per-hour", "600"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    match = LAST.fullmatch(lines[-1])
    assert match, lines[-1]
    new, fresh, _old, removal, per_day = (float(match.group(i).replace(",", "")) for i in range(1, 6))
    assert 0 < new <= 60 and fresh < 24 and removal <= 1  # within the simulated day
    assert 0 < per_day <= 600 * 24  # never over the budget
    for approach in ("frontier", "uniform", "today"):
        header = next(line for line in lines if line.startswith(f"{approach}: "))
        assert "false removals 0" in header
    assert "product code over a real SQLite archive of 1,600 pages" in result.stdout
    rss = re.search(r"process RSS after the build (\d+) MB, at the end (\d+) MB \(([-+][\d.]+)%\)", result.stdout)
    assert rss and int(rss.group(1)) > 0 and int(rss.group(2)) > 0, result.stdout
    restorations = next(line for line in lines if line.startswith("restorations (frontier): "))
    assert "verification period 30d: all within it" in restorations, restorations
    assert any(line.startswith("  edits at or over the all-edits p95: ") for line in lines)
    assert "false removals 0" in next(line for line in lines if line.startswith("oracle: "))
    p95 = re.search(r"all edits p95: frontier ([\d.]+) h, uniform ([\d.]+) h \(([\d.]+)x lower\); oracle ([\d.]+) h "
                    r"\(([\d.]+)x lower\); target ([\d.]+) h \(3x lower\)", result.stdout)
    assert p95, result.stdout
    assert float(p95.group(6)) == pytest.approx(float(p95.group(2)) / 3, abs=0.06)
    bound = re.search(r"with the monitor's knowledge \(a year of monthly checks\) ([\d.]+) h, with perfect "
                      r"knowledge ([\d.]+) h, knowing nothing \(every story alike\) ([\d.]+) h", result.stdout)
    assert bound, result.stdout
    monitor, perfect, nothing = (float(bound.group(i)) for i in (1, 2, 3))
    assert 0 < perfect <= monitor and perfect <= nothing


@pytest.mark.slow
def test_bench_end_to_end_at_tiny_scale():
    result = subprocess.run(
        [sys.executable, "bench/time_to_alert.py", "--end-to-end", "--e2e-stories", "60", "--e2e-hours", "1",
         "--e2e-speed", "60"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "false removals 0" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("time-to-alert (end to end): new p95 ")
