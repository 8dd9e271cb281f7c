"""The store's interface: what the rest of cronplus uses of it, as Protocols, so that a second
backend (PostgreSQL shared by several supervisors) can stand where SQLite stands today.

These describe the SQLite classes as they are (history.History, readhistory.ReadHistory,
storeguard.Store); they add no operation. mypy checks that those classes satisfy them
(`_satisfies` at the end of history.py and storeguard.py), and tests/store_contract.py is the
behaviour any backend must show (run against SQLite by tests/test_store_contract_sqlite.py).

- `RunReader`: the queries (log, jobs, output, the scheduler's upstream checks).
- `KvReader` / `KeyValue`: the small state that outlives a supervisor (last ticks, the boot id,
  incidents), one string per key.
- `UnitOfWork`: `transaction()` makes several writes one (a run's end and its alert decision:
  both or neither, even across a kill -9); nested, an inner failure undoes only the inner part;
  `after_commit(callback)` runs once what was written so far is committed.
- `RunWriter`: the supervisor's writes of runs (one writer, one thread), each its own
  transaction or part of the caller's `transaction()`.
- `HistoryStore`: all of the above and retention (`prune`), what `cronplus run` hands the
  engine; opened by store/open.py (`open_writer`), as are readers and the outbox queue.
- `OutboxWriter`: `enqueue_outbox`, one pending alert / ping / mail row (outbox.enqueue), in the
  caller's transaction; `OutboxQueue`: the delivery side (due, claim, mark_*, the
  destination's backoff, `batch()` for one transaction; outbox.Outbox on a connection of its
  own), what alerts/delivery.py uses.
- `AlertStore`: what alerting needs: a unit of work, kv, the outbox writer.
- `LastFinal`: the one read the scheduler's dependency check makes (Store serves it with the
  held writes included).

May import: foundation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cronplus.model import RunRecord
from cronplus.status import DeliveryStatus, RunStatus, Trigger
from cronplus.store.outbox import OutboxRow
from cronplus.store.remoteruns import RemoteState


@dataclass(frozen=True, kw_only=True, slots=True)
class RunStart:
    """A `running` row to insert (RunWriter.start_runs); see History.start_run for the fields."""

    job: str
    attempt: int
    trigger: Trigger
    scheduled_at: float | None
    tz: str | None
    started_at: float
    log_path: str | Callable[[int], str] | None
    owner: str
    run_id: int | None = None  # None: the store assigns it (storeguard gives held rows theirs)
    # What the row claims (runs.claim, schema 4): None nothing (manual runs, backfill); '' the
    # cluster's one run of this (job, scheduled_at, attempt); a host id that host's own (@reboot,
    # run-on=all). A start whose claim another row holds is not inserted (start_runs: None).
    claim: str | None = None


class RunTaken(Exception):
    """finish_run(..., owner=X) found the row not X's (fencing): another host took the run over
    when X's lease ran out (store/leases.py) and recorded its end; this end is not recorded."""


@dataclass(frozen=True, slots=True)
class OutputExcerpt:
    """The capped head and tail of a run's output its row keeps (RunReader.output_excerpt;
    engine/outputexcerpt.py), and the log's size when the run ended (None: not known)."""

    head: str
    tail: str
    log_bytes: int | None


class KvReader(Protocol):
    def kv_get(self, key: str) -> str | None: ...
    def kv_prefixed(self, prefix: str) -> dict[str, str]: ...


class KeyValue(KvReader, Protocol):
    def kv_set(self, key: str, value: str) -> None: ...
    def kv_set_many(self, items: Sequence[tuple[str, str]]) -> None: ...


class LastFinal(Protocol):
    def last_final_run(self, job: str, *, at_or_before: float | None = None) -> RunRecord | None: ...


