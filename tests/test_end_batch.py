"""The run ends of one loop pass are written in one transaction (engine/ends.py): one COMMIT for
several ends, each with its alert decision; a batch whose shared write fails is written one end
at a time, as before."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from tests.test_scheduler import World, run, ts

T1 = ts("2026-01-01T12:01:00")
JOBS = "".join(f"# cronplus: name=j{i}\n* * * * * true\n" for i in range(6))


def commits(w: World) -> list[str]:
    """Every COMMIT the supervisor's connection issues from now on (SQLite's statement trace)."""
    seen: list[str] = []
    w.history.conn.set_trace_callback(lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None)
    return seen


def test_the_ends_of_one_loop_pass_share_one_commit(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, JOBS, ts("2026-01-01T12:00:30"))
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)  # no driver: the tick's rows, spawns and pids are written before it returns
        seen = commits(w)  # what follows are the ends
        time.sleep(1.0)  # the loop is held while every job exits: their ends come in the same passes
        await w.sched.wait_idle()
        w.history.conn.set_trace_callback(None)
        assert [r[2] for r in w.rows()] == ["success"] * 6
        assert [r[0] for r in w.history.conn.execute("SELECT final FROM runs")] == [1] * 6
        assert len(seen) == 1, seen  # one transaction for the six ends, not six

    run(main())


def test_a_batch_whose_shared_write_fails_writes_each_end_on_its_own(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, JOBS, ts("2026-01-01T12:00:30"))
        # j3's end cannot be written (a trigger refuses it): the batch is rolled back and each
        # end is written alone, so the five others are recorded and only j3's run fails
        w.history.conn.execute("CREATE TRIGGER refuse BEFORE UPDATE OF status ON runs WHEN NEW.job = 'j3'"
                               " AND NEW.status != 'running' BEGIN SELECT RAISE(ABORT, 'refused'); END")
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        others = [r for r in w.sched.runs if r.job.name != "j3"]
        time.sleep(1.0)  # the loop is held while every job exits: their ends come in the same passes
        await asyncio.wait_for(asyncio.gather(*(r.done.wait() for r in others)), 60)
        got = {r[0]: r[2] for r in w.rows()}
        assert got == {"j0": "success", "j1": "success", "j2": "success", "j3": "running", "j4": "success",
                       "j5": "success"}

    run(main())


def test_a_trigger_wait_sees_its_row_final_when_told_the_run_ended(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, JOBS, ts("2026-01-01T12:00:30"))
        w.clock.jump(T1 - w.clock.time())
        runs = [w.sched.trigger(f"j{i}") for i in range(6)]
        time.sleep(1.0)
        reader = sqlite3.connect(tmp_path / "history.db")  # another connection: sees commits only
        try:
            for r in runs:
                await asyncio.wait_for(r.done.wait(), 30)
                (status,) = reader.execute("SELECT status FROM runs WHERE run_id = ?", (r.attempt_id,)).fetchone()
                assert status == "success"
        finally:
            reader.close()

    run(main())
