"""The web server inside the supervisor: off by default and then not even imported; it leaves
SIGTERM to the supervisor (one stop, in order, streams ended); /healthz answers 503 when the
scheduling loop is stuck or no longer runs."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.test_daemon import JOBS, Supervisor, cli
from tests.waiting import wait_until
from tests.web_supervisor import WebSupervisor, start_web

pytestmark = pytest.mark.e2e


def imported(stderr: str) -> set[str]:
    """Modules named by -X importtime's lines ("import time: self | cumulative | name")."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_help_does_not_import_the_web_stage() -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "cronplus", "--help"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    names = imported(out.stderr)
    assert "cronplus.cli" in names  # the check sees our modules
    assert not {n for n in names if n.startswith("cronplus.web")}
    run_help = subprocess.run([sys.executable, "-X", "importtime", "-m", "cronplus", "run", "--help"],
                              capture_output=True, text=True, timeout=30)
    assert "--http HOST:PORT" in run_help.stdout
    assert not {n for n in imported(run_help.stderr) if n.startswith("cronplus.web")}


def test_a_supervisor_without_http_never_imports_the_web_stage(supervisors, tmp_path: Path) -> None:
    env = {"PYTHONPROFILEIMPORTTIME": "1"}
    (tmp_path / "plain").mkdir()
    sup = Supervisor(tmp_path / "plain", JOBS, env=env)
    supervisors.append(sup)
    sup.wait_ready()
    assert cli(sup.state, sup.crontab, "trigger", "hello", "--wait").returncode == 0
    sup.status()
    assert sup.stop() == 0
    names = imported(sup.stderr)
    assert "cronplus.service.daemon" in names
    assert not {n for n in names if n.startswith("cronplus.web")}
    assert not (sup.state / "http.token").exists()

    (tmp_path / "web").mkdir()
    web = WebSupervisor(tmp_path / "web", JOBS, env=env)  # the same, with --http: it is imported
    supervisors.append(web)
    web.wait_http()
    assert web.stop() == 0
    assert "cronplus.web.server" in imported(web.stderr)


def test_sigterm_stops_the_supervisor_once_ending_the_streams_it_serves(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS, "--shutdown-grace", "0.3")
    run_id = sup.trigger("nap").json()["run_id"]  # sleep 30
    wait_until(lambda: sup.get(f"/api/v1/runs/{run_id}").json()["status"] == "running", what="nap to run")
    parts = urlsplit(sup.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", f"/api/v1/runs/{run_id}/output?follow=1")
    response = conn.getresponse()
    assert response.status == 200
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(response.read()))
    reader.start()
    began = time.monotonic()
    assert sup.stop(signal.SIGTERM, timeout=20) == 0
    reader.join(timeout=20)
    conn.close()
    assert not reader.is_alive() and got == [b""]  # the follower's response ended with the run
    assert time.monotonic() - began < 20
    log = sup.stderr
    assert log.count("stopping: no new runs") == 1 and log.count("cronplus supervisor stopped") == 1
    assert "Traceback" not in log
    assert sup.rows()[-1][1:3] == ("nap", "interrupted")
    assert not (sup.state / "http.address").exists()
    with pytest.raises(OSError):
        http.client.HTTPConnection(parts.hostname, parts.port, timeout=5).request("GET", "/healthz")


def _fault_supervisor(supervisors: list, tmp_path: Path) -> WebSupervisor:
    sup = WebSupervisor.__new__(WebSupervisor)
    sup.state = tmp_path / "state"
    sup.crontab = tmp_path / "crontab"
    sup.crontab.write_text(JOBS)
    sup.stderr_path = tmp_path / "supervisor.err"
    root = Path(__file__).resolve().parent.parent
    sup.proc = subprocess.Popen(
        [sys.executable, "-m", "tests.web_fault_run", "--crontab", str(sup.crontab), "--state-dir", str(sup.state),
         "run", "--http", "127.0.0.1:0"], stdout=subprocess.DEVNULL,
        stderr=open(sup.stderr_path, "w"),  # noqa: SIM115 - the child owns it
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    supervisors.append(sup)
    return sup.wait_http()


def test_healthz_is_503_while_the_loop_is_stuck_and_when_it_no_longer_runs(supervisors, tmp_path: Path) -> None:
    sup = _fault_supervisor(supervisors, tmp_path)
    assert (sup.get("/healthz").status, sup.get("/healthz").text) == (200, "ok\n")
    sup.proc.send_signal(signal.SIGUSR1)  # the loop sleeps 3 s in a callback
    stuck = wait_until(lambda: (r := sup.get("/healthz")).status == 503 and r, what="/healthz to see the stuck loop")
    assert "did not answer within 0.5s" in stuck.text
    assert stuck.headers["content-type"].startswith("text/plain")
    wait_until(lambda: sup.get("/healthz").status == 200, what="/healthz to recover with the loop")

    sup.proc.send_signal(signal.SIGUSR2)  # the scheduling task is cancelled: nothing schedules
    dead = wait_until(lambda: (r := sup.get("/healthz")).status == 503 and r, what="/healthz to see the dead loop")
    assert "not running" in dead.text
    assert sup.get("/api/v1/jobs").status == 200  # the rest still reads
    assert sup.stop() == 0
