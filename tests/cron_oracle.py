"""An independent, brute-force model of when Vixie cron / cronie / Debian cron start a job.

Written from cron(8), crontab(5) and cronie's cron.c main loop, *not* from cronplus/crontab/schedule.py:

* crontab(5): a job runs "when the minute, hour, and month of year fields match the current
  time, and when at least one of the two day fields (day of month, or day of week) match";
  if either day field starts with `*`, both must match (Vixie's DOM_STAR/DOW_STAR test).
* cron.c: every minute cron wakes, reads the wall clock as "minutes since the epoch adjusted
  for the time zone" (timeRunning) and compares it with its virtual clock (virtualTime):
    timeDiff == 1             normal: run all jobs matching timeRunning
    |timeDiff| > 180          clock jumped: virtualTime = timeRunning, run all jobs for it
    5 < timeDiff <= 180       "DST begins": wildcard jobs for timeRunning, then fixed-time jobs
                              for each virtual minute virtualTime+1 .. timeRunning
    0 < timeDiff <= 5         woke late: all jobs for each minute virtualTime+1 .. timeRunning
    timeDiff <= 0             "DST ends": wildcard jobs for timeRunning only; virtualTime stays
  (a job is wildcard when its minute or hour field starts with `*`). job_add() queues a job at
  most once per wake-up.

`CronSim` walks that loop minute by minute over UTC instants for one zone and one time range,
recording which wall-clock minutes cron examines at which instant and with which job kinds.
Normal minutes are stored as stretches of constant UTC offset, so the fire times of a schedule
over a year are found by walking local days instead of 500,000 minutes per expression.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronplus.model import Schedule

EPOCH = datetime(1970, 1, 1)


def schedule(expr: str) -> Schedule:
    """The parser's value sets and star flags for `expr` (cronplus.crontab.parser.parse_schedule)."""
    from cronplus.crontab.parser import parse_schedule

    return parse_schedule(expr)


def wall_fields(wall_minute: int) -> tuple[int, int, int, int, int, int]:
    """(minute, hour, day, month, cron weekday with Sunday 0, year) of a local epoch minute."""
    t = EPOCH + timedelta(minutes=wall_minute)
    return t.minute, t.hour, t.day, t.month, (t.weekday() + 1) % 7, t.year


def cron_matches(s: Schedule, wall_minute: int) -> bool:
    """crontab(5)'s test of one schedule against one wall-clock minute."""
    minute, hour, day, month, dow, _ = wall_fields(wall_minute)
    if minute not in s.minutes or hour not in s.hours or month not in s.months:
        return False
    if s.dom_star or s.dow_star:
        return day in s.days and dow in s.weekdays
    return day in s.days or dow in s.weekdays


def is_wildcard(s: Schedule) -> bool:
    return s.minute_star or s.hour_star


@dataclass(frozen=True)
class Special:
    utc_minute: int  # when cron is awake
    wall_minute: int  # the minute it examines
    wild: bool  # runs wildcard jobs matching it
    fixed: bool  # runs fixed-time jobs matching it


