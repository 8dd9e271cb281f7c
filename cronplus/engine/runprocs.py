"""The processes of a run, wherever they went, from one pass over /proc.

Every process of a run inherits the run's identity from its environment (runner.build_env:
CRONPLUS_RUN_ID, CRONPLUS_JOB, CRONPLUS_ATTEMPT, CRONPLUS_SCHEDULED_TIME), also one that left the
job's process group and session (`setsid`, a daemon's double fork): the process group alone does
not find those. Two uses:

* A run ends by timeout, replacement or shutdown (`run_members`): the job shell's process group,
  the shell's descendants (also one that cleared its environment, while its parent chain to the
  shell holds), and every descendant of this supervisor whose environment names the run (the
  supervisor is a child subreaper, orphans.py, so an orphan stays our descendant). A process
  that both cleared its environment (`env -i`) and lost its parent chain is not found: it is
  then indistinguishable from any other orphan of ours.
* A supervisor starts after a kill -9 (`leftovers`): processes anywhere whose environment names a
  run history still has `running` (id, job, attempt and tick all match: another supervisor's
  run with the same number does not), plus the members of their sessions.

A process is (pid, start time): a pid reused by a new process after ours ended is never signalled.
`terminate` stops many at once: SIGTERM (and SIGCONT) to all, one shared wait, SIGKILL the rest.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

PROC = "/proc"
POLL_S = 0.05
SCAN_REUSE_S = 0.2  # concurrent terminations (a shutdown cancelling 2,000 runs) share one scan
_ENV_PREFIX = b"CRONPLUS_"


@dataclass(frozen=True, slots=True)
class RunTag:
    """A run's identity as its processes carry it in their environment."""

    run_id: int
    job: str
    attempt: int | None = None
    scheduled: int | None = None  # Unix seconds, whole (the variable has second precision)


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    session: int
    start: int  # start time, clock ticks after boot: with the pid, the process's identity
    tag: RunTag | None = None


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, session, start time) of a process; None when it is gone."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()  # after "pid (comm) ": comm may hold spaces
    return fields[0].decode(), int(fields[1]), int(fields[3]), int(fields[19])


