"""A supervisor's start after one that died (kill -9, OOM kill, crash, power loss), settled
before anything is scheduled and before READY=1:

1. processes of runs history still has `running` are stopped (leftovers.py, bounded);
2. those rows become final `interrupted` (the reason says what was stopped);
3. ended attempts whose retry was pending become final ("retry abandoned: ...").

Every run made final here is published (events.RunEnded, will_retry=False) in the same
transaction as its final write, so its alert decision commits with it, as a run ending under a
live supervisor does (a job gone from the crontab took its alerts with it: not published): a failed
first attempt whose retry died with the supervisor alerts its failure once, not never.
The `interrupted` rows end at the supervisor's clock's now (the Clock the scheduler uses).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from cronplus.clock import Clock, SystemClock
from cronplus.engine import leftovers
from cronplus.engine.events import Bus, RunEnded, from_backfill
from cronplus.model import Crontab, RunRecord

if TYPE_CHECKING:
    from cronplus.store.api import RunWriter

log = logging.getLogger("cronplus")

# A supervisor killed while a retry was pending left the ended attempt non-final; the next start
# makes it final rather than re-running a stale tick.
ABANDONED_AT_START = "retry abandoned: supervisor stopped while the retry was pending"


def recover(history: RunWriter, crontab: Crontab, bus: Bus | None, *, owner: str,
            clock: Clock | None = None) -> None:
    """`clock` (the supervisor's, the system clock by default) says when the runs were interrupted;
    `bus` is the supervisor's, with its alerting subscribed (engine/events.py)."""
    jobs = {job.name: job for job in crontab.jobs}

    def decide(record: RunRecord) -> None:
        job = jobs.get(record.job)
        if job is not None and bus is not None:
            bus.publish(RunEnded(job=job, record=record, will_retry=False, backfill=from_backfill(record)))

    stale = history.stale_running(live_owner=owner)
    started = time.monotonic()
    notes = leftovers.sweep(stale, {name: job.options.kill_grace for name, job in jobs.items()})
    if notes:
        log.info("leftovers of %d run(s) stopped in %.2fs", len(notes), time.monotonic() - started)
    for rec in history.mark_interrupted(live_owner=owner, now=(clock or SystemClock()).time(), notes=notes, on_final=decide):
        log.warning("job %s: run %d interrupted (%s)", rec.job, rec.run_id, rec.reason)
    for rec in history.mark_abandoned_retries(reason=ABANDONED_AT_START, on_final=decide):
        log.warning("job %s: run %d final (%s)", rec.job, rec.run_id, rec.reason)
