"""croniter 7.0.0 against cron (CRON-NOTES A-G): each difference as a regression test that we
give cron's answer, and a check that croniter, handed a normalized expression (explicit value
lists, `day_or` from the star flags), agrees with our naive-minute search where it is sound."""

from __future__ import annotations

import random
from datetime import datetime
from importlib.metadata import version
from zoneinfo import ZoneInfo

import pytest

from cronplus.errors import CrontabError
from cronplus.model import Schedule
from cronplus.schedule import naive_matches, next_fire
from tests.cron_oracle import schedule

# Pin what croniter itself answers only for the version whose behaviour CRON-NOTES records.
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
        assert croniter_next(expr, start).isoformat() == croniter_answer, "croniter changed: update CRON-NOTES"


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


def normalized(s: Schedule) -> tuple[str, bool]:
    """An expression croniter gets right: explicit lists (no ranges, so no B), and the day rule
    given as day_or instead of through star text (no A)."""
    fields = [s.minutes, s.hours, s.days, s.months, s.weekdays]
    text = " ".join(",".join(str(v) for v in sorted(f)) for f in fields)
    return text, not (s.dom_star or s.dow_star)


def random_expr(rng: random.Random) -> str:
    def field(lo: int, hi: int) -> str:
        kind = rng.randrange(5)
        if kind == 0:
            return "*"
        if kind == 1:
            return f"*/{rng.randint(2, max(2, (hi - lo) // 2))}"
        if kind == 2:
            a = rng.randint(lo, hi)
            return f"{a}-{rng.randint(a, hi)}"
        return ",".join(str(v) for v in sorted(rng.sample(range(lo, hi + 1), rng.randint(1, 3))))

    return " ".join([field(0, 59), field(0, 23), field(1, 28), field(1, 12), field(0, 6)])


def test_croniter_on_normalized_lists_agrees_with_our_naive_search() -> None:
    from croniter import croniter

    rng = random.Random(7)
    checked = 0
    for _ in range(150):
        expr = random_expr(rng)
        s = schedule(expr)
        text, day_or = normalized(s)
        start = datetime(2025, 1, 1) + (datetime(2026, 1, 1) - datetime(2025, 1, 1)) * rng.random()
        start = start.replace(second=0, microsecond=0)
        ours = naive_matches(s, start)
        it = croniter(text, start, day_or=day_or)
        # croniter's get_next is strictly after; our search is >= start
        first = next(ours)
        if first == start:
            first = next(ours)
        theirs = it.get_next(datetime)
        assert first == theirs, (expr, text, day_or, start)
        for _ in range(3):
            assert next(ours) == it.get_next(datetime), (expr, start)
        checked += 1
    assert checked == 150
