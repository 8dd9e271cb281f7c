"""engine/backfill.py inside the real Scheduler (FakeClock standing in for the wall clock, real
History, real job processes): the ticks of a range, CRONPLUS_SCHEDULED_TIME and trigger
`backfill`, downstream jobs by their trigger rules, resuming, --rerun, --parallel, pools and
overlap=, and a supervisor's shutdown in the middle."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cronplus.crontab.parser import parse_crontab
from cronplus.engine.backfill import Backfill, NeedsConfirmation, check_range, plan, ticks
from cronplus.errors import UsageError
from tests.test_scheduler import World, run, ts

NOW = ts("2026-06-01T12:00:30")
H0, H1, H2, H3 = (ts(f"2026-01-01T0{h}:00:00") for h in range(4))


async def backfill(w: World, name: str, start: float, end: float, *, rerun: bool = False,
                   parallel: int = 1) -> list[dict[str, Any]]:
    """Run a backfill with the scheduler served; every event, the done message last."""
    serve = asyncio.get_running_loop().create_task(w.sched.serve())
    try:
        job = w.sched.jobs[name]
        bf = Backfill(w.sched, plan(job, w.history, start, end, rerun=rerun), parallel=parallel)
        return [e async for e in bf.events()]
    finally:
        w.sched.stopping = True
        w.sched.wake()
        await serve
        w.sched.stopping = False


def concurrency(path: Path) -> int:
    """The most `+` lines not yet matched by `-` lines in a file jobs append to."""
    most = level = 0
    for mark in path.read_text().split():
        level += 1 if mark == "+" else -1
        most = max(most, level)
    return most


def job_of(text: str, name: str = "a") -> Any:
    job = parse_crontab(text, path="crontab", system=False).job(name)
    assert job is not None
    return job


def test_the_ticks_of_a_range_include_both_ends_and_follow_the_jobs_zone_and_dst() -> None:
    hourly = job_of("# cronplus: name=a tz=America/New_York\n0 * * * * true\n")
    spring_day = list(ticks(hourly, datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC)))
    assert len(spring_day) == 24  # 23 hours that day (02:00 does not exist), and the next midnight included
    assert spring_day[0].isoformat() == "2026-03-08T00:00:00-05:00"
    assert [t.hour for t in spring_day[1:3]] == [1, 3]
    daily = job_of("# cronplus: name=a tz=America/New_York\n30 2 * * * true\n")
    # cron runs a fixed-time job whose time falls in the spring gap right after it (cron(8) DST rules)
    assert [t.isoformat() for t in ticks(daily, datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC))] == [
        "2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]


def test_a_reversed_range_a_reboot_job_and_more_than_1000_ticks_are_refused_in_one_line() -> None:
    hourly = job_of("# cronplus: name=a\n0 * * * * true\n")
    with pytest.raises(UsageError, match=r"^--from .* is after --to .*: nothing to backfill$"):
        check_range(hourly, H2, H1, yes=False)
    with pytest.raises(UsageError, match="runs @reboot: it has no ticks to backfill"):
        check_range(job_of("# cronplus: name=a\n@reboot true\n"), H1, H2, yes=False)
    ten_years = ts("2036-01-01T00:00:00")
    with pytest.raises(NeedsConfirmation, match=r"^more than 10,000 ticks of a from .*: add --yes to run them \(over 1,000"):
        check_range(hourly, H0, ten_years, yes=False)  # counted that far only
    with pytest.raises(NeedsConfirmation, match=r"^1,200 ticks of a "):
        check_range(job_of("# cronplus: name=a\n* * * * * true\n"), H0, H0 + 1199 * 60, yes=False)
    with pytest.raises(NeedsConfirmation, match=r"^1,001 ticks of a "):
        check_range(hourly, H0, H0 + 1000 * 3600, yes=False)
    check_range(hourly, H0, H0 + 999 * 3600, yes=False)  # 1,000 ticks: no question asked
    check_range(hourly, H0, ten_years, yes=True)


def test_each_tick_runs_with_its_scheduled_time_and_trigger_backfill(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n0 * * * * echo $CRONPLUS_SCHEDULED_TIME\n", NOW)
        events = await backfill(w, "a", H0, H2)
        assert w.rows() == [("a", 1, "success", "backfill", t, None) for t in (H0, H1, H2)]
        logs = [(tmp_path / "logs" / "a" / f"{i}.log").read_text() for i in (1, 2, 3)]
        assert logs == ["2026-01-01T00:00:00+00:00\n", "2026-01-01T01:00:00+00:00\n", "2026-01-01T02:00:00+00:00\n"]
        progress = [(e["finished"], e["total"], e["failed"]) for e in events if e.get("event") == "progress"]
        assert progress[0] == (1, 3, 0) and progress[-1] == (3, 3, 0) and progress == sorted(set(progress))  # rate-limited
        assert events[-1] | {"status": events[-1]["status"]} == {
            "done": True, "job": "a", "total": 3, "finished": 3, "failed": 0, "already_done": 0, "stopped": None,
            "status": "success"}
        claims = [tuple(r) for r in w.history.conn.execute("SELECT DISTINCT claim FROM runs")]
        assert claims == [(None,)]  # backfill rows claim nothing

    run(main())


def test_downstream_jobs_run_for_the_same_tick_by_their_trigger_rules(tmp_path: Path) -> None:
    fails_at_1 = 'case $CRONPLUS_SCHEDULED_TIME in *T01:*) exit 1;; esac'
    text = (f"# cronplus: name=a\n0 * * * * {fails_at_1}\n"
            "# cronplus: name=b after=a\n0 * * * * echo $CRONPLUS_SCHEDULED_TIME\n"
            "# cronplus: name=c after=b\n5 * * * * true\n"
            "# cronplus: name=cleanup after=a trigger=all_done\n0 0 * * * true\n"
            "# cronplus: name=other\n0 * * * * true\n")

    async def main() -> None:
        w = World(tmp_path, text, NOW)
        events = await backfill(w, "a", H0, H2, parallel=2)
        by_tick = {(job, at): (status, trigger) for job, _, status, trigger, at, _ in w.rows()}
        assert by_tick == {
            ("a", H0): ("success", "backfill"), ("b", H0): ("success", "backfill"), ("c", H0): ("success", "backfill"),
            ("cleanup", H0): ("success", "backfill"),
            ("a", H1): ("failed", "backfill"), ("b", H1): ("upstream_failed", "backfill"),
            ("c", H1): ("upstream_failed", "backfill"), ("cleanup", H1): ("success", "backfill"),
            ("a", H2): ("success", "backfill"), ("b", H2): ("success", "backfill"), ("c", H2): ("success", "backfill"),
            ("cleanup", H2): ("success", "backfill")}
        assert (tmp_path / "logs" / "b").is_dir() and len(w.rows("b")) == 3
        last = events[-1]
        assert (last["finished"], last["failed"], last["status"]) == (3, 1, "failed")
        ended = [e["job"] for e in events if e.get("event") == "ended"]
        assert sorted(ended) == sorted(["a", "b", "c", "cleanup"] * 3)

    run(main())


def test_a_downstream_run_waits_for_an_earlier_tick_of_its_upstream_still_running_though_its_tick_is_past(
        tmp_path: Path) -> None:
    slow_at_0 = 'case $CRONPLUS_SCHEDULED_TIME in *T00:*) sleep 1;; esac'

    async def main() -> None:
        w = World(tmp_path, f"# cronplus: name=a\n0 * * * * {slow_at_0}\n"
                            "# cronplus: name=b after=a\n0 * * * * true\n", NOW)
        await backfill(w, "a", H0, H1, parallel=2)
        # b@01:00 was admitted while a@00:00 still ran (dagrun: wait); its tick's next tick is long
        # past, yet it waited (dagrun.run_deadline) instead of giving up at once
        assert sorted((job, at, status) for job, _, status, _, at, _ in w.rows()) == [
            ("a", H0, "success"), ("a", H1, "success"), ("b", H0, "success"), ("b", H1, "success")]

    run(main())


def test_a_second_backfill_resumes_ticks_not_yet_successful_and_rerun_runs_them_all(tmp_path: Path) -> None:
    fails_at_1 = 'case $CRONPLUS_SCHEDULED_TIME in *T01:*) test -e {flag} || exit 1;; esac'.format(flag=tmp_path / "fixed")

    async def main() -> None:
        w = World(tmp_path, f"# cronplus: name=a\n0 * * * * {fails_at_1}\n", NOW)
        await backfill(w, "a", H0, H1)
        assert [(s, at) for _, _, s, _, at, _ in w.rows()] == [("success", H0), ("failed", H1)]
        (tmp_path / "fixed").touch()
        job = w.sched.jobs["a"]
        again = plan(job, w.history, H0, H3, rerun=False)
        assert [t.timestamp() for t in again.run] == [H1, H2, H3] and [(t.timestamp(), i) for t, i in again.done] == [(H0, 1)]
        events = await backfill(w, "a", H0, H3)
        assert events[-1]["already_done"] == 1 and events[-1]["finished"] == 3
        assert [(s, at) for _, _, s, _, at, _ in w.rows()][2:] == [("success", H1), ("success", H2), ("success", H3)]
        await backfill(w, "a", H0, H3, rerun=True)
        assert [at for *_, at, _ in w.rows()][5:] == [H0, H1, H2, H3]

    run(main())


def test_parallel_runs_up_to_n_ticks_at_once(tmp_path: Path) -> None:
    marks = tmp_path / "marks"

    async def main() -> None:
        w = World(tmp_path, f"# cronplus: name=a\n0 * * * * echo + >> {marks}; sleep 0.5; echo - >> {marks}\n", NOW)
        await backfill(w, "a", H0, H3 + 3600, parallel=2)
        assert [s for _, _, s, *_ in w.rows()] == ["success"] * 5
        assert concurrency(marks) == 2

    run(main())


def test_a_pool_of_one_holds_a_parallel_backfill_to_one_run_at_a_time(tmp_path: Path) -> None:
    marks = tmp_path / "marks"

    async def main() -> None:
        w = World(tmp_path, f"# cronplus-pools: gpu=1\n# cronplus: name=a pool=gpu\n"
                            f"0 * * * * echo + >> {marks}; sleep 0.2; echo - >> {marks}\n", NOW)
        await backfill(w, "a", H0, H2, parallel=3)
        assert [s for _, _, s, *_ in w.rows()] == ["success"] * 3
        assert concurrency(marks) == 1

    run(main())


def test_a_run_of_the_job_in_flight_does_not_refuse_a_backfill_despite_overlap_skip(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a overlap=skip kill-grace=0.5\n"
                            "0 * * * * case $CRONPLUS_SCHEDULED_TIME in 2026-01-*) true;; *) sleep 30;; esac\n", NOW)
        serve = asyncio.get_running_loop().create_task(w.sched.serve())
        try:
            manual = w.sched.trigger("a")  # in flight; overlap=skip would refuse another manual run
            bf = Backfill(w.sched, plan(w.sched.jobs["a"], w.history, H0, H1, rerun=False), parallel=2)
            events = [e async for e in bf.events()]
            assert events[-1]["finished"] == 2 and events[-1]["status"] == "success"
            assert manual.state.started and not manual.done.is_set()
        finally:
            await w.sched.shutdown(0.0)
            await serve
        assert [(s, t) for _, _, s, t, *_ in w.rows()] == [
            ("interrupted", "manual"), ("success", "backfill"), ("success", "backfill")]

    run(main())


def test_a_backfill_run_in_flight_does_not_make_the_jobs_scheduled_tick_skip(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a overlap=skip\n"
                            "0 * * * * case $CRONPLUS_SCHEDULED_TIME in 2026-01-*) sleep 1;; *) true;; esac\n", NOW)
        serve = asyncio.get_running_loop().create_task(w.sched.serve())
        try:
            bf = Backfill(w.sched, plan(w.sched.jobs["a"], w.history, H0, H0, rerun=False))
            following = asyncio.get_running_loop().create_task(anext(bf.events()))
            while not w.rows():  # the backfill run started
                await asyncio.sleep(0.02)
            w.clock.jump(ts("2026-06-01T13:00:00") - NOW)  # the job's next scheduled tick
            w.sched.wake()
            while len(w.rows()) < 2 or w.rows()[1][2] == "running":
                await asyncio.sleep(0.02)
            assert w.rows()[0][2] == "running"  # the backfill run still runs
            await following
        finally:
            w.sched.stopping = True
            w.sched.wake()
            await serve
        assert w.rows()[1][2:4] == ("success", "schedule")

    run(main())


def test_a_shutdown_in_the_middle_stops_the_backfill_and_what_ran_is_recorded(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a kill-grace=0.5\n0 * * * * sleep 30\n", NOW)
        serve = asyncio.get_running_loop().create_task(w.sched.serve())
        bf = Backfill(w.sched, plan(w.sched.jobs["a"], w.history, H0, H3, rerun=False), parallel=2)
        seen: list[dict[str, Any]] = []

        async def follow() -> None:
            seen.extend([e async for e in bf.events()])

        following = asyncio.get_running_loop().create_task(follow())
        while len([r for r in w.rows() if r[2] == "running"]) < 2:  # two ticks under way
            await asyncio.sleep(0.02)
        await w.sched.shutdown(0.0, "supervisor shutdown")
        await following
        await serve
        assert seen[-1]["stopped"] == "supervisor shutdown" and seen[-1]["finished"] == 2 and seen[-1]["total"] == 4
        assert [(s, at) for _, _, s, _, at, _ in w.rows()] == [("interrupted", H0), ("interrupted", H1)]
        assert [t.timestamp() for t in plan(w.sched.jobs["a"], w.history, H0, H3, rerun=False).run] == [H0, H1, H2, H3]

    run(main())


def test_a_job_removed_by_a_reload_stops_its_backfill_at_the_next_tick(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n0 * * * * true\n# cronplus: name=b\n0 * * * * true\n", NOW)
        serve = asyncio.get_running_loop().create_task(w.sched.serve())
        try:
            bf = Backfill(w.sched, plan(w.sched.jobs["a"], w.history, H0, H3, rerun=False))
            seen = []
            async for event in bf.events():
                seen.append(event)
                if event.get("event") == "progress":  # after the first tick: a reload without job a
                    w.sched.reload(parse_crontab("# cronplus: name=b\n0 * * * * true\n", path="crontab", system=False))
        finally:
            w.sched.stopping = True
            w.sched.wake()
            await serve
        assert seen[-1]["stopped"] == "job a was removed from the crontab" and seen[-1]["finished"] == 1
        assert seen[-1]["status"] == "interrupted" and len(w.rows()) == 1

    run(main())


def test_a_paused_job_is_backfilled_as_trigger_runs_it(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n0 * * * * true\n", NOW)
        w.sched.pause(["a"], "tester")
        events = await backfill(w, "a", H0, H1)
        assert events[-1]["finished"] == 2 and [s for _, _, s, *_ in w.rows()] == ["success", "success"]

    run(main())
