"""next_fire agrees with an independent simulation of cron's main loop (tests/cron_oracle.py)
over a year of start times in six zones, for ~50 varied expressions, with extra start times
packed around every DST transition of the year."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from cronplus.crontab.schedule import next_fire
from tests.cron_oracle import CronSim, Oracle, schedule

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Havana", "Asia/Kolkata"]

EXPRESSIONS = [
    # wildcard jobs (minute or hour field starts with `*`)
    "* * * * *", "*/5 * * * *", "*/15 * * * *", "1-59/2 * * * *", "0 * * * *", "30 * * * *",
    "15,45 * * * *", "0 */2 * * *", "0 */3 * * *", "*/10 2 * * *", "* 2 * * *", "* 0 * * *",
    "*/7 1-4 * * *", "@hourly", "*,30 2 * * *",
    # fixed-time jobs
    "0 2 * * *", "30 2 * * *", "0 3 * * *", "59 1 * * *", "0 1 * * *", "30 1 * * *", "15 0 * * *",
    "0 0 * * *", "59 23 * * *", "30 0-23 * * *", "0 0-23 * * *", "0,30 1-3 * * *", "0 2-3 * * *",
    "0 0-4/2 * * *", "45 1,2 * * *", "0 22-23,0-1 * * *", "30 3 * * *", "0 4 * * *",
    "@daily", "@weekly", "@monthly", "@yearly",
    # day fields, N-N ranges, never-firing and rare schedules
    "5 4 * * sun", "0 0 */2 * 1", "0 0 13 * 5", "0 0 1-31 * 1", "30 8 * * 1-5/2", "0 12 31 * *",
    "0 12 29 2 *", "0 0 29 2 1", "0 0 30 2 *", "0 0 31 4 *", "0 3-3 * * *", "* * * * 7-7",
    "0 0 1 1-1 *", "0 0 1,15 * 0", "0 9 * 3,11 0", "0 0 8-14 * 0", "0 0 */7 * 0", "30 2 * 3,10 *",
]

SIM_START = datetime(2024, 12, 20, tzinfo=UTC)
SIM_END = datetime(2026, 1, 15, tzinfo=UTC)
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)


@cache
def sim(tz: str) -> CronSim:
    return CronSim(tz, SIM_START, SIM_END)


def start_times(tz: str, seed: int) -> list[datetime]:
    """Random instants of 2025 plus dense ones around each of the zone's offset changes."""
    rng = random.Random(seed)
    year_s = 365 * 86400
    times = [YEAR_START + timedelta(seconds=rng.randrange(year_s)) for _ in range(40)]
    times += [YEAR_START + timedelta(minutes=rng.randrange(year_s // 60)) for _ in range(20)]
    s = sim(tz)
    for first, _, _ in s.stretches[1:]:
        change = datetime.fromtimestamp(first * 60, UTC)
        step = timedelta(minutes=rng.choice([7, 11, 13]), seconds=rng.choice([0, 0, 30]))
        t = change - timedelta(hours=3)
        while t < change + timedelta(hours=3):
            times.append(t)
            t += step
    return times


@pytest.mark.parametrize("tz", ZONES)
def test_next_fire_matches_the_cron_simulation_over_a_year(tz: str) -> None:
    s = sim(tz)
    horizon = datetime.fromtimestamp(s.end * 60, UTC)
    failures: list[str] = []
    for n, expr in enumerate(EXPRESSIONS):
        sched = schedule(expr)
        oracle = Oracle(s, sched)
        starts = start_times(tz, seed=n)
        # Also walk fire to fire through the transitions: `after` exactly on a fire instant.
        chain_from = [t for t in starts[60:][::6]]
        for t in chain_from:
            for _ in range(4):
                nxt = oracle.next_after(t)
                if nxt is None:
                    break
                starts.append(nxt)
                t = nxt
        for after in starts:
            want = oracle.next_after(after)
            got = next_fire(sched, after, tz)
            if want is None:
                ok = got is None or got >= horizon
            else:
                ok = got == want and got is not None and got.utcoffset() == want.utcoffset()
            if not ok:
                failures.append(f"{expr!r} after {after.astimezone(s.tz).isoformat()}: got {got and got.isoformat()}, cron {want and want.isoformat()}")
    assert not failures, f"{len(failures)} disagreements, first ones:\n" + "\n".join(failures[:15])


def test_the_oracle_itself_sees_each_zones_transitions() -> None:
    # Guards the comparison above against a simulation that saw no DST at all.
    expected = {"UTC": 0, "Asia/Kolkata": 0, "Europe/Berlin": 2, "America/New_York": 2,
                "Australia/Lord_Howe": 2, "America/Havana": 2}
    for tz, n in expected.items():
        assert len(sim(tz).stretches) - 1 == n, tz


@pytest.mark.parametrize(("tz", "expr", "after", "want"), [
    ("Europe/Berlin", "30 2 * * *", "2025-03-30T01:00:00+01:00", "2025-03-30T03:00:00+02:00"),
    ("America/New_York", "0 */2 * * *", "2025-03-09T00:30:00-05:00", "2025-03-09T04:00:00-04:00"),
    ("Europe/Berlin", "30 2 * * *", "2025-10-26T02:15:00+01:00", "2025-10-27T02:30:00+01:00"),
    ("Europe/Berlin", "0 * * * *", "2025-10-26T02:00:00+02:00", "2025-10-26T02:00:00+01:00"),
])
def test_the_simulation_reproduces_the_documented_dst_behaviour(tz: str, expr: str, after: str, want: str) -> None:
    # The oracle is only worth comparing against if it gets CRON-NOTES' own examples right.
    got = Oracle(sim(tz), schedule(expr)).next_after(datetime.fromisoformat(after))
    assert got is not None and got.isoformat() == want
