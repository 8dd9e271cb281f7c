"""Where attempts' `$CRONPLUS_OUTPUT` files are made (engine/runio.py OutputFile): in the unit's
runtime directory (a tmpfs, systemd's RuntimeDirectory=) when there is one, else in the state
directory. Creating a file costs ~4 us of the supervisor's CPU on tmpfs against 100-200 us on an
ext4 without a journal (ext4_create scans the inode table for a recently deleted inode), every run.

`outputs_dir(state_dir, env)`, the first that fits:
1. `$RUNTIME_DIRECTORY/outputs/<key>` (systemd's RuntimeDirectory=, system and user units alike;
   its first entry when it is a colon list): it lives exactly as long as the unit;
2. `<state_dir>/outputs`, as before. A system crontab's jobs of other users cannot reach a file
   there (the state dir is 0700, and stays so): their `$CRONPLUS_OUTPUT` works under the system
   unit (RuntimeDirectory=, whose directories are then 0711), not in a supervisor run by hand.
Not `$XDG_RUNTIME_DIR`: its lifetime is the user's login (the XDG base directory spec: removed
when the user fully logs out), and a supervisor started by hand outlives a logout (nohup, tmux):
every job would then fail to start, for want of its outputs file.
`<key>` is 16 hex digits of the SHA-256 of the state dir's resolved path. A runtime base is shared
(by every supervisor of a user, or inherited by what a unit starts), while runio.sweep, at a
supervisor's start, removes every `.out` file of another pid in its directory: that is safe only
in a directory one state dir owns, since one supervisor or in-process run holds a state dir at a
time (control.SupervisorLock).

Directories made here are 0700 (0711 for a system crontab's, `other_users`). The base and each
directory below it must be a directory, not a symlink, owned by our euid and not writable by group
or others; otherwise one warning line (the "cronplus" logger) names the path, what is wrong, what
to do and where the files go instead (the state dir); never an exception. Checked once, when the supervisor (or the
in-process run) starts: below a base that no one else may write, no one can swap a directory
afterwards. Nothing here is on the `cronplus --help` path (service modules import it lazily).
No /dev/shm or /tmp: shared sticky directories where another user can squat a name first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from cronplus.errors import escape

if TYPE_CHECKING:
    from cronplus.paths import Paths

log = logging.getLogger("cronplus")

WHAT = "$CRONPLUS_OUTPUT files"


class _Refused(Exception):
    """A runtime directory we must not use: `str()` says why, and what to do."""


def outputs_dir(state_dir: Path, env: Mapping[str, str] | None = None, *, other_users: bool = False) -> Path:
    """The directory for `state_dir`'s outputs files, made (0700) and checked when it is a
    runtime one; `env` (os.environ when None) supplies RUNTIME_DIRECTORY. `other_users` (a
    system crontab: jobs run as their line's user, each outputs file chowned to it): the runtime
    directories are 0711 instead, so that user can reach its own file by its path (search, not
    list: the files stay 0600, and no one but us may create there); the state dir (0700) cannot
    serve them, and the module docstring says so. See the module docstring."""
    env = os.environ if env is None else env
    key = state_key(state_dir)
    refusals: list[str] = []
    chosen: Path | None = None
    runtime = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime and os.path.isabs(runtime):
        chosen = _below(Path(runtime), ("outputs", key), refusals, 0o711 if other_users else 0o700)
    if chosen is None:
        chosen = Path(state_dir).absolute() / "outputs"
    for refusal in refusals:
        log.warning("not using %s; they go to %s instead", refusal, escape(str(chosen)))
    return chosen


def state_key(state_dir: Path) -> str:
    """16 hex digits naming `state_dir` (its resolved path: two spellings of one state dir, as
    they share one lock, share one directory, whose leftovers are then swept)."""
    try:
        resolved = Path(state_dir).resolve()
    except OSError:  # a loop of symlinks: the state dir's own check reports it
        resolved = Path(state_dir).absolute()
    return hashlib.sha256(os.fsencode(resolved)).hexdigest()[:16]


def _below(base: Path, parts: tuple[str, ...], refusals: list[str], mode: int) -> Path | None:
    """base/parts..., each made when missing, checked, and given `mode` (0700: others may not
    even list the runs going on; 0711 for other users' jobs); the base keeps the mode its maker
    gave it, plus the search bit for group and others when other users' jobs need it (a
    RuntimeDirectoryMode=0700). None (with the refusal noted) when one is not fit."""
    try:
        have = _check(base)
        if mode & 0o011 and have & 0o011 != 0o011:
            _chmod(base, have | 0o011)
        path = base
        for part in parts:
            path = path / part
            try:
                os.mkdir(path, mode)
            except FileExistsError:
                pass
            except OSError as exc:
                raise _Refused(f"{escape(str(path))} for {WHAT}: cannot create it: {exc.strerror or exc}") from None
            if _check(path) != mode:
                _chmod(path, mode)
    except _Refused as refused:
        refusals.append(str(refused))
        return None
    return path


def _chmod(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError as exc:  # a read-only file system
        raise _Refused(f"{escape(str(path))} for {WHAT}: cannot chmod {mode:o} it: {exc.strerror or exc}") from None


def _check(path: Path) -> int:
    """Its mode; raise _Refused unless `path` is a directory (not a symlink) of ours that only we
    may write."""
    shown = f"{escape(str(path))} for {WHAT}"
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise _Refused(f"{shown}: {exc.strerror or exc}") from None
    euid = os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        raise _Refused(f"{shown}: it is a symbolic link (remove it)")
    if not stat.S_ISDIR(st.st_mode):
        raise _Refused(f"{shown}: it is not a directory (remove it)")
    if st.st_uid != euid:
        raise _Refused(f"{shown}: it is owned by uid {st.st_uid}, not by us (uid {euid}) (remove it, or chown it)")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        raise _Refused(f"{shown}: another user may write in it (mode {mode:04o}; chmod 700 it)")
    return mode


def outputs_dir_of(paths: Paths) -> Path:
    """outputs_dir for `paths`' state dir, from the environment `paths` was resolved from."""
    return outputs_dir(paths.state_dir, dict(paths.runtime_env), other_users=paths.system)
