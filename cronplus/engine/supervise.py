"""The waiting half of a local attempt (runner.py spawns it): its output pumped into the log,
its timeout and a cancel (terminate the group: SIGTERM, SIGKILL after kill-grace), its exit seen
through a pidfd and reaped, a background child holding the pipe given OUTPUT_GRACE; the result.
The contract is runner.py's module docstring."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from typing import Any

from cronplus.engine.executor import AttemptResult
from cronplus.engine.limits import limit_reason
from cronplus.engine.output import OutputPump
from cronplus.engine.procgroup import STATUS_LOST, kill_and_reap, terminate_group, wait_exit
from cronplus.engine.spawned import Spawned, failure, why

OUTPUT_GRACE = 0.5  # seconds to keep reading after the shell exited (background child holding the pipe)
CGROUP_EMPTY_S = 2.0  # after cgroup.kill, how long to wait for its processes to be gone before removing it


def decode_status(status: int) -> tuple[int, int | None]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return 128 + sig, sig
    return os.waitstatus_to_exitcode(status), None



async def supervise(spawned: Spawned, *, cancel: asyncio.Event | None = None) -> AttemptResult:
    """Wait for a spawned attempt: output into its log, timeout and cancel (terminate the group),
    reap; returns its result. Closes the attempt's fds."""
    if spawned.failure is not None:
        return spawned.failure
    try:
        return await _supervise(spawned, cancel)
    finally:
        spawned.close_fds()
        spawned.release_cgroup()


async def _supervise(spawned: Spawned, cancel: asyncio.Event | None) -> AttemptResult:
    loop = asyncio.get_running_loop()
    job, proc, feeder = spawned.job, spawned.proc, spawned.feeder
    assert proc is not None
    pid = proc.pid
    pump = OutputPump(spawned.read_fd, spawned.log_fd, job.options.max_log_size, create=spawned.open_log)
    spawned.read_fd = -1  # the pump owns (and closes) it now
    pump.start(loop)
    if feeder:
        feeder.start(loop)
    exit_task: asyncio.Future[int] = asyncio.ensure_future(wait_exit(pid))
    cancel_task = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
    timed_out = cancelled = killed = False
    try:
        waiters: set[asyncio.Future[Any]] = {exit_task} | ({cancel_task} if cancel_task else set())
        await asyncio.wait(waiters, timeout=job.options.timeout, return_when=asyncio.FIRST_COMPLETED)
        if not exit_task.done():
            cancelled = cancel_task is not None and cancel_task.done()
            timed_out = not cancelled
            killed = await terminate_group(pid, exit_task, job.options.kill_grace, spawned.tag)
            if spawned.cgroup is not None:  # exact: whatever of the run is left, wherever it went
                spawned.cgroup.kill()
                await spawned.cgroup.emptied(CGROUP_EMPTY_S)  # dead before its cgroup is removed (EBUSY)
        status = await exit_task
        assert pump.eof is not None
        if not pump.eof.done():  # most jobs' pipe closed with their exit: no wait, no timer
            await asyncio.wait({pump.eof}, timeout=OUTPUT_GRACE)
        pump.drain_now()
    except BaseException:
        # Our caller gave up on us (task cancelled) or a callback failed: never leave the job
        # running unsupervised, never leave a zombie.
        exit_task.cancel()
        if spawned.cgroup is not None:
            spawned.cgroup.kill()
        kill_and_reap(pid, spawned.tag)  # a zombie must not stay
        proc.returncode = -9
        raise
    finally:
        if cancel_task is not None:
            cancel_task.cancel()
        pump.close()
        if feeder:
            feeder.close()
    if status == STATUS_LOST:
        proc.returncode = -1
        return replace(
            failure(spawned, "exit status lost: the job was reaped outside cronplus"),
            pid=pid,
            output_bytes=pump.total,
            timed_out=timed_out,
            cancelled=cancelled,
            killed=killed,
        )
    exit_code, sig = decode_status(status)
    proc.returncode = exit_code  # reaped by us: keeps Popen.__del__ from waiting on a reused pid
    outputs = spawned.outputs.collect() if spawned.outputs is not None else None
    peak = cpu = limit = None
    if spawned.cgroup is not None:
        peak, cpu, oom_kills, forks_refused = spawned.cgroup.usage()
        limit = limit_reason(job.options, oom_kills, forks_refused)
    return AttemptResult(
        exit_code=exit_code,
        signal=sig,
        timed_out=timed_out,
        cancelled=cancelled,
        started_at=spawned.started,
        ended_at=spawned.now(),
        pid=pid,
        output_bytes=pump.total,
        truncated=pump.dropped > 0,
        killed=killed,
        error=None,
        output_error=_output_error(spawned, pump),
        host=spawned.host,
        output=spawned.output,
        outputs=outputs.pairs if outputs is not None else (),
        outputs_note=outputs.note if outputs is not None else None,
        limit_reason=limit,
        peak_memory_bytes=peak,
        cpu_s=cpu,
    )


def _output_error(spawned: Spawned, pump: OutputPump) -> str | None:
    """What the run's record must say when its output did not reach the log (a full disk)."""
    if spawned.output_lost is not None:
        # the job wrote nothing: nothing is lost, but `cronplus output` must not blame retention
        return spawned.output_lost if pump.total else spawned.output_lost.replace("output lost", "log not created", 1)
    if pump.error is None:
        return None
    kept = f" after {pump.written} bytes" if pump.written else ""
    return f"output lost{kept}: {why(pump.error)}: {spawned.log_path}"
