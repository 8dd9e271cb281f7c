"""Trust checks on the files and directories cronplus acts on, before it acts (issue 9 §6).

Contract:
- `read_crontab(path, *, system) -> str`: the text of a crontab that is safe to run, read from
  the same open file that was checked. Raises CrontabError (one `PATH: REASON: what to do` line,
  cron's words for the reason) for a file cron would refuse, CronplusError when it cannot be read.
- `ensure_private_dir(path, what)`: create a missing state/log directory 0700 (its missing
  parents too), then refuse, with CronplusError, one that another user could tamper with.

The crontab rules follow cron's `database.c` (cronie `check_open`, Debian's cron): a file whose
jobs run as root ("strict": a system-format file, or any file when we are root) must be a regular
file ("NOT REGULAR") owned by root ("WRONG FILE OWNER"), writable by nobody else ("BAD FILE
MODE": Debian's `st_mode & 022`; cronie's stricter 07533 mask would also refuse an executable
file, which Debian allows in /etc/cron.d) with one name ("NUMBER OF HARD LINKS > 1"). A user's
own crontab run by that user must be owned by them (or root), not world-writable, and not
group-writable unless the group is their own private group (a checkout made under umask 002).

Directory rules follow OpenSSH's StrictModes (`secure_path`): the directory and each of its
ancestors must be owned by root or by us, and writable by no one else; an ancestor with the
sticky bit (/tmp) may be writable by all, since others cannot rename what we own in it. Two
group exceptions keep ordinary systems working: a user-private group, and a root-owned
ancestor writable by its group (Ubuntu's /var/log is root:syslog 0775).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from cronplus.errors import CronplusError, CrontabError, Diagnostic, SourceLoc, escape, os_reason


class FileDiagnostic(Diagnostic):
    """A problem with the file as a whole: printed `PATH: message (hint)`, no line or column."""

    __slots__ = ()

    def __str__(self) -> str:
        text = f"{self.loc.path}: {self.message}"
        return escape(f"{text} ({self.hint})" if self.hint else text)  # as Diagnostic: a path may hold ESC


def _who(uid: int) -> str:
    import pwd

    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def _private_group(st: os.stat_result) -> bool:
    """The file's group is its owner's user-private group (same name, no other member)."""
    import grp
    import pwd

    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
        group = grp.getgrgid(st.st_gid)
    except KeyError:
        return False
    return group.gr_name == owner and set(group.gr_mem) <= {owner}


def crontab_problem(path: str, st: os.stat_result, *, system: bool, euid: int) -> FileDiagnostic | None:
    """Why cron would refuse to run this file, or None."""
    strict = system or euid == 0
    loc = SourceLoc(path=path, line=1, col=1)
    if not stat.S_ISREG(st.st_mode):
        return FileDiagnostic(loc=loc, message="NOT REGULAR: a crontab must be a regular file")
    if st.st_uid not in (0, euid):
        runs_as = "root" if euid == 0 else f"you ({_who(euid)})"
        fix = f"chown root {path}" if euid == 0 else f"use a copy of your own: cp {path} ~/crontab"
        return FileDiagnostic(loc=loc, message=f"WRONG FILE OWNER: owned by {_who(st.st_uid)}; its jobs would run as"
                              f" {runs_as}, so it must be owned by root{'' if euid == 0 else ' or you'}", hint=fix)
    writable = st.st_mode & (0o022 if strict else 0o002)
    if not strict and st.st_mode & 0o020 and not _private_group(st):
        writable |= 0o020
    if writable:
        who = "group and others" if writable & 0o022 == 0o022 else "others" if writable & 0o002 else "its group"
        mode = stat.S_IMODE(st.st_mode)
        return FileDiagnostic(loc=loc, message=f"BAD FILE MODE: {mode:04o} lets {who} write it, and whoever writes it"
                              f" runs commands as {'root' if strict else 'you'}", hint=f"chmod go-w {path}")
    if strict and st.st_nlink != 1:
        return FileDiagnostic(loc=loc, message=f"NUMBER OF HARD LINKS > 1 ({st.st_nlink}): another name can change it",
                              hint=f"make it a file of its own: cp {path} {path}.new && mv {path}.new {path}")
    return None


def _link_problem(path: str, euid: int) -> FileDiagnostic | None:
    """A symlink another user made can point us at any root-owned file whose lines they can
    influence (a log): the link's owner counts as the file's (Debian's cron opens O_NOFOLLOW)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode) and st.st_uid not in (0, euid):
        return FileDiagnostic(loc=SourceLoc(path=path, line=1, col=1),
                              message=f"WRONG FILE OWNER: it is a symlink made by {_who(st.st_uid)}",
                              hint=f"replace it with a file of {'root' if euid == 0 else 'yours'}")
    return None


def read_crontab(path: str | os.PathLike[str], *, system: bool) -> str:
    """Open, check the open file (no window for a swap between check and read), read."""
    name = os.fspath(path)
    try:
        # O_NONBLOCK: a FIFO planted in place of the file must not hang us (cronie does the same).
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CronplusError(f"{name}: no such crontab file") from None
    except OSError as exc:
        raise CronplusError(f"{name}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        euid = os.geteuid()
        problem = crontab_problem(name, os.fstat(fd), system=system, euid=euid) or _link_problem(name, euid)
        if problem is not None:
            raise CrontabError([problem])
        try:
            data = f.read()
        except OSError as exc:
            raise CronplusError(f"{name}: cannot read: {exc.strerror}") from None
    return data.decode("utf-8", errors="surrogateescape")


def _dir_problem(st: os.stat_result, *, euid: int, ancestor: bool) -> tuple[str, str] | None:
    """(what is wrong, the command that fixes it) or None."""
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory", "remove it"
    if st.st_uid not in (0, euid):
        expected = "root" if euid == 0 else f"you ({_who(euid)}) or root"
        return f"owned by {_who(st.st_uid)}, expected {expected}", "chown root" if euid == 0 else "chown $USER"
    writable = st.st_mode & 0o022
    if ancestor and st.st_mode & stat.S_ISVTX:
        writable = 0  # /tmp: others cannot rename or remove what is not theirs
    if writable & 0o020 and ((st.st_uid == 0 and ancestor) or (st.st_uid != 0 and _private_group(st))):
        # A root-owned ancestor writable by a system group is the distribution's layout
        # (Ubuntu's /var/log is root:syslog 0775); a user-private group is the user alone.
        writable &= ~0o020
    if writable:
        who = "others" if writable & 0o002 else "its group"
        return f"writable by {who} (mode {stat.S_IMODE(st.st_mode):04o})", "chmod go-w"
    return None


def _make_dirs(path: Path) -> None:
    """mkdir -p with every created directory 0700 (pathlib gives only the last one `mode`)."""
    missing = []
    while not os.path.lexists(path):
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it: checked below
            os.mkdir(d, 0o700)


def ensure_private_dir(path: str | os.PathLike[str], what: str) -> None:
    """Create `path` (0700) if missing; refuse it if another user could change what is in it.
    `what` names it in the message ("state directory", "log directory")."""
    given = Path(os.path.abspath(path))
    try:
        _make_dirs(given)
    except OSError as exc:  # under /proc, under a file, an unwritable or read-only parent
        option = "--log-dir" if what.startswith("log") else "--state-dir"
        where = f" ({escape(os.fsdecode(exc.filename))})" if exc.filename and exc.filename != str(given) else ""
        raise CronplusError(f"cannot create {what} {escape(str(given))}: {os_reason(exc)[0]}{where}"
                            f" (choose another with {option})") from None
    real = Path(os.path.realpath(given))
    euid = os.geteuid()
    current = real
    while True:
        found = _dir_problem(os.stat(current), euid=euid, ancestor=current != real)
        if found is not None:
            problem, fix = found
            if current == real and problem == "not a directory":
                option = "--log-dir" if what.startswith("log") else "--state-dir"
                raise CronplusError(f"{what} {escape(str(real))} is a file, not a directory "
                                    f"(move it away, or choose another with {option})")
            where = problem if current == real else f"its parent {current} is {problem}"
            raise CronplusError(f"refusing {what} {real}: {where}; another user could replace the files cronplus"
                                f" writes there ({fix} {current}, or choose another directory)")
        if current.parent == current:
            break
        current = current.parent
    if os.stat(real).st_uid == euid:
        os.chmod(real, 0o700)  # README "Where files live": state dirs are 0700, also when they existed already
