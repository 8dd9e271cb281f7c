"""Processes of runs that outlived their supervisor (kill -9, OOM kill, a crash): found at the next
start and stopped before anything is scheduled, so an `interrupted` run is really over and its
job's next tick cannot overlap a copy nobody supervises. (Under systemd, KillMode=mixed already
ends them with the unit; this is for a supervisor run by hand, in a container, or by another
process manager.)

Finding them never depends on a recorded pid (a supervisor killed in the middle of a tick's
spawns had not written them all): one pass over /proc (runprocs.leftovers) finds every process
whose environment names a run history still has `running` (CRONPLUS_RUN_ID with the run's job,
attempt and tick: another state dir's run 7 is not ours), also one that left the job's session
(`setsid`), and the members of their sessions. A process nothing identifies is left alone.

Stopping them is the timeout's sequence for all runs at once: SIGTERM (and SIGCONT), one shared
wait of each job's kill-grace (at most START_GRACE_MAX_S: the supervisor tells systemd READY=1
only after this, and systemd's start timeout is 90 s by default), SIGKILL to what is left."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from cronplus.engine import runprocs
from cronplus.model import JobOptions, RunRecord

log = logging.getLogger("cronplus")

START_GRACE_MAX_S = 10.0  # the longest a leftover is given to exit on SIGTERM at start-up


def sweep(stale: Sequence[RunRecord], graces: Mapping[str, float]) -> dict[int, str]:
    """Stop the processes of `stale` runs; run_id -> what was done (for the run's reason)."""
    if not stale:
        return {}
    tags = [runprocs.RunTag(rec.run_id, rec.job, rec.attempt,
                            int(rec.scheduled_at.timestamp()) if rec.scheduled_at is not None else None)
            for rec in stale]
    found = runprocs.leftovers(tags)
    jobs = {rec.run_id: rec.job for rec in stale}
    for run_id, procs in found.items():
        log.warning("job %s: run %d outlived its supervisor (%d process(es)): stopping it",
                    jobs[run_id], run_id, len(procs))
    default = JobOptions().kill_grace
    return runprocs.terminate(found, {run_id: graces.get(jobs[run_id], default) for run_id in found},
                              limit=START_GRACE_MAX_S)
