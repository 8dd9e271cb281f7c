"""`cronplus install-service [--user] [--dry-run]`: write cronplus.service, daemon-reload, enable
and start it, printing each step.

- The unit's ExecStart= is this very cronplus: the console script that is running (its absolute
  path, symlinks kept so an upgrade in place is picked up) or `<python> -m cronplus` when started
  that way, followed by `run` and the --crontab/--state-dir/--log-dir/--system given here.
- System unit -> /etc/systemd/system (needs root); `--user` -> $XDG_CONFIG_HOME/systemd/user.
- `--dry-run` prints the unit and the commands and changes nothing.
- systemctl missing or failing: exit 1 with a clear message, after the unit file is written.

With `--worker --queue NAME [--queue ...] --broker URL --db URL [--concurrency N]`: the same for
a worker's cronplus-worker.service (service/workerunit.py renders it):

- The environment file holds CRONPLUS_QUEUE, CRONPLUS_BROKER and CRONPLUS_DB (the URLs hold
  passwords): /etc/default/cronplus-worker for the system unit, $XDG_CONFIG_HOME/cronplus/
  worker.env for `--user`; written 0600, atomically; `--dry-run` and every message show the URLs
  cut to their host (redact.py).
- ExecStart= is this cronplus's `worker` (`--system` in the system unit: jobs run as their
  crontab line's users), with the --state-dir/--log-dir given here and --concurrency.
- `--broker` / `--db` may come from CRONPLUS_BROKER / CRONPLUS_DB; a missing one, a broker that
  is not a Redis URL, no --queue, or --http (the supervisor's): one usage line, nothing written.

Environment variables exist for packaging and tests, where no systemd runs: CRONPLUS_UNIT_DIR
(write the unit there instead), CRONPLUS_SYSTEMCTL (the systemctl to run) and
CRONPLUS_WORKER_ENV (the worker's environment file).
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
from collections.abc import Mapping
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
    add_worker_arguments(p)  # --worker: cronplus-worker.service


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

    _enable(commands)
    if previous is not None and previous != text:
        print(f"the unit changed; if cronplus was already running, apply it with: "
              f"{shlex.join(['systemctl', *scope, 'restart', 'cronplus'])}")
    if user:
        print(_linger_note())
    return 0


def _enable(commands: list[list[str]]) -> None:
    """Run each `systemctl` command (daemon-reload, enable --now), saying so; without systemctl,
    one line with what to run."""
    systemctl = _systemctl()
    if systemctl is None:
        manual = " && ".join(shlex.join(["systemctl", *c]) for c in commands)
        raise CronplusError(f"systemctl not found; the unit is written, start it with: {manual}")
    for command in commands:
        _run_systemctl([systemctl, *command])
        print(f"ran: {shlex.join(['systemctl', *command])}")


def _run_systemctl(argv: list[str]) -> None:
    shown = shlex.join(["systemctl", *argv[1:]])
    try:
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CronplusError(f"`{shown}` failed: {exc}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise CronplusError(f"`{shown}` failed: {detail}")


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--worker", action="store_true",
                   help="install cronplus-worker.service: a `cronplus worker` for queue= jobs (docs/workers.md)")
    p.add_argument("--queue", metavar="NAME", action="append", default=[],
                   help="with --worker: the queue it consumes; repeat for several")
    p.add_argument("--broker", metavar="URL", default=None,
                   help="with --worker: the supervisors' broker, redis://HOST:6379/0 (env CRONPLUS_BROKER)")
    p.add_argument("--db", metavar="URL|PATH", default=None,
                   help="with --worker: the supervisors' shared history, postgresql://... (env CRONPLUS_DB)")
    p.add_argument("--concurrency", metavar="N", type=int, default=None,
                   help="with --worker: attempts at once (the worker's default: 4)")


def env_file_path(user: bool, env: Mapping[str, str]) -> Path:
    override = env.get("CRONPLUS_WORKER_ENV")
    if override:
        return Path(override)
    from cronplus.service.workerunit import SYSTEM_ENV_FILE

    if not user:
        return Path(SYSTEM_ENV_FILE)
    config = env.get("XDG_CONFIG_HOME")
    base = Path(config) if config and os.path.isabs(config) else Path.home() / ".config"
    return base / "cronplus" / "worker.env"


def _settings(args: argparse.Namespace) -> dict[str, str]:
    """The environment file's values, checked as `cronplus worker` checks them."""
    if not args.worker:
        raise UsageError("--queue, --broker, --db and --concurrency are for --worker")
    if args.http or args.http_token_file:
        raise UsageError("--http is the supervisor's: a worker serves no web page")
    queues = [q for given in args.queue for q in given.split(",") if q]
    if not queues:
        raise UsageError("install-service --worker needs --queue NAME (the queue=NAME of its jobs)")
    broker = args.broker or os.environ.get("CRONPLUS_BROKER")
    if not broker:
        raise UsageError("install-service --worker needs --broker redis://HOST:6379/0 (or CRONPLUS_BROKER)")
    if not broker.startswith(("redis://", "rediss://", "redis+socket://")):
        from cronplus.redact import redact_url

        raise UsageError(f"--broker {redact_url(broker)}: use a Redis URL, redis://HOST:6379/0")
    db = args.db or os.environ.get("CRONPLUS_DB")
    if not db:
        raise UsageError("install-service --worker needs --db postgresql://... (the supervisors' history;"
                         " or CRONPLUS_DB)")
    if "://" not in db:
        db = os.path.abspath(os.path.expanduser(db))  # an SQLite file beside the supervisor: the service runs in /
    if args.concurrency is not None and not 1 <= args.concurrency <= 1000:
        raise UsageError(f"--concurrency {args.concurrency}: use 1-1000")
    return {"CRONPLUS_QUEUE": ",".join(queues), "CRONPLUS_BROKER": broker, "CRONPLUS_DB": db}


