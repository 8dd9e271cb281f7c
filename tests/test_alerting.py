"""Alerting: which events a run's end sends, with incident semantics, end to end through the
outbox, a real DeliveryWorker and a real HTTP receiver. Runs are simulated by writing history
rows through History and calling the hooks the scheduler calls; time is a FakeClock."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from cronplus.alerts.alerting import Alerting
from cronplus.alerts.delivery import DeliveryWorker, Policy
from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_schedule
from cronplus.errors import CrontabError, Diagnostic, SourceLoc
from cronplus.model import JobOptions, JobSpec, RunRecord
from cronplus.status import AlertEvent, RunStatus, Trigger
from cronplus.store import outbox
from cronplus.store.history import History
from tests.http_receiver import Receiver

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
FAST = Policy(backoff_base=0.05, backoff_max=0.2, connect_timeout=0.5, read_timeout=1.0)


class Sim:
    """Writes runs the way the scheduler does and calls the alerting hooks after each write."""

    def __init__(self, tmp_path: Path, alerting: Alerting, history: History, clock: FakeClock) -> None:
        self.tmp, self.alerting, self.history, self.clock = tmp_path, alerting, history, clock

    def attempt(self, job: JobSpec, attempt: int, status: RunStatus, *, final: bool, tick: float,
                output: str = "", exit_code: int | None = 1) -> RunRecord:
        log_path = self.tmp / f"{job.name}-{tick}-{attempt}.log"
        log_path.write_text(output)
        run_id = self.history.start_run(job=job.name, attempt=attempt, trigger=Trigger.SCHEDULE, scheduled_at=tick,
                                        tz=None, started_at=self.clock.time(), log_path=str(log_path), owner="test")
        start = self.history.get_run(run_id)
        self.alerting.on_start(job, start)
        self.clock.advance(2)
        record = self.history.finish_run(run_id, status=status, ended_at=self.clock.time(), exit_code=exit_code,
                                         reason=f"exit {exit_code}" if exit_code else str(status), final=final)
        self.alerting.on_end(job, record, will_retry=not final)
        return record

    def run(self, job: JobSpec, statuses: list[RunStatus], output: str = "") -> RunRecord:
        """One tick: attempts with these statuses (the last one final)."""
        tick = self.clock.time()
        record = None
        for i, status in enumerate(statuses, start=1):
            code = 0 if status is RunStatus.SUCCESS else (None if status is RunStatus.TIMEOUT else 1)
            record = self.attempt(job, i, status, final=i == len(statuses), tick=tick, output=output, exit_code=code)
        assert record is not None
        return record


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def sim(tmp_path: Path, history: History, clock: FakeClock) -> Sim:
    return Sim(tmp_path, Alerting(history, clock=clock, hostname="testhost"), history, clock)


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def make_job(name: str = "backup", **options: object) -> JobSpec:
    return JobSpec(loc=SourceLoc(path="crontab", line=3), name=name, schedule=parse_schedule("* * * * *"),
                   command="/opt/backup.sh", stdin=None, env=(), options=replace(JobOptions(), **options))


def rows(history: History) -> list[outbox.OutboxRow]:
    return outbox.list_rows(history.conn, limit=None)


def events(history: History, kind: str = "alert") -> list[str]:
    return [r.event for r in rows(history) if r.kind == kind]


def deliver_all(history: History, db: Path, rx: Receiver) -> list:
    n = len([r for r in rows(history) if r.status == "pending"])
    worker = DeliveryWorker(db, policy=FAST, idle_poll_s=0.1, env={})
    worker.start()
    try:
        got = rx.wait_for(n, ok_only=True)
    finally:
        worker.stop()
    return got


def test_a_failing_job_with_retries_sends_exactly_one_failure_alert_with_the_right_fields(sim, history, rx, tmp_path) -> None:
    job = make_job(alert=rx.url(), retries=2)
    output = "".join(f"line {i}\n" for i in range(100))
    record = sim.run(job, [RunStatus.FAILED] * 3, output=output)
    [request] = deliver_all(history, history.db_path, rx)
    body = request.json()
    assert body["type"] == "cronplus.job.failure"
    data = body["data"]
    assert data["event"] == "failure" and data["job"] == "backup" and data["host"] == "testhost"
    assert data["run_id"] == record.run_id and data["attempt"] == 3 and data["status"] == "failed"
    assert data["exit_code"] == 1 and data["reason"] == "exit 1"
    assert data["scheduled_at"] == "2026-01-01T00:00:00+00:00"
    assert data["started_at"] == "2026-01-01T00:00:04+00:00" and data["ended_at"] == "2026-01-01T00:00:06+00:00"
    assert data["duration_s"] == 2.0
    assert data["output_tail"].splitlines() == [f"line {i}" for i in range(80, 100)]
    assert data["output_truncated"] is True
    assert data["incident"]["failed_runs"] == 1 and data["incident"]["reminder"] is False
    assert data["cronplus_version"]
    time.sleep(0.2)
    assert len(rx.requests) == 1


def test_a_minutely_job_that_keeps_failing_sends_one_alert_then_reminders_at_most_every_alert_remind(sim, history) -> None:
    job = make_job(alert="env:HOOK", alert_remind=3600.0)
    for _ in range(130):  # 130 minutes of failures
        sim.run(job, [RunStatus.FAILED])
        sim.clock.advance(58)
    alerts = [r for r in rows(history) if r.kind == "alert"]
    assert [r.event for r in alerts] == ["failure"] * 3  # the first, then at 60 min and 120 min
    reminders = [r.payload["data"]["incident"] for r in alerts]
    assert [i["reminder"] for i in reminders] == [False, True, True]
    assert reminders[1]["failed_runs"] == 61 and reminders[2]["failed_runs"] == 121
    assert all(r.target == "env:HOOK" for r in alerts)


def test_recovery_arrives_once_with_the_number_of_failed_runs_and_the_incident_duration(sim, history, rx, tmp_path) -> None:
    job = make_job(alert=rx.url())
    first = None
    for _ in range(5):
        record = sim.run(job, [RunStatus.FAILED])
        first = first or record
        sim.clock.advance(58)
    recovered = sim.run(job, [RunStatus.SUCCESS], output="all good\n")
    sim.run(job, [RunStatus.SUCCESS])  # a second success sends nothing
    got = deliver_all(history, history.db_path, rx)
    assert [r.json()["data"]["event"] for r in got] == ["failure", "recovery"]
    recovery = got[1].json()
    assert recovery["type"] == "cronplus.job.recovery"
    incident = recovery["data"]["incident"]
    assert incident["failed_runs"] == 5 and incident["first_run_id"] == first.run_id
    assert incident["duration_s"] == recovered.ended_at.timestamp() - T0 == 5 * 60 + 2
    assert recovery["data"]["output_tail"] == "all good"


def test_a_timeout_opens_the_incident_with_event_timeout_and_a_later_failure_stays_quiet(sim, history) -> None:
    job = make_job(alert="http://127.0.0.1:9/h")
    sim.run(job, [RunStatus.TIMEOUT])
    sim.run(job, [RunStatus.FAILED])
    sim.run(job, [RunStatus.SUCCESS])
    alerts = [r for r in rows(history) if r.kind == "alert"]
    assert [r.event for r in alerts] == ["timeout", "recovery"]
    assert alerts[0].payload["type"] == "cronplus.job.timeout" and alerts[0].payload["data"]["status"] == "timeout"
    assert alerts[1].payload["data"]["incident"]["failed_runs"] == 2


def test_a_timeout_is_sent_as_failure_when_only_failure_is_enabled(sim, history) -> None:
    job = make_job(alert="http://127.0.0.1:9/h", alert_on=frozenset({AlertEvent.FAILURE}))
    sim.run(job, [RunStatus.TIMEOUT])
    sim.run(job, [RunStatus.SUCCESS])
    [alert] = [r for r in rows(history) if r.kind == "alert"]
    assert alert.event == "failure" and alert.payload["data"]["status"] == "timeout"


def test_retry_and_success_events_are_sent_only_when_enabled(sim, history) -> None:
    quiet = make_job("quiet", alert="http://127.0.0.1:9/h")
    sim.run(quiet, [RunStatus.FAILED, RunStatus.SUCCESS])
    assert events(history) == []
    chatty = make_job("chatty", alert="http://127.0.0.1:9/h",
                      alert_on=frozenset({AlertEvent.RETRY, AlertEvent.SUCCESS, AlertEvent.FAILURE}))
    sim.run(chatty, [RunStatus.FAILED, RunStatus.FAILED, RunStatus.SUCCESS])
    assert events(history) == ["retry", "retry", "success"]


def test_missed_and_upstream_failed_are_sent_once_until_the_job_succeeds_again(sim, history) -> None:
    job = make_job(alert="http://127.0.0.1:9/h", alert_remind=3600.0)
    for _ in range(3):
        record = history.record_not_run(job=job.name, status=RunStatus.UPSTREAM_FAILED, trigger=Trigger.SCHEDULE,
                                        scheduled_at=sim.clock.time(), tz=None, at=sim.clock.time(),
                                        reason="upstream train failed")
        sim.alerting.on_not_run(job, record)
        sim.clock.advance(60)
    missed = history.record_not_run(job=job.name, status=RunStatus.MISSED, trigger=Trigger.SCHEDULE,
                                    scheduled_at=sim.clock.time(), tz=None, at=sim.clock.time(), reason="down")
    sim.alerting.on_not_run(job, missed)
    sim.run(job, [RunStatus.SUCCESS])
    record = history.record_not_run(job=job.name, status=RunStatus.UPSTREAM_FAILED, trigger=Trigger.SCHEDULE,
                                    scheduled_at=sim.clock.time(), tz=None, at=sim.clock.time(), reason="again")
    sim.alerting.on_not_run(job, record)
    assert events(history) == ["upstream_failed", "missed", "upstream_failed"]
    first = rows(history)[0].payload["data"]
    assert first["reason"] == "upstream train failed" and first["started_at"] is None


def test_a_config_error_alert_goes_to_the_defaults_target_once_per_distinct_error(history, clock) -> None:
    alerting = Alerting(history, clock=clock, hostname="h")
    defaults = replace(JobOptions(), alert="env:OPS", alert_format="slack")
    err = CrontabError([Diagnostic(loc=SourceLoc(path="/etc/cronplus/crontab", line=4, col=1), message="bad minute")])
    alerting.on_config_error(defaults, err)
    alerting.on_config_error(defaults, err)  # the same file saved again: no second alert
    other = CrontabError([Diagnostic(loc=SourceLoc(path="/etc/cronplus/crontab", line=5, col=3), message="bad hour")])
    alerting.on_config_error(defaults, other)
    alerting.on_config_error(JobOptions(), other)  # no target in the defaults: nothing
    alerts = rows(history)
    assert [r.event for r in alerts] == ["config_error", "config_error"]
    assert alerts[0].format == "slack" and alerts[0].target == "env:OPS" and alerts[0].job is None
    data = alerts[0].payload["data"]
    assert data["errors"] == ["/etc/cronplus/crontab:4:1: bad minute"] and data["path"] == "/etc/cronplus/crontab"
    assert alerts[0].payload["type"] == "cronplus.config_error"


def test_pings_follow_healthchecks_start_success_and_fail_with_the_output_tail(sim, history, rx, tmp_path) -> None:
    job = make_job(ping=rx.url("/ping/abc-123"), retries=1)
    sim.run(job, [RunStatus.FAILED, RunStatus.SUCCESS], output="did things\n")
    sim.run(job, [RunStatus.FAILED, RunStatus.TIMEOUT], output="oops\n")
    got = deliver_all(history, history.db_path, rx)
    paths = [r.path.partition("?")[0] for r in got]
    assert paths == ["/ping/abc-123/start", "/ping/abc-123/start", "/ping/abc-123",
                     "/ping/abc-123/start", "/ping/abc-123/start", "/ping/abc-123/fail"]
    assert got[2].body == b"did things" and got[5].body == b"oops"
    # healthchecks run ids: one canonical UUID per run, on its starts and its end
    rids = [parse_qs(r.path.partition("?")[2])["rid"][0] for r in got]
    assert rids[0] == rids[1] == rids[2] != rids[3] == rids[4] == rids[5]
    assert all(str(uuid.UUID(rid)) == rid for rid in rids)
    assert events(history) == []  # no alert target: pings only


def test_an_alerting_problem_never_raises_into_the_scheduler(sim, history, caplog) -> None:
    job = make_job(alert="http://127.0.0.1:9/h", ping="http://127.0.0.1:9/p")
    record = sim.run(job, [RunStatus.SUCCESS])
    history.conn.execute("DROP TABLE outbox")
    caplog.set_level(logging.ERROR)
    sim.alerting.on_start(job, record)
    sim.alerting.on_end(job, replace(record, status=RunStatus.FAILED), will_retry=False)
    sim.alerting.on_not_run(job, replace(record, status=RunStatus.MISSED))
    assert caplog.text.count("alerting: on_") == 3


def test_enqueueing_is_cheap_enough_for_the_loop_thread(sim, history) -> None:
    job = make_job(alert="http://127.0.0.1:9/h", ping="http://127.0.0.1:9/p", alert_remind=0.0)
    record = sim.run(job, [RunStatus.FAILED])
    started = time.perf_counter()
    for _ in range(100):
        sim.alerting.on_end(job, record, will_retry=False)
    per_call = (time.perf_counter() - started) / 100
    assert per_call < 0.02, per_call


def test_an_alert_decision_is_all_or_nothing_so_a_half_written_one_cannot_repeat_an_incident(sim, history) -> None:
    """The incident state (kv) and the outbox row are one transaction: when the state cannot be
    written, the alert is not queued either, so the next failure is not a second 'first' alert."""
    job = make_job(alert="http://127.0.0.1:9/h")
    history.conn.execute("CREATE TEMP TRIGGER no_kv BEFORE INSERT ON main.kv BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    sim.run(job, [RunStatus.FAILED])
    assert events(history) == []
    history.conn.execute("DROP TRIGGER no_kv")
    sim.run(job, [RunStatus.FAILED])
    sim.run(job, [RunStatus.FAILED])
    assert events(history) == ["failure"]


def test_inside_the_schedulers_transaction_a_failing_alert_keeps_the_run_and_wakes_the_worker_after_commit(
        sim, history, tmp_path) -> None:
    """The scheduler writes a run's end and calls on_end in one transaction: an alerting error
    undoes only its own part, and the delivery worker is woken once the rows are visible to it."""
    import sqlite3

    seen: list[int] = []

    def wake() -> None:  # what the delivery worker's own connection sees when it is woken
        other = sqlite3.connect(history.db_path)
        try:
            seen.append(other.execute("SELECT count(*) FROM outbox").fetchone()[0])
        finally:
            other.close()

    sim.alerting._wake = wake
    job = make_job(alert="http://127.0.0.1:9/h")
    run_id = history.start_run(job="backup", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None,
                               started_at=T0, log_path=None, owner="test")
    with history.transaction():
        record = history.finish_run(run_id, status=RunStatus.FAILED, ended_at=T0 + 1, exit_code=1, reason="exit 1",
                                    final=True)
        sim.alerting.on_end(job, record, will_retry=False)
    assert seen == [1]

    history.conn.execute("CREATE TEMP TRIGGER no_outbox BEFORE INSERT ON main.outbox BEGIN SELECT RAISE(ABORT, 'full'); END")
    run_id = history.start_run(job="backup", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0 + 60, tz=None,
                               started_at=T0 + 60, log_path=None, owner="test")
    with history.transaction():
        record = history.finish_run(run_id, status=RunStatus.SUCCESS, ended_at=T0 + 61, exit_code=0, reason=None,
                                    final=True)
        sim.alerting.on_end(job, record, will_retry=False)  # the recovery alert fails to queue
    assert history.get_run(run_id).status is RunStatus.SUCCESS  # the run's record is kept
    assert history.kv_get("alert.incident.backup") is not None  # the incident is still open: recovery not lost
