"""The real `cronplus run` under a stand-in service manager: a datagram socket in tmp_path as
$NOTIFY_SOCKET, a file as the journal stream. What systemd would see: READY=1, STATUS=,
WATCHDOG=1 at the requested rate, RELOADING=1 + READY=1 around SIGHUP, STOPPING=1 on SIGTERM,
and `<N>`-prefixed log lines without timestamps."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


class Manager:
    """Receives sd_notify datagrams the way systemd does (one datagram = one message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []

    def wait_for(self, predicate: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.messages.append(message)
            if message.startswith(predicate):
                return message
        raise AssertionError(f"no {predicate!r} within {timeout}s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


def test_the_supervisor_reports_its_life_cycle_to_the_service_manager(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=backup\n0 3 1 1 * true\n# cronplus: name=sync\n0 4 1 1 * true\n")
    journal = tmp_path / "journal"
    manager = Manager(tmp_path / "notify.sock")
    with open(journal, "w") as stderr:
        st = os.fstat(stderr.fileno())
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRONPLUS_")}
        env.update(
            NOTIFY_SOCKET=str(manager.path),
            WATCHDOG_USEC="400000",  # ping every 0.2 s
            JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}",
            HOME=str(tmp_path),
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "cronplus", "run", "--crontab", str(crontab), "--state-dir", str(tmp_path / "state")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
        )
    try:
        assert manager.wait_for("READY=1") == "READY=1"
        status = manager.wait_for("STATUS=")
        assert status.startswith("STATUS=2 jobs, 0 running, next: backup in ")
        manager.wait_for("WATCHDOG=1")
        manager.wait_for("WATCHDOG=1", timeout=1.0)  # and again: it keeps pinging

        proc.send_signal(signal.SIGHUP)
        reloading = manager.wait_for("RELOADING=1")
        assert reloading.split("\n")[1].startswith("MONOTONIC_USEC=")
        manager.wait_for("READY=1")

        proc.send_signal(signal.SIGTERM)
        manager.wait_for("STOPPING=1")
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        manager.close()

    lines = journal.read_text().splitlines()
    assert lines, "the supervisor logged nothing"
    assert all(line[:3] in ("<2>", "<3>", "<4>", "<5>", "<6>", "<7>") for line in lines), lines
    assert any(line.startswith("<6>") and "started" in line for line in lines), lines
