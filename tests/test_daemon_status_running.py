"""systemd's STATUS= line counts as running only the runs whose process runs: a run waiting for
its retry has no process (issue 11: the retry wait was counted as running)."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

from tests.test_daemon import Supervisor, cli
from tests.waiting import wait_until

JOBS = """\
# cronplus: name=flaky retries=1 retry-delay=1h
0 0 1 1 * exit 1
# cronplus: name=hello
0 0 1 1 * true
"""


def statuses(sock: socket.socket) -> list[str]:
    """Every STATUS= sent so far, oldest first (the socket is drained)."""
    got = []
    sock.settimeout(0.2)
    while True:
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            return got
        got += [line[len("STATUS="):] for line in message.splitlines() if line.startswith("STATUS=")]


def retry_waits(state: Path) -> int:
    with sqlite3.connect(state / "history.db") as conn:
        return conn.execute("SELECT count(*) FROM runs WHERE job = 'flaky' AND status = 'failed' AND final = 0"
                            ).fetchone()[0]


def test_a_run_in_its_retry_wait_is_not_counted_running(supervisors, tmp_path: Path) -> None:
    addr = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)
    try:
        sup = Supervisor(tmp_path, JOBS, env={"NOTIFY_SOCKET": addr})
        supervisors.append(sup)
        sup.wait_ready()
        assert cli(sup.state, sup.crontab, "trigger", "flaky").returncode == 0
        wait_until(lambda: retry_waits(sup.state) == 1, what="flaky's retry wait")
        statuses(sock)  # what was said until now
        # another run, start to end: the supervisor says STATUS= again after it, flaky still waiting
        assert cli(sup.state, sup.crontab, "trigger", "hello", "--wait").returncode == 0
        said = wait_until(lambda: statuses(sock), what="a STATUS= after hello's run")
        assert said[-1].startswith("2 jobs, 0 running"), said
        assert [r["state"] for r in sup.status()["runs"]] == ["active"]  # the socket shows it as before
    finally:
        sock.close()
