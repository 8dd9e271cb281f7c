"""Looking back along a schedule, for explaining why a job ran or not (engine/explain.py):
the previous fire time, cron's day-field rule applied to one date, and what a wall time is in a
zone (normal, in a spring-forward gap, or in a repeated fall-back hour).

Pure, built on schedule.py (`next_fire`, `naive_matches`): the same rules, never a second copy
(docs/cron-compat.md, "The day fields" and "Daylight saving").

- `previous_fire(schedule, at, tz)`: the last fire instant at or before the aware `at` (None for
  `@reboot`, a never-firing schedule, or none within 400 years). Found by widening a window back
  from `at` and walking `next_fire` forward inside it, so the work is proportional to the ticks in
  the first window that holds one.
- `day_rule(schedule, day)`: whether cron's day fields let `day` run, and why: crontab(5) "If both
  fields are restricted (i.e., do not start with *), the command will be run when either field
  matches the current time"; a field starting with `*` is unrestricted, and then both must match.
- `wall_kind(wall, tz)`: a naive wall time in a zone is `normal`, `gap` (skipped by a spring
  forward: it never happens) or `repeat` (a fall back shows it twice), with both offsets.
- `matches_minute(schedule, wall)`: the fields match this naive wall minute (no DST applied).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from cronplus.crontab.schedule import naive_matches, next_fire, zone
from cronplus.model import Schedule

# Windows tried back from `at`: the first holding a tick is walked; 400 years is one Gregorian cycle.
_WINDOWS = (timedelta(hours=2), timedelta(days=2), timedelta(days=40), timedelta(days=400),
            timedelta(days=5 * 366), timedelta(days=40 * 366), timedelta(days=400 * 366))
_WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def previous_fire(schedule: Schedule, at: datetime, tz: str | None) -> datetime | None:
    """The last fire instant at or before the aware instant `at`, aware in the schedule's zone."""
    if at.tzinfo is None:
        raise ValueError("previous_fire needs an aware datetime")
    # In UTC: aware datetimes sharing a tzinfo subtract and compare by wall time, fold ignored,
    # which is wrong in a repeated hour (02:30+01:00 is after 02:45+02:00).
    at = at.astimezone(UTC)
    for window in _WINDOWS:
        try:
            start = at - window
        except OverflowError:
            return None
        tick = next_fire(schedule, start, tz)
        if tick is None:
            return None
        if tick > at:
            continue
        while True:
            following = next_fire(schedule, tick, tz)
            if following is None or following > at:
                return tick
            tick = following
    return None


@dataclass(frozen=True, slots=True)
class DayRule:
    """Cron's day fields against one date."""

    day: date
    dom_text: str  # the fields as written ("13", "*", "*/2"); "" for an @nickname's
    dow_text: str
    dom_star: bool
    dow_star: bool
    dom_match: bool  # the day of month is in the day-of-month set
    dow_match: bool  # the weekday is in the day-of-week set
    month_match: bool

    @property
    def either(self) -> bool:
        """Both day fields restricted: cron runs when either matches (else both must)."""
        return not (self.dom_star or self.dow_star)

    @property
    def runs(self) -> bool:
        """The date is one of the schedule's days."""
        days = (self.dom_match or self.dow_match) if self.either else (self.dom_match and self.dow_match)
        return self.month_match and days

    @property
    def weekday(self) -> str:
        return _WEEKDAYS[(self.day.weekday() + 1) % 7]

    def sentence(self) -> str:
        """The rule spelled out for this date, in crontab(5)'s terms."""
        when = f"{self.weekday} {self.day.isoformat()}"
        dom = f"day-of-month '{self.dom_text}'" if self.dom_text else "the day-of-month field"
        dow = f"day-of-week '{self.dow_text}'" if self.dow_text else "the day-of-week field"
        said_dom = "matches" if self.dom_match else "does not match"
        said_dow = "matches" if self.dow_match else "does not match"
        if not self.month_match:
            return f"{when} is outside the schedule's months"
        if self.either:
            rule = (f"{dom} and {dow} are both restricted, so cron runs the job when EITHER matches "
                    "(crontab(5))")
        else:
            star = dom if self.dom_star else dow
            rule = f"{star} starts with '*', so cron runs the job only when BOTH day fields match"
        verdict = "a day it runs" if self.runs else "not a day it runs"
        return f"{rule}: on {when} {dom} {said_dom} and {dow} {said_dow}, so it is {verdict}"


def day_rule(schedule: Schedule, day: date) -> DayRule:
    fields = schedule.text.split()
    dom_text, dow_text = (fields[2], fields[4]) if len(fields) == 5 else ("", "")
    return DayRule(day=day, dom_text=dom_text, dow_text=dow_text, dom_star=schedule.dom_star,
                   dow_star=schedule.dow_star, dom_match=day.day in schedule.days,
                   dow_match=(day.weekday() + 1) % 7 in schedule.weekdays, month_match=day.month in schedule.months)


@dataclass(frozen=True, slots=True)
class WallKind:
    """What a naive wall time is in a zone."""

    kind: str  # "normal" / "gap" (never shown: spring forward) / "repeat" (shown twice: fall back)
    first: datetime  # aware: the instant (the first pass of a repeat; the pre-gap reading of a gap)
    second: datetime | None  # aware: the second pass of a repeat; the post-gap reading of a gap


def wall_kind(wall: datetime, tz: str | None) -> WallKind:
    tzi = zone(tz)
    naive = wall.replace(tzinfo=None)
    a, b = naive.replace(tzinfo=tzi, fold=0), naive.replace(tzinfo=tzi, fold=1)
    off_a, off_b = a.utcoffset(), b.utcoffset()
    assert off_a is not None and off_b is not None
    if off_a == off_b:
        return WallKind("normal", a, None)
    if off_a > off_b:  # the first pass has the larger offset (summer time)
        return WallKind("repeat", a, b)
    return WallKind("gap", a, b)


def matches_minute(schedule: Schedule, wall: datetime) -> bool:
    """The five fields match the naive wall minute `wall` (cron's day rule, no DST)."""
    minute = wall.replace(tzinfo=None, second=0, microsecond=0)
    return next(naive_matches(schedule, minute), None) == minute
