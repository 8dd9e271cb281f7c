"""alert-on=slow (issue 16 item 3): real processes under a real Scheduler over a real History,
the history of earlier runs written with the real store, the alert delivered to a real local
HTTP receiver by the real DeliveryWorker. Runs end when the test creates their `stop` file, so
"still running" is decided by the test, not by a timing margin."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.alerts.alerting import Alerting
from cronplus.alerts.delivery import DeliveryWorker, Policy
from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_crontab
from cronplus.engine import slowness
from cronplus.engine.scheduler import Scheduler
from cronplus.service.stats import RunStats
from cronplus.status import RunStatus, Trigger
from cronplus.store import outbox
from cronplus.store.history import History
from tests.http_receiver import Receiver

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
FAST = Policy(backoff_base=0.05, backoff_max=0.2, connect_timeout=0.5, read_timeout=1.0)


class World:
    """A Scheduler with Alerting subscribed, on a FakeClock, over a real History in tmp_path."""

    def __init__(self, tmp_path: Path, annotations: str, command: str | None = None) -> None:
        self.tmp = tmp_path
        self.stop = tmp_path / "stop"
        self.history = History(tmp_path / "history.db")
        self.clock = FakeClock(T0 + 86400)
        command = command or f"until [ -f {self.stop} ]; do sleep 0.05; done"
        text = f"# cronplus: name=etl {annotations}\n0 3 * * * {command}\n"
        crontab = parse_crontab(text, path=str(tmp_path / "crontab"), system=False)
        self.sched = Scheduler(crontab, history=self.history, alerting=Alerting(self.history, clock=self.clock),
                               log_dir=tmp_path / "logs", owner="test", clock=self.clock)

    def seed(self, durations: list[float]) -> None:
        """Earlier successful runs of etl with these durations, written by the real store."""
        at = T0
        for took in durations:
            run_id = self.history.start_run(job="etl", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=at, tz=None,
                                             started_at=at, log_path=None, owner="earlier")
            self.history.finish_run(run_id, status=RunStatus.SUCCESS, ended_at=at + took, exit_code=0, reason=None,
                                    final=True)
            at += 3600

    def alert_rows(self) -> list[outbox.OutboxRow]:
        return [r for r in outbox.list_rows(self.history.conn, limit=None) if r.event == "slow"]

    async def until(self, what: str, test: object) -> None:
        for _ in range(600):
            if test():  # type: ignore[operator]
                return
            await asyncio.sleep(0.05)
        self.stop.write_text("")  # the run ends: nothing is left running after a failure
        raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def test_the_threshold_is_the_p95_of_the_last_50_successes_times_the_factor_after_10_of_them() -> None:
    assert slowness.learn([1.0] * 9) is None
    ten = slowness.learn([float(i) for i in range(1, 11)])  # nearest rank: ceil(9.5) = the 10th
    assert ten == slowness.Learned(p95=10.0, runs=10)
    # the newest 50 of 70 (newest first): 1..50 s; p95 = the 48th smallest
    assert slowness.learn([float(i) for i in range(1, 51)] + [1000.0] * 20) == slowness.Learned(p95=48.0, runs=50)


def test_a_slow_run_alerts_the_receiver_while_it_still_runs_and_log_marks_it(tmp_path: Path, rx: Receiver) -> None:
    w = World(tmp_path, f"alert={rx.url('/hook')} alert-on=slow")
    w.seed([0.1] * 8 + [0.2, 0.15])  # p95 of these 10 is 0.2 s: the threshold is 0.6 s

    async def main() -> None:
        worker = DeliveryWorker(w.history.db_path, policy=FAST, idle_poll_s=0.05, env={})
        worker.start()
        try:
            run = w.sched.trigger("etl")
            [request] = await asyncio.to_thread(rx.wait_for, 1, timeout=30)
            row = w.history.get_run(run.run_id)  # read when the alert has arrived
            assert row is not None and row.status is RunStatus.RUNNING and row.slow_at is not None
            w.stop.write_text("")
            await w.sched.wait_idle()
        finally:
            worker.stop()
        data = request.json()["data"]
        assert request.json()["type"] == "cronplus.job.slow"
        assert (data["event"], data["job"], data["status"], data["run_id"]) == ("slow", "etl", "running", run.run_id)
        assert data["threshold_s"] == pytest.approx(0.6)
        assert data["learned"] == "p95 of last 10 successful runs 0.2s x 3"
        assert data["duration_s"] >= 0.6 and "past its threshold" in data["message"]

    asyncio.run(main())
    final = w.history.latest_runs("etl", 1)[0]
    assert final.status is RunStatus.SUCCESS and final.slow_at is not None
    env = {**os.environ, "CRONPLUS_STATE_DIR": str(tmp_path), "HOME": str(tmp_path)}
    log = subprocess.run([sys.executable, "-m", "cronplus", "log", "--no-pager", "--db", str(w.history.db_path)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert log.returncode == 0, log.stderr
    lines = [line for line in log.stdout.splitlines() if line.startswith(str(final.run_id))]
    assert len(lines) == 1 and "success slow" in lines[0]
    assert sum("slow" in line for line in log.stdout.splitlines()[1:]) == 1  # the seeded fast runs are unmarked


def test_with_fewer_than_10_successful_runs_nothing_is_learned_and_a_slow_run_is_not_flagged(tmp_path: Path) -> None:
    w = World(tmp_path, "alert=http://127.0.0.1:9/hook alert-on=slow")
    w.seed([0.1] * 9)  # one short of MIN_RUNS: 0.3 s would be the threshold

    async def main() -> None:
        run = w.sched.trigger("etl")
        await w.until("the run's start to be recorded", lambda: run.task is not None)
        await asyncio.sleep(1.5)  # five times what the threshold would be
        assert w.sched.records.slowness.armed == 0
        w.stop.write_text("")
        await w.sched.wait_idle()

    asyncio.run(main())
    assert w.history.latest_runs("etl", 1)[0].slow_at is None and w.alert_rows() == []


def test_expected_duration_needs_no_history_and_a_run_alerts_once_across_its_retries(tmp_path: Path) -> None:
    w = World(tmp_path, "alert=http://127.0.0.1:9/hook alert-on=slow expected-duration=0.3 timeout=1 kill-grace=1"
                        " retries=1 retry-delay=0", command="sleep 30")

    stats = RunStats()
    stats.subscribe(w.sched.bus)

    async def main() -> None:
        w.sched.trigger("etl")
        await w.sched.wait_idle()  # two attempts, each slow, each timed out

    asyncio.run(main())
    assert stats.slow_total() == {"etl": 1}
    attempts = sorted(w.history.latest_runs("etl", 5), key=lambda r: r.attempt)
    assert [(r.attempt, r.status) for r in attempts] == [(1, RunStatus.TIMEOUT), (2, RunStatus.TIMEOUT)]
    assert attempts[0].slow_at is not None and attempts[1].slow_at is None  # once per run, not per attempt
    [row] = w.alert_rows()
    assert row.run_id == attempts[0].run_id
    assert row.payload["data"]["learned"] == "expected-duration=0.3s"


def test_a_run_that_ends_in_time_cancels_its_timer(tmp_path: Path) -> None:
    w = World(tmp_path, "alert=http://127.0.0.1:9/hook alert-on=slow expected-duration=1h")

    async def main() -> None:
        run = w.sched.trigger("etl")
        slow = w.sched.records.slowness
        await w.until("the timer to be armed", lambda: slow.armed == 1)
        [timer] = slow._timers.values()
        assert timer.when() - asyncio.get_running_loop().time() > 3500  # an hour left, nothing fired
        w.stop.write_text("")
        await w.sched.wait_idle()
        assert timer.cancelled() and slow.armed == 0
        assert w.history.get_run(run.run_id).slow_at is None  # type: ignore[union-attr]

    asyncio.run(main())
    assert w.alert_rows() == []


def test_a_learned_threshold_of_half_an_hour_is_armed_from_a_history_written_on_a_fake_clock(tmp_path: Path) -> None:
    w = World(tmp_path, "alert=http://127.0.0.1:9/hook alert-on=slow slow-factor=2")
    w.seed([600.0] * 10 + [900.0] * 2)  # 12 runs of 10-15 minutes: p95 = 900 s, x 2

    async def main() -> None:
        w.sched.trigger("etl")
        slow = w.sched.records.slowness
        await w.until("the timer to be armed", lambda: slow.armed == 1)
        [timer] = slow._timers.values()
        assert 1790 < timer.when() - asyncio.get_running_loop().time() <= 1800
        w.stop.write_text("")
        await w.sched.wait_idle()
        assert timer.cancelled()

    asyncio.run(main())


def test_slow_annotations_are_checked() -> None:
    from cronplus.crontab.annotations import AnnotationError, convert

    assert convert("slow-factor", "2.5") == ("slow_factor", 2.5)
    assert convert("expected-duration", "1h30m") == ("expected_duration", 5400.0)
    for key, bad in (("slow-factor", "0.5"), ("expected-duration", "0"), ("expected-duration", "soon")):
        with pytest.raises(AnnotationError):
            convert(key, bad)


def test_expected_duration_without_alert_on_slow_marks_the_run_but_sends_nothing(tmp_path: Path) -> None:
    w = World(tmp_path, "alert=http://127.0.0.1:9/hook expected-duration=0.3")

    async def main() -> None:
        run = w.sched.trigger("etl")

        def marked() -> bool:
            row = w.history.get_run(run.run_id)
            return row is not None and row.slow_at is not None

        await w.until("the run to be marked slow", marked)
        assert w.history.get_run(run.run_id).status is RunStatus.RUNNING  # type: ignore[union-attr]
        w.stop.write_text("")
        await w.sched.wait_idle()

    asyncio.run(main())
    assert w.alert_rows() == []


def test_a_final_success_refreshes_the_learned_history_so_the_tenth_success_arms_the_next_run(tmp_path: Path) -> None:
    w = World(tmp_path, "alert=http://127.0.0.1:9/hook alert-on=slow")
    w.seed([0.1] * 9)  # read at the first start (9: nothing armed), then kept up to date from the runs' ends

    async def main() -> None:
        w.stop.write_text("")
        first = w.sched.trigger("etl")  # ends at once: the 10th success
        await w.sched.wait_idle()
        assert w.history.get_run(first.run_id).status is RunStatus.SUCCESS  # type: ignore[union-attr]
        w.stop.unlink()
        second = w.sched.trigger("etl")

        def marked() -> bool:
            row = w.history.get_run(second.run_id)
            return row is not None and row.slow_at is not None

        await w.until("the second run to be marked slow", marked)
        w.stop.write_text("")
        await w.sched.wait_idle()

    asyncio.run(main())
    [row] = w.alert_rows()
    assert row.payload["data"]["learned"].startswith("p95 of last 10 successful runs ")


@pytest.mark.parametrize("fmt", ["json", "slack", "discord", "teams", "ntfy"])
def test_every_format_renders_the_slow_alert_with_its_threshold(fmt: str) -> None:
    from cronplus.alerts import payloads

    data = {"event": "slow", "job": "etl", "run_id": 7, "attempt": 1, "status": "running", "host": "web1",
            "duration_s": 45.2, "threshold_s": 36.9, "learned": "p95 of last 50 successful runs 12.3s x 3",
            "message": "still running after 45.2s, past its threshold 36.9s (p95 of last 50 successful runs 12.3s x 3)",
            "output_tail": "", "exit_code": None, "reason": None}
    body = payloads.render(fmt, {"id": "msg_1", **payloads.envelope(data, timestamp=T0)}).body.decode()
    assert "past its threshold 36.9s" in body and "p95 of last 50 successful runs 12.3s x 3" in body
