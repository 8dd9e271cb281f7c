"""The five cron fields: value sets, star flags, and every rejected form with its column."""

from __future__ import annotations

import pytest

from cronplus.crontab.parser import parse_schedule
from cronplus.errors import CrontabError, SourceLoc

ALL_MIN = frozenset(range(60))
ALL_DOW = frozenset(range(7))


def error_of(expr: str) -> str:
    with pytest.raises(CrontabError) as info:
        parse_schedule(expr)
    assert len(info.value.diagnostics) >= 1
    return str(info.value.diagnostics[0])


@pytest.mark.parametrize(
    ("expr", "attr", "expected"),
    [
        ("*/10 * * * *", "minutes", {0, 10, 20, 30, 40, 50}),
        ("0-59/20 * * * *", "minutes", {0, 20, 40}),
        ("5-7 * * * *", "minutes", {5, 6, 7}),
        ("1,3,5-6 * * * *", "minutes", {1, 3, 5, 6}),
        ("07 * * * *", "minutes", {7}),  # leading zeros are fine
        ("0 3-3 * * *", "hours", {3}),  # N-N is the single value N (croniter bug B)
        ("0 */6 * * *", "hours", {0, 6, 12, 18}),
        ("0 0 */10 * *", "days", {1, 11, 21, 31}),
        ("0 0 * jan-MAR/2 *", "months", {1, 3}),
        ("0 0 * Jan,jul,DEC *", "months", {1, 7, 12}),
        ("0 0 * * mon-fri/2", "weekdays", {1, 3, 5}),
        ("0 0 * * 7", "weekdays", {0}),  # Sunday as 7 folds to 0
        ("0 0 * * 5-7", "weekdays", {5, 6, 0}),
        ("0 0 * * sun-sun", "weekdays", {0}),
        ("0 0 * * 7-7", "weekdays", {0}),
        ("0 0 * * *", "weekdays", ALL_DOW),
        ("0 0 * * */2", "weekdays", {0, 2, 4, 6}),
        ("0 0 * * SAT", "weekdays", {6}),
    ],
)
def test_it_expands_fields_to_value_sets(expr: str, attr: str, expected: set[int]) -> None:
    assert getattr(parse_schedule(expr), attr) == frozenset(expected)


@pytest.mark.parametrize(
    ("expr", "flags"),
    [
        ("* * * * *", (True, True, True, True)),
        ("*/5 3 * * 1", (True, False, True, False)),
        ("0 0 *,13 * 1", (False, False, True, False)),  # a field is star when it STARTS with *
        ("0 0 1-31 * 1", (False, False, False, False)),
        ("0 * 13 * 5", (False, True, False, False)),
    ],
)
def test_star_flags_follow_the_first_character(expr: str, flags: tuple[bool, ...]) -> None:
    s = parse_schedule(expr)
    assert (s.minute_star, s.hour_star, s.dom_star, s.dow_star) == flags


@pytest.mark.parametrize(
    ("nick", "minutes", "hours", "days", "months", "weekdays", "hour_star", "dom_star", "dow_star"),
    [
        ("@hourly", {0}, set(range(24)), set(range(1, 32)), set(range(1, 13)), ALL_DOW, True, True, True),
        ("@daily", {0}, {0}, set(range(1, 32)), set(range(1, 13)), ALL_DOW, False, True, True),
        ("@midnight", {0}, {0}, set(range(1, 32)), set(range(1, 13)), ALL_DOW, False, True, True),
        ("@weekly", {0}, {0}, set(range(1, 32)), set(range(1, 13)), {0}, False, True, False),
        ("@monthly", {0}, {0}, {1}, set(range(1, 13)), ALL_DOW, False, False, True),
        ("@yearly", {0}, {0}, {1}, {1}, ALL_DOW, False, False, True),
        ("@annually", {0}, {0}, {1}, {1}, ALL_DOW, False, False, True),
    ],
)
def test_nicknames_mean_what_cronie_says(nick, minutes, hours, days, months, weekdays, hour_star, dom_star, dow_star) -> None:  # type: ignore[no-untyped-def]
    s = parse_schedule(nick)
    assert s.text == nick
    assert (s.minutes, s.hours, s.days, s.months, s.weekdays) == (minutes, hours, days, months, weekdays)
    assert (s.minute_star, s.hour_star, s.dom_star, s.dow_star) == (False, hour_star, dom_star, dow_star)
    assert s.is_wildcard is (nick == "@hourly")
    assert not s.reboot


