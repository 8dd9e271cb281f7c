"""Backfill (README "Backfill"): run the ticks of one job's schedule in [start, end] now, each as
if at its tick, N ticks at a time, through a Scheduler (the supervisor's, or one of its own
without ticks: service/backfill.py).

* The ticks are crontab/schedule.py's `next_fire` from `start` on (the job's tz and cron's DST
  rules), `start` and `end` included. A tick whose newest row (of any attempt) is `success` is
  already done and skipped, unless `rerun`: so a second backfill after an interruption resumes
  where the first stopped (a run interrupted, skipped at shutdown or failed is run again).
* A tick's run has trigger `backfill` and CRONPLUS_SCHEDULED_TIME = the tick (runner.build_env:
  scheduled_at). Its runs claim nothing (runs.claim NULL, as manual runs). Its job's `after=`
  holds (it waits for, and follows its trigger rule on, the upstream runs of that tick: dagrun's
  rule), and when it is final its downstream jobs get a run for the same tick (trigger
  `backfill`), as a manual trigger's chain does: each tick is a chain.Chain (scheduler._release
  fans out), and a tick is done when its chain is.
* Concurrency: at most `parallel` ticks (chains) at once. `overlap=` does not apply between a
  backfill's runs and the job's other runs (scheduler._busy): a backfill run is neither refused
  nor queued because a scheduled run of the job is running, and a scheduled tick is not skipped
  because backfill runs are. `pool=` and `--max-running` slots are honoured (a backfill run waits
  for a slot like any run), retries= and timeout= too; jitter= is not applied.
* `Backfill.events()` starts the ticks and streams: every chain event (chain.py: "ended" per
  final run, "retry"), a {"event": "progress", "finished", "total", "failed", "tick", "status"} for
  ticks finished: at most one a PROGRESS_EVERY_S (a failed tick's at once; one held back goes out
  when its time comes, the last always), and last {"done": true, ...summary}. Ticks freed in one
  loop pass start together (their rows in one transaction). Ticks start only while the stream is read
  (a client gone: nothing new starts, what runs finishes and is recorded), and not once the
  scheduler is stopping (its shutdown records what was under way) or the job left the crontab.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cronplus.errors import UsageError
from cronplus.model import JobSpec
from cronplus.status import RunStatus, Trigger

if TYPE_CHECKING:
    from cronplus.engine.scheduler import Scheduler
    from cronplus.store.api import RunReader

CONFIRM_ABOVE = 1000  # more ticks than this need --yes (issue 13: a range of 10 years is a typo)
COUNT_CAP = 10_000  # the refusal counts this far ("more than 10,000 ticks"): < 1 s of next_fire
PROGRESS_EVERY_S = 0.1  # at most 10 progress events a second, plus the last


class NeedsConfirmation(UsageError):
    """More than CONFIRM_ABOVE ticks and no --yes: nothing ran."""


def ticks(job: JobSpec, start: datetime, end: datetime) -> Iterator[datetime]:
    """The job's fire times in [start, end], oldest first, in the job's zone."""
    from cronplus.crontab.schedule import next_fire

    if job.schedule.reboot:
        return
    at = next_fire(job.schedule, start - timedelta(seconds=1), job.tz)
    while at is not None and at <= end:
        if at >= start:
            yield at
        at = next_fire(job.schedule, at, job.tz)


def check_range(job: JobSpec, start: float, end: float, *, yes: bool) -> None:
    """UsageError (one line) for an empty or reversed range, a job without ticks, or more than
    CONFIRM_ABOVE ticks without `yes` (NeedsConfirmation, saying how many)."""
    if start > end:
        raise UsageError(f"--from {_iso(start)} is after --to {_iso(end)}: nothing to backfill")
    if job.schedule.reboot:
        raise UsageError(f"job {job.name} runs @reboot: it has no ticks to backfill")
    if yes:
        return
    count = 0
    for _ in ticks(job, _utc(start), _utc(end)):
        count += 1
        if count > COUNT_CAP:
            break
    if count > CONFIRM_ABOVE:
        many = f"more than {COUNT_CAP:,}" if count > COUNT_CAP else f"{count:,}"
        raise NeedsConfirmation(f"{many} ticks of {job.name} from {_iso(start)} to {_iso(end)}: "
                                f"add --yes to run them (over {CONFIRM_ABOVE:,} needs it)")


@dataclass(frozen=True, slots=True)
class Plan:
    job: str
    start: datetime
    end: datetime
    run: tuple[datetime, ...]  # the ticks to run, oldest first
    done: tuple[tuple[datetime, int], ...]  # ticks already successful: (tick, its run_id)

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "from": self.start.isoformat(), "to": self.end.isoformat(),
                "total": len(self.run), "already_done": len(self.done)}


def plan(job: JobSpec, reader: RunReader, start: float, end: float, *, rerun: bool) -> Plan:
    """The ticks in [start, end] and which of them already succeeded (skipped unless `rerun`)."""
    first, last = _utc(start), _utc(end)
    all_ticks = list(ticks(job, first, last))
    newest = {} if rerun or not all_ticks else _newest_rows(job.name, reader, all_ticks[0], all_ticks[-1])
    run: list[datetime] = []
    done: list[tuple[datetime, int]] = []
    for tick in all_ticks:
        row = newest.get(tick.timestamp())
        if row is not None and row[1] is RunStatus.SUCCESS:
            done.append((tick, row[0]))
        else:
            run.append(tick)
    return Plan(job.name, first, last, tuple(run), tuple(done))


def _newest_rows(name: str, reader: RunReader, first: datetime, last: datetime) -> dict[float, tuple[int, RunStatus]]:
    """Per tick in [first, last]: its newest row's (run_id, status). A tick's runs started at or
    after it, so rows from `first` on (the time index) hold them all."""
    lo, hi = first.timestamp(), last.timestamp()
    newest: dict[float, tuple[int, RunStatus]] = {}
    for record in reader.iter_query(jobs=[name], since=lo):
        at = record.scheduled_at.timestamp() if record.scheduled_at is not None else None
        if at is not None and lo <= at <= hi:
            newest[at] = (record.run_id, record.status)  # oldest first: the newest stays
    return newest


class Backfill:
    """One backfill in a Scheduler: `events()` runs the plan and streams what happens."""

    def __init__(self, scheduler: Scheduler, plan: Plan, *, parallel: int = 1,
                 progress_every: float = PROGRESS_EVERY_S) -> None:
        if parallel < 1:
            raise UsageError(f"--parallel must be at least 1, not {parallel}")
        self.scheduler = scheduler
        self.plan = plan
        self.parallel = parallel
        self.progress_every = progress_every
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # every tick's chain writes here
        self.started = self.finished = self.failed = 0
        self.statuses: list[RunStatus] = []
        self.stopped: str | None = None

    def _start_next(self, count: int) -> None:
        """Start up to `count` more ticks together (their rows in one transaction: launcher.py),
        none once the scheduler stops or the job left the crontab."""
        from cronplus.engine.chain import Chain
        from cronplus.engine.dagrun import Run

        sched = self.scheduler
        job = sched.jobs.get(self.plan.job)
        count = min(count, len(self.plan.run) - self.started)
        if count <= 0 or self.stopped is not None:
            return
        if sched.stopping:
            self.stopped = sched.stop_reason
        elif job is None:
            self.stopped = f"job {self.plan.job} was removed from the crontab"
        if job is None or self.stopped is not None:
            return
        runs = [Run(job, tick, Trigger.BACKFILL) for tick in self.plan.run[self.started:self.started + count]]
        for run in runs:
            Chain(run, queue=self.queue).add(run)
        self.started += count
        sched.start_chained(*runs)

    async def events(self) -> AsyncGenerator[dict[str, Any], None]:
        from cronplus.engine.chain import BAD, worst

        total = len(self.plan.run)
        loop = asyncio.get_running_loop()
        shown = -math.inf  # loop.time() of the last progress event given
        held: dict[str, Any] | None = None  # a progress event not given yet (the next one replaces it)
        timer: asyncio.TimerHandle | None = None
        self._start_next(min(self.parallel, total))
        try:
            while self.finished < self.started:
                batch = [await self.queue.get()]  # and every event already there: the ticks they free start together
                while not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                freed = 0
                for event in batch:
                    if event.get("flush"):  # held long enough: say it
                        timer = None
                        if held is not None:
                            shown, progress, held = loop.time(), held, None
                            yield progress
                        continue
                    if not event.get("done"):
                        yield event
                        continue
                    self.finished += 1
                    freed += 1
                    status = RunStatus(event["status"])
                    self.statuses.append(status)
                    self.failed += status in BAD
                    progress = {"event": "progress", "finished": self.finished, "total": total, "failed": self.failed,
                                "tick": event.get("scheduled_at"), "status": str(status), "run_id": event.get("run_id")}
                    # At most one a progress_every (a line per tick of a fast job cost more than its run),
                    # a failed tick's at once; the one held back goes out when its time comes, or last.
                    if status in BAD or loop.time() - shown >= self.progress_every:
                        shown, held = loop.time(), None
                        yield progress
                        continue
                    held = progress
                    if timer is None:
                        timer = loop.call_at(shown + self.progress_every, self.queue.put_nowait, {"flush": True})
                self._start_next(freed)
            if held is not None:
                yield held
        finally:
            if timer is not None:
                timer.cancel()
        yield {"done": True, "job": self.plan.job, "total": total, "finished": self.finished, "failed": self.failed,
               "already_done": len(self.plan.done), "stopped": self.stopped,
               "status": str(worst(self.statuses) if self.stopped is None else RunStatus.INTERRUPTED)}


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")
