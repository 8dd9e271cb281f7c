"""`cronplus exec JOB [--at TIME] [--shell] [--diff]` (issue 16, items 2 and 4): the job's command
in the foreground with exactly a scheduled run's environment, stdin and working directory, no
run recorded. The command runs as the real `cronplus` process (its stdout and exit status are
the job's); `--diff` runs in-process against a known caller environment (tests/incli.py)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cronplus.crontab.parser import parse_crontab
from cronplus.engine.runner import build_env
from tests import incli

ROOT = Path(__file__).resolve().parent.parent


def cronplus(tmp_path: Path, *args: str, env: dict[str, str] | None = None, stdin: str = "",
             crontab: str = "crontab") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(tmp_path / crontab),
                           "--state-dir", str(tmp_path / "state"), "exec", *args],
                          input=stdin, capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env=env if env is not None else incli.base_env(HOME=str(tmp_path), SECRET_OF_CALLER="x"))


def home_of_me() -> str:
    return pwd.getpwuid(os.getuid()).pw_dir


@pytest.mark.e2e
def test_the_command_gets_exactly_what_build_env_gives_a_scheduled_run_and_its_exit_status(tmp_path: Path) -> None:
    text = "MYVAR=from crontab\n# cronplus: name=show tz=Europe/Berlin\n0 3 * * * env | sort; pwd; exit 7\n"
    (tmp_path / "crontab").write_text(text)
    done = cronplus(tmp_path, "show", "--at", "2026-03-29 03:00")
    assert done.returncode == 7, done.stderr
    *env_lines, cwd = done.stdout.splitlines()
    job = parse_crontab(text, path="crontab", system=False).jobs[0]
    tick = datetime(2026, 3, 29, 1, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))  # 03:00 CEST
    expected = build_env(job, run_id=0, attempt=1, scheduled_at=tick)
    got = dict(line.split("=", 1) for line in env_lines)
    got.pop("PWD", None), got.pop("SHLVL", None), got.pop("_", None)  # the shell's own, as under cron
    assert got == expected
    assert got["CRONPLUS_SCHEDULED_TIME"] == "2026-03-29T03:00:00+02:00"
    assert "SECRET_OF_CALLER" not in got
    assert cwd == home_of_me()
    assert not (tmp_path / "state" / "history.db").exists(), "exec records no run"


@pytest.mark.e2e
def test_the_percent_text_is_the_commands_stdin(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=mail\n0 0 * * * tr a-z A-Z %dear ops,%all is well\n")
    done = cronplus(tmp_path, "mail", stdin="not this\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "DEAR OPS,\nALL IS WELL"


@pytest.mark.e2e
def test_without_percent_text_stdin_is_dev_null_and_not_the_callers(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=read\n0 0 * * * cat; echo end\n")
    done = cronplus(tmp_path, "read", stdin="the caller's input\n")
    assert done.stdout == "end\n"


@pytest.mark.e2e
def test_a_shell_killed_by_a_signal_exits_128_plus_its_number(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=die\n0 0 * * * kill -TERM $$\n")
    assert cronplus(tmp_path, "die").returncode == 143


@pytest.mark.e2e
def test_shell_opens_the_jobs_shell_in_its_environment(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("SHELL=/bin/bash\nFOO=bar\n# cronplus: name=j\n0 0 * * * true\n")
    done = cronplus(tmp_path, "j", "--shell", stdin='echo "$FOO|$PATH|$PWD|$CRONPLUS_JOB|${SECRET_OF_CALLER-unset}"; exit 9\n')
    assert done.returncode == 9, done.stderr
    assert f"bar|/usr/bin:/bin|{home_of_me()}|j|unset" in done.stdout.splitlines()
    assert "cronplus exec: /bin/bash in job j's cron environment" in done.stderr


@pytest.mark.e2e
def test_a_shell_that_cannot_be_executed_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("SHELL=/nonexistent/sh\n# cronplus: name=j\n0 0 * * * true\n")
    done = cronplus(tmp_path, "j")
    assert done.returncode == 1
    assert done.stderr == "cronplus exec: cannot execute /nonexistent/sh: No such file or directory (the crontab's SHELL=)\n"


@pytest.mark.e2e
@pytest.mark.skipif(os.geteuid() != 0, reason="running a job as another user needs root")
def test_in_system_mode_the_command_runs_as_the_jobs_user(tmp_path: Path) -> None:
    (tmp_path / "sys.crontab").write_text("HOME=/\n# cronplus: name=who\n0 0 * * * nobody id -un; id -u; pwd\n")
    done = subprocess.run([sys.executable, "-m", "cronplus", "--system", "--crontab", str(tmp_path / "sys.crontab"),
                           "--state-dir", str(tmp_path / "state"), "exec", "who"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=incli.base_env(HOME=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["nobody", str(pwd.getpwnam("nobody").pw_uid), "/"]


def test_diff_names_what_the_job_lacks_against_a_known_caller_environment(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "mytool").write_text("#!/bin/sh\necho hi\n")
    (tools / "mytool").chmod(0o755)
    (tmp_path / "crontab").write_text("MAILTO=\"\"\n# cronplus: name=report\n0 6 * * * mytool --daily > out.txt\n")
    caller = {"PATH": f"{tools}:/usr/bin:/bin", "HOME": home_of_me(), "LANG": "de_DE.UTF-8", "SHELL": "/bin/bash",
              "DISPLAY": ":0", "TMPDIR": incli.base_env()["TMPDIR"]}
    done = incli.run(["--crontab", str(tmp_path / "crontab"), "--state-dir", str(tmp_path / "state"),
                      "exec", "report", "--diff"], env=caller)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "The job's environment (as cron gives it) against yours:"
    assert f"  PATH: yours {tools}:/usr/bin:/bin; the job's /usr/bin:/bin" in lines
    assert f"    the job's PATH lacks: {tools}" in lines
    assert f"  HOME: the same ({home_of_me()})" in lines
    assert "  LANG: yours de_DE.UTF-8; the job's (unset)" in lines
    assert "  SHELL: yours /bin/bash; the job's /bin/sh" in lines
    assert f"  The command's first word 'mytool': for you {tools}/mytool; for the job not found" in lines
    assert "  Only yours, missing for the job (3): DISPLAY, LANG, TMPDIR" in lines
    assert ("  Only the job's (7): CRONPLUS_ATTEMPT, CRONPLUS_JOB, CRONPLUS_RUN_ID, CRONPLUS_SCHEDULED_TIME, "
            "LOGNAME, MAILTO, USER") in lines
    assert not (tools / "out.txt").exists() and not (tmp_path / "state").exists(), "--diff runs nothing"


def test_an_unknown_job_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=report\n0 6 * * * true\n")
    done = incli.run(["--crontab", str(tmp_path / "crontab"), "exec", "reprot", "--diff"],
                     env=incli.base_env(HOME=str(tmp_path)))
    assert done.returncode == 1
    assert done.stderr == f"cronplus exec: no job named 'reprot' in {tmp_path / 'crontab'} (did you mean 'report'?)\n"


@pytest.mark.e2e
def test_a_sigterm_to_cronplus_exec_goes_to_the_job_and_its_exit_status_comes_back(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=trap\n"
                                      "0 0 * * * trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done\n")
    proc = subprocess.Popen([sys.executable, "-m", "cronplus", "--crontab", str(tmp_path / "crontab"), "exec", "trap"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT, env=incli.base_env(HOME=str(tmp_path)))
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(15)
        assert proc.wait(30) == 3
        assert proc.stdout.read() == "got TERM\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
