"""Stopping a Scheduler so that every run ends recorded (SPEC: SIGTERM, "a crash never loses a
run's record"). Split out of scheduler.py; `Scheduler.shutdown` delegates here.

* Runs decided but not started (waiting for an upstream, queued behind overlap=queue, delayed by
  jitter, or about to launch) get a final `skipped` not-run row: "<reason> before it could start".
* A run in a retry wait is cancelled: its ended attempt becomes final ("retry abandoned: <reason>",
  Scheduler._abandon_retry).
* Runs still going after `grace` seconds are cancelled (process group SIGTERM, then SIGKILL after
  the job's kill-grace; runner.py) and recorded `interrupted` with `reason`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Protocol

from cronplus.status import RunStatus

if TYPE_CHECKING:
    from cronplus.clock import Clock
    from cronplus.engine.dagrun import Run

log = logging.getLogger("cronplus")

NOT_STARTED = ("waiting", "queued", "delayed")


class Scheduler(Protocol):
    """What shutdown needs of scheduler.Scheduler (whose shutdown() calls it): said here, so that
    this module does not import the one that calls it."""

    stopping: bool
    stop_reason: str
    clock: Clock
    runs: dict[Run, None]
    _launch_queue: deque[Run]

    def wake(self) -> None: ...
    def supervise_spawned(self) -> None: ...
    def _not_run(self, run: Run, status: RunStatus, reason: str | None, now: float) -> None: ...


async def shutdown(sched: Scheduler, grace: float, reason: str = "supervisor shutdown") -> None:
    sched.stopping = True
    sched.stop_reason = reason
    sched.wake()
    sched.supervise_spawned()  # a tick being launched: its runs spawned so far are running
    now = sched.clock.time()
    not_started = f"{reason} before it could start"
    queue, sched._launch_queue = sched._launch_queue, deque()
    for run in queue:  # decided but not started: nothing ran
        sched._not_run(run, RunStatus.SKIPPED, not_started, now)
    for run in list(sched.runs):
        if run.state in NOT_STARTED:
            sched._not_run(run, RunStatus.SKIPPED, not_started, now)
        elif run.sleeping:  # a retry wait: nothing is running, do not start it
            run.cancel.set()
    active = [r.task for r in sched.runs if r.task is not None]
    if active:
        log.info("shutdown: waiting up to %gs for %d run(s)", grace, len(active))
        await asyncio.wait(active, timeout=grace)
    for run in list(sched.runs):
        run.cancel_reason, run.cancel_status = reason, RunStatus.INTERRUPTED
        run.cancel.set()
    rest = [r.task for r in sched.runs if r.task is not None]
    if rest:
        await asyncio.wait(rest)
