"""Duration anomalies (`alert-on=slow`): an attempt still running past the duration its job's
history leads one to expect is marked (runs.slow_at) and published as `events.RunSlow`, whose
transactional subscriber (alerts/slowalert.py) enqueues the alert in the same write.

* The threshold (`threshold(...)`, pure): `expected-duration=` when given (no history needed),
  else the 95th percentile of the job's last HISTORY_RUNS successful runs' durations times
  `slow-factor=` (default 3), once it has at least MIN_RUNS of them; else none (no alert: a
  new job has no "normal" yet).
* `Slowness.started(job, record, spawned_at, *, backfill)` (records.py, when an attempt's start
  is recorded, in its task: not on the tick's launch path) arms one timer on the event loop
  (`loop.call_later`: no thread, no polling) for the time left until the threshold;
  `ended(job, record, final)` cancels it. A timer that fires writes `slow_at` and publishes
  RunSlow in one Store write (a full disk holds both), and logs a WARNING. A backfill's run is
  marked too, its RunSlow saying `backfill` (alerting sends nothing for it, /metrics counts it).
* Once per run: a run (job, tick) flagged in one attempt arms no timer for its retries; it is
  forgotten when the run is final.
* Cost: a job's last HISTORY_RUNS successful durations are read once per supervisor (one
  query, at its first watched start: ~1.5 ms with a 120,000-row history) and then kept up to
  date from its final successes (`ended`: no query); each start sorts at most 50 numbers. Jobs
  with neither `alert-on=slow` nor `expected-duration=` cost nothing.

May import: foundation, store, engine.events, engine.dagrun.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cronplus.engine import events
from cronplus.engine.dagrun import utc
from cronplus.status import AlertEvent, RunStatus
from cronplus.store.faults import DatabaseUnavailable

if TYPE_CHECKING:
    from datetime import datetime

    from cronplus.clock import Clock
    from cronplus.model import JobSpec, RunRecord
    from cronplus.store.api import HistoryStore, RunReader
    from cronplus.store.storeguard import Store

log = logging.getLogger("cronplus")

HISTORY_RUNS = 50  # the successful runs the threshold is learned from, newest first
MIN_RUNS = 10  # fewer successful runs than this: no learned threshold
PERCENTILE = 95


@dataclass(frozen=True, slots=True)
class Threshold:
    seconds: float
    learned: str  # how, for the alert: "p95 of last 50 successful runs 12.3s x 3"


@dataclass(frozen=True, slots=True)
class Learned:
    """What a job's history says: the p95 duration of its last `runs` successful runs."""

    p95: float
    runs: int


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the smallest value with at least pct% of the values at or below it)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def learn(durations: Sequence[float]) -> Learned | None:
    """The job's successful durations, newest first -> its p95, or None with fewer than MIN_RUNS."""
    recent = list(durations[:HISTORY_RUNS])
    if len(recent) < MIN_RUNS:
        return None
    return Learned(p95=percentile(recent, PERCENTILE), runs=len(recent))


def threshold(job: JobSpec, learned: Learned | None) -> Threshold | None:
    opts = job.options
    if opts.expected_duration is not None:
        return Threshold(opts.expected_duration, f"expected-duration={_secs(opts.expected_duration)}")
    if learned is None:
        return None
    return Threshold(learned.p95 * opts.slow_factor,
                     f"p95 of last {learned.runs} successful runs {_secs(learned.p95)} x {opts.slow_factor:g}")


def watched(job: JobSpec) -> bool:
    return AlertEvent.SLOW in job.options.alert_on or job.options.expected_duration is not None


def _secs(seconds: float) -> str:
    return f"{seconds:.3g}s" if seconds < 100 else f"{seconds:.0f}s"


def read_durations(reader: RunReader, job: str) -> list[float]:
    """The durations of the job's last HISTORY_RUNS successful attempts, newest first."""
    rows = reader.iter_query(jobs=[job], statuses=[str(RunStatus.SUCCESS)], limit=HISTORY_RUNS, newest_first=True)
    return [d for d in (r.duration_s for r in rows) if d is not None]


RunKey = tuple[str, "datetime | None"]  # (job, tick): a run across its attempts


class Slowness:
    """The scheduler's duration watch (records.Records owns one). Loop thread only."""

    def __init__(self, store: Store, history: HistoryStore, bus: events.Bus, clock: Clock) -> None:
        self.store = store
        self.history = history
        self.bus = bus
        self.clock = clock
        self._durations: dict[str, deque[float]] = {}  # per job: its last successes' durations, newest first
        self._timers: dict[int, asyncio.TimerHandle] = {}  # attempt run_id -> its armed timer
        self._flagged: set[RunKey] = set()

    @property
    def armed(self) -> int:
        return len(self._timers)

    def started(self, job: JobSpec, record: RunRecord, spawned_at: float, *, backfill: bool = False) -> None:
        if not watched(job) or (job.name, record.scheduled_at) in self._flagged:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): nothing can fire
            return
        learned = None
        if job.options.expected_duration is None:
            durations = self._durations.get(job.name)
            if durations is None:  # once per job and supervisor: then kept up to date by `ended`
                try:
                    found = read_durations(self.history, job.name)
                except DatabaseUnavailable:  # a shared store gone just now: not watched this time (never a crash)
                    return
                durations = self._durations[job.name] = deque(found, maxlen=HISTORY_RUNS)
            learned = learn(list(durations))
        limit = threshold(job, learned)
        if limit is None:
            return
        ran = max(0.0, self.clock.time() - spawned_at)
        armed_at = loop.time()
        self._timers[record.run_id] = loop.call_later(max(0.0, limit.seconds - ran), self._fire, job, record, limit,
                                                      ran, armed_at, backfill)

    def ended(self, job: JobSpec, record: RunRecord, *, final: bool) -> None:
        timer = self._timers.pop(record.run_id, None)
        if timer is not None:
            timer.cancel()
        if final:
            self._flagged.discard((job.name, record.scheduled_at))
            durations = self._durations.get(job.name)
            if record.status is RunStatus.SUCCESS and durations is not None and record.duration_s is not None:
                durations.appendleft(record.duration_s)  # the oldest of HISTORY_RUNS drops out

    def _fire(self, job: JobSpec, record: RunRecord, limit: Threshold, ran: float, armed_at: float,
              backfill: bool) -> None:
        self._timers.pop(record.run_id, None)
        self._flagged.add((job.name, record.scheduled_at))
        running_s = ran + asyncio.get_running_loop().time() - armed_at
        now = self.clock.time()
        marked = dataclasses.replace(record, slow_at=utc(now))
        event = events.RunSlow(job=job, record=marked, running_s=running_s, threshold_s=limit.seconds,
                               learned=limit.learned, backfill=backfill)

        def write(_: object) -> None:  # the mark and its alert: both or neither
            self.history.set_slow_at(record.run_id, now)
            self.bus.publish(event)

        try:
            self.store.write(write, lambda _: None, what=f"slow mark of run {record.run_id} of job {job.name}")
        except Exception:  # a timer has no task to crash: log it, the run goes on
            log.exception("job %s: marking run %d slow failed", job.name, record.run_id)
            return
        log.warning("job %s: run %d still running after %.1fs, past its threshold %.1fs (%s)", job.name,
                    record.run_id, running_s, limit.seconds, limit.learned)
