"""The supervisor's pure decisions: attempt outcome, retry delays, overlap, due ticks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronplus.engine import policy
from cronplus.model import JobOptions
from cronplus.status import Overlap, RunStatus


@dataclass
class Result:
    exit_code: int | None = 0
    signal: int | None = None
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = None
    killed: bool = False
    limit_reason: str | None = None
    interrupted: bool = False


OPTS = JobOptions(retries=2, retry_delay=10, backoff=2, max_retry_delay=25, timeout=30, skip_exit=99)


def test_exit_zero_is_success_and_not_retried() -> None:
    out = policy.outcome(Result(exit_code=0), OPTS)
    assert out.status is RunStatus.SUCCESS and out.reason is None
    assert not policy.will_retry(out, 1, OPTS)


def test_a_failing_exit_is_failed_with_its_code_and_retried_until_retries_are_used() -> None:
    out = policy.outcome(Result(exit_code=3), OPTS)
    assert (out.status, out.reason) == (RunStatus.FAILED, "exit 3")
    assert policy.will_retry(out, 1, OPTS) and policy.will_retry(out, 2, OPTS)
    assert not policy.will_retry(out, 3, OPTS)


def test_the_skip_exit_code_means_skipped_and_is_never_retried() -> None:
    out = policy.outcome(Result(exit_code=99), OPTS)
    assert out.status is RunStatus.SKIPPED and "skip-exit" in (out.reason or "")
    assert not policy.will_retry(out, 1, OPTS)


def test_a_timeout_is_timeout_and_retried() -> None:
    out = policy.outcome(Result(exit_code=None, signal=15, timed_out=True), OPTS)
    assert out.status is RunStatus.TIMEOUT and out.reason == "timeout after 30s: ended on SIGTERM"
    assert policy.will_retry(out, 1, OPTS)


def test_a_spawn_error_is_failed_with_the_error_text() -> None:
    out = policy.outcome(Result(exit_code=None, error="shell /bin/nope not found"), OPTS)
    assert (out.status, out.reason) == (RunStatus.FAILED, "shell /bin/nope not found")


def test_a_signal_death_names_the_signal() -> None:
    assert policy.outcome(Result(exit_code=None, signal=9), OPTS).reason == "killed by signal 9 (SIGKILL)"


def test_a_cancelled_attempt_takes_the_cancel_status_and_reason_and_is_not_retried() -> None:
    out = policy.outcome(Result(exit_code=None, signal=15, cancelled=True), OPTS,
                         cancel_reason="supervisor shutdown", cancel_status=RunStatus.INTERRUPTED)
    assert (out.status, out.reason) == (RunStatus.INTERRUPTED, "supervisor shutdown")
    assert not policy.will_retry(out, 1, OPTS)


def test_retry_delay_grows_by_backoff_and_is_capped() -> None:
    assert [policy.retry_delay(n, OPTS) for n in (1, 2, 3, 4)] == [10, 20, 25, 25]


def test_retry_delay_survives_a_huge_backoff_exponent() -> None:
    opts = JobOptions(retry_delay=1, backoff=1e6, max_retry_delay=60)
    assert policy.retry_delay(500, opts) == 60


def test_overlap_policies_decide_what_a_new_tick_does_while_a_run_is_active() -> None:
    act = policy.OverlapAction
    assert policy.overlap_action(Overlap.SKIP, active=False, queued=False) is act.START
    assert policy.overlap_action(Overlap.SKIP, active=True, queued=False) is act.SKIP
    assert policy.overlap_action(Overlap.QUEUE, active=True, queued=False) is act.QUEUE
    assert policy.overlap_action(Overlap.QUEUE, active=True, queued=True) is act.SKIP
    assert policy.overlap_action(Overlap.REPLACE, active=True, queued=False) is act.REPLACE
    assert policy.overlap_action(Overlap.ALLOW, active=True, queued=True) is act.START


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def every_minute(t: datetime) -> datetime:
    return (t.replace(second=0, microsecond=0) + timedelta(minutes=1))


def test_nothing_is_due_before_the_next_tick() -> None:
    due = policy.due_ticks(every_minute, next_tick=T0, now=T0.timestamp() - 0.001, downtime=False)
    assert due.run is None and due.next_tick == T0


def test_a_tick_is_due_exactly_at_its_instant() -> None:
    due = policy.due_ticks(every_minute, next_tick=T0, now=T0.timestamp(), downtime=False)
    assert due.run == T0 and due.next_tick == T0 + timedelta(minutes=1)


def test_ticks_skipped_by_a_small_jump_run_once_at_the_latest_tick() -> None:
    now = (T0 + timedelta(minutes=30, seconds=5)).timestamp()
    due = policy.due_ticks(every_minute, next_tick=T0, now=now, downtime=False)
    assert due.run == T0 + timedelta(minutes=30) and due.missed == ()
    assert due.next_tick == T0 + timedelta(minutes=31)


def test_downtime_records_missed_ticks_capped_to_the_latest_hundred() -> None:
    now = (T0 + timedelta(minutes=249, seconds=30)).timestamp()
    due = policy.due_ticks(every_minute, next_tick=T0, now=now, downtime=True)
    assert due.run is None and due.missed_total == 250 and len(due.missed) == 100
    assert due.missed[-1] == T0 + timedelta(minutes=249) and due.missed[0] == T0 + timedelta(minutes=150)
    assert "250 ticks missed" in policy.missed_reason(due.missed_total, len(due.missed))


def test_counting_missed_ticks_stops_at_a_cap_and_says_so() -> None:
    now = (T0 + timedelta(days=400)).timestamp()
    due = policy.due_ticks(every_minute, next_tick=T0, now=now, downtime=True)
    assert due.missed_total == policy.MISSED_COUNT_CAP
    assert due.next_tick is not None and due.next_tick.timestamp() > now
    assert len(due.missed) == 100 and due.missed[-1] == T0 + timedelta(days=400)  # the latest, not the first
    assert due.missed[0] == T0 + timedelta(days=400, minutes=-99)
    assert "+" in policy.missed_reason(due.missed_total, len(due.missed))


def test_long_sleeps_stop_short_of_the_tick_and_close_in() -> None:
    assert policy.approach(59.0) == 58.5  # epoll may overshoot a 58.5 s sleep by ~58 ms: still early
    assert abs(policy.approach(0.5) - 0.45) < 1e-9
    assert policy.approach(0.04) == 0.04
