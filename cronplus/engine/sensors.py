"""Sensors (`wait-for=CMD`, README "Sensors"): before a run's command, probe CMD until it exits 0.

Contract:
* A run of a job with `wait-for=` that is to START is SENSING instead (runstate.py: SENSE; the
  scheduler asks `gate(run, event)`); `begin(run)` (effect PROBE) starts its wait: deadline = now +
  wait-timeout. The wait is stored (kv `sensor.<job>`: tick -> started, deadline, attempt,
  trigger) with the tick marked handled, so that a supervisor restart resumes it with the same
  deadline (`stored_waits`) instead of calling the tick missed.
* A probe is CMD run as the job would be (runner.spawn_attempt: cron's environment, the job's
  user, its own session and process group; CRONPLUS_RUN_ID=0), its output in the job's log
  directory as run 0's (the last probe's: <log_dir>/<job>/0.log). One probe at a time; the next
  is due wait-every after the last one started, on the scheduler's clock: between probes a
  sensor costs no process and no task, only an instant in `next_wake` (`step(now)` starts what
  is due). A probe still running at wait-every is terminated (its group, the job's kill-grace).
* A probe exiting 0: `fire(run, START)` (-> LAUNCHING, or POOLED through pools.gate); the seconds waited go on the run's row
  (runs.sensor_s, written by records.started). At the deadline without a pass: SENSE_TIMEOUT
  (wait-timeout-status, reason "wait-for timed out after 1h (last probe exit 1)"), or
  SENSE_TIMEOUT_RETRY when the status is failed and retries= has attempts left (the retry
  waits on the sensor again); either way the attempt's row (records.wait_ended) and RunEnded.
* The scheduler's hook: `gate(run, event)` turns START into SENSE in `_fire`, SENSOR_EFFECTS go to
  `apply`, `step(now, jobs=)` and `due()` join its step and next_wake; its shutdown awaits
  `probes` (STOP's KEEP_SENSOR stopped them: no probe outlives the supervisor).
* `end(run)` (END_SENSOR: passed, timed out, replaced, removed) stops its probe and forgets the
  stored wait; `keep(run)` (KEEP_SENSOR: shutdown) stops its probe and leaves it stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cronplus.clock import Clock
from cronplus.engine import runner
from cronplus.engine.dagrun import Run, utc
from cronplus.engine.policy import retry_delay
from cronplus.engine.records import Records
from cronplus.engine.runstate import Effect, Event, Kind
from cronplus.engine.supervise import supervise
from cronplus.humanize import duration as human_duration
from cronplus.model import JobSpec
from cronplus.status import RunStatus, Trigger
from cronplus.store.api import HistoryStore
from cronplus.store.storeguard import Store

if TYPE_CHECKING:
    from cronplus.engine.executor import Executor
    from cronplus.engine.ticking import Ticker
    from cronplus.model import Crontab

log = logging.getLogger("cronplus")

KV_PREFIX = "sensor."
SENSE, START = Event(Kind.SENSE), Event(Kind.START)
SENSOR_EFFECTS = frozenset({Effect.PROBE, Effect.END_SENSOR, Effect.KEEP_SENSOR, Effect.RECORD_WAIT_END})


@dataclass(eq=False)
class Wait:
    started: float  # clock time the wait began (kept across a restart)
    deadline: float
    next_at: float  # clock time the next probe is due
    probe: asyncio.Task[None] | None = None
    cancel: asyncio.Event | None = None
    last_exit: int | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Stored:
    """A wait a previous supervisor left (shutdown, crash): resumed with its deadline."""

    job: str
    tick: datetime
    started: float
    deadline: float
    attempt: int
    trigger: Trigger


class Host(Protocol):
    """What a Sensors takes of its scheduler (scheduler.Scheduler), said here: no import circle."""

    records: Records
    owner: str
    clock: Clock
    crontab: Crontab
    ticker: Ticker
    executor: Executor

    def _fire(self, run: Run, event: Event) -> None: ...
    def _add(self, run: Run) -> None: ...
    def _launched(self) -> None: ...
    def wake(self) -> None: ...


class Sensors:
    def __init__(self, sched: Host) -> None:
        """Of its scheduler: its store and records, clock, owner, crontab mode, the kv marking a tick
        handled, and _fire, _add (a resumed run), _launched, wake."""
        self.records: Records = sched.records
        self.store: Store = sched.records.store
        self.history: HistoryStore = sched.records.history
        self.owner: str = sched.owner
        self.clock: Clock = sched.clock
        self.system: Callable[[], bool] = lambda: sched.crontab.system
        self.handled: Callable[[list[Run]], list[tuple[str, str]]] = sched.ticker.handled
        self._fire: Callable[[Run, Event], None] = sched._fire
        self.add: Callable[[Run], None] = sched._add
        self.launched: Callable[[], None] = sched._launched
        self.wake: Callable[[], None] = sched.wake
        self.output_for = sched.executor.output_for
        self.waits: dict[Run, Wait] = {}
        self.resume: dict[tuple[str, float], Stored] = {}  # (job, tick) -> its stored wait, until begun
        self._resumed = False
        self.probes: set[asyncio.Task[None]] = set()  # in flight, also those of waits that ended

    def fire(self, run: Run, event: Event) -> None:
        """An event of ours (SENSE of a resumed run, START after a pass, SENSE_TIMEOUT...): what it launched starts."""
        self._fire(run, event)
        self.launched()

    @staticmethod
    def gate(run: Run, event: Event) -> Event:
        """The event _fire fires: START of a run with a sensor not passed yet is SENSE (a retry's
        too: the precondition is checked again; `sensor_s` marks a pass until its attempt starts)."""
        if event.kind is Kind.START and run.job.options.wait_for is not None and run.sensor_s is None:
            return SENSE
        return event

    def apply(self, run: Run, event: Event, effects: tuple[Effect, ...]) -> None:
        """_fire's sensor effects (SENSOR_EFFECTS), before the others of its step."""
        for effect in effects:
            if effect in SENSOR_EFFECTS:
                self._apply(effect, run, event)

    def _apply(self, effect: Effect, run: Run, event: Event) -> None:
        if effect is Effect.PROBE:
            self.begin(run)
        elif effect is Effect.END_SENSOR:
            self.end(run)
        elif effect is Effect.KEEP_SENSOR:
            self.keep(run)
        elif effect is Effect.RECORD_WAIT_END:
            self._record_timeout(run, event)

    # ---- the wait --------------------------------------------------------------------------

    def begin(self, run: Run) -> None:
        now = self.clock.time()
        stored = self.resume.pop((run.job.name, run.tick.timestamp()), None)
        if stored is not None:
            started, deadline = stored.started, stored.deadline
            log.info("job %s: resuming the wait on its sensor (deadline kept)", run.job.name)
        else:
            started, deadline = now, now + run.job.options.wait_timeout
        self.waits[run] = Wait(started=started, deadline=deadline, next_at=now)
        self._store(run.job.name, handled=self.handled([run]) if run.attempt == 1 else [])
        self.wake()

    def step(self, now: float, *, jobs: dict[str, JobSpec] | None) -> None:
        """Start the probes due at `now`; a wait past its deadline with no probe running times out.
        With `jobs` (a scheduling supervisor), first (once) the waits a previous one left: SENSE."""
        for run in self.resumed(jobs) if jobs is not None else ():
            self.add(run)
            self.fire(run, SENSE)
        for run, wait in list(self.waits.items()):
            if wait.probe is not None or now < wait.next_at:
                continue
            if now >= wait.deadline:
                self.fire(run, self._timeout_event(run, wait))
            else:
                wait.cancel = asyncio.Event()
                wait.probe = asyncio.get_running_loop().create_task(self._probe(run, wait), name=f"sensor-{run.job.name}")
                self.probes.add(wait.probe)
                wait.probe.add_done_callback(self.probes.discard)

    def due(self) -> list[float]:
        """The clock instants step() has something to do at (probes, deadlines)."""
        return [min(w.next_at, w.deadline) for w in self.waits.values() if w.probe is None]

    async def _probe(self, run: Run, wait: Wait) -> None:
        job = run.job
        began = self.clock.time()
        try:
            result = await supervise(self._spawn(job, run), cancel=wait.cancel)
            wait.last_exit, wait.last_error = result.exit_code, result.error
            if result.timed_out:
                wait.last_error = f"probe killed after {human_duration(job.options.wait_every)}"
            passed = result.exit_code == 0 and not result.timed_out and not result.cancelled
        except Exception:  # a bug must not take the supervisor down: the probe counts as failed
            log.exception("job %s: the probe of its sensor crashed in the supervisor", job.name)
            passed = False
        finally:
            wait.probe = None
        if self.waits.get(run) is not wait or (wait.cancel is not None and wait.cancel.is_set()):
            return  # ended meanwhile
        if passed:
            run.sensor_s = max(0.0, self.clock.time() - wait.started)
            self.fire(run, START)  # -> LAUNCHING, or POOLED when its pool has no free slot
        else:
            wait.next_at = began + job.options.wait_every
        self.wake()

    def _spawn(self, job: JobSpec, run: Run) -> runner.Spawned:
        opts = job.options
        assert opts.wait_for is not None
        probe = dataclasses.replace(job, command=opts.wait_for, stdin=None,
                                    options=dataclasses.replace(opts, timeout=opts.wait_every))
        return runner.spawn_attempt(probe, run_id=0, attempt=run.attempt, scheduled_at=run.tick,
                                    log_path=Path(self.output_for(job.name, 0).path), system=self.system(),
                                    clock=self.clock)

    def _timeout_event(self, run: Run, wait: Wait) -> Event:
        """wait-timeout passed: the run ends wait-timeout-status; a failed one follows retries=."""
        last = (wait.last_error if wait.last_error else f"last probe exit {wait.last_exit}"
                if wait.last_exit is not None else "no probe ended")
        opts = run.job.options
        reason = f"wait-for timed out after {human_duration(opts.wait_timeout)} ({last})"
        status = RunStatus(opts.wait_timeout_status)
        if status is RunStatus.FAILED and run.attempt <= opts.retries:
            return Event(Kind.SENSE_TIMEOUT_RETRY, status=status, reason=reason, delay=retry_delay(run.attempt, opts))
        return Event(Kind.SENSE_TIMEOUT, status=status, reason=reason)

    def _record_timeout(self, run: Run, event: Event) -> None:
        """RECORD_WAIT_END: the attempt's row (from the wait's start; final unless a retry follows)."""
        wait = self.waits[run]
        assert event.status is not None and event.reason is not None
        final = event.kind is Kind.SENSE_TIMEOUT
        run.record = self.records.wait_ended(run, status=event.status, reason=event.reason, started=wait.started,
                                             now=max(wait.started, self.clock.time()), final=final, owner=self.owner)
        run.attempt_id = run.record.run_id if run.record is not None else None  # None: decided on another host (claims.py)
        if not final and run.chain is not None and run.record is not None:
            run.chain.retry(run, run.record, event.delay)

    def end(self, run: Run) -> None:
        """Its wait is over (passed, timed out, replaced, removed): no probe, nothing stored."""
        self._stop(run)
        self._store(run.job.name)

    def keep(self, run: Run) -> None:
        """Shutdown: its probe stops, its stored wait stays for the next supervisor."""
        self._stop(run)

    def _stop(self, run: Run) -> None:
        wait = self.waits.pop(run, None)
        if wait is not None and wait.cancel is not None:
            wait.cancel.set()  # supervise terminates the probe's group

    # ---- the store -------------------------------------------------------------------------

    def _store(self, job: str, handled: list[tuple[str, str]] | None = None) -> None:
        """The job's waits in progress (and those still to resume) as one kv value."""
        mine = {f"{run.tick.timestamp()!r}": [w.started, w.deadline, run.attempt, str(run.trigger)]
                for run, w in self.waits.items() if run.job.name == job}
        mine.update({f"{s.tick.timestamp()!r}": [s.started, s.deadline, s.attempt, str(s.trigger)]
                     for s in self.resume.values() if s.job == job})
        items = [(KV_PREFIX + job, json.dumps(mine, sort_keys=True)), *(handled or [])]
        try:
            self.store.write(lambda _: self.history.kv_set_many(items), lambda _: None,
                             what=f"sensor waits of job {job}", own_transaction=True)
        except Exception:  # the wait goes on; a restart would not resume it
            log.exception("storing the sensor waits of job %s failed", job)

    def resumed(self, jobs: dict[str, JobSpec]) -> list[Run]:
        """Once (the first step): the runs whose waits a previous supervisor left, for jobs that
        still have a sensor, oldest tick first (the scheduler fires SENSE: `begin` keeps their
        deadlines). Others' entries are dropped."""
        if self._resumed:
            return []
        self._resumed = True
        waiting = {(run.job.name, run.tick.timestamp()) for run in self.waits}  # begun before the first step
        self.resume = {key: s for key, s in self.stored_waits(jobs).items() if key not in waiting}
        return [Run(jobs[s.job], s.tick, s.trigger, attempt=s.attempt) for s in self.resume.values()]

    def stored_waits(self, jobs: dict[str, JobSpec]) -> dict[tuple[str, float], Stored]:
        """(job, tick) -> the wait stored for it, oldest tick first, for jobs that have a sensor."""
        found: list[Stored] = []
        for key, value in self.history.kv_prefixed(KV_PREFIX).items():
            name = key[len(KV_PREFIX):]
            with contextlib.suppress(ValueError, TypeError):
                entries = json.loads(value) if name in jobs and jobs[name].options.wait_for else {}
                for tick, (started, deadline, attempt, trigger) in entries.items():
                    found.append(Stored(name, utc(float(tick)), float(started), float(deadline), int(attempt),
                                        Trigger(trigger)))
        found.sort(key=lambda s: s.tick)
        return {(s.job, s.tick.timestamp()): s for s in found}
