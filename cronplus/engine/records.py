"""What a run writes to history, and the run events it publishes (events.py) inside the same
Store write (storeguard.Store: a full disk holds it in memory, with a draft of the record it
would return), so a transactional subscriber (alerting) decides in the row's transaction:

* `not_run`: the final row of a run that never ran (skipped, upstream_failed) with the tick it
  handles (RunNotRun); `missed`: the rows of ticks missed (one TicksMissed for the whole gap).
* `started`: an attempt's RunStarted (its row and pid are written by launcher.py).
* `ended`: an attempt's end row (final or not: a retry follows) and RunEnded; `prewrite`: the
  ends of one loop pass in one transaction (engine/ends.py), which `ended` then takes;
  `wait_ended`: the same for an attempt whose sensor (wait-for=) gave up: no process, no RunStarted;
* `slowness` (slowness.py): alert-on=slow's timer, armed by `started`, cancelled by `ended`;
  `abandon_retry`: the ended attempt becomes the run's final row (RunEnded, final).

A run ending failed, timeout, upstream_failed, missed or interrupted is logged at WARNING (so
`journalctl -p warning` lists it), the rest at INFO.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from cronplus.clock import Clock, SystemClock
from cronplus.engine import claims, events, policy
from cronplus.engine.dagrun import Run, utc
from cronplus.engine.slowness import Slowness
from cronplus.model import JobSpec, RunRecord
from cronplus.status import RunStatus, Trigger
from cronplus.store.api import HistoryStore, RunStart, RunTaken
from cronplus.store.storeguard import Ids, Store, draft_record

if TYPE_CHECKING:
    from cronplus.engine.executor import AttemptResult

log = logging.getLogger("cronplus")

WARN_STATUSES = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.UPSTREAM_FAILED, RunStatus.MISSED,
                           RunStatus.INTERRUPTED})
Kv = list[tuple[str, str]]


def level(status: RunStatus) -> int:
    return logging.WARNING if status in WARN_STATUSES else logging.INFO


class Records:
    def __init__(self, store: Store, history: HistoryStore, bus: events.Bus, clock: Clock | None = None) -> None:
        self.store = store
        self.history = history
        self.bus = bus
        self.host: str | None = getattr(history, "host", None)
        self.owner: str | None = None  # the scheduler's: an end updates only a row it owns (fencing)
        self.slowness = Slowness(store, history, bus, clock or SystemClock())  # alert-on=slow's timers
        self._prewritten: dict[int, tuple[RunRecord, bool]] = {}  # attempt id -> its end (and taken), by prewrite

    def missed(self, job: JobSpec, due: policy.DueTicks, now: float, handled: Kv) -> None:
        reason = policy.missed_reason(due.missed_total, len(due.missed))
        # a missed row claims its tick as a run does (claims.py: the run of a host that was up wins)
        claimed = claims.missed_claims(job, due.missed, self.history.host)

        def write(ids: Ids) -> None:  # the rows, the tick they handle and their alert: all or nothing
            self.history.kv_set_many(handled)
            records = tuple(record for tick, attempt_id, claim in zip(due.missed, ids, claimed, strict=True)
                            if (record := self.history.record_not_run(
                                job=job.name, status=RunStatus.MISSED, trigger=Trigger.SCHEDULE, claim=claim,
                                scheduled_at=tick.timestamp(), tz=job.tz, at=now, reason=reason, run_id=attempt_id)))
            if records:  # none: another supervisor recorded them (and alerted)
                self.bus.publish(events.TicksMissed(job=job, records=records, total=due.missed_total))

        self.store.write(write, lambda _: None, ids=len(due.missed), what=f"{len(due.missed)} missed tick(s) of job {job.name}")
        log.warning("job %s: %d tick(s) missed (%s)", job.name, due.missed_total, reason)

    def not_run(self, run: Run, status: RunStatus, reason: str | None, now: float, handled: Kv) -> RunRecord | None:
        """None: another supervisor decided this tick (its row holds the claim, claims.py)."""
        def write(ids: Ids) -> RunRecord | None:  # the row, the tick it handles and its alert: all or nothing
            if handled:
                self.history.kv_set_many(handled)
            record = self.history.record_not_run(job=run.job.name, status=status, trigger=run.trigger,
                                                 scheduled_at=run.tick.timestamp(), tz=run.job.tz, at=now, reason=reason,
                                                 run_id=ids[0], claim=claims.run_claim(run, self.history.host))
            if record is not None:
                self.bus.publish(events.RunNotRun(job=run.job, record=record, backfill=run.backfill))
            return record

        def draft(ids: list[int]) -> RunRecord | None:
            return draft_record(run_id=ids[0], job=run.job.name, attempt=1, status=status, trigger=run.trigger,
                                scheduled_at=run.tick, started_at=None, ended_at=utc(now), reason=reason, host=self.host)

        record = self.store.write(write, draft, ids=1, final=True, what=f"{status} run of job {run.job.name}: {reason}")
        if record is None:
            claims.lost(run)
            return None
        log.log(level(status), "job %s: run %d %s: %s", run.job.name, record.run_id, status, reason)
        return record

    def started(self, run: Run, pid: int | None, started_at: float) -> None:
        """RunStarted (the record is what the row holds: no query on the start path) and the
        log line; `started_at` is the attempt's start on the clock (its spawn). A run whose sensor
        passed gets its runs.sensor_s in the same write."""
        job, attempt_id = run.job, run.attempt_id
        assert attempt_id is not None
        record = RunRecord(run_id=attempt_id, job=job.name, attempt=run.attempt, status=RunStatus.RUNNING,
                           trigger=run.attempt_trigger, scheduled_at=run.tick, started_at=utc(run.started_at),
                           ended_at=None, exit_code=None, log_path=str(run.output), pid=pid, host=self.host)
        waited, run.sensor_s = run.sensor_s, None  # its sensor's wait (wait-for=, sensors.py), on its row

        def write(_: Ids) -> None:
            if waited is not None:
                self.history.set_sensor_s(attempt_id, waited)
            self.bus.publish(events.RunStarted(job=job, record=record, spawned_at=started_at, backfill=run.backfill))

        self.store.write(write, lambda _: None, what=f"start of run {attempt_id} of job {job.name}")
        log.info("job %s: run %d started (attempt %d, %s)", job.name, attempt_id, run.attempt, run.attempt_trigger)
        self.slowness.started(job, record, started_at, backfill=run.backfill)

    def queued(self, run: Run, seconds: float) -> None:
        """How long the run's current row waited for a pool slot (runs.queued_s; engine/pools.py)."""
        run_id = run.attempt_id
        if run_id is not None:
            self.store.write(lambda _: self.history.set_queued(run_id, seconds), lambda _: None,
                             what=lambda: f"queued time of run {run_id}", own_transaction=True)

    def prewrite(self, ends: list[tuple[Run, AttemptResult, policy.Outcome, bool]]) -> None:
        """Several runs' ends (run, result, outcome, final) in one transaction (Store.write_all;
        engine/ends.py); each run's `ended` then takes its record instead of writing. When the
        shared write fails, nothing is kept: each `ended` writes its own, as it always did."""
        if len(ends) < 2:
            return
        writes = [self._end(run, result, out, final) for run, result, out, final in ends]
        records = self.store.write_all([write for write, _, _ in writes])
        for (run, *_), (_, _, taken), record in zip(ends, writes, records or (), strict=False):
            assert run.attempt_id is not None
            self._prewritten[run.attempt_id] = (record, bool(taken))

    def _end(self, run: Run, result: AttemptResult, out: policy.Outcome,
             final: bool) -> tuple[Callable[[Ids], RunRecord], Callable[[list[int]], RunRecord], list[int]]:
        """A run's end: its write (end row, outputs, usage, RunEnded), its draft (held), and the
        list its write fills when the run was taken over (fenced)."""
        job, attempt_id = run.job, run.attempt_id
        assert attempt_id is not None
        ended = result.ended_at
        taken: list[int] = []

        def write(_: Ids) -> RunRecord:  # the run's end and its alerts: both or neither, even across a kill -9
            try:  # fencing: only a row still ours (another host takes a run over when our lease runs out)
                record: RunRecord = self.history.finish_run(attempt_id, status=out.status, ended_at=ended,
                                                            exit_code=result.exit_code, signal=result.signal,
                                                            reason=out.reason, final=final, owner=self.owner)
            except RunTaken:  # its end is the taker's (store/leases.py): not recorded twice, nor retried here
                taken.append(attempt_id)
                run.taken = True
                log.warning("job %s: run %d %s here, but another host took it over (this host's lease ran out):"
                            " not recorded twice", job.name, attempt_id, out.status)
                return draft([])
            usage = result.peak_memory_bytes is not None or result.cpu_s is not None  # a limited run's cgroup
            if result.outputs:
                self.history.set_outputs(attempt_id, result.outputs)
            if result.output_head is not None:  # a shared store: its output readable from any host (outputexcerpt.py)
                self.history.set_output_excerpt(attempt_id, result.output_head, result.output_tail or "")
            if usage:
                self.history.set_usage(attempt_id, peak_memory_bytes=result.peak_memory_bytes, cpu_s=result.cpu_s)
            if result.outputs or usage:  # the record carries them
                record = self.history.get_run(attempt_id) or record
            self.bus.publish(events.RunEnded(job=job, record=record, will_retry=not final, backfill=run.backfill))
            return record

        def draft(_: list[int]) -> RunRecord:
            return dataclasses.replace(draft_record(
                run_id=attempt_id, job=job.name, attempt=run.attempt, status=out.status, trigger=run.attempt_trigger,
                scheduled_at=run.tick, started_at=utc(run.started_at), ended_at=utc(ended), exit_code=result.exit_code,
                log_path=str(run.output), pid=result.pid, reason=out.reason, signal=result.signal,
                host=result.host or self.host), params=run.params, outputs=result.outputs,
                peak_memory_bytes=result.peak_memory_bytes, cpu_s=result.cpu_s)

        return write, draft, taken

    def ended(self, run: Run, result: AttemptResult, out: policy.Outcome, *, final: bool) -> RunRecord:
        job, attempt_id = run.job, run.attempt_id
        assert attempt_id is not None
        ended = result.ended_at
        prewritten = self._prewritten.pop(attempt_id, None)
        if prewritten is not None:  # written with its loop pass's other ends (prewrite)
            record, was_taken = prewritten
        else:
            write, draft, taken = self._end(run, result, out, final)
            keep = {"kind": "end", "run_id": attempt_id, "job": job.name, "status": str(out.status), "ended_at": ended,
                    "exit_code": result.exit_code, "signal": result.signal, "reason": out.reason, "final": final,
                    "outputs": result.outputs, "usage": [result.peak_memory_bytes, result.cpu_s],
                    "excerpt": None if result.output_head is None else [result.output_head, result.output_tail or ""],
                    } if self.store.shared else None  # kept on disk if the supervisor stops while it is held (heldwrites.py)
            record = self.store.write(write, draft, final=final, keep=keep,
                                      what=f"end of run {attempt_id} of job {job.name}: {out.status}")
            was_taken = bool(taken)
        self.slowness.ended(job, record, final=final)
        if was_taken:
            return record
        duration = ended - result.started_at if result.started_at else 0.0
        log.log(level(out.status), "job %s: run %d %s in %.3fs%s", job.name, attempt_id, out.status, duration,
                f": {out.reason}" if out.reason else "")
        return record

    def abandon_retry(self, run: Run, why: str) -> RunRecord:
        """The retry will not happen (shutdown, replaced): the ended attempt is the run's final row."""
        attempt_id, ended = run.attempt_id, run.record
        assert attempt_id is not None

        def write(_: Ids) -> RunRecord:  # the final row and its alert: all or nothing
            record: RunRecord = self.history.mark_final(attempt_id, f"retry abandoned: {why}")
            self.bus.publish(events.RunEnded(job=run.job, record=record, will_retry=False, backfill=run.backfill))  # its failure alert was held for the retry
            return record

        def draft(_: list[int]) -> RunRecord:
            assert ended is not None
            reason = f"{ended.reason}; retry abandoned: {why}" if ended.reason else f"retry abandoned: {why}"
            return dataclasses.replace(ended, reason=reason)

        keep = {"kind": "final", "run_id": attempt_id, "job": run.job.name, "reason": f"retry abandoned: {why}"}
        record = self.store.write(write, draft, final=True, what=f"run {attempt_id} of job {run.job.name}: retry abandoned",
                                  keep=keep if self.store.shared else None)
        log.info("job %s: run %d final, retry abandoned: %s", run.job.name, attempt_id, why)
        return record

    def wait_ended(self, run: Run, *, status: RunStatus, reason: str, started: float, now: float, final: bool,
                   owner: str) -> RunRecord | None:
        """A sensor's wait timed out (sensors.py): the attempt's row from the wait's start, ended
        `status` with `reason`, its sensor_s, and RunEnded (its failure alert, or its retry's), in one write.
        None: another supervisor's row holds the attempt's claim (its sensor gave up there too)."""
        job, waited = run.job, now - started

        def write(ids: Ids) -> RunRecord | None:  # ids[0]: None, or the id a held write was answered with
            start = RunStart(job=job.name, attempt=run.attempt, trigger=run.attempt_trigger, run_id=ids[0],
                             scheduled_at=run.tick.timestamp(), tz=job.tz, started_at=started, owner=owner,
                             log_path=None, claim=claims.run_claim(run, self.history.host))
            (run_id,) = self.history.start_runs([start])
            if run_id is None:
                return None
            self.history.set_sensor_s(run_id, waited)
            record: RunRecord = self.history.finish_run(run_id, status=status, ended_at=now, exit_code=None,
                                                        reason=reason, final=final)
            self.bus.publish(events.RunEnded(job=job, record=record, will_retry=not final, backfill=run.backfill))
            return record

        def draft(ids: list[int]) -> RunRecord | None:
            return draft_record(run_id=ids[0], job=job.name, attempt=run.attempt, status=status,
                                trigger=run.attempt_trigger, scheduled_at=run.tick, started_at=utc(started),
                                ended_at=utc(now), reason=reason, host=self.host)

        record = self.store.write(write, draft, ids=1, final=final, what=f"end of the wait of job {job.name}: {status}")
        if record is None:
            claims.lost(run)
            return None
        log.log(level(status), "job %s: run %d %s: %s", job.name, record.run_id, status, reason)
        return record
