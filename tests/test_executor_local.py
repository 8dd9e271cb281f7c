"""The local executor against executor.py's contract, with real processes: start is
synchronous, the result names the host and the output reference, cancel terminates the group
(also before the result is awaited), kill is immediate, abandon leaves the process running."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from cronplus.clock import FakeClock
from cronplus.engine.executor import AttemptSpec, Executor, OutputRef
from cronplus.engine.local import LocalExecutor
from tests.test_runner import TICK, is_dead, make_job, our_zombies
from tests.waiting import alive, wait_until


def executor(tmp_path: Path) -> LocalExecutor:
    return LocalExecutor(tmp_path / "logs", host="here", clock=FakeClock(1_000_000.0))


def spec(ex: Executor, command: str, attempt_id: int = 7, **options: object) -> AttemptSpec:
    job = make_job(command, **options)
    return AttemptSpec(job=job, attempt_id=attempt_id, attempt=1, scheduled_at=TICK, output=ex.output_for(job.name, attempt_id))


def test_the_output_is_a_reference_on_this_host(tmp_path: Path) -> None:
    ex = executor(tmp_path)
    assert ex.output_for("backup", 12) == OutputRef("here", str(tmp_path / "logs" / "backup" / "12.log"))
    assert str(ex.output_for("backup", 12)) == str(tmp_path / "logs" / "backup" / "12.log")


def test_start_runs_the_job_before_anything_awaits_it_and_the_result_says_where(tmp_path: Path) -> None:
    ex = executor(tmp_path)
    marker = tmp_path / "ran"
    attempt_spec = spec(ex, f"echo out; touch {marker}")
    attempt = ex.start(attempt_spec)
    assert attempt.pid is not None
    assert wait_until(marker.exists, what="the job's marker")  # no event loop has run yet
    result = asyncio.run(attempt.result())
    assert (result.exit_code, result.pid, result.host, result.output) == (0, attempt.pid, "here", attempt_spec.output)
    assert result.started_at == 1_000_000.0  # the executor's clock
    assert Path(attempt_spec.output.path).read_text() == "out\n"
    assert our_zombies() == []


def test_an_attempt_that_cannot_start_says_why_and_where(tmp_path: Path) -> None:
    ex = executor(tmp_path)
    attempt_spec = spec(ex, "true", env=(("SHELL", str(tmp_path / "no-such-shell")),))
    attempt = ex.start(attempt_spec)
    assert attempt.pid is None
    result = asyncio.run(attempt.result())
    assert result.error and "no-such-shell" in result.error
    assert (result.host, result.output) == ("here", attempt_spec.output)


def test_cancel_before_the_result_is_awaited_terminates_the_group_at_once(tmp_path: Path) -> None:
    ex = executor(tmp_path)
    attempt = ex.start(spec(ex, "sleep 30", kill_grace=5.0))
    attempt.cancel()
    result = asyncio.run(asyncio.wait_for(attempt.result(), 10))
    assert result.cancelled and not result.timed_out and result.signal == signal.SIGTERM
    assert attempt.pid is not None and is_dead(attempt.pid)


def test_cancel_while_awaited_terminates_the_group(tmp_path: Path) -> None:
    ex = executor(tmp_path)
    started = tmp_path / "started"
    attempt = ex.start(spec(ex, f"touch {started}; sleep 30", kill_grace=5.0))

    async def main() -> None:
        waiting = asyncio.ensure_future(attempt.result())
        while not started.exists():
            await asyncio.sleep(0.01)
        attempt.cancel()
        result = await asyncio.wait_for(waiting, 10)
        assert result.cancelled and result.signal == signal.SIGTERM

    asyncio.run(main())


def test_kill_stops_it_at_once_and_reaps_it(tmp_path: Path) -> None:
    ex = executor(tmp_path)
    attempt = ex.start(spec(ex, "sleep 30"))
    attempt.kill()
    assert attempt.pid is not None and is_dead(attempt.pid)
    assert our_zombies() == []


def test_abandon_leaves_the_job_running_and_stops_watching_it(tmp_path: Path) -> None:
    ex = executor(tmp_path)
    fds_before = set(os.listdir("/proc/self/fd"))
    attempt = ex.start(spec(ex, "sleep 30"))
    pid = attempt.pid
    assert pid is not None
    attempt.abandon()
    try:
        assert alive(pid)
        assert set(os.listdir("/proc/self/fd")) <= fds_before | {str(fd) for fd in _devnull()}  # our ends closed
    finally:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _devnull() -> list[int]:
    from cronplus.engine.output import devnull_fd

    return [devnull_fd()]
