"""Pure supervisor decisions: outcome of an attempt, retry delays, overlap verdicts and which
ticks are due after the wall clock moved. No I/O, no clock: values in, values out.

Decisions documented here (the scheduler follows them):

* A retry is a new attempt row with the same `scheduled_at`, `attempt + 1` and trigger `retry`
  (so `cronplus log` shows why the row exists; the original trigger is on attempt 1).
* Retry delay before attempt n+1 (n = the attempt that failed) is
  `retry_delay * backoff ** (n - 1)`, capped at `max_retry_delay`.
* Only `failed` and `timeout` are retried (and `interrupted` when a worker was lost under a
  `queue=` attempt: outcome's `interrupted`); `skipped` (skip-exit) never is, nor a run cancelled by
  `overlap=replace` or by shutdown.
* Clock movement follows cron (cron.c, "time has jumped"): the supervisor normally wakes exactly
  at a tick. If wall time moved forward by less than `BIG_JUMP_S` since the last evaluation,
  every job with ticks in the skipped span runs once (coalesced to its latest tick). A bigger
  forward jump (or a suspend) is treated like downtime: those ticks are recorded `missed`.
  Backward jumps never re-run a tick already done: the next tick is always after the last done.
"""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from cronplus.model import JobOptions
from cronplus.status import Overlap, RunStatus

BIG_JUMP_S = 3 * 3600.0  # cron.c: jumps of 3 hours or more are not "caught up"
MISSED_RECORD_CAP = 100  # at most this many `missed` rows per job per downtime
MISSED_COUNT_CAP = 1_000  # count missed ticks one by one up to this; beyond, say "1000+" (cheap restarts)


class AttemptLike(Protocol):
    """The fields of runner.AttemptResult that decide a run's status."""

    @property
    def exit_code(self) -> int | None: ...
    @property
    def signal(self) -> int | None: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def cancelled(self) -> bool: ...
    @property
    def error(self) -> str | None: ...
    @property
    def killed(self) -> bool: ...
    @property
    def limit_reason(self) -> str | None: ...  # a resource limit's kill (limits.py)
    @property
    def interrupted(self) -> bool: ...  # its worker was lost under it (engine/celeryexec.py)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: RunStatus
    reason: str | None
    retryable: bool


# Shell statuses that say why a command never ran (POSIX "Command Search and Execution": 127
# when the command is not found, 126 when it is found but cannot be executed).
EXIT_MEANINGS = {126: "not executable", 127: "command not found"}


def outcome(result: AttemptLike, options: JobOptions, *, cancel_reason: str | None = None,
            cancel_status: RunStatus = RunStatus.FAILED) -> Outcome:
    """Map one attempt's result to a run status and a reason for history."""
    if result.cancelled:
        return Outcome(cancel_status, cancel_reason or "cancelled", False)
    if result.interrupted:  # a worker killed mid-run: its retries follow, as for a failure
        return Outcome(RunStatus.INTERRUPTED, result.error or "interrupted", True)
    if result.error:
        return Outcome(RunStatus.FAILED, result.error, True)
    if result.timed_out:
        ended = f"SIGKILL after {_secs(options.kill_grace)} grace" if result.killed else "ended on SIGTERM"
        return Outcome(RunStatus.TIMEOUT, f"timeout after {_secs(options.timeout)}: {ended}", True)
    if result.limit_reason and (result.signal or result.exit_code):  # the kernel killed it for a limit
        how = f" (killed by signal {result.signal}{_signame(result.signal)})" if result.signal else f" (exit {result.exit_code})"
        return Outcome(RunStatus.FAILED, result.limit_reason + how, True)
    if result.signal:  # runner reports exit_code 128+n for a shell killed by signal n
        return Outcome(RunStatus.FAILED, f"killed by signal {result.signal}{_signame(result.signal)}", True)
    if result.exit_code is None:
        return Outcome(RunStatus.FAILED, "no exit status", True)
    if result.exit_code == 0:
        return Outcome(RunStatus.SUCCESS, None, False)
    if result.exit_code == options.skip_exit:
        return Outcome(RunStatus.SKIPPED, f"exit {result.exit_code} (skip-exit)", False)
    meaning = EXIT_MEANINGS.get(result.exit_code)
    return Outcome(RunStatus.FAILED, f"exit {result.exit_code}" + (f" ({meaning})" if meaning else ""), True)


def _signame(signum: int) -> str:
    try:
        return f" ({signal.Signals(signum).name})"
    except ValueError:
        return ""


def _secs(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}s"


