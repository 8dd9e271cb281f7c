"""Steps as large as the field: accepted, first value only; larger: rejected (issue 10, item 3).

What each deployed cron does with a step (get_range in entry.c):

* Vixie 4.1, Debian 3.0pl1, cronie 1.4-1.6: `if (ch == EOF || num3 == 0) return (EOF);` then
  `for (i = num1; i <= num2; i += num3) set_element(...)`: every step >= 1 is accepted, and a
  step past the range's end sets one bit, the range's first value.
* cronie 1.7: the same loop; before it `if (step > 1 && step > (high_ - low_))` only prints
  "Warning: Step size %i higher than possible maximum of %i".
* OpenBSD cron: `const int max_step = high + 1 - low;` and `get_number(&num3, 0, max_step, ...)`:
  a step above the field's size (60 minutes, 24 hours, 31 days, 12 months, 8 day-of-week
  values 0-7) is refused; one equal to it is accepted with the loop's meaning.

So every cron accepts a step up to the field's size and reads it as the first value; beyond,
they part (rejected, or first value), and cronplus rejects with "deployed crons disagree".
"""

from __future__ import annotations

import pytest

from cronplus.crontab.lint import findings
from cronplus.crontab.parser import parse_schedule
from cronplus.errors import CrontabError

DISAGREE = "deployed crons disagree on it"


@pytest.mark.parametrize(
    ("expr", "attr", "expected"),
    [
        ("*/60 * * * *", "minutes", {0}),
        ("0 */24 * * *", "hours", {0}),
        ("0 0 */31 * *", "days", {1}),
        ("0 0 1 */12 *", "months", {1}),
        ("0 0 * * */8", "weekdays", {0}),  # 0-7 is 8 values; 0 is Sunday
        ("0 0 * * */7", "weekdays", {0}),  # {0, 7}: both Sunday
        ("*/59 * * * *", "minutes", {0, 59}),
        ("30-50/60 * * * *", "minutes", {30}),  # a range's step: the range's first value
        ("0 0 * 3-9/12 *", "months", {3}),
        ("0 0 5-20/31 * *", "days", {5}),
        ("0 0 * * mon-fri/8", "weekdays", {1}),
    ],
)
def test_a_step_up_to_the_fields_size_is_the_first_value(expr: str, attr: str, expected: set[int]) -> None:
    assert set(getattr(parse_schedule(expr), attr)) == expected


def test_a_star_step_keeps_the_star_flag_like_cron() -> None:
    # cron sets DOM_STAR from the field's first character: `*/31` is a star field.
    assert parse_schedule("0 0 */31 * 1").dom_star


@pytest.mark.parametrize(
    ("expr", "col", "field", "step", "bounds"),
    [
        ("*/61 * * * *", 3, "minute", 61, "0-59, 60 values"),
        ("0 */25 * * *", 5, "hour", 25, "0-23, 24 values"),
        ("0 0 */32 * *", 7, "day-of-month", 32, "1-31, 31 values"),
        ("0 0 1 */13 *", 9, "month", 13, "1-12, 12 values"),
        ("0 0 * * */9", 11, "day-of-week", 9, "0-7, 8 values"),
        ("0 0 * 1-6/13 *", 11, "month", 13, "1-12, 12 values"),
    ],
)
def test_a_step_beyond_the_fields_size_is_rejected(expr: str, col: int, field: str, step: int, bounds: str) -> None:
    with pytest.raises(CrontabError) as info:
        parse_schedule(expr)
    message = str(info.value.diagnostics[0])
    assert message.startswith(f"<expr>:1:{col}: bad {field}: step {step} is larger than the field ({bounds}); {DISAGREE}")


@pytest.mark.parametrize("expr", ["*/60 * * * *", "0 */24 * * *"])
def test_a_step_of_the_whole_period_is_not_an_uneven_step(expr: str) -> None:
    # */60 runs every 60 minutes exactly (at :00), */24 every 24 hours: lint's "does not divide
    # evenly" warning is for */45 and the like, not these.
    assert [f for f in findings(parse_schedule(expr), None, "2026-01-01") if "evenly" in f[1]] == []


def test_lint_still_warns_for_an_uneven_step() -> None:
    assert any("evenly" in f[1] for f in findings(parse_schedule("*/45 * * * *"), None, "2026-01-01"))
