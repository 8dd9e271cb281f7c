"""The supervisor's core: which runs start when, and each run's lifecycle (attempts, retries,
history rows, alerts). asyncio, one thread; time from an injected clock.Clock.

* `Scheduler.step(now)` is the decision core: it takes the ticks due at wall time `now`
  (policy.due_ticks: coalesced after a small clock jump, `missed` after downtime or a big jump),
  applies the overlap policy, evaluates waiting downstream runs (dagrun) and starts what is due.
  Tests call it directly with FakeClock times. `next_wake(now)` is when it must run again.
* `Scheduler.serve()` is the driver: step, then sleep exactly until the next due instant (capped
  at MAX_SLEEP_S so clock changes and suspends are noticed) or until `wake()` (reload, trigger,
  run end, signal). No polling: idle costs one wake-up per minute at most.
* A run: history row inserted (`running`, with its log path) before the spawn, then
  runner.spawn_attempt, synchronously, for every run of the tick in turn (chunks of
  INSERT_CHUNK: rows, spawns, then the chunk's pids in one commit, then a yield to the loop so
  the control socket is served during a big tick); each run's task then
  logs and publishes its start and awaits runner.supervise; policy.outcome ->
  finish_run -> RunEnded (events.py: alerting decides in the same transaction). A run ending failed, timeout, upstream_failed, missed or interrupted
  is logged at WARNING (the rest at INFO). The next tick of a job that just ran is computed after the spawns. Retries are new attempt rows
  (trigger `retry`, same scheduled_at) after policy.retry_delay.
* The last tick handled per job is persisted (ticks.LastTicks) so a restart records the ticks
  missed while down and never re-runs a tick already done (also after the clock went back); it
  is written with the rows that handle the tick, so a kill -9 between cannot drop a tick.
* Shutdown (shutdown.py) leaves every run recorded: not-started ticks `skipped`, a pending
  retry's attempt final, runs past the grace `interrupted`.
* jitter=: a run is `delayed` to a random wall-clock instant in [start, start + jitter] (no row
  until it starts; step() starts it, next_wake() includes it), so a FakeClock drives it too.
* Manual triggers run now (no dependency wait, no jitter; overlap= and after= as chain.py
  decides): tick = the trigger instant. When a manually triggered run is final, its downstream
  jobs get a run for that same tick (trigger `manual`, same chain.Chain), which waits for its
  upstreams and follows its trigger rule.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from collections import deque
from datetime import datetime
from pathlib import Path

from cronplus.clock import Clock, SystemClock
from cronplus.crontab import schedule
from cronplus.engine import dagrun, events, policy, runner  # up front: not on a run's start path
from cronplus.engine.dagrun import Run, utc
from cronplus.engine.ticks import LastTicks, reboot_due, reboot_ran
from cronplus.model import Crontab, JobSpec, RunRecord
from cronplus.status import CatchUp, RunStatus, Trigger
from cronplus.store.api import HistoryStore
from cronplus.store.history import RunStart
from cronplus.store.storeguard import Ids, Store, draft_record

log = logging.getLogger("cronplus")

LAUNCH_SLICE_S = 5.0  # spawn a tick's runs back to back for at most this long before supervising them
INSERT_CHUNK = 10  # rows per transaction when a tick starts many runs; spawns between two yields
MAX_SLEEP_S = 60.0  # re-read wall time at least this often (suspend, clock set)
TICK_SPACING_S = 60.0  # distinct ticks are distinct minutes: never closer than this
TICK_TRIGGERS = (Trigger.SCHEDULE, Trigger.CATCH_UP)  # the runs that handle a job's tick (ticks.LastTicks)
# A run that ended badly is a WARNING line, so `journalctl -p warning` lists it (systemd.py
# prefixes <4>); a success, a skip or a start stays INFO.
WARN_STATUSES = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.UPSTREAM_FAILED, RunStatus.MISSED,
                           RunStatus.INTERRUPTED})


def _level(status: RunStatus) -> int:
    return logging.WARNING if status in WARN_STATUSES else logging.INFO


class Scheduler:
    def __init__(self, crontab: Crontab, *, history: HistoryStore, alerting: events.Subscriber | None, log_dir: Path, owner: str,
                 clock: Clock | None = None, scheduling: bool = True, rng: random.Random | None = None,
                 bus: events.Bus | None = None) -> None:
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()  # jitter; tests pass a seeded one
        self.history = history
        self.store = Store(history)  # every history write of ours goes through it (a full disk)
        self.bus = bus if bus is not None else events.Bus(history)  # run events (engine/events.py)
        if alerting is not None:  # a transactional subscriber of ours (the daemon subscribes it to its bus)
            alerting.subscribe(self.bus)
        self.log_dir = Path(log_dir).absolute()
        self.owner = owner
        self.scheduling = scheduling  # False: `cronplus trigger` without a supervisor
        self.crontab = crontab
        self.jobs: dict[str, JobSpec] = {}
        self.next_tick: dict[str, datetime | None] = {}
        self.runs: dict[Run, None] = {}  # not yet done, in order (a dict: O(1) removal at W3 scale)
        self._by_job: dict[str, list[Run]] = {}
        self._ticks = LastTicks(self.store)
        self.stopping = False
        self.stop_reason = "supervisor shutdown"
        self._event = asyncio.Event()
        self._last_eval: float | None = None
        self._first_step = True
        self._started = self.clock.time()
        self._order: list[str] = []
        self._launch_queue: deque[Run] = deque()
        self._unsupervised: deque[Run] = deque()  # spawned by _launch_queued, no task yet
        self._unsettled: dict[str, datetime] = {}  # job -> tick it just ran; next tick not yet computed
        self._driven = False  # serve() is running: it starts queued launches itself
        self._stepping = False
        self._install(crontab, self.clock.time(), initial=True)

    # ---- configuration -------------------------------------------------------------------

    def _install(self, crontab: Crontab, now: float, *, initial: bool) -> None:
        from cronplus.crontab.deps import topological_order

        old = self.jobs
        self.crontab = crontab
        self.jobs = {job.name: job for job in crontab.jobs}
        self._order = topological_order(crontab.jobs)
        next_tick: dict[str, datetime | None] = {}
        for name, job in self.jobs.items():
            prev = old.get(name)
            if prev is not None and prev.schedule == job.schedule and prev.tz == job.tz:
                next_tick[name] = self.next_tick.get(name)
            else:
                next_tick[name] = self._first_tick(job, now, initial=initial)
        self.next_tick = next_tick
        # A job first seen: its ticks from now on are ours, so one a kill -9 keeps from its rows
        # is seen missed at the next start (ticks.LastTicks).
        baseline = self._ticks.record([(name, now) for name, job in self.jobs.items()
                                       if self.scheduling and not job.schedule.reboot and self._ticks.get(name) is None])
        if baseline:
            self.store.write(lambda _: self.history.kv_set_many(baseline), lambda _: None,
                             what=f"first ticks of {len(baseline)} job(s)", own_transaction=True)

    def _first_tick(self, job: JobSpec, now: float, *, initial: bool) -> datetime | None:
        """The first tick not yet done: after the persisted last tick at start (so downtime is
        seen as missed), else after now; never at or before the last tick done."""
        next_fire = schedule.next_fire
        if not self.scheduling or job.schedule.reboot:
            return None
        last = self._ticks.get(job.name)
        if initial and last is not None:
            return next_fire(job.schedule, utc(last), job.tz)
        start = max(now, last) if last is not None else now
        return next_fire(job.schedule, utc(start), job.tz)

    def _add(self, run: Run) -> None:
        self.runs[run] = None
        self._by_job.setdefault(run.job.name, []).append(run)

    def _job_runs(self, name: str) -> list[Run]:
        return self._by_job.get(name, [])

    def reload(self, crontab: Crontab) -> None:
        """Swap in a new, already valid crontab. Running runs are untouched (they keep their
        JobSpec); runs of removed jobs that have not started are recorded skipped."""
        now = self.clock.time()
        self._install(crontab, now, initial=False)
        for run in list(self.runs):
            if run.job.name not in self.jobs and run.state in ("waiting", "queued", "delayed"):
                self._not_run(run, RunStatus.SKIPPED, "job removed from the crontab before it could start", now)
        self.wake()

    # ---- the decision core -----------------------------------------------------------------

    def step(self, now: float) -> None:
        """Decide and start everything due at wall time `now`."""
        self._stepping = True
        try:
            self._step(now)
        finally:
            self._stepping = False
        if not self._driven:
            self._flush_launches()
            self._settle_next_ticks(now)

    def _step(self, now: float) -> None:
        self._evaluate_waiting(now)  # first, so a run giving up at this tick frees its job
        if self.scheduling and not self.stopping:
            if self._first_step:  # ticks up to our start fell while no supervisor ran: missed
                self._reboot_jobs(now)
                for name in self._order:
                    self._tick_job(self.jobs[name], min(now, self._started), True)
                self._last_eval = min(now, self._started)
            downtime = self._last_eval is not None and now - self._last_eval >= policy.BIG_JUMP_S
            for name in self._order:
                self._tick_job(self.jobs[name], now, downtime)
        self._first_step = False
        self._last_eval = now
        self._evaluate_waiting(now)
        for run in [r for r in self.runs if r.state == "delayed" and r.start_at is not None and r.start_at <= now]:
            self._launch(run)

    def _settle_next_ticks(self, now: float) -> None:
        """Each job that just ran its tick gets its next one: the first after `now` (as
        policy.due_ticks would find it). A reload in between already set a new one."""
        unsettled, self._unsettled = self._unsettled, {}
        after = utc(now)
        for name, tick in unsettled.items():
            job = self.jobs.get(name)
            if job is not None and self.next_tick.get(name) == tick:
                self.next_tick[name] = schedule.next_fire(job.schedule, max(tick, after), job.tz)

    def next_wake(self, now: float) -> float:
        """Seconds until step() has something to do (capped at MAX_SLEEP_S)."""
        due = [t.timestamp() for t in self.next_tick.values() if t is not None] if not self.stopping else []
        due += [r.deadline.timestamp() for r in self.runs if r.state == "waiting" and r.deadline]
        due += [r.start_at for r in self.runs if r.state == "delayed" and r.start_at is not None]
        return max(0.0, min([MAX_SLEEP_S + now, *due]) - now)

    def _tick_job(self, job: JobSpec, now: float, downtime: bool) -> None:
        if job.name in self._unsettled:
            self._settle_next_ticks(now)
        tick = self.next_tick.get(job.name)
        if not downtime and tick is not None and tick.timestamp() <= now < tick.timestamp() + TICK_SPACING_S:
            # The common case, exactly one tick due: start it first and find the next tick after
            # the spawns (_settle_next_ticks); croniter's ~0.1 ms per job is off the start path.
            self._unsettled[job.name] = tick
            self._new_tick(job, tick, Trigger.SCHEDULE, now)
            return
        due = policy.due_ticks(lambda t: schedule.next_fire(job.schedule, t, job.tz),
                               next_tick=self.next_tick.get(job.name), now=now, downtime=downtime)
        self.next_tick[job.name] = due.next_tick
        if due.missed:
            self._record_missed(job, due, now)
            if job.options.catch_up is CatchUp.LAST:
                self._new_tick(job, due.missed[-1], Trigger.CATCH_UP, now)
        if due.run is not None:
            self._new_tick(job, due.run, Trigger.SCHEDULE, now)

    def _record_missed(self, job: JobSpec, due: policy.DueTicks, now: float) -> None:
        reason = policy.missed_reason(due.missed_total, len(due.missed))
        handled = self._ticks.record([(job.name, due.missed[-1].timestamp())])

        def write(ids: Ids) -> None:  # the rows, the tick they handle and their alert: all or nothing
            self.history.kv_set_many(handled)
            records = []
            for tick, run_id in zip(due.missed, ids, strict=True):
                records.append(self.history.record_not_run(job=job.name, status=RunStatus.MISSED, trigger=Trigger.SCHEDULE,
                                                     scheduled_at=tick.timestamp(), tz=job.tz, at=now, reason=reason,
                                                     run_id=run_id))
            self.bus.publish(events.TicksMissed(job=job, records=tuple(records), total=due.missed_total))

        self.store.write(write, lambda _: None, ids=len(due.missed), what=f"{len(due.missed)} missed tick(s) of job {job.name}")
        log.warning("job %s: %d tick(s) missed (%s)", job.name, due.missed_total, reason)

    def _reboot_jobs(self, now: float) -> None:
        """@reboot runs once per boot per state dir (ticks.reboot_due)."""
        for name in reboot_due(self.store, [job.name for job in self.jobs.values() if job.schedule.reboot]):
            self._new_tick(self.jobs[name], utc(now), Trigger.REBOOT, now)

    def _new_tick(self, job: JobSpec, tick: datetime, trigger: Trigger, now: float) -> None:
        """A tick of a job is due: overlap policy, then wait for upstreams or start."""
        mine = self._job_runs(job.name)
        active = [r for r in mine if r.state in ("waiting", "delayed", "active")]
        queued = any(r.state == "queued" for r in mine)
        action = policy.overlap_action(job.options.overlap, active=bool(active), queued=queued)
        if action is policy.OverlapAction.SKIP:
            ids = ", ".join(str(r.run_id) for r in active if r.run_id) or "?"
            self._not_run(Run(job, tick, trigger), RunStatus.SKIPPED, f"previous run {ids} still running", now)
            return
        run = Run(job, tick, trigger, jitter=job.options.jitter)
        self._add(run)
        if action is policy.OverlapAction.QUEUE:
            run.state = "queued"
            log.info("job %s: tick %s queued behind run %s", job.name, tick.isoformat(), active[0].run_id)
            return
        if action is policy.OverlapAction.REPLACE:
            run.replaces = active
        self._admit(run, now)

    def _admit(self, run: Run, now: float) -> None:
        if run.job.options.after:
            run.state = "waiting"
            run.deadline = dagrun.wait_deadline(run.job, run.tick)
            self.wake()
        else:
            self._launch(run)

    def _evaluate_waiting(self, now: float) -> None:
        now_dt = utc(now)
        for run in [r for r in self.runs if r.state == "waiting"]:
            ups = dagrun.upstream_states(run.job, run.tick, self.store, self._in_flight)
            decision = dagrun.decide(run.job, ups, now=now_dt, deadline=run.deadline or now_dt)
            if decision.verdict == "run":
                self._launch(run)
            elif decision.verdict == "skip":
                self._not_run(run, RunStatus.SKIPPED, decision.reason, now)
            elif decision.verdict == "upstream_failed":
                self._not_run(run, RunStatus.UPSTREAM_FAILED, decision.reason, now)

    def _in_flight(self, name: str, tick: datetime) -> bool:
        return any(r.tick <= tick and r.state != "done" for r in self._job_runs(name))

    def _not_run(self, run: Run, status: RunStatus, reason: str | None, now: float) -> None:
        handled = self._handled([run])

        def write(ids: Ids) -> RunRecord:  # the row, the tick it handles and its alert: all or nothing
            if handled:
                self.history.kv_set_many(handled)
            record: RunRecord = self.history.record_not_run(job=run.job.name, status=status, trigger=run.trigger,
                                                 scheduled_at=run.tick.timestamp(), tz=run.job.tz, at=now, reason=reason,
                                                 run_id=ids[0])
            self.bus.publish(events.RunNotRun(job=run.job, record=record))
            return record

        def draft(ids: list[int]) -> RunRecord:
            return draft_record(run_id=ids[0], job=run.job.name, attempt=1, status=status, trigger=run.trigger,
                                scheduled_at=run.tick, started_at=None, ended_at=utc(now), reason=reason,
                                host=getattr(self.history, "host", None))

        record = self.store.write(write, draft, ids=1, final=True, what=f"{status} run of job {run.job.name}: {reason}")
        log.log(_level(status), "job %s: run %d %s: %s", run.job.name, record.run_id, status, reason)
        run.run_id = record.run_id
        self._finish(run, record)

    def _drop(self, run: Run) -> None:
        run.state = "done"
        if self.runs.pop(run, False) is None:
            self._by_job[run.job.name].remove(run)
        run.done.set()

    # ---- manual triggers -----------------------------------------------------------------

    def trigger(self, name: str, *, force: bool = False) -> Run:
        """Run a job now (trigger=manual), as its overlap= and after= allow (chain.check_manual;
        TriggerRefused otherwise, unless `force`). The run's `chain` streams its events and
        those of the downstream runs it causes. Its first history row exists when this returns,
        unless it is queued behind a running one (overlap=queue)."""
        from cronplus.engine.chain import Chain, check_manual

        job = self.jobs[name]
        now = self.clock.time()
        in_flight = [r for r in self._job_runs(name) if r.state in ("waiting", "delayed", "active")]
        admission = check_manual(job, in_flight=in_flight, running=self._job_runs, force=force,
                                 last_final=lambda up: self.store.last_final_run(up, at_or_before=now))
        run = Run(job, utc(now), Trigger.MANUAL)
        Chain(run, notes=admission.notes).add(run)
        self._add(run)
        if admission.overlap == policy.OverlapAction.QUEUE:
            run.state = "queued"
            return run
        if admission.overlap == policy.OverlapAction.REPLACE:
            run.replaces = in_flight
        run.state = "active"
        self._start_now(run)
        return run

    # ---- run lifecycle ---------------------------------------------------------------------

    def _launch(self, run: Run) -> None:
        """Start a run soon: serve() starts the queued launches right after step(), back to back
        (row, then process, for each; their bookkeeping after all of them); step() without
        serve() starts them at its end.
        A jittered run is first `delayed` to a random instant in [now, now + jitter] on the
        wall clock (step() starts it then): no row until it starts, like cron's own delay."""
        if run.jitter > 0 and run.start_at is None:
            run.start_at = self.clock.time() + self.rng.uniform(0, run.jitter)
            run.state = "delayed"
            self.wake()
            return
        run.state = "active"
        self._launch_queue.append(run)
        if self._driven:
            self.wake()
        elif not self._stepping:
            self._flush_launches()

    def _start_now(self, run: Run) -> None:
        self._start_all([run])

    def _start_all(self, runs: list[Run]) -> None:
        """Rows (one transaction), then processes, synchronously; each run's supervision (a task)
        starts when we yield, so a tick's runs are spawned back to back and their bookkeeping
        comes after."""
        self._spawn_all(runs)
        self._supervise(runs)

    def _spawn_all(self, runs: list[Run]) -> None:
        self._insert(runs)
        for run in runs:
            run.spawned = self._spawn(run)
        self._record_pids(runs)

    def _supervise(self, runs: list[Run]) -> None:
        loop = asyncio.get_running_loop()
        for run in runs:
            run.task = loop.create_task(self._execute(run), name=f"run-{run.job.name}")

    def _record_pids(self, runs: list[Run]) -> None:
        """The chunk's pids, one commit, right after its spawns (the restart sweep finds a run's
        processes by their environment, leftovers.py; the pid is for `cronplus log`)."""
        pids = [(run.run_id, run.spawned.pid) for run in runs
                if run.run_id is not None and run.spawned is not None and run.spawned.pid is not None]
        try:
            self.store.write(lambda _: self.history.set_pids(pids), lambda _: None,
                             what=lambda: f"pids of {len(pids)} run(s)", own_transaction=True)
        except Exception:  # the processes run and are supervised; only the pid column misses them
            log.exception("recording the pids of %d run(s) failed", len(pids))

    def supervise_spawned(self) -> None:
        """Give every run _launch_queued spawned a task now (shutdown: every run ends recorded)."""
        runs, self._unsupervised = list(self._unsupervised), deque()
        self._supervise(runs)

    def _spawn(self, run: Run) -> runner.Spawned:
        assert run.run_id is not None and run.log_path is not None
        return runner.spawn_attempt(run.job, run_id=run.run_id, attempt=run.attempt, scheduled_at=run.tick,
                                    log_path=run.log_path, system=self.crontab.system, clock=self.clock)

    def _flush_launches(self) -> None:
        while self._launch_queue:
            self._start_all(self._next_chunk())

    def _next_chunk(self, queue: deque[Run] | None = None) -> list[Run]:
        queue = self._launch_queue if queue is None else queue
        return [queue.popleft() for _ in range(min(INSERT_CHUNK, len(queue)))]

    async def _launch_queued(self) -> None:
        """Start every queued run: rows and spawns chunk by chunk, with a yield to the loop after
        each chunk, so that the control socket, signals and the watchdog are served during a
        2,000-job tick (without it `cronplus jobs` waited for the whole tick, ~12 s).
        A yield runs whatever is ready, so the runs' tasks (start log line and alert, supervision)
        are created a chunk per yield only after the spawns: their bookkeeping must not hold back
        the spawns of a big fan-out, nor, all at once, the loop. Once the spawns have gone on for
        LAUNCH_SLICE_S, a chunk of tasks goes with each chunk of spawns, oldest first, so that
        no run waits for its supervision much longer than that."""
        slice_end = time.monotonic() + LAUNCH_SLICE_S
        while self._launch_queue or self._unsupervised:
            if self._launch_queue:
                runs = self._next_chunk()
                self._spawn_all(runs)
                self._unsupervised.extend(runs)
            if not self._launch_queue or time.monotonic() >= slice_end:
                self._supervise(self._next_chunk(self._unsupervised))
            await asyncio.sleep(0)

    def _insert(self, runs: list[Run]) -> None:
        now = self.clock.time()
        starts = []
        for run in runs:
            job = run.job
            run.started_at = now
            starts.append(RunStart(job=job.name, attempt=run.attempt,
                                   trigger=run.attempt_trigger,
                                   scheduled_at=run.tick.timestamp(), tz=job.tz, started_at=now, owner=self.owner,
                                   log_path=functools.partial(self._log_path_text, job)))
        handled = self._handled([run for run in runs if run.attempt == 1])  # written with the rows
        for run, run_id in zip(runs, self.store.start_runs(starts, kv=handled), strict=True):
            run.run_id = run_id
            run.log_path = self._log_path(run.job, run_id)
            self._replace_older(run)

    def _handled(self, runs: list[Run]) -> list[tuple[str, str]]:
        """The kv entries saying these runs' ticks are handled (ticks.py): written with their rows."""
        return (self._ticks.record((run.job.name, run.tick.timestamp()) for run in runs if run.trigger in TICK_TRIGGERS)
                + reboot_ran(run.job.name for run in runs if run.trigger is Trigger.REBOOT))

    def _replace_older(self, run: Run) -> None:
        for old in run.replaces:
            if old.state == "delayed":  # jittered, not started: it never runs
                self._not_run(old, RunStatus.SKIPPED, f"replaced by run {run.run_id}", run.started_at)
            elif old.state == "active" and not old.cancel.is_set():
                old.cancel_reason = f"replaced by run {run.run_id}"
                old.cancel.set()
        run.replaces = []

    def _log_path(self, job: JobSpec, run_id: int) -> Path:
        return runner.log_path_for(self.log_dir, job.name, run_id)

    def _log_path_text(self, job: JobSpec, run_id: int) -> str:
        return str(self._log_path(job, run_id))

    async def _execute(self, run: Run) -> None:
        try:
            while True:
                if run.run_id is None:
                    self._insert([run])
                retry_in = await self._attempt(run)
                if retry_in is None:
                    return
                if await self._sleep(run, retry_in):
                    return self._abandon_retry(run)
                run.attempt += 1
                run.run_id = None
        except Exception:  # a bug must not take the supervisor down; the row stays `running`
            log.exception("job %s: run %s crashed in the supervisor", run.job.name, run.run_id)
            if run.spawned is not None:
                run.spawned.abandon()
            self._drop(run)
            if run.chain is not None:  # a `trigger --wait` must not hang on it
                run.chain.ended(run, None)
        finally:
            self.wake()

    def _abandon_retry(self, run: Run) -> None:
        """The retry will not happen (shutdown, replaced): the ended attempt is the run's final row."""
        assert run.run_id is not None
        why = self.stop_reason if self.stopping or not run.cancel_reason else run.cancel_reason
        run_id, ended = run.run_id, run.record

        def write(_: Ids) -> RunRecord:  # the final row and its alert: all or nothing
            record: RunRecord = self.history.mark_final(run_id, f"retry abandoned: {why}")
            self.bus.publish(events.RunEnded(job=run.job, record=record, will_retry=False))  # its failure alert was held for the retry
            return record

        def draft(_: list[int]) -> RunRecord:
            assert ended is not None
            reason = f"{ended.reason}; retry abandoned: {why}" if ended.reason else f"retry abandoned: {why}"
            return dataclasses.replace(ended, reason=reason)

        record = self.store.write(write, draft, final=True, what=f"run {run_id} of job {run.job.name}: retry abandoned")
        log.info("job %s: run %d final, retry abandoned: %s", run.job.name, run.run_id, why)
        self._finish(run, record)

    async def _sleep(self, run: Run, seconds: float) -> bool:
        """Retry wait; True when cancelled (replace, shutdown) meanwhile."""
        run.sleeping = True
        try:
            await asyncio.wait_for(run.cancel.wait(), timeout=seconds)
            return True
        except TimeoutError:
            return self.stopping
        finally:
            run.sleeping = False

    async def _attempt(self, run: Run) -> float | None:
        """One attempt; returns the delay before a retry, or None when the run is final."""
        job, run_id = run.job, run.run_id
        assert run_id is not None
        recorded = run.spawned is not None  # the first attempt: spawned, pid recorded by _start_all
        spawned = run.spawned or self._spawn(run)
        run.spawned = None
        try:
            def started(_: Ids) -> None:  # the pid and a start ping: one commit
                if spawned.pid is not None and not recorded:
                    self.history.set_pid(run_id, spawned.pid)
                self.bus.publish(events.RunStarted(job=job, spawned_at=spawned.started, record=RunRecord(  # what the row holds
                    run_id=run_id, job=job.name, attempt=run.attempt, status=RunStatus.RUNNING,
                    trigger=run.attempt_trigger, scheduled_at=run.tick,
                    started_at=utc(run.started_at), ended_at=None, exit_code=None, log_path=str(run.log_path),
                    pid=spawned.pid, host=getattr(self.history, "host", None))))

            self.store.write(started, lambda _: None, what=f"pid of run {run_id} of job {job.name}")
            log.info("job %s: run %d started (attempt %d, %s)", job.name, run_id, run.attempt, run.attempt_trigger)
        except BaseException:
            spawned.abandon()
            raise
        result = await runner.supervise(spawned, cancel=run.cancel)
        out = policy.outcome(result, job.options, cancel_reason=run.cancel_reason, cancel_status=run.cancel_status)
        if result.output_error:  # the status stays what the job did; the record says its output is lost
            out = dataclasses.replace(out, reason="; ".join(filter(None, (out.reason, result.output_error))))
        retry = policy.will_retry(out, run.attempt, job.options) and not self.stopping
        ended = result.ended_at or self.clock.time()

        def write(_: Ids) -> RunRecord:  # the run's end and its alerts: both or neither, even across a kill -9
            record: RunRecord = self.history.finish_run(run_id, status=out.status, ended_at=ended, exit_code=result.exit_code,
                                             signal=result.signal, reason=out.reason, final=not retry)
            self.bus.publish(events.RunEnded(job=job, record=record, will_retry=retry))
            return record

        def draft(_: list[int]) -> RunRecord:
            return draft_record(run_id=run_id, job=job.name, attempt=run.attempt, status=out.status,
                                trigger=run.attempt_trigger, scheduled_at=run.tick, started_at=utc(run.started_at),
                                ended_at=utc(ended), exit_code=result.exit_code, log_path=str(run.log_path),
                                pid=result.pid, reason=out.reason, signal=result.signal,
                                host=getattr(self.history, "host", None))

        record = self.store.write(write, draft, final=not retry, what=f"end of run {run_id} of job {job.name}: {out.status}")
        duration = ended - result.started_at if result.started_at else 0.0
        log.log(_level(out.status), "job %s: run %d %s in %.3fs%s", job.name, run_id, out.status, duration,
                f": {out.reason}" if out.reason else "")
        if retry:
            run.record = record  # the ended attempt, until the next one (_abandon_retry drafts from it)
            delay = policy.retry_delay(run.attempt, job.options)
            log.info("job %s: retry %d of %d in %gs", job.name, run.attempt, job.options.retries, delay)
            if run.chain is not None:
                run.chain.retry(run, record, delay)
            return delay
        self._finish(run, record)
        return None

    def _finish(self, run: Run, record: RunRecord) -> None:
        """A run is final: release a queued tick, fan a manual chain out downstream."""
        run.record = record
        self._drop(run)
        now = self.clock.time()
        name = run.job.name
        queued = [r for r in self._job_runs(name) if r.state == "queued"]
        busy = any(r.state in ("waiting", "active") for r in self._job_runs(name))
        if queued and not busy and not self.stopping and name in self.jobs:  # not a job just removed
            self._admit(queued[0], now)
        if run.chain is not None:
            if not self.stopping:
                for down in dagrun.downstream_of(self.crontab.jobs, run.job.name):
                    if not any(r.tick == run.tick for r in self._job_runs(down.name)):
                        child = Run(down, run.tick, Trigger.MANUAL)
                        run.chain.add(child)
                        self._add(child)
                        self._admit(child, now)
            run.chain.ended(run, record)  # after the fan-out: the chain is whole
        self.wake()

    # ---- the driver ----------------------------------------------------------------------

    def wake(self) -> None:
        self._event.set()

    async def serve(self) -> None:
        """Step, sleep until the next due instant or a wake(); until shutdown() is called."""
        self._driven = True
        try:
            await self._serve()
        finally:
            self._driven = False
            self.supervise_spawned()
            self._flush_launches()

    async def _serve(self) -> None:
        while not self.stopping:
            self._event.clear()
            now = self.clock.time()
            self.step(now)
            await self._launch_queued()
            self._settle_next_ticks(now)
            self.bus.publish(events.Stepped(now=now))  # after-commit subscribers: the daemon's STATUS=
            try:
                await asyncio.wait_for(self._event.wait(), timeout=policy.approach(self.next_wake(self.clock.time())))
            except TimeoutError:
                pass

    def idle(self) -> bool:
        return not self.runs

    async def wait_idle(self) -> None:
        while self.runs:
            await asyncio.gather(*(r.done.wait() for r in list(self.runs)))

    async def shutdown(self, grace: float, reason: str = "supervisor shutdown") -> None:
        """Stop starting runs; record the ones that will not start; give active ones `grace`
        seconds, then cancel them (interrupted, `reason`). See cronplus.engine.shutdown."""
        from cronplus.engine.shutdown import shutdown

        await shutdown(self, grace, reason)
