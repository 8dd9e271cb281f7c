"""Pause and resume in the scheduler's decision core (engine/pausing.py, ticking.Ticker's one
check, runstate's PAUSED), driven by a FakeClock over a real History: no row while paused, the
next tick advancing, catch-up=last on resume, restarts and reloads, the global pause letting a
running run finish, trigger still running a paused job."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cronplus.crontab.parser import parse_crontab
from cronplus.engine.pausing import Pauses
from cronplus.engine.runstate import RunState
from tests.test_scheduler import World, run, ts

EVERY_MINUTE = "# cronplus: name=a\n* * * * * true\n"


def test_a_paused_job_writes_no_row_across_ticks_and_its_next_tick_keeps_advancing(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, EVERY_MINUTE, ts("2026-01-01T12:00:30"))
        w.sched.pause(["a"], "alice")
        for minute in range(1, 6):
            await w.step_at(ts(f"2026-01-01T12:0{minute}:00"))
        assert w.rows() == []
        assert w.sched.next_tick["a"].timestamp() == ts("2026-01-01T12:06:00")
        pause = Pauses.read(w.history).of("a")
        assert pause is not None and pause.by == "alice" and pause.since == ts("2026-01-01T12:00:30")
        w.sched.ticker.resume(["a"])  # catch-up=off (the default): the paused ticks stay unrun
        await w.step_at(ts("2026-01-01T12:05:30"))
        assert w.rows() == []
        await w.step_at(ts("2026-01-01T12:06:00"))
        assert w.rows() == [("a", 1, "success", "schedule", ts("2026-01-01T12:06:00"), None)]

    run(main())


def test_resume_with_catch_up_last_runs_the_newest_paused_tick_once(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a catch-up=last\n* * * * * true\n", ts("2026-01-01T12:00:30"))
        w.sched.pause(["a"], "alice")
        for minute in range(1, 5):
            await w.step_at(ts(f"2026-01-01T12:0{minute}:00"))
        assert w.rows() == []
        w.sched.ticker.resume(["a"])
        await w.step_at(ts("2026-01-01T12:04:20"))
        await w.step_at(ts("2026-01-01T12:04:40"))
        assert w.rows() == [("a", 1, "success", "catch-up", ts("2026-01-01T12:04:00"), None)]

    run(main())


def test_a_pause_survives_a_restart_with_no_missed_rows_for_the_downtime(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, EVERY_MINUTE, ts("2026-01-01T12:00:30"))
        await w.step_at(ts("2026-01-01T12:01:00"))
        w.sched.pause(["a"], "alice")
        await w.step_at(ts("2026-01-01T12:02:00"))
        w.clock.jump(ts("2026-01-01T13:00:30") - w.clock.time())  # an hour down, then a new supervisor
        w.sched = w.new_scheduler()
        for t in ("2026-01-01T13:00:30", "2026-01-01T13:01:00", "2026-01-01T13:02:00"):
            await w.step_at(ts(t))
        assert [r[2:4] for r in w.rows()] == [("success", "schedule")]  # the 12:01 run only: nothing missed
        assert w.sched.ticker.pauses.of("a") is not None
        w.sched.ticker.resume(["a"])
        await w.step_at(ts("2026-01-01T13:02:30"))
        w.sched = w.new_scheduler()  # resumed, restarted: the paused ticks are handled, not missed
        await w.step_at(ts("2026-01-01T13:02:40"))
        await w.step_at(ts("2026-01-01T13:03:00"))
        assert [r[2:5] for r in w.rows()] == [("success", "schedule", ts("2026-01-01T12:01:00")),
                                               ("success", "schedule", ts("2026-01-01T13:03:00"))]

    run(main())


def test_a_pause_survives_a_reload(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, EVERY_MINUTE, ts("2026-01-01T12:00:30"))
        w.sched.pause(["a"], "alice")
        text = EVERY_MINUTE + "# cronplus: name=b\n* * * * * true\n"
        w.sched.reload(parse_crontab(text, path=str(tmp_path / "crontab"), system=False))
        await w.step_at(ts("2026-01-01T12:01:00"))
        assert [r[0] for r in w.rows()] == ["b"]

    run(main())


def test_the_global_pause_lets_a_running_run_finish_and_starts_nothing_more(tmp_path: Path) -> None:
    async def main() -> None:
        text = "# cronplus: name=slow\n* * * * * sleep 0.5\n# cronplus: name=b\n*/2 * * * * true\n"
        w = World(tmp_path, text, ts("2026-01-01T12:00:30"))
        w.clock.jump(ts("2026-01-01T12:01:00") - w.clock.time())
        w.sched.step(w.clock.time())
        assert [r.job.name for r in w.sched.runs if r.state is RunState.RUNNING] == ["slow"]
        w.sched.pause(None, "ops")
        await w.step_at(ts("2026-01-01T12:01:10"))  # steps until the run is over
        assert w.rows() == [("slow", 1, "success", "schedule", ts("2026-01-01T12:01:00"), None)]
        for minute in range(2, 5):
            await w.step_at(ts(f"2026-01-01T12:0{minute}:00"))
        assert len(w.rows()) == 1
        w.sched.ticker.resume(None)
        await w.step_at(ts("2026-01-01T12:05:00"))
        assert [r[0] for r in w.rows()] == ["slow", "slow"]

    run(main())


def test_a_jittered_run_not_yet_started_is_skipped_when_its_job_is_paused(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a jitter=30s\n* * * * * true\n", ts("2026-01-01T12:00:30"))
        w.clock.jump(ts("2026-01-01T12:01:00") - w.clock.time())
        w.sched.step(w.clock.time())
        assert [r.state for r in w.sched.runs] == [RunState.DELAYED]
        w.sched.pause(["a"], "alice")
        assert list(w.sched.runs) == []
        assert w.rows() == [("a", 1, "skipped", "schedule", ts("2026-01-01T12:01:00"), "job paused before it could start")]

    run(main())


def test_trigger_still_runs_a_paused_job(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, EVERY_MINUTE, ts("2026-01-01T12:00:30"))
        w.sched.pause(["a"], "alice")
        w.sched.trigger("a")
        await w.step_at(ts("2026-01-01T12:00:40"))
        while w.sched.runs:
            await asyncio.sleep(0.02)
        assert [r[2:4] for r in w.rows()] == [("success", "manual")]

    run(main())
