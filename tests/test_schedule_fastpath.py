"""next_fire's shortcut for a minute later today or tomorrow (no croniter step) gives the general
search's answer, and steps aside where a DST rule applies (a repeated or skipped hour, an
offset change in between). The year-long cron simulation (test_schedule_oracle.py) checks the
whole; these pin the cases at the shortcut's edges."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from cronplus.crontab.fields import parse_schedule
from cronplus.crontab.schedule import next_fire


@pytest.mark.parametrize(("expr", "tz", "after", "want"), [
    ("*/5 * * * *", "UTC", "2025-06-01T10:02:30+00:00", "2025-06-01T10:05:00+00:00"),
    ("* * * * *", "Europe/Berlin", "2025-06-01T10:59:00+02:00", "2025-06-01T11:00:00+02:00"),  # next hour
    ("15,45 9 * * 1-5", "Europe/Berlin", "2025-06-02T09:20:00+02:00", "2025-06-02T09:45:00+02:00"),  # a Monday
    ("15,45 9 * * 1-5", "Europe/Berlin", "2025-06-01T09:20:00+02:00", "2025-06-02T09:15:00+02:00"),  # Sunday: no
    ("*/10 * 13 * 5", "UTC", "2025-06-13T10:05:00+00:00", "2025-06-13T10:10:00+00:00"),  # OR rule: the 13th
    ("*/10 * 13 * 5", "UTC", "2025-06-20T10:05:00+00:00", "2025-06-20T10:10:00+00:00"),  # ... or a Friday
    # Europe/Berlin falls back at 03:00 CEST to 02:00 CET: a wildcard job runs in both passes.
    ("*/5 * * * *", "Europe/Berlin", "2025-10-26T02:57:00+02:00", "2025-10-26T02:00:00+01:00"),
    ("*/5 * * * *", "Europe/Berlin", "2025-10-26T02:52:00+01:00", "2025-10-26T02:55:00+01:00"),
    # Spring forward at 02:00 CET to 03:00 CEST: the skipped hour has no minutes.
    ("*/5 * * * *", "Europe/Berlin", "2025-03-30T01:57:00+01:00", "2025-03-30T03:00:00+02:00"),
    # Lord Howe moves by 30 minutes at 02:00 (to 02:30) inside an hour.
    ("*/5 * * * *", "Australia/Lord_Howe", "2025-10-05T01:57:00+10:30", "2025-10-05T02:30:00+11:00"),
    # Tomorrow, and across the transition night (the offset differs: the general search answers).
    ("30 2 * * *", "Europe/Berlin", "2025-06-01T10:00:00+02:00", "2025-06-02T02:30:00+02:00"),
    ("30 2 * * *", "Europe/Berlin", "2025-03-29T10:00:00+01:00", "2025-03-30T03:00:00+02:00"),
    ("30 2 * * *", "Europe/Berlin", "2025-10-25T10:00:00+02:00", "2025-10-26T02:30:00+02:00"),
    ("0 9 * * 1-5", "UTC", "2025-06-06T10:00:00+00:00", "2025-06-09T09:00:00+00:00"),  # Friday -> Monday
])
def test_the_next_fire_in_the_same_hour_is_crons(expr: str, tz: str, after: str, want: str) -> None:
    got = next_fire(parse_schedule(expr), datetime.fromisoformat(after), tz)
    assert got is not None and got.isoformat() == want


def test_the_next_minute_this_hour_or_tomorrow_is_found_without_loading_croniter() -> None:
    code = ("import sys\nfrom datetime import datetime\nfrom cronplus.crontab.fields import parse_schedule\n"
            "from cronplus.crontab.schedule import next_fire\n"
            "for expr in ('*/5 * * * *', '30 2 * * *'):\n"
            "    got = next_fire(parse_schedule(expr), datetime.fromisoformat('2025-06-01T10:02:30+00:00'), 'UTC')\n"
            "    print(got.isoformat())\n"
            "print('croniter' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout.split()
    assert out == ["2025-06-01T10:05:00+00:00", "2025-06-02T02:30:00+00:00", "False"]