class CronSim:
    """cron's main loop for zone `tz` from `start` to `end` (aware datetimes)."""

    def __init__(self, tz: str, start: datetime, end: datetime) -> None:
        self.tz = ZoneInfo(tz)
        self.start = int(start.timestamp()) // 60
        self.end = int(end.timestamp()) // 60
        self._offsets = self._offset_changes()
        # (utc_first, utc_end, offset): minutes where cron did a normal find_jobs(wall, all)
        self.stretches: list[tuple[int, int, int]] = []
        self.specials: list[Special] = []
        self._simulate()

    def _offset(self, utc_minute: int) -> int:
        off = datetime.fromtimestamp(utc_minute * 60, self.tz).utcoffset()
        assert off is not None and off.total_seconds() % 60 == 0
        return int(off.total_seconds() // 60)

    def _offset_changes(self) -> list[tuple[int, int]]:
        """[(utc_minute, offset)] at the start and at every change, found hour by hour."""
        changes = [(self.start, self._offset(self.start))]
        for hour_start in range(self.start, self.end, 60):
            nxt = min(hour_start + 60, self.end)
            if self._offset(nxt) != changes[-1][1]:
                lo, hi = hour_start, nxt  # offset(lo) old, offset(hi) new
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if self._offset(mid) == changes[-1][1]:
                        lo = mid
                    else:
                        hi = mid
                changes.append((hi, self._offset(hi)))
        return changes

    def _simulate(self) -> None:
        change_at = [u for u, _ in self._offsets]
        virtual = self.start + self._offsets[0][1]  # cron starts with virtualTime = now
        run_start: int | None = None
        run_off = 0
        for u in range(self.start + 1, self.end):
            off = self._offsets[bisect.bisect_right(change_at, u) - 1][1]
            wall = u + off
            diff = wall - virtual
            normal = diff == 1 or diff > 180 or diff < -180
            if normal and run_start is not None and off == run_off:
                virtual = wall
                continue
            if run_start is not None:
                self.stretches.append((run_start, u, run_off))
                run_start = None
            if normal:
                virtual = wall
                run_start, run_off = u, off
            elif diff > 5:
                self.specials.append(Special(u, wall, wild=True, fixed=False))
                for v in range(virtual + 1, wall + 1):
                    self.specials.append(Special(u, v, wild=False, fixed=True))
                virtual = wall
            elif diff > 0:
                for v in range(virtual + 1, wall + 1):
                    self.specials.append(Special(u, v, wild=True, fixed=True))
                virtual = wall
            else:
                self.specials.append(Special(u, wall, wild=True, fixed=False))
        if run_start is not None:
            self.stretches.append((run_start, self.end, run_off))

    def fires(self, s: Schedule) -> list[int]:
        """Sorted UTC minutes at which cron starts a job with schedule `s`."""
        if s.reboot:
            return []
        out: set[int] = set()
        hm = sorted(h * 60 + m for h in s.hours for m in s.minutes)
        for first, end, off in self.stretches:
            wall_first, wall_end = first + off, end + off
            for day in range(wall_first // 1440, (wall_end - 1) // 1440 + 1):
                if not cron_matches_day(s, day):
                    continue
                base = day * 1440
                lo = bisect.bisect_left(hm, wall_first - base)
                hi = bisect.bisect_left(hm, wall_end - base)
                out.update(base + x - off for x in hm[lo:hi])
        wild = is_wildcard(s)
        for sp in self.specials:
            if (sp.wild if wild else sp.fixed) and cron_matches(s, sp.wall_minute):
                out.add(sp.utc_minute)
        return sorted(out)


def cron_matches_day(s: Schedule, wall_day: int) -> bool:
    """Month and day fields of crontab(5) for the local day number `wall_day` (days since epoch)."""
    _, _, day, month, dow, _ = wall_fields(wall_day * 1440)
    if month not in s.months:
        return False
    if s.dom_star or s.dow_star:
        return day in s.days and dow in s.weekdays
    return day in s.days or dow in s.weekdays


class Oracle:
    """next-fire questions answered from a CronSim's precomputed fire list."""

    def __init__(self, sim: CronSim, s: Schedule) -> None:
        self.sim = sim
        self.fire_minutes = sim.fires(s)

    def next_after(self, after: datetime) -> datetime | None:
        """First fire strictly after `after`; None when none before the simulated range ends."""
        ts = after.timestamp()
        i = bisect.bisect_right(self.fire_minutes, ts / 60)
        while i < len(self.fire_minutes) and self.fire_minutes[i] * 60 <= ts:
            i += 1
        if i == len(self.fire_minutes):
            return None
        return datetime.fromtimestamp(self.fire_minutes[i] * 60, UTC).astimezone(self.sim.tz)
