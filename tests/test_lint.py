"""Lint warnings: valid crontabs that probably do not do what was meant."""

from __future__ import annotations

import pytest

from cronplus.crontab.parser import parse_crontab
from cronplus.errors import Severity


def warnings(text: str) -> list[str]:
    ct = parse_crontab(text, path="ct", system=False)
    assert all(w.severity is Severity.WARNING for w in ct.warnings)
    return [str(w) for w in ct.warnings]


@pytest.mark.parametrize("sched", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 4,6,9,11 *", "0 0 30,31 feb *", "0 0 30 2 *,1"])
def test_a_schedule_that_never_fires_is_a_warning(sched: str) -> None:
    assert warnings(f"CRON_TZ=UTC\n{sched} cmd\n") == [
        f"ct:2:5: warning: schedule '{sched}' never fires: no chosen day exists in the chosen months"
    ]


@pytest.mark.parametrize("sched", ["0 0 29 2 *", "0 0 31 1-12 *", "0 0 31 * *", "0 0 30 2 1"])
def test_schedules_that_do_fire_are_not_flagged_as_never(sched: str) -> None:
    assert not any("never fires" in w for w in warnings(f"CRON_TZ=UTC\n{sched} cmd\n"))


def test_both_day_fields_restricted_warns_about_crons_or_rule() -> None:
    assert warnings("CRON_TZ=UTC\n0 0 13 * 5 cmd\n") == [
        (
            "ct:2:5: warning: day-of-month '13' and day-of-week '5' are both restricted: cron runs when EITHER "
            "matches, not both (for both, keep one in the schedule and test the other in the command, "
            'e.g. [ "$(date +\\%d)" -le 07 ] && ...)'
        )
    ]


@pytest.mark.parametrize("sched", ["0 0 */2 * 1", "0 0 13 * *", "0 0 * * 5", "@weekly"])
def test_a_star_day_field_does_not_trigger_the_or_warning(sched: str) -> None:
    assert warnings(f"CRON_TZ=UTC\n{sched} cmd\n") == []


@pytest.mark.parametrize(
    ("sched", "message"),
    [
        ("*/7 * * * *", "ct:2:1: warning: '*/7' does not divide 60 evenly: the last gap of each hour is 4 minutes, not 7 (use a step that divides 60, or list the values)"),
        ("*/45 * * * *", "ct:2:1: warning: '*/45' does not divide 60 evenly: the last gap of each hour is 15 minutes, not 45 (use a step that divides 60, or list the values)"),
        ("0 */5 * * *", "ct:2:3: warning: '*/5' does not divide 24 evenly: the last gap of each day is 4 hours, not 5 (use a step that divides 24, or list the values)"),
    ],
)
def test_a_step_that_does_not_divide_its_cycle_is_a_warning(sched: str, message: str) -> None:
    assert warnings(f"CRON_TZ=UTC\n{sched} cmd\n") == [message]


@pytest.mark.parametrize("sched", ["*/15 * * * *", "*/30 */6 * * *", "0-30/7 * * * *", "0 */8 * * *"])
def test_steps_that_divide_evenly_or_ranges_are_fine(sched: str) -> None:
    assert warnings(f"CRON_TZ=UTC\n{sched} cmd\n") == []


def test_a_fixed_time_in_a_dst_gap_and_overlap_is_a_warning() -> None:
    got = warnings("CRON_TZ=Europe/Berlin\n30 2 * * * cmd\n")
    assert len(got) == 2
    assert got[0].startswith("ct:2:4: warning: 02:30 is skipped by a DST change in Europe/Berlin (e.g. ")
    assert got[0].endswith("): it runs once right after the jump (pick a time outside the change, or tz=UTC)")
    assert got[1].startswith("ct:2:4: warning: 02:30 repeats at a DST change in Europe/Berlin (e.g. ")


def test_new_york_changes_at_two_am_local() -> None:
    got = warnings("# cronplus: tz=America/New_York\n15 1 * * * cmd\n")
    assert len(got) == 1 and "01:15 repeats at a DST change in America/New_York" in got[0]


@pytest.mark.parametrize(
    "text",
    [
        "CRON_TZ=Europe/Berlin\n30 3 * * * cmd\n",  # outside the change
        "CRON_TZ=Europe/Berlin\n30 * * * * cmd\n",  # wildcard jobs are cron's other DST rule
        "CRON_TZ=Europe/Berlin\n@hourly cmd\n",
        "CRON_TZ=UTC\n30 2 * * * cmd\n",
        "CRON_TZ=Asia/Tokyo\n30 2 * * * cmd\n",
        "CRON_TZ=Europe/Berlin\n@reboot cmd\n",
    ],
)
def test_no_dst_warning_where_nothing_changes(text: str) -> None:
    assert warnings(text) == []


def test_a_mailto_is_mail_now_and_only_an_unsafe_one_is_a_warning() -> None:
    assert warnings("MAILTO=ops@example.com,dev@example.com\n") == []
    assert warnings("MAILTO=ops team\n") == [
        "ct:1:1: warning: MAILTO 'ops team' is not a safe mail address list: cron accepts letters, digits and"
        " @!:%-.,_+ (not first), no spaces: no mail is sent"
    ]


def test_an_empty_mailto_is_not_a_warning() -> None:
    assert warnings('MAILTO=""\n') == []


def test_warnings_come_in_line_order() -> None:
    got = warnings("CRON_TZ=UTC\n*/7 * * * * a\nMAILTO=-x\n0 0 30 2 * b\n")
    assert [g.split(": ")[0] for g in got] == ["ct:2:1", "ct:3:1", "ct:4:5"]


@pytest.mark.parametrize(
    ("sched", "warned"),
    [
        ("30 2 * * 0", True),  # Europe changes on Sundays
        ("30 2 * 3,10 *", True),
        ("30 2 1 * *", False),  # never on the 1st: the last Sunday of a month is day 25-31
        ("30 2 * 1-2,4-9,11-12 *", False),  # not in March or October
        ("30 2 * * 1-6", False),  # not on Sundays
    ],
)
def test_dst_warnings_only_when_the_job_runs_on_a_change_day(sched: str, warned: bool) -> None:
    got = warnings(f"CRON_TZ=Europe/Berlin\n{sched} cmd\n")
    assert any("DST change" in g for g in got) is warned


def test_trigger_without_after_is_a_warning_at_its_value() -> None:
    assert warnings("CRON_TZ=UTC\n# cronplus: trigger=all_done\n0 0 * * * cmd\n") == [
        "ct:2:21: warning: trigger= has no effect without after= (add after=JOB or remove trigger=)"
    ]


def test_a_default_trigger_without_after_is_a_warning_too() -> None:
    got = warnings("CRON_TZ=UTC\n# cronplus-defaults: trigger=one_success\n0 0 * * * a\n0 0 * * * b\n")
    assert got == ["ct:2:30: warning: trigger= has no effect without after= (add after=JOB or remove trigger=)"]


def test_a_default_trigger_used_by_a_job_with_after_is_fine() -> None:
    text = "CRON_TZ=UTC\n# cronplus-defaults: trigger=all_done\n# cronplus: name=a\n0 0 * * * a\n# cronplus: after=a\n0 1 * * * b\n"
    assert warnings(text) == []
