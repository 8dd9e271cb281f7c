"""--since/--until time parsing (cronplus.timeparse) and table renderings (cronplus.humanize)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cronplus.errors import UsageError
from cronplus.humanize import duration, local_time
from cronplus.timeparse import parse_span, parse_time

NOW = datetime(2025, 6, 15, 15, 6, 40).timestamp()  # local time, whatever the zone
MIDNIGHT = datetime(2025, 6, 15).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("today", MIDNIGHT),
        ("yesterday", datetime(2025, 6, 14).timestamp()),
        ("tomorrow", datetime(2025, 6, 16).timestamp()),
        ("-2h", NOW - 7200),
        ("-30min", NOW - 1800),
        ("+1h30min", NOW + 5400),
        ("2h ago", NOW - 7200),
        ("1 day ago", NOW - 86400),
        ("-1w", NOW - 7 * 86400),
        ("-90s", NOW - 90),
        ("2025-06-01", datetime(2025, 6, 1).timestamp()),
        ("2025-06-01 14:00", datetime(2025, 6, 1, 14).timestamp()),
        ("2025-06-01 14:00:05", datetime(2025, 6, 1, 14, 0, 5).timestamp()),
        ("2025-06-01T14:00:00+02:00", datetime(2025, 6, 1, 12, tzinfo=UTC).timestamp()),
        ("2025-06-01T12:00:00Z", datetime(2025, 6, 1, 12, tzinfo=UTC).timestamp()),
        ("14:00", datetime(2025, 6, 15, 14).timestamp()),
        ("9:05", datetime(2025, 6, 15, 9, 5).timestamp()),
        ("@1750000000", 1_750_000_000.0),
        ("YESTERDAY", datetime(2025, 6, 14).timestamp()),
    ],
)
def test_it_parses_journalctl_style_times(text: str, expected: float) -> None:
    assert parse_time(text, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "bogus", "-2x", "2025-13-01", "2h from now", "@soon"])
def test_it_rejects_what_it_cannot_read_with_a_usage_error_naming_the_forms(text: str) -> None:
    with pytest.raises(UsageError, match=r"cannot understand time .*yesterday"):
        parse_time(text, now=NOW)


def test_m_is_minutes_as_in_systemd_not_months() -> None:
    assert parse_span("5m") == 300
    assert parse_span("1h 30 min") == 5400
    assert parse_span("soon") is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.85, "850ms"), (0.0004, "0ms"), (1.25, "1.2s"), (12, "12s"), (59.6, "1min"), (125, "2min 5s"),
     (3599.6, "1h"), (3720, "1h 2min"), (86399, "1d"), (200_000, "2d 8h"), (None, "-")],
)
def test_durations_are_compact_with_two_units_at_most(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_local_time_renders_an_instant_in_the_local_zone() -> None:
    aware = datetime(2025, 6, 1, 12, tzinfo=UTC)
    local = aware.astimezone()
    assert local_time(aware) == local.strftime("%Y-%m-%d %H:%M:%S")
    assert local_time(aware.timestamp()) == local_time(aware)
    assert local_time(aware + timedelta(seconds=5), with_date=False) == (local + timedelta(seconds=5)).strftime("%H:%M:%S")
    assert local_time(None) == "-"
