"""The supervisor's side of `queue=` (docs/workers.md) wired into `cronplus run` (daemon.py calls these):

* `executor(...)`: the scheduler's executor: engine/celeryexec.RoutedExecutor over the local
  one. Celery is imported only when the crontab has a `queue=` job (at start or a reload).
* `check(executor, crontab)`: a `queue=` job with no `--broker` / CRONPLUS_BROKER: one error
  line naming the job and the option (its attempts fail with the same words).
* `adopt(...)`: before recovery, the remote runs a previous supervisor left `running` become
  this one's (store adopt_remote: recovery does not interrupt them, their workers may still
  run them or the broker still hold them); `await_adopted(scheduler, run_ids)` awaits each and
  records its end (engine/adoptremote.py: policy.outcome with the job's options, RunEnded in the
  same transaction; a failed attempt with retries left is not final: its next attempt follows
  after the retry delay, as any retry). Without a broker nothing is adopted: recovery
  interrupts them, as it does local runs.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from cronplus.clock import Clock
from cronplus.engine import adoptremote
from cronplus.engine.celeryexec import RoutedExecutor
from cronplus.engine.local import LocalExecutor
from cronplus.model import Crontab
from cronplus.store.api import HistoryStore

if TYPE_CHECKING:
    from cronplus.engine.scheduler import Scheduler

log = logging.getLogger("cronplus")


def executor(*, history: HistoryStore, broker: str | None, log_dir: Path, outputs_dir: Path,
             clock: Clock) -> RoutedExecutor:
    local = LocalExecutor(log_dir, host=history.host, clock=clock, outputs_dir=outputs_dir)
    return RoutedExecutor(local, history=history, broker=broker, host=history.host, clock=clock)


def check(routed: RoutedExecutor, crontab: Crontab) -> None:
    problem = routed.prepare(crontab)
    if problem:
        log.error("%s", problem)


def adopt(routed: RoutedExecutor, history: HistoryStore, *, owner: str) -> list[int]:
    """The remote runs to await (call `await_adopted` once the loop serves)."""
    if routed.broker is None:
        return []
    run_ids = history.adopt_remote(live_owner=owner)
    if run_ids:
        log.info("awaiting %d run(s) on workers left by the previous supervisor: %s", len(run_ids),
                 ", ".join(map(str, run_ids)))
    return run_ids


def await_adopted(scheduler: Scheduler, run_ids: list[int]) -> list[asyncio.Task[None]]:
    """Await the adopted runs through the scheduler's executor (engine/adoptremote.py): each end
    recorded with its job's options; a failed one with retries left gets its retry here."""
    return adoptremote.await_remote(scheduler, run_ids, owner=scheduler.owner)  # the owner adopt_remote gave them