def test_reboot_is_a_schedule_with_empty_sets() -> None:
    s = parse_schedule("@reboot")
    assert s.reboot and not s.minutes and not s.weekdays and not s.is_wildcard


def test_fields_may_be_separated_by_tabs_and_runs_of_spaces() -> None:
    assert parse_schedule("5\t4   *\t\t* 1").minutes == {5}


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        # what cron itself rejects
        ("60 * * * *", "<expr>:1:1: bad minute: 60 is out of range 0-59"),
        ("0 24 * * *", "<expr>:1:3: bad hour: 24 is out of range 0-23"),
        ("0 0 0 * *", "<expr>:1:5: bad day-of-month: 0 is out of range 1-31"),
        ("0 0 32 * *", "<expr>:1:5: bad day-of-month: 32 is out of range 1-31"),
        ("0 0 * 13 *", "<expr>:1:7: bad month: 13 is out of range 1-12"),
        ("0 0 * * 8", "<expr>:1:9: bad day-of-week: 8 is out of range 0-7"),
        ("5-70 * * * *", "<expr>:1:3: bad minute: 70 is out of range 0-59"),
        ("*/0 * * * *", "<expr>:1:3: bad minute: step 0 (a step must be at least 1)"),
        ("5/15 * * * *", "<expr>:1:1: bad minute: '5/15': a step needs a range or '*' before it (write 5-59/15 or */15)"),
        ("0 0 * * 1/2", "<expr>:1:9: bad day-of-week: '1/2': a step needs a range or '*' before it (write 1-7/2 or */2)"),
        ("0 0 * * monday", "<expr>:1:9: bad day-of-week: 'monday': cron takes only three-letter names (write mon)"),
        ("0 0 * january *", "<expr>:1:7: bad month: 'january': cron takes only three-letter names (write jan)"),
        ("0 0 * foo *", "<expr>:1:7: bad month: 'foo' is not a month name (names are jan,feb,mar,apr,may,jun,jul,aug,sep,oct,nov,dec)"),
        ("mon * * * *", "<expr>:1:1: bad minute: 'mon' is not a number"),
        ("0 0 L * *", "<expr>:1:5: bad day-of-month: 'L' (last) is not cron syntax (cron has no L, W, ?, H or R; list the values you mean)"),
        ("0 0 * * 5L", "<expr>:1:10: bad day-of-week: unexpected 'L' after '5'; deployed crons disagree on it (some ignore the rest, some reject the line) (write 5)"),
        ("0 0 15W * *", "<expr>:1:7: bad day-of-month: unexpected 'W' after '15'; deployed crons disagree on it (some ignore the rest, some reject the line) (write 15)"),
        ("0 0 ? * *", "<expr>:1:5: bad day-of-month: '?' (no value) is not cron syntax (cron has no L, W, ?, H or R; list the values you mean)"),
        ("H * * * *", "<expr>:1:1: bad minute: 'H' (hashed) is not cron syntax (cron has no L, W, ?, H or R; list the values you mean)"),
        ("R * * * *", "<expr>:1:1: bad minute: 'R' (random) is not cron syntax (cron has no L, W, ?, H or R; list the values you mean)"),
        ("1,,2 * * * *", "<expr>:1:3: bad minute: empty list item"),
        ("1, * * * *", "<expr>:1:3: bad minute: empty list item"),
        ("- * * * *", "<expr>:1:1: bad minute: unexpected '-'"),
        ("1- * * * *", "<expr>:1:3: bad minute: a value is missing"),
        ("*/ * * * *", "<expr>:1:3: bad minute: a step must be a number after '/'"),
        ("@DAILY", "<expr>:1:1: bad time specifier: '@DAILY' (@ names are lowercase only in cron: write @daily)"),
        ("@Hourly", "<expr>:1:1: bad time specifier: '@Hourly' (@ names are lowercase only in cron: write @hourly)"),
        ("@dialy", "<expr>:1:1: bad time specifier: '@dialy' (did you mean @daily?)"),
        ("@daily extra", "<expr>:1:8: bad time specifier: unexpected 'extra' after @daily"),
        ("0 0 * *", "<expr>:1:8: bad day-of-week: missing (a schedule has 5 fields, got 4)"),
        ("", "<expr>:1:1: bad minute: empty schedule"),
        ("0 0 0 * * * *", "<expr>:1:11: bad schedule: 7 fields; cron has exactly 5 (no seconds or year field)"),
    ],
)
def test_it_rejects_what_cron_rejects(expr: str, message: str) -> None:
    assert error_of(expr) == message


