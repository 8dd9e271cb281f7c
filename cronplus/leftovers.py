"""Processes of a run that outlived its supervisor (kill -9, OOM kill, a crash): found at the next
start and stopped, so an `interrupted` run is really over and its job's next tick cannot overlap
a copy nobody supervises. (Under systemd, KillMode=mixed already ends them with the unit; this is
for a supervisor run by hand, in a container, or by another process manager.)

Finding them without a pid-reuse accident: a job's shell leads its own session, whose id is the
pid history recorded, and a session id is not reused while any process is still in that session.
That the session is the run's and not a new one that took the pid after it ended is confirmed by
the environment: at least one member must carry the run's `CRONPLUS_RUN_ID` (every job process
inherits it). Sessions that cannot be confirmed are left alone.

Stopping them is the timeout's sequence: SIGTERM (and SIGCONT) to every member, SIGKILL to what is
left after the job's kill-grace. They are not our children: their end is seen in /proc (gone, or a
zombie waiting for its new parent)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

PROC = "/proc"
POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class Leftover:
    run_id: int
    session: int  # the job shell's pid, as history recorded it
    pids: tuple[int, ...]
    grace: float


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, session id) of a process; None when it is gone."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()  # after "pid (comm) ": comm may hold spaces
    return fields[0].decode(), int(fields[3])


def session_members(session: int) -> list[int]:
    """Live (non-zombie) processes of a session."""
    members = []
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        info = _stat(int(name))
        if info is not None and info[1] == session and info[0] != "Z":
            members.append(int(name))
    return members


def _carries(pid: int, entry: bytes) -> bool:
    try:
        with open(f"{PROC}/{pid}/environ", "rb") as f:
            return entry in f.read().split(b"\0")
    except OSError:  # another user's process, or gone
        return False


def find(run_id: int, session: int | None, grace: float) -> Leftover | None:
    """The run's processes still alive, when they are confirmably the run's."""
    if not session or session <= 1 or session == os.getsid(0):
        return None
    members = session_members(session)
    entry = f"CRONPLUS_RUN_ID={run_id}".encode()
    if not any(_carries(pid, entry) for pid in members):
        return None
    return Leftover(run_id=run_id, session=session, pids=tuple(members), grace=grace)


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop(leftovers: list[Leftover]) -> dict[int, str]:
    """Stop them all at once (one grace, not one each); run_id -> what was done, for its record."""
    for left in leftovers:
        _signal(left.pids, signal.SIGTERM)
        _signal(left.pids, signal.SIGCONT)  # a stopped process only sees SIGTERM once continued
    start = time.monotonic()
    outcome: dict[int, str] = {}
    pending = list(leftovers)
    while pending:
        now = time.monotonic()
        still = []
        for left in pending:
            alive = session_members(left.session)
            if not alive:
                outcome[left.run_id] = f"{len(left.pids)} process(es) still running were terminated (SIGTERM)"
            elif now - start >= left.grace:
                _signal(alive, signal.SIGKILL)
                outcome[left.run_id] = (f"{len(left.pids)} process(es) still running were terminated"
                                        f" (SIGKILL after {left.grace:g}s)")
            else:
                still.append(left)
        pending = still
        if pending:
            time.sleep(POLL_S)
    return outcome
