"""What a running supervisor offers, one typed method per action, and its control-socket face.

`Commands` is the facade: `status() -> SupervisorSnapshot`, `reload() -> ReloadResult`,
`trigger(job, *, force, params) -> Triggered | TriggerRefusal` (its `events()` stream the chain's
retries and run ends, the done message last: engine/chain.py). Each result is frozen and typed,
and its `to_json()` is the control socket's reply byte for byte (service/control.py states the
protocol), so the socket and the HTTP API that comes next answer alike from one place.

`pause(jobs, *, by) -> Paused | PauseRefusal` (jobs None: `--all`) and `resume(jobs)`: persisted
by the scheduler (engine/pausing.py); an unknown job refuses the whole request, naming the closest
name. `SupervisorSnapshot.running` counts the runs whose process runs (Scheduler.running(): not
those waiting for a retry, which the socket's "active" word includes).

`backfill(request) -> BackfillStarted | BackfillRefusal` (service/backfill.py): the plan is
checked and made at once; its ticks run while the socket's client reads their events.

`TABLE` is the control socket's dispatch table `{"status": ..., "reload": ..., "trigger": ...}`:
each entry takes the facade, the request and a `send`; `Commands.dispatch` answers a command not
in the table with `{"ok": false, "error": "unknown command 'X'"}`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from cronplus.engine.runstate import RunState as EngineState
from cronplus.service.control import suggest

if TYPE_CHECKING:
    from cronplus.engine.dagrun import Run
    from cronplus.engine.pausing import Pause
    from cronplus.engine.scheduler import Scheduler
    from cronplus.model import Crontab
    from cronplus.paths import Paths
    from cronplus.service.backfill import BackfillRefusal, BackfillStarted

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Supervisor(Protocol):
    """The shape of service/daemon.Daemon the facade needs (after its scheduler is built)."""

    paths: Paths
    crontab: Crontab
    crontab_missing: bool
    scheduler: Scheduler

    def reload(self) -> str | None: ...


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


@dataclass(frozen=True, kw_only=True)
class JobState:
    name: str
    schedule: str
    tz: str | None
    next_run: datetime | None  # None: @reboot, or a schedule that never fires
    paused: Pause | None = None  # its own pause or the global one (not in the socket's reply: `jobs` reads the store)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "schedule": self.schedule, "next": _iso(self.next_run)}


@dataclass(frozen=True, kw_only=True)
class RunState:
    """A run the supervisor holds: waiting (on upstreams) / queued (overlap) / delayed (jitter) /
    active (its process runs) / new / done."""

    job: str
    run_id: int | None  # None until its history row exists (waiting, queued)
    attempt: int
    state: str
    trigger: str
    scheduled_at: datetime
    started_at: float | None  # Unix seconds of the current attempt's start; None before one
    pool: str | None = None  # queued for a slot (engine/pools.py): "pool gpu" / "--max-running N"
    ahead: int | None = None  # runs before it in that line
    running: bool = False  # its process runs (not a retry's wait, which `state` shows "active" too)

    def to_json(self) -> dict[str, Any]:
        out = {"job": self.job, "run_id": self.run_id, "attempt": self.attempt, "state": self.state,
               "trigger": self.trigger, "scheduled_at": _iso(self.scheduled_at)}
        if self.pool is not None:
            out |= {"pool": self.pool, "ahead": self.ahead}
        return out


@dataclass(frozen=True, kw_only=True)
class SupervisorSnapshot:
    """What `status` answers: the crontab in effect, its jobs' next runs, the runs in flight.
    `warnings` (the crontab's lint findings) and `crontab_missing` are for the HTTP API; the
    socket's reply (`to_json`) is the one clients have read since the socket exists."""

    pid: int
    crontab: str  # absolute path
    crontab_missing: bool
    warnings: tuple[str, ...]
    jobs: tuple[JobState, ...]
    runs: tuple[RunState, ...]

    @property
    def running(self) -> int:
        """Runs whose process runs (Scheduler.running()); a retry's wait is "active" but not running."""
        return sum(1 for r in self.runs if r.running)

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "pid": self.pid, "crontab": self.crontab,
                "jobs": [j.to_json() for j in self.jobs], "runs": [r.to_json() for r in self.runs]}


