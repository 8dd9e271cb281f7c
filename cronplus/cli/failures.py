"""One line for a foreseeable failure of the environment: an OSError (a missing, unwritable,
read-only, full or looping path) or an SQLite error on the history database. `describe`
returns `PATH: what is wrong (what to do)`, or None for an exception that is not one of
these (a bug: the caller keeps its traceback).

sqlite3 is never imported here: an SQLite error can only exist once a command imported it,
so it is looked up in `sys.modules` (nothing new on `cronplus --help`'s start-up path).
"""

from __future__ import annotations

import sys
from typing import Any

from cronplus.errors import describe_os_error


def describe(exc: BaseException, args: Any) -> str | None:
    """The one line for `exc`, or None when it is not a foreseeable failure."""
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        from cronplus.paths import from_args
        from cronplus.store.open import sqlite_path
        from cronplus.store.schema import db_problem

        paths = from_args(args)
        return db_problem(sqlite_path(paths.db) or paths.db_path, exc)
    return None
