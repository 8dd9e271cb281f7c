"""A full disk, for real: a 1 MiB tmpfs mounted in tmp_path and filled up (skipped with the reason
where mounting is not permitted). The history on a full disk: runs go on, their records are held
in memory and written, in order and with their alert decisions, once space is freed; the log
says so once. A full log disk: the run's record says its output was lost and why."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.alerts.alerting import Alerting
from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_crontab
from cronplus.engine.scheduler import Scheduler
from cronplus.store.history import History
from tests.conftest import Lines
from tests.test_scheduler import ts


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs to fill up (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the file system says ENOSPC; deleting it frees the space."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler




T0 = ts("2026-01-01T12:00:30")


async def settle(sched: Scheduler) -> None:
    """Let the runs started so far end (their tasks record them)."""
    while any(r.state.started for r in sched.runs):
        await asyncio.sleep(0.02)


def test_a_full_history_disk_holds_the_records_and_writes_them_in_order_when_space_returns(
        tmp_path: Path, small_disk: Path, lines: Lines) -> None:
    ran = tmp_path / "ran"
    text = (f"# cronplus: name=ok\n* * * * * echo $CRONPLUS_RUN_ID >> {ran}\n"
            f"# cronplus: name=bad alert=http://127.0.0.1:9/hook\n* * * * * echo $CRONPLUS_RUN_ID >> {ran}; exit 3\n")

    async def main() -> None:
        history = History(small_disk / "history.db")
        clock = FakeClock(T0)
        sched = Scheduler(parse_crontab(text, path=str(tmp_path / "crontab"), system=False), history=history,
                          alerting=Alerting(history, clock=clock), log_dir=tmp_path / "logs", owner="test",
                          clock=clock)
        filler = fill(small_disk)
        for minute in (1, 2, 3):  # three ticks on the full disk
            clock.jump(T0 + 30 + 60 * (minute - 1) - clock.time())
            sched.step(clock.time())
            await settle(sched)
        ids = [int(x) for x in ran.read_text().split()]
        assert len(ids) == 6, "the jobs ran on the full disk"
        assert history.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
        assert sched.store.problem == f"no space left on device: {small_disk / 'history.db'}"
        assert lines.count("no space left on device") == 1

        filler.unlink()
        assert sched.store.flush()
        rows = history.conn.execute("SELECT run_id, job, status, final, pid IS NOT NULL, reason FROM runs"
                                    " ORDER BY run_id").fetchall()
        assert sorted(ids) == [r[0] for r in rows], "each run kept the id its process was given"
        assert [(r[1], r[2], r[3], r[4]) for r in rows] == [("ok", "success", 1, 1), ("bad", "failed", 1, 1)] * 3
        alerts = history.conn.execute("SELECT event, run_id FROM outbox WHERE kind = 'alert'").fetchall()
        assert [tuple(a) for a in alerts] == [("failure", rows[1][0])], "the held end got its alert decision"
        assert lines.count("space is back") == 1 and sched.store.problem is None

        clock.jump(T0 + 30 + 60 * 3 - clock.time())  # and scheduling goes on, written at once
        sched.step(clock.time())
        await settle(sched)
        assert history.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 8
        assert lines.count("no space left on device") == 1
        sched.store.close()
        history.close()

    asyncio.run(main())


def test_a_dependency_waiting_on_a_held_end_sees_it(tmp_path: Path, small_disk: Path) -> None:
    text = "# cronplus: name=up\n* * * * * true\n# cronplus: name=down after=up\n* * * * * true\n"

    async def main() -> None:
        history = History(small_disk / "history.db")
        clock = FakeClock(T0)
        sched = Scheduler(parse_crontab(text, path=str(tmp_path / "crontab"), system=False), history=history,
                          alerting=None, log_dir=tmp_path / "logs", owner="test", clock=clock)
        filler = fill(small_disk)
        clock.jump(30)
        while True:
            sched.step(clock.time())
            await settle(sched)
            if not sched.runs:
                break
        filler.unlink()
        assert sched.store.flush()
        rows = history.conn.execute("SELECT job, status, reason FROM runs ORDER BY run_id").fetchall()
        assert [tuple(r) for r in rows] == [("up", "success", None), ("down", "success", None)]
        history.close()

    asyncio.run(main())


def test_a_full_log_disk_records_that_the_output_was_lost_and_why(tmp_path: Path, small_disk: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=chatty\n0 0 1 1 * echo 'hello world'\n"
                       "# cronplus: name=quiet\n0 0 1 1 * true\n")
    state = tmp_path / "state"
    state.mkdir()
    (state / "logs").symlink_to(small_disk, target_is_directory=True)
    base = [sys.executable, "-m", "cronplus", "--crontab", str(crontab), "--state-dir", str(state)]
    for job in ("chatty", "quiet"):  # each job's log directory exists before the disk is full
        subprocess.run([*base, "trigger", job], capture_output=True, text=True, timeout=60, check=True)
    fill(small_disk)
    for job in ("chatty", "quiet"):
        out = subprocess.run([*base, "trigger", job], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
    conn = sqlite3.connect(state / "history.db")
    rows = conn.execute("SELECT run_id, job, status, reason, log_path FROM runs ORDER BY run_id").fetchall()
    conn.close()
    chatty, quiet = rows[2], rows[3]
    assert chatty[1:4] == ("chatty", "success", f"output lost: no space left on device: {chatty[4]}")
    assert quiet[1:3] == ("quiet", "success")  # wrote nothing, lost nothing
    shown = subprocess.run([*base, "output", str(chatty[0])], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 1
    assert f"output lost: no space left on device: {chatty[4]}" in shown.stderr


def test_the_supervisor_on_a_full_disk_keeps_running_jobs_and_writes_them_when_space_returns(
        supervisors: list, tmp_path: Path, small_disk: Path) -> None:
    from tests.test_daemon import Supervisor, cli

    marker = tmp_path / "ran"
    text = (f"# cronplus: name=up\n0 0 1 1 * echo up >> {marker}\n"
            f"# cronplus: name=down after=up\n0 0 1 1 * echo down >> {marker}\n")
    (small_disk / "state").mkdir()
    (tmp_path / "state").symlink_to(small_disk / "state")  # all of the state dir on the small disk
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # systemd's end of sd_notify
    notify.bind(str(tmp_path / "notify.sock"))
    notify.setblocking(False)
    sup = Supervisor(tmp_path, text, env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    supervisors.append(sup)
    sup.wait_ready()
    state = sup.state
    filler = fill(small_disk)

    out = cli(state, sup.crontab, "trigger", "up", "--wait")
    assert out.returncode == 0, out.stdout + out.stderr
    deadline = time.monotonic() + 30
    while marker.read_text().split() != ["up", "down"]:  # the scheduling loop started the downstream
        assert time.monotonic() < deadline, sup.stderr
        time.sleep(0.05)
    assert sup.status()["ok"]
    assert sup.stderr.count("no space left on device") == 1
    statuses = [m for m in received(notify) if m.startswith("STATUS=")]
    assert any(f"no space left on device: {state / 'history.db'}: " in m and "held in memory" in m for m in statuses), statuses

    filler.unlink()  # the Store's retry timer writes the held rows by itself
    deadline = time.monotonic() + 90
    while [(r[1], r[2]) for r in sup.rows()] != [("up", "success"), ("down", "success")]:
        assert time.monotonic() < deadline, sup.stderr
        time.sleep(0.1)
    assert sup.stderr.count("space is back") == 1
    statuses = [m for m in received(notify) if m.startswith("STATUS=")]
    assert statuses and "held in memory" not in statuses[-1], statuses
    out = cli(state, sup.crontab, "trigger", "up", "--wait")
    assert out.returncode == 0 and len(sup.rows()) >= 3
    assert sup.stop() == 0
    notify.close()


def received(sock: socket.socket) -> list[str]:
    got = []
    while True:
        try:
            got.append(sock.recv(4096).decode())
        except BlockingIOError:
            return got


def test_alert_delivery_on_a_full_disk_says_so_once_and_delivers_when_space_returns(
        small_disk: Path, lines: Lines) -> None:
    from cronplus.alerts.alerting import new_payload
    from cronplus.alerts.delivery import DeliveryWorker, Policy
    from cronplus.store import history as history_module
    from cronplus.store import outbox
    from tests.http_receiver import Receiver

    db = small_disk / "history.db"
    conn = history_module.connect(db)
    with Receiver() as rx:
        data = {"event": "failure", "job": "backup", "run_id": 1, "attempt": 1, "status": "failed", "exit_code": 1,
                "host": "h", "output_tail": "boom", "cronplus_version": "0.1.0"}
        row_id = outbox.enqueue(conn, kind="alert", event="failure", job="backup", run_id=1, target=rx.url(),
                                format="json", secret_ref=None, payload=new_payload(data, now=time.time()),
                                now=time.time())
        filler = fill(small_disk)
        worker = DeliveryWorker(db, policy=Policy(connect_timeout=0.5, read_timeout=1.0), idle_poll_s=0.1, env={})
        worker.start()
        try:
            deadline = time.monotonic() + 30
            while not lines.count("alert delivery paused: no space left on device"):
                assert time.monotonic() < deadline, lines.lines
                time.sleep(0.02)
            for _ in range(3):  # more passes against the full disk: nothing more is said
                worker.wake()
                time.sleep(0.05)
            assert rx.requests == []
            filler.unlink()
            worker.wake()
            rx.wait_for(1, timeout=60)
            deadline = time.monotonic() + 60
            while outbox.get(conn, row_id).status != "delivered":  # type: ignore[union-attr]
                assert time.monotonic() < deadline, lines.lines
                time.sleep(0.02)
        finally:
            worker.stop()
            conn.close()
    assert lines.count("alert delivery paused") == 1
    assert lines.count("alert delivery loop error") == 0
    assert lines.count("the outbox is writable again") == 1


def test_a_supervisor_started_on_a_full_disk_without_history_says_why_in_one_line(
        tmp_path: Path, small_disk: Path) -> None:
    from tests.test_daemon import cli

    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=a\n0 0 1 1 * true\n")
    fill(small_disk)
    out = cli(small_disk / "state", crontab, "run", timeout=60)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert f"cronplus supervisor stopped: no space left on device: {small_disk / 'state'}" in out.stderr


def test_a_supervisor_restarted_on_a_full_disk_says_why_in_one_line_and_starts_once_space_returns(
        supervisors: list, tmp_path: Path, small_disk: Path) -> None:
    from tests.test_daemon import cli, start

    (small_disk / "state").mkdir()
    (tmp_path / "state").symlink_to(small_disk / "state")
    text = f"# cronplus: name=hello\n0 0 1 1 * echo hello >> {tmp_path / 'ran'}\n"
    assert start(supervisors, tmp_path, text).stop() == 0
    filler = fill(small_disk)
    out = cli(tmp_path / "state", tmp_path / "crontab", "run", timeout=60)  # SQLite cannot even open its WAL index
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"cronplus supervisor stopped: no space left on device: {tmp_path / 'state' / 'history.db'}" in out.stderr
    filler.unlink()  # what Restart=on-failure does next
    sup = start(supervisors, tmp_path, text)
    assert cli(sup.state, sup.crontab, "trigger", "hello", "--wait").returncode == 0
    assert [(r[1], r[2]) for r in sup.rows()] == [("hello", "success")]
    assert sup.stop() == 0


def test_a_log_disk_filling_up_during_a_run_records_how_much_output_was_kept(tmp_path: Path, small_disk: Path) -> None:
    import re

    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=big\n0 0 1 1 * head -c 3000000 /dev/zero; echo done >&2\n")
    state = tmp_path / "state"
    state.mkdir()
    (state / "logs").symlink_to(small_disk, target_is_directory=True)
    base = [sys.executable, "-m", "cronplus", "--crontab", str(crontab), "--state-dir", str(state)]
    out = subprocess.run([*base, "trigger", "big"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr  # the job was not stalled by its full log
    conn = sqlite3.connect(state / "history.db")
    status, reason, log_path = conn.execute("SELECT status, reason, log_path FROM runs").fetchone()
    conn.close()
    assert status == "success"
    match = re.fullmatch(r"output lost after (\d+) bytes: no space left on device: (.+)", reason)
    assert match and match[2] == log_path, reason
    assert 0 < int(match[1]) <= Path(log_path).stat().st_size < 3_000_000


def test_storage_problem_names_the_real_errors_of_a_refusing_disk_and_nothing_else(
        tmp_path: Path, small_disk: Path) -> None:
    from cronplus.store.faults import storage_problem
    from cronplus.store.history import connect

    db = small_disk / "history.db"
    conn = connect(db)
    fill(small_disk)
    with pytest.raises(sqlite3.Error) as full:
        for i in range(1000):  # until a WAL frame no longer fits
            conn.execute("INSERT INTO kv (key, value) VALUES (?, ?)", (f"k{i}", "x" * 4000))
    assert storage_problem(full.value, db) == f"no space left on device: {db}"
    with pytest.raises(OSError) as enospc:
        (small_disk / "more").write_bytes(b"x" * 8192)
    assert storage_problem(enospc.value, small_disk / "more") == f"no space left on device: {small_disk / 'more'}"
    conn.close()

    other = tmp_path / "other.db"
    connect(other).close()
    readonly = sqlite3.connect(f"file:{other}?mode=ro", uri=True)
    with pytest.raises(sqlite3.Error) as refused:
        readonly.execute("INSERT INTO kv (key, value) VALUES ('a', 'b')")
    readonly.close()
    assert storage_problem(refused.value, other) == f"cannot write {other}: attempt to write a readonly database"
    plain = sqlite3.connect(other)
    with pytest.raises(sqlite3.IntegrityError) as bug:
        plain.execute("INSERT INTO kv (key, value) VALUES ('a', NULL)")
    plain.close()
    assert storage_problem(bug.value, other) is None


def test_a_supervisor_stopped_while_the_disk_is_still_full_logs_every_record_it_could_not_write(
        supervisors: list, tmp_path: Path, small_disk: Path) -> None:
    from tests.test_daemon import cli, start

    (small_disk / "state").mkdir()
    (tmp_path / "state").symlink_to(small_disk / "state")
    sup = start(supervisors, tmp_path, "# cronplus: name=hello\n0 0 1 1 * true\n")
    fill(small_disk)
    answer = cli(sup.state, sup.crontab, "trigger", "hello", "--wait")
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert sup.stop() == 0
    assert f"history: not written (no space left on device: {sup.state / 'history.db'}): start of 1 run(s) of hello" \
        in sup.stderr
    assert "end of run 1 of job hello: success" in sup.stderr  # the first run of a new state dir
