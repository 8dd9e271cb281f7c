"""Pools as the user sees them: the real `cronplus run` (its control socket's status), `cronplus
jobs` ("queued for pool gpu (0 ahead)"), `cronplus log --json` (queued_s), `check`, and
`run --max-running` / CRONPLUS_MAX_RUNNING given wrong."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cronplus.service import control
from tests import incli
from tests.test_daemon import Supervisor

CRONTAB = """# cronplus-pools: gpu=1
# cronplus: name=train-a pool=gpu
0 0 1 1 * sleep 1.5
# cronplus: name=train-b pool=gpu
0 0 1 1 * true
"""


def trigger(sup: Supervisor, job: str) -> dict:
    return next(control.request(sup.state / "control.sock", {"cmd": "trigger", "job": job}))


def cli(tmp_path: Path, *args: str) -> incli.Completed[str]:
    env = incli.base_env(HOME=str(tmp_path), TZ="UTC")
    return incli.run(["--crontab", str(tmp_path / "crontab"), "--state-dir", str(tmp_path / "state"), *args], env=env)


@pytest.mark.e2e
def test_a_queued_run_is_shown_by_status_and_jobs_and_its_wait_by_log(tmp_path: Path, supervisors: list) -> None:
    sup = Supervisor(tmp_path, CRONTAB)
    supervisors.append(sup)
    sup.wait_ready()
    assert trigger(sup, "train-a")["run_id"] is not None
    said = cli(tmp_path, "trigger", "train-b")  # no row until it gets the slot
    assert (said.returncode, said.stdout.splitlines()) == (0, [
        "job train-b is queued for pool gpu (0 ahead): it starts when a slot frees", "run queued by the supervisor"])
    queued = [r for r in sup.status()["runs"] if r["job"] == "train-b"]
    assert [(r["state"], r["pool"], r["ahead"]) for r in queued] == [("queued", "pool gpu", 0)]
    jobs = cli(tmp_path, "jobs")
    assert jobs.returncode == 0, jobs.stderr
    body = {line.split()[0]: line for line in jobs.stdout.splitlines()[2:]}
    assert "queued for pool gpu (0 ahead)" in body["train-b"]
    deadline = time.monotonic() + 15
    while len([r for r in sup.rows() if r[2] == "success"]) < 2:
        assert time.monotonic() < deadline, (sup.rows(), sup.stderr)
        time.sleep(0.1)
    log = cli(tmp_path, "log", "--json")
    assert log.returncode == 0, log.stderr
    waited = {r["job"]: r["queued_s"] for r in map(json.loads, log.stdout.splitlines())}
    assert waited["train-a"] is None
    assert waited["train-b"] is not None and waited["train-b"] >= 1.0  # train-a's 1.5 s, less the start
    assert sup.stop() == 0


@pytest.mark.e2e
def test_max_running_from_the_environment_caps_all_jobs(tmp_path: Path, supervisors: list) -> None:
    sup = Supervisor(tmp_path, "# cronplus: name=a\n0 0 1 1 * sleep 1\n# cronplus: name=b\n0 0 1 1 * true\n",
                     env={"CRONPLUS_MAX_RUNNING": "1"})
    supervisors.append(sup)
    sup.wait_ready()
    trigger(sup, "a")
    trigger(sup, "b")
    assert [(r["job"], r["state"], r.get("pool")) for r in sup.status()["runs"]] == [
        ("a", "active", None), ("b", "queued", "--max-running 1")]
    assert sup.stop() == 0
    # a finishes within the shutdown's grace; b, still queued, never starts and is recorded so
    assert [(r[1], r[2], r[4]) for r in sup.rows()] == [
        ("a", "success", None), ("b", "skipped", "supervisor shutdown before it could start")]


@pytest.mark.parametrize(("args", "env", "said"), [
    (["--max-running", "0"], {}, "cronplus run: --max-running: '0' is not a whole number of runs 1-1000000"),
    ([], {"CRONPLUS_MAX_RUNNING": "two"}, "CRONPLUS_MAX_RUNNING: 'two' is not a whole number of runs 1-1000000"),
])
def test_a_bad_max_running_is_one_line_naming_it(tmp_path: Path, args: list[str], env: dict[str, str], said: str) -> None:
    (tmp_path / "crontab").write_text("")
    proc = incli.run(["--crontab", str(tmp_path / "crontab"), "--state-dir", str(tmp_path / "state"), "run", *args],
                     env=incli.base_env(HOME=str(tmp_path), **env))
    assert proc.returncode == 2, proc.stderr
    assert said in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_check_names_each_pool_mistake_by_file_line_col(tmp_path: Path) -> None:
    f = tmp_path / "crontab"
    f.write_text("# cronplus-pools: gpu=1 db=-1\n# cronplus-pools: gpu=2\n# cronplus-pool: x=1\n"
                 "# cronplus: pool=gpv\n* * * * * true\n")
    proc = incli.run(["check", str(f)], env=incli.base_env(HOME=str(tmp_path)))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"{f}:1:19: warning: pool gpu is used by no job (add pool=gpu to a job, or remove it)",  # gpv is not gpu
        f"{f}:1:28: bad pool db: '-1' is not a whole number 0-100000 (the most runs of the pool's jobs at once)",
        f"{f}:2:19: pool gpu is defined twice (first at line 1)",
        f"{f}:3:1: malformed annotation (did you mean '# cronplus-pools:'?)",
        f"{f}:4:18: job true: pool 'gpv' is not defined by a '# cronplus-pools:' line (did you mean 'gpu'?)",
        "invalid: 4 errors",
    ]


def test_check_warns_on_an_unused_pool_and_a_pool_of_zero(tmp_path: Path) -> None:
    f = tmp_path / "crontab"
    f.write_text("# cronplus-pools: gpu=0 idle=2\n# cronplus: pool=gpu\n* * * * * true\n")
    proc = incli.run(["check", str(f)], env=incli.base_env(HOME=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert f"{f}:1:19: warning: pool gpu has 0 slots: its jobs never run (give it at least 1)" in out
    assert f"{f}:1:25: warning: pool idle is used by no job (add pool=idle to a job, or remove it)" in out
