"""Leases on a real PostgreSQL store (`pg_url`), below the supervisor: the heartbeat thread
(service/heartbeat.py) against the hosts table (store/leases.py), and the take-over in one
transaction with the scheduler (engine/takeover.py). Times in the table are the database's;
the heartbeat's continuity is judged on a monotonic clock the tests move by hand."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cronplus.clock import FakeClock, SystemClock
from cronplus.service.heartbeat import Heartbeat
from cronplus.status import RunStatus, Trigger
from cronplus.store.leases import Leases
from cronplus.store.postgres import open_postgres
from cronplus.store.postgres_history import PostgresHistory

LEASE = 1.0


class Heard:
    """A Listener that writes down what it is told (on the heartbeat's thread)."""

    def __init__(self) -> None:
        self.lost: list[tuple[str, str | None]] = []
        self.expired: list[str] = []
        self.skews: list[float | None] = []
        self._lock = threading.Lock()

    def lost_(self, why: str, owner: str | None) -> None:
        with self._lock:
            self.lost.append((why, owner))

    def expired_(self, owner: str) -> None:
        with self._lock:
            self.expired.append(owner)

    def skewed_(self, skew_s: float | None) -> None:
        with self._lock:
            self.skews.append(skew_s)


class Listener:
    def __init__(self, heard: Heard) -> None:
        self.heard = heard

    def lost(self, why: str, owner: str | None) -> None:
        self.heard.lost_(why, owner)

    def expired(self, owner: str) -> None:
        self.heard.expired_(owner)

    def skewed(self, skew_s: float | None) -> None:
        self.heard.skewed_(skew_s)


class Mono:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class OffClock:
    """The system clock `off` seconds off (a skewed host)."""

    def __init__(self, off: float) -> None:
        self.off = off

    def time(self) -> float:
        return time.time() + self.off

    def monotonic(self) -> float:
        return time.monotonic()


@pytest.fixture
def history(pg_url: str) -> Iterator[PostgresHistory]:
    store = open_postgres(pg_url, host="b")
    yield store
    store.close()


def heartbeat(history: PostgresHistory, pg_url: str, owner: str, heard: Heard, *, mono: Mono | None = None,
              clock: Any = None, shift_s: float = 0.0) -> Heartbeat:
    counter = iter(range(2, 100))
    return Heartbeat(Leases(pg_url, history), Listener(heard), owner=owner,
                     new_owner=lambda: f"{owner.split(':')[0]}:{next(counter)}:0", lease_s=LEASE,
                     clock=clock or SystemClock(), shift_s=shift_s, monotonic=mono or time.monotonic)


def hosts(history: PostgresHistory) -> dict[str, dict[str, Any]]:
    return {row["owner"]: row for row in history._rows("SELECT * FROM hosts")}


def test_the_heartbeat_beats_from_its_thread_while_the_event_loop_is_blocked(
        history: PostgresHistory, pg_url: str) -> None:
    heard = Heard()
    beat = heartbeat(history, pg_url, "a:1:0", heard)

    async def blocked() -> tuple[float, float, int]:
        beat.start()
        first = hosts(history)["a:1:0"]["heartbeat_at"]
        time.sleep(6 * beat.interval)  # the loop does nothing else meanwhile: a job's start, a bug
        return first, hosts(history)["a:1:0"]["heartbeat_at"], beat.beats

    try:
        first, last, beats = asyncio.run(blocked())
    finally:
        beat.stop()
    assert beats >= 4, f"{beats} beats in {6 * beat.interval:g}s"
    assert last - first >= 3 * beat.interval
    assert heard.lost == [] and heard.skews == []
    assert "a:1:0" not in hosts(history), "a clean stop removes its row"


def test_another_host_is_reported_expired_only_after_our_own_lease_was_renewed_for_a_whole_lease(
        history: PostgresHistory, pg_url: str) -> None:
    silent = heartbeat(history, pg_url, "a:1:0", Heard())
    silent.start(thread=False)  # registers, never beats
    time.sleep(LEASE + 0.2)  # by the database's clock, a's lease has run out
    heard, mono = Heard(), Mono()
    taker = heartbeat(history, pg_url, "b:1:0", heard, mono=mono)
    taker.start(thread=False)
    for at in (0.25, 0.5, 0.75):
        mono.now += 0.25
        taker.beat()
        assert heard.expired == [], f"reported {at}s into its own lease"
    mono.now += 0.6  # a break longer than half a lease (a database outage, a stopped host): start again
    taker.beat()
    mono.now += 0.25
    taker.beat()
    assert heard.expired == []
    for _ in range(3):
        mono.now += 0.25
        taker.beat()
    assert heard.expired == ["a:1:0"]
    assert heard.lost == []


def test_a_take_over_locks_the_host_so_of_two_takers_one_gets_it_and_the_taken_host_reregisters(
        history: PostgresHistory, pg_url: str) -> None:
    heard = Heard()
    store_a = open_postgres(pg_url, host="a")
    a = heartbeat(store_a, pg_url, "a:1:0", heard)
    a.start(thread=False)
    run_id = store_a.start_run(job="long", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=60.0, tz=None,
                               started_at=61.0, log_path=None, owner="a:1:0")
    store_a.close()
    time.sleep(LEASE + 0.2)
    other = open_postgres(pg_url, host="c")
    try:
        with history.transaction():
            taken = Leases(pg_url, history).take("a:1:0", taker="b:1:0")
            with other.transaction():  # a second taker meanwhile: the row is locked, it skips it
                assert Leases(pg_url, other).take("a:1:0", taker="c:1:0") is None
        assert taken is not None and (taken.host, [r.run_id for r in taken.running]) == ("a", [run_id])
        with other.transaction():
            assert Leases(pg_url, other).take("a:1:0", taker="c:1:0") is None, "taken once"
    finally:
        other.close()
    assert hosts(history)["a:1:0"]["taken_by"] == "b:1:0"
    a.beat()  # host a comes back: its lease is gone, it registers again at once
    assert heard.lost == [("its runs were taken over by b:1:0", "a:2:0")]
    assert a.owner == "a:2:0" and hosts(history)["a:2:0"]["taken_by"] is None


def test_a_lease_not_renewed_for_a_whole_lease_is_lost_even_before_the_database_says_so(
        history: PostgresHistory, pg_url: str) -> None:
    heard, mono = Heard(), Mono()
    beat = heartbeat(history, pg_url, "a:1:0", heard, mono=mono)
    beat.start(thread=False)
    mono.now += LEASE / 2
    beat.check_lapse()
    assert heard.lost == []
    mono.now += LEASE  # a starved thread, a hung connection: the loop's check says it
    beat.check_lapse()
    assert heard.lost == [(f"no heartbeat renewed its lease for {LEASE:g}s", None)]
    beat.beat()  # the database answers again: a new lease (the old row is left to a taker)
    assert heard.lost[1:] == [("", "a:2:0")]
    assert {"a:1:0", "a:2:0"} <= set(hosts(history))


def test_a_clock_over_5s_off_the_databases_is_reported_once_and_again_when_back_under(
        history: PostgresHistory, pg_url: str) -> None:
    heard, clock = Heard(), OffClock(10.0)
    beat = heartbeat(history, pg_url, "a:1:0", heard, clock=clock)
    beat.start(thread=False)
    beat.beat()
    assert len(heard.skews) == 1 and heard.skews[0] is not None and 9 < heard.skews[0] < 11
    clock.off = 0.0
    beat.beat()
    beat.beat()
    assert heard.skews[1:] == [None]
    assert abs(hosts(history)["a:1:0"]["skew_s"]) < 1


def test_a_clock_shifted_on_purpose_by_its_known_shift_is_not_skewed(history: PostgresHistory, pg_url: str) -> None:
    heard = Heard()
    beat = heartbeat(history, pg_url, "a:1:0", heard, clock=OffClock(3600.0), shift_s=3600.0)
    beat.start(thread=False)
    beat.beat()
    assert heard.skews == []


# ---- the take-over with the scheduler: one transaction, alert decided, retry here ------------


def scheduler_for(tmp_path: Path, history: PostgresHistory, text: str) -> Any:
    from cronplus.alerts.alerting import Alerting
    from cronplus.crontab.parser import parse_crontab
    from cronplus.engine.scheduler import Scheduler

    (tmp_path / "logs").mkdir(exist_ok=True)
    clock = FakeClock(1_750_000_000.0)
    crontab = parse_crontab(text, path=str(tmp_path / "crontab"), system=False)
    return Scheduler(crontab, history=history, alerting=Alerting(history, wake=lambda: None, clock=clock),
                     log_dir=tmp_path / "logs", owner="b:1:0", clock=clock, scheduling=False)


def dead_host_running(pg_url: str) -> int:
    """Host a's lease and its running row; then host a goes silent past its lease."""
    dead = open_postgres(pg_url, host="a")
    try:
        Heartbeat(Leases(pg_url, dead), Listener(Heard()), owner="a:1:0", new_owner=lambda: "a:2:0",
                  lease_s=LEASE, clock=SystemClock()).start(thread=False)
        run_id = dead.start_run(job="long", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=1_749_999_960.0,
                                tz=None, started_at=1_749_999_961.0, log_path=None, owner="a:1:0")
    finally:
        dead.close()
    time.sleep(LEASE + 0.2)
    return run_id


def test_a_taken_run_without_retries_ends_interrupted_with_its_run_end_decided_in_the_same_transaction(
        tmp_path: Path, history: PostgresHistory, pg_url: str) -> None:
    from cronplus.engine import events
    from cronplus.engine.takeover import take_over
    from cronplus.store.faults import DatabaseUnavailable

    run_id = dead_host_running(pg_url)
    scheduler = scheduler_for(tmp_path, history, "# cronplus: name=long\n* * * * * sleep 100\n")
    heard: list[tuple[int, bool]] = []

    def fails(event: events.RunEnded) -> None:  # a decision that cannot be written: the take-over is undone
        raise DatabaseUnavailable("history database: connection lost")

    scheduler.bus.subscribe(events.RunEnded, fails, transactional=True)
    with pytest.raises(DatabaseUnavailable):
        take_over(scheduler, Leases(pg_url, history), "a:1:0")
    assert history.running() and hosts(history)["a:1:0"]["taken_by"] is None, "nothing of it was written"
    scheduler.bus = events.Bus(history)
    scheduler.bus.subscribe(events.RunEnded, lambda e: heard.append((e.record.run_id, e.will_retry)), transactional=True)
    taken = take_over(scheduler, Leases(pg_url, history), "a:1:0")
    assert taken is not None
    record = history.get_run(run_id)
    assert record is not None
    assert (record.status, record.reason, record.host) == (RunStatus.INTERRUPTED, "host a lost its lease", "a")
    assert history.last_final_run("long") == record and heard == [(run_id, False)]
    assert hosts(history)["a:1:0"]["taken_by"] == "b:1:0"
    assert take_over(scheduler, Leases(pg_url, history), "a:1:0") is None, "taken once"


def test_a_taken_run_with_retries_left_gets_its_next_attempt_on_the_taker(
        tmp_path: Path, history: PostgresHistory, pg_url: str) -> None:
    from cronplus.engine.takeover import take_over

    run_id = dead_host_running(pg_url)
    scheduler = scheduler_for(tmp_path, history, "# cronplus: name=long retries=2 retry-delay=0s\n* * * * * true\n")

    async def main() -> None:
        assert take_over(scheduler, Leases(pg_url, history), "a:1:0") is not None
        await asyncio.wait_for(scheduler.wait_idle(), 30)

    asyncio.run(main())
    one, two = history.query(jobs=["long"])
    assert (one.run_id, one.status, one.attempt) == (run_id, RunStatus.INTERRUPTED, 1)
    assert (two.status, two.attempt, two.trigger, two.host) == (RunStatus.SUCCESS, 2, Trigger.RETRY, "b")
    assert two.scheduled_at == one.scheduled_at
    assert history.last_final_run("long") == two


def test_a_dead_hosts_pending_retry_runs_on_the_taker_after_what_is_left_of_its_delay(
        tmp_path: Path, history: PostgresHistory, pg_url: str) -> None:
    from cronplus.engine.takeover import take_over

    dead = open_postgres(pg_url, host="a")
    try:
        Heartbeat(Leases(pg_url, dead), Listener(Heard()), owner="a:1:0", new_owner=lambda: "a:2:0",
                  lease_s=LEASE, clock=SystemClock()).start(thread=False)
        failed = dead.start_run(job="flaky", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=1_749_999_960.0,
                                tz=None, started_at=1_749_999_961.0, log_path=None, owner="a:1:0")
        dead.finish_run(failed, status=RunStatus.FAILED, ended_at=1_749_999_990.0, exit_code=1, reason="exit 1",
                        final=False, owner="a:1:0")  # host a waits 30s to retry it... and dies
        gone = dead.start_run(job="removed", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=1_749_999_960.0,
                              tz=None, started_at=1_749_999_961.0, log_path=None, owner="a:1:0")
        dead.finish_run(gone, status=RunStatus.FAILED, ended_at=1_749_999_990.0, exit_code=1, reason="exit 1",
                        final=False, owner="a:1:0")
    finally:
        dead.close()
    time.sleep(LEASE + 0.2)
    scheduler = scheduler_for(tmp_path, history, "# cronplus: name=flaky retries=1 retry-delay=30s\n* * * * * true\n")

    async def main() -> Any:
        taken = take_over(scheduler, Leases(pg_url, history), "a:1:0")
        (run,) = scheduler.runs
        assert (run.state, run.attempt) == ("retry_wait", 1)
        left = run.retry_timer.when() - asyncio.get_running_loop().time() if run.retry_timer else None
        assert left is not None and 19 < left <= 20.5, left
        run.retry_timer.cancel()
        scheduler._retry_due(run)  # its delay (20s left of 30 on the scheduler's clock) is over
        await asyncio.wait_for(scheduler.wait_idle(), 30)
        return taken

    taken = asyncio.run(main())
    assert [r.run_id for r in taken.retrying] == [failed, gone] and taken.running == []
    rows = {(r.job, r.attempt): r for r in history.query()}
    assert (rows["flaky", 2].status, rows["flaky", 2].trigger, rows["flaky", 2].host) == (
        RunStatus.SUCCESS, Trigger.RETRY, "b")
    assert history.last_final_run("flaky") == rows["flaky", 2]
    removed = rows["removed", 1]
    assert removed.reason == "exit 1; retry abandoned: host a lost its lease"
    assert history.last_final_run("removed") == removed, "a job the taker does not have ends final"
