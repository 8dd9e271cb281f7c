"""Sensors (wait-for=): real probe processes, the scheduler on a FakeClock (wait-every between
probes is clock time, so waiting is not slow), a real History in tmp_path."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from cronplus.engine import events
from cronplus.engine.runstate import RunState
from cronplus.service.views import held_states
from tests.test_scheduler import World, run, ts
from tests.waiting import alive

T1 = ts("2026-01-01T12:01:00")


def world(tmp_path: Path, text: str) -> World:
    return World(tmp_path, text, ts("2026-01-01T12:00:30"))


async def at(w: World, when: float) -> None:
    """Move the clock to `when`, step, and wait for the probes that started to end."""
    w.clock.jump(when - w.clock.time())
    w.sched.step(when)
    while any(wait.probe is not None for wait in w.sched.sensors.waits.values()):
        await asyncio.sleep(0.02)
    w.sched.step(w.clock.time())


def sensing(w: World) -> list[int]:
    """The attempts of the runs waiting on their sensor."""
    return [r.attempt for r in w.sched.runs if r.state is RunState.SENSING]


def sensor_s(w: World) -> list[float | None]:
    return [r[0] for r in w.history.conn.execute("SELECT sensor_s FROM runs ORDER BY run_id")]


def test_a_file_that_appears_after_two_probes_starts_the_job_then(tmp_path: Path) -> None:
    async def main() -> None:
        probes, marker, out = tmp_path / "probes", tmp_path / "in.csv", tmp_path / "out"
        w = world(tmp_path, f'# cronplus: name=a wait-for="echo p >> {probes}; test -e {marker}" wait-every=30s\n'
                            f"1 12 * * * echo ran > {out}\n")
        await at(w, T1)
        assert sensing(w) == [1] and w.rows() == [] and not out.exists()
        assert [r.state.shown for r in w.sched.runs] == ["sensing"] and w.sched.running() == 0
        assert held_states([("a", "sensing")]) == {"a": "waiting on its sensor"}  # what `cronplus jobs` shows
        # between probes: no process, no task; only an instant on the clock
        assert all(wait.probe is None for wait in w.sched.sensors.waits.values())
        assert w.sched.next_wake(T1) == 30.0
        await at(w, T1 + 29)
        assert probes.read_text().count("p") == 1  # not due yet
        await at(w, T1 + 30)
        assert probes.read_text().count("p") == 2 and sensing(w) == [1]
        marker.touch()
        await at(w, T1 + 60)
        await w.step_at(T1 + 60)
        assert probes.read_text().count("p") == 3
        assert w.rows() == [("a", 1, "success", "schedule", T1, None)]
        assert out.read_text() == "ran\n" and sensor_s(w) == [60.0]
        assert json.loads(w.history.kv_get("sensor.a") or "") == {}  # nothing left to resume

    run(main())


def test_a_timeout_fails_the_run_with_its_reason_then_a_retry_waits_again(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=a wait-for=false wait-every=30s wait-timeout=1m retries=1"
                            " retry-delay=0.05\n1 12 * * * true\n")
        ended: list[bool] = []
        w.sched.bus.subscribe(events.RunEnded, lambda e: ended.append(e.will_retry), transactional=True)
        await at(w, T1)
        await at(w, T1 + 30)
        assert w.rows() == []
        await at(w, T1 + 60)
        reason = "wait-for timed out after 1min (last probe exit 1)"
        assert [(r[2], r[5]) for r in w.rows()] == [("failed", reason)]
        assert sensor_s(w) == [60.0]
        for _ in range(100):  # the retry's delay is real time (0.05 s)
            if sensing(w):
                break
            await asyncio.sleep(0.02)
        assert sensing(w) == [2]  # the retry waits on the sensor again, with a deadline of its own
        await at(w, T1 + 90)
        await at(w, T1 + 120)
        assert w.rows() == [("a", 1, "failed", "schedule", T1, reason), ("a", 2, "failed", "retry", T1, reason)]
        assert [r[0] for r in w.history.conn.execute("SELECT final FROM runs ORDER BY run_id")] == [0, 1]
        assert ended == [True, False]  # RunEnded: the retry alert, then the failure alert (alerting.py)
        assert sensor_s(w) == [60.0, 60.0]
        assert not w.sched.runs  # retries=1: no third attempt

    run(main())


def test_timeout_status_skipped_records_skipped_and_does_not_retry(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=a wait-for=false wait-every=30s wait-timeout=30s"
                            " wait-timeout-status=skipped retries=2 retry-delay=0\n1 12 * * * true\n")
        await at(w, T1)
        await at(w, T1 + 30)
        assert [(r[2], r[5]) for r in w.rows()] == [("skipped", "wait-for timed out after 30s (last probe exit 1)")]
        await asyncio.sleep(0.1)
        assert not w.sched.runs

    run(main())


def test_a_hanging_probe_is_killed_at_wait_every(tmp_path: Path) -> None:
    async def main() -> None:
        pidfile = tmp_path / "pid"
        w = world(tmp_path, f'# cronplus: name=a wait-for="echo $$ > {pidfile}; exec sleep 60" wait-every=1s'
                            " wait-timeout=1s kill-grace=0.5\n1 12 * * * true\n")
        began = time.monotonic()
        await at(w, T1)
        assert time.monotonic() - began < 20  # killed at 1 s (plus load), not after 60
        assert not alive(int(pidfile.read_text()))
        await at(w, T1 + 1)
        assert [(r[2], r[5]) for r in w.rows()] == [("failed", "wait-for timed out after 1s (probe killed after 1s)")]

    run(main())


def test_shutdown_during_a_wait_keeps_it_and_a_restart_resumes_it_with_the_same_deadline(tmp_path: Path) -> None:
    async def main() -> None:
        marker, pidfile = tmp_path / "ready", tmp_path / "pid"
        text = (f'# cronplus: name=a wait-for="echo $$ > {pidfile}; test -e {marker} || exec sleep 60"'
                " wait-every=10m wait-timeout=1h kill-grace=0.5\n1 12 * * * true\n")
        w = world(tmp_path, text)
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)  # its first probe hangs
        for _ in range(250):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            await asyncio.sleep(0.02)
        await w.sched.shutdown(grace=1.0)
        assert not alive(int(pidfile.read_text()))  # the probe did not outlive the supervisor
        assert w.rows() == [] and not w.sched.runs  # recorded in the store, to resume:
        stored = json.loads(w.history.kv_get("sensor.a") or "")
        assert stored == {repr(T1): [T1, T1 + 3600, 1, "schedule"]}

        # the next supervisor, 20 minutes later
        w.clock.jump(T1 + 1200 - w.clock.time())
        w.sched = w.new_scheduler()
        marker.touch()
        await at(w, T1 + 1200)
        assert not any(r[2] == "missed" for r in w.rows())  # the tick is the resumed run's
        await w.step_at(T1 + 1200)
        assert w.rows() == [("a", 1, "success", "schedule", T1, None)]
        assert sensor_s(w) == [1200.0]  # waited since the first supervisor began the wait

    run(main())


def test_a_restart_after_the_deadline_ends_the_resumed_wait_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        text = "# cronplus: name=a wait-for=false wait-every=10m wait-timeout=1h\n1 12 * * * true\n"
        w = world(tmp_path, text)
        await at(w, T1)
        w.sched.sensors.keep(next(iter(w.sched.runs)))  # as a crash would leave it: stored, no row
        w.clock.jump(T1 + 7200 - w.clock.time())
        w.sched = w.new_scheduler()
        await at(w, T1 + 7200)
        assert [(r[2], r[5]) for r in w.rows() if r[2] != "missed"] == [
            ("failed", "wait-for timed out after 1h (no probe ended)")]

    run(main())


def test_lint_warns_when_wait_timeout_outlasts_the_interval(tmp_path: Path) -> None:
    from cronplus.crontab.parser import parse_crontab

    text = ("# cronplus: name=hourly wait-for=true wait-timeout=2h\n0 * * * * true\n"
            "# cronplus: name=daily wait-for=true wait-timeout=2h\n0 3 * * * true\n"
            '# cronplus: name=quoted wait-for="test -e /data/in/x.csv" wait-timeout=1h\n0 4 * * * true\n')
    crontab = parse_crontab(text, path=str(tmp_path / "crontab"), system=False)
    warned = [w.message for w in crontab.warnings if "wait-timeout" in w.message]
    assert warned == ["job hourly: wait-timeout=2h is longer than its interval (1h): the next tick comes while"
                      " its run still waits on its sensor"]
    assert [w.loc.line for w in crontab.warnings if "wait-timeout" in w.message] == [2]
    assert {j.name: j.options.wait_for for j in crontab.jobs}["quoted"] == "test -e /data/in/x.csv"


def test_a_manual_trigger_waits_on_the_sensor_too(tmp_path: Path) -> None:
    async def main() -> None:
        marker = tmp_path / "ready"
        w = world(tmp_path, f'# cronplus: name=a wait-for="test -e {marker}" wait-every=30s\n1 3 * * * true\n')
        w.clock.jump(T1 + 5 - w.clock.time())
        triggered = w.sched.trigger("a")
        assert triggered.state is RunState.SENSING and triggered.run_id is None and w.rows() == []
        await at(w, T1 + 5)
        marker.touch()
        await at(w, T1 + 35)
        await w.step_at(T1 + 35)
        assert [(r[2], r[3]) for r in w.rows()] == [("success", "manual")]
        assert json.loads(w.history.kv_get("sensor.a") or "") == {}  # a restart would not run it again

    run(main())


def test_a_reload_removing_the_job_ends_its_wait_recorded_skipped(tmp_path: Path) -> None:
    async def main() -> None:
        from cronplus.crontab.parser import parse_crontab

        pidfile = tmp_path / "pid"
        w = world(tmp_path, f'# cronplus: name=a wait-for="echo $$ > {pidfile}; exec sleep 60" wait-every=10m'
                            " kill-grace=0.5\n1 12 * * * true\n")
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        for _ in range(250):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            await asyncio.sleep(0.02)
        w.sched.reload(parse_crontab("# cronplus: name=b\n1 3 * * * true\n", path=str(tmp_path / "crontab"),
                                     system=False))
        while w.sched.sensors.probes:  # the stopped probe being terminated
            await asyncio.sleep(0.02)
        assert not alive(int(pidfile.read_text()))  # its probe was stopped
        assert [(r[2], r[5]) for r in w.rows()] == [("skipped", "job removed from the crontab before it could start")]
        assert json.loads(w.history.kv_get("sensor.a") or "") == {} and not w.sched.runs

    run(main())


def test_overlap_replace_a_newer_run_whose_sensor_passes_replaces_the_waiting_one(tmp_path: Path) -> None:
    async def main() -> None:
        ready = tmp_path / "ready"
        ready.mkdir()
        w = world(tmp_path, f'# cronplus: name=a overlap=replace wait-for="test -e {ready}/$CRONPLUS_SCHEDULED_TIME"'
                            " wait-every=30s\n* * * * * true\n")
        await at(w, T1)
        assert sensing(w) == [1]
        (ready / "2026-01-01T12:02:00+00:00").touch()  # only the next tick's input arrives
        await at(w, T1 + 60)
        await w.step_at(T1 + 60)
        rows = sorted(w.rows(), key=lambda r: r[4] or 0)
        assert [(r[2], r[4]) for r in rows] == [("skipped", T1), ("success", T1 + 60)]
        newer = w.history.conn.execute("SELECT run_id FROM runs WHERE status = 'success'").fetchone()[0]
        assert rows[0][5] == f"replaced by run {newer}"

    run(main())



def test_why_says_the_tick_waits_on_its_sensor(tmp_path: Path) -> None:
    async def main() -> None:
        from cronplus.engine.dagrun import utc
        from cronplus.engine.explain import Held, explain
        from cronplus.engine.explain import World as Facts
        from cronplus.engine.findings import Verdict

        w = world(tmp_path, "# cronplus: name=a wait-for=false wait-every=10m wait-timeout=1h\n1 12 * * * true\n")
        await at(w, T1)
        job = w.sched.jobs["a"]
        held = explain(job, w.history, Facts(now=utc(T1 + 60), held=(Held(job="a", tick=utc(T1), state="sensing"),)))
        assert held.verdict is Verdict.WAITING_SENSOR
        assert held.sentences()[0] == ("The tick 2026-01-01 12:01:00+00:00 is waiting on its sensor (wait-for=false):"
                                       " its command starts when that exits 0; it gives up at 2026-01-01 13:01:00+00:00.")
        await w.sched.shutdown(grace=0.0)
        stored = explain(job, w.history, Facts(now=utc(T1 + 60)))  # no supervisor: the stored wait says it
        assert stored.verdict is Verdict.WAITING_SENSOR

    run(main())


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ('wait-for=""', 'ct:1:23: bad wait-for: wait-for needs a command (quote it: wait-for="test -e /data/in/today.csv")'),
        ("wait-every=0", "ct:1:24: bad wait-every: a duration here must be more than 0"),
        ("wait-timeout=soon", "ct:1:26: bad wait-timeout: 'soon' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"),
        ("wait-timeout-status=ok", "ct:1:33: bad wait-timeout-status: 'ok' is not one of failed / skipped"),
        ("wait-fr=true", "ct:1:13: unknown annotation key 'wait-fr' (did you mean 'wait-for'?)"),
    ],
)
def test_bad_sensor_annotations_point_at_the_value(annotation: str, message: str) -> None:
    from tests.test_annotations import errors

    assert errors(f"# cronplus: {annotation}\n0 0 * * * cmd\n") == [message]


def test_a_waiting_sensor_holds_no_pool_slot_and_a_pass_takes_one(tmp_path: Path) -> None:
    async def main() -> None:
        ready, go = tmp_path / "ready", tmp_path / "go"
        w = world(tmp_path, "# cronplus-pools: gpu=1\n"
                            f'# cronplus: name=s pool=gpu wait-for="test -e {ready}" wait-every=30s\n1 12 * * * true\n'
                            f"# cronplus: name=t pool=gpu\n1 12 * * * while ! test -e {go}; do sleep 0.05; done\n")
        await at(w, T1)
        states = {r.job.name: r.state for r in w.sched.runs}
        assert states == {"s": RunState.SENSING, "t": RunState.RUNNING}  # t got the slot while s waits
        ready.touch()
        await at(w, T1 + 30)
        assert {r.job.name: r.state for r in w.sched.runs}["s"] is RunState.POOLED  # passed: waits for the slot
        go.touch()
        await w.step_at(T1 + 30)
        await w.sched.wait_idle()
        assert sorted((r[0], r[2]) for r in w.rows()) == [("s", "success"), ("t", "success")]

    run(main())
