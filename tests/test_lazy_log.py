"""A run's log file is created at its job's first byte of output (engine/output.py prepare_log,
OutputPump(create=)): a job that prints nothing costs no inode. Its row keeps the log path;
`cronplus output` and the web's output read a missing log as empty when the run wrote nothing
(runs.log_bytes 0), and as deleted when retention evicted it (log_bytes NULL)."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cronplus.engine.output import OutputPump, open_log, prepare_log

JOBS = "# cronplus: name=quiet\n0 0 1 1 * true\n# cronplus: name=chatty\n0 0 1 1 * echo hi\n"


def cronplus(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    crontab = tmp_path / "crontab"
    if not crontab.exists():
        crontab.write_text(JOBS)
    return subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(crontab), "--state-dir",
                           str(tmp_path / "state"), *args], capture_output=True, timeout=60)


def rows(tmp_path: Path) -> dict[str, tuple[int, str, str, int | None]]:
    conn = sqlite3.connect(tmp_path / "state" / "history.db")
    try:
        found = conn.execute("SELECT job, run_id, status, log_path, log_bytes FROM runs ORDER BY run_id").fetchall()
    finally:
        conn.close()
    return {job: (run_id, status, log_path, log_bytes) for job, run_id, status, log_path, log_bytes in found}


def test_a_job_that_prints_nothing_gets_no_log_file_and_its_output_reads_empty(tmp_path: Path) -> None:
    for job in ("quiet", "chatty"):
        assert cronplus(tmp_path, "trigger", job).returncode == 0
    got = rows(tmp_path)
    quiet_id, status, quiet_log, quiet_bytes = got["quiet"]
    assert status == "success" and quiet_log.endswith(f"/quiet/{quiet_id}.log")  # the path is kept
    assert not os.path.lexists(quiet_log) and quiet_bytes == 0
    chatty_id, _, chatty_log, chatty_bytes = got["chatty"]
    assert Path(chatty_log).read_bytes() == b"hi\n" and chatty_bytes == 3
    assert os.stat(chatty_log).st_mode & 0o777 == 0o600
    shown = cronplus(tmp_path, "output", str(quiet_id))
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, b"", b"")
    assert cronplus(tmp_path, "output", str(chatty_id)).stdout == b"hi\n"
    Path(chatty_log).unlink()  # a log that was there and is gone is still reported gone
    gone = cronplus(tmp_path, "output", str(chatty_id))
    assert gone.returncode == 1 and b"no longer available" in gone.stderr


def pump_through(command: str, create: object) -> tuple[OutputPump, int]:
    async def main() -> tuple[OutputPump, int]:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        proc = await asyncio.create_subprocess_exec("/bin/sh", "-c", command, stdout=write_fd)
        os.close(write_fd)
        pump = OutputPump(read_fd, -1, 1 << 20, create=create)  # type: ignore[arg-type]
        pump.start(asyncio.get_running_loop())
        assert pump.eof is not None
        await asyncio.wait_for(pump.eof, 20)
        code = await proc.wait()
        pump.close()
        return pump, code

    return asyncio.run(main())


def test_the_pump_creates_the_log_at_the_first_byte_and_not_at_all_without_one(tmp_path: Path) -> None:
    made: list[int] = []
    log = tmp_path / "job" / "1.log"

    def create() -> int:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        made.append(fd)
        return fd

    pump, code = pump_through("exit 0", create)
    assert code == 0 and made == [] and pump.total == 0 and pump.error is None
    assert prepare_log(log) == -1 and not (tmp_path / "job").exists()  # a new job: its directory comes with its log
    log.parent.mkdir()
    pump, code = pump_through("seq 1 50000", create)
    os.close(made[0])
    expected = "".join(f"{i}\n" for i in range(1, 50001)).encode()
    assert len(made) == 1 and log.read_bytes() == expected and pump.written == len(expected)


def test_a_log_that_cannot_be_created_at_the_first_byte_is_lost_output_and_the_job_drains(tmp_path: Path) -> None:
    def create() -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    pump, code = pump_through("head -c 3000000 /dev/zero", create)
    assert code == 0 and pump.total == 3000000 and pump.written == 0
    assert pump.error is not None and pump.error.errno == errno.ENOSPC


def test_something_already_in_the_logs_place_is_opened_at_the_spawn_as_before(tmp_path: Path) -> None:
    old = tmp_path / "job" / "0.log"  # a sensor's probe log, reused: it must start empty again
    old.parent.mkdir()
    old.write_text("the previous probe's output\n")
    fd = prepare_log(old)
    try:
        assert fd >= 0 and old.read_bytes() == b""
    finally:
        os.close(fd)
    os.symlink(tmp_path / "elsewhere", tmp_path / "job" / "1.log")
    with pytest.raises(OSError) as refused:
        prepare_log(tmp_path / "job" / "1.log")
    assert refused.value.errno == errno.ELOOP


def test_a_job_directory_planted_as_a_symlink_is_never_written_through(tmp_path: Path) -> None:
    """prepare_log is one lstat: a symlinked job directory with nothing at the log's name there
    passes it (-1), so the refusal comes at the first byte, from open_log, which opens the
    directory without following it: nothing is ever made in the link's target."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "job").symlink_to(victim)
    log = tmp_path / "logs" / "job" / "7.log"
    assert prepare_log(log) == -1
    read_fd, write_fd = os.pipe()
    pump = OutputPump(read_fd, -1, 1 << 20, create=lambda: open_log(log))

    async def drain() -> None:
        pump.start(asyncio.get_running_loop())
        os.write(write_fd, b"a secret\n")
        os.close(write_fd)
        assert pump.eof is not None
        await asyncio.wait_for(pump.eof, 10)
        pump.close()

    asyncio.run(drain())
    assert pump.error is not None and pump.error.errno in (errno.ELOOP, errno.ENOTDIR)
    assert os.listdir(victim) == []


