"""The local executor: an attempt is a subprocess of the supervisor, run as cron runs it
(runner.spawn_attempt, synchronous), waited for in the loop (supervise.supervise). Its output
is <log_dir>/<job>/<attempt_id>.log on this host; its $CRONPLUS_OUTPUT file is made in
`outputs_dir` (rundir.outputs_dir under a supervisor: a runtime directory, else <state>/outputs;
beside the log directory by default: the engine reads no environment) and read
into the result (runio.py). With `excerpts` (a store shared by several hosts) the result carries
the log's capped head and tail for the run's row (outputexcerpt.py). The contract is executor.py's."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from cronplus.clock import Clock
from cronplus.engine import runio, runner
from cronplus.engine.executor import AttemptResult, AttemptSpec, OutputRef
from cronplus.engine.outputexcerpt import read_excerpt
from cronplus.engine.procgroup import untrack
from cronplus.engine.spawned import Spawned
from cronplus.engine.supervise import supervise


class LocalAttempt:
    """One attempt's process on this host (executor.Attempt)."""

    def __init__(self, spawned: Spawned, *, host: str, output: OutputRef, excerpt: bool = False) -> None:
        self.spawned = spawned
        self.host = host
        self.output = output
        self.excerpt = excerpt  # read the log's head and tail into the result (a shared store's row)
        self._cancel = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self.spawned.pid

    @property
    def started_at(self) -> float:
        return self.spawned.started

    async def result(self) -> AttemptResult:
        result = await supervise(self.spawned, cancel=self._cancel)  # with our host and output (start)
        if self.excerpt:
            found = read_excerpt(self.output.path)
            if found is None and not result.output_bytes:  # it wrote nothing: no log (made at the first byte)
                found = ("", "")
            if found is not None:
                result = dataclasses.replace(result, output_head=found[0], output_tail=found[1])
        return result

    def cancel(self) -> None:
        self._cancel.set()

    def kill(self) -> None:
        self.spawned.kill()

    def abandon(self) -> None:
        """Leave the process running, unwatched: our ends of its pipes close (its later output
        is lost) and its exit is the orphan reaper's (orphans.py) to reap; the next supervisor's recovery finds it by its
        environment (leftovers.py)."""
        if self.spawned.pid is not None:
            untrack(self.spawned.pid)
        self.spawned.close_fds()


class LocalExecutor:
    """Runs attempts as subprocesses of this supervisor (executor.Executor)."""

    def __init__(self, log_dir: Path, *, host: str, clock: Clock, outputs_dir: Path | None = None,
                 excerpts: bool = False) -> None:
        self.log_dir = Path(log_dir).absolute()
        self._root = str(self.log_dir)
        self.outputs_dir = Path(outputs_dir).absolute() if outputs_dir is not None else self.log_dir.parent / "outputs"
        runio.sweep(self.outputs_dir)  # a killed supervisor's leftovers
        self.host = host
        self.clock = clock
        self.excerpts = excerpts  # each result carries its log's head and tail (outputexcerpt.py)

    def output_for(self, job: str, attempt_id: int) -> OutputRef:
        return OutputRef(self.host, f"{self._root}/{job}/{attempt_id}.log")  # runner.log_path_for, as text

    def start(self, spec: AttemptSpec) -> LocalAttempt:
        spawned = runner.spawn_attempt(spec.job, run_id=spec.attempt_id, attempt=spec.attempt,
                                       scheduled_at=spec.scheduled_at, log_path=Path(spec.output.path),
                                       system=spec.system, clock=self.clock, params=spec.params,
                                       upstream=dict(spec.upstream), outputs_dir=self.outputs_dir)
        spawned.host, spawned.output = self.host, spec.output  # the result names them
        if spawned.failure is not None:  # it did not start: its result is ready, and names them too
            spawned.failure = dataclasses.replace(spawned.failure, host=self.host, output=spec.output)
        return LocalAttempt(spawned, host=self.host, output=spec.output, excerpt=self.excerpts)
