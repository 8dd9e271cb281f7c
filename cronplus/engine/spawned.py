"""A local attempt's process once started (runner.spawn_attempt) and until it is waited for
(supervise.supervise): the shell, the fds of its output and stdin, what its processes carry in
their environment, and the attempt's time on the injected clock. Shared by the spawning half
(runner.py) and the waiting half (supervise.py) so that neither imports the other's internals."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cronplus.engine.cgroup import RunCgroup
from cronplus.engine.executor import AttemptResult, OutputRef
from cronplus.engine.output import StdinFeeder, open_log
from cronplus.engine.procgroup import kill_and_reap
from cronplus.engine.runio import OutputFile
from cronplus.engine.runprocs import RunTag
from cronplus.model import JobSpec


@dataclass(slots=True, eq=False)
class Spawned:
    """An attempt whose process was started (or failed to start), not yet supervised.

    `spawn_attempt` does everything up to the exec synchronously, so a scheduler can start a
    whole tick's jobs back to back, as a bare loop would, and supervise them afterwards."""

    job: JobSpec
    started: float  # the injected clock's time() at the spawn
    mono: float  # time.monotonic() at the spawn
    failure: AttemptResult | None = None  # set when nothing runs; `supervise` returns it
    proc: subprocess.Popen[bytes] | None = None
    log_fd: int = -1  # -1 with log_path set: the log is created at its first byte (open_log)
    read_fd: int = -1
    feeder: StdinFeeder | None = None
    log_path: Path | None = None
    output_lost: str | None = None  # the log could not even be created: output goes to /dev/null
    tag: RunTag | None = None  # what its processes carry in their environment (runprocs.py)
    host: str | None = None  # for the result: where it runs (the local executor's host)
    output: OutputRef | None = None  # for the result: its output reference
    outputs: OutputFile | None = None  # its $CRONPLUS_OUTPUT (runio.py), read once it ended
    cgroup: RunCgroup | None = None  # a limited run's own cgroup v2 (limits.py, cgroup.py)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def now(self) -> float:
        """The attempt's "now" on the injected clock: its start plus the real time elapsed since.

        A record's times are the clock's (a FakeClock's or a shifted clock's), so started_at and
        ended_at never mix two clocks; the elapsed part is time.monotonic(), not the clock's, so a
        duration is the time the job really took even under a FakeClock that stands still while a
        real process runs, and a wall-clock step (NTP, `date -s`) during a run changes neither
        the duration nor its sign. ended_at = started_at + duration always holds."""
        return self.started + (time.monotonic() - self.mono)

    def open_log(self) -> int:
        """The log's fd, the log created now if it was not yet (OSError when it cannot be)."""
        if self.log_fd < 0:
            assert self.log_path is not None
            self.log_fd = open_log(self.log_path)
        return self.log_fd

    def kill(self) -> None:
        """Never supervised (the supervisor failed in between): kill the group, reap the shell,
        close our fds. Idempotent."""
        if self.proc is not None and self.proc.returncode is None:
            if self.cgroup is not None:
                self.cgroup.kill()
            kill_and_reap(self.proc.pid, self.tag)
            self.proc.returncode = -9
        self.close_fds()
        self.release_cgroup()

    def release_cgroup(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None

    def close_fds(self) -> None:
        for fd in (self.read_fd, self.log_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.read_fd = self.log_fd = -1
        if self.feeder is not None:
            self.feeder.close()
        if self.outputs is not None:  # never read (killed, abandoned): the file goes all the same
            self.outputs.remove()


def failure(spawned: Spawned, error: str) -> AttemptResult:
    """The result of an attempt that did not run (or whose exit status is lost)."""
    return AttemptResult(
        exit_code=None,
        signal=None,
        timed_out=False,
        cancelled=False,
        started_at=spawned.started,
        ended_at=spawned.now(),
        pid=None,
        output_bytes=0,
        truncated=False,
        error=error,
        host=spawned.host,
        output=spawned.output,
    )


def why(exc: OSError) -> str:
    """Kernel wording, lower case as it reads inside a reason: "no space left on device"."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]
