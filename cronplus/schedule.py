"""Cron-exact fire times: `zone(tz)` and `next_fire(schedule, after, tz)`.

Contract (docs/ARCHITECTURE.md): `next_fire` returns the first instant *strictly after* the aware
instant `after` at which Vixie cron / cronie / Debian cron running in zone `tz` would start the
job, as an aware datetime in that zone; None for `@reboot` and for schedules that never fire
(`0 0 30 2 *`), decided at once from the value sets, without a search. Pure: no I/O except the
tz database (zoneinfo) and, for `zone(None)`, the `TZ` variable and /etc/localtime.

The rules, from cronie's `cron.c`/`entry.c` (Debian cron(8) and Vixie cron 4.1 agree):

* Day fields: a field whose text *starts* with `*` is "star" (`Schedule.dom_star/dow_star`). If
  either day field is star, day-of-month AND day-of-week must match; otherwise either is enough.
* DST. cron keeps a "virtual" wall-clock minute and compares it with the real one every minute
  (cron.c, "Too many clocks, not enough time"). A job is *wildcard* when its minute or hour field
  starts with `*`, otherwise *fixed-time*.
  - Clock jumps forward by 1..179 minutes (spring forward; timeDiff 6..180): wildcard jobs run
    only for the arrival minute; fixed-time jobs run for every skipped minute, all at the
    arrival instant, i.e. "once, at the first instant after the gap". A jump of 180 minutes or
    more is a "large" jump: nothing is caught up. A jump of at most 4 minutes (timeDiff <= 5) is
    "small": every job, wildcard too, is caught up.
  - Clock goes back (fall back): while the wall clock is behind the virtual one, only wildcard
    jobs run, so a fixed-time job runs in the first pass of a repeated hour only and wildcard
    jobs run in both passes. A step back of more than 181 minutes is a "large" jump after which
    everything runs again.
  These rules are local-time facts of the zone, so they are a function of `after` alone: starting
  inside the second pass, a fixed-time job of that hour "has already run" and its next fire is
  the next day.

Design. The parser already gives value sets and star flags, so the next matching *naive local*
minute is a direct search over those sets (month -> day -> hour -> minute with "next value >= x"
tables; microseconds per call), and every candidate minute is then mapped to its fire instants by
the DST rules above (none, one, or -- wildcard jobs in a repeated hour -- two). croniter (our
declared schedule library) would only supply that naive search, and it is exactly the part where
croniter 7.0.0 is unsound for us: `N-N` ranges become `*` (CRON-NOTES B), the star rule differs
(A), never-firing schedules raise after a long search (F), its DST handling is not cron's (C, D,
E), and it parses its own, more permissive syntax (G). We therefore do not call croniter at run
time; tests/test_schedule_croniter.py checks that croniter, given normalized explicit lists where
it *is* sound, agrees with our naive search, and pins each difference A-G as a regression test.
"""

from __future__ import annotations

import calendar
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from pathlib import Path

from cronplus.errors import CronplusError
from cronplus.model import Schedule

# cron.c classifies `timeDiff = wall minute - virtual minute` (1 is the normal tick).
_SMALL_JUMP_MAX = 5  # 1 < timeDiff <= 5: "wokeup late", run everything for every minute missed
_LARGE_JUMP = 3 * 60  # |timeDiff| > 180: "clock jumped", no catch-up and no suppression
_SEARCH_YEARS = 400  # one Gregorian cycle: every (month, day) falls on every weekday within it

# Days that month `m` can ever have (Feb 29 exists in leap years).
_MAX_MDAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class UnknownZoneError(CronplusError):
    """A time zone name that the tz database does not know."""


