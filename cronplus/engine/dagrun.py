"""A run and dependency waiting for `after=`: the `Run` record the scheduler tracks (one job at
one tick, across its attempts; its states: runstate.py), which upstream run belongs to a downstream tick, and the
verdict of the job's trigger rule (deps.evaluate). Reads history, never writes it.

Rules (README "Dependencies and trigger rules"):

* A downstream run for tick T waits for each upstream's run belonging to T: the upstream's
  newest *final* run with `scheduled_at <= T` (History.last_final_run). While an upstream has a
  run in flight (starting, running, retrying, waiting for its own upstreams) for a tick <= T, the
  downstream waits (status None for deps.evaluate).
* An upstream with no run at all at or before T, and none in flight, will not get one for T: the
  downstream is `upstream_failed` ("upstream X has no run for this tick").
* A waiting downstream gives up at its own next tick (or after `MAX_WAIT_S` when it has none):
  it is recorded `upstream_failed` with the names of the upstreams still unfinished.
* A manual trigger drives the chain: when a triggered run of X is final, every job with X in
  `after=` gets a run for the same tick (the trigger instant), which then waits and evaluates
  like any other downstream run (scheduler.py does the fan-out). A backfill's chain (backfill.py)
  fans out alike, its runs trigger `backfill`, waiting up to MAX_WAIT_S from now (`run_deadline`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from cronplus.engine.runstate import RunState
from cronplus.model import JobSpec, RunRecord
from cronplus.status import RunStatus, Trigger

if TYPE_CHECKING:
    from cronplus.engine.executor import Attempt, OutputRef
    from cronplus.store.api import LastFinal

MAX_WAIT_S = 24 * 3600.0


class Chain(Protocol):
    """The runs one manual trigger set going (chain.Chain), as a run and its readers see it:
    said here, so that this module does not import the one that builds on it."""

    notes: list[str]

    def add(self, run: Run) -> None: ...
    def retry(self, run: Run, record: RunRecord, delay: float) -> None: ...
    def ended(self, run: Run, record: RunRecord | None) -> None: ...
    def events(self) -> AsyncIterator[dict[str, Any]]: ...


@dataclass(eq=False)
class Run:
    """One job at one tick, across its attempts; its state moves by runstate.transition only."""

    job: JobSpec
    tick: datetime
    trigger: Trigger
    chain: Chain | None = None  # a manual trigger's: fan out to downstream jobs when final (chain.py)
    state: RunState = RunState.NEW
    attempt: int = 1
    attempt_id: int | None = None  # the current attempt's history row (None before it exists)
    deadline: datetime | None = None  # WAITING gives up then
    jitter: float = 0.0
    start_at: float | None = None  # wall time a jittered run starts (DELAYED)
    cancelled: bool = False  # its attempt is to be cancelled (why: cancel_reason)
    cancel_reason: str | None = None
    cancel_status: RunStatus = RunStatus.FAILED
    replaces: list[Run] = field(default_factory=list)
    handle: Attempt | None = None  # the current attempt, from its start until its result
    task: asyncio.Task[None] | None = None  # awaits the current attempt's result
    retry_timer: asyncio.TimerHandle | None = None  # RETRY_WAIT: START when it fires
    started_at: float = 0.0  # of the current attempt's row
    output: OutputRef | None = None  # of the current attempt
    record: RunRecord | None = None  # the last attempt's, once ended
    done: asyncio.Event = field(default_factory=asyncio.Event)
    params: tuple[tuple[str, str], ...] = ()  # a manual run's --param K=V, every attempt's (runio.py)
    sensor_s: float | None = None  # its sensor's wait (sensors.py), until written on its row
    taken: bool = False  # its end was fenced: another host took it over and retries it (engine/takeover.py)

    @property
    def run_id(self) -> int | None:
        """History's name for `attempt_id` (the runs table's key, `run_id` in JSON)."""
        return self.attempt_id

    @property
    def attempt_trigger(self) -> Trigger:
        """What the current attempt's row says started it: a retry after the first attempt."""
        return Trigger.RETRY if self.attempt > 1 else self.trigger

    @property
    def backfill(self) -> bool:
        """A `cronplus backfill` tick's run (every attempt, retries too): outside its job's alerts."""
        return self.trigger is Trigger.BACKFILL


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    status: RunStatus | None  # None: not final yet for this tick
    missing: bool = False  # no run at or before the tick, and none in flight


