"""The supervisor's core: which runs start when, and each run's lifecycle. asyncio, one thread;
time from an injected clock.Clock. A run (one job at one tick) moves through runstate.py's
states by `_fire(run, event)` only, the one place its effects are carried out; its attempts
(one process each) go through an executor.Executor (the local one by default: local.py).

* `Scheduler.step(now)` is the decision core: it takes the ticks due at wall time `now`
  (ticking.Ticker: coalesced after a small clock jump, `missed` after downtime or a big jump),
  applies the overlap policy, evaluates waiting downstream runs (dagrun) and starts what is due.
  Tests call it directly with FakeClock times. `next_wake(now)` is when it must run again.
* `Scheduler.serve()` is the driver (driver.py: serve, wait_idle, shutdown, wake): step, start
  what was launched, sleep until the next due instant or a wake(). Without a driver, every
  entry point (step, trigger, a run's end, a retry's timer) starts what it launched at once.
* A run: its row (`running`, with its output reference) is inserted before its attempt starts;
  its task publishes its start and awaits the attempt's result; policy.outcome -> the end row
  and RunEnded in one write (records.py). Retries are new attempt rows (trigger `retry`, same
  scheduled_at) after policy.retry_delay (RETRY_WAIT, real time). Shutdown and reload are
  events (runstate.py: STOP, INTERRUPT, REMOVED).
* jitter=: a run is DELAYED to a random wall-clock instant in [start, start + jitter] (no row
  until it starts; step() starts it, next_wake() includes it), so a FakeClock drives it too.
* Manual triggers run now (no dependency wait, no jitter; overlap= and after= as chain.py
  decides): tick = the trigger instant. When a manually triggered run is final, its downstream
  jobs get a run for that same tick (trigger `manual`, same chain.Chain), which waits for its
  upstreams and follows its trigger rule.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import socket
from datetime import datetime
from pathlib import Path

from cronplus.clock import Clock, SystemClock
from cronplus.engine import dagrun, events, policy
from cronplus.engine.claims import ClusterView
from cronplus.engine.dagrun import Run, utc
from cronplus.engine.driver import Driver
from cronplus.engine.ends import EndBatch
from cronplus.engine.executor import Executor
from cronplus.engine.launcher import Launcher
from cronplus.engine.local import LocalExecutor
from cronplus.engine.outage import Outage
from cronplus.engine.pools import Pools
from cronplus.engine.records import Records
from cronplus.engine.runstate import Effect, Event, Kind, RunState, transition
from cronplus.engine.sensors import Sensors
from cronplus.engine.ticking import Ticker
from cronplus.model import Crontab, JobSpec
from cronplus.status import RunStatus, Trigger
from cronplus.store.api import HistoryStore
from cronplus.store.storeguard import Store

log = logging.getLogger("cronplus")

MAX_SLEEP_S = 60.0  # re-read wall time at least this often (suspend, clock set)
# The events without a payload, made once: several per run on the start path.
_TIMED = (RunState.WAITING, RunState.DELAYED)  # what step() and next_wake() look for among the runs
START, SPAWNED, PAUSED = Event(Kind.START), Event(Kind.SPAWNED), Event(Kind.PAUSED, reason="job paused")
ADMIT_WAIT, ADMIT_QUEUE, ADMIT_DELAY = Event(Kind.ADMIT_WAIT), Event(Kind.ADMIT_QUEUE), Event(Kind.ADMIT_DELAY)


def _busy(run: Run) -> bool:
    """In flight for overlap=: started, or about to (waiting for upstreams, jitter)."""
    busy = run.state.started or run.state in (RunState.WAITING, RunState.DELAYED, RunState.POOLED, RunState.SENSING)
    return busy and run.trigger is not Trigger.BACKFILL  # a backfill's runs neither hold nor wait for others (backfill.py)


class Scheduler(Driver):
    def __init__(self, crontab: Crontab, *, history: HistoryStore, alerting: events.Subscriber | None, log_dir: Path,
                 owner: str, clock: Clock | None = None, scheduling: bool = True, rng: random.Random | None = None,
                 bus: events.Bus | None = None, executor: Executor | None = None,
                 outputs_dir: Path | None = None, max_running: int | None = None) -> None:
        super().__init__()  # the driver's state (driver.py)
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()  # jitter; tests pass a seeded one
        self.history = history
        self.store = Store(history)  # every history write of ours goes through it (a full disk)
        self.bus = bus if bus is not None else events.Bus(history)  # run events (engine/events.py)
        if alerting is not None:  # a transactional subscriber of ours (the daemon subscribes it to its bus)
            alerting.subscribe(self.bus)
        self.owner = owner
        self.crontab = crontab
        host = getattr(history, "host", None) or socket.gethostname()
        self.executor: Executor = executor or LocalExecutor(log_dir, host=host, clock=self.clock, outputs_dir=outputs_dir,
                                                            excerpts=history.shared)  # logs readable from any host
        self.records = Records(self.store, history, self.bus, self.clock)
        self.records.owner = owner  # fencing: an end updates only a row we own (store/leases.py)
        self.ends = EndBatch(self.records)  # a loop pass's run ends: one transaction (ends.py)
        self.ticker = Ticker(self.store, self.records, clock_start=self.clock.time(), scheduling=scheduling)
        self.launcher = Launcher(store=self.store, history=history, executor=self.executor, clock=self.clock,
                                 owner=owner, handled=self.ticker.handled, on_started=self._spawned,
                                 supervise=self._supervise, system=lambda: self.crontab.system,
                                 away=lambda run, why: self._fire(run, Event(Kind.STORE_AWAY, reason=why)),
                                 claimed_elsewhere=lambda run: self._fire(run, Event(Kind.CLAIMED_ELSEWHERE)))
        self.outage = Outage(self.store, self.ticker, self.records, self.wake)  # a shared store's database away
        self.cluster = ClusterView(self.store, host=host, shared=history.shared)  # the other supervisors' runs (claims.py)
        self.pools = Pools(cap=max_running, clock=self.clock, start=lambda run: self._fire(run, START),
                           record_wait=self.records.queued, stopping=lambda: self.stopping)  # pools.py
        self.sensors = Sensors(self)  # wait-for= (sensors.py)
        self.jobs: dict[str, JobSpec] = {}
        self.runs: dict[Run, None] = {}  # not yet final, in order (a dict: O(1) removal at W3 scale)
        self.timed = 0  # runs WAITING or DELAYED: with none, step and next_wake skip their scans (a pool's drain)
        self._by_job: dict[str, list[Run]] = {}
        self.stopping = False
        self.stop_reason = "supervisor shutdown"
        self._install(crontab, self.clock.time(), initial=True)

    @property
    def next_tick(self) -> dict[str, datetime | None]:
        """Each job's next tick (None: @reboot, never, or not scheduling)."""
        return self.ticker.next_tick

    @property
    def scheduling(self) -> bool:
        """False: `cronplus trigger` without a supervisor (no ticks; manual runs only)."""
        return self.ticker.scheduling

    @scheduling.setter
    def scheduling(self, on: bool) -> None:
        self.ticker.scheduling = on

    def running(self) -> int:  # how many runs have an attempt under way (not those waiting for a retry)
        return sum(1 for run in self.runs if run.state is RunState.RUNNING)

    # ---- configuration -------------------------------------------------------------------

    def _install(self, crontab: Crontab, now: float, *, initial: bool) -> None:
        from cronplus.crontab.deps import topological_order

        self.crontab = crontab
        self.jobs = {job.name: job for job in crontab.jobs}
        self.pools.configure(dict(crontab.pools), self.pools.cap)
        self.ticker.install(self.jobs, topological_order(crontab.jobs), now, initial=initial)

    def reload(self, crontab: Crontab) -> None:
        """Swap in a new, already valid crontab. Running runs are untouched (they keep their
        JobSpec); runs of removed jobs that have not started are recorded skipped."""
        self._install(crontab, self.clock.time(), initial=False)
        removed = Event(Kind.REMOVED, reason="job removed from the crontab")
        for run in [r for r in self.runs if r.job.name not in self.jobs]:
            self._fire(run, removed)
        self.wake()

    def pause(self, names: list[str] | None, by: str) -> None:  # None: all (Ticker.pause, Ticker.resume)
        for run in self.ticker.pause(names, by, self.clock.time(), list(self.runs)):  # not started: end (PAUSED)
            self._fire(run, PAUSED)

    # ---- the decision core -----------------------------------------------------------------

    def step(self, now: float) -> None:
        """Decide and start everything due at wall time `now`."""
        self.cluster.forget(now)
        self._evaluate_waiting(now)  # first, so a run giving up at this tick frees its job
        if self.ticker.scheduling and not self.stopping:
            if self.ticker.due(now, self._new_tick):  # paused on another host (ticking.py): as pause()
                for run in self.ticker.paused_runs(list(self.runs)):
                    self._fire(run, PAUSED)
        else:
            self.ticker.stepped(now)
        self._evaluate_waiting(now)
        for run in [r for r in (self.runs if self.timed else ()) if r.state is RunState.DELAYED and r.start_at is not None and r.start_at <= now]:
            self._fire(run, START)
        self.sensors.step(now, jobs=self.jobs if self.ticker.scheduling and not self.stopping else None)
        if not self._served:
            self.launcher.flush()
            self.ticker.settle(now)

    def next_wake(self, now: float) -> float:
        """Seconds until step() has something to do (capped at MAX_SLEEP_S)."""
        due = self.ticker.due_instants() if not self.stopping else []
        due += [r.deadline.timestamp() for r in (self.runs if self.timed else ()) if r.state is RunState.WAITING and r.deadline]
        due += [r.start_at for r in (self.runs if self.timed else ()) if r.state is RunState.DELAYED and r.start_at is not None] + self.sensors.due()
        due += self.cluster.poll(now, (r for r in (self.runs if self.timed else ()) if r.state is RunState.WAITING))  # upstreams on other hosts
        return max(0.0, min([MAX_SLEEP_S + now, *due]) - now)

    def _new_tick(self, job: JobSpec, tick: datetime, trigger: Trigger, now: float) -> None:
        """A tick of a job is due: overlap policy, then wait for upstreams or start."""
        mine = self._job_runs(job.name)
        active, remote = [r for r in mine if _busy(r)], self.cluster.overlapping(job, trigger, mine)  # remote: on other hosts
        queued = any(r.state is RunState.QUEUED for r in mine)
        action = policy.overlap_action(job.options.overlap, active=bool(active or remote), queued=queued)
        if remote and not active and action is not policy.OverlapAction.SKIP and action is not policy.OverlapAction.START:
            return  # queue / replace: the host running it decides (claims.py)
        if action is policy.OverlapAction.SKIP:
            ids = ", ".join([str(r.attempt_id) for r in active if r.attempt_id] + [f"{r.run_id} (on {r.host})" for r in remote]) or "?"
            self._fire(Run(job, tick, trigger), Event(Kind.NOT_RUN, status=RunStatus.SKIPPED,
                                                      reason=f"previous run {ids} still running"))
            return
        run = Run(job, tick, trigger, jitter=job.options.jitter)
        self._add(run)
        if action is policy.OverlapAction.QUEUE:
            self._fire(run, ADMIT_QUEUE)
            log.info("job %s: tick %s queued behind run %s", job.name, tick.isoformat(), active[0].attempt_id)
            return
        if action is policy.OverlapAction.REPLACE:
            run.replaces = active
        self._admit(run)

    def _admit(self, run: Run) -> None:
        if run.job.options.after:
            run.deadline = dagrun.run_deadline(run, self.clock.time())
            self._fire(run, ADMIT_WAIT)
        else:
            self._launch(run)

    def _launch(self, run: Run) -> None:
        """Start a run, or first delay it to a random instant in [now, now + jitter] on the wall
        clock (step() starts it then): no row until it starts, like cron's own delay."""
        if run.jitter > 0 and run.start_at is None:
            run.start_at = self.clock.time() + self.rng.uniform(0, run.jitter)
            self._fire(run, ADMIT_DELAY)
        else:
            self._fire(run, START)

    def _evaluate_waiting(self, now: float) -> None:
        now_dt = utc(now)
        for run in [r for r in (self.runs if self.timed else ()) if r.state is RunState.WAITING]:
            ups = dagrun.upstream_states(run.job, run.tick, self.store, self._in_flight)
            decision = dagrun.decide(run.job, ups, now=now_dt, deadline=run.deadline or now_dt)
            if decision.verdict == "run":
                self._launch(run)
            elif decision.verdict in ("skip", "upstream_failed"):
                status = RunStatus.SKIPPED if decision.verdict == "skip" else RunStatus.UPSTREAM_FAILED
                self._fire(run, Event(Kind.NOT_RUN, status=status, reason=decision.reason))

    def _in_flight(self, name: str, tick: datetime) -> bool:
        return any(r.tick <= tick and r.state is not RunState.FINAL for r in self._job_runs(name)) or self.cluster.in_flight(name, tick, self.jobs.get(name))

    def _add(self, run: Run) -> None:
        self.runs[run] = None
        self._by_job.setdefault(run.job.name, []).append(run)

    def _job_runs(self, name: str) -> list[Run]:
        return self._by_job.get(name, [])

    # ---- manual triggers -----------------------------------------------------------------

    def trigger(self, name: str, *, force: bool = False, params: tuple[tuple[str, str], ...] = ()) -> Run:
        """Run a job now (trigger=manual), as its overlap= and after= allow (chain.check_manual;
        TriggerRefused otherwise, unless `force`). The run's `chain` streams its events and
        those of the downstream runs it causes. Its first history row exists when this returns,
        unless it is queued behind a running one (overlap=queue) or for a pool slot (pool=)."""
        from cronplus.engine.chain import Chain, check_manual

        job = self.jobs[name]
        self.outage.check_trigger()
        now = self.clock.time()
        in_flight = [r for r in self._job_runs(name) if _busy(r)]
        admission = check_manual(job, in_flight=in_flight, running=self._job_runs, force=force,
                                 last_final=lambda up: self.store.last_final_run(up, at_or_before=now))
        run = Run(job, utc(now), Trigger.MANUAL, params=params)  # its downstream runs do not inherit params
        Chain(run, notes=admission.notes).add(run)
        self._add(run)
        if admission.overlap == policy.OverlapAction.QUEUE:
            self._fire(run, ADMIT_QUEUE)
            return run
        if admission.overlap == policy.OverlapAction.REPLACE:
            run.replaces = in_flight
        self._fire(run, START)
        self.launcher.start_now(run)  # unless POOLED (not in the launch queue): its chain's notes say so
        self._launched()
        return run

    def start_chained(self, *runs: Run) -> None:
        """Admit runs that carry their own chain (engine/backfill.py's ticks): after=, then START."""
        for run in runs:
            self._add(run)
            self._admit(run)
        self.launcher.start_now(*runs)  # now, not with the next step: ticks ending start the next at once, together
        self._launched()

    # ---- the one place a run's effects are carried out ----------------------------------

    def _fire(self, run: Run, event: Event) -> None:
        before, event = run.state, self.pools.gate(run, self.sensors.gate(run, event))  # wait-for=: SENSE; no free slot: ADMIT_POOL
        step = transition(run.state, event.kind)
        run.state = step.state
        self.timed += (step.state in _TIMED) - (before in _TIMED)
        self.sensors.apply(run, event, step.effects)  # wait-for=: PROBE, END_SENSOR, ... (sensors.py)
        for effect in step.effects:
            if effect is Effect.WAKE:
                self.wake()
            elif effect is Effect.LAUNCH:
                self.launcher.add(run)
            elif effect is Effect.SUPERVISE:
                if run.cancelled and run.handle is not None:  # cancelled while launching
                    run.handle.cancel()
                self.launcher.supervise_later(run)
            elif effect is Effect.RECORD_END:
                self._record_end(run, event)
            elif effect is Effect.RETRY_TIMER:
                log.info("job %s: retry %d of %d in %gs", run.job.name, run.attempt, run.job.options.retries, event.delay)
                run.retry_timer = asyncio.get_running_loop().call_later(event.delay, self._retry_due, run)
            elif effect is Effect.RECORD_NOT_RUN:
                assert event.status is not None
                self._record_not_run(run, event.status, event.reason)
            elif effect is Effect.RECORD_UNSTARTED:
                self._record_unstarted(run, event)
            elif effect is Effect.CANCEL:
                self._cancel(run, event)
            elif effect is Effect.KILL:
                if run.handle is not None:
                    run.handle.kill()
            elif effect is Effect.RELEASE:
                self._release(run)
            elif effect is Effect.NOT_STARTED:
                self.outage.not_started(run, event)
        self.pools.moved(run, before)  # a slot freed lets the next run in

    def _record_end(self, run: Run, event: Event) -> None:
        assert event.result is not None and event.outcome is not None
        final = run.state is RunState.FINAL
        run.record = self.records.ended(run, event.result, event.outcome, final=final)
        run.handle = None
        if not final and run.chain is not None:
            run.chain.retry(run, run.record, event.delay)

    def _record_not_run(self, run: Run, status: RunStatus, reason: str | None) -> None:
        run.record = self.records.not_run(run, status, reason, self.clock.time(), self.ticker.handled([run]))
        run.attempt_id = run.record.run_id if run.record is not None else None  # None: decided by another host

    def _record_unstarted(self, run: Run, event: Event) -> None:
        """It will not start (again): an ended attempt becomes final, else a skipped row."""
        if run.retry_timer is not None:
            run.retry_timer.cancel()
            run.retry_timer = None
        self.launcher.discard(run)
        if run.record is not None:  # a retry that will not happen
            run.attempt, run.attempt_id = run.record.attempt, run.record.run_id
            run.record = self.records.abandon_retry(run, event.reason or self.stop_reason)
        elif not self.cluster.leaves(run, event.kind):  # a cluster: another supervisor decides its tick (claims.py)
            self._record_not_run(run, RunStatus.SKIPPED, event.unstarted_reason)

    def _cancel(self, run: Run, event: Event) -> None:
        if event.kind is Kind.REPLACED and run.cancelled:  # the first reason stands
            return
        run.cancelled, run.cancel_reason = True, event.reason
        if event.status is not None:
            run.cancel_status = event.status
        if run.handle is not None:
            run.handle.cancel()

    def _release(self, run: Run) -> None:
        """A run is final: release a queued tick, fan a manual chain out downstream."""
        if self.runs.pop(run, False) is None:
            self._by_job[run.job.name].remove(run)
        run.done.set()
        name = run.job.name
        mine = self._job_runs(name)
        queued = [r for r in mine if r.state is RunState.QUEUED]
        if queued and not self.stopping and name in self.jobs and not any(
                r.state.started or r.state in (RunState.WAITING, RunState.POOLED, RunState.SENSING) for r in mine):  # not a job just removed
            self._admit(queued[0])
        if run.chain is not None:
            if not self.stopping and run.record is not None:
                for down in dagrun.downstream_of(self.crontab.jobs, name):
                    if not any(r.tick == run.tick for r in self._job_runs(down.name)):
                        child = Run(down, run.tick, run.trigger)  # manual, or backfill (backfill.py)
                        run.chain.add(child)
                        self._add(child)
                        self._admit(child)
            run.chain.ended(run, run.record)  # after the fan-out: the chain is whole
        self.wake()

    # ---- an attempt ------------------------------------------------------------------------

    def _spawned(self, run: Run) -> None:
        """The launcher wrote the run's row and started its attempt."""
        self._fire(run, SPAWNED)
        if run.replaces:
            replaced = Event(Kind.REPLACED, reason=f"replaced by run {run.attempt_id}")
            for old in run.replaces:
                self._fire(old, replaced)
            run.replaces = []

    def _supervise(self, run: Run) -> None:
        run.task = asyncio.get_running_loop().create_task(self._attempt(run), name=f"run-{run.job.name}")

    async def _attempt(self, run: Run) -> None:
        """One attempt's task: its start alert, its result, its end (ENDED or ENDED_RETRY)."""
        try:
            handle = run.handle
            assert handle is not None
            self.records.started(run, handle.pid, handle.started_at)
            result = await handle.result()
            if run.state is RunState.FINAL:  # FENCED while it ran (engine/takeover.py): the taker records it
                return
            job = run.job
            out = policy.outcome(result, job.options, cancel_reason=run.cancel_reason, cancel_status=run.cancel_status)
            if result.output_error or result.outputs_note:  # the status stays what the job did; the reason says more
                out = dataclasses.replace(out, reason="; ".join(filter(None, (out.reason, result.output_error, result.outputs_note))))
            if policy.will_retry(out, run.attempt, job.options) and not self.stopping:
                end = Event(Kind.ENDED_RETRY, result=result, outcome=out, delay=policy.retry_delay(run.attempt, job.options))
            else:
                end = Event(Kind.ENDED, result=result, outcome=out)
            await self.ends.written(run, end)  # its row, with the ends of the same loop pass (ends.py)
            if run.done.is_set():  # FENCED meanwhile, as above (its RELEASE set done)
                return
            self._fire(run, end)
            if end.kind is Kind.ENDED_RETRY and run.taken:  # its end was fenced: the host that took it over retries it
                self._fire(run, Event(Kind.FENCED))
            if end.kind is Kind.ENDED_RETRY and run.cancelled:  # replaced, but it ended by itself first: no retry
                self._fire(run, Event(Kind.REPLACED, reason=run.cancel_reason))
            self._launched()
        except Exception:  # a bug must not take the supervisor down; the row stays `running`
            log.exception("job %s: run %s crashed in the supervisor", run.job.name, run.attempt_id)
            if run.state is not RunState.FINAL:
                self._fire(run, Event(Kind.CRASHED))
                self._launched()
        finally:
            self.wake()

    def adopt(self, run: Run, event: Event) -> None:  # a run taken over from a host that lost its lease (takeover.py)
        self._add(run)
        self._fire(run, event)

    def _retry_due(self, run: Run) -> None:
        run.retry_timer = None
        if run.state is not RunState.RETRY_WAIT:
            return
        run.attempt += 1
        run.attempt_id = run.output = None
        run.cancelled, run.cancel_reason = False, None
        try:
            self._fire(run, START)
            self._launched()
        except Exception:  # a bug must not leave the run launching forever (a timer has no task to crash)
            log.exception("job %s: the retry of run %s crashed in the supervisor", run.job.name, run.run_id)
            if not run.done.is_set():  # not final (set on release: the events above moved it)
                self._fire(run, Event(Kind.CRASHED))
