"""Every timestamp a run's record gets comes from the injected clock: under a FakeClock set years
away from the real time, a run starts and ends at the fake time, and its duration is the real
time the job took (the fake clock stands still while it runs)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_crontab
from cronplus.engine.recovery import recover
from cronplus.model import RunRecord
from cronplus.status import RunStatus, Trigger
from cronplus.store.history import open_readonly
from tests.test_daemon import cli
from tests.test_faults_restart import Shifted, rows
from tests.test_scheduler import World, run, ts
from tests.waiting import wait_until

FAR = ts("2001-01-01T00:00:30")  # ~25 years before any real "now" this suite runs at
TICK = ts("2001-01-01T00:01:00")
SLACK_S = 60.0  # a loaded machine may take long to run `true`; a wall-clock leak is off by years


def only_run(w: World, job: str = "a") -> RunRecord:
    (record,) = w.history.latest_runs(job)
    return record


def test_a_run_under_a_fake_clock_starts_and_ends_at_the_fake_time(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n* * * * * true\n", FAR)
        await w.step_at(TICK)
        record = only_run(w)
        assert record.status is RunStatus.SUCCESS
        assert record.started_at is not None and record.ended_at is not None
        assert record.started_at.timestamp() == TICK
        assert TICK <= record.ended_at.timestamp() <= TICK + SLACK_S
        assert record.duration_s is not None and 0.0 <= record.duration_s <= SLACK_S

    run(main())


def test_a_runs_duration_is_the_real_time_it_took_while_the_fake_clock_stands_still(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n* * * * * sleep 0.3\n", FAR)
        await w.step_at(TICK)
        record = only_run(w)
        assert w.clock.time() == TICK  # nothing moved the fake clock while the job ran
        assert record.duration_s is not None and 0.3 <= record.duration_s <= SLACK_S

    run(main())


def test_a_job_that_cannot_start_ends_at_the_fake_time(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, f"SHELL={tmp_path}/no-such-shell\n# cronplus: name=a\n* * * * * true\n", FAR)
        await w.step_at(TICK)
        record = only_run(w)
        assert record.status is RunStatus.FAILED
        assert "cannot execute" in (record.reason or "")
        assert record.ended_at is not None and TICK <= record.ended_at.timestamp() <= TICK + SLACK_S

    run(main())


def test_a_run_a_dead_supervisor_left_running_is_interrupted_at_the_fake_time(tmp_path: Path) -> None:
    w = World(tmp_path, "# cronplus: name=a\n* * * * * true\n", FAR)
    run_id = w.history.start_run(job="a", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=TICK, tz=None,
                                 started_at=TICK, log_path=None, owner="a supervisor that died")
    crontab = parse_crontab(w.text, path=str(tmp_path / "crontab"), system=False)
    clock = FakeClock(TICK + 5.0)
    recover(w.history, crontab, None, owner="the new one", clock=clock)
    record = w.history.get_run(run_id)
    assert record is not None and record.status is RunStatus.INTERRUPTED
    assert record.ended_at is not None and record.ended_at.timestamp() == TICK + 5.0


# ---- the real `cronplus run` on a clock shifted by years (tests/shifted_run.py) -------------

YEARS_S = 20 * 365 * 86400.0



def records(state: Path) -> dict[str, RunRecord]:
    with open_readonly(state / "history.db") as reader:
        return {name: reader.latest_runs(name)[0] for name in reader.job_names()}


def test_a_shifted_supervisor_records_runs_and_interruptions_on_its_own_clock(shifted: list[Shifted], tmp_path: Path) -> None:  # noqa: F811 - the fixture
    (tmp_path / "crontab").write_text("# cronplus: name=quick\n0 0 1 1 * true\n"
                                      "# cronplus: name=slow\n0 0 1 1 * sleep 60\n")
    first = Shifted(tmp_path, YEARS_S)
    shifted.append(first)
    first.wait_ready()
    assert cli(first.state, first.crontab, "trigger", "quick").returncode == 0
    assert cli(first.state, first.crontab, "trigger", "slow").returncode == 0
    wait_until(lambda: rows(first.state, "SELECT 1 FROM runs WHERE job = 'slow' AND pid IS NOT NULL"), 20, "slow's start")
    wait_until(lambda: rows(first.state, "SELECT 1 FROM runs WHERE job = 'quick' AND final = 1"), 20, "quick's end")
    first.stop(signal.SIGKILL)
    again = Shifted(tmp_path, YEARS_S)  # its start makes the run the dead one left `running` interrupted
    shifted.append(again)
    again.wait_ready()
    assert again.stop() == 0
    got = records(again.state)
    shifted_now = time.time() + YEARS_S
    for name, status in (("slow", RunStatus.INTERRUPTED), ("quick", RunStatus.SUCCESS)):
        record = got[name]
        assert record.status is status
        assert record.started_at is not None and record.ended_at is not None
        assert shifted_now - 300 <= record.started_at.timestamp() <= record.ended_at.timestamp() <= shifted_now
