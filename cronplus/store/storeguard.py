"""The scheduler's writes to history, kept when the disk refuses them (full, quota, read-only,
I/O error) and written, in order, once it takes them again: a full disk never stops scheduling
and never loses a run's record.

Contract:
- `Store(history)` fronts the supervisor's History writer for the scheduler. `write(op, ...)`
  runs `op(ids)` in one transaction (History.transaction) and returns its result; `ids` are
  None (SQLite assigns run_ids) unless the write is held (below).
- When the transaction fails for a reason of the storage (`storage_problem`: ENOSPC/EDQUOT,
  SQLite's SQLITE_FULL "database or disk is full", SQLITE_READONLY, SQLITE_IOERR) the write is
  held in memory and `provisional(ids)` gives the caller what the write would have returned. Held
  writes get their run_ids here, after the highest the table has handed out, so a run keeps its
  id (its log file and CRONPLUS_RUN_ID are named after it) when its row is written. From then on
  every write queues behind the held ones, so rows are written in the order things happened (a
  run's start row, its pid, its end).
- Held writes are retried on a timer (RETRY_MIN_S doubling to RETRY_MAX_S) and by `flush()`;
  each is its own transaction *with the alert decision made in it*, so a held end still gets
  its alert (dated when it is written). A held write that fails for another reason (a bug) is
  logged with its traceback and dropped, so that one bad write cannot hold back the others.
- The log says it once: "no space left on device: <path>" (or "cannot write history: <path>:
  <why>") when writes start failing, and one line when they are written again. `problem` is the
  text for STATUS= while writes are held; `on_change` is called when it changes.
- `write_all(ops)`: several writes in one transaction (a loop pass's run ends: engine/ends.py);
  None when any fails or writes are held, and the caller then writes each with `write`.
- The reads the scheduler makes (`last_final_run`, `kv_get`) see the held writes.
- `close()` flushes; what still cannot be written is logged, one ERROR line per held write.

A shared store (`history.shared`: PostgreSQL, several hosts; faults.DatabaseUnavailable is its
"storage problem") differs where another host could be hurt (issue 14 item 3; engine/outage.py):
- No provisional run_id: another host may take the next one. A held write that inserts a row
  gets its id from the database when it is written (the caller's answer meanwhile: run_id 0);
  a run's pid, end and alert decision are held by the row's own id.
- `start_runs` is never held: a run's row is its claim, and a run must not start without it.
  While the database is away (`away`) it raises StoreAway at once, without touching the
  connection; the caller does not start those runs.
- A lost connection is tried once more at once (the next call reconnects: a restart that is
  already over costs nothing). Then `away`: writes are held, reads (`kv_get`, `last_final_run`)
  answer from what is held without a round trip, and the timer (1 s doubling to 30 s) writes the
  held ones, or with none held probes with one read. `problem` starts "database unavailable: ";
  one ERROR line when it goes, one WARNING "history database ... is back: N held history
  write(s) written" when it is back, then `on_back()` (the scheduler wakes: its missed ticks).
- `close()` with run ends still held keeps them on disk (`spool`: heldwrites.py), for the next
  start to write; other held writes (pids, slow marks) are logged as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from cronplus.errors import CronplusError
from cronplus.model import RunRecord
from cronplus.status import RunStatus, Trigger
from cronplus.store.api import HistoryStore, KvReader, LastFinal, RunStart
from cronplus.store.faults import DatabaseUnavailable, storage_problem

log = logging.getLogger("cronplus")

RETRY_MIN_S = 1.0
RETRY_MAX_S = 30.0  # a freed disk is noticed within half a minute

_T = TypeVar("_T")
Ids = list[int | None]

def draft_record(*, run_id: int, job: str, attempt: int, status: RunStatus, trigger: Trigger,
                 scheduled_at: datetime | None, started_at: datetime | None, ended_at: datetime | None,
                 exit_code: int | None = None, log_path: str | None = None, pid: int | None = None,
                 reason: str | None = None, signal: int | None = None, host: str | None = None) -> RunRecord:
    """What a held write's row will read once written (the caller's answer meanwhile)."""
    return RunRecord(run_id=run_id, job=job, attempt=attempt, status=status, trigger=trigger,
                     scheduled_at=scheduled_at, started_at=started_at, ended_at=ended_at, exit_code=exit_code,
                     log_path=log_path, pid=pid, reason=reason, signal=signal, host=host)


@dataclass(slots=True)
class _Held:
    op: Callable[[], Any]
    what: str | Callable[[], str]  # for the log, should it never be written
    keep: dict[str, Any] | None = None  # a run's end as heldwrites.py keeps it on disk (a shared store)


class StoreAway(CronplusError):
    """A shared store's database is away: a run's row (its claim) cannot be inserted, so the run
    must not start (Store.start_runs on a shared store; the launcher's caller decides what then)."""


class Store:
    def __init__(self, history: HistoryStore) -> None:
        self.history = history
        self.shared = history.shared  # several hosts: no run_id of ours, no start without its row
        self.path = str(getattr(history, "db_path", None) or getattr(getattr(history, "db", None), "shown", "history"))
        self.held: deque[_Held] = deque()
        self.problem: str | None = None
        self.on_change: Callable[[], None] | None = None
        self.on_back: Callable[[], None] | None = None  # a shared store's database is back (the scheduler wakes)
        self.spool: Path | None = None  # where close() keeps the held run ends of a shared store (heldwrites.py)
        self._next_id: int | None = None
        self._finals: dict[str, list[RunRecord]] = {}  # held final rows, for last_final_run
        self._kv: dict[str, str] = {}  # held kv values, for kv_get
        self._failures = 0
        self._timer: asyncio.TimerHandle | None = None

    # ---- writing ---------------------------------------------------------------------------

    def write(self, op: Callable[[Ids], _T], provisional: Callable[[list[int]], _T], *, ids: int = 0,
              final: bool = False, what: str | Callable[[], str], own_transaction: bool = False,
              keep: dict[str, Any] | None = None) -> _T:
        """`op(ids)` in one transaction; held (see the module docstring) when the storage refuses.
        `ids`: how many new run_ids `op` inserts; `final`: its result is a run's final record;
        `what` (or a function giving it: not on the start path) names the write in the log;
        `own_transaction`: `op` is one History call that is a transaction by itself (one nested
        inside ours would be a SAVEPOINT, whose statement journal made a tick's inserts 4x slower);
        `keep`: a run's end as heldwrites.py writes it, kept on disk by close() (a shared store)."""
        if not self.held and not self.away:
            try:
                if self.shared:
                    return self._now(lambda: op([None] * ids), own_transaction)
                if own_transaction:
                    return op([None] * ids)
                with self.history.transaction():
                    return op([None] * ids)
            except Exception as exc:
                problem = storage_problem(exc, self.path)
                if problem is None:
                    raise
                self._degrade(problem)
        if self.shared:  # the database hands out run_ids (another host's may be next): 0 until written
            result = provisional([0] * ids)
            self.held.append(_Held(lambda: op([None] * ids), what, keep))
        else:
            new = [self._allocate() for _ in range(ids)]
            result = provisional(new)
            self.held.append(_Held(lambda: op(list(new)), what))
        if final and isinstance(result, RunRecord):
            self._finals.setdefault(result.job, []).append(result)
        return result

    @property
    def away(self) -> bool:
        """A shared store's database is away (the scheduler starts no run until it is back)."""
        return self.shared and self.problem is not None

    def _now(self, op: Callable[[], _T], own_transaction: bool) -> _T:
        """`op` in a transaction now; a shared store whose connection was lost (a server restart
        that is over by now) is tried once more at once: the next call reconnects."""
        for again in (self.shared, False):
            try:
                if own_transaction:
                    return op()
                with self.history.transaction():
                    return op()
            except DatabaseUnavailable:
                if not again:
                    raise
        raise AssertionError("unreachable")

    def write_all(self, ops: Sequence[Callable[[Ids], _T]]) -> list[_T] | None:
        """`ops` (writes that insert no row) in one transaction: the run ends of one loop pass get
        one commit between them (engine/ends.py). None when writes are held or any op fails:
        nothing of them is written (the transaction is rolled back) and the caller writes each
        with `write`, where a failure is that write's own (held, or raised to its run)."""
        if self.held or self.away:
            return None
        try:
            with self.history.transaction():
                return [op([]) for op in ops]
        except Exception:  # noqa: BLE001 - written again one by one, where the failure is that write's
            return None

    def start_runs(self, starts: Sequence[RunStart], *, kv: Sequence[tuple[str, str]] = ()) -> list[int | None]:
        """History.start_runs through `write`: the rows of a tick (and `kv`), in one transaction;
        None for a start whose claim another row holds (engine/claims.py). A shared store never
        holds them: while its database is away this raises StoreAway (the row is the run's
        claim: a run without one must not start; another host may run it)."""
        if self.shared:
            if self.held or self.away:
                raise StoreAway(self.problem or "history writes are held")
            try:
                return self._now(lambda: self.history.start_runs(starts, kv=kv), True)
            except Exception as exc:
                problem = storage_problem(exc, self.path)
                if problem is None:
                    raise
                self._degrade(problem)
                raise StoreAway(self.problem or problem) from None
        def op(ids: Ids) -> list[int | None]:
            if ids and ids[0] is None:  # SQLite assigns them (dataclasses.replace: ~20 us a row)
                return self.history.start_runs(starts, kv=kv)
            return self.history.start_runs([replace(s, run_id=i) for s, i in zip(starts, ids, strict=True)], kv=kv)

        def what() -> str:
            return f"start of {len(starts)} run(s) of {', '.join(sorted({s.job for s in starts}))}"

        def provisional(ids: list[int]) -> list[int | None]:
            return list(ids)

        return self.write(op, provisional, ids=len(starts), what=what, own_transaction=True)

    def kv_set(self, key: str, value: str) -> None:
        def op(_: Ids) -> None:
            self.history.kv_set(key, value)

        self._kv[key] = value
        self.write(op, lambda _: None, what=f"state {key}", own_transaction=True)
        if not self.held:
            self._kv.pop(key, None)

    # ---- reading (the held writes included) --------------------------------------------------

    def kv_get(self, key: str) -> str | None:
        return self._kv[key] if key in self._kv else self._read(lambda: self.history.kv_get(key), None)

    def kv_prefixed(self, prefix: str) -> dict[str, str]:
        none: dict[str, str] = {}
        stored = self._read(lambda: self.history.kv_prefixed(prefix), none)
        return {**stored, **{k: v for k, v in self._kv.items() if k.startswith(prefix)}}

    def _read(self, read: Callable[[], _T], away: _T) -> _T:
        """A read of the store; a shared store's database away answers `away` (with what is held)."""
        if self.away:
            return away
        try:
            return read()
        except DatabaseUnavailable as exc:
            self._degrade(storage_problem(exc, self.path) or str(exc))
            return away

    def last_final_run(self, job: str, *, at_or_before: float | None = None) -> RunRecord | None:
        found = self._read(lambda: self.history.last_final_run(job, at_or_before=at_or_before), None)
        for record in self._finals.get(job, ()):
            if at_or_before is None:
                if found is None or record.run_id > found.run_id:
                    found = record
                continue
            tick = record.scheduled_at.timestamp() if record.scheduled_at else None
            if tick is None or tick > at_or_before:
                continue
            best = found.scheduled_at.timestamp() if found and found.scheduled_at else None
            if found is None or best is None or (tick, record.run_id) > (best, found.run_id):
                found = record
        return found

    # ---- held writes ---------------------------------------------------------------------------

    def _allocate(self) -> int:
        if self._next_id is None:
            self._next_id = self.history.next_run_id()
        run_id = self._next_id
        self._next_id += 1
        return run_id

    def _degrade(self, problem: str) -> None:
        if self.problem is None:
            if self.shared:
                problem = f"database unavailable: {problem}"
                log.error("%s; no run starts until it is back (retried every %g-%gs); running jobs go on, their"
                          " records held in memory", problem, RETRY_MIN_S, RETRY_MAX_S)
            else:
                log.error("%s: history writes are held in memory and retried; jobs keep running", problem)
            self.problem = problem
            self._changed()
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): flush() or close() writes them
            return
        delay = min(RETRY_MAX_S, RETRY_MIN_S * 2 ** min(self._failures, 16))
        self._timer = loop.call_later(delay, self._retry)

    def _retry(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> bool:
        """Write the held writes, oldest first; True when none is left (a shared store: and its
        database answers)."""
        written = 0
        if self.away and not self.held and not self._probe():
            return False
        while self.held:
            item = self.held[0]
            try:
                with self.history.transaction():
                    item.op()
            except Exception as exc:
                problem = storage_problem(exc, self.path)
                if problem is not None:
                    self._failures += 1
                    if self.shared:  # said once, when it went; STATUS= shows the latest
                        self.problem = f"database unavailable: {problem}"
                    elif problem != self.problem:
                        log.error("%s: history writes are held in memory and retried", problem)
                        self.problem = problem
                        self._changed()
                    self._schedule_retry()
                    return False
                log.exception("history: a held write failed and is dropped (%s)", _text(item.what))
            self.held.popleft()
            written += 1
        if self.problem is not None:
            if self.shared:
                log.warning("history database %s is back: %d held history write(s) written", self.path, written)
            else:
                log.warning("space is back: %d held history write(s) written to %s", written, self.path)
            self.problem = None
            self._changed()
            if self.on_back is not None:
                self.on_back()
        self._failures = 0
        self._next_id = None
        self._finals.clear()
        self._kv.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return True

    def _probe(self) -> bool:
        """A shared store with nothing held: whether its database answers again (one read)."""
        try:
            self.history.kv_get("boot_id")
        except DatabaseUnavailable as exc:
            self._failures += 1
            self.problem = f"database unavailable: {storage_problem(exc, self.path) or exc}"
            self._schedule_retry()
            return False
        return True

    def close(self) -> None:
        """Flush; log what still could not be written (the journal is then its only record)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.held and not self.flush():
            kept = self._keep()
            for item in self.held:
                if item.keep is None or not kept:
                    log.error("history: not written (%s): %s", self.problem, _text(item.what))
            self.held.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _keep(self) -> bool:
        """A shared store's held run ends, on disk for the next start (heldwrites.py); True when kept."""
        entries = [item.keep for item in self.held if item.keep is not None]
        if not entries or self.spool is None:
            return False
        from cronplus.store.heldwrites import save

        try:
            save(self.spool, entries)
        except OSError as exc:
            log.error("cannot keep %d held run end(s) in %s: %s", len(entries), self.spool, exc.strerror or exc)
            return False
        log.warning("%s: %d run end(s) kept in %s, written by the next start", self.problem, len(entries), self.spool)
        return True

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # the STATUS= update must not turn a full disk into a crash
                log.exception("store: status update failed")


def _text(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()


def _satisfies(store: Store) -> tuple[KvReader, LastFinal]:  # mypy: the scheduler's reads through Store
    return store, store