@dataclass(frozen=True, kw_only=True)
class ReloadResult:
    """`error`: None when the new crontab is in effect, else one `FILE:LINE:COL: message` line
    per problem (the previous crontab kept); `jobs` counts the jobs in effect either way."""

    error: str | None
    jobs: int

    def to_json(self) -> dict[str, Any]:
        if self.error is None:
            return {"ok": True, "jobs": self.jobs}
        return {"ok": False, "error": self.error, "jobs": self.jobs}


@dataclass(frozen=True, kw_only=True)
class TriggerRefusal:
    """No run: an unknown job (with the closest name), a stopping supervisor, or after= /
    overlap= refusing (`refused`: `--force` would start it)."""

    error: str
    suggestion: str | None = None
    refused: bool = False
    invalid: bool = False  # bad parameters (runio.check_params): the request, not the job

    def to_json(self) -> dict[str, Any]:
        if self.refused:
            return {"ok": False, "error": self.error, "refused": True}
        if self.invalid:
            return {"ok": False, "error": self.error, "invalid": True}
        return {"ok": False, "error": self.error, "suggestion": self.suggestion}


@dataclass(frozen=True, kw_only=True)
class Triggered:
    run: Run

    @property
    def run_id(self) -> int | None:  # None: queued behind a run of the job (overlap=queue)
        return self.run.run_id

    @property
    def notes(self) -> list[str]:
        assert self.run.chain is not None
        return self.run.chain.notes

    def events(self) -> AsyncIterator[dict[str, Any]]:
        """The chain's events: one per retry and run end, `{"done": true, ...}` last."""
        assert self.run.chain is not None
        return self.run.chain.events()

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "run_id": self.run_id, "notes": self.notes}


@dataclass(frozen=True, kw_only=True)
class Paused:
    """Done: `jobs` the jobs named (empty: --all), `resumed` which way."""

    jobs: tuple[str, ...]
    resumed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "jobs": list(self.jobs), "all": not self.jobs, "resumed": self.resumed}


@dataclass(frozen=True, kw_only=True)
class PauseRefusal:
    """Nothing changed: an unknown job (with the closest name)."""

    error: str
    suggestion: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, "suggestion": self.suggestion}


def unknown_jobs(names: list[str], known: list[str]) -> PauseRefusal | None:
    """The refusal for the first name not a job of the crontab, with did-you-mean; None: all known."""
    for name in names:
        if name not in known:
            return PauseRefusal(error=f"no job named '{name}'", suggestion=suggest(name, known))
    return None