def will_retry(out: Outcome, attempt: int, options: JobOptions) -> bool:
    """True when a further attempt follows this one (attempt is 1-based)."""
    return (out.retryable and out.status in (RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.INTERRUPTED)
            and attempt <= options.retries)


def retry_delay(attempt: int, options: JobOptions) -> float:
    """Delay before the attempt after `attempt`: delay × backoff^(attempt-1), capped."""
    try:
        delay = options.retry_delay * options.backoff ** (attempt - 1)
    except OverflowError:
        delay = options.max_retry_delay
    return max(0.0, min(delay, options.max_retry_delay))


class OverlapAction(StrEnum):
    START = "start"  # nothing running (or overlap=allow): start now
    SKIP = "skip"  # record the new tick as skipped
    QUEUE = "queue"  # remember the tick; start it when the running one ends
    REPLACE = "replace"  # cancel the running one, start the new one


def overlap_action(policy: Overlap, *, active: bool, queued: bool) -> OverlapAction:
    """What to do with a new tick of a job, given whether a run of it is active or queued."""
    if not active or policy is Overlap.ALLOW:
        return OverlapAction.START
    if policy is Overlap.REPLACE:
        return OverlapAction.REPLACE
    if policy is Overlap.QUEUE and not queued:
        return OverlapAction.QUEUE
    return OverlapAction.SKIP


@dataclass(frozen=True, slots=True)
class DueTicks:
    """The ticks of one job that fell in (since, now]."""

    run: datetime | None  # the tick to run now (coalesced), or None
    missed: tuple[datetime, ...]  # ticks to record as missed (the latest MISSED_RECORD_CAP)
    missed_total: int  # how many missed in all (>= len(missed); capped at MISSED_COUNT_CAP)
    next_tick: datetime | None  # the first tick after now (and after the last tick done)


NextFire = Callable[[datetime], datetime | None]


def due_ticks(next_fire: NextFire, *, next_tick: datetime | None, now: float, downtime: bool) -> DueTicks:
    """Collect the ticks <= now starting from `next_tick` (the first tick not yet done).

    `next_fire(t)` gives the first tick strictly after t. With `downtime` (a big jump, or the
    supervisor was not running) every due tick is missed; otherwise they coalesce into one run at
    the latest tick, as cron runs a job once after a small forward jump.
    """
    now_dt = datetime.fromtimestamp(now, UTC)
    if next_tick is None or next_tick > now_dt:
        return DueTicks(None, (), 0, next_tick)
    latest: deque[datetime] = deque(maxlen=MISSED_RECORD_CAP)
    total = 0
    tick: datetime | None = next_tick
    while tick is not None and tick <= now_dt:
        latest.append(tick)
        total += 1
        if total >= MISSED_COUNT_CAP:  # a long gap: only the latest ticks matter, find them from now back
            latest = _latest_ticks(next_fire, since=tick, now=now_dt)
            tick = next_fire(now_dt)
            break
        tick = next_fire(tick)
    if downtime:
        return DueTicks(None, tuple(latest), total, tick)
    return DueTicks(latest[-1], (), 0, tick)


def _latest_ticks(next_fire: NextFire, *, since: datetime, now: datetime) -> deque[datetime]:
    """The latest MISSED_RECORD_CAP ticks in (since, now], widening a window back from now so
    the work stays proportional to the ticks kept, not to the length of the gap."""
    window = timedelta(hours=1)
    while True:
        start = max(since, now - window)
        found: deque[datetime] = deque(maxlen=MISSED_RECORD_CAP)
        count = 0
        tick = next_fire(start)
        while tick is not None and tick <= now:
            found.append(tick)
            count += 1
            tick = next_fire(tick)
        if count >= MISSED_RECORD_CAP or start == since:
            return found
        window *= 2


def missed_reason(total: int, recorded: int) -> str:
    if total > recorded:
        capped = "+" if total >= MISSED_COUNT_CAP else ""
        return f"supervisor not running ({total}{capped} ticks missed, only the last {recorded} recorded)"
    return "supervisor not running"


def approach(delay: float) -> float:
    """How long to sleep towards a due instant `delay` s away. Linux lets epoll_wait (asyncio's
    sleep) overshoot by 0.1% of its timeout, up to 100 ms (select_estimate_accuracy): a 60 s
    sleep may end 60 ms late. So stop short and close in: 0.5 s before, then 50 ms before, then
    the rest (overshoot <= 50 us). Two extra wake-ups per tick; none while idle far ahead."""
    if delay > 0.6:
        return delay - 0.5
    if delay > 0.06:
        return delay - 0.05
    return delay