@dataclass(frozen=True, slots=True)
class DepDecision:
    verdict: str  # deps.DepVerdict value: wait / run / skip / upstream_failed
    reason: str | None


def upstream_states(job: JobSpec, tick: datetime, history: LastFinal, in_flight: Callable[[str, datetime], bool]) -> list[Upstream]:
    """The state of each upstream of `job` for tick `tick`."""
    states = []
    for name in job.options.after:
        if in_flight(name, tick):
            states.append(Upstream(name, None))
            continue
        record = history.last_final_run(name, at_or_before=tick.timestamp())
        if record is None:
            states.append(Upstream(name, None, missing=True))
        else:
            states.append(Upstream(name, record.status))
    return states


def decide(job: JobSpec, upstreams: Sequence[Upstream], *, now: datetime, deadline: datetime) -> DepDecision:
    """The verdict for a waiting downstream run, with a reason naming the upstreams."""
    from cronplus.crontab.deps import DepVerdict, evaluate

    missing = [u.name for u in upstreams if u.missing]
    if missing:
        return DepDecision(DepVerdict.UPSTREAM_FAILED.value, f"upstream {', '.join(missing)} has no run for this tick")
    verdict = evaluate(job.options.trigger, [u.status for u in upstreams])
    if verdict == DepVerdict.WAIT:
        if now >= deadline:
            waiting = ", ".join(u.name for u in upstreams if u.status is None)
            return DepDecision(DepVerdict.UPSTREAM_FAILED.value, f"gave up waiting for upstream {waiting}")
        return DepDecision(DepVerdict.WAIT.value, None)
    if verdict == DepVerdict.RUN:
        return DepDecision(DepVerdict.RUN.value, None)
    summary = ", ".join(f"{u.name} {u.status}" for u in upstreams if u.status is not None)
    rule = job.options.trigger.value
    return DepDecision(verdict.value, f"upstream {summary} (trigger={rule})")


def wait_deadline(job: JobSpec, tick: datetime) -> datetime:
    """When a downstream run for `tick` stops waiting: the job's next tick, else MAX_WAIT_S."""
    from cronplus.crontab.schedule import next_fire

    nxt = None if job.schedule.reboot else next_fire(job.schedule, tick, job.tz)
    limit = tick + timedelta(seconds=MAX_WAIT_S)
    return min(nxt, limit) if nxt is not None else limit


def run_deadline(run: Run, now: float) -> datetime:
    """A run's WAITING deadline: its tick's (wait_deadline); a backfill's tick is in the past, so
    its downstream runs wait from `now` (MAX_WAIT_S at most) instead of giving up at once."""
    if run.trigger is Trigger.BACKFILL:
        return utc(now) + timedelta(seconds=MAX_WAIT_S)
    return wait_deadline(run.job, run.tick)


def downstream_of(jobs: Sequence[JobSpec], name: str) -> list[JobSpec]:
    """The jobs with `name` in after=, in file order. Indexed once per crontab (the scheduler asks
    at every manual run's end: a scan of every job each time made 1,000 triggers O(n^2))."""
    global _downstream
    if _downstream is None or _downstream[0] is not jobs:
        index: dict[str, list[JobSpec]] = {}
        for job in jobs:
            for up in job.options.after:
                index.setdefault(up, []).append(job)
        _downstream = (jobs, index)
    return list(_downstream[1].get(name, ()))


_downstream: tuple[Sequence[JobSpec], dict[str, list[JobSpec]]] | None = None  # the last crontab's jobs, indexed
