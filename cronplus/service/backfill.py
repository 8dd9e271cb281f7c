"""`cronplus backfill` on the service side: the control-socket request and its answers (used by
service/commands.py's facade), and the in-process backfill when no supervisor runs.

Request (control.py's protocol): {"cmd": "backfill", "job": NAME, "from": UNIX, "to": UNIX,
"parallel": N, "rerun": bool, "yes": bool} -> {"ok": true, "job", "from", "to", "total" (ticks to
run), "already_done" (skipped: already successful), "parallel"}, then engine/backfill.py's events
(chain "ended"/"retry" events, "progress" events: at most 10 a second plus the last), then
{"done": true, ...summary}.
Refused: {"ok": false, "error", "suggestion"} for an unknown job (did-you-mean), {"ok": false,
"error", "invalid": true} for a bad range or one that needs --yes (nothing ran).

In-process (`backfill_in_process`, as intrigger.trigger_in_process): the same Scheduler, store,
runner and alerts without ticks; SIGINT/SIGTERM stop it as a supervisor's shutdown does with no
grace (runs under way are cancelled and recorded `interrupted`, ticks not started stay to do:
the same call resumes), raising BackfillInterrupted (exit 128 + the signal number).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cronplus.errors import UsageError
from cronplus.service.stopsignals import StoppedBySignal, StopSignals

if TYPE_CHECKING:
    from cronplus.engine.backfill import Backfill, Plan
    from cronplus.engine.scheduler import Scheduler
    from cronplus.model import Crontab
    from cronplus.paths import Paths


@dataclass(frozen=True, kw_only=True)
class BackfillRefusal:
    """Nothing ran: an unknown job (with the closest name), or a bad request (`invalid`)."""

    error: str
    suggestion: str | None = None
    invalid: bool = False

    def to_json(self) -> dict[str, Any]:
        if self.invalid:
            return {"ok": False, "error": self.error, "invalid": True}
        return {"ok": False, "error": self.error, "suggestion": self.suggestion}


@dataclass(frozen=True, kw_only=True)
class BackfillStarted:
    backfill: Backfill

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, **self.backfill.plan.to_json(), "parallel": self.backfill.parallel}


@dataclass(frozen=True, kw_only=True)
class BackfillRequest:
    job: str
    start: float
    end: float
    parallel: int = 1
    rerun: bool = False
    yes: bool = False

    @classmethod
    def from_json(cls, req: dict[str, Any]) -> BackfillRequest:
        """The socket's request; UsageError (one line) for a missing or mistyped field."""
        start, end, parallel = req.get("from"), req.get("to"), req.get("parallel", 1)
        if (not isinstance(start, int | float) or not isinstance(end, int | float)
                or isinstance(start, bool) or isinstance(end, bool)):
            raise UsageError("backfill needs 'from' and 'to' as Unix seconds")
        if not isinstance(parallel, int) or isinstance(parallel, bool):
            raise UsageError("backfill's 'parallel' must be an integer")
        return cls(job=str(req.get("job")), start=float(start), end=float(end), parallel=parallel,
                   rerun=bool(req.get("rerun")), yes=bool(req.get("yes")))

    def to_json(self) -> dict[str, Any]:
        return {"cmd": "backfill", "job": self.job, "from": self.start, "to": self.end, "parallel": self.parallel,
                "rerun": self.rerun, "yes": self.yes}


def prepare(sched: Scheduler, request: BackfillRequest) -> BackfillStarted | BackfillRefusal:
    """Check the request against the scheduler's crontab and history, and make the Backfill
    (nothing starts until its events are read)."""
    from cronplus.engine.backfill import Backfill, check_range, plan
    from cronplus.service.control import suggest

    job = sched.jobs.get(request.job)
    if job is None or sched.stopping:
        error = "supervisor is stopping" if sched.stopping else f"no job named '{request.job}'"
        return BackfillRefusal(error=error, suggestion=suggest(request.job, list(sched.jobs)))
    try:
        if request.parallel < 1:
            raise UsageError(f"--parallel must be at least 1, not {request.parallel}")
        check_range(job, request.start, request.end, yes=request.yes)
    except UsageError as exc:
        return BackfillRefusal(error=str(exc), invalid=True)
    the_plan: Plan = plan(job, sched.history, request.start, request.end, rerun=request.rerun)
    return BackfillStarted(backfill=Backfill(sched, the_plan, parallel=request.parallel))


class BackfillInterrupted(StoppedBySignal):
    """An in-process backfill got SIGINT/SIGTERM: what ran is recorded; exit 128 + signum."""


def backfill_in_process(paths: Paths, crontab: Crontab, request: BackfillRequest, *, owner: str,
                        on_started: Callable[[dict[str, Any]], None] | None = None,
                        on_event: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """No supervisor: run the backfill here (`crontab` has the job: the caller checked); returns
    its done message. Raises UsageError before anything runs, BackfillInterrupted on a signal."""
    from cronplus.alerts.alerting import Alerting
    from cronplus.alerts.delivery import DeliveryWorker
    from cronplus.engine.backfill import check_range
    from cronplus.engine.scheduler import Scheduler
    from cronplus.rundir import outputs_dir_of
    from cronplus.store.open import open_writer

    job = crontab.job(request.job)
    assert job is not None
    check_range(job, request.start, request.end, yes=request.yes)  # before the store is opened

    async def main() -> dict[str, Any]:
        history = open_writer(paths.db)
        worker = DeliveryWorker(paths.db)
        try:
            scheduler = Scheduler(crontab, history=history, alerting=Alerting(history, wake=worker.wake),
                                  log_dir=paths.log_dir, owner=owner, scheduling=False,
                                  outputs_dir=outputs_dir_of(paths))
            answer = prepare(scheduler, request)
            if isinstance(answer, BackfillRefusal):
                scheduler.store.close()
                raise UsageError(answer.error)
            if on_started is not None:
                on_started(answer.to_json())
            return await _drive(scheduler, answer.backfill, worker, on_event)
        finally:
            worker.stop(timeout=5.0)
            history.close()

    return asyncio.run(main())


async def _drive(scheduler: Scheduler, backfill: Backfill, worker: Any,
                 on_event: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    signals = StopSignals(loop)
    final: dict[str, Any] = {}

    async def follow() -> None:
        async for event in backfill.events():
            if event.get("done"):
                final.update(event)
            elif on_event is not None:
                on_event(event)

    serve = loop.create_task(scheduler.serve())
    worker.start()
    following = loop.create_task(follow())
    stopped = loop.create_task(signals.event.wait())
    try:
        await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if signals.got:  # Ctrl-C / SIGTERM: a supervisor's shutdown without grace; every run ends recorded
            await scheduler.shutdown(0.0, f"backfill stopped by {signals.name()}")
            await following  # the chains under way are final now: their events are out
        await following
    finally:
        stopped.cancel()
        signals.remove()
        scheduler.stopping = True
        scheduler.wake()
        await serve
        scheduler.store.close()
    if signals.got:
        raise BackfillInterrupted(signals.got[0], final)
    return final
