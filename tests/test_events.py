"""Run events (engine/events.py) on a real Scheduler over a real History: a transactional
subscriber runs inside the transaction of the record it is about and commits (or rolls back)
with it; an after-commit subscriber sees only what is committed, once; a subscriber that raises
is logged and neither stops the loop nor loses a record."""

from __future__ import annotations

import asyncio
import errno
import threading
from pathlib import Path
from typing import TypeVar

from cronplus.alerts.alerting import Alerting
from cronplus.engine import events
from cronplus.status import RunStatus
from cronplus.store.readhistory import open_readonly
from tests.conftest import Lines
from tests.test_scheduler import World, ts

T0 = ts("2026-03-01T08:00:30")

_E = TypeVar("_E", events.RunStarted, events.RunEnded, events.RunNotRun, events.TicksMissed)


def committed_status(db: Path, run_id: int) -> str | None:
    """What another connection (the CLI, the web page) sees of a run right now."""
    reader = open_readonly(db)
    try:
        record = reader.get_run(run_id)
        return None if record is None else str(record.status)
    finally:
        reader.close()


def test_a_transactional_subscriber_runs_inside_the_runs_end_and_an_after_commit_one_after_it(tmp_path: Path) -> None:
    w = World(tmp_path, "# cronplus: name=ok\n* * * * * true\n# cronplus: name=bad\n* * * * * exit 3\n", T0)
    seen: list[tuple[str, str, str | None]] = []

    def inside(e: events.RunEnded) -> None:
        seen.append(("inside", e.record.job, committed_status(tmp_path / "history.db", e.record.run_id)))

    def after(e: events.RunEnded) -> None:
        seen.append(("after", e.record.job, committed_status(tmp_path / "history.db", e.record.run_id)))

    w.sched.bus.subscribe(events.RunEnded, inside, transactional=True)
    w.sched.bus.subscribe(events.RunEnded, after, transactional=False)
    asyncio.run(w.step_at(T0 + 30))
    assert sorted(seen) == [("after", "bad", "failed"), ("after", "ok", "success"),
                            ("inside", "bad", "running"), ("inside", "ok", "running")]
    w.history.close()


def test_each_kind_of_run_is_published_with_the_row_written_for_it(tmp_path: Path) -> None:
    text = ("# cronplus: name=flaky retries=1 retry-delay=1s\n* * * * * exit 3\n"
            "# cronplus: name=busy overlap=skip\n* * * * * sleep 1\n")
    w = World(tmp_path, text, T0)
    got: list[events.Event] = []

    def listen() -> None:
        for kind in (events.RunStarted, events.RunEnded, events.RunNotRun, events.TicksMissed):
            w.sched.bus.subscribe(kind, got.append, transactional=False)

    async def two_ticks() -> None:
        w.clock.jump(T0 + 30 - w.clock.time())
        w.sched.step(w.clock.time())  # 08:01: both start
        await asyncio.sleep(0.1)
        w.clock.jump(60)
        w.sched.step(w.clock.time())  # 08:02: busy still runs (skipped), flaky is in its retry wait
        await w.step_at(w.clock.time())

    listen()
    asyncio.run(two_ticks())
    w.clock.jump(T0 + 6 * 60 - w.clock.time())
    w.sched = w.new_scheduler()  # a restart at 08:06:30: the ticks from 08:03 on fell while it was down
    listen()
    asyncio.run(w.step_at(w.clock.time()))

    def of(kind: type[_E], job: str) -> list[_E]:
        return [e for e in got if isinstance(e, kind) and e.job.name == job]

    flaky = [(e.record.attempt, e.record.status, e.will_retry) for e in of(events.RunEnded, "flaky")]
    assert flaky[:2] == [(1, RunStatus.FAILED, True), (2, RunStatus.FAILED, False)]
    skipped = of(events.RunNotRun, "busy")
    assert [(e.record.status, e.record.reason) for e in skipped][:1] == [
        (RunStatus.SKIPPED, f"previous run {of(events.RunStarted, 'busy')[0].record.run_id} still running")]
    missed = of(events.TicksMissed, "busy")
    rows = [r for r in w.rows("busy") if r[2] == "missed"]
    assert len(missed) == 1 and rows and [r.status for r in missed[0].records] == [RunStatus.MISSED] * len(rows)
    assert missed[0].total >= len(rows)
    for e in of(events.RunStarted, "busy") + of(events.RunStarted, "flaky"):
        assert e.record.status is RunStatus.RUNNING and e.record.started_at is not None
        assert e.spawned_at >= e.record.started_at.timestamp()  # the row is written, then the spawn
    w.history.close()


