"""Counters since the supervisor started, for Prometheus (`/metrics`, web/): an after-commit
subscriber of the run events (engine/events.py), so it counts what history holds, once.

`RunStats().subscribe(bus)`; it satisfies web/http.Stats structurally (service does not import
web; tests/test_stats.py checks the shape):

- `runs_total()`: (job, status) -> final runs recorded: ended (RunEnded, not a retry's attempt),
  not run (skipped, upstream_failed) and each `missed` tick's row; also the runs a dead
  supervisor left, made final at start (recovery.py publishes them before READY=1).
- `last_success()` / `last_duration()`: job -> Unix time of its last success's end / seconds of
  its last final run that ran (a row without a process has no duration); `seed(history, jobs)`
  fills both from history at start (a few indexed reads per job), so a restart does not empty
  them.
- `start_delay()`: how late the supervisor starts a tick: scheduled tick -> spawn, in seconds, for
  the first attempt of a scheduled run (trigger `schedule`) of a job with neither jitter= (late
  on purpose) nor after= (it waits for its upstreams); buckets 0.01 s .. 60 s, Prometheus'
  cumulative histogram (bounds, cumulative counts, sum, count).
- `alert_deliveries()`: result (delivered / retry / failed) -> attempts of outbox rows recorded
  (AlertSettled: alerts, pings and mail alike).
- `reload_ok()`: the last reload's result; True before any.
- `slow_total()`: job -> runs flagged slow (RunSlow, alert-on=slow: once per run); not yet on
  /metrics.

Handlers run on the loop's thread; the readers are the web server's threads, so every read
takes a copy under a lock (a reader never sees a dict change size under it).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from cronplus.engine import events
from cronplus.status import RunStatus, Trigger

if TYPE_CHECKING:
    from cronplus.model import RunRecord
    from cronplus.store.api import RunReader

# Seconds: a healthy supervisor starts a tick in milliseconds; 1-60 s is a loaded machine, a
# suspended VM or a 2,000-job tick. Prometheus' default buckets stop at 10 s.
DELAY_BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DELIVERY_RESULTS = ("delivered", "retry", "failed")


class RunStats:
    def __init__(self, buckets: Sequence[float] = DELAY_BUCKETS) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], int] = {}
        self._last_success: dict[str, float] = {}
        self._last_duration: dict[str, float] = {}
        self._bounds = tuple(sorted(buckets))
        self._bucket_counts = [0] * (len(self._bounds) + 1)  # the last: above every bound (+Inf)
        self._delay_sum = 0.0
        self._deliveries = dict.fromkeys(DELIVERY_RESULTS, 0)
        self._reload_ok = True
        self._slow: dict[str, int] = {}  # job -> runs flagged slow (alert-on=slow, engine/slowness.py)

    def subscribe(self, bus: events.Bus) -> None:
        bus.subscribe(events.RunStarted, self._started, transactional=False)
        bus.subscribe(events.RunEnded, self._ended, transactional=False)
        bus.subscribe(events.RunNotRun, self._not_run, transactional=False)
        bus.subscribe(events.TicksMissed, self._missed, transactional=False)
        bus.subscribe(events.AlertSettled, self._settled, transactional=False)
        bus.subscribe(events.ConfigRejected, self._rejected, transactional=False)
        bus.subscribe(events.ConfigReloaded, self._reloaded, transactional=False)
        bus.subscribe(events.RunSlow, self._run_slow, transactional=False)

    def seed(self, history: RunReader, jobs: Iterable[str]) -> None:
        """Last success and last duration of each job from history (before any event): its
        newest final row (its duration when it ran) and its newest success."""
        for job in jobs:
            last = history.last_final_run(job)
            if last is None:
                continue
            success = last if last.status is RunStatus.SUCCESS else next(
                history.iter_query(jobs=[job], statuses=[RunStatus.SUCCESS], newest_first=True, limit=1), None)
            with self._lock:
                if last.duration_s is not None:
                    self._last_duration[job] = max(0.0, last.duration_s)
                if success is not None:
                    self._last_success[job] = _ended(success)

    # ---- the Stats protocol (web/http.py) -------------------------------------------------------

    def runs_total(self) -> Mapping[tuple[str, str], int]:
        with self._lock:
            return dict(self._runs)

    def last_success(self) -> Mapping[str, float]:
        with self._lock:
            return dict(self._last_success)

    def last_duration(self) -> Mapping[str, float]:
        with self._lock:
            return dict(self._last_duration)

    def start_delay(self) -> tuple[Sequence[float], Sequence[int], float, int]:
        with self._lock:
            cumulative, total = [], 0
            for count in self._bucket_counts[:-1]:
                total += count
                cumulative.append(total)
            return self._bounds, cumulative, self._delay_sum, sum(self._bucket_counts)

    def alert_deliveries(self) -> Mapping[str, int]:
        with self._lock:
            return dict(self._deliveries)

    def reload_ok(self) -> bool:
        return self._reload_ok

    def slow_total(self) -> Mapping[str, int]:
        """job -> its runs flagged slow since the supervisor started (once per run)."""
        with self._lock:
            return dict(self._slow)

    # ---- handlers (the loop's thread, after the commit) ---------------------------------------

    def _started(self, event: events.RunStarted) -> None:
        record, options = event.record, event.job.options
        if (record.attempt != 1 or record.trigger is not Trigger.SCHEDULE or record.scheduled_at is None
                or options.jitter > 0 or options.after):
            return
        delay = max(0.0, event.spawned_at - record.scheduled_at.timestamp())
        with self._lock:
            self._bucket_counts[bisect.bisect_left(self._bounds, delay)] += 1  # le: a delay on a bound is in it
            self._delay_sum += delay

    def _ended(self, event: events.RunEnded) -> None:
        if event.final:
            with self._lock:
                self._count(event.record)

    def _not_run(self, event: events.RunNotRun) -> None:
        with self._lock:
            self._count(event.record)

    def _missed(self, event: events.TicksMissed) -> None:
        with self._lock:
            for record in event.records:
                self._count(record)

    def _settled(self, event: events.AlertSettled) -> None:
        with self._lock:
            self._deliveries[event.result] = self._deliveries.get(event.result, 0) + 1

    def _rejected(self, event: events.ConfigRejected) -> None:
        self._reload_ok = False

    def _reloaded(self, event: events.ConfigReloaded) -> None:
        self._reload_ok = True

    def _run_slow(self, event: events.RunSlow) -> None:
        with self._lock:
            self._slow[event.job.name] = self._slow.get(event.job.name, 0) + 1

    def _count(self, record: RunRecord) -> None:
        key = (record.job, record.status.value)
        self._runs[key] = self._runs.get(key, 0) + 1
        started, ended = record.started_at, record.ended_at
        if started is not None and ended is not None:  # it ran (a not-run row has no duration)
            self._last_duration[record.job] = max(0.0, (ended - started).total_seconds())
            if record.status is RunStatus.SUCCESS:
                self._last_success[record.job] = ended.timestamp()


def _ended(record: RunRecord) -> float:
    moment = record.ended_at or record.started_at
    return moment.timestamp() if moment is not None else 0.0
