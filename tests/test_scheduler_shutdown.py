"""Every run ends recorded: shutdown with a retry pending, with ticks waiting on an upstream or
queued (overlap=queue) or delayed by jitter; and jitter itself, driven by a FakeClock."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from cronplus.engine.runstate import RunState
from cronplus.status import RunStatus, Trigger
from cronplus.store.history import History
from tests.test_scheduler import World, run, ts

T1 = ts("2026-01-01T12:01:00")
T2 = ts("2026-01-01T12:02:00")


def world(tmp_path: Path, text: str) -> World:
    return World(tmp_path, text, ts("2026-01-01T12:00:30"))


def finals(w: World) -> list[tuple[str, str, int, str | None]]:
    return [tuple(r) for r in w.history.conn.execute("SELECT job, status, final, reason FROM runs ORDER BY run_id")]


async def until(predicate: object, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_shutdown_during_a_retry_wait_makes_the_ended_attempt_final_with_the_reason(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=a retries=3 retry-delay=60\n* * * * * exit 3\n")
        w.sched.step(T1)
        await until(lambda: any(r.state is RunState.RETRY_WAIT for r in w.sched.runs))
        started = time.monotonic()
        await w.sched.shutdown(5.0)
        assert time.monotonic() - started < 1  # a retry wait is not a running job: no grace spent
        assert finals(w) == [("a", "failed", 1, "exit 3; retry abandoned: supervisor shutdown")]
        assert not w.sched.runs

    run(main())


def test_a_replaced_run_in_its_retry_wait_is_final_naming_its_replacement(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=a overlap=replace retries=3 retry-delay=60\n* * * * * exit 3\n")
        w.sched.step(T1)
        await until(lambda: any(r.state is RunState.RETRY_WAIT for r in w.sched.runs))
        w.clock.jump(T2 - w.clock.time())
        w.sched.step(T2)
        await until(lambda: len([r for r in finals(w) if r[2] == 1]) == 1)
        assert finals(w)[0] == ("a", "failed", 1, "exit 3; retry abandoned: replaced by run 2")
        await w.sched.shutdown(0.0)

    run(main())


def test_shutdown_records_ticks_waiting_on_an_upstream_or_queued_as_skipped(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=up kill-grace=1\n* * * * * sleep 5\n"
                            "# cronplus: name=down after=up\n* * * * * true\n"
                            "# cronplus: name=q overlap=queue kill-grace=1\n* * * * * sleep 5\n")
        for when in (T1, T2):
            w.clock.jump(when - w.clock.time())
            w.sched.step(when)
            await asyncio.sleep(0.05)
        assert {(r.job.name, r.state) for r in w.sched.runs} >= {("down", RunState.WAITING), ("q", RunState.QUEUED)}
        await w.sched.shutdown(0.0)
        rows = [tuple(r) for r in w.history.conn.execute(
            "SELECT job, scheduled_at, status, reason, final FROM runs ORDER BY job, scheduled_at")]
        unstarted = "supervisor shutdown before it could start"
        assert rows == [
            ("down", T1, "upstream_failed", "gave up waiting for upstream up", 1),  # at its next tick
            ("down", T2, "skipped", unstarted, 1),
            ("q", T1, "interrupted", "supervisor shutdown", 1), ("q", T2, "skipped", unstarted, 1),
            ("up", T1, "interrupted", "supervisor shutdown", 1), ("up", T2, "skipped", "previous run 1 still running", 1),
        ]
        assert not w.sched.runs

    run(main())


def jittered(tmp_path: Path, seed: int) -> World:
    w = world(tmp_path, "# cronplus: name=a jitter=30s\n* * * * * true\n")
    w.sched.rng = random.Random(seed)
    return w


def test_a_jittered_job_starts_at_a_random_instant_within_jitter_after_its_tick(tmp_path: Path) -> None:
    async def main() -> None:
        w = jittered(tmp_path, 7)
        starts = []
        for minute in range(5):
            tick = T1 + 60 * minute
            await w.step_at(tick)
            delay = w.sched.next_wake(tick)
            assert 0 <= delay <= 30
            await w.step_at(tick + delay - 0.001)
            assert w.history.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == minute  # not yet
            await w.step_at(tick + delay)
            await w.sched.wait_idle()
            started_at, scheduled_at = w.history.conn.execute(
                "SELECT started_at, scheduled_at FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
            assert scheduled_at == tick and tick <= started_at <= tick + 30
            starts.append(started_at - tick)
        assert len(set(starts)) == 5 and max(starts) > 1  # spread out, not always at the tick

    run(main())


def test_shutdown_records_a_run_still_in_its_jitter_delay_as_skipped(tmp_path: Path) -> None:
    async def main() -> None:
        w = jittered(tmp_path, 7)
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        assert [r.state for r in w.sched.runs] == [RunState.DELAYED]
        await w.sched.shutdown(1.0)
        assert finals(w) == [("a", "skipped", 1, "supervisor shutdown before it could start")]

    run(main())


def test_at_start_an_attempt_left_waiting_for_its_retry_by_a_dead_supervisor_is_made_final(tmp_path: Path) -> None:
    history = History(tmp_path / "history.db")
    first = history.start_run(job="a", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T1, tz=None,
                              started_at=T1, log_path=None, owner="dead")
    history.finish_run(first, status=RunStatus.FAILED, ended_at=T1 + 1, exit_code=3, reason="exit 3", final=False)
    second = history.start_run(job="a", attempt=2, trigger=Trigger.RETRY, scheduled_at=T1, tz=None,
                               started_at=T1 + 2, log_path=None, owner="dead")
    history.finish_run(second, status=RunStatus.FAILED, ended_at=T1 + 3, exit_code=3, reason="exit 3", final=False)
    other = history.start_run(job="b", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T1, tz=None,
                              started_at=T1, log_path=None, owner="dead")
    fixed = history.mark_abandoned_retries(reason="retry abandoned: gone")
    assert [r.run_id for r in fixed] == [second]
    rows = [tuple(r) for r in history.conn.execute("SELECT run_id, status, final, reason FROM runs ORDER BY run_id")]
    assert rows == [(first, "failed", 0, "exit 3"), (second, "failed", 1, "exit 3; retry abandoned: gone"),
                    (other, "running", 0, None)]  # a running row is mark_interrupted's, not ours
    assert history.mark_abandoned_retries(reason="again") == []


def test_a_reload_removing_a_job_records_its_waiting_tick_as_skipped(tmp_path: Path) -> None:
    async def main() -> None:
        from cronplus.crontab.parser import parse_crontab

        w = world(tmp_path, "# cronplus: name=up kill-grace=1\n* * * * * sleep 5\n"
                            "# cronplus: name=down after=up\n* * * * * true\n")
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        await asyncio.sleep(0.05)
        w.sched.reload(parse_crontab("# cronplus: name=up kill-grace=1\n* * * * * sleep 5\n", path="c", system=False))
        assert ("down", "skipped", 1, "job removed from the crontab before it could start") in finals(w)
        await w.sched.shutdown(0.0)

    run(main())
