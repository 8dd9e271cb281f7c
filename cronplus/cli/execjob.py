"""`cronplus exec JOB [--at TIME] [--shell | --diff]`: the job's command now, in the foreground,
exactly as a scheduled run gets it, without recording a run.

- The environment is engine/runner.py's `build_env` (cron's: the crontab's env lines, SHELL,
  HOME, PATH defaults, LOGNAME/USER from passwd, CRONPLUS_JOB/RUN_ID/ATTEMPT/SCHEDULED_TIME),
  with CRONPLUS_RUN_ID=0 (no run is recorded), attempt 1, and `--at TIME` as the logical tick
  (default: now). Nothing of the caller's environment leaks in.
- `$SHELL -c COMMAND`, cwd `$HOME`, stdin the `%` text or /dev/null, in a session of its own
  (no controlling terminal, as under cron); stdout and stderr are the caller's (no log file).
  SIGINT, SIGTERM and SIGHUP received meanwhile go to the job's process group. In system mode
  the job runs as its user field (uid, gid, the user's groups), which needs root.
- Exit status: the command's; 128+N when a signal N killed the shell. A shell or HOME that
  cannot be used is one line and exit 1, as cron fails such a job.
- `--shell`: an interactive `$SHELL` in that environment and cwd instead of the command (bash
  with --norc, zsh with -f: startup files would change the very environment under test).
- `--diff`: print how that environment differs from the caller's (cli/envdiff.py), run nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pwd

    from cronplus.model import JobSpec

HELP = "run a job's command now in the foreground, in exactly its cron environment"
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP")
# Startup files an interactive shell would read are what makes "works in my shell": skip them.
NO_RC = {"bash": ["--norc", "--noprofile"], "zsh": ["-f"]}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", metavar="JOB", help="the job's name")
    p.add_argument("--at", metavar="TIME",
                   help="the logical tick given as CRONPLUS_SCHEDULED_TIME (ISO 8601, '-1h', ...; default now)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--shell", action="store_true", help="open an interactive $SHELL in the job's environment instead")
    mode.add_argument("--diff", action="store_true",
                      help="print how the job's environment differs from yours (PATH, HOME, LANG, ...), run nothing")


def run(args: argparse.Namespace) -> int:
    import os
    import time
    from datetime import UTC, datetime

    from cronplus import paths
    from cronplus.cli.attime import load_job, parse_at
    from cronplus.crontab.schedule import zone
    from cronplus.engine.runner import build_env

    crontab, job, _ = load_job(args)
    now = time.time()
    tick = parse_at(args.at, job.tz, now=now)[0] if args.at else datetime.fromtimestamp(now, UTC).astimezone(zone(job.tz))
    user = _user(job, crontab.system)
    env = build_env(job, run_id=0, attempt=1, scheduled_at=tick, user=user)
    if args.diff:
        from cronplus.cli.envdiff import EnvDiff, render

        caller = dict(paths.environ_of(args))
        print("\n".join(render(EnvDiff(caller, env), command=job.command, job_cwd=env["HOME"], caller_cwd=os.getcwd())))
        return 0
    identity = _identity(user)
    if args.shell:
        return _shell(job, env, identity)
    return _command(job, env, identity)


def _user(job: JobSpec, system: bool) -> pwd.struct_passwd:
    """The passwd entry the job runs as: its user field in system mode, else ours."""
    import os
    import pwd

    from cronplus.errors import CronplusError, escape

    if system and job.user:
        try:
            return pwd.getpwnam(job.user)
        except KeyError:
            raise CronplusError(f"job {job.name}: no such user '{escape(job.user)}' (cron would not run it either)") from None
    return pwd.getpwuid(os.getuid())


def _identity(user: pwd.struct_passwd) -> dict[str, Any]:
    """Popen's arguments to become `user` (initgroups semantics); none when we already are."""
    import os

    if os.getuid() == user.pw_uid and os.getgid() == user.pw_gid:
        return {}
    from cronplus.errors import CronplusError

    if os.geteuid() != 0:
        raise CronplusError(f"the job runs as user '{user.pw_name}': run cronplus exec as root (or as that user)")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": os.getgrouplist(user.pw_name, user.pw_gid)}


def _command(job: JobSpec, env: dict[str, str], identity: dict[str, Any]) -> int:
    import subprocess

    stdin = job.stdin.encode() if job.stdin is not None else None
    with _forwarding() as forward:  # from before the spawn: no signal may find us without it
        proc = _spawn([env["SHELL"], "-c", job.command], env, identity, start_new_session=True,
                      stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
        forward.to(proc.pid)
        try:
            proc.communicate(stdin)
        except BrokenPipeError:  # the job did not read all its stdin: cron does not mind either
            proc.wait()
    return _status(proc.returncode)


def _status(code: int) -> int:
    """Popen's -N (killed by signal N) as a shell shows it: 128+N."""
    return 128 - code if code < 0 else code


def _shell(job: JobSpec, env: dict[str, str], identity: dict[str, Any]) -> int:
    import os

    shell = env["SHELL"]
    print(f"cronplus exec: {shell} in job {job.name}'s cron environment, in {env['HOME']}; exit to leave",
          file=sys.stderr, flush=True)
    proc = _spawn([shell, *NO_RC.get(os.path.basename(shell), []), "-i"], env, identity, start_new_session=False)
    # The shell shares our terminal: a Ctrl-C at its prompt is its business, not ours (system(3)).
    with _ignoring("SIGINT", "SIGQUIT"):
        return _status(proc.wait())


@contextlib.contextmanager
def _ignoring(*names: str) -> Iterator[None]:
    import signal

    saved = {getattr(signal, n): signal.signal(getattr(signal, n), signal.SIG_IGN) for n in names}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _spawn(argv: list[str], env: dict[str, str], identity: dict[str, Any], **kwargs: Any) -> Any:
    import subprocess

    from cronplus.errors import CronplusError, escape

    shell, home = argv[0], env["HOME"]
    try:
        return subprocess.Popen(argv, cwd=home, env=env, **identity, **kwargs)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.filename == home:  # cronie: "chdir(HOME) failed", the job does not run
            raise CronplusError(f"chdir(HOME) failed: {escape(home)}: {why} (cron would not run the job)") from None
        raise CronplusError(f"cannot execute {escape(shell)}: {why} (the crontab's SHELL=)") from None


class _forwarding:
    """While the job runs, the signals a user sends to `cronplus exec` go to the job's group
    (its own session: the terminal's Ctrl-C reaches only us). One that comes before the spawn
    is passed on right after it."""

    def __init__(self) -> None:
        self.pgid: int | None = None
        self.pending: list[int] = []
        self.saved: dict[int, Any] = {}

    def to(self, pgid: int) -> None:
        self.pgid = pgid
        for signum in self.pending:
            self._send(signum)
        self.pending.clear()

    def _send(self, signum: int) -> None:
        import os

        assert self.pgid is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signum)

    def _forward(self, signum: int, _frame: object) -> None:
        if self.pgid is None:
            self.pending.append(signum)
        else:
            self._send(signum)

    def __enter__(self) -> _forwarding:
        import signal

        for name in FORWARDED:
            sig = getattr(signal, name)
            self.saved[sig] = signal.signal(sig, self._forward)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
