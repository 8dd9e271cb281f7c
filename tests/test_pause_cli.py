"""`cronplus pause/resume` with no supervisor running (straight into the store) and what `log`
and `jobs` show of a pause, run in-process (tests/incli.py)."""

from __future__ import annotations

import json
from pathlib import Path

from cronplus.cli.pause import user
from tests import incli

CRONTAB = "# cronplus: name=backup\n* * * * * true\n# cronplus: name=report\n* * * * * true\n"


def cronplus(tmp_path: Path, *args: str) -> incli.Completed[str]:
    env = incli.base_env(HOME=str(tmp_path))
    return incli.run(["--crontab", str(tmp_path / "crontab"), "--state-dir", str(tmp_path / "state"), *args], env=env)


def test_log_and_jobs_say_who_paused_a_job_and_since_when(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text(CRONTAB)
    done = cronplus(tmp_path, "pause", "backup", "backup")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "backup paused (no supervisor running: it reads this at start)\n"
    log = cronplus(tmp_path, "log")
    assert log.returncode == 0
    lines = log.stderr.splitlines()
    assert lines[0].startswith("backup: paused since ") and lines[0].endswith(f"(by {user()})")
    assert lines[1:] == ["no runs match"]
    assert cronplus(tmp_path, "log", "rep*").stderr == "no runs match\n"  # the pause of another job: not shown
    assert cronplus(tmp_path, "pause", "--all").returncode == 0
    assert cronplus(tmp_path, "log", "rep*").stderr.startswith("all jobs paused since ")
    shown = {o["job"]: o for o in map(json.loads, cronplus(tmp_path, "jobs", "--json").stdout.splitlines())}
    assert shown["report"]["paused_all"] is True and shown["backup"]["paused_all"] is False
    assert cronplus(tmp_path, "resume", "--all").returncode == 0
    shown = {o["job"]: o for o in map(json.loads, cronplus(tmp_path, "jobs", "--json").stdout.splitlines())}
    assert (shown["backup"]["paused"], shown["report"]["paused"]) == (True, False)  # --all lifts the global pause only
    assert cronplus(tmp_path, "resume", "backup").returncode == 0
    assert cronplus(tmp_path, "log").stderr == "no runs match\n"
