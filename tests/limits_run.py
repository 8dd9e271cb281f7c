"""A supervisor process for the resource-limit tests: optionally joins a cgroup v2 first (its
own cgroup is then that one: the run cgroups go under it), then runs one attempt of a job with
the given options through runner.run_attempt and prints the result and the plan as JSON.

    python limits_run.py '{"cgroup": "/sys/fs/cgroup/unified/x" | null, "command": "...",
                           "options": {...}, "log": "/path/to.log", "run_id": 7}'
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("cgroup"):
        Path(spec["cgroup"], "cgroup.procs").write_text(str(os.getpid()))
    from cronplus.engine import cgroup, limits
    from cronplus.engine.runner import run_attempt
    from cronplus.errors import SourceLoc
    from cronplus.model import JobOptions, JobSpec, Schedule

    schedule = Schedule(text="* * * * *", minutes=frozenset(range(60)), hours=frozenset(range(24)),
                        days=frozenset(range(1, 32)), months=frozenset(range(1, 13)), weekdays=frozenset(range(7)),
                        dom_star=True, dow_star=True, minute_star=True, hour_star=True)
    options = JobOptions(**spec["options"])
    job = JobSpec(loc=SourceLoc(path="crontab", line=1), name="job", schedule=schedule, command=spec["command"],
                  stdin=None, env=(("PATH", os.environ["PATH"]),), options=options)
    result = asyncio.run(run_attempt(job, run_id=spec.get("run_id", 7), attempt=1,
                                     scheduled_at=datetime(2025, 1, 1, tzinfo=UTC), log_path=Path(spec["log"])))
    delegation = cgroup.delegated()
    out = {k: v for k, v in dataclasses.asdict(result).items() if k != "output"}
    out["base"] = str(delegation.base) if delegation.base else None
    out["plan"] = [limits.describe(e) for e in limits.plan(options, delegation)]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
