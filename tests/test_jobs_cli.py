"""`cronplus jobs`: the crontab's jobs joined with what the history says, as a table or JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cronplus.status import RunStatus, Trigger
from cronplus.store.history import History
from tests import incli

CRONTAB = (
    "# cronplus: name=train\n0 3 * * 0 echo train\n"
    "# cronplus: name=predict after=train tz=Europe/Paris\n*/10 * * * * echo predict\n"
    "# cronplus: name=idle\n@reboot echo boot\n"
)


def jobs(tmp_path: Path, *args: str, tz: str | None = None) -> incli.Completed[str] | subprocess.CompletedProcess[str]:
    """`cronplus jobs` on CRONTAB; in-process unless a local zone `tz` is asked for, which only a
    new process can have (libc reads $TZ at start)."""
    (tmp_path / "crontab").write_text(CRONTAB)
    argv = ["--crontab", str(tmp_path / "crontab"), "--state-dir", str(tmp_path / "state"), "jobs", *args]
    if tz is None:
        return incli.run(argv, env=incli.base_env(HOME=str(tmp_path)))
    env = incli.base_env(HOME=str(tmp_path), TZ=tz)
    return subprocess.run([sys.executable, "-m", "cronplus", *argv], capture_output=True, text=True, env=env, timeout=60)


def populate(tmp_path: Path) -> tuple[int, int]:
    hist = History(tmp_path / "state" / "history.db")
    try:
        now = time.time()
        rid = hist.start_run(job="train", attempt=1, trigger=Trigger.MANUAL, scheduled_at=now - 100, tz=None,
                             started_at=now - 100, log_path=None, owner="old")
        hist.finish_run(rid, status=RunStatus.SUCCESS, ended_at=now - 100 + 75.5, exit_code=0, reason=None, final=True)
        hist.record_not_run(job="predict", status=RunStatus.SKIPPED, trigger=Trigger.SCHEDULE, scheduled_at=now - 60,
                            tz="Europe/Paris", at=now - 60, reason="exit 99")
        live = hist.start_run(job="predict", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=now - 5, tz="Europe/Paris",
                              started_at=now - 5, log_path=None, owner="live")
        return rid, live
    finally:
        hist.close()


def test_without_history_every_job_is_listed_as_never_run(tmp_path: Path) -> None:
    proc = jobs(tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["JOB", "SCHEDULE", "NEXT"]
    body = {line.split()[0]: line for line in lines[2:]}
    assert set(body) == {"train", "predict", "idle"}
    assert "never run" in body["train"] and "(in " in body["train"]
    assert "*/10 * * * * (Europe/Paris)" in body["predict"]


def test_the_table_shows_last_status_duration_and_runs_in_progress(tmp_path: Path) -> None:
    populate(tmp_path)
    proc = jobs(tmp_path)
    assert proc.returncode == 0, proc.stderr
    body = {line.split()[0]: line for line in proc.stdout.splitlines()[2:]}
    assert "success" in body["train"] and "1min 16s" in body["train"]
    assert "running (run 3)" in body["predict"]
    assert "never run" in body["idle"]


@pytest.mark.e2e
def test_json_gives_one_object_per_job_with_iso_times(tmp_path: Path) -> None:
    train_id, live_id = populate(tmp_path)
    proc = jobs(tmp_path, "--json", tz="UTC")
    assert proc.returncode == 0, proc.stderr
    rows = {r["job"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert rows["train"]["last_status"] == "success"
    assert rows["train"]["last_run_id"] == train_id
    assert abs(rows["train"]["duration_s"] - 75.5) < 0.01
    assert rows["train"]["next_run"].endswith("+00:00")
    assert rows["predict"]["tz"] == "Europe/Paris"
    assert rows["predict"]["last_status"] == "skipped"
    assert rows["predict"]["running"] == [live_id]
    assert rows["predict"]["next_run"][-6:] in ("+01:00", "+02:00")
    assert rows["idle"]["next_run"] is None and rows["idle"]["last_status"] is None


def test_an_invalid_crontab_is_reported_with_its_position(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("0 3 * * 9 echo\n")
    env = incli.base_env(HOME=str(tmp_path))
    proc = incli.run(["--crontab", str(tmp_path / "crontab"), "--state-dir", str(tmp_path / "s"), "jobs"], env=env)
    assert proc.returncode == 1
    assert f"{tmp_path / 'crontab'}:1:" in proc.stderr


def test_runs_the_supervisor_holds_back_are_shown_as_waiting(tmp_path: Path) -> None:
    """A stand-in supervisor: a real unix socket answering {"cmd": "status"} as control.py does."""
    import socket
    import threading

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(state / "control.sock"))
    server.listen(1)
    reply = {"ok": True, "jobs": [], "runs": [
        {"job": "train", "run_id": 7, "attempt": 1, "state": "active"},
        {"job": "predict", "run_id": None, "attempt": 1, "state": "waiting"},
    ]}
    requests: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            requests.append(conn.makefile("rb").readline())
            conn.sendall((json.dumps(reply) + "\n").encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        proc = jobs(tmp_path)
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr
    assert json.loads(requests[0]) == {"cmd": "status"}
    body = {line.split()[0]: line for line in proc.stdout.splitlines()[2:]}
    assert "waiting on upstream" in body["predict"]


@pytest.mark.e2e
def test_without_crontab_option_it_shows_the_crontab_the_state_dirs_supervisor_runs(tmp_path: Path, supervisors) -> None:
    """The supervisor runs a crontab outside the default place; `--state-dir` alone is enough."""
    from tests.test_daemon import Supervisor

    home = tmp_path / "home"
    home.mkdir()
    sup = Supervisor(tmp_path, CRONTAB)
    supervisors.append(sup)
    sup.wait_ready()
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TZ": "UTC"}
    proc = subprocess.run([sys.executable, "-m", "cronplus", "--state-dir", str(sup.state), "jobs", "--json"],
                          capture_output=True, text=True, env=env, timeout=30, cwd=home)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["job"] for line in proc.stdout.splitlines()] == ["train", "predict", "idle"]
    # an explicit --crontab still wins
    (tmp_path / "other").write_text("# cronplus: name=solo\n0 1 * * * true\n")
    proc = subprocess.run([sys.executable, "-m", "cronplus", "--state-dir", str(sup.state), "--crontab",
                           str(tmp_path / "other"), "jobs", "--json"], capture_output=True, text=True, env=env, timeout=30)
    assert [json.loads(line)["job"] for line in proc.stdout.splitlines()] == ["solo"]
    assert sup.stop() == 0


def test_a_job_removed_while_it_runs_is_listed_until_its_run_ends(tmp_path: Path) -> None:
    hist = History(tmp_path / "state" / "history.db")
    try:
        now = time.time()
        live = hist.start_run(job="old-etl", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=now - 5, tz=None,
                              started_at=now - 5, log_path=None, owner="sup")
    finally:
        hist.close()
    proc = jobs(tmp_path)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.splitlines()[-1]
    assert last.split()[0] == "old-etl" and "(removed from the crontab)" in last and f"running (run {live})" in last
    objs = [json.loads(line) for line in jobs(tmp_path, "--json").stdout.splitlines()]
    assert objs[-1]["job"] == "old-etl" and objs[-1]["schedule"] is None and objs[-1]["running"] == [live]
