"""Errors that cross module boundaries. Parse errors carry a SourceLoc and print as FILE:LINE:COL.

`shown(text, limit=40)` is how any text from a crontab (a token, a name, a path) appears in a
message: characters that are not printable (control characters such as ESC or NUL, invisible
format characters, and the surrogate escapes that undecodable bytes become) are written as
`\\xNN` / `\\uNNNN` (an undecodable byte as the `\\xNN` of the byte itself), and text longer
than `limit` characters is cut with `...`. A `Diagnostic` prints through the same escaping, so a
crafted file cannot move the cursor, clear the terminal or forge log lines.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

_CUT = "..."


def escape(text: str) -> str:
    """`text` with every non-printable character escaped (see the module docstring)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the undecodable byte 0x80-0xFF itself
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(text: str, limit: int = 40) -> str:
    """File content for a message: escaped, and cut to `limit` characters (plus `...`)."""
    if len(text) > limit:
        return escape(text[:limit]) + _CUT
    return escape(text)


# errno -> (what is wrong, what to do). The path is put in front.
_OS_ERRORS: dict[int, tuple[str, str]] = {
    errno.EACCES: ("permission denied", "run it as the user who owns it"),
    errno.EPERM: ("permission denied", "run it as the user who owns it"),
    errno.ENOENT: ("no such file or directory", "check the path, or create its parent directory"),
    errno.ENOTDIR: ("a part of the path is a file, not a directory", "move that file away, or choose another path"),
    errno.EROFS: ("read-only file system", "choose a path on a writable file system (--state-dir, --log-dir)"),
    errno.ENOSPC: ("no space left on device", "free some space, then run it again"),
    errno.EDQUOT: ("disk quota exceeded", "free some space, then run it again"),
    errno.ELOOP: ("too many levels of symbolic links", "fix the symlink loop, or choose another path"),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter path"),
    errno.EEXIST: ("exists and is not a directory", "remove it, or choose another path"),
    errno.EISDIR: ("is a directory", "give the path of a file"),
    errno.EIO: ("input/output error", "check the disk (dmesg), then run it again"),
}


def os_reason(exc: OSError) -> tuple[str, str]:
    """(what is wrong, what to do; may be empty) for an OSError, in words."""
    return _OS_ERRORS.get(exc.errno or 0, (exc.strerror or type(exc).__name__, ""))


def describe_os_error(exc: OSError) -> str:
    """`PATH: what is wrong (what to do)` for an OSError (`permission denied: PATH (...)`)."""
    what, todo = os_reason(exc)
    where = exc.filename if exc.filename is not None else None
    if where is None:
        return f"{what}{f' ({todo})' if todo else ''}"
    text = escape(os.fsdecode(where))
    if exc.filename2 is not None:
        text += f" -> {escape(os.fsdecode(exc.filename2))}"
    if exc.errno in (errno.EACCES, errno.EPERM):  # the wording `permission denied: PATH` is kept
        return f"permission denied: {text} ({todo})"
    return f"{text}: {what}{f' ({todo})' if todo else ''}"


class CronplusError(Exception):
    """An error meant for the user: the CLI prints its message and exits 1."""

    exit_code = 1


class UsageError(CronplusError):
    """Bad command-line usage: exit 2."""

    exit_code = 2


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, kw_only=True, slots=True)
class SourceLoc:
    """Where something came from: 1-based line and column in a file."""

    path: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Diagnostic:
    """One error or warning about a crontab, printed on one line."""

    loc: SourceLoc
    message: str
    severity: Severity = Severity.ERROR
    hint: str | None = None

    def __str__(self) -> str:
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        text = f"{self.loc}: {prefix}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return escape(text)  # messages quote through shown(); this also covers the path


MAX_SHOWN = 20  # diagnostics printed or logged for one file; the rest are counted


def capped(diagnostics: Iterable[Diagnostic], limit: int = MAX_SHOWN) -> list[str]:
    """The lines to print for `diagnostics`: the first `limit`, then "... and N more error(s)"
    (and warnings), so an executable passed as a crontab cannot flood a terminal or a journal."""
    items = list(diagnostics)
    lines = [str(d) for d in items[:limit]]
    rest = items[limit:]
    if rest:
        errors = sum(1 for d in rest if d.severity is Severity.ERROR)
        warnings = len(rest) - errors
        parts = [f"{n} more {word}{'s' if n != 1 else ''}" for n, word in ((errors, "error"), (warnings, "warning")) if n]
        lines.append("... and " + " and ".join(parts))
    return lines


class CrontabError(CronplusError):
    """A crontab has one or more errors. str() gives one `FILE:LINE:COL: message` line per error,
    the first MAX_SHOWN of them and a count of the rest."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__("\n".join(capped(self.diagnostics)))


class InvalidCrontab(CrontabError):
    """CrontabError whose `diagnostics` are the errors only; the warnings found on the way
    (MAILTO, missing newline, CRLF) ride along in `warnings` for `cronplus check`."""

    def __init__(self, errors: list[Diagnostic], warnings: list[Diagnostic]) -> None:
        super().__init__(errors)
        self.warnings: tuple[Diagnostic, ...] = tuple(warnings)


class ParserBug(InvalidCrontab):
    """The last-resort guard fired: the parser raised something other than CrontabError. The
    file is refused like an invalid one (one line, naming the file), never a traceback; the
    line says where in cronplus it happened so the bug can be reported. Tests assert that no
    input reaches this (tests/test_parse_fuzz.py)."""

    def __init__(self, path: str, exc: BaseException) -> None:
        import os
        import traceback

        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
        # Only the type and place: the exception's text may quote the file (a secret URL).
        message = (f"internal error in the parser ({type(exc).__name__}{where}): a cronplus bug, "
                   "please report it with this file; the file is refused")
        super().__init__([Diagnostic(loc=SourceLoc(path=path, line=1, col=1), message=message)], [])
