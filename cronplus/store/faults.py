"""Which errors say that the storage refused a write (a full disk or quota, a read-only file
system, an I/O error), and the one line that says so. Pure but for one statvfs.

- `storage_problem(exc, path) -> str | None`: "no space left on device: <path>" (as df and the
  kernel's strerror put it), "disk quota exceeded: <path>", "cannot write <path>: ...", or None
  for an error that is not about storage (a bug).
- `is_storage_error(exc)`: the same as a yes/no, for code that swallows its own errors.
- `DatabaseUnavailable`: a database server that cannot be reached or whose connection was lost
  (the PostgreSQL store raises it, naming the database without its password); it counts as
  storage refusing the write, so the scheduler's Store holds the write and retries it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from cronplus.errors import CronplusError


class DatabaseUnavailable(CronplusError):
    """The database server cannot be reached, or the connection was lost mid-call."""


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
# sqlite3.c: primary result codes (the low byte of an extended code).
_SQLITE_FULL, _SQLITE_IOERR, _SQLITE_READONLY = 13, 10, 8


def storage_problem(exc: BaseException, path: str | Path) -> str | None:
    """The one line to log when `exc` says the storage under `path` refused a write, else None
    (a bug, or not about storage). A full disk (ENOSPC, a quota, SQLITE_FULL) reads "no space
    left on device: <path>", as df and the kernel's strerror put it. An error raised while
    handling one (a ROLLBACK after SQLite already rolled back) is judged by the one it hides."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 8:
        problem = _storage_problem(cause, path)
        if problem is not None:
            return problem
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return None


def _storage_problem(exc: BaseException, path: str | Path) -> str | None:
    if isinstance(exc, DatabaseUnavailable):
        return str(exc)  # names the database (redacted) and what happened
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        if exc.errno == errno.ENOSPC:
            return f"no space left on device: {path}"
        if exc.errno == errno.EDQUOT:
            return f"disk quota exceeded: {path}"
        return f"cannot write {path}: {exc.strerror or exc}"
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if code == _SQLITE_FULL:
            return f"no space left on device: {path}"
        if code == _SQLITE_IOERR and _device_full(path):  # e.g. no room for the -shm file at open
            return f"no space left on device: {path}"
        if code in (_SQLITE_IOERR, _SQLITE_READONLY):
            return f"cannot write {path}: {exc}"
    return None


def _device_full(path: str | Path) -> bool:
    """No block left for us on the file system holding `path` (SQLite reports some ENOSPC as a
    plain I/O error: growing the -shm file, for one)."""
    target = Path(path)
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        st = os.statvfs(target)
    except OSError:
        return False
    return st.f_bavail == 0


def is_storage_error(exc: BaseException) -> bool:
    """For code that swallows its own errors (alerting): these must reach the Store, which holds
    the whole write (the run's end and its alert together) instead of committing half of it."""
    return storage_problem(exc, "") is not None
