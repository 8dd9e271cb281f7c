"""Alerts in a cluster (engine/claims.py, alerts/alerting.py): an event's ids do not depend on
the host that decided it, and the incident state (kv, read and written with a run's end) is
updated one supervisor at a time on a shared PostgreSQL store."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cronplus.alerts.alerting import Alerting
from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_schedule
from cronplus.errors import SourceLoc
from cronplus.model import JobOptions, JobSpec, RunRecord
from cronplus.status import AlertEvent, RunStatus, Trigger
from cronplus.store import outbox
from cronplus.store.api import HistoryStore
from cronplus.store.history import History
from cronplus.store.postgres import open_postgres

T0 = 1_767_225_600.0


def job() -> JobSpec:
    options = replace(JobOptions(), alert="http://127.0.0.1:9/hook", ping="http://127.0.0.1:9/ping",
                      alert_on=frozenset({AlertEvent.FAILURE}))
    return JobSpec(loc=SourceLoc(path="crontab", line=1), name="backup", schedule=parse_schedule("* * * * *"),
                   command="false", stdin=None, env=(), options=options)


def ended(run_id: int, host: str) -> RunRecord:
    at = datetime.fromtimestamp(T0, UTC)
    return RunRecord(run_id=run_id, job="backup", attempt=1, status=RunStatus.FAILED, trigger=Trigger.SCHEDULE,
                     scheduled_at=at, started_at=at, ended_at=at, exit_code=1, log_path=None, reason="exit 1", host=host)


def test_two_hosts_deciding_one_event_give_it_one_id_and_one_ping_rid(tmp_path: Path) -> None:
    ids: dict[str, dict[str, object]] = {}
    for host in ("a", "b"):
        history = History(tmp_path / f"{host}.db", host=host)
        alerting = Alerting(history, clock=FakeClock(T0), hostname=f"{host}.example.com")
        alerting.on_start(job(), replace(ended(42, host), status=RunStatus.RUNNING, ended_at=None))
        alerting.on_end(job(), ended(42, host), will_retry=False)
        rows = outbox.list_rows(history.conn, limit=None)
        ids[host] = {f"{r.kind}/{r.event}": r.payload.get("id") or r.payload.get("rid") for r in rows}
        history.close()
    assert set(ids["a"]) == {"ping/start", "ping/fail", "alert/failure"}
    assert ids["a"] == ids["b"]
    again = History(tmp_path / "c.db", host="c")
    Alerting(again, clock=FakeClock(T0), hostname="c").on_end(job(), ended(43, "c"), will_retry=False)
    other = {r.payload.get("id") for r in outbox.list_rows(again.conn, limit=None) if r.kind == "alert"}
    assert other and other.isdisjoint({ids["a"]["alert/failure"]})  # another run, another id
    again.close()


def test_incident_state_is_read_and_written_one_host_at_a_time(pg_url: str) -> None:
    """A read-modify-write of a kv key in a transaction (alerting's incident state, in a run's
    end's transaction) on two hosts at once loses no update."""
    stores = [open_postgres(pg_url, host=host) for host in ("a", "b")]
    errors: list[BaseException] = []

    def bump(store: HistoryStore) -> None:
        try:
            for _ in range(5):
                with store.transaction():
                    value = int(store.kv_get("alert.incident.backup") or 0)
                    time.sleep(0.02)  # the other host would read meanwhile, but for the lock
                    store.kv_set("alert.incident.backup", str(value + 1))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(store,)) for store in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
        assert stores[0].kv_get("alert.incident.backup") == "10"
    finally:
        for store in stores:
            store.close()
