"""Run events: what happened to runs and to the configuration, told to whoever subscribed.

Publishers: the scheduler (`RunStarted`, `RunEnded`, `RunNotRun`, `TicksMissed`, `Stepped`;
`RunSlow` through slowness.py),
recovery (`RunEnded` of the runs a dead supervisor left), the daemon (`ConfigRejected`,
`ConfigReloaded`) and the delivery worker (`AlertSettled`, carried to the loop by the daemon).
Every event is a frozen dataclass; the run events carry the row as written (`RunRecord`).
`backfill` on RunStarted / RunEnded / RunNotRun / RunSlow: the run is a `cronplus backfill`
tick's (engine/backfill.py), every attempt of it, retries included (their rows say `retry`);
alerting leaves such runs out of the job's alerts, pings, mail and incident, the rest hear them.
A publisher that has only the row (recovery, a take-over, an adopted remote end, a replayed held
end) says it with `from_backfill(record)`.

`Bus(uow).subscribe(kind, handler, *, transactional)`; `publish(event)` calls, in the order
they subscribed:

- transactional subscribers at once, on the publisher's thread, inside the store's unit of work
  that records the event (the scheduler publishes a run's end inside the transaction of its
  final write: its alert decision, alerts/alerting.py, commits with it or not at all, even
  across a kill -9). A storage error (store.faults.is_storage_error) propagates: the caller's
  storeguard.Store rolls the whole write back, holds it, and publishes again when it writes it.
  Any other exception is logged and the record is written anyway (an alert problem never fails
  a job); a subscriber that writes makes its part atomic itself (a nested `transaction()`, a
  savepoint), so its failure undoes only that part.
- after-commit subscribers once the unit of work has committed (`UnitOfWork.after_commit`; at
  once when no transaction is open), never for a write that rolled back: a held write is seen
  once, when it is written. An exception is logged, never raised into the publisher: it cannot
  stop the loop or lose a record. These are for what only reads: systemd's STATUS=, counters
  for /metrics (service/stats.py), next the web page.

Handlers run on the publisher's thread, which is the loop's for every event (another thread,
the delivery worker's, publishes through `from_thread(loop)`), so a subscriber needs no lock
for what only handlers touch.

May import: foundation, store.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from cronplus.status import Trigger
from cronplus.store.faults import is_storage_error

if TYPE_CHECKING:
    from cronplus.model import JobOptions, JobSpec, RunRecord
    from cronplus.store.api import UnitOfWork

log = logging.getLogger("cronplus")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted:
    """An attempt's process runs; its row is `running` (published with its pid's write)."""

    job: JobSpec
    record: RunRecord
    spawned_at: float  # the supervisor's clock at the spawn (executor.Attempt.started_at)
    backfill: bool = False  # a backfill's run (see the module docstring)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEnded:
    """An attempt ended and its row says how; `will_retry` False: the run is final."""

    job: JobSpec
    record: RunRecord
    will_retry: bool
    backfill: bool = False  # a backfill's run (see the module docstring)

    @property
    def final(self) -> bool:
        return not self.will_retry


@dataclass(frozen=True, slots=True, kw_only=True)
class RunNotRun:
    """A tick recorded final without a process: skipped (overlap, removed job, trigger rule)
    or upstream_failed."""

    job: JobSpec
    record: RunRecord
    backfill: bool = False  # a backfill's run (see the module docstring)


@dataclass(frozen=True, slots=True, kw_only=True)
class TicksMissed:
    """Ticks of a job fell while no supervisor ran (or the clock jumped): `records` the
    `missed` rows written (the newest last), `total` the ticks missed in all (policy.DueTicks)."""

    job: JobSpec
    records: tuple[RunRecord, ...]
    total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigRejected:
    """A reload was refused (the previous crontab stays in effect): a CrontabError with its
    diagnostics, or the OSError / CronplusError that kept the file from being read."""

    defaults: JobOptions  # of the crontab still in effect (where config_error alerts go)
    error: Exception


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigReloaded:
    jobs: int
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Stepped:
    """The scheduler finished a step: runs started or ended, next ticks moved."""

    now: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSettled:
    """The delivery worker recorded an attempt of an outbox row (after its commit)."""

    row_id: int
    kind: str  # alert / ping / mail
    job: str | None
    event: str
    result: str  # delivered / retry / failed


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSlow:
    """An attempt still runs past its expected duration (engine/slowness.py); published with its
    row's `slow_at` write, once per run. `record` is the running row as marked."""

    job: JobSpec
    record: RunRecord
    running_s: float  # how long it has run so far
    threshold_s: float
    learned: str  # how the threshold was found: "p95 of last 50 successful runs 12.3s x 3"
    backfill: bool = False  # a backfill's run (see the module docstring)


def from_backfill(record: RunRecord) -> bool:
    """A row's run is a backfill's, as far as the row says: a first attempt's trigger. A retry's
    row says `retry` (its first attempt's is not looked up): such an end counts as the job's own."""
    return record.trigger is Trigger.BACKFILL


Event = (RunStarted | RunEnded | RunNotRun | TicksMissed | ConfigRejected | ConfigReloaded | Stepped | AlertSettled
         | RunSlow)
_E = TypeVar("_E", bound=Event)
_Handler = Callable[[Any], None]


class Subscriber(Protocol):
    """An object that subscribes its own handlers (alerts/alerting.Alerting, service/stats.RunStats)."""

    def subscribe(self, bus: Bus) -> None: ...


class Bus:
    """One per supervisor; `uow` is the store whose transactions the events are published in
    (None: no store, after-commit subscribers are called at once)."""

    def __init__(self, uow: UnitOfWork | None = None) -> None:
        self.uow = uow
        self._now: dict[type, tuple[_Handler, ...]] = {}
        self._after: dict[type, tuple[_Handler, ...]] = {}

    def subscribe(self, kind: type[_E], handler: Callable[[_E], None], *, transactional: bool) -> None:
        table = self._now if transactional else self._after
        table[kind] = (*table.get(kind, ()), handler)  # a tuple: publish hands it on as it is

    def publish(self, event: Event) -> None:
        kind = type(event)
        for handler in self._now.get(kind, ()):
            try:
                handler(event)
            except Exception as exc:  # a subscriber never fails the record it is about
                if is_storage_error(exc):  # but a full disk holds the record and this decision together
                    raise
                log.exception("%s: subscriber %s failed", _what(event), _name(handler))
        after = self._after.get(kind)
        if after:
            if self.uow is None:
                _deliver(event, after)
            else:
                self.uow.after_commit(functools.partial(_deliver, event, after))

    def from_thread(self, loop: asyncio.AbstractEventLoop) -> Callable[[Event], None]:
        """`publish` for another thread: the event is published on `loop`'s thread (dropped
        once the loop is closed: its supervisor and subscribers are gone)."""
        def publish(event: Event) -> None:
            try:
                loop.call_soon_threadsafe(self.publish, event)
            except RuntimeError:  # the loop is closed
                pass

        return publish


def _deliver(event: Event, handlers: Sequence[_Handler]) -> None:
    for handler in handlers:
        try:
            handler(event)
        except Exception:  # after the commit: the record is safe; log, and the others still hear it
            log.exception("%s: after-commit subscriber %s failed", _what(event), _name(handler))


def _what(event: Event) -> str:
    job = getattr(event, "job", None)
    name = job if isinstance(job, str) or job is None else job.name
    return f"{type(event).__name__} of job {name}" if name else type(event).__name__


def _name(handler: _Handler) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
