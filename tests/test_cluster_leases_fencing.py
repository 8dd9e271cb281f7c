"""Fencing on the scheduler's side (engine/takeover.py, records.py), on a real SQLite store and
real processes: the finish of a run is fenced on its owner in both backends, so this runs on
the single-host store too (a take-over is simulated by writing the taker's end first)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cronplus.clock import FakeClock
from cronplus.engine.takeover import fence, reown
from cronplus.status import RunStatus, Trigger
from cronplus.store.open import open_writer
from tests.conftest import Lines
from tests.waiting import alive

T0 = 1_750_000_000.0


def scheduler_for(tmp_path: Path, text: str) -> Any:
    from cronplus.crontab.parser import parse_crontab
    from cronplus.engine.scheduler import Scheduler

    (tmp_path / "logs").mkdir(exist_ok=True)
    history = open_writer(tmp_path / "history.db", host="a")
    crontab = parse_crontab(text, path=str(tmp_path / "crontab"), system=False)
    return Scheduler(crontab, history=history, alerting=None, log_dir=tmp_path / "logs", owner="a:1:0",
                     clock=FakeClock(T0), scheduling=False)


async def until(predicate: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def test_a_run_taken_over_while_it_ran_is_neither_recorded_again_nor_retried_here(
        tmp_path: Path, lines: Lines) -> None:
    flag = tmp_path / "go"
    scheduler = scheduler_for(tmp_path, "# cronplus: name=flaky retries=2 retry-delay=0s\n"
                                        f"* * * * * while [ ! -e {flag} ]; do sleep 0.02; done; exit 1\n")
    history = scheduler.history

    async def main() -> int:
        run = scheduler.trigger("flaky")
        run_id = run.attempt_id
        await until(lambda: history.get_run(run_id).pid is not None)
        # another host took it over: its end is written with that host's fence (the row's owner)
        history.finish_run(run_id, status=RunStatus.INTERRUPTED, ended_at=T0 + 5, exit_code=None,
                           reason="host a lost its lease", final=True, owner="a:1:0")
        flag.touch()  # the job ends (failed: a retry would follow)
        await asyncio.wait_for(scheduler.wait_idle(), 20)
        return run_id

    run_id = asyncio.run(main())
    rows = history.query(jobs=["flaky"])
    assert [(r.run_id, r.status, r.reason) for r in rows] == [(run_id, RunStatus.INTERRUPTED, "host a lost its lease")]
    assert [line for line in lines.lines if "took it over" in line] == [
        f"job flaky: run {run_id} failed here, but another host took it over (this host's lease ran out):"
        " not recorded twice"]
    scheduler.store.close()
    history.close()


def test_a_host_that_lost_its_lease_kills_what_runs_records_none_of_it_and_goes_on_under_a_new_owner(
        tmp_path: Path, lines: Lines) -> None:
    scheduler = scheduler_for(tmp_path, "# cronplus: name=long\n* * * * * echo $$ > pid; exec sleep 60\n")
    history = scheduler.history

    async def main() -> tuple[int, int]:
        run = scheduler.trigger("long")
        await until(lambda: run.state == "running" and run.handle is not None)
        pid = run.handle.pid
        assert fence(scheduler, "its runs were taken over by b:1:0") == 1
        assert run.state == "final" and run.done.is_set()
        await until(lambda: not alive(pid), 10)  # killed at once: no grace
        reown(scheduler, "a:2:0")
        again = scheduler.trigger("long")
        await until(lambda: again.state == "running")
        return run.attempt_id, again.attempt_id

    async def both() -> tuple[int, int]:
        ids = await main()
        await scheduler.shutdown(0.0, "test over")
        return ids

    fenced, later = asyncio.run(both())
    first, second = history.get_run(fenced), history.get_run(later)
    assert first is not None and first.status is RunStatus.RUNNING, "the fenced run's end is the taker's to record"
    assert second is not None and second.status is RunStatus.INTERRUPTED and second.trigger is Trigger.MANUAL
    assert history.conn.execute("SELECT owner FROM runs WHERE run_id = ?", (fenced,)).fetchone()[0] == "a:1:0"
    assert any("this host lost its lease (its runs were taken over by b:1:0): 1 running job(s) killed" in line
               for line in lines.lines)
    scheduler.store.close()
    history.close()


def test_a_single_host_store_has_no_lease_and_imports_nothing_of_postgresql(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from cronplus.store.open import open_writer; from cronplus.store.leases import leases_for;"
            " h = open_writer(sys.argv[1]); print(leases_for(sys.argv[1], h),"
            " 'cronplus.store.postgres_history' in sys.modules, 'psycopg' in sys.modules); h.close()")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "history.db")], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.split() == ["None", "False", "False"]
