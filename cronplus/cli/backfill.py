"""`cronplus backfill JOB --from T [--to T] [--dry-run] [--parallel N] [--rerun] [--yes] [--json]`:
run every tick of JOB's schedule in [from, to] now, each with CRONPLUS_SCHEDULED_TIME = its tick
(trigger `backfill`), its downstream jobs included by their trigger rules (engine/backfill.py),
through the running supervisor (control socket) or, with none, in this process.

Times as `log --since` reads them (timeparse.py: ISO 8601, @UNIX, -2h, today, ...), in this
process's local time when they carry no offset; the ticks follow the job's tz= and DST rules.
Ticks whose newest run succeeded are skipped unless --rerun, so running the same command again
after an interruption (Ctrl-C, a supervisor stopping) resumes it. More than 1,000 ticks needs
--yes. `--dry-run` lists the ticks, each to run or skipped (and why), and runs nothing.

Output: progress lines ("12/48 ticks done, 1 failed (TICK success, run 5)"; at most 10 a second,
a failed tick's and the last always), a line per run that did not succeed, a summary; exit 0 when every tick's runs succeeded (or skipped),
1 otherwise or when stopped, 130/143 when Ctrl-C/SIGTERM stopped an in-process backfill.
`--json`: stdout is one JSON object per finished run (`log --json`'s shape; with --dry-run one
per tick), everything else goes to stderr.

Ctrl-C of a backfill running in the supervisor stops it starting ticks; the runs under way
finish there and are recorded."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from cronplus.model import Crontab, JobSpec
    from cronplus.paths import Paths
    from cronplus.service.backfill import BackfillRequest

HELP = "run a job's ticks between two times now (with their downstream jobs); resumable"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cronplus.cli.dbopt import add_db_option

    add_db_option(p)
    p.add_argument("job", metavar="JOB", help="the job's name")
    p.add_argument("--from", dest="start", metavar="TIME", required=True,
                   help="first tick time, included ('2026-01-01', '-2d', '@1750000000', as `log --since`)")
    p.add_argument("--to", dest="end", metavar="TIME", default="now", help="last tick time, included (default now)")
    p.add_argument("--dry-run", action="store_true", help="list the ticks it would run and skip, and why; run nothing")
    p.add_argument("--parallel", type=int, default=1, metavar="N", help="run up to N ticks at once (default 1)")
    p.add_argument("--rerun", action="store_true", help="run ticks that already succeeded too")
    p.add_argument("--yes", action="store_true", help="run more than 1,000 ticks")
    p.add_argument("--json", action="store_true", help="print each finished run as one JSON object, as `log --json`")


class Printer:
    """The backfill's events as lines (or JSON objects), the exit code from its done message."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.said: TextIO = sys.stderr if as_json else sys.stdout
        self.plan: dict[str, Any] = {}
        self.progress: dict[str, Any] = {}

    def started(self, plan: dict[str, Any], where: str) -> None:
        self.plan = plan
        done = plan.get("already_done") or 0
        skipped = f", {done} already succeeded (skipped; --rerun runs them)" if done else ""
        print(f"backfill of {plan.get('job')}: {plan.get('total')} tick(s) from {plan.get('from')} to {plan.get('to')}"
              f"{skipped}, {plan.get('parallel')} at a time ({where})", file=self.said, flush=True)

    def event(self, event: dict[str, Any]) -> None:
        import json

        from cronplus.cli.trigger import event_line

        kind = event.get("event")
        if kind == "progress":
            self.progress = event
            print(f"{event['finished']}/{event['total']} ticks done, {event['failed']} failed "
                  f"({event.get('tick')} {event.get('status')}, run {event.get('run_id')})", file=self.said, flush=True)
        elif kind == "ended" and self.as_json:
            print(json.dumps({k: v for k, v in event.items() if k != "event"}), flush=True)
        elif kind in ("ended", "retry") and event.get("status") != "success":
            print(event_line(event), file=self.said, flush=True)

    def done(self, final: dict[str, Any]) -> int:
        job, total = final.get("job", self.plan.get("job")), final.get("total", self.plan.get("total"))
        finished, failed = final.get("finished", 0), final.get("failed", 0)
        if final.get("stopped"):
            print(f"backfill of {job} stopped ({final['stopped']}) after {finished}/{total} ticks, {failed} failed: "
                  f"run the same command again to resume", file=self.said, flush=True)
            return 1
        print(f"backfill of {job} done: {finished} tick(s) run, {failed} failed", file=self.said, flush=True)
        return 1 if failed else 0

    def so_far(self) -> str:
        return f"{self.progress.get('finished', 0)}/{self.plan.get('total', '?')} ticks done"


