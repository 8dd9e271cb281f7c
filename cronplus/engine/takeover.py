"""A cluster's failures, on the scheduler's side (store/leases.py has the SQL, service/heartbeat.py
decides when): taking over the runs of a host that lost its lease, and fencing ourselves when we
lost ours. All on the loop's thread, with the scheduler's writer.

- `take_over(scheduler, hosts, owner) -> Taken | None`: in ONE transaction, the host's row is
  taken (`HostTaker.take`: locked, SKIP LOCKED, so of two takers one acts) and each of its
  `running` rows ends `interrupted` ("host X lost its lease"), fenced on that host's owner id,
  with its RunEnded published in the same transaction (alerting decides there: the failure
  alert, or none yet when a retry follows). A run with retries left (policy.will_retry's
  count: its attempt <= retries=) then gets its next attempt here, after its retry delay, as
  any retry (ADOPT_RETRY -> RETRY_WAIT -> START: a new row, trigger `retry`, claimed like any
  attempt); a job this crontab does not have ends final. A `queue=` run (its attempt on a
  worker, or still in the broker) is not ended: it becomes the taker's (`own`) and is awaited
  through the taker's executor (engine/adoptremote.py), its end recorded and its retries run
  here; only a taker with no broker records it interrupted (its worker, watching the row, then
  kills the job's group).
- `fence(scheduler, why) -> int`: our lease is lost: every RUNNING run is FENCED (its attempt
  killed at once, no row written: the host that took it over recorded it; a `queue=` attempt
  is let go, not cancelled: the taker awaits it on its worker), and every run in its
  retry's wait (its ended row is the lost lease's: the taker retries it). Runs with no row yet
  (waiting, queued, sensing) stay: their rows carry the owner id given by `reown`.
- An ended attempt whose retry is to come keeps its owner (finish_run clears it only on a final
  end), so the host that takes a dead host over also runs the retries it was waiting to run
  (after what is left of their delay).
- `reown(scheduler, owner)`: the owner id the scheduler's rows carry from now on (a new lease).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from cronplus.engine import adoptremote, events
from cronplus.engine.adoptremote import adopt_retry
from cronplus.engine.runstate import Event, Kind, RunState
from cronplus.status import RunStatus
from cronplus.store.leases import Taken

if TYPE_CHECKING:
    from cronplus.engine.scheduler import Scheduler
    from cronplus.model import RunRecord

log = logging.getLogger("cronplus")


class HostTaker(Protocol):
    def take(self, owner: str, *, taker: str) -> Taken | None: ...
    def own(self, run_ids: list[int], owner: str) -> None: ...


def take_over(scheduler: Scheduler, hosts: HostTaker, owner: str) -> Taken | None:
    """Take the runs of `owner`, a host past its lease (see the module docstring)."""
    history, now = scheduler.history, scheduler.clock.time()
    retries: list[RunRecord] = []
    with history.transaction():
        taken = hosts.take(owner, taker=scheduler.owner)
        if taken is None:
            return None
        reason = f"host {taken.host} lost its lease"
        remote = [row for row in taken.running if row.queue is not None and adoptremote.can_await(scheduler)]
        hosts.own([row.run_id for row in remote], scheduler.owner)  # its worker runs it (or the broker holds it): ours to await
        for row in [row for row in taken.running if row not in remote]:
            job = scheduler.jobs.get(row.job)
            retry = job is not None and row.scheduled_at is not None and row.attempt <= job.options.retries
            record = history.finish_run(row.run_id, status=RunStatus.INTERRUPTED, ended_at=now, exit_code=None,
                                        reason=reason, final=not retry, owner=owner)
            if job is not None:  # RunEnded names the job's spec (its alert settings): one this crontab has
                scheduler.bus.publish(events.RunEnded(job=job, record=record, will_retry=retry, backfill=events.from_backfill(record)))
            if retry:
                retries.append(record)
        hosts.own([record.run_id for record in retries], scheduler.owner)
        waiting = [record for record in taken.retrying if _retry_here(scheduler, record)]  # its retries' waits
        for record in taken.retrying:
            if record not in waiting:  # a job this crontab does not have: its run ends final
                history.mark_final(record.run_id, f"retry abandoned: host {taken.host} lost its lease")
    log.warning("took over host %s (%s, its lease ran out): %d running run(s) recorded interrupted%s%s",
                taken.host, owner, len(taken.running) - len(remote),
                f", {len(remote)} on workers awaited here" if remote else "",
                f", {len(retries) + len(waiting)} retry(ies) to run here" if retries or waiting else "")
    adoptremote.await_remote(scheduler, [row.run_id for row in remote], owner=scheduler.owner)
    for record in retries:
        adopt_retry(scheduler, record, now)
    for record in waiting:
        adopt_retry(scheduler, record, now)
    return taken


def _retry_here(scheduler: Scheduler, record: RunRecord) -> bool:
    return record.job in scheduler.jobs and record.scheduled_at is not None


def fence(scheduler: Scheduler, why: str) -> int:
    """Kill every attempt under way, recording none of them (see the module docstring)."""
    fenced = Event(Kind.FENCED, reason=why)
    running = [run for run in scheduler.runs if run.state is RunState.RUNNING]
    retrying = [run for run in scheduler.runs if run.state is RunState.RETRY_WAIT]
    for run in running + retrying:
        adoptremote.let_go(run)  # a queue= attempt goes on on its worker: the taker awaits it
        scheduler._fire(run, fenced)  # the one place a run's effects are carried out
    log.error("this host lost its lease (%s): %d running job(s) killed, not recorded here, %d pending retry(ies)"
              " dropped (the host that takes its runs over records and retries them)", why, len(running), len(retrying))
    return len(running)


def reown(scheduler: Scheduler, owner: str) -> None:
    """The owner id of the rows the scheduler writes from now on (after a new lease)."""
    scheduler.owner = scheduler.launcher.owner = scheduler.sensors.owner = owner
    scheduler.records.owner = owner
