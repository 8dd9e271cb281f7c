"""Pools and the global cap with real processes (engine/pools.py): one training at a time in
gpu=1, --max-running, first come first served, after= and overlap= still honoured, a reload
changing a pool's size, shutdown with runs queued. A FakeClock moved a little on every step
stands in for the wall clock, so that a queued run's wait (runs.queued_s) is measurable."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cronplus.crontab.parser import parse_crontab
from cronplus.engine.runstate import RunState
from cronplus.engine.scheduler import Scheduler
from tests.test_scheduler import World, run, ts

T1 = ts("2026-01-01T12:01:00")
T2 = ts("2026-01-01T12:02:00")
HELD = (RunState.QUEUED, RunState.POOLED, RunState.WAITING)


class PoolWorld(World):
    def __init__(self, tmp_path: Path, text: str, *, max_running: int | None = None) -> None:
        self.max_running = max_running
        super().__init__(tmp_path, text, ts("2026-01-01T12:00:30"))

    def new_scheduler(self) -> Scheduler:
        crontab = parse_crontab(self.text, path=str(self.tmp_path / "crontab"), system=False)
        return Scheduler(crontab, history=self.history, alerting=None, log_dir=self.tmp_path / "logs",
                         owner="test", clock=self.clock, max_running=self.max_running)

    async def settle(self, step_s: float = 0.1) -> None:
        """Step every 20 ms, the clock `step_s` further each time, until no run is in flight."""
        while any(r.state.started or r.state in HELD for r in self.sched.runs):
            await asyncio.sleep(0.02)
            self.clock.jump(step_s)
            self.sched.step(self.clock.time())

    def states(self) -> dict[str, str]:
        return {r.job.name: r.state.value for r in self.sched.runs}

    def queued(self) -> dict[str, float | None]:
        return {job: q for job, q in self.history.conn.execute("SELECT job, queued_s FROM runs ORDER BY run_id")}


def exclusive(lock: Path, name: str, seconds: float = 0.3) -> str:
    """A command that fails (exit 9) if another holder of `lock` runs at the same time, and
    writes its name to the order file when it starts."""
    return f"mkdir {lock} || exit 9; echo {name} >> {lock.parent}/order; sleep {seconds}; rmdir {lock}"


def order(tmp_path: Path) -> list[str]:
    return (tmp_path / "order").read_text().split()


def test_one_training_at_a_time_in_a_pool_of_one_the_second_waits_queued_then_runs(tmp_path: Path) -> None:
    async def main() -> None:
        lock = tmp_path / "gpu"
        w = PoolWorld(tmp_path, f"# cronplus-pools: gpu=1\n"
                                f"# cronplus: name=train-a pool=gpu\n* * * * * {exclusive(lock, 'a')}\n"
                                f"# cronplus: name=train-b pool=gpu\n* * * * * {exclusive(lock, 'b')}\n")
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        assert w.states() == {"train-a": "running", "train-b": "pooled"}
        assert [r for r in w.rows() if r[0] == "train-b"] == []  # no row until it starts
        await w.settle()
        assert [(r[0], r[2]) for r in w.rows()] == [("train-a", "success"), ("train-b", "success")]
        queued = w.queued()
        assert queued["train-a"] is None
        assert queued["train-b"] is not None and queued["train-b"] > 0
        started_b = w.history.conn.execute("SELECT started_at FROM runs WHERE job = 'train-b'").fetchone()[0]
        assert started_b - T1 == queued["train-b"]  # it waited from its tick until its start

    run(main())


def test_max_running_two_with_five_due_jobs_runs_two_at_a_time(tmp_path: Path) -> None:
    async def main() -> None:
        slots = tmp_path / "slots"
        slots.mkdir()
        take = (f"if mkdir {slots}/1 2>/dev/null; then s=1; elif mkdir {slots}/2 2>/dev/null; then s=2; "
                f"else exit 9; fi; sleep 0.2; rmdir {slots}/$s")
        w = PoolWorld(tmp_path, "".join(f"# cronplus: name=j{i}\n* * * * * {take}\n" for i in range(5)), max_running=2)
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        assert sorted(w.states().values()) == ["pooled"] * 3 + ["running"] * 2
        await w.settle()
        assert [r[2] for r in w.rows()] == ["success"] * 5  # none found both slots taken
        waited = [q for q in w.queued().values() if q is not None]
        assert len(waited) == 3 and all(q > 0 for q in waited)

    run(main())


def test_queued_runs_start_first_come_first_served_across_jobs(tmp_path: Path) -> None:
    async def main() -> None:
        lock = tmp_path / "db"
        names = ["hold", "c", "a", "b"]
        w = PoolWorld(tmp_path, "# cronplus-pools: db=1\n" + "".join(
            f"# cronplus: name={n} pool=db\n0 0 1 1 * {exclusive(lock, n, 0.1)}\n" for n in names))
        for name in names:  # queued in this order, not the file's nor the names'
            w.sched.trigger(name)
        assert [w.states()[n] for n in names] == ["running", "pooled", "pooled", "pooled"]
        await w.settle()
        assert order(tmp_path) == names
        assert [r[2] for r in w.rows()] == ["success"] * 4

    run(main())


def test_a_pooled_job_still_waits_for_its_upstream_and_its_overlap_skip_counts_the_queued_run(tmp_path: Path) -> None:
    async def main() -> None:
        lock = tmp_path / "gpu"
        w = PoolWorld(tmp_path, f"# cronplus-pools: gpu=1\n"
                                f"# cronplus: name=hog pool=gpu\n1 12 * * * {exclusive(lock, 'hog', 0.5)}\n"
                                f"# cronplus: name=up pool=gpu overlap=skip\n* * * * * {exclusive(lock, 'up', 0.1)}\n"
                                f"# cronplus: name=down pool=gpu after=up\n1 12 * * * {exclusive(lock, 'down', 0.1)}\n")
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        assert w.states() == {"hog": "running", "up": "pooled", "down": "waiting"}
        w.clock.jump(T2 - w.clock.time())  # up's next tick while its first is still queued
        w.sched.step(T2)
        await w.settle()
        rows = [(r[0], r[2], r[4], r[5]) for r in w.rows()]
        assert ("up", "skipped", T2, "previous run ? still running") in rows
        assert order(tmp_path) == ["hog", "up", "down"]  # down ran after up, not beside it
        assert sorted((job, status) for job, status, _, _ in rows) == [
            ("down", "success"), ("hog", "success"), ("up", "skipped"), ("up", "success")]

    run(main())


def test_a_reload_that_grows_a_pool_lets_the_queued_runs_in(tmp_path: Path) -> None:
    async def main() -> None:
        jobs = "".join(f"# cronplus: name=t{i} pool=gpu\n* * * * * sleep 0.3\n" for i in range(3))
        w = PoolWorld(tmp_path, "# cronplus-pools: gpu=1\n" + jobs)
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        assert sorted(w.states().values()) == ["pooled", "pooled", "running"]
        w.sched.reload(parse_crontab("# cronplus-pools: gpu=3\n" + jobs, path=str(tmp_path / "crontab"), system=False))
        w.sched.step(w.clock.time())
        assert sorted(w.states().values()) == ["running"] * 3
        await w.settle()
        assert [r[2] for r in w.rows()] == ["success"] * 3

    run(main())


def test_a_reload_that_shrinks_a_pool_lets_no_one_in_until_it_is_under_its_size(tmp_path: Path) -> None:
    async def main() -> None:
        lock = tmp_path / "gpu"
        jobs = "".join(f"# cronplus: name=t{i} pool=gpu\n* * * * * {exclusive(lock, f't{i}', 0.2) if i else 'sleep 0.3'}\n"
                       for i in range(4))
        w = PoolWorld(tmp_path, "# cronplus-pools: gpu=2\n" + jobs)
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        w.sched.reload(parse_crontab("# cronplus-pools: gpu=1\n" + jobs, path=str(tmp_path / "crontab"), system=False))
        await w.settle()
        assert [r[2] for r in w.rows()] == ["success"] * 4  # t1..t3 never ran two at once

    run(main())


def test_shutdown_with_runs_queued_records_each_not_started_run(tmp_path: Path) -> None:
    async def main() -> None:
        jobs = "".join(f"# cronplus: name=t{i} pool=gpu\n* * * * * sleep 5\n" for i in range(3))
        w = PoolWorld(tmp_path, "# cronplus-pools: gpu=1\n" + jobs)
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        await asyncio.sleep(0.1)
        w.clock.jump(2.0)
        await w.sched.shutdown(0.2)
        rows = {r[0]: (r[2], r[5]) for r in w.rows()}
        assert rows == {"t0": ("interrupted", "supervisor shutdown"),
                        "t1": ("skipped", "supervisor shutdown before it could start"),
                        "t2": ("skipped", "supervisor shutdown before it could start")}
        assert w.queued() == {"t0": None, "t1": 2.0, "t2": 2.0}
        assert not w.sched.runs  # (Scheduler.idle() went: scheduler.py at its line limit)

    run(main())


def test_a_retry_waits_for_a_slot_again_without_holding_one(tmp_path: Path) -> None:
    async def main() -> None:
        flaky = tmp_path / "flaky"
        w = PoolWorld(tmp_path, f"# cronplus-pools: gpu=1\n"
                                f"# cronplus: name=flaky pool=gpu retries=1 retry-delay=0.2\n"
                                f"* * * * * test -e {flaky} || {{ touch {flaky}; exit 1; }}\n"
                                f"# cronplus: name=other pool=gpu\n* * * * * sleep 0.5\n")
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        assert w.states() == {"flaky": "running", "other": "pooled"}
        while w.states().get("flaky") != "retry_wait":
            await asyncio.sleep(0.02)
            w.sched.step(w.clock.time())
        assert w.states()["other"] == "running"  # the retry's wait gave the slot away
        await w.settle()
        assert [(r[0], r[1], r[2]) for r in w.rows()] == [("flaky", 1, "failed"), ("other", 1, "success"),
                                                          ("flaky", 2, "success")]

    run(main())
