"""croniter 7.0.0 against cron (docs/cron-compat.md, "croniter against cron" A-G): each difference as a regression test that we
give cron's answer, and checks that our croniter-backed naive-minute search (croniter handed a
normalized expression: explicit value lists, `day_or` from the star flags) matches exactly the
minutes crontab(5) matches, by brute force."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
import time
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cronplus.crontab.schedule import naive_matches, next_fire
from cronplus.errors import CrontabError
from cronplus.model import Schedule
from tests.cron_oracle import EPOCH, cron_matches_day, schedule

# Pin what croniter itself answers only for the version whose behaviour docs/cron-compat.md records.
CRONITER_7_0_0 = version("croniter") == "7.0.0"


def croniter_next(expr: str, after: datetime, **kw: object) -> datetime:
    from croniter import croniter

    return croniter(expr, after, **kw).get_next(datetime)


# (label, expression, zone, start, cron's answer, croniter 7.0.0's answer)
DIFFERENCES = [
    ("A star rule: */2 is star", "0 0 */2 * 1", "UTC", "2025-01-01T00:00:00+00:00",
     "2025-01-13T00:00:00+00:00", "2025-01-03T00:00:00+00:00"),
    ("B N-N is one value", "0 3-3 * * *", "UTC", "2025-06-01T03:30:00+00:00",
     "2025-06-02T03:00:00+00:00", "2025-06-01T04:00:00+00:00"),
    ("C fixed-time not in second pass", "30 2 * * *", "Europe/Berlin", "2025-10-26T02:30:00+02:00",
     "2025-10-27T02:30:00+01:00", "2025-10-26T02:30:00+01:00"),
    ("D wildcard skips the gap", "0 */2 * * *", "America/New_York", "2025-03-09T00:30:00-05:00",
     "2025-03-09T04:00:00-04:00", "2025-03-09T03:00:00-04:00"),
    ("E list keeps its gap run", "30 0-23 * * *", "Europe/Berlin", "2025-03-30T01:45:00+01:00",
     "2025-03-30T03:00:00+02:00", "2025-03-30T03:30:00+02:00"),
]


@pytest.mark.parametrize(("label", "expr", "tz", "after", "cron", "croniter_answer"), DIFFERENCES)
def test_we_give_crons_answer_where_croniter_differs(
    label: str, expr: str, tz: str, after: str, cron: str, croniter_answer: str
) -> None:
    start = datetime.fromisoformat(after).astimezone(ZoneInfo(tz))
    got = next_fire(schedule(expr), start, tz)
    assert got is not None and got.isoformat() == cron, label
    if CRONITER_7_0_0:
        assert croniter_next(expr, start).isoformat() == croniter_answer, "croniter changed: update docs/cron-compat.md"


def test_a_never_firing_schedule_is_none_where_croniter_raises() -> None:  # F
    start = datetime.fromisoformat("2025-01-01T00:00:00+00:00")
    assert next_fire(schedule("0 0 30 2 *"), start, "UTC") is None
    if CRONITER_7_0_0:
        from croniter import CroniterBadDateError

        with pytest.raises(CroniterBadDateError):
            croniter_next("0 0 30 2 *", start)


@pytest.mark.parametrize("expr", ["5/15 * * * *", "0 0 * * 1/2", "0 0 L * *", "0 0 ? * *", "@DAILY",
                                  "0 0 * * * 5", "0 5-1 * * *", "0 0 15W * *"])
def test_what_cron_rejects_is_rejected_though_croniter_accepts_it(expr: str) -> None:  # G
    with pytest.raises(CrontabError):
        schedule(expr)
    if CRONITER_7_0_0 and expr not in ("0 0 ? * *", "0 0 15W * *"):
        croniter_next(expr, datetime(2025, 1, 1))  # does not raise


def random_expr(rng: random.Random) -> str:
    """Five fields mixing every form our parser accepts, including the ones croniter reads
    differently as text: `N-N`, `*`-prefixed day fields, full ranges, names, Sunday as 7."""

    def field(lo: int, hi: int, names: tuple[str, ...] = ()) -> str:
        kind = rng.randrange(8)
        if kind == 0:
            return "*"
        if kind == 1:
            return f"*/{rng.randint(2, max(2, (hi - lo) // 2))}"
        if kind == 2:
            a = rng.randint(lo, hi)
            return f"{a}-{rng.randint(a, hi)}"
        if kind == 3:
            a = rng.randint(lo, hi)
            return f"{a}-{a}"
        if kind == 4:
            return f"{lo}-{hi}"
        if kind == 5 and names:
            return rng.choice(names)
        return ",".join(str(v) for v in sorted(rng.sample(range(lo, hi + 1), rng.randint(1, 3))))

    months = ("jan", "feb", "jun", "dec")
    days = ("sun", "mon", "fri", "sat")
    return " ".join([field(0, 59), field(0, 23), field(1, 31), field(1, 12, months), field(0, 7, days)])


def brute_force_matches(s: Schedule, start: datetime, n: int) -> list[datetime]:
    """The first `n` naive minutes >= start that crontab(5) matches, day by day, minute by
    minute (tests/cron_oracle.py's reading of the rules; no croniter, no cronplus search)."""
    out: list[datetime] = []
    day = start.replace(hour=0, minute=0)
    while len(out) < n and day.year < 2040:
        wall_day = (day - EPOCH).days
        if cron_matches_day(s, wall_day):
            for h in sorted(s.hours):
                for m in sorted(s.minutes):
                    t = day.replace(hour=h, minute=m)
                    if t >= start and len(out) < n:
                        out.append(t)
        day += timedelta(days=1)
    return out


def test_our_croniter_backed_naive_minutes_are_crontab5s_on_random_expressions() -> None:
    rng = random.Random(7)
    checked = 0
    for _ in range(300):
        expr = random_expr(rng)
        s = schedule(expr)
        start = datetime(2025, 1, 1) + (datetime(2026, 1, 1) - datetime(2025, 1, 1)) * rng.random()
        start = start.replace(second=0, microsecond=0)
        want = brute_force_matches(s, start, 4)
        got = list(itertools.islice(naive_matches(s, start), 4))
        assert got == want, (expr, start)
        checked += bool(want)
    assert checked > 250  # most random schedules fire; the rest must give nothing, as checked


@pytest.mark.parametrize(("expr", "after", "want"), [
    # OR rule with a full day-of-month list: every day (croniter alone would see `*` and AND it)
    ("0 0 1-31 * 1", "2025-06-03T12:00:00", "2025-06-04T00:00:00"),
    # OR rule with a full weekday list, Sunday written as 7
    ("0 0 13 * 0-7", "2025-06-03T12:00:00", "2025-06-04T00:00:00"),
    # `*,13` starts with `*`: star, so AND with Friday
    ("0 0 *,13 * 5", "2025-06-03T12:00:00", "2025-06-06T00:00:00"),
    # star weekday field with a full day list: AND, Sundays only
    ("0 0 1-31 * */7", "2025-06-03T12:00:00", "2025-06-08T00:00:00"),
    # OR rule whose day-of-month side never exists in February: Mondays of February only
    ("0 0 30,31 2 mon", "2025-06-03T12:00:00", "2026-02-02T00:00:00"),
    # OR rule, both sides restricted: the 13th or a Friday, whichever is first
    ("0 0 13 * fri", "2025-06-07T00:00:00", "2025-06-13T00:00:00"),
])
def test_the_day_rule_reaches_croniter_as_cron_means_it(expr: str, after: str, want: str) -> None:
    s = schedule(expr)
    assert next(naive_matches(s, datetime.fromisoformat(after))) == datetime.fromisoformat(want)
    assert brute_force_matches(s, datetime.fromisoformat(after), 1) == [datetime.fromisoformat(want)]


def test_an_impossible_day_of_month_side_costs_no_croniter_search() -> None:
    # croniter would search 400 years of Februaries for the 31st before answering from Mondays
    s = schedule("0 0 31 2 mon")
    next_fire(s, datetime.fromisoformat("2025-01-01T00:00:00+00:00"), "UTC")  # warm the caches
    after = datetime.fromisoformat("2025-03-01T00:00:00+00:00")
    timings = []
    for _ in range(3):  # the best of three, of CPU time: waiting for a core on a busy machine does not count
        t0 = time.thread_time()
        got = next_fire(s, after, "UTC")
        timings.append(time.thread_time() - t0)
    assert min(timings) < 0.005  # the 400-year search takes ~13 ms here; the answer ~0.1 ms
    assert got is not None and got.isoformat() == "2026-02-02T00:00:00+00:00"


def run_python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return out.stdout.strip()


def test_help_and_never_firing_schedules_do_not_import_croniter() -> None:
    help_code = (
        "import runpy, sys\n"
        "sys.argv = ['cronplus', '--help']\n"
        "try:\n    runpy.run_module('cronplus', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('imported:', sorted(m for m in ('croniter', 'dateutil') if m in sys.modules))"
    )
    assert run_python(help_code).splitlines()[-1] == "imported: []"
    never_code = (
        "import sys\nfrom datetime import datetime, timezone\n"
        "from cronplus.crontab.parser import parse_schedule\nfrom cronplus.crontab.schedule import next_fire\n"
        "assert next_fire(parse_schedule('0 0 30 2 *'), datetime.now(timezone.utc), 'UTC') is None\n"
        "print('croniter' in sys.modules)\n"
        "next_fire(parse_schedule('0 0 1 1 *'), datetime(2025, 6, 1, tzinfo=timezone.utc), 'UTC')\n"  # months away: a search
        "print('croniter' in sys.modules)"
    )
    assert run_python(never_code).split() == ["False", "True"]
