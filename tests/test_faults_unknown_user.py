"""A system crontab naming a user that does not exist (e.g. after `userdel carol`): cron skips
that line and runs the rest; cronplus loads the whole file, runs the other jobs, and records
every run of that job `failed` ("no such user 'carol'"), which alerts; `check` warns."""

from __future__ import annotations

import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.crontab.parser import parse_crontab
from tests.http_receiver import Receiver
from tests.test_daemon import Supervisor, cli

pytestmark = pytest.mark.e2e

GONE = "cronplus-gone-user"  # stands for carol after `userdel carol`


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def _no_such_user() -> None:
    try:
        pwd.getpwnam(GONE)
    except KeyError:
        return
    pytest.skip(f"user {GONE} exists on this machine")


def system_crontab(path: Path, alert_url: str, root_marker: Path) -> None:
    path.write_text(
        f"# cronplus-defaults: alert={alert_url}\n"
        "# cronplus: name=report\n"
        f"0 3 * * * {GONE} echo report\n"
        "# cronplus: name=rotate\n"
        f"0 4 * * * root touch {root_marker}\n"
    )


def test_a_line_naming_a_missing_user_is_a_warning_with_its_column_not_an_error() -> None:
    _no_such_user()
    crontab = parse_crontab(f"0 0 * * * {GONE} cmd\n0 1 * * * root cmd\n", path="ct", system=True)
    assert [j.user for j in crontab.jobs] == [GONE, "root"]
    assert [str(w) for w in crontab.warnings] == [
        f"ct:1:11: warning: no such user '{GONE}': its jobs will run as failed runs (create the user, or fix "
        "the user field (a system crontab line is: 5 fields, user, command))"
    ]


def test_check_exits_0_and_warns_about_the_missing_user(tmp_path: Path, rx: Receiver) -> None:
    _no_such_user()
    crontab = tmp_path / "crontab"
    system_crontab(crontab, rx.url(), tmp_path / "rotated")
    out = subprocess.run([sys.executable, "-m", "cronplus", "check", "--system", str(crontab)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"{crontab}:3:11: warning: no such user '{GONE}': its jobs will run as failed runs" in out.stderr
    assert out.stdout.strip() == "ok: 2 jobs, 1 warning"


def test_the_supervisor_runs_the_other_jobs_and_records_the_orphans_runs_failed_with_an_alert(
        supervisors: list[Supervisor], tmp_path: Path, rx: Receiver) -> None:
    _no_such_user()
    marker = tmp_path / "rotated"
    system_crontab(tmp_path / "crontab", rx.url(), marker)
    sup = Supervisor(tmp_path, "", "--system")
    supervisors.append(sup)
    sup.wait_ready()  # before: "bad username" refused the whole file and the supervisor exited 1
    assert {j["name"] for j in sup.status()["jobs"]} == {"report", "rotate"}

    rotate = cli(sup.state, sup.crontab, "--system", "trigger", "rotate", "--wait")
    assert rotate.returncode == 0, rotate.stderr
    assert marker.exists()
    report = cli(sup.state, sup.crontab, "--system", "trigger", "report", "--wait")
    assert report.returncode == 1
    assert f"failed (no such user '{GONE}')" in report.stdout

    rows = {job: (status, reason) for _, job, status, _, reason, _ in sup.rows()}
    assert rows == {"rotate": ("success", None), "report": ("failed", f"no such user '{GONE}'")}
    alert = rx.wait_for(1, timeout=10)[0].json()["data"]
    assert (alert["event"], alert["job"], alert["reason"]) == ("failure", "report", f"no such user '{GONE}'")
    assert f"warning: no such user '{GONE}'" in sup.stderr  # said once at start, in the log
    assert sup.stop() == 0
