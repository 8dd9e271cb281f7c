"""The five cron time fields -> value sets, with the column of every error.

Contract: `parse_fields(texts, cols, path, line)` takes the five field texts and their 1-based
columns and returns a `model.Schedule` or raises `CrontabError` listing every bad field.
`parse_nickname(word, col, path, line)` does the same for `@daily` and friends.
`parse_schedule(expr, loc=None)` takes one whole expression (`cronplus next '*/5 * * * *'`).

The grammar is cronie's `get_list`/`get_range`/`get_number` (src/entry.c):

    list  = range {"," range}
    range = "*" ["/" step] | value ["-" value ["/" step]]
    value = digits | three-letter name (month and day-of-week only, any case)

Digits are ASCII `0-9` only, as cron's `isdigit()` in the C locale: `１` (full-width) and `①`
are not numbers. Echoed field text goes through `errors.shown` (escaped, cut to 40 chars).

Where deployed crons read the same text differently (docs/cron-compat.md, "Where deployed crons
disagree") we reject it with a message naming the disagreement and a hint how to write the
intent unambiguously. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from cronplus.errors import CrontabError, Diagnostic, ParserBug, SourceLoc, shown
from cronplus.model import Schedule

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FULL_MONTHS = (
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"]
)
_FULL_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
# Quartz / croniter extensions that no Unix cron implements.
_EXTENSIONS = {"L": "last", "W": "nearest weekday", "?": "no value", "H": "hashed", "R": "random"}
DISAGREE = "deployed crons disagree on it"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str  # cron's word after "bad ": minute, hour, day-of-month, month, day-of-week
    lo: int
    hi: int
    names: tuple[str, ...] = ()  # three-letter names; index + lo is the value


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("minute", 0, 59),
    FieldSpec("hour", 0, 23),
    FieldSpec("day-of-month", 1, 31),
    FieldSpec("month", 1, 12, MONTH_NAMES),
    FieldSpec("day-of-week", 0, 7, DOW_NAMES),  # cron allows 7 for Sunday and folds it to 0
)

# cronie's load_entry: the @ strings, as the 5-field expressions they stand for.
NICKNAMES: dict[str, str] = {
    "reboot": "",
    "yearly": "0 0 1 1 *",
    "annually": "0 0 1 1 *",
    "monthly": "0 0 1 * *",
    "weekly": "0 0 * * 0",
    "daily": "0 0 * * *",
    "midnight": "0 0 * * *",
    "hourly": "0 * * * *",
}


class FieldError(Exception):
    """One bad field: `offset` is the 0-based position in the field text of what is wrong."""

    def __init__(self, offset: int, detail: str, hint: str | None = None) -> None:
        super().__init__(detail)
        self.offset = offset
        self.detail = detail
        self.hint = hint


def _word_value(word: str, spec: FieldSpec, offset: int) -> int:
    """A name in a field: three letters, any case (cronie: strcasecmp against its table)."""
    low = word.lower()
    if low in spec.names:
        return spec.names.index(low) + spec.lo
    if word.upper() in _EXTENSIONS and len(word) == 1:
        raise FieldError(
            offset,
            f"'{word}' ({_EXTENSIONS[word.upper()]}) is not cron syntax",  # one ASCII letter
            "cron has no L, W, ?, H or R; list the values you mean",
        )
    full = _FULL_MONTHS if spec.names is MONTH_NAMES else _FULL_DAYS if spec.names else ()
    if low in full:
        short = low[:3]
        raise FieldError(offset, f"'{word}': cron takes only three-letter names", f"write {short}")
    if spec.names:
        return_names = ",".join(spec.names)
        raise FieldError(offset, f"'{shown(word)}' is not a {spec.name} name", f"names are {return_names}")
    raise FieldError(offset, f"'{shown(word)}' is not a number")


_MAX_DIGITS = 6  # more (after leading zeros) is out of every field's range; int() stays cheap


def _digits_end(text: str, pos: int) -> int:
    """End of the run of ASCII digits at `pos` (cron's isdigit() in the C locale: not `１`)."""
    end, n = pos, len(text)
    while end < n and "0" <= text[end] <= "9":
        end += 1
    return end


def _scan_value(text: str, pos: int, spec: FieldSpec) -> tuple[int, int]:
    """Read one value at `pos`: (value, end position). Range is checked by the caller."""
    end = _digits_end(text, pos)
    n = len(text)
    if end > pos:
        if len(text[pos:end].lstrip("0")) > _MAX_DIGITS:
            raise FieldError(pos, f"{shown(text[pos:end])} is out of range {spec.lo}-{spec.hi}")
        return int(text[pos:end]), end
    while end < n and (text[end].isalpha() or text[end] == "?"):
        end += 1
    if end > pos:
        return _word_value(text[pos:end], spec, pos), end
    if pos >= n:
        raise FieldError(pos, "a value is missing")
    ch = text[pos]
    if ch == "~":
        raise FieldError(
            pos,
            f"'~' random ranges are cronie-only; {DISAGREE} (other crons reject the line)",
            "pick a fixed value",
        )
    if ch.isnumeric():  # `１`, `①`, `٣`: digits to Python's int(), not to cron
        raise FieldError(pos, f"'{shown(ch)}' is not a digit: cron reads only ASCII 0-9", "write the number in 0-9")
    raise FieldError(pos, f"unexpected '{shown(ch)}'")


def _check_range(value: int, spec: FieldSpec, offset: int, note: str = "") -> None:
    if not spec.lo <= value <= spec.hi:
        hint = f"keep both range ends within {spec.lo}-{spec.hi}" if note else None
        raise FieldError(offset, f"{value} is out of range {spec.lo}-{spec.hi}{note}", hint)


def _scan_step(text: str, pos: int) -> tuple[int, int]:
    """Read `/step` digits at `pos` (just after the slash): (step, end)."""
    end = _digits_end(text, pos)
    if end == pos:
        raise FieldError(pos, "a step must be a number after '/'")
    if len(text[pos:end].lstrip("0")) > _MAX_DIGITS:
        raise FieldError(pos, f"step {shown(text[pos:end])} is larger than any field")
    step = int(text[pos:end])
    if step == 0:
        raise FieldError(pos, "step 0 (a step must be at least 1)")
    return step, end


def _check_step(step: int, spec: FieldSpec, offset: int, first: int) -> None:
    """A step up to the field's size (`*/60`, `0 */24`, `*/31`, `*/12`, `*/8`) is accepted and,
    like any step past the range's end, selects the range's first value. get_range in entry.c:
    Vixie 4.1, Debian's 3.0pl1 and cronie accept every step >= 1 ("if (ch == EOF || num3 == 0)
    return EOF") and fill `for (i = num1; i <= num2; i += num3)`, one bit past the range's
    end (cronie 1.7 only adds "Warning: Step size %i higher than possible maximum"); OpenBSD's
    cron reads the step with `get_number(&num3, 0, max_step, ...)`, `max_step = high + 1 - low`,
    so it refuses a step beyond the field's size. That step stays an error."""
    if step > spec.hi - spec.lo + 1:
        raise FieldError(
            offset,
            f"step {step} is larger than the field ({spec.lo}-{spec.hi}, {spec.hi - spec.lo + 1} values); "
            f"{DISAGREE} (rejected, or first value only)",
            f"write the single value {first}",
        )


def _garbage(text: str, pos: int, after: str) -> FieldError:
    return FieldError(
        pos,
        f"unexpected '{shown(text[pos:])}' after '{shown(after)}'; {DISAGREE} (some ignore the rest, some reject the line)",
        f"write {shown(after)}" if after != "*" or text[pos] not in "0123456789*" else "write * or a value list",
    )


def _parse_term(text: str, spec: FieldSpec, out: set[int]) -> None:
    """One comma-separated term of a field, added to `out`."""
    if not text:
        raise FieldError(0, "empty list item")
    if text[0] == "*":
        lo, hi, pos = spec.lo, spec.hi, 1
        if pos < len(text) and text[pos] != "/":
            raise _garbage(text, pos, "*")
        step = 1
        if pos < len(text):
            step, pos = _scan_step(text, pos + 1)
            _check_step(step, spec, 2, lo)
            if pos < len(text):
                raise _garbage(text, pos, text[:pos])
        out.update(range(lo, hi + 1, step))
        return
    first, pos = _scan_value(text, 0, spec)
    if pos == len(text):
        _check_range(first, spec, 0)
        out.add(first)
        return
    if text[pos] == "/":
        raise FieldError(
            0,
            f"'{shown(text)}': a step needs a range or '*' before it",
            f"write {first}-{spec.hi}{shown(text[pos:])} or */{shown(text[pos + 1:]) or 'N'}",
        )
    if text[pos] != "-":
        raise _garbage(text, pos, text[:pos])
    second_at = pos + 1
    second, pos = _scan_value(text, second_at, spec)
    step = 1
    step_at = -1
    if pos < len(text) and text[pos] == "/":
        step_at = pos + 1
        step, pos = _scan_step(text, step_at)
    if pos < len(text):
        raise _garbage(text, pos, text[:pos])
    hidden = ""
    if step_at >= 0:
        hidden = f", hidden by the step /{step}; {DISAGREE} (rejected, truncated or ignored)"
    _check_range(first, spec, 0, hidden)
    _check_range(second, spec, second_at, hidden)
    if step_at >= 0:
        _check_step(step, spec, step_at, first)
    if first > second:
        raise FieldError(
            0,
            f"reversed range {shown(text[:pos] if step_at < 0 else text)}; {DISAGREE} "
            "(rejected, wrapped around, or empty)",
            f"write {first}-{min(spec.hi, 6 if spec.names is DOW_NAMES else spec.hi)},{spec.lo}-{second}"
            " to wrap around",
        )
    out.update(range(first, second + 1, step))


@lru_cache(maxsize=4096)  # real crontabs repeat the same few field texts; errors are not cached
def parse_field(text: str, spec: FieldSpec) -> frozenset[int]:
    """A whole field (comma list) -> its values. Raises FieldError with an offset into `text`."""
    out: set[int] = set()
    start = 0
    for term in text.split(","):
        try:
            _parse_term(term, spec, out)
        except FieldError as exc:
            exc.offset += start
            raise
        start += len(term) + 1
    if spec.hi == 7 and 7 in out:  # "make sundays equivalent" (cronie entry.c)
        out.discard(7)
        out.add(0)
    return frozenset(out)


def parse_fields(
    texts: Sequence[str], cols: Sequence[int], *, path: str, line: int, text: str | None = None
) -> Schedule:
    """The five fields of one job line -> Schedule; CrontabError lists every bad field."""
    key = (*texts, text)
    cached = _SCHEDULES.get(key)
    if cached is not None:  # a Schedule has no columns, so equal texts give equal Schedules
        return cached
    values: list[frozenset[int]] = []
    problems: list[Diagnostic] = []
    for field_text, col, spec in zip(texts, cols, FIELDS, strict=True):
        try:
            values.append(parse_field(field_text, spec))
        except FieldError as exc:
            loc = SourceLoc(path=path, line=line, col=col + exc.offset)
            problems.append(Diagnostic(loc=loc, message=f"bad {spec.name}: {exc.detail}", hint=exc.hint))
            values.append(frozenset())
    if problems:
        raise CrontabError(problems)
    schedule = Schedule(
        text=text if text is not None else " ".join(texts),
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=values[4],
        minute_star=texts[0].startswith("*"),
        hour_star=texts[1].startswith("*"),
        dom_star=texts[2].startswith("*"),
        dow_star=texts[4].startswith("*"),
    )
    if len(_SCHEDULES) < 65536:
        _SCHEDULES[key] = schedule
    return schedule


_SCHEDULES: dict[tuple[str | None, ...], Schedule] = {}


_EMPTY: frozenset[int] = frozenset()


@lru_cache(maxsize=256)  # a file repeating one typo asks once
def _nickname_hint(low: str) -> str:
    import difflib

    if low in NICKNAMES:
        return f"@ names are lowercase only in cron: write @{low}"
    close = difflib.get_close_matches(low, list(NICKNAMES), n=1)
    return f"did you mean @{close[0]}?" if close else "one of @" + " @".join(NICKNAMES)


def parse_nickname(word: str, *, path: str, line: int, col: int) -> Schedule:
    """`@daily` etc. (lowercase only, as cronie's strcmp) -> Schedule."""
    name = word[1:]
    loc = SourceLoc(path=path, line=line, col=col)
    if name not in NICKNAMES:
        hint = _nickname_hint(name.lower()[:20])
        raise CrontabError([Diagnostic(loc=loc, message=f"bad time specifier: '{shown(word)}'", hint=hint)])
    if name == "reboot":
        return Schedule(
            text=word, minutes=_EMPTY, hours=_EMPTY, days=_EMPTY, months=_EMPTY, weekdays=_EMPTY,
            dom_star=False, dow_star=False, minute_star=False, hour_star=False, reboot=True,
        )
    texts = NICKNAMES[name].split()
    return parse_fields(texts, [col] * 5, path=path, line=line, text=word)


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
    try:
        return _parse_schedule(expr, loc)
    except CrontabError:
        raise
    except Exception as exc:  # noqa: BLE001 - the last-resort guard, as in parse_crontab
        raise ParserBug(loc.path, exc) from exc


def _parse_schedule(expr: str, loc: SourceLoc) -> Schedule:
    texts, cols = _split_schedule(expr, loc)
    if not texts:
        raise CrontabError([Diagnostic(loc=loc, message="bad minute: empty schedule")])
    if texts[0].startswith("@"):
        sched = parse_nickname(texts[0], path=loc.path, line=loc.line, col=cols[0])
        if len(texts) > 1:
            at = SourceLoc(path=loc.path, line=loc.line, col=cols[1])
            raise CrontabError([Diagnostic(loc=at, message=f"bad time specifier: unexpected '{shown(texts[1])}' after {shown(texts[0])}")])
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