def _tag(pid: int) -> RunTag | None:
    try:
        with open(f"{PROC}/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:  # another user's process, or gone
        return None
    if b"CRONPLUS_RUN_ID=" not in data:
        return None
    env = {}
    for item in data.split(b"\0"):
        if item.startswith(_ENV_PREFIX):
            key, _, value = item.partition(b"=")
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    try:
        run_id = int(env["CRONPLUS_RUN_ID"])
        attempt = int(env["CRONPLUS_ATTEMPT"]) if "CRONPLUS_ATTEMPT" in env else None
        when = env.get("CRONPLUS_SCHEDULED_TIME")
        scheduled = int(datetime.fromisoformat(when).timestamp()) if when else None
    except (KeyError, ValueError):
        return None
    return RunTag(run_id, env.get("CRONPLUS_JOB", ""), attempt, scheduled)


def scan(*, tags: bool | Callable[[int], bool] = True) -> dict[int, Proc]:
    """Every live (non-zombie) process, with its run tag read where `tags` says (True: all)."""
    procs: dict[int, Proc] = {}
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        pid = int(name)
        info = _stat(pid)
        if info is None or info[0] == "Z":
            continue
        procs[pid] = Proc(pid, info[1], info[2], info[3])
    if tags:
        want = tags if callable(tags) else None
        for pid, proc in procs.items():
            if want is None or want(pid):
                tag = _tag(pid)
                if tag is not None:
                    procs[pid] = Proc(pid, proc.ppid, proc.session, proc.start, tag)
    return procs


def descendants(procs: dict[int, Proc], root: int) -> set[int]:
    """The pids below `root` in the process tree (not root itself)."""
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found: set[int] = set()
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


# -- a run ending while we supervise it ------------------------------------------------------

_shared: tuple[float, dict[int, Proc], set[int]] | None = None


def _our_scan(since: float, sessions: Collection[int]) -> tuple[dict[int, Proc], set[int]]:
    """Our descendants from a scan begun at or after monotonic time `since` (runs ended together,
    a shutdown cancelling 2,000 runs, share one scan), tagged where they left the job `sessions`
    (a process still in its job's session is found by that: no environment to read)."""
    global _shared
    if _shared is not None and _shared[0] >= since:
        return _shared[1], _shared[2]
    begun = time.monotonic()
    procs = scan(tags=False)
    ours = descendants(procs, os.getpid())
    procs = {pid: Proc(p.pid, p.ppid, p.session, p.start,
                       _tag(pid) if pid in ours and p.session not in sessions else None)
             for pid, p in procs.items()}
    _shared = (begun, procs, ours)
    return procs, ours


def run_members(shell: int | None, run: RunTag, *, since: float | None = None,
                sessions: Collection[int] = ()) -> list[Proc]:
    """The live processes of a run we supervise (see the module docstring), the shell included,
    from a scan begun after `since` (default: at most SCAN_REUSE_S ago). `shell` is None once it
    is reaped (its pid may be a new process's then: only the environment tells). `sessions`:
    those of the job shells we have not reaped, each led by its shell (`shell`'s too)."""
    procs, ours = _our_scan(time.monotonic() - SCAN_REUSE_S if since is None else since, sessions)
    pids = {pid for pid in ours if (tag := procs[pid].tag) is not None
            and tag.run_id == run.run_id and tag.job == run.job}
    if shell is not None:
        pids |= {shell} | descendants(procs, shell)
        pids |= {p.pid for p in procs.values() if p.session == shell}  # the job's session
    return [procs[pid] for pid in pids if pid in procs and pid != os.getpid()]


# -- leftovers of a supervisor that was killed ----------------------------------------------


def leftovers(runs: Collection[RunTag]) -> dict[int, list[Proc]]:
    """run_id -> its live processes, for runs history has `running` (one scan for all)."""
    if not runs:
        return {}
    wanted = {run.run_id: run for run in runs}
    procs = scan()
    me = os.getpid()
    found: dict[int, list[Proc]] = {}
    sessions: dict[int, int] = {}
    for proc in procs.values():
        tag = proc.tag
        run = wanted.get(tag.run_id) if tag is not None else None
        if run is None or tag is None or proc.pid == me or not _same_run(tag, run):
            continue
        found.setdefault(run.run_id, []).append(proc)
        if proc.session > 1 and proc.session != os.getsid(0):
            sessions[proc.session] = run.run_id
    for proc in procs.values():  # members of a confirmed session that cleared their environment
        run_id = sessions.get(proc.session)
        if run_id is not None and proc.tag is None and proc.pid != me:
            found[run_id].append(proc)
    return found


def _same_run(tag: RunTag, run: RunTag) -> bool:
    return (tag.job == run.job
            and (run.attempt is None or tag.attempt == run.attempt)
            and (run.scheduled is None or tag.scheduled is None or tag.scheduled == run.scheduled))


# -- stopping --------------------------------------------------------------------------------


def session_alive(sid: int) -> bool:
    """Whether a process of session `sid` still runs (zombies aside: under an init that does not
    reap, a dead orphan stays a zombie, and killpg(0) still finds it). One /proc scan."""
    try:
        entries = os.listdir(PROC)
    except OSError:
        return True
    for name in entries:
        if name.isdigit():
            info = _stat(int(name))
            if info is not None and info[2] == sid and info[0] != "Z":
                return True
    return False


def alive(proc: Proc) -> bool:
    info = _stat(proc.pid)
    return info is not None and info[0] != "Z" and info[3] == proc.start


def send(procs: Iterable[Proc], sig: int) -> None:
    """Signal each process that is still the one we found (not a reused pid)."""
    for proc in procs:
        if alive(proc):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, sig)


def terminate(groups: dict[int, list[Proc]], graces: dict[int, float], *, limit: float) -> dict[int, str]:
    """Stop every group at once: SIGTERM and SIGCONT to all, SIGKILL to what a group still has
    after its grace (at most `limit` s). key -> what was done, for the run's record."""
    for procs in groups.values():
        send(procs, signal.SIGTERM)
        send(procs, signal.SIGCONT)  # a stopped process only sees SIGTERM once continued
    start = time.monotonic()
    outcome: dict[int, str] = {}
    counts = {key: len(procs) for key, procs in groups.items()}
    pending = dict(groups)
    while pending:
        elapsed = time.monotonic() - start
        for key, procs in list(pending.items()):
            left = [p for p in procs if alive(p)]
            grace = min(graces.get(key, 0.0), limit)
            if not left:
                outcome[key] = f"{counts[key]} process(es) still running were terminated (SIGTERM)"
            elif elapsed >= grace:
                send(left, signal.SIGKILL)
                outcome[key] = f"{counts[key]} process(es) still running were terminated (SIGKILL after {grace:g}s)"
            else:
                pending[key] = left
                continue
            del pending[key]
        if pending:
            time.sleep(POLL_S)
    return outcome