@pytest.mark.e2e
def test_the_web_reads_a_silent_runs_output_as_empty_and_a_deleted_one_as_gone(supervisors, tmp_path: Path) -> None:
    from tests.web_supervisor import start_web

    sup = start_web(supervisors, tmp_path, JOBS)
    quiet = sup.wait_final(sup.trigger("quiet").json()["run_id"])
    chatty = sup.wait_final(sup.trigger("chatty").json()["run_id"])
    assert not os.path.lexists(quiet["log_path"])
    empty = sup.get(f"/api/v1/runs/{quiet['run_id']}/output")
    assert (empty.status, empty.body) == (200, b"")
    Path(chatty["log_path"]).unlink()
    assert sup.get(f"/api/v1/runs/{chatty['run_id']}/output").status == 410
    assert sup.stop() == 0


def test_a_silent_run_on_a_shared_store_reads_empty_from_another_host(tmp_path: Path, pg_url: str) -> None:
    # no log file here either: its row keeps an empty head and tail, as an empty log gave
    from cronplus.clock import FakeClock
    from cronplus.crontab.parser import parse_crontab
    from cronplus.engine.scheduler import Scheduler
    from cronplus.store.postgres import open_postgres
    from tests.incli import base_env, run_bytes

    store = open_postgres(pg_url, host="host-a")
    try:
        async def main() -> int:
            clock = FakeClock(1_767_268_830.0)
            sched = Scheduler(parse_crontab("# cronplus: name=quiet\n* * * * * true\n", path=str(tmp_path / "crontab"),
                                            system=False), history=store, alerting=None, log_dir=tmp_path / "logs",
                              owner="test", clock=clock)
            clock.jump(30)
            sched.step(clock.time())
            while sched.runs:
                await asyncio.sleep(0.02)
            sched.store.close()
            (record,) = store.latest_runs("quiet")
            assert record.status == "success" and record.log_path and not os.path.lexists(record.log_path)
            return record.run_id

        run_id = asyncio.run(main())
        assert store.output_excerpt(run_id) is not None
    finally:
        store.close()
    done = run_bytes(["output", "--db", pg_url, str(run_id)], env=base_env(CRONPLUS_HOST_ID="host-b"))
    assert (done.returncode, done.stdout) == (0, b""), done.stderr