class Commands:
    def __init__(self, supervisor: Supervisor, *, on_change: Callable[[], None] = lambda: None) -> None:
        self.supervisor = supervisor
        self.on_change = on_change  # the systemd STATUS= line follows a trigger

    def status(self) -> SupervisorSnapshot:
        sup = self.supervisor
        sched = sup.scheduler
        lines = sched.pools.positions()  # queued runs: (line, ahead), O(queued)
        return SupervisorSnapshot(
            pid=os.getpid(), crontab=str(sup.paths.crontab.absolute()), crontab_missing=sup.crontab_missing,
            warnings=tuple(str(w) for w in sup.crontab.warnings),
            jobs=tuple(JobState(name=n, schedule=j.schedule.text, tz=j.tz, next_run=sched.next_tick.get(n),
                                paused=sched.ticker.pauses.of(n))
                       for n, j in sched.jobs.items()),
            runs=tuple(RunState(job=r.job.name, run_id=r.run_id, attempt=r.attempt, state=r.state.shown,
                                trigger=str(r.trigger), scheduled_at=r.tick, started_at=r.started_at or None,
                                pool=lines[r][0] if r in lines else None, ahead=lines[r][1] if r in lines else None,
                                running=r.state is EngineState.RUNNING)
                       for r in sched.runs),
        )

    def reload(self) -> ReloadResult:
        """Parse-then-swap now (Daemon.reload); the answer comes once READY=1 is sent again."""
        error = self.supervisor.reload()
        return ReloadResult(error=error, jobs=len(self.supervisor.crontab.jobs))

    def trigger(self, job: str, *, force: bool = False, params: object = None) -> Triggered | TriggerRefusal:
        """`params`: a JSON object of strings (runio.params_from_json), CRONPLUS_PARAM_<K> of the run."""
        from cronplus.engine.chain import TriggerRefused
        from cronplus.engine.runio import params_from_json
        from cronplus.errors import UsageError

        sched = self.supervisor.scheduler
        if job not in sched.jobs or sched.stopping:
            error = "supervisor is stopping" if sched.stopping else f"no job named '{job}'"
            return TriggerRefusal(error=error, suggestion=suggest(job, list(sched.jobs)))
        try:
            pairs = params_from_json(params)
        except UsageError as exc:
            return TriggerRefusal(error=str(exc), invalid=True)
        try:
            run = sched.trigger(job, force=force, params=pairs)
        except TriggerRefused as exc:
            return TriggerRefusal(error=str(exc), refused=True)
        assert run.chain is not None
        self.on_change()
        return Triggered(run=run)

    def pause(self, jobs: list[str] | None, *, by: str) -> Paused | PauseRefusal:
        """Pause `jobs` (None: all, a maintenance window): their ticks are not run from now on."""
        sched = self.supervisor.scheduler
        refusal = unknown_jobs(jobs or [], list(sched.jobs))
        if refusal is not None:
            return refusal
        sched.pause(jobs, by)
        self.on_change()
        return Paused(jobs=tuple(jobs or ()))

    def resume(self, jobs: list[str] | None) -> Paused | PauseRefusal:
        sched = self.supervisor.scheduler
        refusal = unknown_jobs(jobs or [], [*sched.jobs, *sched.ticker.pauses.jobs])  # one left the crontab too
        if refusal is not None:
            return refusal
        sched.ticker.resume(jobs)
        sched.wake()  # the ticker hands a resumed job's newest tick over (catch-up=last)
        self.on_change()
        return Paused(jobs=tuple(jobs or ()), resumed=True)

    def backfill(self, req: dict[str, Any]) -> BackfillStarted | BackfillRefusal:
        """A backfill's plan, checked (service/backfill.py); it runs as its events are read."""
        from cronplus.errors import UsageError
        from cronplus.service.backfill import BackfillRefusal, BackfillRequest, prepare

        try:
            return prepare(self.supervisor.scheduler, BackfillRequest.from_json(req))
        except UsageError as exc:
            return BackfillRefusal(error=str(exc), invalid=True)

    # ---- the control socket ----------------------------------------------------------------

    async def dispatch(self, req: dict[str, Any], send: Send) -> None:
        cmd = req.get("cmd")
        action = TABLE.get(cmd) if isinstance(cmd, str) else None
        if action is None:
            await send({"ok": False, "error": f"unknown command {cmd!r}"})
            return
        await action(self, req, send)

    async def _status(self, req: dict[str, Any], send: Send) -> None:
        await send(self.status().to_json())

    async def _reload(self, req: dict[str, Any], send: Send) -> None:
        await send(self.reload().to_json())

    async def _trigger(self, req: dict[str, Any], send: Send) -> None:
        """Start the run; with wait, stream its chain's events, the done message last."""
        result = self.trigger(str(req.get("job")), force=bool(req.get("force")), params=req.get("params"))
        await send(result.to_json())
        if isinstance(result, Triggered) and req.get("wait"):
            async for event in result.events():
                await send(event)


    async def _pause(self, req: dict[str, Any], send: Send) -> None:
        """{"cmd": "pause"|"resume", "jobs": [NAME...] | null (all), "by": USER}"""
        jobs = req.get("jobs")
        names = [str(j) for j in jobs] if isinstance(jobs, list) else None
        if req.get("cmd") == "resume":
            await send(self.resume(names).to_json())
        else:
            await send(self.pause(names, by=str(req.get("by") or "?")).to_json())

    async def _backfill(self, req: dict[str, Any], send: Send) -> None:
        """The plan, then its events while the client reads them (a client gone: no new tick)."""
        from cronplus.service.backfill import BackfillStarted

        result = self.backfill(req)
        await send(result.to_json())
        if isinstance(result, BackfillStarted):
            self.on_change()
            events = result.backfill.events()
            try:
                async for event in events:
                    await send(event)
            finally:
                await events.aclose()


Action = Callable[[Commands, dict[str, Any], Send], Awaitable[None]]
TABLE: dict[str, Action] = {"status": Commands._status, "reload": Commands._reload, "trigger": Commands._trigger,
                           "pause": Commands._pause, "resume": Commands._pause}
TABLE["backfill"] = Commands._backfill  # service/backfill.py
