"""The runs one manual trigger set going, and what `cronplus trigger` may start (README "Dependencies and trigger rules",
`overlap`; README "Triggering a job by hand").

* A `Chain` is the triggered run R plus every downstream run created because of R, transitively
  (scheduler._release fans out), retries included. It is an async stream of events, the same for
  the control socket (daemon.py) and the in-process trigger:
  {"event": "retry", **run_json(ended attempt), "delay_s": S} when a retry is scheduled,
  {"event": "ended", **run_json(final record)} when a run of the chain is final, and last
  {"done": true, **run_json(R), "status": WORST}: the shape of the done message before chains,
  but its status is the worst of the chain (`worst`; R's own is in its "ended" event), so a
  client that reads only the last message still exits 1 when a downstream run failed.
* What a manual trigger may start (`check_manual`): a job's `overlap=` holds for a manual run
  too (skip: refused while a run is in flight; queue: queued behind it; replace: replaces it),
  and a job with `after=` runs alone only when its trigger rule accepts the upstreams' latest
  final runs (named in a note); `force` starts it anyway, saying what it overrode.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cronplus.engine.runstate import RunState
from cronplus.errors import CronplusError
from cronplus.model import JobSpec, RunRecord
from cronplus.status import Overlap, RunStatus

if TYPE_CHECKING:
    from cronplus.engine.dagrun import Run

# A chain "failed" when any of its runs ended in one of these (skipped is fine: nothing broke).
BAD = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.UPSTREAM_FAILED, RunStatus.INTERRUPTED,
                 RunStatus.MISSED})
_RANK = {RunStatus.SUCCESS: 0, RunStatus.SKIPPED: 1, RunStatus.MISSED: 2, RunStatus.UPSTREAM_FAILED: 3,
         RunStatus.TIMEOUT: 4, RunStatus.FAILED: 5, RunStatus.INTERRUPTED: 6}
LOST = "the supervisor lost track of this run (see its log)"


def worst(statuses: Sequence[RunStatus]) -> RunStatus:
    return max(statuses, key=lambda s: _RANK.get(s, 6), default=RunStatus.SUCCESS)


class TriggerRefused(CronplusError):
    """A manual trigger the job's overlap= or after= does not allow now (--force overrides)."""


def _json(record: RunRecord | None, run: Run) -> dict[str, Any]:
    from cronplus.store.readhistory import RUN_JSON_KEYS, run_json

    if record is None:  # a run that ended without a record (a bug, logged by the scheduler)
        return {**dict.fromkeys(RUN_JSON_KEYS), "run_id": run.run_id, "job": run.job.name,
                "status": str(RunStatus.INTERRUPTED), "reason": LOST}
    return run_json(record)


@dataclass(eq=False)
class Chain:
    root: Run
    notes: list[str] = field(default_factory=list)  # said when the trigger is accepted
    pending: set[Run] = field(default_factory=set)
    statuses: list[RunStatus] = field(default_factory=list)
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    def add(self, run: Run) -> None:
        run.chain = self
        self.pending.add(run)

    def retry(self, run: Run, record: RunRecord, delay: float) -> None:
        self.queue.put_nowait({"event": "retry", **_json(record, run), "delay_s": delay})

    def ended(self, run: Run, record: RunRecord | None) -> None:
        """`run` is final; called after it fanned out, so the chain is complete when none is pending."""
        if run not in self.pending:
            return
        self.pending.discard(run)
        message = _json(record, run)
        self.statuses.append(RunStatus(message["status"]))
        self.queue.put_nowait({"event": "ended", **message})
        if not self.pending:
            root = _json(self.root.record, self.root)
            self.queue.put_nowait({"done": True, **root, "status": str(worst(self.statuses))})

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every event of the chain, in order, the final `done` message last."""
        while True:
            event = await self.queue.get()
            yield event
            if event.get("done"):
                return


@dataclass(frozen=True, slots=True)
class Admission:
    overlap: str  # policy.OverlapAction value
    notes: list[str]


def check_manual(job: JobSpec, *, in_flight: Sequence[Run], last_final: Callable[[str], RunRecord | None],
                 running: Callable[[str], Sequence[Run]], force: bool) -> Admission:
    """May a manual run of `job` start now? Raises TriggerRefused (one line, naming --force)."""
    from cronplus.engine import policy

    notes: list[str] = []
    action = policy.overlap_action(job.options.overlap, active=bool(in_flight), queued=False)
    ids = ", ".join(str(r.run_id) for r in in_flight if r.run_id is not None)
    what = f"(run {ids})" if ids else "(a run waiting to start)"  # waiting for upstreams, or jitter
    if in_flight and force:
        action = policy.OverlapAction.START
        notes.append(f"job {job.name} is already running {what}: --force starts another")
    elif action is policy.OverlapAction.SKIP:
        raise TriggerRefused(f"job {job.name} is already running {what} and has overlap={job.options.overlap}: "
                             f"not started; use --force to start another")
    elif action is policy.OverlapAction.QUEUE:
        notes.append(f"job {job.name} is running {what}: queued behind it (overlap=queue)")
    elif action is policy.OverlapAction.REPLACE:
        notes.append(f"job {job.name} is running {what}: this run replaces it (overlap=replace)")
    elif in_flight and job.options.overlap is Overlap.ALLOW:
        notes.append(f"job {job.name} is already running {what}: another starts (overlap=allow)")
    if job.options.after:
        notes.extend(_upstream_notes(job, last_final, running, force=force))
    return Admission(str(action), notes)


def _upstream_notes(job: JobSpec, last_final: Callable[[str], RunRecord | None],
                    running: Callable[[str], Sequence[Run]], *, force: bool) -> list[str]:
    """A downstream job triggered alone: the upstream runs it relies on, by its trigger rule."""
    from cronplus.crontab.deps import DepVerdict, evaluate

    said: list[str] = []
    statuses: list[RunStatus | None] = []
    for name in job.options.after:
        busy = [r for r in running(name) if r.state is not RunState.FINAL]
        record = last_final(name)
        if busy:
            statuses.append(None)
            said.append(f"{name} is running (run {busy[0].run_id or 'not started yet'})")
        elif record is None:
            statuses.append(None)
            said.append(f"{name} has no run yet")
        else:
            statuses.append(record.status)
            when = f" (scheduled {record.scheduled_at.isoformat()})" if record.scheduled_at else ""
            said.append(f"{name} run {record.run_id} {record.status}{when}")
    verdict = evaluate(job.options.trigger, statuses)
    rule = f"trigger={job.options.trigger.value}"
    if verdict is DepVerdict.RUN:
        return [f"job {job.name} uses upstream {'; '.join(said)}"]
    if force:
        return [f"job {job.name} runs despite upstream {'; '.join(said)} ({rule}): --force"]
    raise TriggerRefused(f"job {job.name} is after={','.join(job.options.after)} and upstream {'; '.join(said)} "
                         f"({rule}): not started; trigger the upstream job instead, or use --force to run it anyway")
