"""Staying available during a big tick: the control socket is served while a tick starts a
thousand runs (it used to wait for the whole tick: ~12 s at 2,000 jobs), and `cronplus jobs`
never shows another crontab because the supervisor was slow to answer."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_daemon import Supervisor

pytestmark = pytest.mark.e2e

FANOUT = 1000  # @reboot jobs: a fresh state dir runs them all in the first step, like one big tick


def status_once(sock_path: Path) -> tuple[float, dict]:
    """One status request on a fresh connection: (seconds to the answer, the answer)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(120)
        sock.connect(str(sock_path))
        sent = time.monotonic()
        sock.sendall(b'{"cmd": "status"}\n')
        with sock.makefile("r") as f:
            line = f.readline()
        return time.monotonic() - sent, json.loads(line)


def test_the_control_socket_answers_while_a_big_tick_is_still_starting_its_runs(supervisors, tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("".join(f"# cronplus: name=j{i}\n@reboot true\n" for i in range(FANOUT)))
    sup = Supervisor(tmp_path, "")
    supervisors.append(sup)
    sock_path = sup.state / "control.sock"
    deadline = time.monotonic() + 30
    while not sock_path.exists():  # it exists before the first step starts the runs
        assert sup.proc.poll() is None and time.monotonic() < deadline, sup.stderr
        time.sleep(0.001)
    during: list[tuple[float, int]] = []  # (latency, runs not yet started) of answers given mid-tick
    while True:
        try:
            latency, reply = status_once(sock_path)
        except (ConnectionRefusedError, FileNotFoundError):
            time.sleep(0.001)  # bound but not yet listening
            continue
        not_started = sum(1 for run in reply["runs"] if run["run_id"] is None)
        if not not_started:
            break
        during.append((latency, not_started))
    with sqlite3.connect(sup.state / "history.db") as db:
        first, last, rows = db.execute("SELECT min(started_at), max(started_at), count(*) FROM runs").fetchone()
    tick_s = last - first
    assert rows == FANOUT
    # Answers that saw runs not yet started came while the tick was starting them (before the fix
    # the loop was not served until the tick had started every run, or only every 5 s).
    assert len(during) >= 3, f"{len(during)} answer(s) during a {tick_s:.2f} s tick: {during}"
    assert max(latency for latency, _ in during) < tick_s, (tick_s, during)
    assert sup.stop(timeout=60) == 0


def quiet_listener(path: Path) -> socket.socket:
    """A socket that accepts connections (the kernel queues them) and never answers: a supervisor
    too busy to reply."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(8)
    return sock


def test_jobs_says_the_supervisor_did_not_answer_instead_of_showing_another_crontab(tmp_path: Path) -> None:
    home = tmp_path / "home"
    default = home / ".config" / "cronplus" / "crontab"  # the fallback a non-root user would have seen
    default.parent.mkdir(parents=True)
    default.write_text("# cronplus: name=from-the-default-crontab\n0 0 1 1 * true\n")
    state = tmp_path / "state"
    named = tmp_path / "named.crontab"
    named.write_text("# cronplus: name=named\n0 0 1 1 * true\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRONPLUS_", "XDG_"))}
    env["HOME"] = str(home)
    with quiet_listener(state / "control.sock"):
        out = subprocess.run([sys.executable, "-m", "cronplus", "--state-dir", str(state), "jobs"],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 1
        assert "from-the-default-crontab" not in out.stdout
        assert out.stderr == (f"cronplus jobs: the supervisor on {state / 'control.sock'} did not answer within 4s; "
                              "which crontab it runs is unknown: try again, or name it with --crontab\n")
        # Named, the crontab is known: the table, and a word about what is missing from it.
        named_out = subprocess.run([sys.executable, "-m", "cronplus", "--state-dir", str(state), "--crontab", str(named),
                                    "jobs"], capture_output=True, text=True, env=env, timeout=60)
        assert named_out.returncode == 0, named_out.stderr
        assert "named" in named_out.stdout
        assert "did not answer within 4s: runs waiting on upstreams are not shown" in named_out.stderr
