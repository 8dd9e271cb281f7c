"""`cronplus trigger --wait` follows the whole chain the trigger started (the run, the downstream
runs it causes, their retries), the same with and without a supervisor; a manual trigger honours
overlap= and after= unless --force (chain.py)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from cronplus.service import control
from tests.test_daemon import cli, start

PIPELINE = """\
# cronplus: name=a
0 3 * * 0 echo a
# cronplus: name=b after=a retries=1 retry-delay=0.5
0 3 * * 0 exit 3
"""

pytestmark = pytest.mark.e2e  # real supervisors and the real command


def rows(state: Path) -> list[tuple]:
    conn = sqlite3.connect(state / "history.db")
    try:
        return [tuple(r) for r in conn.execute("SELECT job, status, trigger, final FROM runs ORDER BY run_id")]
    finally:
        conn.close()


def trigger_wait(supervisors: list, tmp_path: Path, text: str, job: str, *args: str, supervised: bool):
    """`trigger JOB --wait ARGS` with a running supervisor, or in-process when `supervised` is False."""
    if supervised:
        sup = start(supervisors, tmp_path, text)
        return cli(sup.state, sup.crontab, "trigger", job, "--wait", *args), sup.state
    crontab = tmp_path / "crontab"
    crontab.write_text(text)
    return cli(tmp_path / "state", crontab, "trigger", job, "--wait", *args), tmp_path / "state"


@pytest.mark.parametrize("supervised", [True, False], ids=["supervisor", "in-process"])
def test_wait_returns_when_the_downstream_run_ends_and_exits_1_when_it_failed(supervisors, tmp_path: Path,
                                                                             supervised: bool) -> None:
    out, state = trigger_wait(supervisors, tmp_path, PIPELINE, "a", supervised=supervised)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if "started" not in line]
    assert lines[0].startswith("a: run 1 success in ")
    assert lines[1] == "b: run 2 attempt 1 failed, exit 3, retrying in 0.5s"
    assert lines[2].startswith("b: run 3 failed, exit 3 in ")
    assert len(lines) == 3
    # when trigger returned, the whole chain was final already
    assert rows(state) == [("a", "success", "manual", 1), ("b", "failed", "manual", 0), ("b", "failed", "retry", 1)]


@pytest.mark.parametrize("supervised", [True, False], ids=["supervisor", "in-process"])
def test_json_prints_one_object_per_ended_run_of_the_chain(supervisors, tmp_path: Path, supervised: bool) -> None:
    text = PIPELINE + "# cronplus: name=c after=b\n0 3 * * 0 true\n"
    out, _ = trigger_wait(supervisors, tmp_path, text, "a", "--json", supervised=supervised)
    assert out.returncode == 1
    runs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["job"], r["run_id"], r["status"]) for r in runs] == [
        ("a", 1, "success"), ("b", 3, "failed"), ("c", 4, "upstream_failed")]
    assert runs[2]["reason"] == "upstream b failed (trigger=all_success)"


@pytest.mark.parametrize("supervised", [True, False], ids=["supervisor", "in-process"])
def test_a_skipped_downstream_run_is_no_failure(supervisors, tmp_path: Path, supervised: bool) -> None:
    text = ("# cronplus: name=a\n0 3 * * 0 true\n"
            "# cronplus: name=cleanup after=a trigger=all_failed\n0 3 * * 0 echo cleaning\n")
    out, state = trigger_wait(supervisors, tmp_path, text, "a", supervised=supervised)
    assert out.returncode == 0, out.stdout
    assert "cleanup: run 2 skipped (upstream a success (trigger=all_failed))" in out.stdout
    assert rows(state) == [("a", "success", "manual", 1), ("cleanup", "skipped", "manual", 1)]


def test_the_done_message_of_a_chain_carries_its_worst_status(supervisors, tmp_path: Path) -> None:
    """A client reading only the last message (as before chains) still sees the chain failed."""
    sup = start(supervisors, tmp_path, PIPELINE)
    answers = list(control.request(sup.state / "control.sock", {"cmd": "trigger", "job": "a", "wait": True}, timeout=20))
    assert answers[0]["ok"] and answers[0]["run_id"] == 1
    events = [(m.get("event"), m["job"], m["run_id"], m["status"]) for m in answers[1:-1]]
    assert events == [("ended", "a", 1, "success"), ("retry", "b", 2, "failed"), ("ended", "b", 3, "failed")]
    assert answers[1 + 1]["delay_s"] == 0.5 and answers[1 + 1]["attempt"] == 1
    done = answers[-1]
    assert done["done"] is True and done["run_id"] == 1 and done["job"] == "a" and done["status"] == "failed"


# ---- overlap= and after= on a manual trigger -------------------------------------------------

def wait_running(state: Path, job: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sum(1 for r in rows(state) if r[0] == job and r[1] == "running") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} run(s) of {job} not running: {rows(state)}")


def test_a_second_trigger_of_a_running_overlap_skip_job_is_refused_unless_forced(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path, "# cronplus: name=nap kill-grace=1\n0 3 * * 0 sleep 30\n", "--shutdown-grace", "0.2")
    assert cli(sup.state, sup.crontab, "trigger", "nap").returncode == 0
    wait_running(sup.state, "nap", 1)
    again = cli(sup.state, sup.crontab, "trigger", "nap")
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        "cronplus trigger: job nap is already running (run 1) and has overlap=skip: not started; use --force to start another"]
    assert rows(sup.state) == [("nap", "running", "manual", 0)]  # nothing recorded: nothing was decided to run
    forced = cli(sup.state, sup.crontab, "trigger", "nap", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "job nap is already running (run 1): --force starts another" in forced.stdout
    wait_running(sup.state, "nap", 2)
    assert sup.stop() == 0
    assert [r[:2] for r in rows(sup.state)] == [("nap", "interrupted")] * 2


def test_a_manual_trigger_of_an_overlap_queue_job_waits_for_the_running_one(supervisors, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    sup = start(supervisors, tmp_path,
                f"# cronplus: name=q overlap=queue\n0 3 * * 0 while ! test -f {flag}; do sleep 0.05; done\n")
    assert cli(sup.state, sup.crontab, "trigger", "q").returncode == 0
    wait_running(sup.state, "q", 1)
    second = cli(sup.state, sup.crontab, "trigger", "q")
    assert second.returncode == 0
    assert "queued behind it (overlap=queue)" in second.stdout and "run queued by the supervisor" in second.stdout
    assert rows(sup.state) == [("q", "running", "manual", 0)]
    flag.write_text("")
    deadline = time.monotonic() + 10
    while rows(sup.state) != [("q", "success", "manual", 1)] * 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rows(sup.state) == [("q", "success", "manual", 1)] * 2


EVAL_DEPLOY = """\
# cronplus: name=evaluate
0 3 * * 0 exit {code}
# cronplus: name=deploy after=evaluate
0 3 * * 0 echo deployed
"""


@pytest.mark.parametrize("supervised", [True, False], ids=["supervisor", "in-process"])
def test_a_downstream_job_triggered_alone_needs_its_upstream_runs_to_allow_it(supervisors, tmp_path: Path,
                                                                               supervised: bool) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text(EVAL_DEPLOY.format(code=0))
    state = tmp_path / "state"
    if supervised:
        start(supervisors, tmp_path, "")

    refused = cli(state, crontab, "trigger", "deploy")  # nobody evaluated a model yet
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "cronplus trigger: job deploy is after=evaluate and upstream evaluate has no run yet (trigger=all_success): "
        "not started; trigger the upstream job instead, or use --force to run it anyway")
    assert not state.joinpath("history.db").exists() or rows(state) == []

    assert cli(state, crontab, "trigger", "evaluate", "--wait").returncode == 0  # deploy follows: runs 1, 2
    alone = cli(state, crontab, "trigger", "deploy", "--wait")
    assert alone.returncode == 0, alone.stderr
    assert "job deploy uses upstream evaluate run 1 success (scheduled " in alone.stdout

    crontab.write_text(EVAL_DEPLOY.format(code=1))
    if supervised:
        assert next(control.request(state / "control.sock", {"cmd": "reload"}))["ok"]
    assert cli(state, crontab, "trigger", "evaluate", "--wait").returncode == 1  # run 4; deploy 5 upstream_failed
    refused = cli(state, crontab, "trigger", "deploy")
    assert refused.returncode == 1 and "upstream evaluate run 4 failed" in refused.stderr
    forced = cli(state, crontab, "trigger", "deploy", "--force", "--wait")
    assert forced.returncode == 0, forced.stderr
    assert "job deploy runs despite upstream evaluate run 4 failed" in forced.stdout
    assert [r[:2] for r in rows(state)] == [("evaluate", "success"), ("deploy", "success"), ("deploy", "success"),
                                            ("evaluate", "failed"), ("deploy", "upstream_failed"),
                                            ("deploy", "success")]
