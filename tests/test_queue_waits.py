"""Issue 13's loose ends in the scheduler, on a FakeClock over a real History with real
processes: a run queued by overlap=queue records its wait as `queued_s` (as a pool wait does),
and a pooled run's retry while its job is paused goes on (a started run goes on: README "Pause
and resume"), whether the pause finds the retry waiting for its delay or queued for a slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from cronplus.crontab.parser import parse_crontab
from cronplus.engine.runstate import RunState
from tests.test_pools import T1, T2, PoolWorld
from tests.test_scheduler import run

WAIT_S = 10.0  # real seconds a condition may take on a loaded machine before the test fails


async def until(w: PoolWorld, cond: Callable[[], bool], what: str) -> None:
    """Step the scheduler (its clock standing still) until `cond` holds."""
    deadline = time.monotonic() + WAIT_S
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {w.states()}"
        await asyncio.sleep(0.02)
        w.sched.step(w.clock.time())


def state(w: PoolWorld, name: str) -> RunState | None:
    return next((r.state for r in w.sched.runs if r.job.name == name), None)


def started_at(w: PoolWorld, job: str) -> list[float]:
    return [r[0] for r in w.history.conn.execute("SELECT started_at FROM runs WHERE job = ? ORDER BY run_id", (job,))]


def test_a_run_queued_by_overlap_queue_records_its_wait_as_queued_s(tmp_path: Path) -> None:
    async def main() -> None:
        go = tmp_path / "go"
        w = PoolWorld(tmp_path, f"# cronplus: name=a overlap=queue\n* * * * * while ! test -e {go}; do sleep 0.02; done\n")
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        await until(w, lambda: state(w, "a") is RunState.RUNNING, "a's first run")
        w.clock.jump(T2 - w.clock.time())
        w.sched.step(T2)
        assert sorted(r.state.value for r in w.sched.runs) == ["queued", "running"]
        w.clock.jump(42.0)  # the second tick waits 42 s (and a bit of settle's) behind the first
        go.touch()
        await w.settle(step_s=0.01)
        assert [(r[0], r[2]) for r in w.rows()] == [("a", "success"), ("a", "success")]
        first, second = [q for (q,) in w.history.conn.execute("SELECT queued_s FROM runs ORDER BY run_id")]
        assert first is None
        assert second is not None and second == started_at(w, "a")[1] - T2 and second >= 42.0

    run(main())


def test_an_overlap_queued_run_that_never_starts_records_its_wait_on_its_skipped_row(tmp_path: Path) -> None:
    async def main() -> None:
        go = tmp_path / "go"
        w = PoolWorld(tmp_path, f"# cronplus: name=a overlap=queue\n* * * * * while ! test -e {go}; do sleep 0.02; done\n")
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        await until(w, lambda: state(w, "a") is RunState.RUNNING, "a's first run")
        w.clock.jump(T2 - w.clock.time())
        w.sched.step(T2)
        w.clock.jump(5.0)
        w.sched.reload(parse_crontab("# cronplus: name=b\n0 0 1 1 * true\n", path="crontab", system=False))  # a removed
        go.touch()
        await w.settle(step_s=0.01)
        rows = list(w.history.conn.execute("SELECT status, queued_s FROM runs ORDER BY run_id"))
        assert [r[0] for r in rows] == ["success", "skipped"]
        assert rows[1][1] == 5.0

    run(main())


POOLED_RETRY = (
    "# cronplus-pools: gpu=1\n"
    # a: fails its first attempt, its retry succeeds; hog holds gpu's one slot until `go` exists
    "# cronplus: name=a pool=gpu retries=1 retry-delay={delay}\n"
    "1 12 * * * test -e {tmp}/a1 || {{ touch {tmp}/a1; exit 1; }}\n"
    "# cronplus: name=hog pool=gpu\n"
    "1 12 * * * while ! test -e {tmp}/go; do sleep 0.02; done\n"
)


async def retry_behind_hog(w: PoolWorld) -> None:
    """a's first attempt takes the slot at T1 (first in the file), fails; hog, in line, gets the slot."""
    w.clock.jump(T1 - w.clock.time())
    w.sched.step(T1)
    assert w.states() == {"a": "running", "hog": "pooled"}
    await until(w, lambda: state(w, "hog") is RunState.RUNNING, "a's failed first attempt to free the slot")