@lru_cache(maxsize=256)
def zone(tz: str | None) -> tzinfo:
    """The tzinfo for an IANA zone name; None means the local zone ($TZ, then /etc/localtime)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if tz is None:
        return _local_zone()
    if tz in ("UTC", "Etc/UTC"):
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise UnknownZoneError(f"unknown time zone '{tz}'") from exc


def _local_zone() -> tzinfo:
    from zoneinfo import ZoneInfo

    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except Exception:  # noqa: BLE001 - a bad $TZ means UTC to libc too
            return timezone.utc
    localtime = Path("/etc/localtime")
    try:
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
        with localtime.open("rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return timezone.utc


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A schedule's sets as lookup tables: `next_x[v]` = smallest value >= v in the set, or -1."""

    next_minute: tuple[int, ...]  # indices 0..60
    next_hour: tuple[int, ...]  # indices 0..24
    next_month: tuple[int, ...]  # indices 0..13
    days: frozenset[int]
    weekdays: frozenset[int]
    day_and: bool  # either day field is star: both must match (Vixie cron's DOM_STAR/DOW_STAR)
    wildcard: bool
    can_fire: bool


def _next_table(values: frozenset[int], size: int) -> tuple[int, ...]:
    table = [-1] * (size + 1)
    nxt = -1
    for v in range(size, -1, -1):
        if v in values:
            nxt = v
        table[v] = nxt
    return tuple(table)


@lru_cache(maxsize=4096)
def _compile(s: Schedule) -> _Compiled:
    return _Compiled(
        next_minute=_next_table(s.minutes, 60),
        next_hour=_next_table(s.hours, 24),
        next_month=_next_table(s.months, 13),
        days=s.days,
        weekdays=s.weekdays,
        day_and=s.dom_star or s.dow_star,
        wildcard=s.is_wildcard,
        can_fire=_can_fire(s),
    )


def _can_fire(s: Schedule) -> bool:
    """False for schedules cron accepts but never runs (`0 0 30 2 *`, `0 0 31 4,6 *`).

    With the OR rule the weekday set alone (never empty) matches days of every month. With the
    AND rule some (month, day) must exist; over 400 years each such date meets every weekday.
    """
    if s.reboot or not (s.minutes and s.hours and s.months and s.days and s.weekdays):
        return False
    if not (s.dom_star or s.dow_star):
        return True
    return any(d <= _MAX_MDAYS[m] for m in s.months for d in s.days)


def _day_matches(c: _Compiled, day: int, cron_dow: int) -> bool:
    if c.day_and:
        return day in c.days and cron_dow in c.weekdays
    return day in c.days or cron_dow in c.weekdays


def naive_matches(schedule: Schedule, start: datetime) -> Iterator[datetime]:
    """Naive local minutes >= `start` (naive, seconds ignored) that match, in order.

    Only cron's field rules, no DST: this is what croniter would be asked for. Ends after
    400 years (never, for a schedule that can fire at all) or at the end of year 9999.
    """
    c = _compile(schedule)
    if not c.can_fire:
        return
    y, mo, d, h, mi = start.year, start.month, start.day, start.hour, start.minute
    last_year = min(y + _SEARCH_YEARS, 9999)  # datetime's last year
    while y <= last_year:
        m2 = c.next_month[mo]
        if m2 < 0:
            y, mo, d, h, mi = y + 1, 1, 1, 0, 0
            continue
        if m2 != mo:
            mo, d, h, mi = m2, 1, 0, 0
        first_wd, ndays = calendar.monthrange(y, mo)  # Monday 0; cron's Sunday 0 is +1 mod 7
        while d <= ndays and not _day_matches(c, d, (first_wd + d) % 7):
            d, h, mi = d + 1, 0, 0
        if d > ndays:
            y, mo, d, h, mi = (y + 1, 1, 1, 0, 0) if mo == 12 else (y, mo + 1, 1, 0, 0)
            continue
        h2 = c.next_hour[h]
        if h2 < 0:
            d, h, mi = d + 1, 0, 0
            continue
        if h2 != h:
            h, mi = h2, 0
        m2 = c.next_minute[mi]
        if m2 < 0:
            h, mi = h + 1, 0
            continue
        yield datetime(y, mo, d, h, m2)
        mi = m2 + 1


