"""`cronplus pause JOB... | --all` and `cronplus resume JOB... | --all` (README, "Pause and resume").

Through the running supervisor's control socket when one runs ({"cmd": "pause"|"resume",
"jobs": [...] | null, "by": USER}: service/commands.py), which steps over the job's ticks from
then on; with none running, straight into the store (engine/pausing.py's kv entries, under the
supervisor lock so one starting meanwhile waits), which the supervisor reads at start, and the
supervisors of a shared store (PostgreSQL, `--db URL`) before their next tick. Either
way the pause is persisted: it survives restarts and reloads. `--all` is the global pause (a
maintenance window): no job's tick runs, running runs finish; `resume --all` lifts it (a job
paused by name stays paused). A paused job still runs on `cronplus trigger`.

An unknown job changes nothing: one line with the closest name (did you mean). Pausing a job
already paused keeps its first "since" and "by"; resuming one not paused is fine.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cronplus.paths import Paths

HELP = "pause jobs (or --all): their ticks are not run until resumed; trigger still runs them"
HELP_RESUME = "resume paused jobs (or --all); catch-up=last runs the newest tick missed while paused"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cronplus.cli.dbopt import add_db_option

    add_db_option(p)
    p.add_argument("jobs", metavar="JOB", nargs="*", help="the jobs' names")
    p.add_argument("--all", action="store_true", help="every job: the global pause (a maintenance window)")


def user() -> str:
    import os
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def run(args: argparse.Namespace) -> int:
    return _change(args, resume=False)


def resume(args: argparse.Namespace) -> int:
    return _change(args, resume=True)


def _change(args: argparse.Namespace, *, resume: bool) -> int:
    from cronplus import paths
    from cronplus.errors import CronplusError, UsageError
    from cronplus.service import control

    verb = "resume" if resume else "pause"
    if bool(args.jobs) == bool(args.all):
        raise UsageError(f"name the jobs to {verb}, or --all (not both)")
    jobs: list[str] | None = None if args.all else list(dict.fromkeys(args.jobs))
    p = paths.from_args(args)
    try:
        reply = next(control.request(p.control_socket, {"cmd": verb, "jobs": jobs, "by": user()}), {})
        where = "by the supervisor"
    except control.NoSupervisor:
        reply = _in_store(p, jobs, resume=resume)
        where = ("in the database (the supervisors on it obey it from their next tick)" if reply.pop("shared", False)
                 else "(no supervisor running: it reads this at start)")
    except TimeoutError:
        raise CronplusError(f"the supervisor on {p.control_socket} did not answer within 10s") from None
    if not reply.get("ok"):
        hint = f" (did you mean '{reply['suggestion']}'?)" if reply.get("suggestion") else ""
        raise CronplusError(f"{reply.get('error')}{hint}")
    what = "all jobs" if jobs is None else ", ".join(jobs)
    print(f"{what} {'resumed' if resume else 'paused'} {where}")
    return 0


def _in_store(p: Paths, jobs: list[str] | None, *, resume: bool) -> dict[str, Any]:
    """No supervisor: the kv entries straight into the store, checked against the crontab."""
    from contextlib import closing

    from cronplus.crontab.parser import load_crontab
    from cronplus.engine.pausing import Pauses
    from cronplus.service.commands import unknown_jobs
    from cronplus.service.control import SupervisorLock
    from cronplus.store.open import open_writer

    p.ensure()
    lock = SupervisorLock(p.state_dir)
    lock.acquire(what=f"`cronplus {'resume' if resume else 'pause'}`")
    try:
        with closing(open_writer(p.db)) as store:
            pauses = Pauses.read(store)
            known = [job.name for job in load_crontab(p.crontab, system=p.system).jobs]
            refusal = unknown_jobs(jobs or [], known + (list(pauses.jobs) if resume else []))
            if refusal is not None:
                return refusal.to_json()
            import time

            items = pauses.resume(jobs) if resume else pauses.pause(jobs, user(), time.time())
            store.kv_set_many(items)
            shared = store.shared
    finally:
        lock.release()
    sys.stdout.flush()
    return {"ok": True, "shared": shared}
