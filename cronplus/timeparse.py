"""Times for `--since`/`--until`, as journalctl takes them (systemd.time(7)), to Unix seconds.

Accepted, case-insensitive:
- `now`, `today`, `yesterday`, `tomorrow` (midnight, local time);
- relative: `-2h`, `+30min`, `-1h30min`, `2h ago`, `1 day ago`; units us/ms/s/sec/second(s),
  m/min/minute(s), h/hr/hour(s), d/day(s), w/week(s) (systemd's `m` is minutes, not months);
- absolute: `2025-06-01`, `2025-06-01 14:00`, `2025-06-01 14:00:05`, `14:00` (today), ISO 8601
  with `T`, fractions and an offset or `Z` (`2025-06-01T14:00:00+02:00`), `@1750000000`.
A time without an offset is local time. Anything else raises UsageError naming the forms.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from cronplus.errors import UsageError

UNITS: dict[str, float] = {}
for _names, _seconds in (
    (("us", "usec"), 1e-6),
    (("ms", "msec"), 1e-3),
    (("s", "sec", "secs", "second", "seconds"), 1.0),
    (("m", "min", "mins", "minute", "minutes"), 60.0),
    (("h", "hr", "hrs", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
    (("w", "week", "weeks"), 7 * 86400.0),
):
    for _name in _names:
        UNITS[_name] = _seconds

_SPAN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)")
FORMS = "now, today, yesterday, tomorrow, -2h, -30min, '2h ago', 2025-06-01, '2025-06-01 14:00', 14:00, ISO 8601, @UNIX"


def parse_span(text: str) -> float | None:
    """`1h30min` / `2 days` -> seconds; None when it is not a span."""
    text = text.strip().lower()
    pos, total, found = 0, 0.0, False
    while pos < len(text):
        match = _SPAN.match(text, pos)
        if not match or match.group(2) not in UNITS:
            return None
        total += float(match.group(1)) * UNITS[match.group(2)]
        pos, found = match.end(), True
    return total if found else None


def parse_time(text: str, *, now: float) -> float:
    """One `--since`/`--until` value -> Unix seconds, relative to `now` (Unix seconds)."""
    raw = text.strip()
    low = raw.lower()
    midnight = datetime.combine(datetime.fromtimestamp(now).date(), time())
    named = {"today": 0, "yesterday": -1, "tomorrow": 1}
    if low == "now":
        return now
    if low in named:
        return (midnight + timedelta(days=named[low])).timestamp()
    if low.startswith("@"):
        try:
            return float(low[1:])
        except ValueError:
            raise _bad(text) from None
    relative = _relative(low)
    if relative is not None:
        return now + relative
    return _absolute(raw, midnight)


def _relative(low: str) -> float | None:
    if low.endswith(" ago"):
        span = parse_span(low[:-4])
        return -span if span is not None else None
    if low[:1] in "+-":
        span = parse_span(low[1:])
        if span is not None:
            return span if low[0] == "+" else -span
    return None


def _absolute(raw: str, midnight: datetime) -> float:
    candidate = raw.replace(" ", "T", 1) if re.match(r"\d{4}-\d\d-\d\d \d", raw) else raw
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        if re.fullmatch(r"\d{1,2}:\d\d(:\d\d(\.\d+)?)?", candidate):  # a time of day: today
            parsed = datetime.combine(midnight.date(), time.fromisoformat(candidate.rjust(len(candidate) + (candidate.index(":") == 1), "0")))
        else:
            parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise _bad(raw) from None
    # naive -> local time (mktime semantics, DST included); aware -> its own offset
    return parsed.timestamp()


def _bad(text: str) -> UsageError:
    return UsageError(f"cannot understand time '{text}' (try: {FORMS})")
