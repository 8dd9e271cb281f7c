"""The answer of `cronplus why` as typed findings (engine/explain.py builds them): each finding is
a frozen record of the evidence for one reason a job did or did not run at a time, with its
`verdict`, one plain sentence (`sentence()`) and its JSON (`to_json()`: `verdict`, `sentence` and
the evidence: times as ISO 8601 with offset, runs in history.run_json's shape). The CLI prints the
sentences or the JSON; the web page renders the same findings.

Times in findings are aware datetimes in the job's zone (explain.py converts them), so a sentence
reads as the schedule does ("02:30 does not exist in Europe/Berlin on 2026-03-29").

The pipeline features' findings (pools, pause, sensors) are in pipelinefindings.py; a verdict
still to come slots in as a new member of `Verdict` and a finding class there or here; nothing
depends on the list being closed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from cronplus.crontab.timeline import DayRule
from cronplus.model import RunRecord


class Verdict(StrEnum):
    """Why a job did or did not run at a time: the headline of an answer, one per finding."""

    RAN = "ran"  # it has a run for that tick (whatever the run's status)
    RUNNING = "running"
    NOT_DUE = "not_due"  # the schedule has no tick then
    NOT_YET = "not_yet"  # the time is still to come
    SUPERVISOR_DOWN = "supervisor_down"  # no supervisor ran at the tick (rows `missed`, or none)
    INTERRUPTED = "interrupted"  # the supervisor stopped or died while the run ran
    OVERLAP = "overlap"  # skipped or replaced: another run of the job was in flight
    UPSTREAM_FAILED = "upstream_failed"  # after=: the trigger rule said no
    WAITING_UPSTREAM = "waiting_upstream"  # after=: still waiting for an upstream run
    JITTER = "jitter"  # jitter= moved the start
    LATE_START = "late_start"  # started well after its tick for another reason (queued, waited)
    DST_GAP = "dst_gap"  # the wall time does not exist that day (spring forward)
    DST_REPEAT = "dst_repeat"  # the wall time happens twice that day (fall back)
    CRONTAB_CHANGED = "crontab_changed"  # the job or its file changed after the tick
    USER_MISSING = "user_missing"  # system mode: the job's user is not in the passwd database
    SKIP_EXIT = "skip_exit"  # it ran and exited with skip-exit
    NO_RECORD = "no_record"  # history has nothing for the tick and nothing says why
    REBOOT = "reboot"  # @reboot: no clock times
    POOL_QUEUED = "pool_queued"  # pool= / --max-running: queued for a slot (engine/pools.py)
    PAUSED = "paused"  # the job is paused (cronplus pause; engine/pausing.py): its ticks are not run
    WAITING_SENSOR = "waiting_sensor"  # wait-for=: its sensor is probed until it exits 0


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def shown(value: datetime | None) -> str:
    """A time in a sentence: `2026-03-29 03:00:00+02:00` (the job's zone)."""
    return value.isoformat(sep=" ", timespec="seconds") if value is not None else "never"


def run_words(run: RunRecord) -> str:
    """`run 12 (failed, exit 3)`."""
    detail = str(run.status)
    if run.reason:
        detail += f": {run.reason}"
    elif run.exit_code is not None and run.status != "success":
        detail += f", exit {run.exit_code}"
    return f"run {run.run_id} ({detail})"


def _json_value(value: Any) -> Any:
    from cronplus.store.readhistory import run_json

    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, RunRecord):
        return run_json(value)
    if isinstance(value, DayRule):
        return {"date": value.day.isoformat(), "day_of_month": value.dom_text, "day_of_week": value.dow_text,
                "rule": "either" if value.either else "both", "day_of_month_matches": value.dom_match,
                "day_of_week_matches": value.dow_match, "month_matches": value.month_match, "runs": value.runs}
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    if isinstance(value, Upstream):
        return {"job": value.job, "run": _json_value(value.run), "running": value.running}
    return value


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    verdict: ClassVar[Verdict]

    def sentence(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": str(self.verdict), "sentence": self.sentence()}
        for f in dataclasses.fields(self):
            out[f.name] = _json_value(getattr(self, f.name))
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Upstream:
    """One `after=` job's run for the tick (the newest final run at or before it), or the run of
    it still in flight."""

    job: str
    run: RunRecord | None
    running: bool = False

    def words(self) -> str:
        if self.running:
            return f"{self.job} still running"
        if self.run is None:
            return f"{self.job} has no run at or before the tick"
        return f"{self.job} {run_words(self.run)}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Ran(Finding):
    verdict: ClassVar[Verdict] = Verdict.RAN
    tick: datetime
    run: RunRecord

    def sentence(self) -> str:
        started = f", started {shown(self.run.started_at)}" if self.run.started_at else ""
        if self.run.attempt > 1:
            started += f" (attempt {self.run.attempt}: retries=)"
        if self.run.trigger == "catch-up":
            started += "; a catch-up run: catch-up=last ran the latest tick missed while no supervisor ran"
        return f"It ran for the tick {shown(self.tick)}: {run_words(self.run)}{started}."


@dataclass(frozen=True, kw_only=True, slots=True)
class Running(Finding):
    verdict: ClassVar[Verdict] = Verdict.RUNNING
    tick: datetime
    run: RunRecord

    def sentence(self) -> str:
        return f"It is running for the tick {shown(self.tick)}: run {self.run.run_id}, started {shown(self.run.started_at)}."


@dataclass(frozen=True, kw_only=True, slots=True)
class NotDue(Finding):
    verdict: ClassVar[Verdict] = Verdict.NOT_DUE
    at: datetime
    schedule: str
    previous: datetime | None
    next: datetime | None
    day: DayRule | None  # set when the day fields decided (the date is not one of its days)
    gap_wall: datetime | None = None  # the wall time asked about, when a spring-forward skips it

    def sentence(self) -> str:
        asked = shown(self.at)
        if self.gap_wall is not None:
            asked = (f"{self.gap_wall.strftime('%H:%M')} (that wall time does not exist on "
                     f"{self.gap_wall.date().isoformat()}, clocks spring forward: read as {asked})")
        head = f"Not due at {asked}: '{self.schedule}' has no tick then"
        if self.day is not None:
            head += f"; {self.day.sentence()}"
        return f"{head}. Previous tick {shown(self.previous)}, next tick {shown(self.next)}."


@dataclass(frozen=True, kw_only=True, slots=True)
class NotYet(Finding):
    verdict: ClassVar[Verdict] = Verdict.NOT_YET
    tick: datetime
    now: datetime

    def sentence(self) -> str:
        return f"The tick {shown(self.tick)} is still to come (now {shown(self.now)})."


@dataclass(frozen=True, kw_only=True, slots=True)
class SupervisorDown(Finding):
    """No supervisor ran at the tick. From `missed` rows (written when one came back), or, with
    no row, from the last tick a supervisor handled for the job (kv) and the newest row."""

    verdict: ClassVar[Verdict] = Verdict.SUPERVISOR_DOWN
    tick: datetime
    run: RunRecord | None  # the tick's `missed` row
    back_at: datetime | None  # when a supervisor came back and recorded the gap
    missed: int  # ticks of this job recorded missed at that restart
    first_missed: datetime | None
    last_missed: datetime | None
    last_before: RunRecord | None  # the newest run of any job before the gap: the supervisor was up then
    last_handled: datetime | None  # the last tick a supervisor handled for the job (persisted)
    supervisor_running: bool = False  # a supervisor answers on the state dir's socket now

    def sentence(self) -> str:
        before = ""
        if self.last_before is not None:
            seen = self.last_before.started_at or self.last_before.ended_at
            before = f" The last run recorded before the gap: run {self.last_before.run_id} of {self.last_before.job} at {shown(seen)}."
        if self.run is not None:
            span = (f"{self.missed} tick(s) of this job, {shown(self.first_missed)} to {shown(self.last_missed)}"
                    if self.missed > 1 else "this tick")
            return (f"No supervisor was running at {shown(self.tick)}: when one started again at {shown(self.back_at)} "
                    f"it recorded {span} as missed ({self.run.reason or 'missed'}), run {self.run.run_id}.{before}")
        handled = (f"the last tick a supervisor handled for this job is {shown(self.last_handled)}"
                   if self.last_handled is not None else "no supervisor has ever scheduled this job")
        now = (" A supervisor runs now, with this state directory: if the tick is not a moment ago, it runs another "
               "crontab (`cronplus jobs` shows which) or its clock is behind." if self.supervisor_running else "")
        return f"No supervisor handled the tick {shown(self.tick)}: {handled}, and no row exists for it.{before}{now}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Interrupted(Finding):
    verdict: ClassVar[Verdict] = Verdict.INTERRUPTED
    tick: datetime
    run: RunRecord

    def sentence(self) -> str:
        if self.run.started_at is None:
            return (f"The tick {shown(self.tick)} never started: the supervisor was stopping ({self.run.reason}), "
                    f"run {self.run.run_id} recorded {shown(self.run.ended_at)}.")
        return (f"It started for the tick {shown(self.tick)} but the supervisor stopped while it ran: "
                f"{run_words(self.run)}, started {shown(self.run.started_at)}, recorded {shown(self.run.ended_at)}.")


@dataclass(frozen=True, kw_only=True, slots=True)
class Overlap(Finding):
    verdict: ClassVar[Verdict] = Verdict.OVERLAP
    tick: datetime
    run: RunRecord  # the tick's skipped row (or the replaced run)
    policy: str  # overlap=
    holders: tuple[RunRecord, ...]  # the runs that held it (still running then / the replacement)

    def sentence(self) -> str:
        held = "; ".join(f"run {h.run_id} (tick {shown(h.scheduled_at)}, started {shown(h.started_at)}, "
                         f"{'still running' if h.ended_at is None else 'ended ' + shown(h.ended_at)})"
                         for h in self.holders) or "a run no longer in history"
        return (f"The tick {shown(self.tick)} was {self.run.status} by overlap={self.policy} "
                f"({self.run.reason}): held by {held}.")


@dataclass(frozen=True, kw_only=True, slots=True)
class Queued(Finding):
    """The running supervisor holds the tick queued behind a run of the job (overlap=queue)."""

    verdict: ClassVar[Verdict] = Verdict.OVERLAP
    tick: datetime
    policy: str
    holders: tuple[RunRecord, ...]  # the job's runs running now

    def sentence(self) -> str:
        held = ", ".join(f"run {h.run_id} (tick {shown(h.scheduled_at)}, started {shown(h.started_at)})"
                         for h in self.holders) or "a run that is ending"
        return f"The tick {shown(self.tick)} is queued by overlap={self.policy} behind {held}: it starts when that ends."


@dataclass(frozen=True, kw_only=True, slots=True)
class UpstreamFailed(Finding):
    verdict: ClassVar[Verdict] = Verdict.UPSTREAM_FAILED
    tick: datetime
    run: RunRecord
    rule: str  # trigger=
    upstreams: tuple[Upstream, ...]

    def sentence(self) -> str:
        ups = "; ".join(u.words() for u in self.upstreams)
        return (f"The tick {shown(self.tick)} did not run: run {self.run.run_id} is {self.run.status} by its upstreams "
                f"(after={','.join(u.job for u in self.upstreams)} trigger={self.rule}): {ups}.")


@dataclass(frozen=True, kw_only=True, slots=True)
class WaitingUpstream(Finding):
    verdict: ClassVar[Verdict] = Verdict.WAITING_UPSTREAM
    tick: datetime
    rule: str
    upstreams: tuple[Upstream, ...]
    gives_up_at: datetime

    def sentence(self) -> str:
        ups = "; ".join(u.words() for u in self.upstreams)
        return (f"The tick {shown(self.tick)} has no row yet: a run waits for its upstreams (trigger={self.rule}): {ups}. "
                f"It gives up at {shown(self.gives_up_at)}.")


@dataclass(frozen=True, kw_only=True, slots=True)
class Jitter(Finding):
    verdict: ClassVar[Verdict] = Verdict.JITTER
    tick: datetime
    jitter_s: float
    started_at: datetime | None  # None: not started yet

    def sentence(self) -> str:
        from cronplus.humanize import duration

        if self.started_at is None:
            return (f"jitter={duration(self.jitter_s)}: the tick {shown(self.tick)} starts at a random moment up to "
                    f"{duration(self.jitter_s)} after it, and has no row until it starts.")
        late = self.started_at.timestamp() - self.tick.timestamp()
        return f"jitter={duration(self.jitter_s)} delayed the start by {duration(late)} (started {shown(self.started_at)})."


@dataclass(frozen=True, kw_only=True, slots=True)
class LateStart(Finding):
    verdict: ClassVar[Verdict] = Verdict.LATE_START
    tick: datetime
    started_at: datetime
    because: str  # "overlap=queue", "after=a,b"

    def sentence(self) -> str:
        from cronplus.humanize import duration

        late = self.started_at.timestamp() - self.tick.timestamp()
        return f"It started {duration(late)} after its tick ({shown(self.started_at)}): {self.because}."


@dataclass(frozen=True, kw_only=True, slots=True)
class DstGap(Finding):
    verdict: ClassVar[Verdict] = Verdict.DST_GAP
    wall: datetime  # naive wall time asked about
    zone: str
    wildcard: bool
    fired_at: datetime | None  # fixed-time: the first instant after the gap; wildcard: None
    next: datetime | None

    def sentence(self) -> str:
        head = (f"{self.wall.strftime('%H:%M')} does not exist in {self.zone} on {self.wall.date().isoformat()} "
                "(clocks spring forward)")
        if not self.wildcard:
            return (f"{head}: cron runs a fixed-time job whose time falls in the gap once, at the first instant after it, "
                    f"{shown(self.fired_at)}.")
        return (f"{head}: cron does not run a wildcard job (its minute or hour field starts with '*') for the skipped "
                f"times; the next tick is {shown(self.next)}.")


@dataclass(frozen=True, kw_only=True, slots=True)
class DstRepeat(Finding):
    verdict: ClassVar[Verdict] = Verdict.DST_REPEAT
    wall: datetime
    zone: str
    wildcard: bool
    first: datetime  # first pass
    second: datetime  # second pass
    asked_second: bool  # the time asked about is the second pass

    def sentence(self) -> str:
        head = (f"{self.wall.strftime('%H:%M')} happens twice in {self.zone} on {self.wall.date().isoformat()} "
                f"(clocks fall back): {shown(self.first)} and {shown(self.second)}")
        if self.wildcard:
            return f"{head}; cron runs a wildcard job (minute or hour field starting with '*') in both passes."
        return f"{head}; cron runs a fixed-time job in the first pass only, so not at {shown(self.second)}."


@dataclass(frozen=True, kw_only=True, slots=True)
class CrontabChanged(Finding):
    verdict: ClassVar[Verdict] = Verdict.CRONTAB_CHANGED
    tick: datetime
    changed_at: datetime | None  # the crontab file's modification time, when after the tick
    first_run: RunRecord | None  # the job's oldest row, when after the tick
    reason: str | None = None  # a row's own word ("job removed from the crontab ...")

    def sentence(self) -> str:
        parts = []
        if self.reason:
            parts.append(self.reason)
        if self.first_run is not None:
            seen = self.first_run.scheduled_at or self.first_run.started_at or self.first_run.ended_at
            parts.append(f"this job's history starts with run {self.first_run.run_id} at {shown(seen)}, after the tick "
                         "(added or renamed later, or older rows pruned)")
        if self.changed_at is not None:
            parts.append(f"the crontab file was modified at {shown(self.changed_at)}, after the tick, so the job as "
                         "written now may not be what the supervisor had then")
        return "The crontab changed: " + "; ".join(parts) + "."


@dataclass(frozen=True, kw_only=True, slots=True)
class UserMissing(Finding):
    verdict: ClassVar[Verdict] = Verdict.USER_MISSING
    user: str
    run: RunRecord | None  # a run that failed to start for it, when history has one

    def sentence(self) -> str:
        if self.run is not None:
            return (f"The job's user '{self.user}' could not be found when it was to start: {run_words(self.run)}.")
        return f"The job's user '{self.user}' is not in the password database now: its runs cannot start."


@dataclass(frozen=True, kw_only=True, slots=True)
class SkipExit(Finding):
    verdict: ClassVar[Verdict] = Verdict.SKIP_EXIT
    tick: datetime
    run: RunRecord
    skip_exit: int

    def sentence(self) -> str:
        return (f"It ran for the tick {shown(self.tick)} and exited {self.skip_exit}, the job's skip-exit: "
                f"run {self.run.run_id} is `skipped` (nothing to do), and jobs after it are skipped too.")


@dataclass(frozen=True, kw_only=True, slots=True)
class NoRecord(Finding):
    verdict: ClassVar[Verdict] = Verdict.NO_RECORD
    tick: datetime
    last_handled: datetime | None

    def sentence(self) -> str:
        return (f"History has no row for the tick {shown(self.tick)}, although a supervisor handled this job's ticks up to "
                f"{shown(self.last_handled)}: the row may have been pruned.")


@dataclass(frozen=True, kw_only=True, slots=True)
class Reboot(Finding):
    verdict: ClassVar[Verdict] = Verdict.REBOOT
    last: RunRecord | None

    def sentence(self) -> str:
        last = f"; the last: {run_words(self.last)} at {shown(self.last.started_at or self.last.ended_at)}" if self.last else \
            "; history has no run of it"
        return f"An @reboot job has no clock times: it runs once when the supervisor first starts after a boot{last}."
