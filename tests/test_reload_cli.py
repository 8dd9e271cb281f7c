"""`cronplus reload`: the real command against a real supervisor. It returns once the reload is
done (RELOADING=1 ... READY=1 already sent), exits 0 when applied and 1 with the errors when the
file is refused; the systemd units run it as ExecReload=, so `systemctl reload` does the same."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_daemon import JOBS, Supervisor, cli

pytestmark = pytest.mark.e2e

VENV_CRONPLUS = Path(sys.executable).parent / "cronplus"

THREE_JOBS = JOBS + "# cronplus: name=third\n0 0 1 1 * true\n"


def job_names(sup: Supervisor) -> set[str]:
    return {j["name"] for j in sup.status()["jobs"]}


def pending_datagrams(sock: socket.socket) -> list[str]:
    """What the supervisor had sent by now (the socket's queue, without waiting)."""
    got: list[str] = []
    sock.setblocking(False)
    while True:
        try:
            got.append(sock.recv(4096).decode())
        except BlockingIOError:
            return got


def test_a_good_file_is_applied_before_the_command_returns(supervisors, tmp_path: Path) -> None:
    sup = Supervisor(tmp_path, JOBS)
    supervisors.append(sup)
    sup.wait_ready()
    sup.crontab.write_text(THREE_JOBS)
    out = cli(sup.state, sup.crontab, "reload")
    assert (out.returncode, out.stdout, out.stderr) == (0, "reloaded: 3 job(s)\n", "")
    assert job_names(sup) == {"hello", "nap", "third"}
    assert sup.stop() == 0


def test_a_refused_file_exits_1_with_its_errors_and_the_old_crontab_stays(supervisors, tmp_path: Path) -> None:
    sup = Supervisor(tmp_path, JOBS)
    supervisors.append(sup)
    sup.wait_ready()
    sup.crontab.write_text(JOBS + "# cronplus: name=broken\n61 * * * * true\n0 0 1 1 * nap-too\n")
    out = cli(sup.state, sup.crontab, "reload")
    assert out.returncode == 1
    assert out.stdout == ""
    error, last = out.stderr.splitlines()
    assert error.startswith(f"{sup.crontab}:6:1: bad minute: 61 ")
    assert last == "cronplus reload: refused; the supervisor keeps the previous crontab (2 job(s))"
    assert job_names(sup) == {"hello", "nap"}
    assert cli(sup.state, sup.crontab, "trigger", "hello", "--wait").returncode == 0  # still at work
    assert sup.stop() == 0


def test_without_a_supervisor_it_says_so_and_exits_1(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text(JOBS)
    out = cli(tmp_path / "state", crontab, "reload")
    assert out.returncode == 1
    assert out.stderr.startswith(f"cronplus reload: no supervisor is running on state dir {tmp_path / 'state'} ")
    assert "Traceback" not in out.stderr


def test_reloading_and_ready_are_notified_before_the_command_returns(supervisors, tmp_path: Path) -> None:
    addr = tmp_path / "notify.sock"
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(addr))
    try:
        sup = Supervisor(tmp_path, JOBS, env={"NOTIFY_SOCKET": str(addr)})
        supervisors.append(sup)
        sup.wait_ready()
        pending_datagrams(manager)  # start-up's READY=1 and STATUS=
        sup.crontab.write_text(JOBS + "# cronplus: name=broken\n0 0 31 2 * true\n")
        out = cli(sup.state, sup.crontab, "reload")
        assert out.returncode == 0, out.stderr
        sent = [m for m in pending_datagrams(manager) if not m.startswith(("STATUS=", "WATCHDOG="))]
        # A file-watch reload may come first; every reload is RELOADING=1 (with the monotonic
        # time systemd >= 253 wants) then READY=1, and all of it happened before the answer.
        assert sent and len(sent) % 2 == 0, sent
        for reloading, ready in zip(sent[::2], sent[1::2], strict=True):
            name, usec = reloading.split("\n")
            assert name == "RELOADING=1" and usec.startswith("MONOTONIC_USEC=") and int(usec.split("=")[1]) > 0
            assert ready == "READY=1"
        assert sup.stop() == 0
    finally:
        manager.close()


def test_sighup_still_reloads(supervisors, tmp_path: Path) -> None:
    sup = Supervisor(tmp_path, JOBS)
    supervisors.append(sup)
    sup.wait_ready()
    sup.crontab.write_text(THREE_JOBS)
    sup.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while job_names(sup) != {"hello", "nap", "third"} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job_names(sup) == {"hello", "nap", "third"}
    assert sup.stop() == 0


@pytest.mark.skipif(not os.access(VENV_CRONPLUS, os.X_OK), reason="cronplus script not installed")
def test_the_installed_units_exec_reload_reaches_that_units_supervisor_and_fails_on_refusal(
        supervisors, tmp_path: Path) -> None:
    """ExecReload= as install-service writes it (same --state-dir as ExecStart=), run as the
    service manager would: exit 0 for a good file, non-zero (systemctl reload fails) for a bad one."""
    sup = Supervisor(tmp_path, JOBS)
    supervisors.append(sup)
    sup.wait_ready()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRONPLUS_")}
    unit = subprocess.run([str(VENV_CRONPLUS), "install-service", "--user", "--dry-run", "--crontab", str(sup.crontab),
                           "--state-dir", str(sup.state)], capture_output=True, text=True, env=env, timeout=60)
    assert unit.returncode == 0, unit.stderr
    [line] = [x for x in unit.stdout.splitlines() if x.startswith("ExecReload=")]
    exec_reload = shlex.split(line.removeprefix("ExecReload="))  # no %, $ or quotes in these paths
    assert exec_reload == [str(VENV_CRONPLUS), "reload", "--crontab", str(sup.crontab), "--state-dir", str(sup.state)]

    sup.crontab.write_text(THREE_JOBS)
    good = subprocess.run(exec_reload, capture_output=True, text=True, env=env, cwd="/", timeout=60)
    assert (good.returncode, good.stdout) == (0, "reloaded: 3 job(s)\n")
    sup.crontab.write_text("0 0 1 1 * true\n# cronplus: nme=x\n0 0 1 1 * true\n")
    bad = subprocess.run(exec_reload, capture_output=True, text=True, env=env, cwd="/", timeout=60)
    assert bad.returncode == 1 and f"{sup.crontab}:2:" in bad.stderr
    assert job_names(sup) == {"hello", "nap", "third"}
    assert sup.stop() == 0


def test_exec_reload_is_exec_start_with_reload_for_run_keeping_the_global_options() -> None:
    from cronplus.service.units import render_unit
    from tests.test_units import settings

    argv = ["/opt/py/bin/python3", "-m", "cronplus", "run", "--state-dir", "/srv/cron plus", "--system"]
    service = settings(render_unit(user=False, exec_start=argv))["Service"]
    assert service["ExecStart"] == ['/opt/py/bin/python3 -m cronplus run --state-dir "/srv/cron plus" --system']
    assert service["ExecReload"] == ['/opt/py/bin/python3 -m cronplus reload --state-dir "/srv/cron plus" --system']
    with pytest.raises(ValueError, match="no 'run' command"):
        render_unit(user=False, exec_start=["/usr/bin/cronplus"])