class RunReader(LastFinal, KvReader, Protocol):
    """Runs newest last unless said otherwise; run_ids increase and are never reused."""

    def get_run(self, run_id: int) -> RunRecord | None: ...
    def latest_runs(self, job: str, n: int = 20) -> list[RunRecord]: ...
    def running(self) -> list[RunRecord]: ...
    def job_names(self) -> list[str]: ...
    def query(self, *, jobs: Sequence[str] = (), statuses: Sequence[str] = (), since: float | None = None,
              until: float | None = None, limit: int | None = None,
              after_run_id: int | None = None) -> list[RunRecord]: ...
    def iter_query(self, *, jobs: Sequence[str] = (), statuses: Sequence[str] = (), since: float | None = None,
                   until: float | None = None, limit: int | None = None, after_run_id: int | None = None,
                   newest_first: bool = False) -> Iterator[RunRecord]: ...
    def last_run_id(self) -> int: ...
    def runs_by_id(self, run_ids: Sequence[int]) -> list[RunRecord]: ...
    def close(self) -> None: ...
    @property
    def shared(self) -> bool: ...  # several hosts write it (PostgreSQL): a run's log may be on another host
    def output_excerpt(self, run_id: int) -> OutputExcerpt | None: ...  # kept in the row (a shared store), or None
    # Runs not finished, of any host (a cluster's overlap= and after=, engine/claims.py): `running`
    # rows, and ended attempts not final (a retry pending) ended at or after `since` whose retry
    # has no row yet.
    def unfinished(self, *, since: float) -> list[RunRecord]: ...


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractContextManager[None]: ...  # yields nothing: no connection leaves the store
    def after_commit(self, callback: Callable[[], None]) -> None: ...


class RunWriter(UnitOfWork, Protocol):
    @property
    def host(self) -> str: ...  # stamped on every row this writer inserts
    # run_ids in the order given; None for a start whose claim another row already holds (it lost)
    def start_runs(self, starts: Sequence[RunStart], *, kv: Sequence[tuple[str, str]] = ()) -> list[int | None]: ...
    def start_run(self, *, job: str, attempt: int, trigger: Trigger, scheduled_at: float | None, tz: str | None,
                  started_at: float, log_path: str | Callable[[int], str] | None, owner: str) -> int: ...
    def next_run_id(self) -> int: ...
    def set_log_path(self, run_id: int, log_path: str) -> None: ...
    def set_pid(self, run_id: int, pid: int) -> None: ...
    def set_pids(self, pids: Sequence[tuple[int, int]]) -> None: ...
    def set_usage(self, run_id: int, *, peak_memory_bytes: int | None, cpu_s: float | None) -> None: ...
    def set_queued(self, run_id: int, queued_s: float) -> None: ...  # seconds it waited for a pool slot
    def set_sensor_s(self, run_id: int, seconds: float) -> None: ...  # its sensor's wait (wait-for=)
    def finish_run(self, run_id: int, *, status: RunStatus, ended_at: float, exit_code: int | None,
                   reason: str | None, final: bool, signal: int | None = None,
                   owner: str | None = None) -> RunRecord: ...  # owner: fenced (RunTaken) unless the row is its
    # None: `claim` was given and another row holds it (the tick was decided elsewhere)
    def record_not_run(self, *, job: str, status: RunStatus, trigger: Trigger, scheduled_at: float | None,
                       tz: str | None, at: float, reason: str | None, run_id: int | None = None,
                       claim: str | None = None) -> RunRecord | None: ...
    # The start-up sweep's: on a shared store only this writer's host's rows (another host's are
    # its own, or the lease take-over's); on SQLite every row (one host writes it, whatever its name).
    def stale_running(self, *, live_owner: str) -> list[RunRecord]: ...
    def mark_interrupted(self, *, live_owner: str, now: float, notes: dict[int, str] | None = None,
                         on_final: Callable[[RunRecord], None] | None = None) -> list[RunRecord]: ...
    def mark_final(self, run_id: int, reason: str) -> RunRecord: ...
    def mark_abandoned_retries(self, *, reason: str,
                               on_final: Callable[[RunRecord], None] | None = None) -> list[RunRecord]: ...
    def set_slow_at(self, run_id: int, at: float) -> None: ...  # alert-on=slow: when it ran past its threshold
    def set_params(self, run_id: int, params: Sequence[tuple[str, str]]) -> None: ...  # trigger --param
    def set_outputs(self, run_id: int, outputs: Sequence[tuple[str, str]]) -> None: ...  # $CRONPLUS_OUTPUT's
    def set_output_excerpt(self, run_id: int, head: str, tail: str) -> None: ...  # outputexcerpt.py, before finish_run
    # queue= runs: the row fences supervisor and workers (store/remoteruns.py)
    def send_to_queue(self, run_id: int, queue: str) -> None: ...
    def claim_attempt(self, run_id: int, *, host: str, started_at: float) -> bool: ...
    def report_attempt(self, run_id: int, *, host: str, result: str, head: str | None, tail: str | None,
                       log_path: str | None) -> bool: ...
    def request_cancel(self, run_id: int) -> None: ...
    def remote_states(self, run_ids: Sequence[int]) -> list[RemoteState]: ...
    def remote_output(self, run_id: int) -> tuple[str | None, str | None]: ...
    def adopt_remote(self, *, live_owner: str) -> list[int]: ...
    def worker_heartbeat(self, *, owner: str, host: str, pid: int, started_at: float, now: float,
                         lease_s: float) -> None: ...
    def worker_pids(self, host: str, *, since: float) -> list[tuple[str, int | None]]: ...


