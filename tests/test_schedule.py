"""schedule.next_fire / zone: the field rules of crontab(5), the API contract, and speed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cronplus.crontab.schedule import naive_matches, next_fire, next_fires, zone
from cronplus.errors import CronplusError
from tests.cron_oracle import schedule


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC) if "+" not in iso else datetime.fromisoformat(iso)


def nxt(expr: str, after: str, tz: str = "UTC") -> str | None:
    got = next_fire(schedule(expr), at(after), tz)
    return got.isoformat() if got else None


def test_a_day_field_starting_with_star_makes_both_day_fields_required() -> None:
    # `*/2` is "star" (Vixie's DOM_STAR): odd days that are also Mondays. Jan 2025: 13th, 27th.
    assert nxt("0 0 */2 * 1", "2025-01-01T00:00:00") == "2025-01-13T00:00:00+00:00"
    assert nxt("0 0 */2 * 1", "2025-01-13T00:00:00") == "2025-01-27T00:00:00+00:00"
    assert nxt("0 0 * * 1", "2025-01-01T00:00:00") == "2025-01-06T00:00:00+00:00"


def test_two_restricted_day_fields_match_on_either() -> None:
    # every 13th and every Friday; 2025-06-06 is a Friday, 2025-06-13 is both
    assert nxt("0 0 13 * 5", "2025-06-01T00:00:00") == "2025-06-06T00:00:00+00:00"
    assert nxt("0 0 13 * 5", "2025-07-05T00:00:00") == "2025-07-11T00:00:00+00:00"
    assert nxt("0 0 13 * 5", "2025-07-11T00:00:00") == "2025-07-13T00:00:00+00:00"
    # `1-31` is not star, so with a weekday it is "every day", not "Mondays"
    assert nxt("0 0 1-31 * 1", "2025-06-03T12:00:00") == "2025-06-04T00:00:00+00:00"


def test_single_value_ranges_mean_that_one_value() -> None:
    assert nxt("0 3-3 * * *", "2025-06-01T03:30:00") == "2025-06-02T03:00:00+00:00"
    assert nxt("* * * * 7-7", "2025-06-02T00:00:00") == "2025-06-08T00:00:00+00:00"  # Sunday
    assert nxt("0 0 * * sun-sun", "2025-06-02T00:00:00") == "2025-06-08T00:00:00+00:00"
    assert nxt("0 0 1 jan-jan *", "2025-02-01T00:00:00") == "2026-01-01T00:00:00+00:00"


def test_sunday_is_both_zero_and_seven() -> None:
    assert nxt("0 0 * * 7", "2025-06-02T00:00:00") == nxt("0 0 * * 0", "2025-06-02T00:00:00")


def test_the_answer_is_strictly_after_the_start() -> None:
    assert nxt("0 * * * *", "2025-06-01T12:00:00") == "2025-06-01T13:00:00+00:00"
    assert nxt("0 * * * *", "2025-06-01T11:59:59.500000") == "2025-06-01T12:00:00+00:00"
    assert nxt("0 * * * *", "2025-06-01T12:00:00.000001") == "2025-06-01T13:00:00+00:00"


def test_leap_day_schedules_wait_for_the_next_leap_year() -> None:
    assert nxt("0 12 29 2 *", "2025-01-01T00:00:00") == "2028-02-29T12:00:00+00:00"
    assert nxt("0 12 31 * *", "2025-04-01T00:00:00") == "2025-05-31T12:00:00+00:00"


@pytest.mark.parametrize("expr", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *", "* * 30,31 2 *", "@reboot"])
def test_schedules_that_never_fire_answer_none_at_once(expr: str) -> None:
    s = schedule(expr)
    t0 = time.thread_time()  # CPU time: a loaded machine delays the answer but does not make it cost more
    assert next_fire(s, at("2025-01-01T00:00:00"), "Europe/Berlin") is None
    assert time.thread_time() - t0 < 0.01
    assert list(naive_matches(s, datetime(2025, 1, 1))) == []


def test_a_rare_but_possible_and_rule_schedule_is_still_found() -> None:
    # `*/2` is star, so Feb 29th AND Sunday: next in 2032 (Feb 29 2032 is a Sunday)
    assert nxt("0 0 29 2 */7", "2025-01-01T00:00:00") == "2032-02-29T00:00:00+00:00"


def test_the_search_ends_quietly_at_the_end_of_the_calendar() -> None:
    assert nxt("0 12 29 2 *", "9997-03-01T00:00:00") is None  # 10000 is out of datetime's range
    assert nxt("0 12 31 12 *", "9999-12-30T00:00:00") == "9999-12-31T12:00:00+00:00"


def test_the_result_is_aware_in_the_schedules_zone() -> None:
    # 00:00 UTC is already 05:30 in Kolkata, so today's 02:30 has passed
    got = next_fire(schedule("30 2 * * *"), at("2025-06-01T00:00:00"), "Asia/Kolkata")
    assert got is not None and got.tzinfo == ZoneInfo("Asia/Kolkata")
    assert got.isoformat() == "2025-06-02T02:30:00+05:30"


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError):
        next_fire(schedule("* * * * *"), datetime(2025, 1, 1), "UTC")


def test_next_fires_returns_consecutive_runs() -> None:
    got = next_fires(schedule("*/20 * * * *"), at("2025-06-01T23:30:00"), "UTC", 3)
    assert [t.isoformat() for t in got] == [
        "2025-06-01T23:40:00+00:00", "2025-06-02T00:00:00+00:00", "2025-06-02T00:20:00+00:00"]


def test_zone_knows_iana_names_and_rejects_unknown_ones() -> None:
    assert zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert zone("UTC").utcoffset(datetime(2025, 1, 1)) == timedelta(0)
    with pytest.raises(CronplusError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")


def test_zone_none_is_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    # $TZ is the local zone's documented source; setting it is configuration, not a mock.
    zone.cache_clear()
    monkeypatch.setenv("TZ", "America/Havana")
    try:
        assert zone(None) == ZoneInfo("America/Havana")
    finally:
        zone.cache_clear()


def test_next_fire_costs_microseconds() -> None:
    exprs = ["*/5 * * * *", "30 2 * * *", "0 0 13 * 5", "0 9 * * 1-5", "@monthly", "0 12 29 2 *"]
    schedules = [schedule(e) for e in exprs]
    after = at("2025-03-30T00:30:00")
    n = 0
    t0 = time.thread_time()  # CPU time: on a loaded machine wall time also counts waiting for a core
    for _ in range(300):
        for s in schedules:
            next_fire(s, after, "Europe/Berlin")
            n += 1
    per_call = (time.thread_time() - t0) / n
    assert per_call < 0.001, f"{per_call * 1e6:.0f} us per call"
