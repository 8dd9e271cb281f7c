"""What is shown of the jobs: the crontab's jobs joined with the history and the supervisor's
status into typed rows, for `cronplus jobs` (which renders them as a table or JSON lines) and
the supervisor's HTTP API alike. Reads only: the history through a read-only connection.

`job_rows(db, crontab, now, held)` (`db`: a store location, opened by store/open.py) -> one
`JobRow` per job of the crontab, in its order, then one per job removed from the crontab while a run of it goes on (schedule None), by name.
A row carries the last *final* run (a run in progress is not an outcome: it is in `running`,
history's `running` rows) and `waiting`, what the supervisor holds the job's run back for
("waiting on upstream", "queued for pool gpu (2 ahead)", "queued (overlap)"): only it knows
those runs, they have no row yet.
`paused`: its pause (its own, or the global one: engine/pausing.py), read from the store's kv
with the history, so it shows whether a supervisor runs or not.
`held_states(runs)` computes `held` from the supervisor's runs (job, state); `held_in_reply`
from a `status` reply of the control socket, ignoring what it does not understand. With no
history database yet, every job is listed without runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cronplus.engine.pausing import Pause, Pauses
    from cronplus.model import Crontab, JobSpec, RunRecord


@dataclass(frozen=True, kw_only=True)
class JobRow:
    job: str
    schedule: str | None  # None: removed from the crontab while a run of it goes on
    tz: str | None
    after: tuple[str, ...]
    next_run: datetime | None
    last: RunRecord | None  # the last final run
    running: tuple[RunRecord, ...]  # history's rows in progress, oldest first
    waiting: str | None  # why the supervisor holds a run back, or None
    paused: Pause | None = None  # engine/pausing.py: its own pause, else the global one

    def to_json(self) -> dict[str, Any]:
        """The object of `cronplus jobs --json` (README: job schedule tz after next_run last_run_id
        last_status last_start last_end duration_s running waiting, and paused paused_since
        paused_by paused_all; times ISO 8601 with offset)."""
        from cronplus.engine.pausing import NOT_PAUSED

        rec = self.last
        return {
            "job": self.job,
            "schedule": self.schedule,
            "tz": self.tz,
            "after": list(self.after),
            "next_run": _iso(self.next_run),
            "last_run_id": rec.run_id if rec else None,
            "last_status": str(rec.status) if rec else None,
            "last_start": _iso(rec.started_at) if rec else None,
            "last_end": _iso(rec.ended_at) if rec else None,
            "duration_s": rec.duration_s if rec else None,
            "running": [r.run_id for r in self.running],
            "waiting": self.waiting is not None,
            **(self.paused.to_json() if self.paused is not None else NOT_PAUSED),
        }


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def held_states(runs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Job -> "waiting on upstream" / "queued for pool gpu (2 ahead)" / "queued (overlap)" from the
    supervisor's (job, state) runs, in that order of precedence for runs of the same job."""
    states: dict[str, str] = {}
    for job, state in runs:
        if state == "waiting":
            states[job] = "waiting on upstream"
        elif state.startswith("queued for "):  # a slot (held_in_reply): before a queued (overlap) run of its job
            if states.get(job) != "waiting on upstream":
                states[job] = state
        elif state == "queued":
            states.setdefault(job, "queued (overlap)")
        elif state == "sensing":  # wait-for= (engine/sensors.py)
            states.setdefault(job, "waiting on its sensor")
    return states


def held_in_reply(reply: Mapping[str, Any]) -> dict[str, str]:
    """`held_states` of a control socket `status` reply (empty: no supervisor)."""
    runs = reply.get("runs", [])
    pairs = [(run["job"], _slot(run) or run["state"]) for run in (runs if isinstance(runs, list) else [])
             if isinstance(run, dict) and isinstance(run.get("job"), str) and isinstance(run.get("state"), str)]
    return held_states(pairs)


def _slot(run: Mapping[str, Any]) -> str | None:
    """A run queued for a slot (engine/pools.py): "queued for pool gpu (2 ahead)"."""
    pool, ahead = run.get("pool"), run.get("ahead")
    if not isinstance(pool, str):
        return None
    return f"queued for {pool} ({ahead} ahead)" if isinstance(ahead, int) else f"queued for {pool}"



History = tuple[dict[str, "RunRecord"], dict[str, list["RunRecord"]], "Pauses"]


def _history(db: str | os.PathLike[str], jobs: list[str]) -> History:
    """Last final run, running runs per job, the pauses; empty when there is no history yet."""
    from contextlib import closing

    from cronplus.engine.pausing import Pauses
    from cronplus.store.open import open_reader
    from cronplus.store.readhistory import NoHistoryError

    try:
        hist = open_reader(db)
    except NoHistoryError:
        return {}, {}, Pauses()
    with closing(hist):
        last: dict[str, RunRecord] = {}
        for name in jobs:
            record = hist.last_final_run(name)  # "last status" is an outcome; runs in progress are shown apart
            if record is not None:
                last[name] = record
        running: dict[str, list[RunRecord]] = {}
        for record in hist.running():
            running.setdefault(record.job, []).append(record)
        return last, running, Pauses.read(hist)


def job_rows(db: str | os.PathLike[str], crontab: Crontab, now: datetime, held: Mapping[str, str],
             next_runs: Mapping[str, datetime | None] | None = None) -> list[JobRow]:
    """`next_runs`: the supervisor's own next ticks (its snapshot), used instead of computing
    each job's next fire time from `now` (a thousand croniter walks are most of the time)."""
    from cronplus.service import installer

    def next_run(job: JobSpec) -> datetime | None:
        if next_runs is not None and job.name in next_runs:
            return next_runs[job.name]
        return installer.next_run(job, now)

    last, running, pauses = _history(db, [j.name for j in crontab.jobs])
    rows = [JobRow(job=job.name, schedule=job.schedule.text, tz=job.tz, after=tuple(job.options.after),
                   next_run=next_run(job), last=last.get(job.name),
                   running=tuple(running.get(job.name, [])), waiting=held.get(job.name), paused=pauses.of(job.name))
            for job in crontab.jobs]
    listed = {job.name for job in crontab.jobs}
    for name, runs in sorted(running.items()):
        if name not in listed:  # removed from the crontab while it ran: it still finishes
            rows.append(JobRow(job=name, schedule=None, tz=None, after=(), next_run=None, last=None,
                               running=tuple(runs), waiting=None))
    return rows
