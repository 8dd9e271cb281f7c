"""Lint: a job `after=` an upstream that runs later in the day than itself takes the
upstream's run of the day before (dagrun.py), which is rarely what was meant."""

from __future__ import annotations

import pytest

from tests.test_lint import warnings


def test_a_job_after_an_upstream_scheduled_later_in_the_day_is_a_warning() -> None:
    text = ("CRON_TZ=UTC\n# cronplus: name=train\n30 6 * * * train.sh\n"
            "# cronplus: name=deploy after=train\n0  5 * * * deploy.sh\n")
    assert warnings(text) == [
        "ct:5:4: warning: job deploy runs at 05:00 but is after=train, which runs later in the day (06:30): "
        "each run waits for train's run of the day before (schedule deploy at or after 06:30 "
        "(the same time as train is fine))"]


@pytest.mark.parametrize("down", [
    "30 6 * * *",  # the same time: the usual pipeline
    "0 7 * * *",  # later: waits for today's run
    "*/5 * * * *",  # not a fixed time of day: no single answer
    "0 5 * * 1",  # other days: not compared
])
def test_a_downstream_at_or_after_its_upstream_or_not_daily_is_not_flagged(down: str) -> None:
    text = f"CRON_TZ=UTC\n# cronplus: name=train\n30 6 * * * t\n# cronplus: name=deploy after=train\n{down} d\n"
    assert not any("later in the day" in w for w in warnings(text))


def test_the_cli_check_names_the_line_and_the_times(tmp_path) -> None:
    from tests import incli

    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=extract\n0 2 * * * e\n# cronplus: name=load after=extract\n0 1 * * * l\n")
    out = incli.run(["--crontab", str(crontab), "--state-dir", str(tmp_path / "state"), "check"],
                    env=incli.base_env())
    assert f"{crontab}:4:3: warning: job load runs at 01:00 but is after=extract" in out.stdout + out.stderr
