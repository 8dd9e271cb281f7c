"""Each tick exactly once across the supervisors of a cluster, without a leader (README "A cluster of supervisors").

Several `cronplus run` with the same crontab and one shared store (PostgreSQL, `--db
postgresql://...`, each with its `--host-id`) each compute every job's due ticks; the store's
unique index on `(job, scheduled_at, attempt, claim)` (schema 4, runs_claim; store/claimed.py)
decides which one acts on each:

* `claim_of(job, trigger, host)`: what a row of a tick claims. A tick's run (schedule, catch-up)
  and its retries claim '' (the cluster's one run of that tick's attempt); @reboot and
  `run-on=all` claim the host id (each host runs its own); manual runs (and the downstream runs
  and retries of a manual chain) claim nothing (NULL). The not-run rows of a tick (skipped,
  upstream_failed, `missed`: missed_claims) claim as its run would, so that a tick is run or
  not run, decided once.
* A row whose claim is already held is not inserted (start_runs gives None, record_not_run
  None): the launcher does not start that attempt (runstate's CLAIMED_ELSEWHERE: FINAL, no row
  of ours), a not-run decision is dropped (no event, no alert: the host that wrote the row
  made them).
* A tick's run not started when its supervisor stops is left to the others (no `skipped` row:
  ClusterView.leaves); a tick no host handles is seen `missed` at the next start (ticks.py).
* `ClusterView`: what the other hosts are running, for the decisions a host makes before it
  claims: overlap= (a previous run of the job on any host counts; queue and replace are left to
  the host that runs it, which queues or replaces in its own scheduler and claims then), after=
  (an upstream run in flight on another host keeps a downstream waiting, and a waiting
  downstream is looked at every POLL_S: an upstream's end on another host wakes nobody here).
  Read from the store (RunReader.unfinished) once per scheduler step, only on a shared store:
  on SQLite this supervisor is the only writer and knows its runs itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from cronplus.crontab.runon import ALL, runs_here
from cronplus.engine.runstate import Kind
from cronplus.model import JobSpec, RunRecord
from cronplus.status import CatchUp, Trigger
from cronplus.store.faults import DatabaseUnavailable

if TYPE_CHECKING:
    from cronplus.engine.dagrun import Run
    from cronplus.store.storeguard import Store

log = logging.getLogger("cronplus")

TICK_CLAIMS = frozenset({Trigger.SCHEDULE, Trigger.CATCH_UP, Trigger.REBOOT})  # the triggers of a tick's runs
MISSED = "/missed"  # appended to the claim of a missed row whose tick a catch-up run runs (missed_claims)
POLL_S = 1.0  # a waiting downstream looks at the other hosts' upstream runs this often
UPSTREAM_GRACE_S = 15.0  # an upstream only another host schedules: its row may come this late after the tick
RETRY_WINDOW_S = 7 * 24 * 3600.0  # a retry pending longer than this no longer holds its job busy


def claim_of(job: JobSpec, trigger: Trigger, host: str) -> str | None:
    """The claim of a row of `job` for a run started by `trigger` (its first attempt's: a retry
    claims as its run does) on the supervisor named `host`; None: it claims nothing."""
    if trigger not in TICK_CLAIMS:
        return None
    return host if trigger is Trigger.REBOOT or job.options.run_on == ALL else ""


def run_claim(run: Run, host: str) -> str | None:
    return claim_of(run.job, run.trigger, host)


def lost(run: Run) -> None:
    log.debug("job %s: tick %s attempt %d claimed by another supervisor", run.job.name, run.tick.isoformat(), run.attempt)


class ClusterView:
    """The other hosts' unfinished runs, read once per step (see the module docstring)."""

    def __init__(self, store: Store, *, host: str, shared: bool) -> None:
        self.store = store
        self.host = host
        self.shared = shared
        self._runs: dict[str, list[RunRecord]] | None = None
        self._now = 0.0

    def forget(self, now: float) -> None:
        """A new step: what the store said is read again when next asked."""
        self._runs, self._now = None, now

    def _other(self) -> dict[str, list[RunRecord]]:
        if self._runs is None:
            self._runs = {}
            try:
                records = self.store.history.unfinished(since=self._now - RETRY_WINDOW_S)
            except DatabaseUnavailable:  # nothing starts meanwhile: no row, no claim (outage.py)
                return self._runs
            for record in records:
                if record.host != self.host:
                    self._runs.setdefault(record.job, []).append(record)
        return self._runs

    def busy(self, job: str) -> list[RunRecord]:
        """Another host's runs of `job` not finished (running, or a retry pending)."""
        return self._other().get(job, []) if self.shared else []

    def overlapping(self, job: JobSpec, trigger: Trigger, mine: Iterable[Run]) -> list[RunRecord]:
        """The other hosts' runs that count for overlap= of a tick of `job`: none for a run each
        host makes its own (@reboot, run-on=all: claim_of gives the host id), busy() else, but
        for `mine` (this supervisor's own runs, whose row may name a worker's host: queue=)."""
        if claim_of(job, trigger, self.host) != "":
            return []
        busy = self.busy(job.name)
        if busy:
            own = {run.attempt_id for run in mine}
            busy = [record for record in busy if record.run_id not in own]
        return busy

    def in_flight(self, job: str, tick: datetime, spec: JobSpec | None) -> bool:
        """Whether another host has a run of upstream `job` (`spec`: None when it is not in the
        crontab) for a tick <= `tick` not finished (after=). An upstream that only another
        host schedules (run-on=HOST) counts in flight for UPSTREAM_GRACE_S after the tick too:
        that host may not have written its row yet, and without it the downstream would be
        found `upstream_failed` ("no run for this tick") or judged by the upstream's previous run."""
        if not self.shared:
            return False
        if spec is not None and not runs_here(spec.options.run_on, self.host) \
                and self._now < tick.timestamp() + UPSTREAM_GRACE_S and not self._ended_at(job, tick):
            return True
        return any(r.scheduled_at is not None and r.scheduled_at <= tick for r in self.busy(job))

    def _ended_at(self, job: str, tick: datetime) -> bool:
        try:
            record = self.store.last_final_run(job, at_or_before=tick.timestamp())
        except DatabaseUnavailable:
            return False
        return record is not None and record.scheduled_at == tick

    def leaves(self, run: Run, kind: Kind) -> bool:
        """A tick's run this supervisor will not start because it stops (STOP, INTERRUPT) is
        left to the other supervisors, without a row: a `skipped` row would hold the tick's
        claim and keep a host that goes on from running it (a rolling restart would drop ticks)."""
        return self.shared and kind in (Kind.STOP, Kind.INTERRUPT) and run_claim(run, self.host) is not None

    def poll(self, now: float, waiting: Iterable[Run]) -> list[float]:
        """When the scheduler must step again for a downstream run waiting on another host."""
        return [now + POLL_S] if self.shared and any(True for _ in waiting) else []


def missed_claims(job: JobSpec, missed: Sequence[datetime], host: str) -> list[str]:
    """The claims of the `missed` rows of these ticks (oldest first). A tick's missed row claims
    it as its run would: a supervisor that starts late (or came back) and finds a tick past
    does not record it missed beside the run of a host that was up (it loses the claim). With
    catch-up=last the last one is also run, by the catch-up run, which claims the tick: its
    missed row claims it with MISSED appended (recorded once too), so both rows are kept, as on a
    single host. A late starter may then write that one missed row beside another host's run of
    the tick (its catch-up run loses): the row says the tick was missed here, not twice run."""
    claim = claim_of(job, Trigger.SCHEDULE, host) or ""
    last = claim + MISSED if job.options.catch_up is CatchUp.LAST else claim
    return [claim] * (len(missed) - 1) + [last] if missed else []
