"""The crontab language: text -> frozen model.Crontab (SPEC §2), or CrontabError with every error.

Contract:
- `parse_schedule(expr, loc=None) -> Schedule`: one 5-field expression or `@nickname`.
- `parse_crontab(text, path=, system=) -> Crontab`: the whole file; raises CrontabError listing
  ALL errors (fields, annotations, dependencies), one `FILE:LINE:COL: message` each; lint
  findings go to `Crontab.warnings`.
- `load_crontab(path, system=None) -> Crontab`: reads the file (the only I/O here).

Line handling follows cronie (src/entry.c load_entry, src/env.c load_env); the field grammar
lives in fields.py, env lines in envlines.py, `# cronplus:` annotations in annotations.py.
"""

from __future__ import annotations

import re

from cronplus.errors import CrontabError, Diagnostic, SourceLoc
from cronplus.fields import FIELDS, parse_fields, parse_nickname
from cronplus.model import Schedule

_TOKEN = re.compile(r"\S+")


def _split_schedule(expr: str, loc: SourceLoc) -> tuple[list[str], list[int]]:
    texts: list[str] = []
    cols: list[int] = []
    for m in _TOKEN.finditer(expr):
        texts.append(m.group())
        cols.append(loc.col + m.start())
    return texts, cols


def parse_schedule(expr: str, *, loc: SourceLoc | None = None) -> Schedule:
    """`*/10 * * * *` or `@daily` -> Schedule. `loc` is where `expr` starts (default `<expr>:1:1`).

    Unlike a crontab line, nothing may follow the schedule: a sixth field is an error here
    (cron has no seconds field; in a crontab line it would be the start of the command)."""
    loc = loc or SourceLoc(path="<expr>", line=1, col=1)
    texts, cols = _split_schedule(expr, loc)
    if not texts:
        raise CrontabError([Diagnostic(loc=loc, message="bad minute: empty schedule")])
    if texts[0].startswith("@"):
        sched = parse_nickname(texts[0], path=loc.path, line=loc.line, col=cols[0])
        if len(texts) > 1:
            at = SourceLoc(path=loc.path, line=loc.line, col=cols[1])
            raise CrontabError([Diagnostic(loc=at, message=f"bad time specifier: unexpected '{texts[1]}' after {texts[0]}")])
        return sched
    if len(texts) < 5:
        end = SourceLoc(path=loc.path, line=loc.line, col=loc.col + len(expr.rstrip()))
        missing = FIELDS[len(texts)].name
        raise CrontabError(
            [Diagnostic(loc=end, message=f"bad {missing}: missing (a schedule has 5 fields, got {len(texts)})")]
        )
    if len(texts) > 5:
        at = SourceLoc(path=loc.path, line=loc.line, col=cols[5])
        raise CrontabError(
            [
                Diagnostic(
                    loc=at,
                    message=f"bad schedule: {len(texts)} fields; cron has exactly 5 (no seconds or year field)",
                )
            ]
        )
    return parse_fields(texts, cols, path=loc.path, line=loc.line, text=" ".join(texts))
