"""Lint: valid crontabs that probably do not do what their author meant (warnings). Pure,
except reading zone data through zoneinfo.

Contract: `lint_jobs(jobs, field_cols) -> list[Diagnostic]` (severity WARNING), where
`field_cols[name]` are the 1-based columns of a job's 5 fields (one column for `@nickname`).
Warnings:
- a schedule that never fires (`0 0 30 2 *`, `0 0 31 4 *`: valid in cron, never runs);
- both day fields restricted: cron runs when EITHER matches (`0 0 13 * 5` = every 13th and
  every Friday), which people often read as AND;
- `*/N` in the minute or hour field where N does not divide 60 / 24 (`*/7`: ...,49,56,0 — a
  4-minute gap at the top of each hour);
- a fixed-time job whose time falls in a DST gap (runs once right after the jump) or overlap
  (runs in the first pass only) of its zone, on a change day it runs on, within two years;
- a job `after=` an upstream that runs at a fixed time later in the day, on the same days, in
  the same zone: each of its ticks takes the upstream's run of the day before (dagrun.py: the
  upstream's newest run at or before the tick), never the one of its own day.
`lint_pools(jobs, defined, pool_locs)` (`# cronplus-pools:`, crontab/pools.py): a job in an
undefined pool is an ERROR (the parser raises it, with did-you-mean); a pool no job uses and a
pool of 0 slots (its jobs would never run) are warnings.
- a sensor's `wait-timeout=` longer than the job's shortest interval between ticks: the next
  tick comes while the run still waits (skipped under overlap=skip);
- a sensor's `wait-every=` not shorter than its `wait-timeout=`: one probe, then the timeout
  (sensors.py probes at the wait's start, then every wait-every while before the deadline).
(an unsafe MAILTO and a missing final newline are reported by the parser, which sees the lines.)
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache

from cronplus.crontab.tzcheck import get_zone
from cronplus.errors import Diagnostic, Severity, SourceLoc, shown
from cronplus.model import JobSpec, Schedule

_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # Feb 29 exists in leap years


def never_fires(s: Schedule) -> bool:
    """True when no date can match. Only possible when day-of-week is `*` (cron then ANDs the
    day fields with an all-days set) and no chosen day exists in any chosen month."""
    if s.reboot:
        return False
    if not (s.minutes and s.hours and s.months and s.days and s.weekdays):
        return True
    if s.dom_star or not s.dow_star:
        return False  # every day allowed, or day-of-week ORs in (any weekday occurs every month)
    return not any(d <= _MONTH_DAYS[m - 1] for m in s.months for d in s.days)


OR_HINT = (
    "for both, keep one in the schedule and test the other in the command, "
    'e.g. [ "$(date +\\%d)" -le 07 ] && ...'
)
# A finding before it has a location: (field index for the column, message, hint).
Finding = tuple[int, str, str | None]


def lint_job(job: JobSpec, cols: Sequence[int], today: str | None = None) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for index, message, hint in findings(job.schedule, job.tz, today or _today()):
        col = cols[index] if index < len(cols) else job.loc.col
        loc = SourceLoc(path=job.loc.path, line=job.loc.line, col=col)
        out.append(Diagnostic(loc=loc, message=message, hint=hint, severity=Severity.WARNING))
    return out


@lru_cache(maxsize=4096)  # big crontabs repeat schedules; findings do not depend on the line
def findings(s: Schedule, tz: str | None, today: str) -> tuple[Finding, ...]:
    """Warnings of one schedule in one zone; `today` (UTC date) keys the cache so a long-lived
    supervisor does not keep quoting DST dates that have passed."""
    if s.reboot:
        return ()
    if never_fires(s):
        return ((2, f"schedule '{s.text}' never fires: no chosen day exists in the chosen months", None),)
    out: list[Finding] = []
    fields = s.text.split()
    if len(fields) == 5:
        if not s.dom_star and not s.dow_star:
            message = (
                f"day-of-month '{fields[2]}' and day-of-week '{fields[4]}' are both restricted: "
                "cron runs when EITHER matches, not both"
            )
            out.append((2, message, OR_HINT))
        for index, period in ((0, 60), (1, 24)):
            for term in fields[index].split(","):
                if term.startswith("*/") and term[2:].isascii() and term[2:].isdigit() and period % int(term[2:]):
                    step = int(term[2:])
                    gap = period - (period - 1) // step * step
                    unit = "minute" if index == 0 else "hour"
                    message = (
                        f"'{term}' does not divide {period} evenly: the last gap of each "
                        f"{'hour' if index == 0 else 'day'} is {gap} {unit}s, not {step}"
                    )
                    out.append((index, message, f"use a step that divides {period}, or list the values"))
    if not s.is_wildcard:
        out.extend(_dst_findings(s, tz, today))
    return tuple(out)


def _runs_on(s: Schedule, day: date) -> bool:
    """cron's day rule (crontab(5)): both day fields must match when either starts with `*`."""
    if day.month not in s.months:
        return False
    dom = day.day in s.days
    dow = day.isoweekday() % 7 in s.weekdays
    return (dom and dow) if (s.dom_star or s.dow_star) else (dom or dow)


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _dst_findings(s: Schedule, tz: str | None, today: str) -> list[Finding]:
    zone = get_zone(tz)
    if zone is None:
        return []
    gaps, overlaps = _transitions(zone, tz or "local", today)
    times = sorted(h * 60 + m for h in s.hours for m in s.minutes)
    out: list[Finding] = []
    zone_name = tz or "the local zone"
    for label, spans, effect in (
        ("is skipped by a DST change", gaps, "it runs once right after the jump"),
        ("repeats at a DST change", overlaps, "it runs in the first pass only"),
    ):
        for day, lo, hi in spans:
            if not _runs_on(s, date.fromisoformat(day)):
                continue  # e.g. `30 2 1 * *` never meets Europe's last-Sunday changes
            hit = next((t for t in times if lo <= t < hi), None)
            if hit is not None:
                out.append((1, f"{hit // 60:02d}:{hit % 60:02d} {label} in {zone_name} (e.g. {day}): {effect}",
                            "pick a time outside the change, or tz=UTC"))
                break
    return out


