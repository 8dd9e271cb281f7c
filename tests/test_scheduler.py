"""The scheduler's decision core driven by a FakeClock: ticks at their instant, DST days, clock
jumps, downtime, @reboot, persisted last ticks. Jobs are real short shell commands."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_crontab
from cronplus.engine.runstate import RunState
from cronplus.engine.scheduler import Scheduler
from cronplus.status import RunStatus, Trigger
from cronplus.store.history import History


def ts(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


class World:
    """A Scheduler on a FakeClock over a real History in tmp_path."""

    def __init__(self, tmp_path: Path, text: str, start: float) -> None:
        self.tmp_path = tmp_path
        self.text = text
        self.history = History(tmp_path / "history.db")
        self.clock = FakeClock(start)
        self.sched = self.new_scheduler()

    def new_scheduler(self) -> Scheduler:
        crontab = parse_crontab(self.text, path=str(self.tmp_path / "crontab"), system=False)
        return Scheduler(crontab, history=self.history, alerting=None, log_dir=self.tmp_path / "logs",
                         owner="test", clock=self.clock)

    async def step_at(self, when: float) -> None:
        """Move the clock to `when`, step, and let what started there settle (the daemon's driver
        steps again on every run end; here we step every 20 ms until nothing can move)."""
        self.clock.jump(when - self.clock.time())
        while True:
            self.sched.step(self.clock.time())
            if not any(r.state.started or r.state is RunState.QUEUED for r in self.sched.runs):
                return
            await asyncio.sleep(0.02)

    def rows(self, job: str | None = None) -> list[tuple[str, int, str, str, float | None, str | None]]:
        sql = "SELECT job, attempt, status, trigger, scheduled_at, reason FROM runs"
        args: tuple[str, ...] = ()
        if job:
            sql, args = sql + " WHERE job = ?", (job,)
        return [tuple(r) for r in self.history.conn.execute(sql + " ORDER BY run_id", args)]


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_a_job_starts_exactly_at_its_tick_and_not_a_moment_before(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n* * * * * true\n", ts("2026-01-01T12:00:30"))
        assert w.sched.next_wake(ts("2026-01-01T12:00:30")) == 30.0
        await w.step_at(ts("2026-01-01T12:00:59.999"))
        assert w.rows() == []
        await w.step_at(ts("2026-01-01T12:01:00"))
        assert w.rows() == [("a", 1, "success", "schedule", ts("2026-01-01T12:01:00"), None)]
        assert w.sched.next_wake(ts("2026-01-01T12:01:00")) == 60.0

    run(main())


def test_a_fixed_time_job_in_the_spring_forward_gap_runs_once_right_after_it(tmp_path: Path) -> None:
    async def main() -> None:
        text = "# cronplus: name=a tz=Europe/Berlin\n30 2 * * * true\n"
        w = World(tmp_path, text, ts("2026-03-29T01:59:00", "Europe/Berlin"))
        after_gap = ts("2026-03-29T03:00:00", "Europe/Berlin")  # 01:00 UTC, the first instant after 02:00 CET
        assert w.sched.next_tick["a"] == datetime.fromtimestamp(after_gap, UTC)
        await w.step_at(after_gap)
        await w.step_at(after_gap + 3600)
        assert [r[2] for r in w.rows()] == ["success"]

    run(main())


def test_a_fixed_time_job_runs_only_in_the_first_pass_of_a_repeated_hour(tmp_path: Path) -> None:
    async def main() -> None:
        text = "# cronplus: name=a tz=Europe/Berlin\n30 2 * * * true\n"
        first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp()  # 02:30 CEST
        w = World(tmp_path, text, first - 60)
        await w.step_at(first)
        await w.step_at(first + 3600)  # 02:30 CET, the second pass
        assert len(w.rows()) == 1
        nxt = w.sched.next_tick["a"]
        assert nxt is not None and nxt.astimezone(ZoneInfo("Europe/Berlin")).day == 26

    run(main())


def test_ticks_skipped_by_a_small_forward_jump_run_once(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n* * * * * true\n", ts("2026-01-01T12:00:30"))
        await w.step_at(ts("2026-01-01T12:01:00"))
        await w.step_at(ts("2026-01-01T12:41:10"))  # the clock was set 40 minutes ahead
        assert [(r[2], r[4]) for r in w.rows()] == [
            ("success", ts("2026-01-01T12:01:00")), ("success", ts("2026-01-01T12:41:00"))]

    run(main())


def test_a_big_forward_jump_is_downtime_and_its_ticks_are_missed(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n0 * * * * true\n", ts("2026-01-01T11:59:00"))
        await w.step_at(ts("2026-01-01T12:00:00"))
        await w.step_at(ts("2026-01-01T17:30:00"))
        statuses = [r[2] for r in w.rows()]
        assert statuses == ["success"] + ["missed"] * 5
        assert w.rows()[-1][5] == "supervisor not running"

    run(main())


def test_after_the_clock_goes_back_ticks_already_done_are_not_run_again(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n30 12 * * * true\n", ts("2026-01-01T12:29:00"))
        await w.step_at(ts("2026-01-01T12:30:00"))
        await w.step_at(ts("2026-01-01T12:00:00"))  # clock set back half an hour
        await w.step_at(ts("2026-01-01T12:30:00"))
        assert len(w.rows()) == 1
        w.sched = w.new_scheduler()  # a restart still in the repeated half hour
        await w.step_at(ts("2026-01-01T12:30:30"))
        assert len(w.rows()) == 1

    run(main())


def test_ticks_missed_while_down_are_recorded_and_catch_up_last_runs_the_latest_once(tmp_path: Path) -> None:
    async def main() -> None:
        text = "# cronplus: name=a\n* * * * * true\n# cronplus: name=b catch-up=last\n* * * * * true\n"
        w = World(tmp_path, text, ts("2026-01-01T12:00:30"))
        await w.step_at(ts("2026-01-01T12:01:00"))
        w.clock.jump(ts("2026-01-01T12:10:30") - w.clock.time())
        w.sched = w.new_scheduler()  # restarted after nine minutes down
        await w.step_at(ts("2026-01-01T12:10:30"))
        a = w.rows("a")
        assert [r[2] for r in a] == ["success"] + ["missed"] * 9
        assert a[-1][4] == ts("2026-01-01T12:10:00")
        b = w.rows("b")
        assert b[-1][1:5] == (1, "success", "catch-up", ts("2026-01-01T12:10:00"))
        assert [r[2] for r in b].count("missed") == 9

    run(main())


def test_reboot_jobs_run_once_per_boot_not_on_every_supervisor_start(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=r\n@reboot true\n", ts("2026-01-01T12:00:00"))
        await w.step_at(ts("2026-01-01T12:00:00"))
        w.sched = w.new_scheduler()
        await w.step_at(ts("2026-01-01T12:00:05"))
        assert [(r[2], r[3]) for r in w.rows()] == [("success", "reboot")]

    run(main())


def test_a_changed_schedule_gets_its_next_tick_from_now_and_keeps_its_history(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n0 * * * * true\n", ts("2026-01-01T11:59:00"))
        await w.step_at(ts("2026-01-01T12:00:00"))
        w.clock.jump(600)
        w.sched.reload(parse_crontab("# cronplus: name=a\n*/15 * * * * true\n", path="c", system=False))
        assert w.sched.next_tick["a"] == datetime.fromtimestamp(ts("2026-01-01T12:15:00"), UTC)
        await w.step_at(ts("2026-01-01T12:15:00"))
        assert len(w.rows("a")) == 2

    run(main())


def test_a_manual_trigger_runs_now_with_trigger_manual(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n0 0 1 1 * echo hi\n", ts("2026-01-01T12:00:00"))
        r = w.sched.trigger("a")
        assert w.history.get_run(r.run_id).status is RunStatus.RUNNING  # the row exists before the spawn
        await w.sched.wait_idle()
        rec = w.history.get_run(r.run_id)
        assert rec.status is RunStatus.SUCCESS and rec.trigger is Trigger.MANUAL
        assert Path(rec.log_path).read_text() == "hi\n"

    run(main())


def test_a_tick_seen_late_in_its_minute_runs_once_and_the_next_tick_is_the_following_minute(tmp_path: Path) -> None:
    """The start path runs a single due tick first and finds the job's next tick afterwards."""
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n* * * * * true\n# cronplus: name=b\n*/5 * * * * true\n",
                  ts("2026-01-01T12:04:30"))
        await w.step_at(ts("2026-01-01T12:05:59"))  # late (a suspended VM), but still that minute
        await w.step_at(ts("2026-01-01T12:05:59.5"))
        assert [(r[0], r[4]) for r in w.rows()] == [("a", ts("2026-01-01T12:05:00")), ("b", ts("2026-01-01T12:05:00"))]
        assert w.sched.next_tick == {"a": datetime.fromtimestamp(ts("2026-01-01T12:06:00"), UTC),
                                     "b": datetime.fromtimestamp(ts("2026-01-01T12:10:00"), UTC)}

    run(main())
