"""A backfill's runs are outside the job's live alert state (README "Backfill"): no alert, no
ping, no cron mail, and the job's incident (kv `alert.incident.<job>`) is neither opened, counted
nor closed by them, retries included; the scheduled runs around them alert as before. Real parts:
the Scheduler on a FakeClock with its Alerting over a real History, real job processes, the
delivery worker sending to a real HTTP receiver (alert= and ping=) and a real SMTP server (MAILTO);
and `cronplus backfill` / `cronplus log` in-process."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from cronplus.alerts.alerting import Alerting
from cronplus.alerts.delivery import DeliveryWorker, Policy
from cronplus.crontab.parser import parse_crontab
from cronplus.engine.backfill import Backfill, plan
from cronplus.engine.scheduler import Scheduler
from tests import incli
from tests.http_receiver import Receiver
from tests.test_mail_smtp import SmtpServer
from tests.test_scheduler import World, ts
from tests.waiting import wait_until

NOW = ts("2026-06-01T12:00:30")
JAN0, JAN2 = ts("2026-01-01T00:00:00"), ts("2026-01-01T02:00:00")  # three hourly ticks to backfill
FAST = Policy(backoff_base=0.05, backoff_max=0.2, max_age_s=3600, mail_timeout=5.0)


class AlertWorld(World):
    """tests/test_scheduler.World with the supervisor's Alerting subscribed, on the same clock."""

    def new_scheduler(self) -> Scheduler:
        crontab = parse_crontab(self.text, path=str(self.tmp_path / "crontab"), system=False)
        return Scheduler(crontab, history=self.history, alerting=Alerting(self.history, clock=self.clock),
                         log_dir=self.tmp_path / "logs", owner="test", clock=self.clock)

    def incident(self, job: str = "a") -> dict[str, Any] | None:
        raw = self.history.kv_get(f"alert.incident.{job}")
        state: dict[str, Any] = json.loads(raw) if raw else {}
        return state.get("incident")

    def outbox(self) -> list[tuple[str, str, int]]:
        """(kind, event, run_id) of every outbox row, oldest first."""
        return [tuple(r) for r in self.history.conn.execute("SELECT kind, event, run_id FROM outbox ORDER BY id")]

    def deliver(self, smtp: SmtpServer) -> None:
        """Send every pending outbox row (a real worker, to the receivers), then stop the worker."""
        worker = DeliveryWorker(self.tmp_path / "history.db", policy=FAST, idle_poll_s=0.05, env={},
                                mailer=smtp.url)
        worker.start()
        try:
            wait_until(lambda: not self.history.conn.execute(
                "SELECT 1 FROM outbox WHERE status = 'pending'").fetchone(), what="the outbox to drain")
        finally:
            worker.stop()

    async def scheduled(self, when: str) -> None:
        """The job's scheduled tick at `when` runs to its final row (its retries' too)."""
        at = ts(when)
        self.clock.jump(at - self.clock.time())
        self.sched.wake()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20.0
        while not self.history.conn.execute(
                "SELECT 1 FROM runs WHERE scheduled_at = ? AND final = 1 AND trigger IN ('schedule', 'retry')",
                (at,)).fetchone():
            assert loop.time() < deadline, f"the tick {when} never ended: {self.rows()}"
            await asyncio.sleep(0.02)

    async def backfill(self, start: float, end: float) -> dict[str, Any]:
        bf = Backfill(self.sched, plan(self.sched.jobs["a"], self.history, start, end, rerun=False))
        return [e async for e in bf.events()][-1]


@asynccontextmanager
async def served(w: World) -> AsyncIterator[None]:
    serve = asyncio.get_running_loop().create_task(w.sched.serve())
    try:
        yield
    finally:
        w.sched.stopping = True
        w.sched.wake()
        await serve


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.close()


def crontab(rx: Receiver, tmp_path: Path, *, january: str, options: str = "") -> str:
    """Job `a`, hourly: its January ticks (the backfill's) do `january`; its June ticks (the
    schedule's) fail until the file `ok` exists. Alerts, pings and cron mail all go to receivers."""
    return (f"MAILTO=ops@example.com\n"
            f"# cronplus: name=a alert={rx.url('/hook')} ping={rx.url('/ping')} alert-on=failure,timeout,"
            f"recovery,retry,success,upstream_failed {options}\n"
            f"0 * * * * case $CRONPLUS_SCHEDULED_TIME in 2026-01-*) {january};; esac;"
            f" test -e {tmp_path}/ok || {{ echo broken; exit 3; }}; echo fine\n")


