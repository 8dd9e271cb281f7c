"""The executor seam: where one attempt of a run is carried out. The scheduler talks only to an
`Executor`; the local subprocess executor (local.py) is the one there is today, a Celery
executor (`queue=`, the jobs' own hosts) plugs in behind the same Protocol.

Contract (every executor):

* `output_for(job, attempt_id) -> OutputRef`: where the attempt's output will be, known before
  it starts, so the history row holds it from its first write. A reference (host + path), never
  a bare local path: the reader (`cronplus output`, the web page) asks that host for it.
* `start(spec) -> Attempt`: synchronous, and returns once the attempt is under way (locally:
  the shell is exec'd), so a tick's starts stay back to back, as a bare loop's. Never raises for
  the job's sake: an attempt that cannot start is an `Attempt` whose result says why (`error`).
* `Attempt.result()`: awaited once; the attempt's `AttemptResult` (status, times on the
  scheduler's clock, the host it ran on, its output reference). The executor enforces the job's
  `timeout` (terminate: SIGTERM to the group, SIGKILL after `kill_grace`).
* `Attempt.cancel()`: stop it the same way (overlap=replace, shutdown's end of grace); the
  awaited result then says `cancelled`. Before `result()` is awaited it takes effect at once.
* `Attempt.kill()`: at once, synchronously (the supervisor failed between start and result).
* `Attempt.abandon()`: stop watching it and leave it running (a supervisor that exits without
  stopping its jobs); its row stays `running` and the next supervisor's recovery settles it.

Imports nothing of the engine: the scheduler, the local executor and the next ones import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cronplus.model import JobSpec


@dataclass(frozen=True, slots=True)
class OutputRef:
    """Where an attempt's output is: a path on a host (the host that ran it)."""

    host: str
    path: str

    def __str__(self) -> str:  # what history's log_path column has always held
        return self.path


@dataclass(frozen=True, kw_only=True, slots=True)
class AttemptSpec:
    """What to run: one attempt of one job (cron's environment is built from it)."""

    job: JobSpec
    attempt_id: int  # its history row (CRONPLUS_RUN_ID, history's run_id)
    attempt: int  # 1 for the first, +1 per retry
    scheduled_at: datetime  # the run's tick
    output: OutputRef
    system: bool = False  # a system crontab: the job's user field names who runs it
    params: tuple[tuple[str, str], ...] = ()  # a manual run's --param K=V (runio.py)
    upstream: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # (after= job, its outputs) of the tick


@dataclass(frozen=True, kw_only=True, slots=True)
class AttemptResult:
    exit_code: int | None  # the shell's status; 128+n when killed by signal n; None on spawn error
    signal: int | None  # the signal that killed the shell, if any
    timed_out: bool
    cancelled: bool
    started_at: float
    ended_at: float
    pid: int | None  # on `host`
    output_bytes: int  # everything the job wrote, kept or not
    truncated: bool  # some output was dropped by max_log_size
    error: str | None = None  # spawn failure text; exit_code is None then
    killed: bool = False  # timed out or cancelled, and the grace ran out: SIGKILL was needed
    output_error: str | None = None  # "output lost[ after N bytes]: <why>: <log path>" (full log disk)
    host: str | None = None  # where it ran
    output: OutputRef | None = None  # where its output is
    outputs: tuple[tuple[str, str], ...] = ()  # what it wrote to $CRONPLUS_OUTPUT (runio.py)
    outputs_note: str | None = None  # for its reason: the outputs file was cut, lines skipped
    limit_reason: str | None = None  # killed by a resource limit: "memory limit 512M reached"
    peak_memory_bytes: int | None = None  # its processes' peak memory (a run cgroup's memory.peak)
    cpu_s: float | None = None  # CPU seconds its processes used (a run cgroup's cpu.stat)
    output_head: str | None = None  # the capped start of its output, for its row (outputexcerpt.py; shared stores)
    output_tail: str | None = None  # ... and its end
    interrupted: bool = False  # its host was lost under it (a worker killed): `interrupted`, then retries


class Attempt(Protocol):
    """One started attempt (see the module docstring)."""

    @property
    def pid(self) -> int | None: ...  # for history's pid column; None when no process of ours runs it

    @property
    def started_at(self) -> float: ...  # on the scheduler's clock, when it was started

    async def result(self) -> AttemptResult: ...
    def cancel(self) -> None: ...
    def kill(self) -> None: ...
    def abandon(self) -> None: ...


class Executor(Protocol):
    """Carries out attempts (see the module docstring)."""

    host: str

    def output_for(self, job: str, attempt_id: int) -> OutputRef: ...
    def start(self, spec: AttemptSpec) -> Attempt: ...
