"""`cronplus install FILE|-`: like `crontab FILE`, but validated first (errors as FILE:LINE:COL,
exit 1, nothing installed) and installed atomically with a backup, then a summary of what changed.

`print_install` is shared by `edit` and `import`: the change summary, lint warnings, and a nudge
to a running supervisor (it reloads on the rename by itself; SIGHUP makes it immediate)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronplus.paths import Paths
    from cronplus.service.installer import InstallResult

HELP = "validate and install FILE (or - for stdin) as the crontab"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="crontab to install; - reads standard input")


def print_install(result: InstallResult, paths: Paths) -> None:
    from cronplus.service import installer

    for warning in result.warnings:
        print(str(warning), file=sys.stderr)
    for line in installer.summary_lines(result):
        print(line)
    if not result.unchanged_text:
        _nudge_supervisor(paths)


def _nudge_supervisor(paths: Paths) -> None:
    """A supervisor on this state dir reloads by itself (it watches the crontab's directory);
    asking it over the control socket makes that immediate and reports a refusal. Without a
    socket, SIGHUP the pid in <state>/supervisor.pid, if that is really cronplus."""
    from cronplus.service import installer

    if paths.control_socket.exists():
        from cronplus.service.control import NoSupervisor, request

        try:
            reply = next(request(paths.control_socket, {"cmd": "reload"}, timeout=10.0), {})
        except (NoSupervisor, OSError, ValueError):
            reply = None
        if reply is not None:
            if reply.get("ok"):
                print("the running supervisor reloaded it")
            else:
                print(f"the running supervisor did not reload: {reply.get('error', 'no reason given')}", file=sys.stderr)
            return
    pid = installer.signal_supervisor(paths.pid_file)
    if pid is not None:
        print(f"running supervisor (pid {pid}) reloads it now")


def run(args: argparse.Namespace) -> int:
    from cronplus.errors import CronplusError, CrontabError
    from cronplus.paths import from_args
    from cronplus.service import installer

    paths = from_args(args)
    if args.file == "-":
        # bytes, decoded as load_crontab and check do: cron takes a crontab as bytes, so a
        # Latin-1 comment is fine and the bytes are installed as they were
        text, shown = sys.stdin.buffer.read().decode("utf-8", "surrogateescape"), "<stdin>"
    else:
        try:
            with open(args.file, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError as exc:
            raise CronplusError(f"cannot read {args.file}: {exc.strerror}") from None
        shown = args.file
    try:
        result = installer.install_text(text, paths.crontab, system=paths.system, display_path=shown)
    except CrontabError as exc:
        print(str(exc), file=sys.stderr)
        print(f"{shown}: {len(exc.diagnostics)} error(s); nothing installed", file=sys.stderr)
        return 1
    print_install(result, paths)
    return 0
