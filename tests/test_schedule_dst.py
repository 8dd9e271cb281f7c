"""Hand-checked DST cases in cronsim's style: real 2025 transitions, exact ISO strings.

2025 transitions used (tzdata):
  Europe/Berlin       03-30 02:00 CET -> 03:00 CEST (gap 02:00-02:59); 10-26 03:00 CEST -> 02:00 CET
  America/New_York    03-09 02:00 EST -> 03:00 EDT;                     11-02 02:00 EDT -> 01:00 EST
  Australia/Lord_Howe 10-05 02:00 +10:30 -> 02:30 +11 (30-minute gap);  04-06 02:00 +11 -> 01:30 +10:30
  America/Havana      03-09 00:00 CST -> 01:00 CDT (midnight missing);  11-02 01:00 CDT -> 00:00 CST
Expected values follow Debian cron(8) / cronie cron.c, worked out by hand (see schedule.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cronplus.crontab.schedule import next_fire, next_fires
from tests.cron_oracle import schedule


def fires(expr: str, tz: str, after: str, n: int = 1) -> list[str]:
    start = datetime.fromisoformat(after)
    if start.tzinfo is None:
        start = start.replace(tzinfo=ZoneInfo(tz))
    return [t.isoformat() for t in next_fires(schedule(expr), start, tz, n)]


CASES = [
    # --- spring forward: fixed-time jobs in the gap run once, at the first instant after it
    ("30 2 * * *", "Europe/Berlin", "2025-03-30T01:00:00+01:00",
     ["2025-03-30T03:00:00+02:00", "2025-03-31T02:30:00+02:00"]),
    ("0 2 * * *", "Europe/Berlin", "2025-03-30T01:59:59+01:00", ["2025-03-30T03:00:00+02:00"]),
    ("30 0-23 * * *", "Europe/Berlin", "2025-03-30T01:45:00+01:00",
     ["2025-03-30T03:00:00+02:00", "2025-03-30T03:30:00+02:00"]),
    ("0,30 2 * * *", "Europe/Berlin", "2025-03-30T01:45:00+01:00",  # two missed runs, one start
     ["2025-03-30T03:00:00+02:00", "2025-03-31T02:00:00+02:00"]),
    ("0 3 * * *", "Europe/Berlin", "2025-03-30T01:45:00+01:00",
     ["2025-03-30T03:00:00+02:00", "2025-03-31T03:00:00+02:00"]),
    ("0 2 * * *", "America/New_York", "2025-03-09T00:30:00-05:00", ["2025-03-09T03:00:00-04:00"]),
    # --- spring forward: wildcard jobs do not run for the missing minutes
    ("0 */2 * * *", "America/New_York", "2025-03-09T00:30:00-05:00",
     ["2025-03-09T04:00:00-04:00", "2025-03-09T06:00:00-04:00"]),
    ("30 * * * *", "Europe/Berlin", "2025-03-30T01:45:00+01:00", ["2025-03-30T03:30:00+02:00"]),
    ("*/15 * * * *", "Europe/Berlin", "2025-03-30T01:50:00+01:00",
     ["2025-03-30T03:00:00+02:00", "2025-03-30T03:15:00+02:00"]),
    ("* 2 * * *", "Europe/Berlin", "2025-03-30T01:59:00+01:00", ["2025-03-31T02:00:00+02:00"]),
    # --- fall back: fixed-time jobs run in the first pass only
    ("30 2 * * *", "Europe/Berlin", "2025-10-26T01:00:00+02:00",
     ["2025-10-26T02:30:00+02:00", "2025-10-27T02:30:00+01:00"]),
    ("0 0-23 * * *", "Europe/Berlin", "2025-10-26T01:30:00+02:00",
     ["2025-10-26T02:00:00+02:00", "2025-10-26T03:00:00+01:00"]),
    ("30 1 * * *", "America/New_York", "2025-11-02T00:00:00-04:00",
     ["2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"]),
    # ... and starting inside the second pass, that hour's fixed-time run has already happened
    ("30 2 * * *", "Europe/Berlin", "2025-10-26T02:15:00+01:00", ["2025-10-27T02:30:00+01:00"]),
    ("30 2 * * *", "Europe/Berlin", "2025-10-26T02:45:00+01:00", ["2025-10-27T02:30:00+01:00"]),
    # --- fall back: wildcard jobs run in both passes
    ("0 * * * *", "Europe/Berlin", "2025-10-26T01:30:00+02:00",
     ["2025-10-26T02:00:00+02:00", "2025-10-26T02:00:00+01:00", "2025-10-26T03:00:00+01:00"]),
    ("*/30 * * * *", "Europe/Berlin", "2025-10-26T02:45:00+02:00",
     ["2025-10-26T02:00:00+01:00", "2025-10-26T02:30:00+01:00", "2025-10-26T03:00:00+01:00"]),
    ("@hourly", "America/New_York", "2025-11-02T00:30:00-04:00",
     ["2025-11-02T01:00:00-04:00", "2025-11-02T01:00:00-05:00", "2025-11-02T02:00:00-05:00"]),
    # --- Lord Howe: 30-minute shifts, same rules
    ("0 2 * * *", "Australia/Lord_Howe", "2025-10-05T01:00:00+10:30", ["2025-10-05T02:30:00+11:00"]),
    ("15 2 * * *", "Australia/Lord_Howe", "2025-10-05T01:00:00+10:30",
     ["2025-10-05T02:30:00+11:00", "2025-10-06T02:15:00+11:00"]),
    ("*/15 * * * *", "Australia/Lord_Howe", "2025-10-05T01:50:00+10:30", ["2025-10-05T02:30:00+11:00"]),
    ("0,15 * * * *", "Australia/Lord_Howe", "2025-10-05T01:50:00+10:30", ["2025-10-05T03:00:00+11:00"]),
    ("45 1 * * *", "Australia/Lord_Howe", "2025-04-06T01:00:00+11:00",
     ["2025-04-06T01:45:00+11:00", "2025-04-07T01:45:00+10:30"]),
    ("*/15 * * * *", "Australia/Lord_Howe", "2025-04-06T01:50:00+11:00",
     ["2025-04-06T01:30:00+10:30", "2025-04-06T01:45:00+10:30", "2025-04-06T02:00:00+10:30"]),
    # --- Havana: the transitions happen at midnight
    ("@daily", "America/Havana", "2025-03-08T23:30:00-05:00",
     ["2025-03-09T01:00:00-04:00", "2025-03-10T00:00:00-04:00"]),
    ("30 0 * * *", "America/Havana", "2025-03-08T23:30:00-05:00", ["2025-03-09T01:00:00-04:00"]),
    ("@hourly", "America/Havana", "2025-03-08T23:30:00-05:00",
     ["2025-03-09T01:00:00-04:00", "2025-03-09T02:00:00-04:00"]),
    ("@daily", "America/Havana", "2025-11-01T23:30:00-04:00",
     ["2025-11-02T00:00:00-04:00", "2025-11-03T00:00:00-05:00"]),
    ("@hourly", "America/Havana", "2025-11-02T00:30:00-04:00",
     ["2025-11-02T00:00:00-05:00", "2025-11-02T01:00:00-05:00"]),
    # --- zones without DST, and half-hour offsets, are plain
    ("30 2 * * *", "Asia/Kolkata", "2025-03-30T00:00:00", ["2025-03-30T02:30:00+05:30"]),
    ("30 2 * * *", "UTC", "2025-10-26T02:30:00+00:00", ["2025-10-27T02:30:00+00:00"]),
]


@pytest.mark.parametrize(("expr", "tz", "after", "expected"), CASES)
def test_it_fires_when_cron_would_around_real_transitions(expr: str, tz: str, after: str, expected: list[str]) -> None:
    assert fires(expr, tz, after, len(expected)) == expected


def test_a_gap_run_at_the_jump_instant_is_not_repeated_when_asked_from_that_instant() -> None:
    # After the 03:00 catch-up run, the next question starts exactly at 03:00:00.
    s = schedule("30 2 * * *")
    at = datetime.fromisoformat("2025-03-30T03:00:00+02:00")
    assert next_fire(s, at, "Europe/Berlin") == datetime.fromisoformat("2025-03-31T02:30:00+02:00")


def test_the_answer_does_not_depend_on_the_offset_the_start_is_written_in() -> None:
    s = schedule("0 * * * *")
    second_pass = datetime.fromisoformat("2025-10-26T02:10:00+01:00")
    as_utc = second_pass.astimezone(ZoneInfo("UTC"))
    got = next_fire(s, as_utc, "Europe/Berlin")
    assert got is not None and got.isoformat() == "2025-10-26T03:00:00+01:00"
    assert got.tzinfo == ZoneInfo("Europe/Berlin")


def test_a_skipped_day_is_a_large_clock_jump_with_nothing_caught_up() -> None:
    # Samoa skipped 2011-12-30 (-10:00 -> +14:00). cron.c treats a jump of more than 180
    # minutes as "clock jumped": the missing day's fixed-time runs are not made up.
    assert fires("0 12 * * *", "Pacific/Apia", "2011-12-29T23:30:00-10:00") == ["2011-12-31T12:00:00+14:00"]
    assert fires("0 0 * * *", "Pacific/Apia", "2011-12-29T23:30:00-10:00") == ["2011-12-31T00:00:00+14:00"]


def test_the_skipped_day_agrees_with_the_cron_simulation() -> None:

    from tests.cron_oracle import CronSim, Oracle

    sim = CronSim("Pacific/Apia", datetime(2011, 12, 20, tzinfo=UTC), datetime(2012, 1, 10, tzinfo=UTC))
    for expr in ["0 12 * * *", "30 * * * *", "@daily", "0 0-23 * * *", "*/20 9 * * *"]:
        s = schedule(expr)
        oracle = Oracle(sim, s)
        start = datetime.fromisoformat("2011-12-29T00:00:00-10:00")
        for k in range(0, 72 * 60, 37):
            after = start + timedelta(minutes=k)
            assert next_fire(s, after, "Pacific/Apia") == oracle.next_after(after), (expr, after)
