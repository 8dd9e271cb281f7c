"""The `cronplus` command: a thin dispatcher over lazily imported command modules.

Each command lives in `cronplus/cli/<module>.py` and exposes

    HELP: str                                  one line for `cronplus --help`
    def add_arguments(p: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int   the exit status

Only the chosen command's module is imported, and command modules import heavy things
(requests, watchdog, croniter, sqlite3) inside `run`, so `cronplus --help` starts fast.
This is the one place that maps errors to exit codes: 0 ok, 1 failure, 2 usage. A CronplusError
prints its message; an OSError or an SQLite error (the environment: a missing, unwritable,
read-only or full path, a corrupt history.db) is one line naming the path and what to do
(cli/failures.py); any other exception (a bug) prints its traceback, said to be a bug, with
every URL cut to its host (redact.py), as URLs carry tokens.

`main(argv, env=...)` runs a command against an environment mapping instead of os.environ (the
tests run commands in-process that way): commands read the environment only as `args.environ`
(paths.environ_of), which is os.environ when no `env` is given.

May import: foundation, crontab, store, engine, alerts, service, web.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence

# command name -> (module under cronplus.cli, one-line help). Order is the order of --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the supervisor in the foreground (what systemd starts)"),
    "check": ("check", "validate a crontab: FILE:LINE:COL: message, exit 1 when invalid"),
    "next": ("next", "print the next run times of a cron expression or job"),
    "jobs": ("jobs", "table of jobs: schedule, next run, last status"),
    "log": ("log", "run history, newest last"),
    "output": ("output", "print the captured output of a run"),
    "trigger": ("trigger", "run a job now, through the running supervisor when there is one"),
    "why": ("why", "why a job did or did not run at a time (default: its last expected tick)"),
    "exec": ("execjob", "run a job's command now in the foreground, in exactly its cron environment"),
    "reload": ("reload", "reload the running supervisor's crontab and wait: exit 1 when it refuses the file"),
    "edit": ("edit", "edit the crontab in $VISUAL/$EDITOR, validate, install (like crontab -e)"),
    "list": ("listing", "print the installed crontab (like crontab -l)"),
    "install": ("install", "validate and install FILE (or - for stdin) as the crontab"),
    "import": ("importing", "take the current `crontab -l` into cronplus's crontab"),
    "alerts": ("alerts", "alert deliveries: pending, delivered, failed; send a test alert"),
    "install-service": ("service", "write, enable and start the systemd unit"),
    "pause": ("pause", "pause jobs (or --all): their ticks are not run until resumed; trigger still runs them"),
    "resume": ("resume", "resume paused jobs (or --all); catch-up=last runs the newest tick missed while paused"),
    "backfill": ("backfill", "run a job's ticks between two times now (with their downstream jobs); resumable"),
    "worker": ("worker", "run attempts of queue= jobs sent by supervisors (a Celery worker; docs/workers.md)"),
}


def _add_global_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--crontab", metavar="FILE", help="crontab file (env CRONPLUS_CRONTAB; default ~/.config/cronplus/crontab, "
                   "or /etc/cronplus/crontab as root or with --system)")
    p.add_argument("--state-dir", metavar="DIR", help="state directory (env CRONPLUS_STATE_DIR)")
    p.add_argument("--log-dir", metavar="DIR", help="run log directory (default <state>/logs)")
    p.add_argument("--system", action="store_true", help="system mode: /etc/cronplus/crontab with a user field")


def _top_parser() -> argparse.ArgumentParser:
    from cronplus import __version__

    lines = "\n".join(f"  {name:<16} {help_}" for name, (_, help_) in COMMANDS.items())
    p = argparse.ArgumentParser(
        prog="cronplus",
        usage="cronplus [-h] [--version] COMMAND [ARGS]",
        description="A crontab-compatible job supervisor with retries, dependencies, history and alerts.",
        epilog=f"commands:\n{lines}\n\nRun `cronplus COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"cronplus {__version__}")
    return p


def build_command_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(f"cronplus.cli.{module_name}")
    p = argparse.ArgumentParser(prog=f"cronplus {name}", description=help_)
    _add_global_options(p)
    module.add_arguments(p)
    return p, module


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Global options may come before the command: cronplus --state-dir X log
    leading: list[str] = []
    while args_list and args_list[0].startswith("-") and args_list[0] not in ("-h", "--help", "--version"):
        opt = args_list.pop(0)
        leading.append(opt)
        if "=" not in opt and opt != "--system" and args_list:
            leading.append(args_list.pop(0))
    if not args_list or args_list[0] in ("-h", "--help", "--version"):
        top = _top_parser()
        if not args_list:
            top.print_help(sys.stderr)
            return 2
        top.parse_args(args_list)  # prints help/version and exits
        return 0
    name, rest = args_list[0], args_list[1:]
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        print(f"cronplus: unknown command '{name}'{hint}", file=sys.stderr)
        return 2
    parser, module = build_command_parser(name)
    try:
        args = parser.parse_args(leading + rest)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for usage errors
        return int(exc.code or 0)
    args.environ = os.environ if env is None else env
    from cronplus.errors import CronplusError

    try:
        return int(module.run(args))  # type: ignore[attr-defined]
    except CronplusError as exc:
        print(f"cronplus {name}: {exc}" if str(exc) else f"cronplus {name}: error", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `cronplus log | head`: the reader went away; that is not our failure.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the environment (one line), or a bug (its traceback)
        from cronplus.cli.failures import describe

        line = describe(exc, args)
        if line is not None:  # e.g. another user's 0700 state directory, a corrupt history.db
            print(f"cronplus {name}: {line}", file=sys.stderr)
            return 1
        import traceback

        from cronplus.redact import redact_urls_in

        # Never a token a library put in a message: URLs are cut to their host.
        print(f"cronplus {name}: internal error (a bug; please report it):\n"
              + redact_urls_in(traceback.format_exc()), file=sys.stderr, end="")
        return 1