def alerts(rx: Receiver) -> list[tuple[str, str]]:
    """(event, trigger) of every alert the receiver got."""
    return [(r.json()["data"]["event"], r.json()["data"]["trigger"]) for r in rx.requests if r.path == "/hook"]


def pings(rx: Receiver) -> list[str]:
    return [r.path.split("?")[0] for r in rx.requests if r.path.startswith("/ping")]


def test_a_successful_backfill_leaves_the_open_incident_open_and_the_next_scheduled_success_recovers_it(
        tmp_path: Path, rx: Receiver, smtp: SmtpServer) -> None:
    async def main() -> None:
        w = AlertWorld(tmp_path, crontab(rx, tmp_path, january="echo old; exit 0"), NOW)
        async with served(w):
            await w.scheduled("2026-06-01T13:00:00")  # the live schedule fails: an incident opens
            assert w.incident() is not None
            done = await w.backfill(JAN0, JAN2)
            assert (done["finished"], done["failed"]) == (3, 0)
            incident = w.incident()
            assert incident is not None and incident["failed_runs"] == 1  # still open, untouched
            await asyncio.to_thread(w.deliver, smtp)
            assert alerts(rx) == [("failure", "schedule")]  # no recovery, no success of a backfill run
            assert pings(rx) == ["/ping/start", "/ping/fail"]  # the monitor still says: failing
            assert len(smtp.handler.received) == 1  # the scheduled failure's mail only
            (tmp_path / "ok").touch()
            await w.scheduled("2026-06-01T14:00:00")
            assert w.incident() is None
        await asyncio.to_thread(w.deliver, smtp)
        assert alerts(rx) == [("failure", "schedule"), ("recovery", "schedule"), ("success", "schedule")]
        recovery = [r.json()["data"] for r in rx.requests if r.path == "/hook"][1]
        assert recovery["incident"]["failed_runs"] == 1
        assert pings(rx) == ["/ping/start", "/ping/fail", "/ping/start", "/ping"]
        assert len(smtp.handler.received) == 2
        assert [t for _, _, _, t, *_ in w.rows()] == ["schedule", "backfill", "backfill", "backfill", "schedule"]

    asyncio.run(main())


def test_a_failing_backfill_with_retries_sends_nothing_and_opens_no_incident_the_next_scheduled_failure_does(
        tmp_path: Path, rx: Receiver, smtp: SmtpServer) -> None:
    async def main() -> None:
        w = AlertWorld(tmp_path, crontab(rx, tmp_path, january="echo old >&2; exit 4",
                                         options="retries=1 retry-delay=0s"), NOW)
        async with served(w):
            done = await w.backfill(JAN0, JAN2)
            assert (done["finished"], done["failed"]) == (3, 3)
            assert [(a, s, t) for _, a, s, t, *_ in w.rows()] == [
                (1, "failed", "backfill"), (2, "failed", "retry")] * 3  # each tick tried twice
            assert w.incident() is None
            assert w.outbox() == []  # no alert, no retry alert, no ping, no mail
            await w.scheduled("2026-06-01T13:00:00")  # the schedule fails twice (with its retry)
        incident = w.incident()
        assert incident is not None and (incident["failed_runs"], incident["first_run_id"]) == (1, 8)
        assert incident["since"] == ts("2026-06-01T13:00:00")  # the live tick's, not January's
        await asyncio.to_thread(w.deliver, smtp)
        assert alerts(rx) == [("retry", "schedule"), ("failure", "retry")]  # the live run's, first to say it
        assert pings(rx) == ["/ping/start", "/ping/start", "/ping/fail"]
        assert len(smtp.handler.received) == 1

    asyncio.run(main())


