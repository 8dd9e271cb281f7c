"""`run-on=any|all|HOST` (crontab/runon.py): parsed into JobOptions.run_on with FILE:LINE:COL
errors; a supervisor schedules a run-on=HOST job only when its --host-id is HOST (a manual
trigger still runs it anywhere), and every claim (engine/claims.py) follows from it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_crontab
from cronplus.engine.claims import claim_of
from cronplus.engine.scheduler import Scheduler
from cronplus.errors import CrontabError
from cronplus.status import Trigger
from cronplus.store.history import History

T0 = 1_767_268_800.0  # a minute boundary


@pytest.mark.parametrize(("value", "expected"), [("any", "any"), ("all", "all"), ("db-1.example.com", "db-1.example.com"),
                                                  ('"host:7"', "host:7")])
def test_run_on_takes_any_all_or_a_host_id(value: str, expected: str) -> None:
    crontab = parse_crontab(f"# cronplus: name=j run-on={value}\n* * * * * true\n", path="/etc/cp", system=False)
    assert crontab.jobs[0].options.run_on == expected


def test_run_on_defaults_to_any() -> None:
    assert parse_crontab("* * * * * true\n", path="/etc/cp", system=False).jobs[0].options.run_on == "any"


@pytest.mark.parametrize(("value", "message"), [
    ('"a b"', "/tmp/cp:2:21: bad run-on: 'a b' is not a host id: printable characters, no whitespace"),
    ('""', "/tmp/cp:2:21: bad run-on: a host id cannot be empty"),
    ("x" * 201, "/tmp/cp:2:20: bad run-on: a host id has at most 200 characters"),
])
def test_a_bad_run_on_is_one_error_naming_file_line_and_column(value: str, message: str) -> None:
    with pytest.raises(CrontabError) as err:
        parse_crontab(f"SHELL=/bin/sh\n# cronplus: run-on={value}\n* * * * * true\n", path="/tmp/cp", system=False)
    assert str(err.value).splitlines()[0].startswith(message)
    assert "run-on= is any, all or a supervisor's --host-id" in str(err.value)


def test_claims_follow_the_trigger_and_run_on() -> None:
    crontab = parse_crontab("# cronplus: name=any\n* * * * * true\n# cronplus: name=all run-on=all\n* * * * * true\n"
                            "# cronplus: name=b run-on=b\n* * * * * true\n", path="/tmp/cp", system=False)
    any_, all_, b = crontab.jobs
    assert [claim_of(any_, t, "a") for t in Trigger] == ["", "", None, "a", None, None]
    assert claim_of(all_, Trigger.SCHEDULE, "a") == "a" and claim_of(b, Trigger.SCHEDULE, "b") == ""


def test_a_job_run_on_another_host_is_not_scheduled_here_but_can_be_triggered(tmp_path: Path) -> None:
    async def main() -> list[tuple[str, str | None]]:
        text = ("# cronplus: name=mine run-on=a\n* * * * * true\n"
                "# cronplus: name=theirs run-on=b\n* * * * * true\n"
                "# cronplus: name=boot run-on=b\n@reboot true\n")
        history = History(tmp_path / "history.db", host="a")
        clock = FakeClock(T0 - 30)
        sched = Scheduler(parse_crontab(text, path=str(tmp_path / "crontab"), system=False), history=history,
                          alerting=None, log_dir=tmp_path / "logs", owner="a:1:0", clock=clock)
        assert sched.next_tick["theirs"] is None and sched.next_tick["mine"] is not None
        for when in (T0 - 30, T0, T0 + 60):
            clock.jump(when - clock.time())
            sched.step(when)
            await sched.wait_idle()
        sched.trigger("theirs")
        await sched.wait_idle()
        rows = [(r.job, r.trigger) for r in history.query()]
        history.close()
        return rows

    assert asyncio.run(main()) == [("mine", Trigger.SCHEDULE), ("mine", Trigger.SCHEDULE), ("theirs", Trigger.MANUAL)]
