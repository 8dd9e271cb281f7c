"""A job's process group from an asyncio loop, without a thread per process: wait for the
shell's exit through a pidfd (Linux >= 5.3; polling fallback) and always reap it; signal the
whole group; terminate it (SIGTERM, then SIGKILL after a grace)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal as signal_mod
import time

STATUS_LOST = -1  # someone else reaped our child (a waitpid(-1) or SIGCHLD=SIG_IGN elsewhere)

_shells: set[int] = set()  # job shells spawned and not yet reaped: their status is wait_exit's


def track(pid: int) -> None:
    """A job shell was spawned: the orphan reaper (orphans.py) must leave it alone."""
    _shells.add(pid)


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


def kill_and_reap(pid: int) -> None:
    """SIGKILL the group led by our child `pid` and reap it (returns at once: it is killed)."""
    signal_group(pid, signal_mod.SIGKILL)
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


async def terminate_group(pgid: int, exit_task: asyncio.Future[int], grace: float) -> None:
    """SIGTERM the group; SIGKILL it after `grace` if anything in it is still alive."""
    signal_group(pgid, signal_mod.SIGTERM)
    signal_group(pgid, signal_mod.SIGCONT)  # a stopped process only sees SIGTERM once continued
    deadline = time.monotonic() + grace
    delay = 0.01
    while time.monotonic() < deadline:
        if exit_task.done() and not group_alive(pgid):
            return
        step = min(delay, max(0.0, deadline - time.monotonic()))
        if exit_task.done():  # only the rest of the group is left: poll it
            await asyncio.sleep(step)
        else:
            await asyncio.wait({exit_task}, timeout=step)
        delay = min(delay * 2, 0.1)
    signal_group(pgid, signal_mod.SIGKILL)