def test_a_backfill_without_a_supervisor_records_its_runs_for_log_and_sends_no_alert_or_ping(
        tmp_path: Path, rx: Receiver) -> None:
    (tmp_path / "crontab").write_text(
        f"# cronplus: name=a alert={rx.url('/hook')} ping={rx.url('/ping')} alert-on=failure,recovery,success\n"
        "0 * * * * case $CRONPLUS_SCHEDULED_TIME in *T01:*) exit 1;; esac; echo tick $CRONPLUS_SCHEDULED_TIME\n")
    env = incli.base_env(HOME=str(tmp_path))
    args = ["--crontab", str(tmp_path / "crontab"), "--state-dir", str(tmp_path / "state")]
    out = incli.run([*args, "backfill", "a", "--from", "2026-01-01T00:00Z", "--to", "2026-01-01T02:00Z"], env=env)
    assert out.returncode == 1, out.stderr  # a tick failed: the operator is told here
    assert "a: run 2 failed, exit 1 in " in out.stdout
    log = incli.run([*args, "log", "a"], env=env)
    assert log.returncode == 0, log.stderr
    assert log.stdout.count("backfill") == 3 and "failed" in log.stdout
    conn = sqlite3.connect(tmp_path / "state" / "history.db")
    try:
        assert [tuple(r) for r in conn.execute("SELECT status, trigger FROM runs ORDER BY run_id")] == [
            ("success", "backfill"), ("failed", "backfill"), ("success", "backfill")]
        assert conn.execute("SELECT kind, event FROM outbox").fetchall() == []
        assert conn.execute("SELECT value FROM kv WHERE key = 'alert.incident.a'").fetchall() == []
    finally:
        conn.close()
    assert rx.requests == []  # the command's delivery worker had nothing to send


def test_a_slow_backfill_run_is_marked_and_counted_for_metrics_but_sends_no_slow_alert(
        tmp_path: Path, rx: Receiver) -> None:
    from cronplus.service.stats import RunStats

    async def main() -> None:
        w = AlertWorld(tmp_path, f"# cronplus: name=a alert={rx.url('/hook')} ping={rx.url('/ping')}"
                                 " alert-on=slow,failure expected-duration=0.2s\n0 * * * * sleep 2\n", NOW)
        stats = RunStats()
        stats.subscribe(w.sched.bus)  # /metrics' counters hear a backfill's runs as before
        async with served(w):
            done = await w.backfill(JAN0, JAN0)
            assert (done["finished"], done["failed"]) == (1, 0)
        assert [tuple(r) for r in w.history.conn.execute("SELECT slow_at IS NOT NULL, trigger FROM runs")] == [
            (1, "backfill")]
        assert dict(stats.slow_total()) == {"a": 1} and dict(stats.runs_total()) == {("a", "success"): 1}
        assert w.outbox() == []

    asyncio.run(main())


def test_a_backfill_tick_whose_upstream_failed_sends_no_upstream_failed_alert_for_the_downstream_job(
        tmp_path: Path, rx: Receiver) -> None:
    async def main() -> None:
        w = AlertWorld(tmp_path, f"# cronplus-defaults: alert={rx.url('/hook')}\n"
                                 "# cronplus: name=a\n0 * * * * exit 1\n"
                                 "# cronplus: name=b after=a\n0 * * * * true\n", NOW)
        async with served(w):
            await w.backfill(JAN0, JAN0)
        assert [(j, s, t) for j, _, s, t, *_ in w.rows()] == [("a", "failed", "backfill"),
                                                             ("b", "upstream_failed", "backfill")]
        assert w.outbox() == [] and w.incident("a") is None and w.history.kv_get("alert.incident.b") is None

    asyncio.run(main())


def test_a_backfill_run_whose_retry_died_with_its_supervisor_is_made_final_at_the_next_start_without_an_alert(
        tmp_path: Path, rx: Receiver) -> None:
    from cronplus.engine.recovery import recover
    from cronplus.status import RunStatus, Trigger

    w = AlertWorld(tmp_path, f"# cronplus: name=a retries=1 alert={rx.url('/hook')} ping={rx.url('/ping')}\n"
                             "0 * * * * exit 1\n", NOW)
    dead = "a supervisor that died"
    for trigger, tick in ((Trigger.BACKFILL, JAN0), (Trigger.SCHEDULE, ts("2026-06-01T12:00:00"))):
        run_id = w.history.start_run(job="a", attempt=1, trigger=trigger, scheduled_at=tick, tz=None,
                                     started_at=NOW - 10, log_path=None, owner=dead)
        w.history.finish_run(run_id, status=RunStatus.FAILED, ended_at=NOW - 5, exit_code=1, reason="exit 1",
                             final=False, owner=dead)  # its retry was pending
    recover(w.history, w.sched.crontab, w.sched.bus, owner="the new one", clock=w.clock)
    # the scheduled run's failure alerts once (recovery.py); the backfill's is the operator's alone
    assert w.outbox() == [("ping", "fail", 2), ("alert", "failure", 2)]
    incident = w.incident()
    assert incident is not None and (incident["failed_runs"], incident["first_run_id"]) == (1, 2)
