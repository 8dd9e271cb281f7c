"""The supervisor's side of `queue=` (docs/workers.md) wired into `cronplus run` (daemon.py calls these):

* `executor(...)`: the scheduler's executor: engine/celeryexec.RoutedExecutor over the local
  one. Celery is imported only when the crontab has a `queue=` job (at start or a reload).
* `check(executor, crontab)`: a `queue=` job with no `--broker` / CRONPLUS_BROKER: one error
  line naming the job and the option (its attempts fail with the same words).
* `adopt(...)`: before recovery, the remote runs a previous supervisor left `running` become
  this one's (store adopt_remote: recovery does not interrupt them, their workers may still
  run them or the broker still hold them); each is awaited and its end recorded as recovery
  records one (policy.outcome with the job's options, RunEnded in the same transaction, final:
  no retry follows an adopted attempt). Without a broker nothing is adopted: recovery
  interrupts them, as it does local runs.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from cronplus.clock import Clock
from cronplus.engine import policy
from cronplus.engine.celeryexec import RoutedExecutor
from cronplus.engine.events import Bus, RunEnded
from cronplus.engine.executor import AttemptResult
from cronplus.engine.local import LocalExecutor
from cronplus.model import Crontab
from cronplus.status import RunStatus
from cronplus.store.api import HistoryStore

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


def await_adopted(routed: RoutedExecutor, history: HistoryStore, bus: Bus, run_ids: list[int],
                  crontab: Crontab) -> list[asyncio.Task[None]]:
    jobs = {job.name: job for job in crontab.jobs}

    def finish(run_id: int, result: AttemptResult) -> None:
        record = history.get_run(run_id)
        if record is None:
            return
        job = jobs.get(record.job)
        out = policy.outcome(result, job.options if job is not None else crontab.defaults,
                             cancel_reason="supervisor shutdown", cancel_status=RunStatus.INTERRUPTED)
        with history.transaction():
            if result.outputs:
                history.set_outputs(run_id, result.outputs)
            ended = history.finish_run(run_id, status=out.status, ended_at=result.ended_at, exit_code=result.exit_code,
                                       signal=result.signal, reason=out.reason, final=True)
            if job is not None:
                bus.publish(RunEnded(job=job, record=ended, will_retry=False))
        log.info("job %s: adopted run %d %s%s", record.job, run_id, out.status, f": {out.reason}" if out.reason else "")

    return routed.adopt(run_ids, finish)