def _shown(values: dict[str, str]) -> dict[str, str]:
    from cronplus.redact import redact_url

    return {key: redact_url(value) if "://" in value else value for key, value in values.items()}


def _write_secret(target: Path, text: str) -> None:
    """0600 from its creation (mkstemp), renamed over the old file: never readable by others."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def install_worker(args: argparse.Namespace) -> int:
    from cronplus.service.workerunit import WORKER_UNIT, env_file_text, render_worker_unit

    user = bool(args.user)
    values = _settings(args)
    dirs = [word for option, attr in (("--state-dir", "state_dir"), ("--log-dir", "log_dir"))
            if (value := getattr(args, attr, None)) for word in (option, os.path.abspath(os.path.expanduser(value)))]
    concurrency = ["--concurrency", str(args.concurrency)] if args.concurrency is not None else []
    exec_start = [*cronplus_argv(), "worker", *([] if user else ["--system"]), *dirs, *concurrency]
    env_path = env_file_path(user, os.environ)
    try:
        text = render_worker_unit(user=user, exec_start=exec_start, env_file=str(env_path))
        env_text = env_file_text(values)
    except ValueError as exc:
        raise CronplusError(f"cannot write a worker unit for this installation: {exc}") from None
    target = unit_dir(user) / WORKER_UNIT
    scope = ["--user"] if user else []
    commands = [[*scope, "daemon-reload"], [*scope, "enable", "--now", WORKER_UNIT]]

    if args.dry_run:
        print(f"# would write {env_path} (mode 0600; URLs shown cut to their host):")
        print(env_file_text(_shown(values)), end="")
        print(f"# would write {target}:")
        print(text, end="")
        for command in commands:
            print(f"# would run: {shlex.join(['systemctl', *command])}")
        return 0

    previous = target.read_text() if target.exists() else None
    for path, secret, content in ((env_path, True, env_text), (target, False, text)):
        try:
            if secret:
                _write_secret(path, content)
            else:
                _write_atomically(path, content)
        except OSError as exc:
            hint = " (run it as root, or use --user)" if not user and isinstance(exc, PermissionError) else ""
            raise CronplusError(f"cannot write {path}: {exc.strerror or exc}{hint}") from None
        print(f"wrote {path}" + (" (mode 0600: the broker and database URLs)" if path == env_path else ""))
    _enable(commands)
    if previous is not None:
        print(f"if the worker was already running, apply a changed unit or environment file with: "
              f"{shlex.join(['systemctl', *scope, 'restart', 'cronplus-worker'])} (a warm shutdown first)")
    return 0