def test_a_failing_after_commit_subscriber_is_logged_and_the_loop_and_the_records_go_on(
        tmp_path: Path, lines: Lines) -> None:
    w = World(tmp_path, "# cronplus: name=a\n@reboot true\n", T0)
    w.sched.scheduling = False

    def broken(_: events.Event) -> None:
        raise RuntimeError("a bug in a subscriber")

    w.sched.bus.subscribe(events.RunEnded, broken, transactional=False)
    w.sched.bus.subscribe(events.Stepped, broken, transactional=False)

    async def main() -> None:
        serve = asyncio.get_running_loop().create_task(w.sched.serve())
        for _ in range(2):
            run = w.sched.trigger("a")
            await run.done.wait()
            await asyncio.sleep(0.05)  # a step or two of the loop
        assert not serve.done(), "the loop lives on"
        await w.sched.shutdown(0.0)
        await serve

    asyncio.run(main())
    assert [(r[0], r[2]) for r in w.rows()] == [("a", "success"), ("a", "success")]
    assert lines.count("RunEnded of job a: after-commit subscriber") == 2
    assert lines.count("Stepped: after-commit subscriber") >= 2
    w.history.close()


def test_a_failing_transactional_subscriber_is_logged_and_the_end_and_the_alert_still_commit(
        tmp_path: Path, lines: Lines) -> None:
    w = World(tmp_path, "# cronplus: name=bad alert=http://127.0.0.1:9/hook\n* * * * * exit 3\n", T0)

    def broken(_: events.RunEnded) -> None:
        raise RuntimeError("a bug in a subscriber")

    w.sched.bus.subscribe(events.RunEnded, broken, transactional=True)
    Alerting(w.history, clock=w.clock).subscribe(w.sched.bus)
    asyncio.run(w.step_at(T0 + 30))
    assert [r[2] for r in w.rows()] == ["failed"]
    assert [tuple(r) for r in w.history.conn.execute("SELECT job, event FROM outbox")] == [("bad", "failure")]
    assert lines.count("RunEnded of job bad: subscriber") == 1
    w.history.close()


def test_a_storage_error_in_a_transactional_subscriber_holds_the_end_with_it_and_after_commit_sees_it_once(
        tmp_path: Path) -> None:
    w = World(tmp_path, "# cronplus: name=j\n* * * * * true\n", T0)
    refused: list[int] = []
    after: list[tuple[int, str | None]] = []

    def decide(e: events.RunEnded) -> None:  # writes its part, then the disk refuses (the first time)
        with w.history.transaction():
            w.history.kv_set(f"decided.{e.record.run_id}", "yes")
        if not refused:
            refused.append(e.record.run_id)
            raise OSError(errno.ENOSPC, "No space left on device")

    w.sched.bus.subscribe(events.RunEnded, decide, transactional=True)
    w.sched.bus.subscribe(events.RunEnded, lambda e: after.append(
        (e.record.run_id, committed_status(tmp_path / "history.db", e.record.run_id))), transactional=False)

    async def main() -> None:
        await w.step_at(T0 + 30)
        run_id = refused[0]
        assert w.sched.store.problem is not None, "the write is held"
        assert committed_status(tmp_path / "history.db", run_id) == "running", "the end rolled back with it"
        assert w.history.kv_get(f"decided.{run_id}") is None, "and so did the subscriber's part"
        assert after == []
        assert w.sched.store.flush()
        assert committed_status(tmp_path / "history.db", run_id) == "success"
        assert w.history.kv_get(f"decided.{run_id}") == "yes"
        assert after == [(run_id, "success")]
        w.sched.store.close()

    asyncio.run(main())
    w.history.close()


def test_without_a_unit_of_work_after_commit_subscribers_hear_at_once_in_the_order_they_subscribed() -> None:
    bus = events.Bus()
    heard: list[str] = []
    bus.subscribe(events.Stepped, lambda e: heard.append(f"after 1 at {e.now}"), transactional=False)
    bus.subscribe(events.Stepped, lambda e: heard.append(f"now at {e.now}"), transactional=True)
    bus.subscribe(events.Stepped, lambda e: heard.append(f"after 2 at {e.now}"), transactional=False)
    bus.subscribe(events.ConfigReloaded, lambda e: heard.append("reloaded"), transactional=False)
    bus.publish(events.Stepped(now=1.0))
    assert heard == ["now at 1.0", "after 1 at 1.0", "after 2 at 1.0"]


def test_an_event_from_another_thread_is_published_on_the_loops_thread_and_dropped_once_it_is_closed() -> None:
    bus = events.Bus()
    heard: list[tuple[str, int]] = []
    bus.subscribe(events.AlertSettled, lambda e: heard.append((e.result, threading.get_ident())), transactional=False)
    settled = events.AlertSettled(row_id=1, kind="alert", job="j", event="failure", result="delivered")

    async def main() -> None:
        publish = bus.from_thread(asyncio.get_running_loop())
        thread = threading.Thread(target=publish, args=(settled,))
        thread.start()
        thread.join()
        while not heard:
            await asyncio.sleep(0.01)
        assert heard == [("delivered", threading.get_ident())]
        return None

    loop = asyncio.new_event_loop()
    try:
        publish = bus.from_thread(loop)
        loop.run_until_complete(main())
    finally:
        loop.close()
    publish(settled)  # the supervisor is gone: nothing to tell, nothing raised
    assert len(heard) == 1
