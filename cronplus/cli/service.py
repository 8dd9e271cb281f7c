"""`cronplus install-service [--user] [--dry-run]`: write cronplus.service, daemon-reload, enable
and start it, printing each step. With `--worker --queue NAME --broker URL --db URL`: the same
for a worker's cronplus-worker.service (cli/workerservice.py).

- The unit's ExecStart= is this very cronplus: the console script that is running (its absolute
  path, symlinks kept so an upgrade in place is picked up) or `<python> -m cronplus` when started
  that way, followed by `run` and the --crontab/--state-dir/--log-dir/--system given here.
- System unit -> /etc/systemd/system (needs root); `--user` -> $XDG_CONFIG_HOME/systemd/user.
- `--dry-run` prints the unit and the commands and changes nothing.
- systemctl missing or failing: exit 1 with a clear message, after the unit file is written.

Two environment variables exist for packaging and tests, where no systemd runs:
CRONPLUS_UNIT_DIR (write the unit there instead) and CRONPLUS_SYSTEMCTL (the systemctl to run).
"""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cronplus.errors import CronplusError, UsageError

HELP = "write, enable and start the systemd unit"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", action="store_true",
                   help="install a user unit in ~/.config/systemd/user (default: the system unit, as root)")
    p.add_argument("--dry-run", action="store_true", help="print the unit and the commands; change nothing")
    p.add_argument("--http", metavar="HOST:PORT", default=None,
                   help="the unit's supervisor serves the web page, API and /metrics there (as `run --http`)")
    p.add_argument("--http-token-file", metavar="FILE", default=None,
                   help="the token file actions need (as `run --http-token-file`; required off loopback)")
    from cronplus.cli.workerservice import add_worker_arguments  # --worker: cronplus-worker.service

    add_worker_arguments(p)


def cronplus_argv() -> list[str]:
    """How to start the cronplus that is running now."""
    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name == "cronplus":
        path = Path(argv0) if os.sep in argv0 else Path(shutil.which(argv0) or argv0)
        if os.access(path, os.X_OK):
            return [os.path.abspath(path)]  # abspath, not resolve(): keep /usr/local/bin's symlink
    # `python -m cronplus` (argv[0] is .../cronplus/__main__.py) or an unusual launcher.
    return [os.path.abspath(sys.executable), "-m", "cronplus"]


def _override_args(args: argparse.Namespace) -> list[str]:
    """The global path options, made absolute: the service runs with / as its directory."""
    extra: list[str] = []
    for option, attr in (("--crontab", "crontab"), ("--state-dir", "state_dir"), ("--log-dir", "log_dir")):
        value = getattr(args, attr, None)
        if value:
            extra += [option, os.path.abspath(os.path.expanduser(value))]
    if getattr(args, "system", False):
        extra.append("--system")
    return extra


def _http_args(args: argparse.Namespace) -> list[str]:
    """`run`'s --http options for ExecStart=, checked as `run` would check them, so a unit that
    cannot start is not written (an address off loopback without a token file, a bad port)."""
    if args.http_token_file and not args.http:
        raise UsageError("--http-token-file needs --http HOST:PORT")
    if not args.http:
        return []
    from cronplus.web.auth import address_problem
    from cronplus.web.mount import parse_address

    host, _port = parse_address(args.http)
    token = os.path.abspath(os.path.expanduser(args.http_token_file)) if args.http_token_file else None
    problem = address_problem(host, token)
    if problem:
        raise UsageError(problem)
    return ["--http", args.http, *(["--http-token-file", token] if token else [])]


def unit_dir(user: bool) -> Path:
    override = os.environ.get("CRONPLUS_UNIT_DIR")
    if override:
        return Path(override)
    if not user:
        return Path("/etc/systemd/system")
    config = os.environ.get("XDG_CONFIG_HOME")
    base = Path(config) if config and os.path.isabs(config) else Path.home() / ".config"
    return base / "systemd" / "user"


def _systemctl() -> str | None:
    found = os.environ.get("CRONPLUS_SYSTEMCTL") or shutil.which("systemctl")
    if not found or not os.access(found, os.X_OK):
        return None
    return found


def _write_atomically(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".cronplus.service.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # unit files are world-readable config, like the ones systemd ships
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _linger_note() -> str:
    user = pwd.getpwuid(os.getuid()).pw_name
    if Path("/var/lib/systemd/linger", user).exists():
        return f"lingering is on for {user}: jobs run while you are logged out"
    return (f"note: user services stop when your last session ends; to keep jobs running while you are "
            f"logged out, run: loginctl enable-linger {user}")


def run(args: argparse.Namespace) -> int:
    from cronplus import paths
    from cronplus.service.units import UNIT_NAME, render_unit

    if args.worker or args.queue or args.broker or args.db or args.concurrency:
        from cronplus.cli.workerservice import install_worker

        return install_worker(args)
    user = bool(args.user)
    exec_start = [*cronplus_argv(), "run", *_override_args(args), *_http_args(args)]
    try:
        text = render_unit(user=user, exec_start=exec_start)
    except ValueError as exc:
        raise CronplusError(f"cannot write a unit for this installation: {exc}") from None
    target = unit_dir(user) / UNIT_NAME
    scope = ["--user"] if user else []
    commands = [[*scope, "daemon-reload"], [*scope, "enable", "--now", UNIT_NAME]]

    if args.dry_run:
        print(f"# would write {target}:")
        print(text, end="")
        for command in commands:
            print(f"# would run: {shlex.join(['systemctl', *command])}")
        if user:
            print(f"# {_linger_note()}")
        return 0

    previous = target.read_text() if target.exists() else None
    try:
        _write_atomically(target, text)
    except OSError as exc:
        hint = " (run it as root, or use --user)" if not user and isinstance(exc, PermissionError) else ""
        raise CronplusError(f"cannot write {target}: {exc.strerror or exc}{hint}") from None
    print(f"wrote {target}")

    crontab = paths.resolve(crontab=getattr(args, "crontab", None), system=bool(getattr(args, "system", False))).crontab
    if not crontab.exists():
        print(f"note: {crontab} does not exist yet; create it with `cronplus edit` or `cronplus install FILE`")

    systemctl = _systemctl()
    if systemctl is None:
        manual = " && ".join(shlex.join(["systemctl", *c]) for c in commands)
        raise CronplusError(f"systemctl not found; the unit is written, start it with: {manual}")
    for command in commands:
        _run_systemctl([systemctl, *command])
        print(f"ran: {shlex.join(['systemctl', *command])}")
    if previous is not None and previous != text:
        print(f"the unit changed; if cronplus was already running, apply it with: "
              f"{shlex.join(['systemctl', *scope, 'restart', 'cronplus'])}")
    if user:
        print(_linger_note())
    return 0


def _run_systemctl(argv: list[str]) -> None:
    shown = shlex.join(["systemctl", *argv[1:]])
    try:
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CronplusError(f"`{shown}` failed: {exc}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise CronplusError(f"`{shown}` failed: {detail}")
