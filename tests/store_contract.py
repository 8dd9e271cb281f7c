"""The store contract: what any backend of cronplus's history must do, written only against the
Protocols of cronplus/store/api.py (HistoryStore), never against SQL or a backend's class.

A backend's test module subclasses `StoreContract` and gives the `store` fixture (a fresh, empty
store, and `make_store` to open a second one on the same data, when it can); see
tests/test_store_contract_sqlite.py. A PostgreSQL backend adds its own module (or parametrises
that fixture) and must pass every test here unchanged. The model is APScheduler's datastore
test suite: one set of behaviours, every backend.

Times are fixed Unix seconds (T0...), never the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.model import RunRecord
from cronplus.status import RunStatus, Trigger
from cronplus.store.api import HistoryStore, OutboxQueue, RunStart

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z


def start(store: HistoryStore, job: str = "backup", *, at: float = T0, attempt: int = 1, owner: str = "sup-1",
          scheduled_at: float | None = None, log_path: str | None = None) -> int:
    return store.start_run(job=job, attempt=attempt, trigger=Trigger.SCHEDULE,
                           scheduled_at=at if scheduled_at is None else scheduled_at, tz=None,
                           started_at=at, log_path=log_path, owner=owner)


def finish(store: HistoryStore, run_id: int, status: RunStatus = RunStatus.SUCCESS, *, at: float = T0 + 1,
           final: bool = True) -> RunRecord:
    exit_code = 0 if status is RunStatus.SUCCESS else 1
    return store.finish_run(run_id, status=status, ended_at=at, exit_code=exit_code,
                            reason=None if exit_code == 0 else "exit 1", final=final)


def got(store: HistoryStore, run_id: int) -> RunRecord:
    record = store.get_run(run_id)
    assert record is not None, f"no run {run_id}"
    return record


class Boom(Exception):
    pass


def enqueue(store: HistoryStore, *, at: float, kind: str = "alert", target: str = "http://127.0.0.1:9/a",
            run_id: int | None = None) -> int:
    return store.enqueue_outbox(kind=kind, event="failure", job="backup", run_id=run_id, target=target,
                                format="json", secret_ref=None, payload={"at": at}, now=at)


class StoreContract:
    @pytest.fixture
    def store(self) -> Iterator[HistoryStore]:
        raise NotImplementedError("a backend's test module gives the store fixture")

    @pytest.fixture
    def queue(self, store: HistoryStore) -> Iterator[OutboxQueue]:
        raise NotImplementedError("the outbox's delivery side on the same data, as a worker sees it")

    # ---- a run's rows ------------------------------------------------------------------------

    def test_a_started_run_is_running_with_what_it_was_given(self, store: HistoryStore) -> None:
        run_id = start(store, "backup", at=T0, log_path="/logs/backup/x.log")
        record = got(store, run_id)
        assert (record.job, record.attempt, record.status, record.trigger) == ("backup", 1, RunStatus.RUNNING,
                                                                               Trigger.SCHEDULE)
        assert record.started_at is not None and record.started_at.timestamp() == T0
        assert record.ended_at is None and record.exit_code is None
        assert record.log_path == "/logs/backup/x.log"
        assert record.host == store.host
        assert [r.run_id for r in store.running()] == [run_id]

    def test_finish_run_ends_the_row_and_returns_what_get_run_reads(self, store: HistoryStore) -> None:
        run_id = start(store)
        ended = store.finish_run(run_id, status=RunStatus.FAILED, ended_at=T0 + 5, exit_code=137,
                                 reason="killed by signal 9", final=True, signal=9)
        assert ended == got(store, run_id)
        assert (ended.status, ended.exit_code, ended.signal, ended.reason) == (RunStatus.FAILED, 137, 9,
                                                                               "killed by signal 9")
        assert ended.ended_at is not None and ended.ended_at.timestamp() == T0 + 5
        assert store.running() == []
        assert store.last_final_run("backup") == ended

    def test_run_ids_increase_and_next_run_id_is_above_every_one(self, store: HistoryStore) -> None:
        assert store.last_run_id() == 0
        first = start(store, "a")
        ids = store.start_runs([RunStart(job=j, attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None,
                                         started_at=T0, log_path=None, owner="sup-1") for j in ("b", "c")])
        skipped = store.record_not_run(job="d", status=RunStatus.MISSED, trigger=Trigger.SCHEDULE,
                                       scheduled_at=T0, tz=None, at=T0 + 1, reason="supervisor down")
        assert [first, *ids, skipped.run_id] == sorted({first, *ids, skipped.run_id})
        assert store.last_run_id() == skipped.run_id
        assert store.next_run_id() > skipped.run_id
        assert [got(store, i).job for i in ids] == ["b", "c"]
        assert store.start_runs([]) == []

    def test_start_runs_names_logs_after_the_new_ids_and_sets_kv_with_them(self, store: HistoryStore) -> None:
        starts = [RunStart(job=f"job{i}", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None,
                           started_at=T0, owner="sup-1", log_path=lambda rid, i=i: f"/logs/job{i}/{rid}.log")
                  for i in range(3)]
        ids = store.start_runs(starts, kv=[("scheduler.tick.job0", "1.5")])
        assert [got(store, rid).log_path for rid in ids] == [f"/logs/job{i}/{rid}.log" for i, rid in enumerate(ids)]
        assert store.kv_get("scheduler.tick.job0") == "1.5"

    def test_pid_and_log_path_are_set_on_the_row(self, store: HistoryStore) -> None:
        a, b = start(store, "a"), start(store, "b")
        store.set_pid(a, 101)
        store.set_pids([(b, 202)])
        store.set_log_path(b, "/logs/b/2.log")
        assert (got(store, a).pid, got(store, b).pid, got(store, b).log_path) == (101, 202, "/logs/b/2.log")

    def test_set_usage_records_a_runs_peak_memory_and_cpu(self, store: HistoryStore) -> None:
        a, b = start(store, "a"), start(store, "b")
        store.set_usage(a, peak_memory_bytes=512 * 1024 * 1024, cpu_s=1.25)
        finish(store, a)
        assert (got(store, a).peak_memory_bytes, got(store, a).cpu_s) == (512 * 1024 * 1024, 1.25)
        assert (got(store, b).peak_memory_bytes, got(store, b).cpu_s) == (None, None)

    def test_set_queued_records_the_seconds_a_run_waited_for_a_pool_slot(self, store: HistoryStore) -> None:
        a, b = start(store, "train"), start(store, "other")
        store.set_queued(a, 12.5)
        assert (got(store, a).queued_s, got(store, b).queued_s) == (12.5, None)

    def test_a_sensors_wait_is_set_on_the_row(self, store: HistoryStore) -> None:
        a, b = start(store, "a"), start(store, "b")
        store.set_sensor_s(a, 12.5)
        assert (got(store, a).sensor_s, got(store, b).sensor_s) == (12.5, None)

    def test_record_not_run_is_final_without_a_start(self, store: HistoryStore) -> None:
        record = store.record_not_run(job="report", status=RunStatus.UPSTREAM_FAILED, trigger=Trigger.SCHEDULE,
                                      scheduled_at=T0, tz=None, at=T0 + 2, reason="upstream etl failed")
        assert record == got(store, record.run_id)
        assert (record.status, record.started_at, record.reason) == (RunStatus.UPSTREAM_FAILED, None,
                                                                     "upstream etl failed")
        assert record.ended_at is not None and record.ended_at.timestamp() == T0 + 2
        assert store.last_final_run("report") == record

    def test_only_the_last_attempt_is_final_and_last_final_run_respects_the_tick(self, store: HistoryStore) -> None:
        first = finish(store, start(store, "etl", at=T0, attempt=1), RunStatus.FAILED, final=False)
        assert store.last_final_run("etl") is None
        second = finish(store, start(store, "etl", at=T0 + 10, attempt=2, scheduled_at=T0), RunStatus.SUCCESS)
        later = finish(store, start(store, "etl", at=T0 + 60), RunStatus.FAILED)
        assert store.last_final_run("etl") == later
        assert store.last_final_run("etl", at_or_before=T0 + 30) == second
        assert store.last_final_run("etl", at_or_before=T0 - 1) is None
        assert [r.run_id for r in store.latest_runs("etl", 2)] == [second.run_id, later.run_id]
        assert [r.run_id for r in store.latest_runs("etl")] == [first.run_id, second.run_id, later.run_id]

    def test_mark_final_makes_an_ended_attempt_final_and_keeps_its_reason(self, store: HistoryStore) -> None:
        attempt = finish(store, start(store, "etl"), RunStatus.FAILED, final=False)
        record = store.mark_final(attempt.run_id, "retry abandoned: shutdown")
        assert record.reason == "exit 1; retry abandoned: shutdown"
        assert store.last_final_run("etl") == record
        running = start(store, "etl", at=T0 + 60)
        assert store.mark_final(running, "nope").status is RunStatus.RUNNING  # a running row stays as it is
        assert store.last_final_run("etl") == record

    def test_mark_interrupted_ends_only_other_owners_rows_and_decides_each_in_its_transaction(
            self, store: HistoryStore) -> None:
        gone = start(store, "a", owner="sup-old")
        noted = start(store, "b", owner="sup-old")
        mine = start(store, "c", owner="sup-1")
        assert [r.run_id for r in store.stale_running(live_owner="sup-1")] == [gone, noted]
        decided: list[int] = []
        records = store.mark_interrupted(live_owner="sup-1", now=T0 + 9, notes={noted: "leftover killed"},
                                         on_final=lambda r: decided.append(r.run_id))
        assert [r.run_id for r in records] == decided == [gone, noted]
        assert all(r.status is RunStatus.INTERRUPTED for r in records)
        assert got(store, noted).reason == "supervisor sup-old stopped while it ran; leftover killed"
        assert got(store, mine).status is RunStatus.RUNNING
        assert store.mark_interrupted(live_owner="sup-1", now=T0 + 10) == []

    def test_a_failing_decision_leaves_the_interrupted_rows_running(self, store: HistoryStore) -> None:
        run_id = start(store, "a", owner="sup-old")

        def fail(_: RunRecord) -> None:
            raise Boom

        with pytest.raises(Boom):
            store.mark_interrupted(live_owner="sup-1", now=T0 + 9, on_final=fail)
        assert got(store, run_id).status is RunStatus.RUNNING

    def test_mark_abandoned_retries_finalises_attempts_with_no_later_one(self, store: HistoryStore) -> None:
        pending = finish(store, start(store, "a", at=T0), RunStatus.FAILED, final=False)
        retried = finish(store, start(store, "b", at=T0), RunStatus.FAILED, final=False)
        finish(store, start(store, "b", at=T0 + 5, attempt=2, scheduled_at=T0), RunStatus.SUCCESS)
        decided: list[int] = []
        records = store.mark_abandoned_retries(reason="retry abandoned", on_final=lambda r: decided.append(r.run_id))
        assert [r.run_id for r in records] == decided == [pending.run_id]
        assert records[0].reason == "exit 1; retry abandoned"
        assert store.last_final_run("a") == records[0]
        assert got(store, retried.run_id).reason == "exit 1"  # its retry happened: left as it was

    # ---- reading -----------------------------------------------------------------------------

    def test_query_filters_by_glob_status_time_and_limit_newest_last(self, store: HistoryStore) -> None:
        ids = {}
        for i, job in enumerate(["db-backup", "web-backup", "report", "db-backup"]):
            rid = start(store, job, at=T0 + 100 * i)
            finish(store, rid, RunStatus.FAILED if job == "report" or i == 3 else RunStatus.SUCCESS, at=T0 + 100 * i + 1)
            ids[i] = rid

        def q(**kw: object) -> list[int]:
            return [r.run_id for r in store.query(**kw)]  # type: ignore[arg-type]

        assert q() == [ids[0], ids[1], ids[2], ids[3]]
        assert q(jobs=["*-backup"]) == [ids[0], ids[1], ids[3]]
        assert q(jobs=["db-backup", "report"]) == [ids[0], ids[2], ids[3]]
        assert q(jobs=["nothing*"]) == []
        assert q(statuses=["failed"]) == [ids[2], ids[3]]
        assert q(since=T0 + 100, until=T0 + 200) == [ids[1], ids[2]]
        assert q(limit=2) == [ids[2], ids[3]]  # the newest two, newest last
        assert q(after_run_id=ids[1]) == [ids[2], ids[3]]
        assert q(jobs=["*-backup"], statuses=["success"], since=T0 + 50) == [ids[1]]
        newest_first = [r.run_id for r in store.iter_query(newest_first=True, limit=3)]
        assert newest_first == [ids[3], ids[2], ids[1]]
        assert [r.run_id for r in store.iter_query()] == q()
        assert [r.run_id for r in store.runs_by_id([ids[2], ids[0]])] == [ids[0], ids[2]]
        assert store.job_names() == ["db-backup", "report", "web-backup"]

    def test_kv_values_are_set_replaced_and_read_by_prefix(self, store: HistoryStore) -> None:
        assert store.kv_get("alert.incident.a") is None
        store.kv_set("alert.incident.a", "1")
        store.kv_set("alert.incident.a", "2")
        store.kv_set_many([("scheduler.tick.a", "10"), ("scheduler.tick.b", "20"), ("scheduler.tickle", "x")])
        assert store.kv_get("alert.incident.a") == "2"
        assert store.kv_prefixed("scheduler.tick.") == {"scheduler.tick.a": "10", "scheduler.tick.b": "20"}
        assert store.kv_prefixed("none.") == {}

    def test_outbox_rows_get_increasing_ids(self, store: HistoryStore) -> None:
        ids = [store.enqueue_outbox(kind=kind, event="failure", job="backup", run_id=None, target="http://127.0.0.1:9/",
                                    format="json", secret_ref=None, payload={"n": i}, now=T0 + i)
               for i, kind in enumerate(["alert", "ping", "mail"])]
        assert ids == sorted(set(ids)) and ids[0] > 0

    # ---- the unit of work --------------------------------------------------------------------

    def test_an_error_in_a_transaction_leaves_no_part_of_a_run_end(self, store: HistoryStore) -> None:
        run_id = start(store)
        with pytest.raises(Boom), store.transaction():
            finish(store, run_id, RunStatus.FAILED)
            store.kv_set("alert.incident.backup", "open")
            raise Boom
        assert got(store, run_id).status is RunStatus.RUNNING
        assert store.kv_get("alert.incident.backup") is None
        with store.transaction():
            finish(store, run_id, RunStatus.FAILED)
            store.kv_set("alert.incident.backup", "open")
        assert (got(store, run_id).status, store.kv_get("alert.incident.backup")) == (RunStatus.FAILED, "open")

    def test_a_nested_failure_undoes_only_the_inner_part(self, store: HistoryStore) -> None:
        run_id = start(store)
        with store.transaction():
            finish(store, run_id, RunStatus.FAILED)
            with pytest.raises(Boom), store.transaction():  # the alert decision, failing
                store.kv_set("alert.incident.backup", "open")
                raise Boom
        assert got(store, run_id).status is RunStatus.FAILED
        assert store.kv_get("alert.incident.backup") is None

    def test_after_commit_waits_for_the_commit_and_is_dropped_on_rollback(self, store: HistoryStore) -> None:
        calls: list[str] = []
        store.after_commit(lambda: calls.append("now"))
        assert calls == ["now"]
        with store.transaction():
            store.kv_set("k", "v")
            store.after_commit(lambda: calls.append("committed"))
            assert calls == ["now"]
        assert calls == ["now", "committed"]
        with pytest.raises(Boom), store.transaction():
            store.after_commit(lambda: calls.append("rolled back"))
            raise Boom
        store.kv_set("k", "w")
        assert calls == ["now", "committed"]

    # ---- the outbox --------------------------------------------------------------------------

    def test_an_outbox_row_reads_back_as_it_was_enqueued(self, store: HistoryStore, queue: OutboxQueue) -> None:
        run_id = start(store)
        row_id = store.enqueue_outbox(kind="alert", event="timeout", job="backup", run_id=run_id,
                                      target="env:HOOK", format="slack", secret_ref="env:SECRET",
                                      payload={"text": "caf\u00e9", "n": [1, 2]}, now=T0 + 3)
        row = queue.get(row_id)
        assert row is not None
        assert (row.kind, row.event, row.job, row.run_id, row.target, row.format, row.secret_ref) == (
            "alert", "timeout", "backup", run_id, "env:HOOK", "slack", "env:SECRET")
        assert (row.payload, row.status, row.attempts, row.created_at, row.next_attempt_at) == (
            {"text": "caf\u00e9", "n": [1, 2]}, "pending", 0, T0 + 3, T0 + 3)
        assert queue.get(row_id + 1000) is None

    def test_due_rows_come_oldest_first_and_a_claim_leases_them(self, store: HistoryStore, queue: OutboxQueue) -> None:
        a, b, c = (enqueue(store, at=T0 + i, target=f"http://127.0.0.1:9/{i}") for i in range(3))
        assert [r.id for r in queue.due(now=T0 + 1.5)] == [a, b]
        assert queue.due_targets(now=T0 + 5) == [(a, "http://127.0.0.1:9/0"), (b, "http://127.0.0.1:9/1"),
                                                 (c, "http://127.0.0.1:9/2")]
        assert queue.due(now=T0 + 5, limit=1)[0].id == a
        assert [r.id for r in queue.claim([a, b], now=T0 + 2, lease_s=30)] == [a, b]
        assert queue.claim([a, b], now=T0 + 3, lease_s=30) == []  # leased: another worker gets nothing
        assert [r.id for r in queue.due(now=T0 + 3)] == [c]
        assert [r.id for r in queue.claim([a, c], now=T0 + 32, lease_s=30)] == [a, c]  # a's lease ran out
        assert queue.claim([], now=T0 + 40, lease_s=30) == []

    def test_delivered_retry_and_failed_rows(self, store: HistoryStore, queue: OutboxQueue) -> None:
        a, b, c = (enqueue(store, at=T0 + i) for i in range(3))
        queue.mark_delivered(a, now=T0 + 10, http_status=200)
        queue.mark_retry(b, next_attempt_at=T0 + 100, error="HTTP 503", http_status=503)
        queue.mark_failed(c, error="HTTP 404", http_status=404)
        rows = {r.id: r for r in queue.list_rows(limit=None)}
        assert (rows[a].status, rows[a].attempts, rows[a].http_status, rows[a].last_error) == ("delivered", 1, 200, None)
        assert (rows[b].status, rows[b].attempts, rows[b].last_error, rows[b].next_attempt_at) == (
            "pending", 1, "HTTP 503", T0 + 100)
        assert (rows[c].status, rows[c].attempts, rows[c].last_error) == ("failed", 1, "HTTP 404")
        assert queue.due(now=T0 + 99) == [] and [r.id for r in queue.due(now=T0 + 100)] == [b]
        assert queue.next_due_at() == T0 + 100
        queue.mark_failed(a, error="late", http_status=None)  # a finished row stays as it ended
        queue.mark_retry(c, next_attempt_at=T0, error="late", http_status=None)
        assert (queue.get(a).status, queue.get(c).status) == ("delivered", "failed")  # type: ignore[union-attr]
        queue.mark_failed(b, error="test alert", http_status=None, count_attempt=False)
        assert (queue.get(b).status, queue.get(b).attempts) == ("failed", 1)  # type: ignore[union-attr]
        assert queue.next_due_at() is None
        assert queue.counts() == {"delivered": 1, "failed": 2}

    def test_list_rows_gives_the_newest_oldest_first_by_status(self, store: HistoryStore, queue: OutboxQueue) -> None:
        ids = [enqueue(store, at=T0 + i) for i in range(4)]
        queue.mark_delivered(ids[1], now=T0 + 9, http_status=204)
        assert [r.id for r in queue.list_rows(limit=2)] == ids[2:]
        assert [r.id for r in queue.list_rows(status="pending", limit=None)] == [ids[0], ids[2], ids[3]]
        assert [r.id for r in queue.list_rows(status="delivered")] == [ids[1]]

    def test_prune_removes_old_finished_rows_and_never_a_pending_one(self, store: HistoryStore,
                                                                       queue: OutboxQueue) -> None:
        old_pending, old_done, ping, new_done = (enqueue(store, at=T0, kind=k) for k in ("alert", "alert", "ping", "alert"))
        recent_ping = enqueue(store, at=T0 + 900, kind="ping")
        for row_id in (old_done, ping, new_done, recent_ping):
            queue.mark_delivered(row_id, now=T0 + 1, http_status=200)
        queue.mark_retry(new_done, next_attempt_at=T0, error="", http_status=None)  # delivered: unchanged
        assert queue.prune(now=T0 + 1000, keep_s=10_000, keep_pings_s=500) == 1  # the old ping
        assert queue.prune(now=T0 + 20_000, keep_s=10_000, keep_pings_s=500) == 3
        assert [r.id for r in queue.list_rows(limit=None)] == [old_pending]

    def test_an_alert_row_is_undone_with_the_run_end_it_was_decided_with(self, store: HistoryStore,
                                                                          queue: OutboxQueue) -> None:
        run_id = start(store)
        with pytest.raises(Boom), store.transaction():
            finish(store, run_id, RunStatus.FAILED)
            enqueue(store, at=T0 + 1, run_id=run_id)
            raise Boom
        assert queue.list_rows(limit=None) == []
        assert got(store, run_id).status is RunStatus.RUNNING
        with store.transaction():
            finish(store, run_id, RunStatus.FAILED)
            row_id = enqueue(store, at=T0 + 1, run_id=run_id)
        assert [r.id for r in queue.list_rows(limit=None)] == [row_id]

    def test_a_destination_backoff_holds_its_other_rows_and_releases_give_leases_back(
            self, store: HistoryStore, queue: OutboxQueue) -> None:
        a, b = (enqueue(store, at=T0 + i, target="http://127.0.0.1:9/x") for i in range(2))
        late = enqueue(store, at=T0 + 500, target="http://127.0.0.1:9/x")
        other = enqueue(store, at=T0 + 2, target="http://127.0.0.1:9/y")
        queue.hold_target("http://127.0.0.1:9/x", until=T0 + 100, except_id=a)
        assert [r.next_attempt_at for r in map(queue.get, (a, b, late, other)) if r] == [T0, T0 + 100, T0 + 500, T0 + 2]
        assert queue.next_due_at() == T0
        assert queue.next_due_at(exclude_targets=["http://127.0.0.1:9/x"]) == T0 + 2
        assert [r.id for r in queue.claim([a, other], now=T0 + 3, lease_s=60)] == [a, other]
        queue.release([a], now=T0 + 4)
        assert [r.id for r in queue.due(now=T0 + 4)] == [a]  # other's lease still holds

    def test_a_failing_batch_leaves_none_of_its_outcomes(self, store: HistoryStore, queue: OutboxQueue) -> None:
        a, b = enqueue(store, at=T0), enqueue(store, at=T0 + 1)
        with pytest.raises(Boom), queue.batch():
            queue.mark_delivered(a, now=T0 + 5, http_status=200)
            raise Boom
        with queue.batch():
            queue.mark_delivered(b, now=T0 + 5, http_status=200)
        assert [(r.id, r.status) for r in queue.list_rows(limit=None)] == [(a, "pending"), (b, "delivered")]

    # ---- alert-on=slow (engine/slowness.py) ----------------------------------------------------

    def test_set_slow_at_marks_a_running_row_once_and_it_reads_back(self, store: HistoryStore) -> None:
        run_id, other = start(store, "etl"), start(store, "etl")
        store.set_slow_at(run_id, T0 + 30)
        store.set_slow_at(run_id, T0 + 90)  # a second mark keeps the first: when it first ran past
        marked = got(store, run_id)
        assert marked.slow_at is not None and marked.slow_at.timestamp() == T0 + 30
        assert marked.status is RunStatus.RUNNING and got(store, other).slow_at is None
        ended = store.finish_run(run_id, status=RunStatus.SUCCESS, ended_at=T0 + 100, exit_code=0, reason=None,
                                 final=True)
        assert ended.slow_at is not None and ended.slow_at.timestamp() == T0 + 30

    # ---- a run's parameters and outputs (engine/runio.py) -------------------------------------

    def test_params_and_outputs_are_kept_in_order_and_read_back_by_every_reader(self, store: HistoryStore) -> None:
        run_id = start(store)
        store.set_params(run_id, [("day", "2026-12-01"), ("Mode", "full; $(rm -rf /)")])
        with store.transaction():  # the scheduler writes outputs in the run end's transaction
            store.set_outputs(run_id, [("score", "0.93"), ("notes", "line one\nline two é")])
            ended = finish(store, run_id)
        assert ended.params == (("day", "2026-12-01"), ("Mode", "full; $(rm -rf /)"))
        assert ended.outputs == (("score", "0.93"), ("notes", "line one\nline two é"))
        assert got(store, run_id) == ended == store.last_final_run("backup")
        assert store.query(jobs=["backup"])[-1].outputs == ended.outputs
        other = start(store, at=T0 + 10)
        assert (got(store, other).params, got(store, other).outputs) == ((), ())

    # ---- pause (engine/pausing.py: kv entries, so every backend keeps them) --------------------

    def test_pauses_are_kept_and_lifted_through_kv(self, store: HistoryStore) -> None:
        from cronplus.engine.pausing import Pauses

        pauses = Pauses.read(store)
        store.kv_set_many(pauses.pause(["backup", "report"], "alice", T0))
        store.kv_set_many(pauses.pause(None, "ops", T0 + 5))
        store.kv_set_many(pauses.pause(["backup"], "bob", T0 + 9))  # already paused: the first pause stands
        again = Pauses.read(store)
        backup = again.of("backup")
        assert backup is not None and (backup.since, backup.by, backup.everything) == (T0, "alice", False)
        other = again.of("other")
        assert other is not None and (other.since, other.by, other.everything) == (T0 + 5, "ops", True)
        store.kv_set_many(again.resume(None))
        store.kv_set_many(again.resume(["report"]))
        after = Pauses.read(store)
        assert (after.of("other"), after.of("report")) == (None, None) and after.of("backup") is not None

    # ---- fencing (store/leases.py: a host whose run was taken over must not record its end) ----

    def test_a_finish_fenced_on_another_owner_writes_nothing_and_says_the_run_was_taken(
            self, store: HistoryStore) -> None:
        from cronplus.store.api import RunTaken

        run_id = start(store, owner="host-a:1:1")
        with pytest.raises(RunTaken), store.transaction():
            store.set_outputs(run_id, [("k", "v")])  # a taken run's end: none of it is written
            store.finish_run(run_id, status=RunStatus.SUCCESS, ended_at=T0 + 5, exit_code=0, reason=None,
                             final=True, owner="host-b:2:2")
        assert (got(store, run_id).status, got(store, run_id).outputs) == (RunStatus.RUNNING, ())
        ended = store.finish_run(run_id, status=RunStatus.INTERRUPTED, ended_at=T0 + 6, exit_code=None,
                                 reason="host host-a lost its lease", final=True, owner="host-a:1:1")
        assert ended.status is RunStatus.INTERRUPTED and ended == got(store, run_id)
        with pytest.raises(RunTaken):  # the row is owned by no one once it ended: a second end is fenced
            store.finish_run(run_id, status=RunStatus.SUCCESS, ended_at=T0 + 7, exit_code=0, reason=None,
                             final=True, owner="host-a:1:1")
        assert got(store, run_id) == ended

    # ---- output readable from any host (issue 14 item 4; engine/outputexcerpt.py) ---------------

    def test_an_output_excerpt_is_kept_with_the_end_and_reads_back_with_the_log_size(self, store: HistoryStore,
                                                                                     tmp_path: Path) -> None:
        log = tmp_path / "run.log"
        log.write_bytes(b"x" * 100)
        run_id = start(store, log_path=str(log))
        other = start(store, "other")
        assert store.output_excerpt(run_id) is None  # none kept until the end writes one
        with store.transaction():
            store.set_output_excerpt(run_id, "head ünïcode\n", "tail\n")
            finish(store, run_id)
        excerpt = store.output_excerpt(run_id)
        assert excerpt is not None
        assert (excerpt.head, excerpt.tail, excerpt.log_bytes) == ("head ünïcode\n", "tail\n", 100)
        assert store.output_excerpt(other) is None and store.output_excerpt(other + 1000) is None
        assert isinstance(store.shared, bool)
    # ---- queue= runs: the row fences the supervisor and the workers (store/remoteruns.py) ----

    def test_a_queued_attempt_is_claimed_once_and_a_redelivery_finds_it_taken(self, store: HistoryStore) -> None:
        run_id = start(store, log_path="/logs/backup/1.log")
        store.send_to_queue(run_id, "gpu")
        (state,) = store.remote_states([run_id])
        assert (state.status, state.host, state.pid, state.report) == ("running", None, None, None)
        assert got(store, run_id).queue == "gpu"
        assert store.claim_attempt(run_id, host="worker-1", started_at=T0 + 3)
        assert not store.claim_attempt(run_id, host="worker-2", started_at=T0 + 4)  # the redelivered message
        record = got(store, run_id)
        assert (record.host, record.started_at.timestamp()) == ("worker-1", T0 + 3)

    def test_only_the_claiming_worker_reports_and_a_cancel_request_never_hides_a_report(
            self, store: HistoryStore) -> None:
        run_id = start(store)
        store.send_to_queue(run_id, "gpu")
        assert store.claim_attempt(run_id, host="worker-1", started_at=T0)
        store.request_cancel(run_id)
        assert store.remote_states([run_id])[0].report == '{"cancel": true}'
        assert not store.report_attempt(run_id, host="worker-2", result="{}", head="x", tail=None, log_path=None)
        assert store.report_attempt(run_id, host="worker-1", result='{"exit_code": 0}', head="hello\n", tail="bye\n",
                                    log_path="/w/logs/backup/1.log")
        store.request_cancel(run_id)  # too late: the report stays
        assert store.remote_states([run_id])[0].report == '{"exit_code": 0}'
        assert store.remote_output(run_id) == ("hello\n", "bye\n")
        assert got(store, run_id).log_path == "/w/logs/backup/1.log"
        finish(store, run_id)
        assert not store.claim_attempt(run_id, host="worker-3", started_at=T0)  # ended: nobody takes it

    def test_a_supervisor_adopts_the_remote_runs_left_running_and_recovery_leaves_them(
            self, store: HistoryStore) -> None:
        remote, local = start(store, owner="old"), start(store, job="local", owner="old")
        store.send_to_queue(remote, "gpu")
        assert store.adopt_remote(live_owner="new") == [remote]
        assert [r.run_id for r in store.stale_running(live_owner="new")] == [local]

    def test_the_claiming_workers_heartbeat_is_polled_with_its_run(self, store: HistoryStore) -> None:
        run_id = start(store)
        store.send_to_queue(run_id, "gpu")
        store.claim_attempt(run_id, host="worker-1", started_at=T0)
        assert store.remote_states([run_id])[0].heartbeat_at is None
        store.worker_heartbeat(owner="worker-1:7:1", host="worker-1", pid=7, started_at=T0, now=T0 + 1, lease_s=30)
        store.worker_heartbeat(owner="worker-1:7:1", host="worker-1", pid=7, started_at=T0, now=T0 + 6, lease_s=30)
        state = store.remote_states([run_id])[0]
        assert (state.heartbeat_at, state.lease_s) == (T0 + 6, 30)
        store.worker_heartbeat(owner="worker-1:8:2", host="worker-1", pid=8, started_at=T0, now=T0 + 2, lease_s=30)
        assert store.worker_pids("worker-1", since=T0 + 5) == [("worker-1:7:1", 7)]
        assert store.worker_pids("worker-1", since=T0) == [("worker-1:7:1", 7), ("worker-1:8:2", 8)]
        assert store.worker_pids("worker-2", since=T0) == []
    # ---- claims (engine/claims.py: each tick once across the supervisors sharing a store) ------

    def test_a_start_whose_claim_a_row_holds_is_not_inserted_and_says_so(self, store: HistoryStore) -> None:
        def tick(job: str, claim: str | None, attempt: int = 1, at: float = T0) -> RunStart:
            return RunStart(job=job, attempt=attempt, trigger=Trigger.SCHEDULE, scheduled_at=at, tz=None,
                            started_at=at, log_path=lambda run_id: f"/logs/{job}/{run_id}.log", owner="sup-1",
                            claim=claim)

        first = store.start_runs([tick("backup", ""), tick("report", "")])
        assert None not in first
        again = store.start_runs([tick("report", ""), tick("backup", "", attempt=2), tick("backup", ""),
                                  tick("backup", None), tick("backup", "host-b"), tick("backup", "", at=T0 + 60)])
        assert [run_id is None for run_id in again] == [True, False, True, False, False, False]
        ids = [run_id for run_id in first + again if run_id is not None]
        assert ids == sorted(ids)  # in the order given, increasing
        assert [r.job for r in store.running()] == ["backup", "report", "backup", "backup", "backup", "backup"]
        assert got(store, again[1]).log_path == f"/logs/backup/{again[1]}.log"  # a winner's row is whole
        assert store.start_runs([tick("backup", "host-b")]) == [None]  # a host's own claim: once for that host
        assert store.start_runs([tick("backup", None)])[0] is not None  # a manual run claims nothing

    def test_a_not_run_row_whose_claim_a_row_holds_is_not_written(self, store: HistoryStore) -> None:
        def not_run(claim: str | None, status: RunStatus = RunStatus.SKIPPED) -> RunRecord | None:
            return store.record_not_run(job="backup", status=status, trigger=Trigger.SCHEDULE, scheduled_at=T0,
                                        tz=None, at=T0 + 1, reason="previous run 1 still running", claim=claim)

        store.start_runs([RunStart(job="backup", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None,
                                   started_at=T0, log_path=None, owner="sup-1", claim="")])
        assert not_run("") is None
        missed = not_run("/missed", RunStatus.MISSED)  # another claim of the same tick: written, once
        assert missed is not None and missed.status is RunStatus.MISSED
        assert not_run("/missed", RunStatus.MISSED) is None
        assert not_run(None) is not None  # claims nothing: always written
        assert [r.status for r in store.latest_runs("backup")] == [RunStatus.RUNNING, RunStatus.MISSED,
                                                                   RunStatus.SKIPPED]

    def test_unfinished_lists_running_rows_and_pending_retries_of_every_host(self, store: HistoryStore) -> None:
        running = start(store, "backup", at=T0)
        retried = start(store, "report", at=T0)
        finish(store, retried, RunStatus.FAILED, final=False)  # its retry is pending
        done = start(store, "other", at=T0)
        finish(store, done, RunStatus.FAILED, final=False)
        followed = start(store, "other", at=T0 + 5, scheduled_at=T0, attempt=2)  # the retry's row exists
        old = start(store, "old", at=T0 - 10_000)
        finish(store, old, RunStatus.FAILED, at=T0 - 9_000, final=False)  # pending since before `since`
        assert [r.run_id for r in store.unfinished(since=T0 - 100)] == [running, retried, followed]
        finish(store, followed)
        assert [r.run_id for r in store.unfinished(since=T0 - 100_000)] == [running, retried, old]