def test_a_pooled_retry_of_a_paused_job_still_runs_when_a_slot_frees(tmp_path: Path) -> None:
    """The pause finds the retry queued for a slot: before, it ended the run (its failed attempt
    made final, 'job paused'), while a retry still waiting for its delay went on."""

    async def main() -> None:
        w = PoolWorld(tmp_path, POOLED_RETRY.format(delay="0", tmp=tmp_path))
        await retry_behind_hog(w)
        await until(w, lambda: state(w, "a") is RunState.POOLED, "a's retry to queue for the slot")
        w.sched.pause(["a"], "alice")
        assert state(w, "a") is RunState.POOLED
        (tmp_path / "go").touch()
        await w.settle(step_s=0.01)
        assert sorted((r[0], r[1], r[2], r[3]) for r in w.rows()) == [
            ("a", 1, "failed", "schedule"), ("a", 2, "success", "retry"), ("hog", 1, "success", "schedule")]

    run(main())


def test_a_retry_due_while_its_job_is_paused_queues_for_the_slot_and_runs(tmp_path: Path) -> None:
    """The pause finds the retry waiting for its delay (RETRY_WAIT: a started run, it goes on);
    the retry then finds the pool full and queues, as any retry does."""

    async def main() -> None:
        w = PoolWorld(tmp_path, POOLED_RETRY.format(delay="1", tmp=tmp_path))
        await retry_behind_hog(w)
        w.sched.pause(["a"], "alice")
        assert state(w, "a") is RunState.RETRY_WAIT
        await until(w, lambda: state(w, "a") is RunState.POOLED, "a's retry to queue for the slot")
        (tmp_path / "go").touch()
        await w.settle(step_s=0.01)
        assert sorted((r[0], r[1], r[2], r[3]) for r in w.rows()) == [
            ("a", 1, "failed", "schedule"), ("a", 2, "success", "retry"), ("hog", 1, "success", "schedule")]

    run(main())


def test_a_paused_jobs_first_attempt_queued_for_a_slot_still_ends_unstarted(tmp_path: Path) -> None:
    """The other side of the line: a tick's run that never started is ended by the pause."""

    async def main() -> None:
        w = PoolWorld(tmp_path, "# cronplus-pools: gpu=1\n"
                                f"# cronplus: name=hog pool=gpu\n1 12 * * * while ! test -e {tmp_path}/go; do sleep 0.02; done\n"
                                "# cronplus: name=a pool=gpu\n1 12 * * * true\n")
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        assert w.states() == {"hog": "running", "a": "pooled"}
        w.sched.pause(["a"], "alice")
        (tmp_path / "go").touch()
        await w.settle(step_s=0.01)
        assert sorted((r[0], r[2], r[5]) for r in w.rows()) == [
            ("a", "skipped", "job paused before it could start"), ("hog", "success", None)]

    run(main())


def test_each_manual_trigger_into_a_full_pool_is_told_how_many_wait_ahead_of_it(tmp_path: Path) -> None:
    """The note is counted per line (O(1)), not by walking every queued run (O(n) a trigger)."""

    async def main() -> None:
        go = tmp_path / "go"
        names = ["hold", "a", "b", "c"]
        w = PoolWorld(tmp_path, "# cronplus-pools: gpu=1\n" + "".join(
            f"# cronplus: name={n} pool=gpu\n0 0 1 1 * while ! test -e {go}; do sleep 0.02; done\n" for n in names))
        notes = {}
        for name in names:
            run_ = w.sched.trigger(name)
            assert run_.chain is not None
            notes[name] = [n for n in run_.chain.notes if "queued for" in n]
        assert notes == {"hold": [], **{n: [f"job {n} is queued for pool gpu ({i} ahead): it starts when a slot frees"]
                                         for i, n in enumerate(names[1:])}}
        assert {r.job.name: p for r, p in w.sched.pools.positions().items()} == {
            "a": ("pool gpu", 0), "b": ("pool gpu", 1), "c": ("pool gpu", 2)}
        go.touch()
        await w.settle(step_s=0.01)
        assert [r[2] for r in w.rows()] == ["success"] * 4

    run(main())