DISAGREE = "deployed crons disagree on it"


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("5-1 * * * *", f"<expr>:1:1: bad minute: reversed range 5-1; {DISAGREE} (rejected, wrapped around, or empty) (write 5-59,0-1 to wrap around)"),
        ("0 0 * * fri-mon", f"<expr>:1:9: bad day-of-week: reversed range fri-mon; {DISAGREE} (rejected, wrapped around, or empty) (write 5-6,0-1 to wrap around)"),
        ("0 22-2/2 * * *", f"<expr>:1:3: bad hour: reversed range 22-2/2; {DISAGREE} (rejected, wrapped around, or empty) (write 22-23,0-2 to wrap around)"),
        ("*/61 * * * *", f"<expr>:1:3: bad minute: step 61 is larger than the field (0-59, 60 values); {DISAGREE} (rejected, or first value only) (write the single value 0)"),
        ("0 */25 * * *", f"<expr>:1:5: bad hour: step 25 is larger than the field (0-23, 24 values); {DISAGREE} (rejected, or first value only) (write the single value 0)"),
        ("10-20/99 * * * *", f"<expr>:1:7: bad minute: step 99 is larger than the field (0-59, 60 values); {DISAGREE} (rejected, or first value only) (write the single value 10)"),
        ("5#3 * * * *", f"<expr>:1:2: bad minute: unexpected '#3' after '5'; {DISAGREE} (some ignore the rest, some reject the line) (write 5)"),
        ("0 0 * * 5#3", f"<expr>:1:10: bad day-of-week: unexpected '#3' after '5'; {DISAGREE} (some ignore the rest, some reject the line) (write 5)"),
        ("1-5-7 * * * *", f"<expr>:1:4: bad minute: unexpected '-7' after '1-5'; {DISAGREE} (some ignore the rest, some reject the line) (write 1-5)"),
        ("*/2/3 * * * *", f"<expr>:1:4: bad minute: unexpected '/3' after '*/2'; {DISAGREE} (some ignore the rest, some reject the line) (write */2)"),
        ("*5 * * * *", f"<expr>:1:2: bad minute: unexpected '5' after '*'; {DISAGREE} (some ignore the rest, some reject the line) (write * or a value list)"),
        ("** * * * *", f"<expr>:1:2: bad minute: unexpected '*' after '*'; {DISAGREE} (some ignore the rest, some reject the line) (write * or a value list)"),
        ("~ * * * *", f"<expr>:1:1: bad minute: '~' random ranges are cronie-only; {DISAGREE} (other crons reject the line) (pick a fixed value)"),
        ("0~30 * * * *", f"<expr>:1:2: bad minute: unexpected '~30' after '0'; {DISAGREE} (some ignore the rest, some reject the line) (write 0)"),
        ("0-99/100 * * * *", f"<expr>:1:3: bad minute: 99 is out of range 0-59, hidden by the step /100; {DISAGREE} (rejected, truncated or ignored) (keep both range ends within 0-59)"),
        ("0 0 1-40/30 * *", f"<expr>:1:7: bad day-of-month: 40 is out of range 1-31, hidden by the step /30; {DISAGREE} (rejected, truncated or ignored) (keep both range ends within 1-31)"),
    ],
)
def test_it_rejects_what_deployed_crons_disagree_on_and_says_how_to_write_it(expr: str, message: str) -> None:
    assert error_of(expr) == message


def test_it_reports_every_bad_field_of_one_schedule() -> None:
    with pytest.raises(CrontabError) as info:
        parse_schedule("60 24 0 13 8")
    cols = [d.loc.col for d in info.value.diagnostics]
    words = [d.message.split(":")[0] for d in info.value.diagnostics]
    assert cols == [1, 4, 7, 9, 12]
    assert words == ["bad minute", "bad hour", "bad day-of-month", "bad month", "bad day-of-week"]


def test_columns_are_relative_to_the_given_location() -> None:
    with pytest.raises(CrontabError) as info:
        parse_schedule("0 25 * * *", loc=SourceLoc(path="x.crontab", line=7, col=11))
    assert str(info.value) == "x.crontab:7:13: bad hour: 25 is out of range 0-23"


def test_schedule_text_is_kept_as_written_with_single_spaces() -> None:
    assert parse_schedule("*/10  *\t* * *").text == "*/10 * * * *"


def test_the_parser_does_not_import_croniter() -> None:
    import subprocess
    import sys

    code = "import sys, cronplus.crontab.parser as c; c.parse_crontab('0 0 * * * x\\n', path='p', system=False); print('croniter' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
