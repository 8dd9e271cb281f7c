"""`cronplus trigger JOB [--wait]`: run a job now, through the running supervisor's control
socket when there is one (trigger=manual, same history and alerts as scheduled runs); with no
supervisor running, run it in this process through the same code path and wait for it.

In-process, SIGINT (Ctrl-C) or SIGTERM cancels the run like a supervisor's shutdown (the job's
process group gets SIGTERM, then SIGKILL after its kill-grace), records it `interrupted` ("trigger
stopped by SIGINT"), records downstream runs not yet started as `skipped`, and exits 128 + the
signal number: 130 for SIGINT, 143 for SIGTERM.

`--wait` follows the chain the trigger started (chain.py): the run and every downstream run it
causes, retries included, one line per event ("b: run 6 attempt 1 failed, exit 3, retrying in
2s", "b: run 6 failed, exit 3 in 0.2s"); exit 1 if any of them ended failed, timeout,
upstream_failed or interrupted (skipped is fine), else 0. Same with and without a supervisor.

`--json` (implies --wait): stdout is one JSON object per finished run of the chain, the shape of
`cronplus log --json` (readhistory.run_json); the "started" line and notes go to stderr.

`--param K=V` (repeatable) gives the run CRONPLUS_PARAM_K=V (engine/runio.py: K of letters, digits
and _, case kept; a bad one is refused in one line, exit 2); its downstream runs do not inherit them.

overlap= and after= hold for a manual run (chain.check_manual): refused in one line naming
--force, which starts it anyway; a downstream job triggered alone names the upstream runs it uses."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cronplus.engine.dagrun import Run
    from cronplus.paths import Paths

HELP = "run a job now, through the running supervisor when there is one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cronplus.cli.dbopt import add_db_option

    add_db_option(p)
    p.add_argument("job", metavar="JOB", help="the job's name")
    p.add_argument("--wait", action="store_true",
                   help="wait for the run and the downstream runs it causes (retries included), printing each "
                        "as it ends; exit 1 if any failed, timed out or was upstream_failed, else 0")
    p.add_argument("--json", action="store_true",
                   help="print each finished run as one JSON object, as `log --json` does (implies --wait)")
    p.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="give the run CRONPLUS_PARAM_K=V (K: letters, digits and _, case kept; V at most 4 KiB; "
                        "at most 64); repeatable; downstream runs do not inherit them")
    p.add_argument("--force", action="store_true",
                   help="start even when the job's overlap= (a run in flight) or after= (its upstream runs "
                        "did not succeed) would not")


def _duration(event: dict[str, Any]) -> str:
    from cronplus.humanize import duration

    d = event.get("duration_s")
    return f" in {duration(d)}" if isinstance(d, int | float) else ""


def event_line(event: dict[str, Any]) -> str:
    """One line per event of the chain: "b: run 6 failed, exit 3 in 0.2s"."""
    job, run_id, status, code = event.get("job"), event.get("run_id"), event.get("status"), event.get("exit_code")
    reason = event.get("reason")
    detail = f", exit {code}" if code is not None and status != "success" else ""
    if reason and reason != f"exit {code}":
        detail += f" ({reason})"
    if event.get("event") == "retry":
        delay = event.get("delay_s")
        return f"{job}: run {run_id} attempt {event.get('attempt')} {status}{detail}, retrying in {delay:g}s"
    return f"{job}: run {run_id} {status}{detail}{_duration(event)}"


class Printer:
    """Prints the chain's events as they come; the exit code from the done message."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.ended = 0

    def event(self, event: dict[str, Any]) -> None:
        import json

        if event.get("event") == "ended":
            self.ended += 1
            if self.as_json:
                print(json.dumps({k: v for k, v in event.items() if k != "event"}), flush=True)
        if not self.as_json:
            print(event_line(event), flush=True)

    def done(self, final: dict[str, Any]) -> int:
        import json

        from cronplus.engine.chain import BAD

        if not self.ended:  # a supervisor from before chain events: the done message is the run
            if self.as_json:
                print(json.dumps({k: v for k, v in final.items() if k != "done"}))
            else:
                print(event_line(final))
        status = final.get("status")
        return 1 if status is None or status in {str(s) for s in BAD} else 0


def run(args: argparse.Namespace) -> int:
    from cronplus import paths
    from cronplus.engine.runio import params_from_args
    from cronplus.errors import CronplusError
    from cronplus.service import control

    p = paths.from_args(args)
    params = params_from_args(args.param)  # a bad one: one line, exit 2, before anything runs
    args.wait = args.wait or args.json
    said = sys.stderr if args.json else sys.stdout  # with --json, stdout is the JSON objects only
    try:
        answers = control.request(p.control_socket, {"cmd": "trigger", "job": args.job, "wait": args.wait,
                                                     "force": args.force, "params": dict(params)},
                                  timeout=None if args.wait else 10.0)
        first = next(answers)
    except control.NoSupervisor:
        return _in_process(p, args.job, as_json=args.json, force=args.force, params=params)
    except StopIteration:
        raise CronplusError("the supervisor closed the connection without an answer") from None
    except TimeoutError:
        raise CronplusError(f"the supervisor on {p.control_socket} did not answer within 10s") from None
    if not first.get("ok"):
        hint = f" (did you mean '{first['suggestion']}'?)" if first.get("suggestion") else ""
        raise CronplusError(f"{first.get('error')}{hint}")
    for note in first.get("notes") or ():
        print(note, file=said)
    started = f"run {first['run_id']} started" if first.get("run_id") is not None else "run queued"
    print(f"{started} by the supervisor", file=said, flush=True)
    if not args.wait:
        return 0
    printer = Printer(as_json=args.json)
    for msg in answers:
        if msg.get("done"):
            return printer.done(msg)
        printer.event(msg)
    raise CronplusError("the supervisor went away before the run ended")


def _in_process(p: Paths, job: str, *, as_json: bool, force: bool, params: tuple[tuple[str, str], ...]) -> int:
    """No supervisor: run it here (always waiting: nobody else would finish the run)."""
    from cronplus.service.control import SupervisorLock
    from cronplus.service.intrigger import TriggerInterrupted, trigger_in_process

    p.ensure()
    lock = SupervisorLock(p.state_dir)
    lock.acquire(what="in-process trigger")  # a supervisor starting now would mark our run interrupted
    said = sys.stderr if as_json else sys.stdout
    printer = Printer(as_json=as_json)

    def started(run: Run) -> None:
        assert run.chain is not None
        for note in run.chain.notes:
            print(note, file=said)
        started = f"run {run.run_id} started" if run.run_id is not None else "run queued"  # for a pool slot
        print(f"{started} (no supervisor running)", file=said, flush=True)

    try:
        final = trigger_in_process(p, job, force=force, params=params, on_started=started, on_event=printer.event)
    except TriggerInterrupted as exc:  # Ctrl-C / SIGTERM: the run was cancelled and recorded interrupted
        printer.done(exc.final)
        sys.stdout.flush()
        return exc.exit_code
    finally:
        lock.release()
    sys.stdout.flush()
    return printer.done(final)
