"""The counters for /metrics (service/stats.py), fed by run events: the real supervisor
(service/daemon.Daemon, as `cronplus run` builds it) on this process's event loop, its clock
shifted so that the next minute's tick is seconds away, runs real jobs and delivers their
alerts to a real HTTP receiver; every figure is checked against what history recorded."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from cronplus import paths as cronplus_paths
from cronplus.model import RunRecord
from cronplus.service.daemon import Daemon, Settings, load
from cronplus.service.stats import DELAY_BUCKETS, RunStats
from cronplus.status import Trigger
from cronplus.store.history import History
from cronplus.store.readhistory import open_readonly
from cronplus.web.http import Stats
from tests.http_receiver import Receiver
from tests.shifted_run import ShiftedClock
from tests.test_faults_restart import offset_to_next_minute

WAIT_S = 30.0  # a loaded machine; each wait ends as soon as its condition holds


def test_run_stats_has_the_shape_web_reads() -> None:
    stats: Stats = RunStats()  # mypy checks the structure where the tests are type-checked
    for name, member in inspect.getmembers(Stats, inspect.isfunction):
        if not name.startswith("_"):
            mine = getattr(stats, name)
            assert inspect.signature(mine).parameters.keys() == inspect.signature(member).parameters.keys() - {"self"}
            assert inspect.signature(mine).return_annotation == inspect.signature(member).return_annotation


async def until(what: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def supervise(tmp_path: Path, offset: float, body: Callable[[Daemon], Awaitable[None]]) -> None:
    """Run the supervisor (clock shifted by `offset`) while `body` looks at it; then stop it."""
    paths = cronplus_paths.resolve(crontab=tmp_path / "crontab", state_dir=tmp_path / "s", env={})
    paths.ensure()

    async def main() -> None:
        daemon = Daemon(Settings(paths=paths, shutdown_grace=5.0, clock=ShiftedClock(offset)), load(paths))
        task = asyncio.get_running_loop().create_task(daemon.main())
        try:
            await until(lambda: hasattr(daemon, "commands") or task.done())
            await body(daemon)
        finally:
            daemon.stop_event.set()
            assert await task == 0

    asyncio.run(main())


def at(moment: datetime | None) -> float:
    assert moment is not None
    return moment.timestamp()


def finals(db: Path) -> list[RunRecord]:
    reader = open_readonly(db)
    try:
        return [r for r in reader.query() if r.status != "running"]
    finally:
        reader.close()


def test_the_counters_match_what_a_supervisor_recorded_and_a_restart_seeds_the_last_success(tmp_path: Path) -> None:
    with Receiver() as rx, Receiver() as gone:
        rx.rate_limit_first(1, "0")  # one retry, then delivered
        gone.always(404)  # failed at once
        (tmp_path / "crontab").write_text(
            "# cronplus: name=ok\n* * * * * true\n"
            "# cronplus: name=slow\n* * * * * sleep 0.3\n"
            f"# cronplus: name=bad alert={rx.url()}\n* * * * * exit 3\n"
            f"# cronplus: name=worse alert={gone.url()} retries=1 retry-delay=1s\n* * * * * exit 4\n"
            "# cronplus: name=down after=ok\n* * * * * true\n"
            "# cronplus: name=late jitter=1s\n* * * * * true\n")
        db = tmp_path / "s" / "history.db"
        offset, tick = offset_to_next_minute(lead=3.0)  # time for a loaded start-up before the tick
        seen: dict[str, Any] = {}

        async def first(daemon: Daemon) -> None:
            stats = daemon.stats
            assert stats.reload_ok() and stats.runs_total() == {}
            await until(lambda: sum(stats.runs_total().values()) == 6 and sum(stats.alert_deliveries().values()) == 3)
            records = finals(db)
            expected: dict[tuple[str, str], int] = {}
            for r in records:
                if r.attempt == 2 or r.job != "worse":  # worse's first attempt is not final: retried
                    expected[(r.job, str(r.status))] = expected.get((r.job, str(r.status)), 0) + 1
            assert stats.runs_total() == expected == {
                ("ok", "success"): 1, ("slow", "success"): 1, ("bad", "failed"): 1, ("worse", "failed"): 1,
                ("down", "success"): 1, ("late", "success"): 1}
            ended = {r.job: at(r.ended_at) for r in records if r.status == "success"}
            assert stats.last_success() == ended
            durations = {r.job: r.duration_s for r in records if r.job != "worse" or r.attempt == 2}
            assert stats.last_duration() == durations and (durations["slow"] or 0) >= 0.3
            assert stats.alert_deliveries() == {"delivered": 1, "retry": 1, "failed": 1}

            bounds, cumulative, total, count = stats.start_delay()
            timed = [r for r in records if r.trigger is Trigger.SCHEDULE and r.attempt == 1
                     and r.job in ("ok", "slow", "bad", "worse")]  # down waits for ok; late's jitter is on purpose
            assert list(bounds) == list(DELAY_BUCKETS) and count == len(timed) == 4
            assert list(cumulative) == sorted(cumulative) and cumulative[-1] <= count
            assert all(at(r.scheduled_at) == tick for r in timed)
            row_delays = [at(r.started_at) - tick for r in timed]  # a spawn comes after its row is written
            assert sum(row_delays) <= total
            for bound, below in zip(bounds, cumulative, strict=True):
                assert below <= sum(d <= bound for d in row_delays)

            text = (tmp_path / "crontab").read_text()
            (tmp_path / "crontab").write_text(text + "60 * * * * an invalid minute\n")
            assert daemon.reload() is not None and not stats.reload_ok()
            (tmp_path / "crontab").write_text(text)
            assert daemon.reload() is None and stats.reload_ok()
            seen.update(success=stats.last_success(), duration=stats.last_duration(),
                        last_id=max(r.run_id for r in finals(db)))

        supervise(tmp_path, offset, first)

        left = History(db)  # a run a killed supervisor left `running` (no process: nothing to stop)
        orphan = left.start_run(job="ok", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=tick + 60, tz=None,
                                started_at=tick + 60, log_path=None, owner="a-dead-one")
        left.close()
        jobs = {"ok", "slow", "bad", "worse", "down", "late"}

        async def second(daemon: Daemon) -> None:  # restarted three minutes on: the ticks between were missed
            stats = daemon.stats
            await until(lambda: {job for job, status in stats.runs_total() if status == "missed"} == jobs)
            records = [r for r in finals(db) if r.run_id > seen["last_id"]]
            expected: dict[tuple[str, str], int] = {}
            for r in records:
                expected[(r.job, str(r.status))] = expected.get((r.job, str(r.status)), 0) + 1
            assert stats.runs_total() == expected
            assert {status for _, status in expected} == {"missed", "interrupted"}
            (interrupted,) = [r for r in records if r.status == "interrupted"]
            assert interrupted.run_id == orphan
            assert stats.last_success() == seen["success"], "seeded from history"
            assert stats.last_duration() == {**seen["duration"], "ok": interrupted.duration_s}
            assert stats.start_delay()[3] == 0, "counters start at zero: none of these started"

        supervise(tmp_path, offset + 180, second)
