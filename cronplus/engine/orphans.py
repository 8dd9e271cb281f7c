"""Reap the orphans of jobs. A job's background process that outlives its shell is re-parented
to PID 1, and where PID 1 does not reap (cronplus itself as a container's PID 1, a minimal
init, some sandboxes) it stays a zombie forever; its process group then looks alive, so a
timed-out run waits out its whole kill grace. The supervisor becomes a child subreaper
(prctl PR_SET_CHILD_SUBREAPER, Linux >= 3.4): orphans of its jobs come to it, and it reaps
them on SIGCHLD (debounced) and once a minute. It never reaps a job shell (procgroup tracks
those; their status belongs to the run). cronie does not do this: under systemd it needs not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from cronplus.engine import procgroup

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
SWEEP_DELAY_S = 0.05  # after a SIGCHLD: one sweep for a burst of exits
SWEEP_INTERVAL_S = 60.0  # and regularly, in case a reading of /proc raced an exit


def set_subreaper(on: bool) -> bool:
    """Become (or stop being) a child subreaper; False where the kernel or libc cannot."""
    import ctypes  # lazy: only the supervisor needs it

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def children() -> set[int]:
    """Our children, from /proc/self/task/*/children (a child belongs to the thread that forked
    it; an orphan to any thread of the subreaper)."""
    pids: set[int] = set()
    with contextlib.suppress(OSError):
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError), open(f"/proc/self/task/{tid}/children") as f:
                pids.update(int(pid) for pid in f.read().split())
    return pids


def reap_orphans() -> list[int]:
    """Reap every exited child that is not a tracked job shell; returns their pids."""
    reaped = []
    shells = procgroup.tracked()
    for pid in children() - shells:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if done == pid:
            reaped.append(pid)
    return reaped


class OrphanReaper:
    """The supervisor's reaper, on its event loop: `start()` after the loop runs, `stop()` at exit."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.active = False
        self._soon: asyncio.TimerHandle | None = None
        self._regular: asyncio.TimerHandle | None = None

    def start(self) -> bool:
        if not set_subreaper(True):
            return False
        self.active = True
        self.loop.add_signal_handler(signal.SIGCHLD, self._on_sigchld)
        self._sweep_regularly()
        return True

    def stop(self) -> None:
        """Stop adopting orphans (a later one goes to PID 1 again) and reap what is there."""
        if not self.active:
            return
        self.active = False
        self.loop.remove_signal_handler(signal.SIGCHLD)
        for handle in (self._soon, self._regular):
            if handle is not None:
                handle.cancel()
        set_subreaper(False)
        reap_orphans()

    def _on_sigchld(self) -> None:
        if self._soon is None:
            self._soon = self.loop.call_later(SWEEP_DELAY_S, self._sweep_soon)

    def _sweep_soon(self) -> None:
        self._soon = None
        reap_orphans()

    def _sweep_regularly(self) -> None:
        reap_orphans()
        self._regular = self.loop.call_later(SWEEP_INTERVAL_S, self._sweep_regularly)
