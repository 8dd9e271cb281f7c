"""Remote (`queue=`) attempts this supervisor did not send but now answers for (docs/workers.md
"Guarantees"): those a previous supervisor left at its restart (service/remotes.adopt) and those
of a host whose lease ran out (engine/takeover.py). Their workers may still run them, or the
broker still hold them: they are awaited through this supervisor's executor, never recorded
`interrupted` while a worker runs them.

- `await_remote(scheduler, run_ids, *, owner)`: one task per run awaiting its result (the
  Celery executor's polling of the row, celeryexec.RoutedExecutor.adopt); at its end, `end`.
- `end(scheduler, run_id, result, *, owner)`: the attempt's end recorded as the scheduler
  records one (policy.outcome with its job's options, RunEnded in the same transaction); a
  failed attempt with retries left (policy.will_retry) is not final, and its next attempt
  follows here after the retry delay (`adopt_retry`). A job the crontab no longer has, a run with no
  tick (scheduled_at NULL) or a supervisor stopping: final. With `owner` (the owner id the rows
  were adopted under), the end is fenced on it: a host that took our runs over when our lease
  ran out awaits and records them itself (RunTaken here: one line, nothing written).
- `adopt_retry(scheduler, record, now)`: a run whose attempt ended (not final) gets its next
  attempt here, after its retry delay counted from that end (Scheduler.adopt: ADOPT_RETRY ->
  RETRY_WAIT); takeover.py uses it for a taken host's retries too.
- `let_go(run)`: our lease is lost (takeover.fence): a remote attempt is not cancelled on its
  worker (the host that took our runs over awaits it); its task ends, nothing is recorded.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from cronplus.engine import events, policy
from cronplus.engine.celeryexec import RemoteAttempt, RoutedExecutor
from cronplus.engine.dagrun import Run
from cronplus.engine.executor import AttemptResult
from cronplus.engine.runstate import Event, Kind
from cronplus.status import RunStatus, Trigger
from cronplus.store.api import RunTaken

if TYPE_CHECKING:
    from cronplus.engine.scheduler import Scheduler
    from cronplus.model import RunRecord

log = logging.getLogger("cronplus")


def can_await(scheduler: Scheduler) -> bool:
    """This supervisor has a broker: it can await remote attempts (else they are interrupted)."""
    executor = scheduler.executor
    return isinstance(executor, RoutedExecutor) and executor.broker is not None


def await_remote(scheduler: Scheduler, run_ids: list[int], *, owner: str | None) -> list[asyncio.Task[None]]:
    executor = scheduler.executor
    if not run_ids or not isinstance(executor, RoutedExecutor):
        return []

    def finish(run_id: int, result: AttemptResult) -> None:
        try:
            end(scheduler, run_id, result, owner=owner)
        except RunTaken:
            log.warning("run %d: taken over by another host meanwhile: its end is that host's", run_id)

    return executor.adopt(run_ids, finish)


def end(scheduler: Scheduler, run_id: int, result: AttemptResult, *, owner: str | None) -> None:
    """Record an adopted attempt's end (see the module docstring)."""
    history, now = scheduler.history, scheduler.clock.time()
    record = history.get_run(run_id)
    if record is None or record.status != RunStatus.RUNNING:
        return
    job = scheduler.jobs.get(record.job)
    out = policy.outcome(result, job.options if job is not None else scheduler.crontab.defaults,
                         cancel_reason="supervisor shutdown", cancel_status=RunStatus.INTERRUPTED)
    retry = (job is not None and record.scheduled_at is not None and not scheduler.stopping
             and policy.will_retry(out, record.attempt, job.options))
    with history.transaction():
        if result.outputs:
            history.set_outputs(run_id, result.outputs)
        ended = history.finish_run(run_id, status=out.status, ended_at=result.ended_at, exit_code=result.exit_code,
                                   signal=result.signal, reason=out.reason, final=not retry, owner=owner)
        if job is not None:  # RunEnded names the job's spec (its alert settings): one this crontab has
            scheduler.bus.publish(events.RunEnded(job=job, record=ended, will_retry=retry, backfill=events.from_backfill(ended)))
    log.info("job %s: adopted run %d %s%s%s", record.job, run_id, out.status, f": {out.reason}" if out.reason else "",
             ", its retry follows here" if retry else "")
    if retry:
        adopt_retry(scheduler, ended, now)


def adopt_retry(scheduler: Scheduler, record: RunRecord, now: float) -> None:
    """Its next attempt after the retry delay, counted from the attempt's end."""
    job = scheduler.jobs[record.job]
    assert record.scheduled_at is not None
    trigger = record.trigger if record.attempt == 1 else Trigger.SCHEDULE  # the run's first trigger
    run = Run(job, record.scheduled_at, trigger, attempt=record.attempt, attempt_id=record.run_id, record=record)
    ended = record.ended_at.timestamp() if record.ended_at is not None else now
    delay = max(0.0, ended + policy.retry_delay(record.attempt, job.options) - now)
    scheduler.adopt(run, Event(Kind.ADOPT_RETRY, delay=delay))


def let_go(run: Run) -> bool:
    """A remote attempt's run, fenced: stop awaiting it without cancelling it on its worker."""
    handle = run.handle
    if not isinstance(handle, RemoteAttempt):
        return False
    handle.let_go()
    run.handle = None  # the FENCED run's KILL has nothing to kill: the worker's job goes on
    return True
