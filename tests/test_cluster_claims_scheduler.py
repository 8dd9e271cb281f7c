"""Two Schedulers on one PostgreSQL store, each a supervisor of its own (host a, host b) on a
FakeClock, stepped through the same minutes: every tick of every job runs once in the cluster
(engine/claims.py), retries included; overlap= sees the other host's run; after= is released by
an upstream run on the other host; run-on=all runs on both, run-on=HOST on that host only."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_crontab
from cronplus.engine.runstate import RunState
from cronplus.engine.scheduler import Scheduler
from cronplus.model import RunRecord
from cronplus.status import RunStatus, Trigger
from cronplus.store.api import HistoryStore
from cronplus.store.postgres import open_postgres

T0 = 1_767_268_800.0  # 2026-01-01T12:00:00Z, a minute boundary
CRONTAB = """\
# cronplus: name=every
* * * * * true
# cronplus: name=flaky retries=1 retry-delay=0s
* * * * * exit 3
# cronplus: name=up run-on=a
* * * * * sleep 0.3
# cronplus: name=down after=up run-on=b
* * * * * true
# cronplus: name=each run-on=all
* * * * * true
# cronplus: name=long overlap=skip
*/2 * * * * sleep 1.5
"""


class Host:
    def __init__(self, tmp_path: Path, pg_url: str, name: str, text: str = CRONTAB, start: float = T0 - 30) -> None:
        self.store: HistoryStore = open_postgres(pg_url, host=name)
        self.clock = FakeClock(start)
        crontab = parse_crontab(text, path=str(tmp_path / "crontab"), system=False)
        self.sched = Scheduler(crontab, history=self.store, alerting=None, log_dir=tmp_path / name / "logs",
                               owner=f"{name}:1:0", clock=self.clock)

    def busy(self) -> bool:
        return any(r.state is not RunState.FINAL for r in self.sched.runs)


async def step_all(hosts: list[Host], when: float) -> None:
    """Each host steps at `when` in the order given, then all step every 20 ms until no run is
    left on any (a waiting downstream on one host is released by the other's upstream)."""
    for host in hosts:
        host.clock.jump(when - host.clock.time())
        host.sched.step(when)
    for _ in range(500):
        if not any(host.busy() for host in hosts):
            return
        await asyncio.sleep(0.02)
        for host in hosts:
            host.sched.step(when)
    raise AssertionError(f"runs left: {[(r.job.name, r.state) for h in hosts for r in h.sched.runs]}")


def rows(store: HistoryStore) -> list[RunRecord]:
    return store.query()


def test_two_schedulers_on_one_store_run_every_tick_once_in_the_cluster(tmp_path: Path, pg_url: str) -> None:
    async def main() -> list[RunRecord]:
        a, b = Host(tmp_path, pg_url, "a"), Host(tmp_path, pg_url, "b")
        try:
            for minute in range(4):  # the first host to step alternates
                await step_all([a, b] if minute % 2 == 0 else [b, a], T0 + 60 * minute)
            return rows(a.store)
        finally:
            a.store.close()
            b.store.close()

    records = asyncio.run(main())
    ticks = [T0 + 60 * m for m in range(4)]
    claimed = Counter((r.job, r.scheduled_at.timestamp() if r.scheduled_at else None, r.attempt,
                       r.host if r.job == "each" else "") for r in records)
    assert max(claimed.values()) == 1, claimed  # no (job, tick, attempt) twice (per host for run-on=all)
    by_job = {job: [r for r in records if r.job == job] for job in ("every", "flaky", "up", "down", "each", "long")}
    assert [r.scheduled_at.timestamp() for r in by_job["every"] if r.scheduled_at] == ticks
    assert [(r.attempt, r.status, r.trigger) for r in by_job["flaky"]] == \
        [(1, RunStatus.FAILED, Trigger.SCHEDULE), (2, RunStatus.FAILED, Trigger.RETRY)] * 4
    assert {r.host for r in by_job["up"]} == {"a"} and {r.host for r in by_job["down"]} == {"b"}
    assert [r.status for r in by_job["down"]] == [RunStatus.SUCCESS] * 4  # released across hosts, each tick
    assert Counter(r.host for r in by_job["each"]) == {"a": 4, "b": 4}
    long = [(r.scheduled_at.timestamp() if r.scheduled_at else None, r.status) for r in by_job["long"]]
    assert long == [(T0, RunStatus.SUCCESS), (T0 + 120, RunStatus.SUCCESS)]


def test_a_tick_whose_previous_run_runs_on_the_other_host_is_skipped_once(tmp_path: Path, pg_url: str) -> None:
    """overlap=skip in a cluster: b, which does not run it, sees a's run of the job and records
    the next tick skipped (once: a decides the same and loses the claim)."""
    async def main() -> list[RunRecord]:
        text = "# cronplus: name=slow overlap=skip\n* * * * * sleep 1.5\n"
        a, b = Host(tmp_path, pg_url, "a", text), Host(tmp_path, pg_url, "b", text)
        try:
            for host in (a, b):
                host.clock.jump(T0 - host.clock.time())
                host.sched.step(T0)  # a claims the tick, b loses it
            for host in (b, a):  # the next tick while a's run still runs: b decides first
                host.clock.jump(60)
                host.sched.step(T0 + 60)
            await step_all([a, b], T0 + 60)
            return rows(a.store)
        finally:
            a.store.close()
            b.store.close()

    records = asyncio.run(main())
    assert [(r.scheduled_at.timestamp() if r.scheduled_at else None, r.status, r.host) for r in records] == \
        [(T0, RunStatus.SUCCESS, "a"), (T0 + 60, RunStatus.SKIPPED, "b")]
    assert records[1].reason == f"previous run {records[0].run_id} (on a) still running"


def test_a_supervisor_that_stops_leaves_its_waiting_tick_to_the_other_host(tmp_path: Path, pg_url: str) -> None:
    """b stops while its downstream run waits for a's upstream: b writes no `skipped` row for the
    tick (which would hold its claim), so a, which goes on, runs it."""
    async def main() -> list[RunRecord]:
        text = ("# cronplus: name=up run-on=a\n* * * * * sleep 0.5\n"
                "# cronplus: name=down after=up\n* * * * * true\n")
        a, b = Host(tmp_path, pg_url, "a", text), Host(tmp_path, pg_url, "b", text)
        try:
            for host in (a, b):
                host.clock.jump(T0 - host.clock.time())
                host.sched.step(T0)
            assert [r.state for r in b.sched.runs] == [RunState.WAITING]
            await b.sched.shutdown(grace=0)
            await step_all([a], T0)
            return rows(a.store)
        finally:
            a.store.close()
            b.store.close()

    records = asyncio.run(main())
    assert [(r.job, r.status, r.host) for r in records] == [("up", RunStatus.SUCCESS, "a"),
                                                            ("down", RunStatus.SUCCESS, "a")]


def test_a_supervisor_started_after_a_tick_the_other_ran_does_not_record_it_missed(tmp_path: Path,
                                                                                    pg_url: str) -> None:
    """b starts after the tick a ran: b's start sees that tick past (missed, as after downtime),
    but its missed row claims the tick as a run does and loses to a's run; a tick a host missed
    while no host ran it is recorded once, and catch-up=last runs it once."""
    async def main() -> list[RunRecord]:
        text = ("# cronplus: name=job\n* * * * * true\n"
                "# cronplus: name=catch catch-up=last\n2-59/5 * * * * true\n")
        a = Host(tmp_path, pg_url, "a", text)
        try:
            # b and c start after the tick (they read the last ticks handled before a handles it)
            b = Host(tmp_path, pg_url, "b", text, start=T0 + 5)
            c = Host(tmp_path, pg_url, "c", text, start=T0 + 5)
            await step_all([a], T0)  # a runs job's tick
            try:
                await step_all([b, c], T0 + 5)
                a.store.close()  # a dies; b and c come back after 11 minutes of nobody
                b2 = Host(tmp_path, pg_url, "b", text, start=T0 + 5 + 660)
                c2 = Host(tmp_path, pg_url, "c", text, start=T0 + 5 + 660)
                await step_all([c2, b2], T0 + 5 + 660)
                b2.store.close()
                c2.store.close()
            finally:
                b.store.close()
                c.store.close()
            return rows(open_postgres_reader(tmp_path, pg_url))
        finally:
            a.store.close()

    records = asyncio.run(main())
    job = [(r.scheduled_at.timestamp() if r.scheduled_at else None, r.status) for r in records if r.job == "job"]
    assert job == [(T0, RunStatus.SUCCESS)] + [(T0 + 60 * m, RunStatus.MISSED) for m in range(1, 12)]  # once each
    catch = [(r.scheduled_at.timestamp() if r.scheduled_at else None, r.status, r.trigger) for r in records
             if r.job == "catch"]
    assert catch == [(T0 + 120, RunStatus.MISSED, Trigger.SCHEDULE), (T0 + 420, RunStatus.MISSED, Trigger.SCHEDULE),
                     (T0 + 420, RunStatus.SUCCESS, Trigger.CATCH_UP)]  # as on one host, each once


def open_postgres_reader(tmp_path: Path, pg_url: str) -> HistoryStore:
    return open_postgres(pg_url, host="reader")


def test_a_sensor_that_gives_up_on_two_hosts_ends_its_tick_once(tmp_path: Path, pg_url: str) -> None:
    async def main() -> list[RunRecord]:
        text = "# cronplus: name=sensed wait-for=false wait-every=1 wait-timeout=3\n* * * * * true\n"
        a, b = Host(tmp_path, pg_url, "a", text), Host(tmp_path, pg_url, "b", text)
        try:
            for second in range(0, 8):
                for host in (a, b):
                    host.clock.jump(T0 + second - host.clock.time())
                    host.sched.step(T0 + second)
                await asyncio.sleep(0.2)  # the probes (`false`) exit
            assert not a.busy() and not b.busy()
            return rows(a.store)
        finally:
            a.store.close()
            b.store.close()

    records = asyncio.run(main())
    assert [(r.job, r.status, r.attempt) for r in records] == [("sensed", RunStatus.FAILED, 1)]
    assert records[0].reason is not None and "wait-for timed out" in records[0].reason
