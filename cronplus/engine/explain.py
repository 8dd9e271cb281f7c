"""Why a job did or did not run at a time (`cronplus why`, the job's web page): the job, the time
and a store reader in, typed findings out (engine/findings.py). Reads history, never writes it,
and does no other I/O: what the caller knows of the world (now, the crontab file's modification
time, whether the job's user exists, the runs a running supervisor holds) comes in a `World`.

The reasoning, in order (the first finding is the headline; the others add evidence):

1. `@reboot` jobs have no clock times (Reboot).
2. The wall time in the job's zone: a time a spring-forward skips (DstGap: a fixed-time job ran
   once at the first instant after the gap, whose tick is then explained; a wildcard job did not
   run), or one a fall-back repeats (DstRepeat: a fixed-time job runs in the first pass only).
3. The tick: the schedule's last tick at or before the time, if it lies in the same minute; else
   NotDue with the previous and next ticks, and cron's day-field rule spelled out when the date
   is not one of the schedule's days (timeline.DayRule). A tick after `now` is NotYet.
4. The tick's row, as the scheduler wrote it (the newest final row with that `scheduled_at`, or
   a running one): `missed` -> SupervisorDown (the restart that recorded the gap, the gap's
   ticks, the last run before it); `skipped` by overlap -> Overlap (the run that held it, by the
   id in the row's reason); `upstream_failed` or skipped by the trigger rule -> UpstreamFailed
   (each upstream's run for the tick, as dagrun.upstream_states picks it); `interrupted`;
   a spawn failure for a missing user -> UserMissing; skip-exit; else Ran/Running, with Jitter or
   LateStart when it started well after its tick.
5. No row: what the running supervisor holds (World.held: queued behind a run -> Queued,
   waiting on upstreams -> WaitingUpstream, delayed by jitter -> Jitter); a downstream still
   within its wait or a jittered start still to come (from the options, when no supervisor
   answered); no supervisor since the last tick handled (SupervisorDown from kv
   `scheduler.tick.<job>`, engine/ticks.py), the job's history starting after the tick
   (CrontabChanged), else NoRecord (pruned).
6. Notes: the crontab file changed after the tick (CrontabChanged); system mode and the job's
   user missing now (UserMissing).

   A job paused now since before the tick (engine/pausing.py, the store's kv) -> Paused, before
   the downtime check: the ticker stepped over its ticks (no row). Only the pause in effect is
   kept: a tick stepped over by a pause since lifted reads as handled without a row.

A run queued for a pool slot (engine/pools.py) is PoolQueued: in step 5 when the supervisor
holds it (`Held.pool`, with how many are ahead), in step 4 as evidence after the headline when
its row's queued_s says it waited LATE_S or more (queued_s also counts an overlap=queue wait: for
a job with overlap=queue and no pool= it is read as that, the LateStart below).

What the store does not keep is not guessed: supervisor start and reload times are not recorded
(only the ticks a restart found missed, and the crontab file's own modification time).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from cronplus.crontab import timeline
from cronplus.crontab.schedule import next_fire, zone
from cronplus.engine import findings as f
from cronplus.engine import pipelinefindings as pf
from cronplus.engine.findings import Finding, Verdict
from cronplus.model import JobSpec, RunRecord
from cronplus.status import Overlap, RunStatus
from cronplus.store.api import RunReader

SAME_TICK_S = 0.001  # scheduled_at is stored as REAL seconds
LATE_S = 2.0  # a start later than this after its tick is worth a word
_HELD_BY = re.compile(r"previous run ([\d, ?]+) still running")
_REPLACED_BY = re.compile(r"replaced by run (\d+)")


@dataclass(frozen=True, kw_only=True, slots=True)
class Held:
    """A run the running supervisor holds without a row yet (its control socket's `status`):
    `waiting` on upstreams, `queued` by overlap=queue, `delayed` by jitter."""

    job: str
    tick: datetime
    state: str
    pool: str | None = None  # queued for a slot: "pool gpu" / "--max-running N" (engine/pools.py)
    ahead: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class World:
    """What the caller knows beyond history: the present, the crontab file, the passwd database,
    the running supervisor's held runs (None: no supervisor answered)."""

    now: datetime
    crontab_mtime: datetime | None = None
    system: bool = False  # system mode: jobs run as their user field
    user_exists: Callable[[str], bool] | None = None  # system mode: is the user in passwd now
    held: tuple[Held, ...] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Explanation:
    job: str
    at: datetime
    tick: datetime | None  # the tick explained, if the time was one (or a DST gap's catch-up)
    findings: tuple[Finding, ...]

    @property
    def verdict(self) -> Verdict:
        return self.findings[0].verdict

    def sentences(self) -> list[str]:
        return [finding.sentence() for finding in self.findings]

    def to_json(self) -> dict[str, object]:
        return {"job": self.job, "at": f.iso(self.at), "tick": f.iso(self.tick), "verdict": str(self.verdict),
                "findings": [finding.to_json() for finding in self.findings]}


def last_tick(job: JobSpec, now: datetime) -> datetime | None:
    """The job's last expected tick at or before `now` (what `why` explains by default)."""
    if job.schedule.reboot:
        return None
    return timeline.previous_fire(job.schedule, now, job.tz)


def explain(job: JobSpec, reader: RunReader, world: World, *, at: datetime | None = None,
            wall: datetime | None = None) -> Explanation:
    """Why `job` did or did not run at the aware instant `at` (default: its last tick at or
    before world.now). `wall`: the naive wall time the user named, when they named one (a time
    in a DST gap has no instant of its own)."""
    tzi = zone(job.tz)
    now = world.now.astimezone(tzi)
    if job.schedule.reboot:
        last = reader.latest_runs(job.name, 1)
        return _answer(job, (at or now).astimezone(tzi), None, [f.Reboot(last=last[0] if last else None)], tzi)
    at = (at or last_tick(job, now) or now).astimezone(UTC).astimezone(tzi)  # via UTC: a gap wall time becomes real
    found, tick = _dst(job, tzi, at, wall)
    if found and tick is None:
        return _answer(job, at, None, found, tzi)
    if tick is None:
        previous = timeline.previous_fire(job.schedule, at, job.tz)
        if previous is None or at.timestamp() - previous.timestamp() >= 60:
            gap = wall if wall is not None and timeline.wall_kind(wall, job.tz).kind == "gap" else None
            return _answer(job, at, None, [*found, _not_due(job, tzi, at, previous, gap)], tzi)
        tick = previous
    tick = tick.astimezone(tzi)
    if tick.timestamp() > now.timestamp():
        found.append(f.NotYet(tick=tick, now=now))
    else:
        found = _notes(job, world, tzi, tick, found + _tick_findings(job, reader, world, tzi, tick))
    return _answer(job, at, tick, found, tzi)


def _answer(job: JobSpec, at: datetime, tick: datetime | None, found: list[Finding], tzi: tzinfo) -> Explanation:
    return Explanation(job=job.name, at=at, tick=tick, findings=tuple(_zoned(x, tzi) for x in found))


def _zoned(finding: Finding, tzi: tzinfo) -> Finding:
    """The finding with its runs' times in the job's zone (history gives them in local time),
    so that every time of an answer reads as the schedule does."""
    def run(record: RunRecord) -> RunRecord:
        return dataclasses.replace(record, scheduled_at=_in(record.scheduled_at, tzi),
                                   started_at=_in(record.started_at, tzi), ended_at=_in(record.ended_at, tzi))

    def value(v: object) -> object:
        if isinstance(v, RunRecord):
            return run(v)
        if isinstance(v, f.Upstream):
            return dataclasses.replace(v, run=run(v.run) if v.run is not None else None)
        if isinstance(v, tuple):
            return tuple(value(x) for x in v)
        return v

    changes = {field.name: value(getattr(finding, field.name)) for field in dataclasses.fields(finding)}
    return dataclasses.replace(finding, **changes)


def _dst(job: JobSpec, tzi: tzinfo, at: datetime, wall: datetime | None) -> tuple[list[Finding], datetime | None]:
    """DST findings for the wall time asked about, and the tick to explain when DST decides it."""
    local = wall if wall is not None else at.astimezone(tzi).replace(tzinfo=None)
    kind = timeline.wall_kind(local, job.tz)
    if kind.kind == "normal" or not timeline.matches_minute(job.schedule, local):
        return [], None
    name = job.tz or str(tzi)
    wildcard = job.schedule.is_wildcard
    assert kind.second is not None
    if kind.kind == "gap":
        after = _after_gap(job, kind)
        fired = None if wildcard else after
        gap = f.DstGap(wall=local, zone=name, wildcard=wildcard, fired_at=_in(fired, tzi), next=_in(after, tzi))
        return [gap], fired
    asked_second = wall is None and at.astimezone(tzi).fold == 1
    repeat = f.DstRepeat(wall=local, zone=name, wildcard=wildcard, first=kind.first, second=kind.second.astimezone(tzi),
                         asked_second=asked_second)
    if asked_second and not wildcard:
        return [repeat], kind.first  # what ran is the first pass
    return [repeat], (kind.second if asked_second else kind.first)


def _after_gap(job: JobSpec, kind: timeline.WallKind) -> datetime | None:
    """The job's first fire at or after the end of the gap: a fixed-time job's catch-up of the
    skipped times (at the arrival instant), a wildcard job's next ordinary tick.
    `kind.second` reads the gap's wall time with the offset after it: an instant before the gap."""
    assert kind.second is not None
    after_offset = kind.second.utcoffset()
    before = kind.second.astimezone(UTC) - timedelta(seconds=1)  # in UTC: wall arithmetic would drop the fold
    tick = next_fire(job.schedule, before, job.tz)
    while tick is not None and tick.utcoffset() != after_offset:
        tick = next_fire(job.schedule, tick, job.tz)
    return tick


def _in(value: datetime | None, tzi: tzinfo) -> datetime | None:
    return value.astimezone(tzi) if value is not None else None


def _not_due(job: JobSpec, tzi: tzinfo, at: datetime, previous: datetime | None, gap: datetime | None) -> Finding:
    rule = timeline.day_rule(job.schedule, at.date())
    return f.NotDue(at=at, schedule=job.schedule.text, previous=_in(previous, tzi),
                    next=_in(next_fire(job.schedule, at, job.tz), tzi), day=None if rule.runs else rule, gap_wall=gap)


def _row(reader: RunReader, name: str, tick: datetime) -> RunRecord | None:
    """The tick's row: a running attempt, else the newest final one with that scheduled_at."""
    stamp = tick.timestamp()
    for run in reader.running():
        if run.job == name and run.scheduled_at is not None and abs(run.scheduled_at.timestamp() - stamp) < SAME_TICK_S:
            return run
    final = reader.last_final_run(name, at_or_before=stamp + SAME_TICK_S)
    if final is not None and final.scheduled_at is not None and abs(final.scheduled_at.timestamp() - stamp) < SAME_TICK_S:
        return final
    return None


def _tick_findings(job: JobSpec, reader: RunReader, world: World, tzi: tzinfo, tick: datetime) -> list[Finding]:
    run = _row(reader, job.name, tick)
    if run is None:
        return _no_row(job, reader, world, tzi, tick)
    reason = run.reason or ""
    if run.status is RunStatus.MISSED:
        return [_missed(job, reader, tzi, tick, run)]
    if run.status is RunStatus.INTERRUPTED:
        return [f.Interrupted(tick=tick, run=run)]
    if run.status is RunStatus.UPSTREAM_FAILED or (run.status is RunStatus.SKIPPED and reason.startswith("upstream ")):
        return [f.UpstreamFailed(tick=tick, run=run, rule=str(job.options.trigger),
                                 upstreams=_upstreams(job, reader, tick, running=False))]
    if run.status is RunStatus.SKIPPED and run.started_at is None:
        if _HELD_BY.search(reason) or _REPLACED_BY.search(reason):
            return [f.Overlap(tick=tick, run=run, policy=str(job.options.overlap), holders=_holders(reader, reason))]
        if "removed from the crontab" in reason:
            return [f.CrontabChanged(tick=tick, changed_at=None, first_run=None, reason=f"the tick's row says: {reason}")]
        if reason.endswith("before it could start"):  # runstate STOP: a run the stop kept from starting
            return [f.Interrupted(tick=tick, run=run)]
    if run.status is RunStatus.FAILED and run.exit_code is None and "no such user" in reason and job.user:
        return [f.UserMissing(user=job.user, run=run)]
    if run.status is RunStatus.SKIPPED and run.exit_code == job.options.skip_exit:
        head: Finding = f.SkipExit(tick=tick, run=run, skip_exit=job.options.skip_exit)
    elif run.status is RunStatus.FAILED and _REPLACED_BY.search(reason):
        head = f.Overlap(tick=tick, run=run, policy=str(job.options.overlap), holders=_holders(reader, reason))
    elif run.status is RunStatus.RUNNING:
        head = f.Running(tick=tick, run=run)
    else:
        head = f.Ran(tick=tick, run=run)
    return [head, *_late(job, reader, tick, run)]


def _late(job: JobSpec, reader: RunReader, tick: datetime, run: RunRecord) -> list[Finding]:
    """Why a run started well after its tick: jitter=, waiting for after=, or overlap=queue."""
    late = run.started_at.timestamp() - tick.timestamp() if run.started_at is not None else 0.0
    if run.started_at is None or run.attempt > 1 or late < LATE_S:
        return []
    out: list[Finding] = []
    if run.queued_s is not None and run.queued_s >= LATE_S and (job.options.pool or job.options.overlap is not Overlap.QUEUE):
        pool = f"pool {job.options.pool}" if job.options.pool else "--max-running"
        out.append(pf.PoolQueued(tick=tick, pool=pool, waited_s=run.queued_s))
    if job.options.jitter > 0 and late <= job.options.jitter + LATE_S:
        out.append(f.Jitter(tick=tick, jitter_s=job.options.jitter, started_at=run.started_at))
    elif job.options.after:
        ups = "; ".join(u.words() for u in _upstreams(job, reader, tick, running=False))
        out.append(f.LateStart(tick=tick, started_at=run.started_at,
                               because=f"it waited for after={','.join(job.options.after)}: {ups}"))
    elif job.options.overlap is Overlap.QUEUE:
        out.append(f.LateStart(tick=tick, started_at=run.started_at,
                               because="overlap=queue: it waited for the job's previous run to end"))
    return out


def _holders(reader: RunReader, reason: str) -> tuple[RunRecord, ...]:
    """The runs a skipped or replaced row's reason names (scheduler.py writes their ids there)."""
    match = _HELD_BY.search(reason) or _REPLACED_BY.search(reason)
    ids = [int(x) for x in re.findall(r"\d+", match.group(1))] if match else []
    return tuple(reader.runs_by_id(ids)) if ids else ()


def _upstreams(job: JobSpec, reader: RunReader, tick: datetime, *, running: bool) -> tuple[f.Upstream, ...]:
    """Each after= job's run for the tick, as dagrun.upstream_states picks it (the newest final
    run at or before the tick); with `running`, a run of it in flight at or before the tick."""
    stamp = tick.timestamp()
    in_flight = {r.job for r in reader.running() if r.scheduled_at is not None and r.scheduled_at.timestamp() <= stamp}
    out = []
    for name in job.options.after:
        if running and name in in_flight:
            out.append(f.Upstream(job=name, run=None, running=True))
        else:
            out.append(f.Upstream(job=name, run=reader.last_final_run(name, at_or_before=stamp)))
    return tuple(out)


def _missed(job: JobSpec, reader: RunReader, tzi: tzinfo, tick: datetime, run: RunRecord) -> Finding:
    back = run.ended_at
    gap: list[RunRecord] = []
    if back is not None:
        stamp = back.timestamp()
        gap = [r for r in reader.query(jobs=[job.name], statuses=[str(RunStatus.MISSED)], since=stamp - SAME_TICK_S,
                                       until=stamp + SAME_TICK_S) if r.scheduled_at is not None]
    ticks = sorted(r.scheduled_at for r in gap if r.scheduled_at is not None) or [tick]
    before = reader.query(until=ticks[0].timestamp(), limit=1)
    return f.SupervisorDown(tick=tick, run=run, back_at=_in(back, tzi), missed=max(len(gap), 1),
                            first_missed=_in(ticks[0], tzi), last_missed=_in(ticks[-1], tzi),
                            last_before=before[-1] if before else None, last_handled=None)


def _last_handled(reader: RunReader, name: str) -> float | None:
    """The last tick a supervisor handled for the job (engine/ticks.py; a job first seen gets the
    instant it was first scheduled)."""
    from cronplus.engine.ticks import LastTicks

    return LastTicks(reader).get(name)


def _first_run(reader: RunReader, name: str) -> RunRecord | None:
    rows = reader.iter_query(jobs=[name], limit=1)
    try:
        return next(rows, None)
    finally:
        rows.close()  # type: ignore[attr-defined]  # a generator: release the cursor


def _sensor_deadline(reader: RunReader, job: JobSpec, tick: datetime) -> datetime | None:
    """The deadline of the tick's sensor wait that the supervisor stored (engine/sensors.py)."""
    import json

    if not job.options.wait_for:
        return None
    try:
        entry = json.loads(reader.kv_get(f"sensor.{job.name}") or "{}").get(repr(tick.timestamp()))
        return datetime.fromtimestamp(float(entry[1]), UTC) if entry else None
    except (ValueError, TypeError, IndexError, AttributeError):
        return None


def _no_row(job: JobSpec, reader: RunReader, world: World, tzi: tzinfo, tick: datetime) -> list[Finding]:
    from cronplus.engine.dagrun import wait_deadline

    now = world.now
    mine = next((h for h in world.held or () if h.job == job.name
                 and abs(h.tick.timestamp() - tick.timestamp()) < SAME_TICK_S), None)
    held = mine.state if mine is not None else None
    if mine is not None and mine.pool is not None:
        return [pf.PoolQueued(tick=tick, pool=mine.pool, ahead=mine.ahead)]
    if held == "queued":
        active = tuple(r for r in reader.running() if r.job == job.name)
        return [f.Queued(tick=tick, policy=str(job.options.overlap), holders=active)]
    if held == "delayed":
        return [f.Jitter(tick=tick, jitter_s=job.options.jitter, started_at=None)]
    from cronplus.engine.pausing import Pauses

    pause = Pauses.read(reader).of(job.name)
    if pause is not None and pause.since <= tick.timestamp() + SAME_TICK_S:
        return [pf.Paused(tick=tick, since=datetime.fromtimestamp(pause.since, UTC).astimezone(tzi), by=pause.by,
                         everything=pause.everything)]
    deadline = _sensor_deadline(reader, job, tick)
    if held == "sensing" or (world.held is None and deadline is not None):  # a stored wait: resumed at start
        return [pf.WaitingSensor(tick=tick, command=job.options.wait_for or "", gives_up_at=_in(deadline, tzi))]
    handled = _last_handled(reader, job.name)
    pending = handled is None or handled < tick.timestamp() - SAME_TICK_S
    guess = world.held is None  # no supervisor answered: what one would hold is read from the options
    if held == "waiting" or (guess and pending and job.options.after
                             and now.timestamp() < wait_deadline(job, tick).timestamp()):
        ups = _upstreams(job, reader, tick, running=True)
        return [f.WaitingUpstream(tick=tick, rule=str(job.options.trigger), upstreams=ups,
                                  gives_up_at=wait_deadline(job, tick).astimezone(tzi))]
    if guess and pending and job.options.jitter > 0 and now.timestamp() - tick.timestamp() <= job.options.jitter:
        return [f.Jitter(tick=tick, jitter_s=job.options.jitter, started_at=None)]
    first = _first_run(reader, job.name)
    if pending:  # (also: no supervisor ever scheduled the job)
        before = reader.query(until=tick.timestamp(), limit=1)
        last = datetime.fromtimestamp(handled, UTC).astimezone(tzi) if handled is not None else None
        return [f.SupervisorDown(tick=tick, run=None, back_at=None, missed=0, first_missed=None, last_missed=None,
                                 last_before=before[-1] if before else None, last_handled=last,
                                 supervisor_running=world.held is not None)]
    if first is not None and _when(first).timestamp() > tick.timestamp():
        return [f.CrontabChanged(tick=tick, changed_at=None, first_run=first)]
    if first is None:
        return [f.CrontabChanged(tick=tick, changed_at=None, first_run=None,
                                 reason="no run of this job is in history, and a supervisor first scheduled it after this tick")]
    assert handled is not None
    return [f.NoRecord(tick=tick, last_handled=datetime.fromtimestamp(handled, UTC).astimezone(tzi))]


def _when(run: RunRecord) -> datetime:
    when = run.scheduled_at or run.started_at or run.ended_at
    assert when is not None
    return when


def _notes(job: JobSpec, world: World, tzi: tzinfo, tick: datetime, found: list[Finding]) -> list[Finding]:
    """The findings with what the world adds: the crontab file changed after the tick (merged
    into a CrontabChanged already found), the job's user missing now (system mode)."""
    out = list(found)
    changed = world.crontab_mtime
    if changed is not None and changed.timestamp() > tick.timestamp():
        known = [(i, x) for i, x in enumerate(out) if isinstance(x, f.CrontabChanged)]
        if known:
            i, finding = known[0]
            out[i] = dataclasses.replace(finding, changed_at=changed.astimezone(tzi))
        else:
            out.append(f.CrontabChanged(tick=tick, changed_at=changed.astimezone(tzi), first_run=None))
    if (world.system and job.user and world.user_exists is not None and not world.user_exists(job.user)
            and not any(isinstance(x, f.UserMissing) for x in out)):
        out.append(f.UserMissing(user=job.user, run=None))
    return out
