"""A `Stats` (http.py) read from history, for a supervisor that keeps none of its own: the
counters of /metrics since the supervisor started, brought up to date on each scrape.

When the supervisor keeps a Stats fed by its run events (`daemon.stats`), that one is used and
this is not; the two answer alike (a final run counted once, at its end).

`refresh(reader, outbox, crontab)` reads only what is new: the rows after the highest run_id seen
(`query(after_run_id=)`), and again the few it holds open: runs still `running`, and `failed` /
`timeout` attempts that a retry may follow (attempt <= the job's `retries`). Such an attempt is
the run's end when it becomes the job's last final run or a later final run of the job exists
without a retry of it; a retry row (trigger `retry`, same tick, next attempt) drops it. So a
counter never goes down. Gauges (last success, last duration) start from history, whatever its
age. The start delay is a scheduled first attempt's, of a job with neither jitter= nor after=
(late on purpose, or waiting for upstreams). Alert deliveries count the outbox's `delivered` / `failed` rows beyond those at the first
scrape (never less than before: pruning old rows does not lower them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from cronplus.status import RunStatus, Trigger

if TYPE_CHECKING:
    from cronplus.model import Crontab, RunRecord
    from cronplus.store.api import OutboxQueue, RunReader

# Tick to spawn, seconds: a bare loop starts in milliseconds, a 2,000-job tick in about a second.
DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MAYBE_RETRIED = (RunStatus.FAILED, RunStatus.TIMEOUT)


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class HistoryStats:
    def __init__(self, *, after_run_id: int, running: Sequence[RunRecord] = (),
                 reload_ok: Callable[[], bool] = lambda: True) -> None:
        """`after_run_id`: the highest run_id at the supervisor's start; `running`: its runs then."""
        self._reload_ok = reload_ok
        self._lock = threading.Lock()
        self._seen = after_run_id  # the highest run_id read
        self._open: dict[int, RunRecord] = {r.run_id: r for r in running}
        self._runs: dict[tuple[str, str], int] = {}
        self._success: dict[str, float] = {}
        self._duration: dict[str, float] = {}
        self._buckets = [0] * len(DELAY_BUCKETS)
        self._delay_sum = 0.0
        self._delay_count = 0
        self._deliveries: dict[str, int] = {"delivered": 0, "failed": 0}
        self._outbox_base: dict[str, int] | None = None
        self._jobs_read: set[str] = set()

    # ---- Stats ---------------------------------------------------------------------------

    def runs_total(self) -> Mapping[tuple[str, str], int]:
        return dict(self._runs)

    def last_success(self) -> Mapping[str, float]:
        return dict(self._success)

    def last_duration(self) -> Mapping[str, float]:
        return dict(self._duration)

    def start_delay(self) -> tuple[Sequence[float], Sequence[int], float, int]:
        cumulative, total = [], 0
        for n in self._buckets:
            total += n
            cumulative.append(total)
        return DELAY_BUCKETS, cumulative, self._delay_sum, self._delay_count

    def alert_deliveries(self) -> Mapping[str, int]:
        return dict(self._deliveries)

    def reload_ok(self) -> bool:
        return self._reload_ok()

    # ---- reading history -----------------------------------------------------------------

    def refresh(self, reader: RunReader, outbox: OutboxQueue, crontab: Crontab) -> None:
        with self._lock:
            retries = {job.name: job.options.retries for job in crontab.jobs}
            # late on purpose (jitter=) or waiting for upstreams (after=): not the supervisor's delay
            timely = {job.name for job in crontab.jobs if not job.options.jitter and not job.options.after}
            self._gauges_from_history(reader, [job.name for job in crontab.jobs])
            fresh = reader.query(after_run_id=self._seen)
            if fresh:
                self._seen = fresh[-1].run_id
            for record in fresh:
                if record.started_at is not None and record.scheduled_at is not None and record.job in timely \
                        and record.trigger == Trigger.SCHEDULE and record.attempt == 1:
                    self._delay(max(0.0, (record.started_at - record.scheduled_at).total_seconds()))
            updated = {r.run_id: r for r in reader.runs_by_id(sorted(self._open))}
            for record in sorted([*updated.values(), *fresh], key=lambda r: r.run_id):
                self._classify(record, retries)
            self._settle(reader)
            self._count_deliveries(outbox.counts())

    def _gauges_from_history(self, reader: RunReader, jobs: list[str]) -> None:
        for name in jobs:
            if name in self._jobs_read:
                continue
            self._jobs_read.add(name)
            last = reader.last_final_run(name)
            if last is not None:
                self._final_gauges(last)
            if name not in self._success:
                success = reader.query(jobs=[name], statuses=[RunStatus.SUCCESS], limit=1)
                if success and success[-1].ended_at is not None:
                    self._success[name] = success[-1].ended_at.timestamp()

    def _classify(self, record: RunRecord, retries: Mapping[str, int]) -> None:
        if record.trigger == Trigger.RETRY:  # the attempt before it was not the run's end
            for run_id, held in list(self._open.items()):
                if held.job == record.job and held.scheduled_at == record.scheduled_at \
                        and held.attempt == record.attempt - 1 and held.status != RunStatus.RUNNING:
                    del self._open[run_id]
        if record.status == RunStatus.RUNNING or (
                record.status in MAYBE_RETRIED and record.attempt <= retries.get(record.job, 0)):
            self._open[record.run_id] = record
        else:
            self._open.pop(record.run_id, None)
            self._final(record)

    def _settle(self, reader: RunReader) -> None:
        """Attempts a retry may follow: final once the job's last final run is it or newer."""
        for run_id, held in sorted(self._open.items()):
            if held.status == RunStatus.RUNNING:
                continue
            last = reader.last_final_run(held.job)
            if last is not None and last.run_id >= run_id:
                del self._open[run_id]
                self._final(held)

    def _final(self, record: RunRecord) -> None:
        key = (record.job, str(record.status))
        self._runs[key] = self._runs.get(key, 0) + 1
        self._final_gauges(record)

    def _final_gauges(self, record: RunRecord) -> None:
        if record.duration_s is not None:
            self._duration[record.job] = record.duration_s
        ended = _ts(record.ended_at)
        if record.status == RunStatus.SUCCESS and ended is not None:
            self._success[record.job] = max(ended, self._success.get(record.job, 0.0))

    def _delay(self, seconds: float) -> None:
        self._delay_sum += seconds
        self._delay_count += 1
        for i, bound in enumerate(DELAY_BUCKETS):
            if seconds <= bound:
                self._buckets[i] += 1
                break

    def _count_deliveries(self, counts: Mapping[str, int]) -> None:
        if self._outbox_base is None:
            self._outbox_base = dict(counts)
        for result in self._deliveries:
            now = counts.get(result, 0) - self._outbox_base.get(result, 0)
            self._deliveries[result] = max(self._deliveries[result], now)
