"""`cronplus next` end to end: the real command in a subprocess, exact stdout and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def cronplus(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "TZ": "UTC", **(env or {})}
    return subprocess.run([sys.executable, "-m", "cronplus", "next", *args], capture_output=True,
                          text=True, timeout=30, env=full_env)


def test_it_prints_the_spring_forward_catch_up_run_with_its_offset() -> None:
    r = cronplus("30 2 * * *", "-n", "3", "--tz", "Europe/Berlin", "--from", "2025-03-30T00:00")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == "2025-03-30T03:00:00+02:00\n2025-03-31T02:30:00+02:00\n2025-04-01T02:30:00+02:00\n"


def test_it_prints_both_passes_of_a_repeated_hour_for_a_wildcard_job() -> None:
    r = cronplus("0 * * * *", "-n", "3", "--tz", "Europe/Berlin", "--from", "2025-10-26T01:30+02:00")
    assert r.stdout == "2025-10-26T02:00:00+02:00\n2025-10-26T02:00:00+01:00\n2025-10-26T03:00:00+01:00\n"


def test_a_from_with_an_offset_is_that_instant_shown_in_the_schedules_zone() -> None:
    r = cronplus("@daily", "-n", "2", "--tz", "America/Havana", "--from", "2025-03-09T04:30:00Z")
    assert r.stdout == "2025-03-09T01:00:00-04:00\n2025-03-10T00:00:00-04:00\n"


def test_five_words_are_one_expression_and_n_defaults_to_five() -> None:
    r = cronplus("0", "*/6", "*", "*", "*", "--from", "2025-01-01T00:00")
    assert r.returncode == 0
    assert r.stdout.splitlines() == ["2025-01-01T06:00:00+00:00", "2025-01-01T12:00:00+00:00",
                                     "2025-01-01T18:00:00+00:00", "2025-01-02T00:00:00+00:00",
                                     "2025-01-02T06:00:00+00:00"]


def test_without_tz_the_local_zone_is_used() -> None:
    r = cronplus("0 0 * * *", "-n", "1", "--from", "2025-07-01T12:00", env={"TZ": "Asia/Kolkata"})
    assert r.stdout == "2025-07-02T00:00:00+05:30\n"


@pytest.mark.parametrize("expr", ["0 0 30 2 *", "@reboot"])
def test_a_schedule_that_never_fires_prints_nothing_and_succeeds(expr: str) -> None:
    r = cronplus(expr, "--from", "2025-01-01T00:00")
    assert (r.returncode, r.stdout) == (0, "")


def test_an_invalid_expression_exits_1_with_the_column() -> None:
    r = cronplus("0 0 * * 1/2")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("<expr>:1:9: bad day-of-week")


@pytest.mark.parametrize(("args", "message"), [
    (["--tz", "Mars/Olympus"], "cronplus next: unknown time zone 'Mars/Olympus'\n"),
    (["--from", "tuesday"], "cronplus next: bad --from 'tuesday'"),
    (["-n", "-1"], "cronplus next: -n must be 0 or more\n"),
])
def test_bad_command_line_values_are_usage_errors(args: list[str], message: str) -> None:
    r = cronplus("* * * * *", *args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(message)


CRONTAB = """\
CRON_TZ=America/New_York
# cronplus: name=backup
0 */2 * * * /bin/true
# cronplus: name=report tz=Europe/Berlin
30 2 * * * /bin/true
"""


def test_a_jobs_schedule_runs_in_the_jobs_zone(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text(CRONTAB)
    r = cronplus("--job", "backup", str(crontab), "-n", "2", "--from", "2025-03-09T00:30")
    assert (r.returncode, r.stdout) == (0, "2025-03-09T04:00:00-04:00\n2025-03-09T06:00:00-04:00\n")
    r = cronplus("--job", "report", str(crontab), "-n", "1", "--from", "2025-03-30T00:30")
    assert r.stdout == "2025-03-30T03:00:00+02:00\n"


def test_the_default_crontab_is_the_managed_one(tmp_path: Path) -> None:
    crontab = tmp_path / "managed"
    crontab.write_text(CRONTAB)
    r = cronplus("--job", "backup", "-n", "1", "--from", "2025-06-01T00:30", env={"CRONPLUS_CRONTAB": str(crontab)})
    assert (r.returncode, r.stdout) == (0, "2025-06-01T02:00:00-04:00\n")


def test_an_unknown_job_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text(CRONTAB)
    r = cronplus("--job", "reprot", str(crontab))
    assert r.returncode == 1 and r.stdout == ""
    assert "no job named 'reprot'" in r.stderr and "did you mean 'report'?" in r.stderr
