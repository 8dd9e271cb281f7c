"""Compact human renderings for tables: durations (`850ms`, `12s`, `4min 5s`, `1h 2min`,
`3d 4h`; two units at most, like systemd's timespans) and times in the local zone."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise

_STEPS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def duration(seconds: float | None) -> str:
    """Seconds -> `850ms` below a second, else at most two units, rounded to the smaller one."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < 0.9995:
        return f"{round(seconds * 1000)}ms"
    if seconds < 9.95:
        text = f"{seconds:.1f}"
        return (text.removesuffix(".0")) + "s"
    if round(seconds) < 60:
        return f"{round(seconds)}s"
    # Largest unit first whose rounded value (at the next smaller unit) is at least 1:
    # 3599.6 s is `1h 0min` -> `1h`, never `60min`.
    for (size, unit), (sub_size, sub_unit) in pairwise(_STEPS):
        total = round(seconds / sub_size)
        major, minor = divmod(total, size // sub_size)
        if major >= 1:
            return f"{major}{unit} {minor}{sub_unit}" if minor else f"{major}{unit}"
    raise AssertionError("unreachable: seconds >= 60 here")


def local_time(value: datetime | float | None, *, with_date: bool = True) -> str:
    """An instant as local wall time, `2025-06-01 14:00:05` (`-` when absent)."""
    if value is None:
        return "-"
    dt = datetime.fromtimestamp(value).astimezone() if isinstance(value, (int, float)) else value.astimezone()
    return dt.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
