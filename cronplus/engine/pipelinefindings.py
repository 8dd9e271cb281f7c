"""The `cronplus why` findings of the pipeline features (pools, pause, sensors): the same
`Finding` records as findings.py, kept apart so that each module stays one screenful of verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from cronplus.engine.findings import Finding, Verdict, shown


@dataclass(frozen=True, kw_only=True, slots=True)
class PoolQueued(Finding):
    """Queued for a slot (engine/pools.py): held by the running supervisor now (`ahead` known), or
    recorded in its row (`waited_s`, runs.queued_s)."""

    verdict: ClassVar[Verdict] = Verdict.POOL_QUEUED
    tick: datetime
    pool: str  # "pool gpu" / "--max-running N"
    ahead: int | None = None
    waited_s: float | None = None

    def sentence(self) -> str:
        from cronplus.humanize import duration

        if self.waited_s is not None:
            return f"It waited {duration(self.waited_s)} queued for {self.pool} before it started."
        ahead = f", {self.ahead} run(s) ahead of it" if self.ahead is not None else ""
        return (f"The tick {shown(self.tick)} is queued for {self.pool}{ahead}: it starts when a slot frees "
                "(first come first served).")


@dataclass(frozen=True, kw_only=True, slots=True)
class Paused(Finding):  # paused now, and at the tick: the ticker stepped over it (no row)
    verdict: ClassVar[Verdict] = Verdict.PAUSED
    tick: datetime
    since: datetime
    by: str
    everything: bool  # `cronplus pause --all`

    def sentence(self) -> str:
        what, undo = ("all jobs are", "resume --all") if self.everything else ("the job is", "resume JOB")
        return (f"The tick {shown(self.tick)} was not run: {what} paused since {shown(self.since)} (by {self.by}); "
                f"a paused job's ticks are not run (nor recorded) until `cronplus {undo}`.")


@dataclass(frozen=True, kw_only=True, slots=True)
class WaitingSensor(Finding):
    """The tick's run waits on its sensor (wait-for=, engine/sensors.py): no row until it passes."""

    verdict: ClassVar[Verdict] = Verdict.WAITING_SENSOR
    tick: datetime
    command: str
    gives_up_at: datetime | None  # the wait's deadline, when the store has it

    def sentence(self) -> str:
        until = f"; it gives up at {shown(self.gives_up_at)}" if self.gives_up_at is not None else ""
        return (f"The tick {shown(self.tick)} is waiting on its sensor (wait-for={self.command}): its command "
                f"starts when that exits 0{until}.")
