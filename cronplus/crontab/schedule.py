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

Design. Two layers, each doing what it is sound at:

1. The next matching *naive local* minute comes from croniter (the project's schedule library),
   but never from the crontab text. Our parser (cronplus/crontab/parser.py) validates cron's syntax
   and yields value sets and star flags; `_croniter_form` turns them into an expression croniter
   7 reads exactly as cron would: explicit comma lists of integers (no `N-N` ranges, which
   croniter turns into `*`, docs/cron-compat.md, croniter B; no names, steps or croniter extensions, G), `*` only
   for a full field (or `* *` when cron's OR rule makes every day match), and cron's day-field
   star rule (A) passed as croniter's `day_or` flag (False = both day fields must match). It is asked with *naive* datetimes only, so its own
   DST handling (C, D, E) never runs. Schedules that never fire are recognized from the value
   sets first and croniter is never asked about them (F: it would search and raise). The parsed
   croniter is cached per Schedule and copied per call; croniter is imported lazily, on the
   first search that needs it (not for the shortcut below), so `cronplus --help` does not
   load it (nor dateutil, which it imports).
2. Every candidate minute is then mapped to its fire instants by the DST rules above, in our
   code (none, one, or -- wildcard jobs in a repeated hour -- two).

A shortcut comes first (`_soon`): when the next matching wall minute is later today or tomorrow
and the UTC offset is the same and unambiguous at both minutes, no DST rule can apply and that
minute is the answer, without a croniter step (~20 us instead of ~90 us). Jobs due every few
minutes, hourly or daily take it all year but around a transition; croniter is then imported
only for rarer schedules (weekly, monthly, ...) and at transitions.

tests/test_schedule_croniter.py pins each difference A-G as a regression test (we give cron's
answer) and checks the naive layer against a brute-force reading of crontab(5).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from cronplus.errors import CronplusError
from cronplus.model import Schedule

if TYPE_CHECKING:
    from croniter import croniter as Croniter

# cron.c classifies `timeDiff = wall minute - virtual minute` (1 is the normal tick).
_SMALL_JUMP_MAX = 5  # 1 < timeDiff <= 5: "wokeup late", run everything for every minute missed
_LARGE_JUMP = 3 * 60  # |timeDiff| > 180: "clock jumped", no catch-up and no suppression
_SEARCH_YEARS = 400  # one Gregorian cycle: every (month, day) falls on every weekday within it

_EPOCH = datetime(1970, 1, 1)

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
    from cronplus.crontab.tzcheck import well_formed
    from cronplus.errors import shown

    if not well_formed(tz):  # zoneinfo recurses on a long name with many '/' (tzcheck.py)
        raise UnknownZoneError(f"unknown time zone '{shown(tz)}'")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise UnknownZoneError(f"unknown time zone '{shown(tz)}'") from exc


def _local_zone() -> tzinfo:
    from zoneinfo import ZoneInfo

    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except Exception:  # noqa: BLE001 - a bad $TZ means UTC to libc too
            return UTC
    localtime = Path("/etc/localtime")
    try:
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
        with localtime.open("rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return UTC


@dataclass(frozen=True, slots=True)
class _Compiled:
    """What next_fire needs per schedule, computed once (no croniter import)."""

    expr: str  # croniter-ready: explicit comma lists, `*` only for a full field (see _croniter_form)
    day_or: bool  # croniter's day_or: True only for cron's OR rule with two restricted day fields
    wildcard: bool
    can_fire: bool
    hours: tuple[int, ...]  # sorted, for _next_wall_minute
    minutes: tuple[int, ...]


def _field(values: frozenset[int], full: int) -> str:
    # Explicit lists only: croniter 7 turns an `N-N` range into `*` (docs/cron-compat.md, croniter B) and reads
    # its own extensions into other syntax; a plain list of integers means the same to both.
    return "*" if len(values) == full else ",".join(map(str, sorted(values)))


def _croniter_form(s: Schedule) -> tuple[str, bool]:
    """A 5-field expression and day_or with which croniter matches exactly cron's minutes.

    croniter 7 ORs the day fields only when day_or=True *and* neither expanded field is `*`
    (croniter.py `_calc_next`); otherwise it ANDs them. Its `implement_cron_bug` looks at the
    field *text* for a leading `*`, which our normalized text no longer has, so we do not use
    it: cron's star rule (docs/cron-compat.md, croniter A) is decided here, from Schedule.dom_star/dow_star.
    """
    head = " ".join((_field(s.minutes, 60), _field(s.hours, 24)))
    month = _field(s.months, 12)
    if s.dom_star or s.dow_star:  # AND rule; day_or=False makes croniter intersect always
        return f"{head} {_field(s.days, 31)} {month} {_field(s.weekdays, 7)}", False
    # OR rule with two restricted fields (crontab(5): "at least one ... match").
    if len(s.days) == 31 or len(s.weekdays) == 7:
        # One side matches every day, so every day matches. Written as `* *` because croniter
        # would read a lone full field as `*` and AND it with the other (`0 0 1-31 * 1`).
        return f"{head} * {month} *", False
    if not _days_exist(s):
        # The day-of-month side never exists in these months (`31 2 mon`): only weekdays
        # match. croniter would otherwise search that side for max_years before giving up.
        return f"{head} * {month} {_field(s.weekdays, 7)}", False
    return f"{head} {_field(s.days, 31)} {month} {_field(s.weekdays, 7)}", True


@lru_cache(maxsize=4096)
def _compile(s: Schedule) -> _Compiled:
    expr, day_or = ("", False) if s.reboot else _croniter_form(s)
    return _Compiled(expr=expr, day_or=day_or, wildcard=s.is_wildcard, can_fire=_can_fire(s),
                     hours=tuple(sorted(s.hours)), minutes=tuple(sorted(s.minutes)))


def _days_exist(s: Schedule) -> bool:
    return any(d <= _MAX_MDAYS[m] for m in s.months for d in s.days)


def _can_fire(s: Schedule) -> bool:
    """False for schedules cron accepts but never runs (`0 0 30 2 *`, `0 0 31 4,6 *`).

    Decided here so croniter is never asked (it searches 50 years and raises, docs/cron-compat.md, croniter F).
    With the OR rule the weekday set alone (never empty) matches days of every month. With the
    AND rule some (month, day) must exist; over 400 years each such date meets every weekday.
    """
    if s.reboot or not (s.minutes and s.hours and s.months and s.days and s.weekdays):
        return False
    if not (s.dom_star or s.dow_star):
        return True
    return _days_exist(s)


@lru_cache(maxsize=4096)
def _template(c: _Compiled) -> Croniter:
    """A croniter with the expression parsed once; callers iterate on shallow copies of it."""
    from croniter import croniter  # lazy: `cronplus --help` must not pay for it

    # 400 years: one Gregorian cycle, in which every possible (month, day) meets every weekday,
    # so a schedule that passed _can_fire always matches within the search (default is 50).
    return croniter(c.expr, datetime(2000, 1, 1), day_or=c.day_or, max_years_between_matches=_SEARCH_YEARS)


def naive_matches(schedule: Schedule, start: datetime) -> Iterator[datetime]:
    """Naive local minutes >= `start` (naive, seconds ignored) that match, in order.

    Only cron's field rules, no DST: croniter's answer on naive datetimes (it has no zone to
    apply its own DST handling to). Ends at once for a schedule that never fires, and quietly
    where the next match would be after year 9999 (datetime's last year).
    """
    c = _compile(schedule)
    if not c.can_fire:
        return
    # A shallow copy shares the parsed fields, which croniter only reads (its _calc_next works
    # on copies); get_next rebinds the copy's own position, so the cached template never moves.
    it = copy.copy(_template(c))
    current = start.replace(second=0, microsecond=0) - timedelta(minutes=1)  # get_next is "> cur"
    while True:
        try:
            current = it.get_next(datetime, start_time=current)
        except (OverflowError, ValueError):
            if current.year >= 9999 - _SEARCH_YEARS:  # croniter stepped past datetime.max
                return
            raise
        yield current


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


def _soon(s: Schedule, local: datetime, tzi: tzinfo) -> float | None:
    """The common case, answered without croniter: the next matching wall minute is later today
    or tomorrow (of `local`, aware in `tzi`), and the UTC offset is the same at both minutes and
    unambiguous there (no gap, no repeated hour). One offset at both ends of at most two days
    means no transition between them (the tz database has none that close), so no DST rule
    applies. Its UTC timestamp, or None: ask the general search. Jobs due every few minutes,
    hourly or daily take it all year but around a transition."""
    offset = local.utcoffset()
    start = local.replace(tzinfo=None, second=0, microsecond=0)
    if offset is None or not _plain(start, tzi, offset):
        return None
    fire = _next_wall_minute(s, start)
    if fire is None or not _plain(fire, tzi, offset):
        return None
    return (fire - _EPOCH).total_seconds() - offset.total_seconds()


def _plain(wall: datetime, tzi: tzinfo, offset: timedelta) -> bool:
    """`wall` exists once in `tzi` (no gap, no repeated hour), at `offset`."""
    return wall.replace(tzinfo=tzi, fold=0).utcoffset() == offset == wall.replace(tzinfo=tzi, fold=1).utcoffset()


def _next_wall_minute(s: Schedule, start: datetime) -> datetime | None:
    """The first naive minute after `start` matching the fields, today or tomorrow; else None."""
    c = _compile(s)
    for days in (0, 1):
        day = start + timedelta(days=days) if days else start
        dom, dow = day.day in s.days, day.isoweekday() % 7 in s.weekdays  # cron: Sunday is 0
        if day.month not in s.months or not ((dom and dow) if s.dom_star or s.dow_star else (dom or dow)):
            continue
        for hour in c.hours:
            if days == 0 and hour < start.hour:
                continue
            for minute in c.minutes:
                if days == 0 and hour == start.hour and minute <= start.minute:
                    continue
                return datetime(day.year, day.month, day.day, hour, minute)
    return None


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
    soon = _soon(schedule, local, tzi)
    if soon is not None:
        return datetime.fromtimestamp(soon, tzi)
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