class OutboxWriter(Protocol):
    def enqueue_outbox(self, *, kind: str, event: str, job: str | None, run_id: int | None, target: str,
                       format: str, secret_ref: str | None, payload: dict[str, Any], now: float) -> int: ...


class OutboxQueue(Protocol):
    """The delivery side of the outbox (a worker's own connection): due rows oldest first, a
    lease by `claim` (at-least-once: a row whose sender died is due again when it runs out),
    then delivered / retry (pending, due later) / failed; rows are never deleted but by prune."""

    def due(self, *, now: float, limit: int = 200) -> list[OutboxRow]: ...
    def due_targets(self, *, now: float, limit: int = 500) -> list[tuple[int, str]]: ...
    def claim(self, ids: Sequence[int], *, now: float, lease_s: float) -> list[OutboxRow]: ...
    def mark_delivered(self, row_id: int, *, now: float, http_status: int | None) -> None: ...
    def mark_retry(self, row_id: int, *, next_attempt_at: float, error: str, http_status: int | None) -> None: ...
    def mark_failed(self, row_id: int, *, error: str, http_status: int | None, count_attempt: bool = True) -> None: ...
    def get(self, row_id: int) -> OutboxRow | None: ...
    def list_rows(self, *, status: DeliveryStatus | str | None = None, limit: int | None = 50) -> list[OutboxRow]: ...
    def next_due_at(self, *, exclude_targets: Sequence[str] = ()) -> float | None: ...
    def hold_target(self, target: str, *, until: float, except_id: int) -> None: ...
    def release(self, ids: Sequence[int], *, now: float) -> None: ...
    def batch(self) -> AbstractContextManager[None]: ...  # one transaction for several writes
    def close(self) -> None: ...
    def prune(self, *, now: float, keep_s: float, keep_pings_s: float) -> int: ...
    def counts(self) -> dict[str, int]: ...


class HistoryStore(RunWriter, RunReader, KeyValue, OutboxWriter, Protocol):
    """The supervisor's store: writes, reads and kv on one backend; `prune` applies retention
    (store/retention.py's rules: None disables a limit; `max_rows` bounds one call's work,
    -1 the default bound)."""

    def prune(self, *, now: float, log_dir: Path, max_age_s: float | None = ..., max_runs_per_job: int | None = ...,
              max_log_bytes: int | None = ..., max_rows: int | None = ...) -> dict[str, int]: ...


class AlertStore(UnitOfWork, KvReader, OutboxWriter, Protocol):
    def kv_set(self, key: str, value: str) -> None: ...
