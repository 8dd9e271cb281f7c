"""Which ticks of which jobs are due at a wall time: each job's next tick, the ticks missed after
downtime or a big clock jump (policy.due_ticks; recorded `missed`, catch-up=last runs the
newest), @reboot once per boot, and the last tick handled per job (ticks.LastTicks), persisted
with the rows that handle it so a restart never re-runs a tick nor drops one.

`Ticker.due(now)` hands each due tick to `new_tick(job, tick, trigger, now)` (the scheduler's
admission). In the common case, exactly one tick due, the job's next tick is found only after
the tick's runs are started (`settle`): croniter's ~0.1 ms per job is off the start path.

Pause (pausing.py, `pauses`, read from the store at start): a paused job's ticks (its own pause
or the global one) are stepped over here, the one check: its next tick advances, nothing runs,
no row is written (not even `missed` after downtime); the newest tick stepped over is kept, and
once the job is resumed, catch-up=last hands that one tick over (trigger catch_up), else it is
only persisted as handled (ticks.LastTicks), so a restart does not see the paused ticks missed.
A host refusing to claim ticks (`refusing`: its clock skewed from a shared database's, or no
lease; service/heartbeat.py) steps over every job's ticks the same way while it refuses.

Pauses made elsewhere (docs/cluster.md): on a shared store `due` first reads the pauses again
(`_reread_pauses`: one kv range read) when some tick is due, so a pause or resume made on
another host, or written by `cronplus pause --db URL` with no supervisor, is obeyed from the
next tick on as if made here (a resume's catch-up=last tick runs then); an idle step reads
nothing. A job newly paused that way: `due` returns True and the scheduler ends its runs not yet
started (`paused_runs`, runstate's PAUSED, as Scheduler.pause); one that started before this
host's next due tick (jitter=, an after= wait released meanwhile) goes on. `pause` reads them
first too, so a job paused elsewhere keeps its first since and by. A read that fails (the
database away) keeps the pauses last known and the tick goes on to the outage path below (its
runs cannot insert their rows: given back, `missed` once it is back). On SQLite nothing is
re-read: a supervisor is the only one on its store, and `cronplus pause` writes the store itself
only under the supervisor lock, that is when no supervisor runs (else it goes through its
control socket).

A shared store's database away (Store.away; engine/outage.py): no tick is handed over and none
is due (the scheduler sleeps until Store.on_back wakes it); a tick whose run could not insert its
row is given back (`unhandled`). The first `due` once it is back takes every tick that fell
meanwhile as downtime: recorded `missed` once (one TicksMissed alert), catch-up=last runs the
newest, as after a supervisor's downtime.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from cronplus.crontab import schedule
from cronplus.crontab.runon import runs_here
from cronplus.engine import policy
from cronplus.engine.dagrun import Run, utc
from cronplus.engine.pausing import Pauses
from cronplus.engine.records import Records
from cronplus.engine.ticks import LastTicks, reboot_due, reboot_ran, reboot_scope
from cronplus.model import JobSpec
from cronplus.status import CatchUp, Trigger
from cronplus.store.storeguard import Store

TICK_SPACING_S = 60.0  # distinct ticks are distinct minutes: never closer than this
TICK_TRIGGERS = (Trigger.SCHEDULE, Trigger.CATCH_UP)  # the runs that handle a job's tick (ticks.LastTicks)

log = logging.getLogger("cronplus")

NewTick = Callable[[JobSpec, datetime, Trigger, float], None]


class Ticker:
    def __init__(self, store: Store, records: Records, *, clock_start: float, scheduling: bool) -> None:
        self.store = store
        self.records = records
        self.scheduling = scheduling  # False: `cronplus trigger` without a supervisor (no ticks at all)
        self.jobs: dict[str, JobSpec] = {}
        self.order: list[str] = []
        self.next_tick: dict[str, datetime | None] = {}
        self.last = LastTicks(store)
        self._started = clock_start
        self._last_eval: float | None = None
        self._first = True
        self._unsettled: dict[str, datetime] = {}  # job -> tick it just ran; next tick not yet computed
        self.pauses = Pauses.read(store)
        self.paused_tick: dict[str, datetime] = {}  # job -> newest tick stepped over while paused
        self.refusing: str | None = None  # why this host claims no tick now (service/heartbeat.py: clock skew, no lease)
        self.outage = False  # a shared store's database was away: its ticks are missed when it is back (outage.py)
        # a cluster (engine/claims.py): run-on=HOST jobs of another host are not scheduled here at all
        self.host, shared = store.history.host, store.history.shared
        self.reboot_scope = reboot_scope(self.host, shared=shared)  # each host's @reboot is its own

    def install(self, jobs: dict[str, JobSpec], order: list[str], now: float, *, initial: bool) -> None:
        old = self.jobs
        self.jobs, self.order = jobs, order
        next_tick: dict[str, datetime | None] = {}
        for name, job in jobs.items():
            prev = old.get(name)
            if prev is not None and prev.schedule == job.schedule and prev.tz == job.tz:
                next_tick[name] = self.next_tick.get(name)
            else:
                next_tick[name] = self._first_tick(job, now, initial=initial)
        self.next_tick = next_tick
        # A job first seen: its ticks from now on are ours, so one a kill -9 keeps from its rows
        # is seen missed at the next start (ticks.LastTicks).
        baseline = self.last.record([(name, now) for name, job in jobs.items()
                                     if self.scheduling and not job.schedule.reboot and self.last.get(name) is None])
        if baseline:
            self.store.write(lambda _: self.store.history.kv_set_many(baseline), lambda _: None,
                             what=f"first ticks of {len(baseline)} job(s)", own_transaction=True)

    def _first_tick(self, job: JobSpec, now: float, *, initial: bool) -> datetime | None:
        """The first tick not yet done: after the persisted last tick at start (so downtime is
        seen as missed), else after now; never at or before the last tick done."""
        if not self.scheduling or job.schedule.reboot or not runs_here(job.options.run_on, self.host):
            return None
        last = self.last.get(job.name)
        if initial and last is not None:
            return schedule.next_fire(job.schedule, utc(last), job.tz)
        start = max(now, last) if last is not None else now
        return schedule.next_fire(job.schedule, utc(start), job.tz)

    def due(self, now: float, new_tick: NewTick) -> bool:
        """Hand every tick due at `now` to `new_tick`, jobs in dependency order. True: a job is
        paused now by a pause read from the store (another host's): its unstarted runs end."""
        if self.store.away:  # a shared store's database: no run starts without its row (another host may claim it)
            self.outage = True
            return False
        back, self.outage = self.outage, False
        paused = self.store.shared and self._tick_at(now) and self._reread_pauses()  # idle: no read
        if self._first:  # ticks up to our start fell while no supervisor ran: missed
            reboot = [job.name for job in self.jobs.values() if job.schedule.reboot and self.pauses.of(job.name) is None
                      and runs_here(job.options.run_on, self.host)]
            for name in reboot_due(self.store, reboot, self.reboot_scope):
                new_tick(self.jobs[name], utc(now), Trigger.REBOOT, now)  # once per boot per state dir
            for name in self.order:
                self._tick_job(self.jobs[name], min(now, self._started), True, new_tick)
            self._last_eval = min(now, self._started)
        if back:  # the ticks that fell while it was away: missed (catch-up= runs the newest), once
            for name in self.order:
                self._tick_job(self.jobs[name], now, True, new_tick)
        downtime = self._last_eval is not None and now - self._last_eval >= policy.BIG_JUMP_S
        if not downtime and self._nothing_due(now):  # the usual wake-up (a run's end): no job to step
            self.stepped(now)
            return paused
        for name in self.order:
            self._tick_job(self.jobs[name], now, downtime, new_tick)
        self.stepped(now)
        return paused

    def _nothing_due(self, now: float) -> bool:
        """No tick at or before `now` and nothing pending (settle, a pause, a resume): `_tick_job`
        would do nothing for any job. The driver steps at every run's end; a pass over every job
        each time was O(jobs x runs) per tick (a 1,000-job tick: ~8 passes per 500 runs)."""
        if self._unsettled or self.paused_tick or self.pauses.jobs or self.pauses.everything is not None:
            return False
        return not self._tick_at(now)

    def _tick_at(self, now: float) -> bool:
        """Some job's next tick is at or before `now`."""
        return any(tick is not None and tick.timestamp() <= now for tick in self.next_tick.values())

    def _reread_pauses(self) -> bool:
        """The pauses as the shared store has them now (see the module docstring) -> True when a
        job is paused that was not. A failed read leaves them as they were (the store is away)."""
        fresh = Pauses.read(self.store)
        if self.store.away:
            return False
        before, self.pauses = self.pauses, fresh
        paused, resumed = fresh.newly_paused(before), before.newly_paused(fresh)
        if paused:
            log.info("paused on another host or by a command: %s", ", ".join(paused))
        if resumed:
            log.info("resumed on another host or by a command: %s", ", ".join(resumed))
        return bool(paused)

    def stepped(self, now: float) -> None:
        self._first = False
        self._last_eval = now

    def _tick_job(self, job: JobSpec, now: float, downtime: bool, new_tick: NewTick) -> None:
        if job.name in self._unsettled:
            self.settle(now)
        if self.pauses.of(job.name) is not None or self.refusing:  # refusing: stepped over as if paused
            self._step_over(job, now, downtime)
            return
        if job.name in self.paused_tick:
            self._resumed(job, now, new_tick)
        tick = self.next_tick.get(job.name)
        if not downtime and tick is not None and tick.timestamp() <= now < tick.timestamp() + TICK_SPACING_S:
            self._unsettled[job.name] = tick  # the common case: its next tick after the starts (settle)
            new_tick(job, tick, Trigger.SCHEDULE, now)
            return
        due = policy.due_ticks(lambda t: schedule.next_fire(job.schedule, t, job.tz),
                               next_tick=self.next_tick.get(job.name), now=now, downtime=downtime)
        self.next_tick[job.name] = due.next_tick
        if due.missed:
            self.records.missed(job, due, now, self.last.record([(job.name, due.missed[-1].timestamp())]))
            if job.options.catch_up is CatchUp.LAST:
                new_tick(job, due.missed[-1], Trigger.CATCH_UP, now)
        if due.run is not None:
            new_tick(job, due.run, Trigger.SCHEDULE, now)

    def pause(self, names: list[str] | None, by: str, now: float, runs: Iterable[Run]) -> list[Run]:
        """Pause jobs (None: all), persisted at once (pausing.py) -> those of `runs` that handle a
        tick of a job now paused and have not started (the scheduler ends them: PAUSED). A run
        with an ended attempt has started: its retry goes on, even one queued for a pool slot or
        waiting on its sensor (POOLED, SENSING), as one waiting for its delay does."""
        if self.store.shared and not self.store.away:  # a job another host paused keeps its since and by
            self._reread_pauses()
        self._persist(self.pauses.pause(names, by, now), "pause")
        return self.paused_runs(runs)

    def paused_runs(self, runs: Iterable[Run]) -> list[Run]:
        """Those of `runs` that handle a tick of a paused job and have not started (Ticker.pause)."""
        return [run for run in runs if run.trigger in TICK_TRIGGERS and run.record is None
                and self.pauses.of(run.job.name) is not None]

    def resume(self, names: list[str] | None) -> None:
        self._persist(self.pauses.resume(names), "resume")

    def _persist(self, items: list[tuple[str, str]], what: str) -> None:
        if items:
            self.store.write(lambda _: self.store.history.kv_set_many(items), lambda _: None, what=what,
                             own_transaction=True)

    def _step_over(self, job: JobSpec, now: float, downtime: bool) -> None:
        """A paused job: its due ticks pass without a run or a row; the newest is remembered."""
        tick = self.next_tick.get(job.name)
        if tick is None or tick.timestamp() > now:
            return
        due = policy.due_ticks(lambda t: schedule.next_fire(job.schedule, t, job.tz),
                               next_tick=tick, now=now, downtime=downtime)
        self.next_tick[job.name] = due.next_tick
        newest = due.run or (due.missed[-1] if due.missed else None)
        if newest is not None:
            self.paused_tick[job.name] = newest

    def _resumed(self, job: JobSpec, now: float, new_tick: NewTick) -> None:
        """A job resumed since its ticks were stepped over: catch-up=last runs the newest one."""
        tick = self.paused_tick.pop(job.name)
        if job.options.catch_up is CatchUp.LAST:
            new_tick(job, tick, Trigger.CATCH_UP, now)  # its row persists the tick as handled
            return
        self._persist(self.last.record([(job.name, tick.timestamp())]), f"ticks of job {job.name} passed while paused")

    def settle(self, now: float) -> None:
        """Each job that just ran its tick gets its next one: the first after `now` (as
        policy.due_ticks would find it). A reload in between already set a new one."""
        unsettled, self._unsettled = self._unsettled, {}
        after = utc(now)
        for name, tick in unsettled.items():
            job = self.jobs.get(name)
            if job is not None and self.next_tick.get(name) == tick:
                self.next_tick[name] = schedule.next_fire(job.schedule, max(tick, after), job.tz)

    def due_instants(self) -> list[float]:
        if self.store.away:  # nothing is due until it is back (Store.on_back wakes the scheduler)
            return []
        return [t.timestamp() for t in self.next_tick.values() if t is not None]

    def unhandled(self, run: Run) -> None:
        """A tick's run that did not start for want of its row (outage.py): its tick is due again,
        recorded missed once the store is back (catch-up= honoured)."""
        name, tick = run.job.name, run.tick
        if self._unsettled.get(name) == tick:
            del self._unsettled[name]
        current = self.next_tick.get(name)
        if name in self.jobs and (current is None or tick < current):
            self.next_tick[name] = tick
        self.last.forget(name, tick.timestamp())
        self.outage = True

    def handled(self, runs: Iterable[Run]) -> list[tuple[str, str]]:
        """The kv entries saying these runs' ticks are handled (ticks.py): written with their rows."""
        runs = list(runs)
        return (self.last.record((run.job.name, run.tick.timestamp()) for run in runs if run.trigger in TICK_TRIGGERS)
                + reboot_ran((run.job.name for run in runs if run.trigger is Trigger.REBOOT), self.reboot_scope))
