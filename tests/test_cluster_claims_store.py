"""Claims at the store (store/claimed.py, store/postgres_claims.py): several writers of one
PostgreSQL store inserting the same ticks at the same time, as the supervisors of a cluster do;
each (job, tick, attempt) is inserted by exactly one of them, and the others learn they lost."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from cronplus.status import RunStatus, Trigger
from cronplus.store.api import HistoryStore, RunStart
from cronplus.store.postgres import open_postgres

T0 = 1_750_000_020.0
JOBS = [f"job{i:03d}" for i in range(60)]
CHUNK = 10


def starts(host: str, order: list[str], *, tick: float = T0) -> list[RunStart]:
    return [RunStart(job=job, attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=tick, tz=None, started_at=tick,
                     log_path=lambda run_id, job=job: f"/logs/{host}/{job}/{run_id}.log", owner=f"{host}:1:0", claim="")
            for job in order]


def test_writers_racing_on_the_same_ticks_insert_each_once_and_the_losers_know(pg_url: str) -> None:
    orders = {"a": JOBS, "b": list(reversed(JOBS)), "c": JOBS[30:] + JOBS[:30]}  # crossing orders: no deadlock
    stores = {host: open_postgres(pg_url, host=host) for host in orders}
    won: dict[str, list[str]] = {host: [] for host in orders}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(orders))

    def insert(host: str) -> None:
        try:
            barrier.wait(10)
            mine = starts(host, orders[host])
            for i in range(0, len(mine), CHUNK):
                chunk = mine[i:i + CHUNK]
                kv = [(f"scheduler.tick.{s.job}", repr(T0)) for s in chunk]  # the ticks handled, as the launcher writes them
                for start, run_id in zip(chunk, stores[host].start_runs(chunk, kv=kv), strict=True):
                    if run_id is not None:
                        won[host].append(start.job)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=insert, args=(host,)) for host in orders]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        counts = Counter(job for jobs in won.values() for job in jobs)
        assert counts == Counter(JOBS)  # every tick won by exactly one writer
        rows = stores["a"].query(jobs=JOBS)
        assert sorted(r.job for r in rows) == sorted(JOBS)  # exactly one row each
        for row in rows:
            assert row.job in won[row.host or ""] and row.log_path == f"/logs/{row.host}/{row.job}/{row.run_id}.log"
    finally:
        for store in stores.values():
            store.close()


def test_a_retry_and_a_missed_tick_are_claimed_once_each_and_manual_runs_never(pg_url: str) -> None:
    a, b = open_postgres(pg_url, host="a"), open_postgres(pg_url, host="b")
    try:
        (first,) = a.start_runs(starts("a", ["backup"]))
        assert first is not None and b.start_runs(starts("b", ["backup"])) == [None]
        a.finish_run(first, status=RunStatus.FAILED, ended_at=T0 + 1, exit_code=1, reason="exit 1", final=False)
        retry = [RunStart(job="backup", attempt=2, trigger=Trigger.RETRY, scheduled_at=T0, tz=None, started_at=T0 + 5,
                          log_path=None, owner=f"{host}:1:0", claim="") for host in ("a", "b")]
        assert a.start_runs(retry[:1])[0] is not None and b.start_runs(retry[1:]) == [None]
        missed = [store.record_not_run(job="backup", status=RunStatus.MISSED, trigger=Trigger.SCHEDULE,
                                       scheduled_at=T0 - 60, tz=None, at=T0, reason="missed", claim="/missed")
                  for store in (b, a)]
        assert missed[0] is not None and missed[0].host == "b" and missed[1] is None
        manual = RunStart(job="backup", attempt=1, trigger=Trigger.MANUAL, scheduled_at=T0, tz=None, started_at=T0,
                          log_path=None, owner="a:1:0", claim=None)
        assert None not in a.start_runs([manual]) + b.start_runs([manual])
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("held", [False, True])
def test_held_rows_given_their_ids_are_claimed_too(pg_url: str, held: bool) -> None:
    """storeguard writes held rows back with the ids it gave them: the claim still decides."""
    a, b = open_postgres(pg_url, host="a"), open_postgres(pg_url, host="b")
    try:
        assert a.start_runs(starts("a", ["backup", "report"]))[0] is not None
        base = b.next_run_id()
        mine = starts("b", ["report", "other", "backup"])
        if held:
            mine = [RunStart(**{**{f: getattr(s, f) for f in s.__dataclass_fields__}, "run_id": base + i})
                    for i, s in enumerate(mine)]
        got = b.start_runs(mine)
        assert [run_id is None for run_id in got] == [True, False, True]
        if held:
            assert got[1] == base + 1
    finally:
        a.close()
        b.close()


def test_the_start_up_sweep_touches_only_its_own_hosts_rows(pg_url: str) -> None:
    """recovery.py's sweep on a shared store: this host's rows a dead supervisor left (running, or
    a retry pending) are settled; another host's are its own (or the lease take-over's)."""
    a, b = open_postgres(pg_url, host="a"), open_postgres(pg_url, host="b")
    try:
        def start(store: HistoryStore, job: str, owner: str) -> int:
            return store.start_run(job=job, attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None,
                                   started_at=T0, log_path=None, owner=owner)

        a_dead, b_live = start(a, "x", "a:1:0"), start(b, "y", "b:2:0")
        a_retry, b_retry = start(a, "r1", "a:1:0"), start(b, "r2", "b:2:0")
        for store, run_id in ((a, a_retry), (b, b_retry)):
            store.finish_run(run_id, status=RunStatus.FAILED, ended_at=T0 + 1, exit_code=1, reason="exit 1", final=False)
        assert [r.run_id for r in a.stale_running(live_owner="a:3:0")] == [a_dead]
        assert [r.run_id for r in a.mark_interrupted(live_owner="a:3:0", now=T0 + 9)] == [a_dead]
        assert [r.run_id for r in a.mark_abandoned_retries(reason="retry abandoned")] == [a_retry]
        assert [r.run_id for r in b.unfinished(since=T0 - 60)] == [b_live, b_retry]  # left as they were
    finally:
        a.close()
        b.close()