def _fire_instants(w: datetime, tz: tzinfo, wildcard: bool) -> tuple[bool, list[float]]:
    """(is_repeated, UTC timestamps at which cron runs a job matching naive local minute `w`)."""
    off0 = w.replace(tzinfo=tz, fold=0).utcoffset()
    off1 = w.replace(tzinfo=tz, fold=1).utcoffset()
    assert off0 is not None and off1 is not None
    base = (w - datetime(1970, 1, 1)).total_seconds()
    if off0 == off1:
        return False, [base - off0.total_seconds()]
    if off0 > off1:  # repeated wall time (fold): first pass has the larger offset
        first, second = base - off0.total_seconds(), base - off1.total_seconds()
        back_minutes = (off0 - off1).total_seconds() / 60
        # Second pass: wall clock behind the virtual one -> wildcard jobs only ("DST ends"),
        # unless the step back is so large that cron resets its virtual clock.
        if wildcard or 1 - back_minutes < -_LARGE_JUMP:
            return True, [first, second]
        return True, [first]
    # Missing wall time (gap). cron wakes at the arrival minute with timeDiff = gap + 1.
    gap_minutes = (off1 - off0).total_seconds() / 60
    time_diff = gap_minutes + 1
    if time_diff > _LARGE_JUMP:
        return False, []
    if wildcard and time_diff > _SMALL_JUMP_MAX:
        return False, []
    return False, [_transition(base - off1.total_seconds(), base - off0.total_seconds(), tz, off1)]


def _transition(lo: float, hi: float, tz: tzinfo, after_offset: timedelta) -> float:
    """The first minute in (lo, hi] whose UTC offset is `after_offset` (the end of a gap)."""
    lo_m, hi_m = int(lo // 60), int(hi // 60)
    while hi_m - lo_m > 1:
        mid = (lo_m + hi_m) // 2
        if datetime.fromtimestamp(mid * 60, tz).utcoffset() == after_offset:
            hi_m = mid
        else:
            lo_m = mid
    return hi_m * 60.0


def next_fire(schedule: Schedule, after: datetime, tz: str | None) -> datetime | None:
    """The first fire time strictly after the aware instant `after`, aware in the zone `tz`.

    None for `@reboot` and never-firing schedules; ValueError for a naive `after`;
    UnknownZoneError (a CronplusError) for a zone the tz database does not know.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("next_fire needs an aware datetime")
    c = _compile(schedule)
    if not c.can_fire:
        return None
    tzi = zone(tz)
    after_ts = after.timestamp()
    local = datetime.fromtimestamp(after_ts, tzi)
    start = local.replace(tzinfo=None, second=0, microsecond=0)
    # Inside a repeated hour, minutes written *before* `after` may still fire later (second
    # pass), so begin the naive search at the start of the repeated stretch.
    off0 = start.replace(tzinfo=tzi, fold=0).utcoffset()
    off1 = start.replace(tzinfo=tzi, fold=1).utcoffset()
    if off0 is not None and off1 is not None and off0 > off1:
        start -= off0 - off1
    best: float | None = None
    for w in naive_matches(schedule, start):
        repeated, instants = _fire_instants(w, tzi, c.wildcard)
        for ts in instants:
            if ts > after_ts and (best is None or ts < best):
                best = ts
        # Outside a repeated stretch, wall order is time order: nothing later can be earlier.
        if best is not None and not repeated:
            break
    if best is None:
        return None
    return datetime.fromtimestamp(best, tzi)


def next_fires(schedule: Schedule, after: datetime, tz: str | None, n: int) -> list[datetime]:
    """The next `n` fire times after `after` (fewer if the schedule stops firing)."""
    out: list[datetime] = []
    current = after
    while len(out) < n:
        nxt = next_fire(schedule, current, tz)
        if nxt is None:
            break
        out.append(nxt)
        current = nxt
    return out
