"""Errors that cross module boundaries. Parse errors carry a SourceLoc and print as FILE:LINE:COL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


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
        return text


class CrontabError(CronplusError):
    """A crontab has one or more errors. str() gives one `FILE:LINE:COL: message` line per error."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))
