"""queue= with the cluster's leases (issue 15's loose ends), below the supervisor, on a real
PostgreSQL store (`pg_url`): a worker's row in the hosts table (kind 'worker') is never a
supervisor's lease to take over (its attempts are the Celery executor's to judge)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from cronplus.status import Trigger
from cronplus.store.leases import Leases
from cronplus.store.postgres import open_postgres
from cronplus.store.postgres_history import PostgresHistory

LEASE = 1.0


@pytest.fixture
def history(pg_url: str) -> Iterator[PostgresHistory]:
    store = open_postgres(pg_url, host="b")
    yield store
    store.close()


def test_a_workers_stale_row_is_neither_expired_nor_taken_while_a_supervisors_is(
        history: PostgresHistory, pg_url: str) -> None:
    now = time.time()
    history.worker_heartbeat(owner="w1:9:0", host="w1", pid=9, started_at=now - 60, now=now - 60, lease_s=LEASE)
    run_id = history.start_run(job="remote", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=60.0, tz=None,
                               started_at=61.0, log_path=None, owner="w1:9:0")
    leases = Leases(pg_url, history)
    beats = leases.connect()
    try:
        beats.register("a:1:0", lease_s=LEASE, local_time=time.time())
        time.sleep(LEASE + 0.2)  # by the database's clock both rows are past their lease
        assert beats.expired("b:1:0") == ["a:1:0"], "only the supervisor's row"
        with history.transaction():
            assert leases.take("w1:9:0", taker="b:1:0") is None
        rows = {row["owner"]: row for row in history._rows("SELECT owner, taken_by FROM hosts")}
        assert rows["w1:9:0"]["taken_by"] is None
        assert history.get_run(run_id).status == "running"  # type: ignore[union-attr]
    finally:
        beats.close()


def test_a_restarting_supervisor_adopts_its_own_host_ids_remote_runs_not_a_live_other_hosts(
        history: PostgresHistory, pg_url: str) -> None:
    def remote(owner: str) -> int:
        run_id = history.start_run(job="remote", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=60.0, tz=None,
                                   started_at=61.0, log_path=None, owner=owner)
        history.send_to_queue(run_id, "gpu")
        return run_id

    store_a = open_postgres(pg_url, host="a")
    beats, beats_a = Leases(pg_url, history).connect(), Leases(pg_url, store_a).connect()
    try:
        beats_a.register("a:1:0", lease_s=30, local_time=time.time())  # host a: alive, its lease held
        beats.register("b:1:0", lease_s=30, local_time=time.time())  # host b's previous process (killed)
        live_other, mine, orphan = remote("a:1:0"), remote("b:1:0"), remote("gone:1:0")
        assert history.adopt_remote(live_owner="b:2:0") == [mine, orphan]  # history's host id is b
        assert [row["owner"] for row in history._rows("SELECT owner FROM runs ORDER BY run_id")] == [
            "a:1:0", "b:2:0", "b:2:0"]
        assert live_other < mine
    finally:
        beats.close()
        beats_a.close()
        store_a.close()
