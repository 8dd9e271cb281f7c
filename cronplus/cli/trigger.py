"""`cronplus trigger JOB [--wait]`: run a job now, through the running supervisor's control
socket when there is one (trigger=manual, same history and alerts as scheduled runs); with no
supervisor running, run it in this process through the same code path and wait for it.

In-process, SIGINT (Ctrl-C) or SIGTERM cancels the run like a supervisor's shutdown (the job's
process group gets SIGTERM, then SIGKILL after its kill-grace), records it `interrupted` ("trigger
stopped by SIGINT"), records downstream runs not yet started as `skipped`, and exits 128 + the
signal number: 130 for SIGINT, 143 for SIGTERM.

`--json` (implies --wait): stdout is the finished run as one JSON object, the shape of
`cronplus log --json` (history.run_json); the "started" line goes to stderr."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronplus.paths import Paths

HELP = "run a job now, through the running supervisor when there is one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", metavar="JOB", help="the job's name")
    p.add_argument("--wait", action="store_true",
                   help="wait for the run (retries included); exit 0 on success, 1 otherwise")
    p.add_argument("--json", action="store_true",
                   help="print the finished run as one JSON object, as `log --json` does (implies --wait)")


def _report(msg: dict[str, object], *, as_json: bool = False) -> int:
    status = msg.get("status")
    if as_json:
        import json

        print(json.dumps({k: v for k, v in msg.items() if k != "done"}))
        return 0 if status == "success" else 1
    code = msg.get("exit_code")
    extra = f", exit {code}" if code is not None else ""
    reason = f" ({msg['reason']})" if msg.get("reason") else ""
    print(f"run {msg.get('run_id')}: {status}{extra}{reason}")
    return 0 if status == "success" else 1


def run(args: argparse.Namespace) -> int:
    from cronplus import control, paths
    from cronplus.errors import CronplusError

    p = paths.from_args(args)
    args.wait = args.wait or args.json
    said = sys.stderr if args.json else sys.stdout  # with --json, stdout is the JSON object only
    try:
        answers = control.request(p.control_socket, {"cmd": "trigger", "job": args.job, "wait": args.wait},
                                  timeout=None if args.wait else 10.0)
        first = next(answers)
    except control.NoSupervisor:
        return _in_process(p, args.job, as_json=args.json)
    except StopIteration:
        raise CronplusError("the supervisor closed the connection without an answer") from None
    if not first.get("ok"):
        hint = f" (did you mean '{first['suggestion']}'?)" if first.get("suggestion") else ""
        raise CronplusError(f"{first.get('error')}{hint}")
    print(f"run {first.get('run_id')} started by the supervisor", file=said, flush=True)
    if not args.wait:
        return 0
    for msg in answers:
        if msg.get("done"):
            return _report(msg, as_json=args.json)
    raise CronplusError("the supervisor went away before the run ended")


def _in_process(p: Paths, job: str, *, as_json: bool) -> int:
    """No supervisor: run it here (always waiting: nobody else would finish the run)."""
    from cronplus.control import SupervisorLock
    from cronplus.daemon import TriggerInterrupted, done_message, trigger_in_process

    p.ensure()
    lock = SupervisorLock(p.state_dir)
    lock.acquire(what="in-process trigger")  # a supervisor starting now would mark our run interrupted
    try:
        said = sys.stderr if as_json else sys.stdout
        record = trigger_in_process(p, job, on_started=lambda rid: print(f"run {rid} started (no supervisor running)",
                                                                         file=said, flush=True))
    except TriggerInterrupted as exc:  # Ctrl-C / SIGTERM: the run was cancelled and recorded interrupted
        _report(done_message(exc.record), as_json=as_json)
        sys.stdout.flush()
        return exc.exit_code
    finally:
        lock.release()

    sys.stdout.flush()
    return _report(done_message(record), as_json=as_json)
