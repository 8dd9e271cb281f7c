"""`cronplus run` under a (simulated) systemd: sd_notify datagrams on a real NOTIFY_SOCKET."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from tests.test_daemon import JOBS, Supervisor, cli


def read_until(sock: socket.socket, wanted: str, timeout: float = 5.0) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            seen.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if any(wanted in m for m in seen):
            return seen
    raise AssertionError(f"no {wanted!r} in {seen}")


def test_ready_status_reloading_and_stopping_are_notified(supervisors, tmp_path: Path) -> None:
    addr = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)
    try:
        sup = Supervisor(tmp_path, JOBS, env={"NOTIFY_SOCKET": addr})
        supervisors.append(sup)
        seen = read_until(sock, "READY=1")
        seen += read_until(sock, "STATUS=")
        sup.wait_ready()
        assert cli(sup.state, sup.crontab, "trigger", "hello", "--wait").returncode == 0
        sup.proc.send_signal(signal.SIGHUP)
        reload_msgs = read_until(sock, "RELOADING=1")
        assert any("RELOADING=1" in m for m in reload_msgs)
        read_until(sock, "READY=1")
        assert sup.stop() == 0
        read_until(sock, "STOPPING=1")
    finally:
        sock.close()
