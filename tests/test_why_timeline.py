"""crontab/timeline.py: looking back along a schedule. `previous_fire` is checked against
schedule.next_fire (its inverse: nothing fires between the answer and the time asked about) at
instants around DST changes of real zones; the day rule and wall kinds against cron's rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cronplus.crontab.parser import parse_schedule
from cronplus.crontab.schedule import next_fire
from cronplus.crontab.timeline import day_rule, matches_minute, previous_fire, wall_kind

SCHEDULES = ["* * * * *", "*/7 * * * *", "30 2 * * *", "0 0-23 * * *", "0 0 13 * 5", "0 0 */2 * 1",
             "15 4 29 2 *", "@yearly", "0 */2 * * *", "59 23 31 12 *"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
INSTANTS = [datetime(2026, 3, 29, 0, 59, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 0, 45, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            datetime(2026, 3, 8, 7, 30, tzinfo=UTC), datetime(2026, 11, 1, 6, 15, tzinfo=UTC),
            datetime(2026, 4, 4, 15, 0, tzinfo=UTC), datetime(2027, 1, 1, 0, 0, tzinfo=UTC)]


@pytest.mark.parametrize("expr", SCHEDULES)
@pytest.mark.parametrize("tz", ZONES)
def test_previous_fire_is_the_last_fire_at_or_before_the_instant(expr: str, tz: str) -> None:
    schedule = parse_schedule(expr)
    for at in INSTANTS:
        prev = previous_fire(schedule, at, tz)
        assert prev is not None, (expr, tz, at)
        assert prev <= at
        before = prev.astimezone(UTC) - timedelta(microseconds=1)  # in UTC: zone arithmetic drops the fold
        assert next_fire(schedule, before, tz) == prev, "it is a fire time"
        following = next_fire(schedule, prev, tz)
        assert following is None or following > at, f"{expr} in {tz} fires at {following}, between {prev} and {at}"


def test_previous_fire_of_an_instant_that_is_a_tick_is_that_tick() -> None:
    tick = datetime(2026, 3, 29, 3, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # 02:30 caught up after the gap
    assert previous_fire(parse_schedule("30 2 * * *"), tick, "Europe/Berlin") == tick


def test_a_schedule_that_never_fires_has_no_previous_fire() -> None:
    assert previous_fire(parse_schedule("0 0 30 2 *"), datetime(2026, 1, 1, tzinfo=UTC), "UTC") is None


def test_the_day_rule_ors_two_restricted_day_fields_and_ands_a_star() -> None:
    either = day_rule(parse_schedule("0 0 13 * 5"), date(2026, 3, 6))  # a Friday, the 6th
    assert either.either and either.runs and not either.dom_match and either.dow_match
    both = day_rule(parse_schedule("0 0 */2 * 1"), date(2026, 3, 2))  # a Monday, the 2nd (even)
    assert not both.either and not both.runs
    assert day_rule(parse_schedule("0 0 */2 * 1"), date(2026, 3, 9)).runs  # Monday the 9th
    assert "is outside the schedule's months" in day_rule(parse_schedule("0 0 * 6 *"), date(2026, 3, 9)).sentence()


def test_wall_kinds_in_a_real_zone() -> None:
    assert wall_kind(datetime(2026, 3, 29, 2, 30), "Europe/Berlin").kind == "gap"
    repeat = wall_kind(datetime(2026, 10, 25, 2, 30), "Europe/Berlin")
    assert repeat.kind == "repeat"
    assert repeat.second is not None
    assert (repeat.first.utcoffset(), repeat.second.utcoffset()) == (timedelta(hours=2), timedelta(hours=1))
    assert wall_kind(datetime(2026, 3, 29, 3, 30), "Europe/Berlin").kind == "normal"


def test_matches_minute_uses_the_fields_only() -> None:
    assert matches_minute(parse_schedule("30 2 * * *"), datetime(2026, 3, 29, 2, 30))  # in the gap: fields match
    assert not matches_minute(parse_schedule("30 2 * * *"), datetime(2026, 3, 29, 2, 31))


def test_previous_fire_in_a_repeated_hour_given_in_the_zone_itself() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    at = datetime(2026, 10, 25, 0, 45, tzinfo=UTC).astimezone(berlin)  # 02:45 CEST, first pass
    prev = previous_fire(parse_schedule("30 * * * *"), at, "Europe/Berlin")
    assert prev is not None
    assert prev.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, not 02:30 CET (later)
