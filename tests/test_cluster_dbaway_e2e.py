"""The database going away under the real `cronplus run --db postgresql://...` (issue 14 item 3),
on a PostgreSQL server of the test's own (the session's is shared: only a private one may be
stopped): a job started before a restart ends during it; systemd's STATUS= and /healthz say
"database unavailable" meanwhile; its end is recorded once the server is back and its alert
sent once. A supervisor whose database is unreachable at start says so in one line and exits 1
(systemd's Restart=on-failure starts it again: the units' RestartSec=10s)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.service import control
from cronplus.status import RunStatus
from cronplus.store.postgres import open_postgres
from tests.http_receiver import Receiver
from tests.pgserver import PgServer, start_server
from tests.waiting import wait_until
from tests.web_supervisor import WebSupervisor

pytestmark = pytest.mark.e2e


@pytest.fixture
def private_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    server = start_server(tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


def statuses(sock: socket.socket) -> list[str]:
    """The STATUS= texts sent so far (non-blocking)."""
    seen: list[str] = []
    sock.setblocking(False)
    while True:
        try:
            message = sock.recv(65536).decode()
        except BlockingIOError:
            return seen
        seen += [line[len("STATUS="):] for line in message.splitlines() if line.startswith("STATUS=")]


def test_a_database_restart_during_a_run_records_its_end_and_alerts_once_after_saying_so(
        supervisors: list[WebSupervisor], tmp_path: Path, private_pg: PgServer) -> None:
    url = private_pg.url(schema=private_pg.new_schema())
    go = tmp_path / "go"
    addr = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(addr)
    with Receiver() as rx:
        text = (f"# cronplus: name=nap alert={rx.url()}\n"
                f"0 0 1 1 * until [ -e {go} ]; do sleep 0.05; done; echo woke; exit 3\n")
        sup = WebSupervisor(tmp_path, text, "--db", url, "--host-id", "a", env={"NOTIFY_SOCKET": addr})
        supervisors.append(sup)
        sup.wait_http()
        reply = next(control.request(sup.state / "control.sock", {"cmd": "trigger", "job": "nap"}))
        assert reply["ok"], reply
        run_id = int(reply["run_id"])
        assert sup.get("/healthz").status == 200

        private_pg.stop()
        go.touch()  # it ends while the database is away
        wait_until(lambda: any("database unavailable" in s for s in statuses(notify)), what="STATUS= to say it")
        health = sup.get("/healthz")
        assert health.status == 503 and health.text.startswith("database unavailable: history database ")
        assert re.search(r"\(\d history write\(s\) held in memory\)$", health.text.strip())  # its end (and its start's)
        assert rx.requests == [], "no alert before its end is recorded"

        private_pg.start_again()
        wait_until(lambda: sup.get("/healthz").status == 200, timeout=60, what="the reconnect (1 s doubling)")
        rx.wait_for(1, timeout=30)
        with open_postgres(url, readonly=True) as reader:
            record = reader.get_run(run_id)
        assert record is not None and (record.status, record.exit_code, record.host) == (RunStatus.FAILED, 3, "a")
        time.sleep(1.0)  # a second delivery would come within the worker's first retry
        assert len(rx.requests) == 1 and rx.requests[0].json()["data"]["run_id"] == run_id
        assert sup.stop() == 0
    notify.close()
    log = sup.stderr
    assert log.count("database unavailable") == 1 and len(re.findall(r"is back: \d held history write\(s\) written", log)) == 1
    assert "Traceback" not in log and private_pg.password not in log


def test_a_supervisor_whose_database_is_unreachable_at_start_says_so_in_one_line_and_exits_1(
        tmp_path: Path, private_pg: PgServer) -> None:
    url = private_pg.url(schema=private_pg.new_schema())
    private_pg.stop()
    (tmp_path / "crontab").write_text("* * * * * true\n")
    done = subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(tmp_path / "crontab"),
                           "--state-dir", str(tmp_path / "state"), "run", "--db", url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cronplus run: history database postgresql://cronplus@127.0.0.1:")
    assert "cannot connect" in lines[0] and private_pg.password not in done.stderr


def test_a_supervisor_stopped_while_the_database_is_away_keeps_the_held_end_and_the_next_start_writes_it(
        supervisors: list[WebSupervisor], tmp_path: Path, private_pg: PgServer) -> None:
    url = private_pg.url(schema=private_pg.new_schema())
    go = tmp_path / "go"
    with Receiver() as rx:
        text = (f"# cronplus: name=nap alert={rx.url()}\n"
                f"0 0 1 1 * until [ -e {go} ]; do sleep 0.05; done; exit 4\n")
        first = WebSupervisor(tmp_path, text, "--db", url, http=None)
        supervisors.append(first)
        first.wait_ready()
        reply = next(control.request(first.state / "control.sock", {"cmd": "trigger", "job": "nap"}))
        run_id = int(reply["run_id"])
        private_pg.stop()
        go.touch()
        wait_until(lambda: "database unavailable" in first.stderr, what="the end to be held")
        assert first.stop() == 0
        spool = first.state / "held-writes.jsonl"
        assert f"1 run end(s) kept in {spool}" in first.stderr and spool.exists()
        assert not [line for line in first.stderr.splitlines() if "not written" in line and "end of run" in line]

        private_pg.start_again()
        second = WebSupervisor(tmp_path, text, "--db", url, http=None)
        supervisors.append(second)
        second.wait_ready()
        assert not spool.exists()
        with open_postgres(url, readonly=True) as reader:
            record = reader.get_run(run_id)
        assert record is not None and (record.status, record.exit_code) == (RunStatus.FAILED, 4), record
        rx.wait_for(1, timeout=30)
        assert second.stop() == 0
    assert len(rx.requests) == 1 and rx.requests[0].json()["data"]["run_id"] == run_id
    assert "1 run end(s) held while the history database was away written" in second.stderr
    assert "interrupted" not in second.stderr and "Traceback" not in first.stderr + second.stderr