@lru_cache(maxsize=64)
def _transitions(zone: tzinfo, key: str, today: str) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """Local minute-of-day spans [lo, hi) that are skipped (gaps) or repeated (overlaps) at the
    zone's offset changes over the next two years, found by hourly sampling (exact enough for
    zones that shift at whole or half hours: the span is computed from the offsets)."""
    del key, today  # cache keys only
    gaps: list[tuple[str, int, int]] = []
    overlaps: list[tuple[str, int, int]] = []
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    prev = start.astimezone(zone).utcoffset()
    t = start
    for _ in range(2 * 366 * 24):
        t += timedelta(hours=1)
        off = t.astimezone(zone).utcoffset()
        if off != prev and off is not None and prev is not None:
            change = _find_change(zone, t - timedelta(hours=1), t)
            local_after = change.astimezone(zone)
            delta = int((off - prev).total_seconds() // 60)
            day = local_after.date().isoformat()
            after_min = local_after.hour * 60 + local_after.minute
            if delta > 0:  # spring forward: local [after - delta, after) does not exist
                gaps.append((day, max(0, after_min - delta), after_min or 24 * 60))
            else:  # fall back: local [after, after - delta) happens twice
                overlaps.append((day, after_min, min(24 * 60, after_min - delta)))
        prev = off
    return gaps, overlaps


def _find_change(zone: tzinfo, lo: datetime, hi: datetime) -> datetime:
    """The first UTC minute in (lo, hi] whose offset differs from lo's."""
    base = lo.astimezone(zone).utcoffset()
    while hi - lo > timedelta(minutes=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(second=0, microsecond=0)
        if mid <= lo:
            break
        if mid.astimezone(zone).utcoffset() == base:
            lo = mid
        else:
            hi = mid
    return hi


def lint_jobs(jobs: Sequence[JobSpec], field_cols: Mapping[str, Sequence[int]]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    today = _today()
    for job in jobs:
        out.extend(lint_job(job, field_cols.get(job.name, ()), today))
    out.extend(after_later_upstream(jobs, field_cols))
    out.extend(sensor_outlasts_interval(job) for job in jobs if _sensor_outlasts(job))
    out.extend(sensor_probes_once(job) for job in jobs if job.options.wait_for
               and job.options.wait_every >= job.options.wait_timeout)
    return out


def sensor_probes_once(job: JobSpec) -> Diagnostic:
    from cronplus.humanize import duration

    every, timeout = duration(job.options.wait_every), duration(job.options.wait_timeout)
    message = (f"job {job.name}: wait-every={every} is not shorter than wait-timeout={timeout}: its sensor is "
               "probed once, then the run times out")
    return Diagnostic(loc=job.loc, message=message, hint="make wait-every a fraction of wait-timeout, e.g. wait-every=1m wait-timeout=1h",
                      severity=Severity.WARNING)


_INTERVAL_SAMPLE = 64  # consecutive ticks looked at for the shortest interval (a year of a weekly job)


def _sensor_outlasts(job: JobSpec) -> bool:
    interval = _shortest_interval(job.schedule) if job.options.wait_for else None
    return interval is not None and job.options.wait_timeout > interval


@lru_cache(maxsize=1024)
def _shortest_interval(s: Schedule) -> float | None:
    """The shortest gap between consecutive ticks (wall time, from a fixed day: lint is pure)."""
    from itertools import islice, pairwise

    from cronplus.crontab.schedule import naive_matches

    if s.reboot or never_fires(s):
        return None
    ticks = list(islice(naive_matches(s, datetime(2026, 1, 1)), _INTERVAL_SAMPLE))
    return min(((b - a).total_seconds() for a, b in pairwise(ticks)), default=None)


def sensor_outlasts_interval(job: JobSpec) -> Diagnostic:
    from cronplus.humanize import duration

    interval = _shortest_interval(job.schedule)
    assert interval is not None
    message = (f"job {job.name}: wait-timeout={duration(job.options.wait_timeout)} is longer than its interval "
               f"({duration(interval)}): the next tick comes while its run still waits on its sensor")
    return Diagnostic(loc=job.loc, message=message, hint="shorten wait-timeout, or space the ticks further apart",
                      severity=Severity.WARNING)


def _time_of_day(s: Schedule) -> tuple[int, int] | None:
    """(hour, minute) of a schedule that fires once a day at a fixed time, else None."""
    if s.reboot or len(s.hours) != 1 or len(s.minutes) != 1:
        return None
    return next(iter(s.hours)), next(iter(s.minutes))


def _same_days(a: Schedule, b: Schedule) -> bool:
    return (a.days, a.months, a.weekdays, a.dom_star, a.dow_star) == (b.days, b.months, b.weekdays, b.dom_star, b.dow_star)


def after_later_upstream(jobs: Sequence[JobSpec], field_cols: Mapping[str, Sequence[int]]) -> list[Diagnostic]:
    """A job after= an upstream scheduled later in the day than itself (see the contract)."""
    by_name = {job.name: job for job in jobs}
    out: list[Diagnostic] = []
    for job in jobs:
        mine = _time_of_day(job.schedule)
        if mine is None:
            continue
        for name in job.options.after:
            up = by_name.get(name)
            theirs = _time_of_day(up.schedule) if up is not None else None
            if up is None or theirs is None or theirs <= mine or up.tz != job.tz or not _same_days(up.schedule, job.schedule):
                continue
            cols = field_cols.get(job.name, ())
            loc = SourceLoc(path=job.loc.path, line=job.loc.line, col=cols[1] if len(cols) > 1 else job.loc.col)
            message = (f"job {job.name} runs at {mine[0]:02d}:{mine[1]:02d} but is after={name}, which runs later in "
                       f"the day ({theirs[0]:02d}:{theirs[1]:02d}): each run waits for {name}'s run of the day before")
            hint = f"schedule {job.name} at or after {theirs[0]:02d}:{theirs[1]:02d} (the same time as {name} is fine)"
            out.append(Diagnostic(loc=loc, message=message, hint=hint, severity=Severity.WARNING))
    return out


def lint_pools(jobs: Sequence[JobSpec], defined: Mapping[str, tuple[int | None, SourceLoc]],
               pool_locs: Mapping[str, SourceLoc]) -> list[Diagnostic]:
    """Undefined pools (errors), unused pools and pools of 0 slots (warnings). A pool of None
    slots was named by a pools line with an error of its own: nothing more is said of it."""
    out: list[Diagnostic] = []
    used: set[str] = set()
    for job in jobs:
        pool = job.options.pool
        if pool is None:
            continue
        used.add(pool)
        if pool not in defined:
            close = difflib.get_close_matches(pool, list(defined), n=1)
            hint = (f"did you mean '{close[0]}'?" if close else
                    f"define it: '# cronplus-pools: {shown(pool)}=1'" if not defined else "pools: " + " ".join(defined))
            out.append(Diagnostic(loc=pool_locs.get(job.name, job.loc), message=f"job {job.name}: pool "
                                  f"'{shown(pool)}' is not defined by a '# cronplus-pools:' line", hint=hint))
    for name, (slots, loc) in defined.items():
        if slots is None:
            continue
        if name not in used:
            out.append(Diagnostic(loc=loc, severity=Severity.WARNING, message=f"pool {name} is used by no job",
                                  hint="add pool=" + name + " to a job, or remove it"))
        elif slots == 0:
            out.append(Diagnostic(loc=loc, severity=Severity.WARNING, message=f"pool {name} has 0 slots: "
                                  "its jobs never run", hint="give it at least 1"))
    return out