def run(args: argparse.Namespace) -> int:
    import time

    from cronplus import paths
    from cronplus.errors import CronplusError, UsageError
    from cronplus.service import control
    from cronplus.service.backfill import BackfillRequest
    from cronplus.timeparse import parse_time

    p = paths.from_args(args)
    now = time.time()
    start, end = parse_time(args.start, now=now), parse_time(args.end, now=now)
    if start > end:
        raise UsageError(f"--from {args.start} is after --to {args.end}: nothing to backfill")
    if args.parallel < 1:
        raise UsageError(f"--parallel must be at least 1, not {args.parallel}")
    request = BackfillRequest(job=args.job, start=start, end=end, parallel=args.parallel, rerun=args.rerun, yes=args.yes)
    if args.dry_run:
        return _dry_run(p, request, as_json=args.json)
    printer = Printer(as_json=args.json)
    try:
        answers = control.request(p.control_socket, request.to_json(), timeout=None)
        first = next(answers)
    except control.NoSupervisor:
        return _in_process(p, request, printer)
    except StopIteration:
        raise CronplusError("the supervisor closed the connection without an answer") from None
    if not first.get("ok"):
        hint = f" (did you mean '{first['suggestion']}'?)" if first.get("suggestion") else ""
        error = f"{first.get('error')}{hint}"
        raise UsageError(error) if first.get("invalid") else CronplusError(error)
    printer.started(first, "by the supervisor")
    try:
        for msg in answers:
            if msg.get("done"):
                return printer.done(msg)
            printer.event(msg)
    except KeyboardInterrupt:
        print(f"backfill stopped after {printer.so_far()}: no new tick starts; the runs under way finish in the "
              f"supervisor. Run the same command again to resume", file=printer.said)
        return 130
    raise CronplusError(f"the supervisor went away after {printer.so_far()}: run the same command again to resume")


def _job(p: Paths, name: str) -> tuple[Crontab, JobSpec]:
    """The crontab file's job `name`, or the one line naming the closest job."""
    from cronplus.service.daemon import load
    from cronplus.service.intrigger import UnknownJob

    crontab = load(p)
    job = crontab.job(name)
    if job is None:
        raise UnknownJob(name, [j.name for j in crontab.jobs])
    return crontab, job


def _dry_run(p: Paths, request: BackfillRequest, *, as_json: bool) -> int:
    """The ticks from the crontab file and history as they are now; nothing runs, nothing is written."""
    import json

    from cronplus.engine.backfill import plan
    from cronplus.store.open import empty_reader, open_reader
    from cronplus.store.readhistory import NoHistoryError

    _, job = _job(p, request.job)
    try:
        reader = open_reader(p.db)
    except NoHistoryError:
        reader = empty_reader()
    try:
        the_plan = plan(job, reader, request.start, request.end, rerun=request.rerun)
    finally:
        reader.close()
    rows = [(tick, None) for tick in the_plan.run] + list(the_plan.done)
    rows.sort(key=lambda row: row[0])
    for tick, run_id in rows:
        if as_json:
            print(json.dumps({"tick": tick.isoformat(), "action": "run" if run_id is None else "skip",
                              "reason": None if run_id is None else f"run {run_id} succeeded", "run_id": run_id}))
        elif run_id is None:
            print(f"{tick.isoformat()}  run")
        else:
            print(f"{tick.isoformat()}  skip: run {run_id} already succeeded (--rerun runs it)")
    print(f"{len(the_plan.run)} tick(s) to run, {len(the_plan.done)} skipped (dry run: nothing ran)",
          file=sys.stderr if as_json else sys.stdout)
    return 0


def _in_process(p: Paths, request: BackfillRequest, printer: Printer) -> int:
    """No supervisor: run it here, holding the supervisor lock (a supervisor starting meanwhile
    would mark our runs interrupted)."""
    from cronplus.service.backfill import BackfillInterrupted, backfill_in_process
    from cronplus.service.control import SupervisorLock
    from cronplus.service.daemon import owner_id

    crontab, _ = _job(p, request.job)
    p.ensure()
    lock = SupervisorLock(p.state_dir)
    lock.acquire(what="in-process backfill")
    try:
        final = backfill_in_process(p, crontab, request, owner=owner_id(),
                                    on_started=lambda plan: printer.started(plan, "no supervisor running"),
                                    on_event=printer.event)
    except BackfillInterrupted as exc:
        printer.done(exc.final)
        return exc.exit_code
    finally:
        lock.release()
    return printer.done(final)
