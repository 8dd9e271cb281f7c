"""Faults around a restart (issue 9, items 3-5), with the real `cronplus run`: a kill -9 in the middle
of a tick's spawns, a kill -9 while a retry is pending, and jobs whose children call `setsid`.

A tick is reached at once by running the supervisor on a clock shifted so the next minute is a
few seconds away (tests/shifted_run.py); both supervisors of a test share the offset."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from cronplus.service import control
from tests.http_receiver import Receiver
from tests.test_daemon import cli
from tests.waiting import alive, wait_until

ROOT = Path(__file__).resolve().parent.parent




def rows(state: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(f"file:{state / 'history.db'}?mode=ro", uri=True, timeout=10)
    try:
        return [tuple(r) for r in conn.execute(sql, args)]
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


class Shifted:
    """A `cronplus run` whose scheduler clock is shifted by `offset` seconds."""

    def __init__(self, tmp_path: Path, offset: float, *extra: str) -> None:
        self.state = tmp_path / "state"
        self.crontab = tmp_path / "crontab"
        self.stderr_path = tmp_path / f"supervisor-{time.monotonic_ns()}.err"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.shifted_run", repr(offset), "--crontab", str(self.crontab),
             "--state-dir", str(self.state), "run", *extra],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "w"))  # noqa: SIM115 - the child owns it

    def wait_ready(self, timeout: float = 30) -> Shifted:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"supervisor exited {self.proc.returncode}: {self.stderr_path.read_text()}")
            try:
                next(control.request(self.state / "control.sock", {"cmd": "status"}))
                return True
            except (control.NoSupervisor, StopIteration, OSError):
                return False

        wait_until(up, timeout, "the supervisor to be ready")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(30)


def offset_to_next_minute(lead: float) -> tuple[float, float]:
    """(offset, tick): a clock shifted by offset reaches the minute `tick` `lead` s from now."""
    now = time.time()
    tick = (now // 60 + 2) * 60
    return tick - lead - now, tick


def pids_in(directory: Path) -> dict[str, list[int]]:
    return {f.name: [int(p) for p in f.read_text().split()] for f in directory.iterdir()}


def kill_all(pids: dict[str, list[int]]) -> None:
    for group in pids.values():
        for pid in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# ---- item 3: a kill -9 in a tick's burst of spawns -----------------------------------------


def test_a_kill_9_in_a_100_job_burst_leaves_every_tick_recorded_and_no_job_running(shifted, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    ran.mkdir()
    (tmp_path / "crontab").write_text("".join(
        f"# cronplus: name=burst{i:03d} kill-grace=2s\n"
        f"* * * * * sleep 300 & echo $$ $! > {ran}/$CRONPLUS_JOB; wait\n" for i in range(100)))
    offset, tick = offset_to_next_minute(lead=4.0)
    first = Shifted(tmp_path, offset)
    shifted.append(first)
    try:
        first.wait_ready()
        wait_until(lambda: any(ran.iterdir()), 30, "the first job of the burst", every=0.002)
        first.stop(signal.SIGKILL)
        time.sleep(0.3)  # a job spawned last writes its pid file
        before = pids_in(ran)
        assert len(before) > 0, "the kill must fall in the burst"
        again = Shifted(tmp_path, offset)
        shifted.append(again)
        again.wait_ready()
        after = pids_in(ran)
        assert after == before, "the restart must not run the tick again"
        left = [pid for group in after.values() for pid in group if alive(pid)]
        assert left == [], f"{len(left)} job process(es) survived the restart"
        at_tick = rows(again.state, "SELECT job, status, trigger FROM runs WHERE scheduled_at = ?", tick)
        by_job: dict[str, list[tuple[str, str]]] = {}
        for job, status, trigger in at_tick:
            by_job.setdefault(job, []).append((status, trigger))
        assert sorted(by_job) == [f"burst{i:03d}" for i in range(100)], "every job's tick has a row"
        assert all(len(got) == 1 for got in by_job.values()), "one row per job and tick"
        for job in before:
            assert by_job[job] == [("interrupted", "schedule")]
        for job in set(by_job) - set(before):  # its row may precede a spawn the kill prevented
            assert by_job[job] in ([("missed", "schedule")], [("interrupted", "schedule")])
        assert any(got == [("missed", "schedule")] for got in by_job.values()), "the kill must fall in the burst"
        assert again.stop() == 0
    finally:
        kill_all(pids_in(ran))


def test_a_kill_9_in_a_burst_of_reboot_jobs_runs_the_rest_at_the_restart_and_none_twice(shifted, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    ran.mkdir()
    (tmp_path / "crontab").write_text("".join(
        f"# cronplus: name=boot{i:03d} kill-grace=2s\n"
        f"@reboot sleep 300 & echo $$ $! > {ran}/$CRONPLUS_JOB; wait\n" for i in range(100)))
    first = Shifted(tmp_path, 0.0)
    shifted.append(first)
    try:
        wait_until(lambda: any(ran.iterdir()), 30, "the first job of the burst", every=0.002)
        first.stop(signal.SIGKILL)
        time.sleep(0.3)
        before = pids_in(ran)
        again = Shifted(tmp_path, 0.0, "--shutdown-grace", "0.2")
        shifted.append(again)
        again.wait_ready()  # its socket answers while its own @reboot burst still starts runs
        wait_until(lambda: len(rows(again.state, "SELECT DISTINCT job FROM runs")) == 100, 30, "the restart's burst")
        by_job: dict[str, list[str]] = {}
        for job, status in rows(again.state, "SELECT job, status FROM runs ORDER BY run_id"):
            by_job.setdefault(job, []).append(status)
        assert sorted(by_job) == [f"boot{i:03d}" for i in range(100)], "every @reboot job has its run"
        assert all(len(got) == 1 for got in by_job.values()), "none runs twice in one boot"
        assert any(got == ["running"] for got in by_job.values()), "the kill must fall in the burst"
        for job in before:
            assert by_job[job] == ["interrupted"]
        assert again.stop() == 0
    finally:
        kill_all(pids_in(ran))


# ---- item 4: the alert of a run whose retry died with the supervisor -----------------------


def test_a_failure_whose_retry_was_pending_at_a_kill_9_is_alerted_once_after_the_restart(shifted, tmp_path: Path) -> None:
    with Receiver() as rx:
        (tmp_path / "crontab").write_text(
            f"# cronplus: name=flaky retries=1 retry-delay=60s alert={rx.url('/hook')}\n0 0 1 1 * exit 3\n")
        first = Shifted(tmp_path, 0.0)
        shifted.append(first)
        first.wait_ready()
        assert cli(first.state, first.crontab, "trigger", "flaky").returncode == 0
        wait_until(lambda: rows(first.state, "SELECT 1 FROM runs WHERE status = 'failed' AND final = 0"), 20,
                   "the failed first attempt")
        first.stop(signal.SIGKILL)
        again = Shifted(tmp_path, 0.0)
        shifted.append(again)
        again.wait_ready()
        got = rx.wait_for(1, timeout=15)
        assert again.stop() == 0
        assert [r.json()["data"]["event"] for r in rx.requests] == ["failure"]
        assert got[0].json()["data"]["exit_code"] == 3
        assert rows(again.state, "SELECT status, final, reason FROM runs") == [
            ("failed", 1, "exit 3; retry abandoned: supervisor stopped while the retry was pending")]


# ---- item 5: a child that calls setsid -----------------------------------------------------

SETSID_JOB = "setsid sleep 300 & echo $! > {pidfile}; sleep 300"


def setsid_child(tmp_path: Path) -> int:
    pid = int(wait_until(lambda: (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text().strip(),
                         20, "the setsid child"))
    wait_until(lambda: leads_a_session(pid), 10, "the child's setsid")  # $! is known before the exec
    return pid


def leads_a_session(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid
    except ProcessLookupError:
        return False


def test_a_timed_out_runs_setsid_child_is_killed(shifted, tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text(
        f"# cronplus: name=escape timeout=1s kill-grace=1s\n0 0 1 1 * {SETSID_JOB.format(pidfile=tmp_path / 'child.pid')}\n")
    sup = Shifted(tmp_path, 0.0)
    shifted.append(sup)
    sup.wait_ready()
    child = 0
    try:
        assert cli(sup.state, sup.crontab, "trigger", "escape").returncode == 0
        child = setsid_child(tmp_path)
        wait_until(lambda: rows(sup.state, "SELECT 1 FROM runs WHERE status = 'timeout'"), 20, "the timeout")
        assert not alive(child), "the timeout must end the run's setsid child"
        assert sup.stop() == 0
    finally:
        if child and alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_clean_stop_kills_a_cancelled_runs_setsid_child(shifted, tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text(
        f"# cronplus: name=escape kill-grace=1s\n0 0 1 1 * {SETSID_JOB.format(pidfile=tmp_path / 'child.pid')}\n")
    sup = Shifted(tmp_path, 0.0, "--shutdown-grace", "0.2")
    shifted.append(sup)
    sup.wait_ready()
    child = 0
    try:
        assert cli(sup.state, sup.crontab, "trigger", "escape").returncode == 0
        child = setsid_child(tmp_path)
        assert sup.stop() == 0
        assert not alive(child), "a clean stop must end the run's setsid child"
    finally:
        if child and alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_setsid_child_left_by_a_killed_supervisor_is_stopped_at_the_restart(shifted, tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text(
        f"# cronplus: name=escape kill-grace=1s\n0 0 1 1 * {SETSID_JOB.format(pidfile=tmp_path / 'child.pid')}\n")
    first = Shifted(tmp_path, 0.0)
    shifted.append(first)
    first.wait_ready()
    child = 0
    try:
        assert cli(first.state, first.crontab, "trigger", "escape").returncode == 0
        child = setsid_child(tmp_path)
        first.stop(signal.SIGKILL)
        again = Shifted(tmp_path, 0.0)
        shifted.append(again)
        again.wait_ready()
        assert not alive(child), "the restart must stop the run's setsid child"
        status, reason = rows(again.state, "SELECT status, reason FROM runs")[0]
        assert status == "interrupted" and "3 process(es) still running were terminated" in reason
        assert again.stop() == 0
    finally:
        if child and alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_replaced_runs_setsid_child_is_killed(tmp_path: Path) -> None:
    """overlap=replace cancels the running run: the scheduler in this process, on a FakeClock."""
    from tests.test_scheduler import World, run, ts

    children = tmp_path / "children"
    text = (f"# cronplus: name=escape overlap=replace kill-grace=1s\n"
            f"* * * * * setsid sleep 300 & echo $! >> {children}; sleep 300\n")

    async def main() -> None:
        w = World(tmp_path, text, ts("2026-01-01T12:00:30"))
        try:
            w.clock.jump(ts("2026-01-01T12:01:00") - w.clock.time())
            w.sched.step(w.clock.time())
            got = await asyncio.to_thread(wait_until, lambda: children.exists() and children.read_text().split(),
                                          20, "the first run's setsid child")
            first = int(got[0])
            await asyncio.to_thread(wait_until, lambda: leads_a_session(first), 10, "the child's setsid")
            w.clock.jump(60)
            w.sched.step(w.clock.time())  # the next tick replaces the running run
            replaced = next(r for r in list(w.sched.runs) if r.run_id == 1)
            await replaced.done.wait()
            assert not alive(first), "the replaced run's setsid child must end with it"
            await w.sched.shutdown(0.0)
        finally:
            kill_all({"children": [int(p) for p in children.read_text().split()] if children.exists() else []})
            w.history.close()

    run(main())
