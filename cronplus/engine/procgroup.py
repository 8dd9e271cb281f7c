"""A job's process group from an asyncio loop, without a thread per process: wait for the
shell's exit through a pidfd (Linux >= 5.3; polling fallback) and always reap it; signal the
whole group; terminate it (SIGTERM, then SIGKILL after a grace), with every process of the run
that left the group (runprocs.py: found by the run's environment)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal as signal_mod
import time

from cronplus.engine import runprocs
from cronplus.engine.runprocs import RunTag

LATE_FORK_ROUNDS = 3
LATE_FORK_WAIT_S = 0.05
STATUS_LOST = -1  # someone else reaped our child (a waitpid(-1) or SIGCHLD=SIG_IGN elsewhere)

_shells: set[int] = set()  # job shells spawned and not yet reaped: their status is wait_exit's


def track(pid: int) -> None:
    """A job shell was spawned: the orphan reaper (orphans.py) must leave it alone."""
    _shells.add(pid)


def untrack(pid: int) -> None:
    """A job shell no longer waited for (an abandoned attempt): orphans.py may reap it."""
    _shells.discard(pid)


def tracked() -> frozenset[int]:
    return frozenset(_shells)


def reap(pid: int) -> tuple[bool, int]:
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)  # WNOHANG: never blocks the loop
    except ChildProcessError:
        _shells.discard(pid)
        return True, STATUS_LOST
    if reaped == pid:
        _shells.discard(pid)
    return reaped == pid, status


def kill_and_reap(pid: int, run: RunTag | None = None) -> None:
    """SIGKILL the group led by our child `pid` (and every process of `run`, see terminate_group)
    and reap it (returns at once: it is killed)."""
    signal_group(pid, signal_mod.SIGKILL)
    if run is not None:
        runprocs.send(runprocs.run_members(pid, run, sessions=_shells), signal_mod.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    _shells.discard(pid)


async def wait_exit(pid: int) -> int:
    """Wait for our child `pid` to exit and reap it; returns the raw wait status."""
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return await poll_exit(pid)
    fut: asyncio.Future[None] = loop.create_future()

    def on_ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(pidfd, on_ready)
    try:
        while True:
            reaped, status = reap(pid)
            if reaped:
                return status
            await fut
            fut = loop.create_future()
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


async def poll_exit(pid: int) -> int:
    delay = 0.005
    while True:
        reaped, status = reap(pid)
        if reaped:
            return status
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.25)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def terminate_group(pgid: int, exit_task: asyncio.Future[int], grace: float,
                          run: RunTag | None = None) -> bool:
    """SIGTERM the group led by our child `pgid`, and every other process of `run` (one that left
    the group: `setsid`, a double fork; runprocs.run_members); SIGKILL what is still alive after
    `grace`. Returns when the shell has exited (reaped by `exit_task`) and none of them is left:
    True when the grace ran out and SIGKILL was needed (a run's reason says so)."""
    members = runprocs.run_members(pgid, run, sessions=_shells) if run is not None else []
    for sig in (signal_mod.SIGTERM, signal_mod.SIGCONT):  # a stopped process only sees SIGTERM once continued
        signal_group(pgid, sig)
        runprocs.send(members, sig)
    signalled = time.monotonic()
    deadline = signalled + grace
    delay = 0.01
    killed = False
    while time.monotonic() < deadline:
        if exit_task.done() and not group_alive(pgid) and not any(runprocs.alive(m) for m in members):
            break
        step = min(delay, max(0.0, deadline - time.monotonic()))
        if exit_task.done():  # only the rest of the group is left: poll it
            await asyncio.sleep(step)
        else:
            await asyncio.wait({exit_task}, timeout=step)
        delay = min(delay * 2, 0.1)
    else:
        # Say "SIGKILL was needed" only if a live process got it, not an unreaped zombie (the job
        # runs in its own session: sid = pgid).
        killed = runprocs.session_alive(pgid) or any(runprocs.alive(m) for m in members)
        signal_group(pgid, signal_mod.SIGKILL)
        runprocs.send(members, signal_mod.SIGKILL)
    if run is not None:
        await _kill_late_forks(pgid, run, signalled, exit_task)
    return killed


async def _kill_late_forks(pgid: int, run: RunTag, since: float, exit_task: asyncio.Future[int]) -> None:
    """A process of the run that the first look missed (forked while being stopped) is killed
    too: look again, in a scan begun after the last signals, until none is left (a few rounds).
    Once the shell is reaped its pid (and group id) may be a new process's: only the run's
    environment identifies its processes then."""
    for _ in range(LATE_FORK_ROUNDS):
        shell = None if exit_task.done() else pgid
        left = [m for m in runprocs.run_members(shell, run, since=since, sessions=_shells) if m.pid != shell]
        if not left:
            return
        since = time.monotonic()
        if shell is not None:
            signal_group(pgid, signal_mod.SIGKILL)
        runprocs.send(left, signal_mod.SIGKILL)
        await asyncio.wait({exit_task}, timeout=LATE_FORK_WAIT_S)
