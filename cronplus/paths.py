"""Where cronplus keeps things (README "Where files live"): user vs system mode, XDG and systemd directories,
command-line and environment overrides. Creating (and checking) directories is the only I/O here.
The environment is a mapping passed in (`env`, os.environ when None): the CLI passes its
`args.environ`, so a command run in-process with another environment resolves from that one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYSTEM_CRONTAB = Path("/etc/cronplus/crontab")
SYSTEM_STATE = Path("/var/lib/cronplus")
SYSTEM_LOGS = Path("/var/log/cronplus")
RUNTIME_VARS = ("RUNTIME_DIRECTORY",)


@dataclass(frozen=True, kw_only=True, slots=True)
class Paths:
    crontab: Path
    state_dir: Path
    log_dir: Path
    system: bool  # the crontab has a user field
    # `--db URL|PATH` / CRONPLUS_DB; None: the state dir's history.db. Never in a repr: a URL may
    # hold a password (store.open.shown prints it).
    db_url: str | None = field(default=None, repr=False)
    # RUNTIME_DIRECTORY of the environment resolved from, as (name, value)
    # pairs: rundir.outputs_dir picks where $CRONPLUS_OUTPUT files go from them.
    runtime_env: tuple[tuple[str, str], ...] = ()

    @property
    def db_path(self) -> Path:
        """The state dir's SQLite file (the default store; control files live beside it)."""
        return self.state_dir / "history.db"

    @property
    def db(self) -> str | Path:
        """Where history is: what cronplus.store.open opens (a path or a URL; may hold a
        password: shown only through store.open.shown)."""
        return self.db_url if self.db_url else self.db_path

    @property
    def control_socket(self) -> Path:
        return self.state_dir / "control.sock"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "supervisor.pid"

    def ensure(self) -> None:
        """Create state and log directories owner-only (0700); refuse (CronplusError) one that
        another user owns or can write (filechecks.ensure_private_dir). Call before writing."""
        from cronplus.filechecks import ensure_private_dir

        ensure_private_dir(self.state_dir, "state directory")
        ensure_private_dir(self.log_dir, "log directory")


def is_system_format(path: Path, system_flag: bool = False) -> bool:
    """A system-format crontab (with a user field) is one under /etc, or any file with --system."""
    if system_flag:
        return True
    try:
        resolved = path.resolve()
    except OSError:
        resolved = path
    return resolved == Path("/etc/crontab") or resolved.parent in (Path("/etc/cron.d"), Path("/etc/cronplus"))


def environ_of(args: Any) -> Mapping[str, str]:
    """The environment a CLI command runs with: `args.environ` (cli.main sets it), else os.environ."""
    env: Mapping[str, str] | None = getattr(args, "environ", None)
    return os.environ if env is None else env


def home(env: Mapping[str, str]) -> Path:
    """$HOME of `env`, else the password database's (what Path.home() does with os.environ)."""
    value = env.get("HOME")
    if value:
        return Path(value)
    import pwd

    return Path(pwd.getpwuid(os.getuid()).pw_dir)


def _expand(value: str | os.PathLike[str], env: Mapping[str, str]) -> Path:
    """`~` and `~/x` from `env`'s HOME; `~user` from the password database."""
    text = os.fspath(value)
    if text == "~" or text.startswith("~/"):
        return home(env) / text[2:]
    return Path(text).expanduser()


def _xdg(var: str, fallback: str, env: Mapping[str, str]) -> Path:
    value = env.get(var)
    if value and os.path.isabs(value):
        return Path(value)
    return home(env) / fallback


def resolve(
    *,
    crontab: str | os.PathLike[str] | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    system: bool = False,
    env: Mapping[str, str] | None = None,
    db: str | None = None,
) -> Paths:
    """Resolve paths: explicit arguments, then CRONPLUS_* variables of `env` (default
    os.environ), then mode defaults. `db` (`--db`, else CRONPLUS_DB): a URL is kept as it is,
    a path has `~` expanded."""
    env = os.environ if env is None else env
    system_mode = system or os.geteuid() == 0
    crontab = crontab or env.get("CRONPLUS_CRONTAB")
    state_dir = state_dir or env.get("CRONPLUS_STATE_DIR")
    log_dir = log_dir or env.get("CRONPLUS_LOG_DIR")
    db = db or env.get("CRONPLUS_DB") or None

    if crontab:
        crontab_path = _expand(crontab, env)
    elif system_mode:
        crontab_path = SYSTEM_CRONTAB
    else:
        crontab_path = _xdg("XDG_CONFIG_HOME", ".config", env) / "cronplus" / "crontab"

    if state_dir:
        state = _expand(state_dir, env)
    elif system_mode:
        state = Path(env.get("STATE_DIRECTORY", "").split(":")[0] or SYSTEM_STATE)
    else:
        state = _xdg("XDG_STATE_HOME", ".local/state", env) / "cronplus"

    if log_dir:
        logs = _expand(log_dir, env)
    elif state_dir or not system_mode:
        logs = state / "logs"
    else:
        logs = Path(env.get("LOGS_DIRECTORY", "").split(":")[0] or SYSTEM_LOGS)

    return Paths(
        crontab=crontab_path,
        state_dir=state,
        log_dir=logs,
        system=is_system_format(crontab_path, system),
        db_url=db if db is None or "://" in db else str(_expand(db, env)),
        runtime_env=tuple((name, env[name]) for name in RUNTIME_VARS if env.get(name)),
    )


def from_args(args: Any, *, crontab: str | None = None) -> Paths:
    """Paths from the global CLI options (`--crontab`, `--state-dir`, `--log-dir`, `--system`)
    and a command's `--db`; `crontab` stands in for a missing `--crontab`."""
    return resolve(
        crontab=getattr(args, "crontab", None) or crontab,
        state_dir=getattr(args, "state_dir", None),
        log_dir=getattr(args, "log_dir", None),
        system=bool(getattr(args, "system", False)),
        env=environ_of(args),
        db=getattr(args, "db", None),
    )
