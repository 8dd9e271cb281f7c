"""A job's resource limits (`nice=`, `memory-max=`, `cpu-max=`, `tasks-max=`): how each is
enforced on this host, and the child-side setup of a limited attempt (runner.spawn_attempt).

Contract:
- `plan(options, delegation, euid) -> list[Enforcement]`: per limit set, the mechanism:
  * memory-max: the run cgroup's memory.max when the delegated cgroup has the memory
    controller; else RLIMIT_DATA (private writable memory, per process: an allocation past it
    fails with ENOMEM; the kernel kills nothing and says nothing, so no "limit reached" reason).
  * cpu-max: the run cgroup's cpu.max (a rate: 50% = half a CPU per 100 ms, as systemd's
    CPUQuota=). Without the cpu controller it is NOT enforced: RLIMIT_CPU limits CPU *time*,
    not a rate, so it is not offered as one.
  * tasks-max: pids.max; else RLIMIT_NPROC, which counts every process of the job's *user*
    (not of the run) and is not enforced for root (CAP_SYS_RESOURCE): not enforced then.
  * nice: setpriority(2) in the child; a negative value needs root (CAP_SYS_NICE) or it is not
    enforced.
  A limit not enforced is an Enforcement with `enforced` False: `cronplus check` shows it, the
  run's log gets one `[cronplus: ...]` line for it. Nothing is silently ignored.
- `describe(e)` is the one line `check` prints ("memory-max=512M: cgroup v2 (delegated: ...)").
- `child_setup(...)` is the preexec_fn of the rlimits and nice; only system calls. The run's
  cgroup is joined by runner's /bin/sh prologue (JOIN_CGROUP), not here.
- A run killed by the kernel's OOM killer in its cgroup (memory.events oom_kill) ends with
  the reason "memory limit 512M reached"; a failed run whose forks pids.max refused, with
  "task limit 64 reached (3 fork(s) refused)" (`limit_reason`).
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cronplus.engine.cgroup import Delegation, delegated

if TYPE_CHECKING:
    from cronplus.model import JobSpec

KEYS = ("nice", "memory_max", "cpu_max", "tasks_max")


def annotation(field: str) -> str:
    return field.replace("_", "-")


def size_text(n: int) -> str:
    """512M, 2G, 1536K: the largest binary unit that divides it, as the annotation was written."""
    for unit, power in (("T", 4), ("G", 3), ("M", 2), ("K", 1)):
        if n % (1024**power) == 0:
            return f"{n // 1024**power}{unit}"
    return str(n)


def value_text(field: str, value: object) -> str:
    if field == "memory_max":
        assert isinstance(value, int)
        return size_text(value)
    if field == "cpu_max":
        assert isinstance(value, float)
        return f"{value * 100:g}%"
    return str(value)


@dataclass(frozen=True, slots=True)
class Enforcement:
    field: str  # JobOptions field
    value: object
    how: str  # "cgroup", "rlimit", "setpriority" or "" (not enforced)
    detail: str  # where/what, or why not

    @property
    def enforced(self) -> bool:
        return bool(self.how)


def limits_of(options: object) -> dict[str, object]:
    """{field: value} of the limits set on a job's options."""
    return {f: v for f in KEYS if (v := getattr(options, f, None)) is not None}


def plan(options: object, delegation: Delegation, euid: int | None = None) -> list[Enforcement]:
    """How each limit set on `options` is enforced here (see the module docstring)."""
    euid = os.geteuid() if euid is None else euid
    where = f"cgroup v2 (delegated: {delegation.base})"
    missing = f"no {{}} controller in {delegation.base}/cgroup.controllers" if delegation.base else delegation.why
    out = []
    for field, value in limits_of(options).items():
        controller = {"memory_max": "memory", "cpu_max": "cpu", "tasks_max": "pids"}.get(field)
        if controller and delegation.base is not None and controller in delegation.controllers:
            out.append(Enforcement(field, value, "cgroup", where))
        elif field == "memory_max":
            out.append(Enforcement(field, value, "rlimit", "rlimit RLIMIT_DATA per process ("
                                   + missing.format("memory") + ")"))
        elif field == "cpu_max":
            out.append(Enforcement(field, value, "", "needs the cgroup v2 cpu controller ("
                                   + missing.format("cpu") + "); RLIMIT_CPU limits CPU time, not a rate"))
        elif field == "tasks_max":
            if euid == 0:
                out.append(Enforcement(field, value, "", "needs the cgroup v2 pids controller ("
                                       + missing.format("pids") + "); RLIMIT_NPROC does not apply to root"))
            else:
                out.append(Enforcement(field, value, "rlimit",
                                       "rlimit RLIMIT_NPROC: counts all processes of the user ("
                                       + missing.format("pids") + ")"))
        elif field == "nice":
            assert isinstance(value, int)
            if value < 0 and euid != 0:
                out.append(Enforcement(field, value, "", "a negative nice needs root (CAP_SYS_NICE)"))
            else:
                out.append(Enforcement(field, value, "setpriority", "setpriority in the job's process"))
    return out


def describe(e: Enforcement) -> str:
    head = f"{annotation(e.field)}={value_text(e.field, e.value)}"
    return f"{head}: {e.detail}" if e.enforced else f"{head}: NOT ENFORCED: {e.detail}"


def wants_cgroup(enforcements: list[Enforcement], delegation: Delegation) -> bool:
    """A limited job runs in its own cgroup whenever we have one to give (kills, usage)."""
    return bool(enforcements) and delegation.base is not None


def child_setup(enforcements: list[Enforcement]) -> Callable[[], None] | None:
    """Popen's preexec_fn for the rlimits and nice of an attempt (None: nothing to set): only
    system calls, in the forked child."""
    rlimits: list[tuple[int, int]] = []
    nice = None
    for e in enforcements:
        assert isinstance(e.value, int | float)
        if e.how == "rlimit" and e.field == "memory_max":
            rlimits.append((resource.RLIMIT_DATA, int(e.value)))
        elif e.how == "rlimit" and e.field == "tasks_max":
            rlimits.append((resource.RLIMIT_NPROC, int(e.value)))
        elif e.how == "setpriority":
            nice = int(e.value)

    if not rlimits and nice is None:
        return None

    def setup() -> None:
        for kind, value in rlimits:
            with contextlib.suppress(OSError, ValueError):  # a hard limit below it: keep the lower
                resource.setrlimit(kind, (value, value))
        if nice is not None:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, 0, nice)

    return setup


def limit_reason(options: object, oom_kills: int, forks_refused: int = 0) -> str | None:
    """What a failed run's reason says when its cgroup's limits bit: the kernel killed it for
    memory.max (memory.events oom_kill), or refused forks for pids.max (pids.events max: not a
    kill, the job saw fork fail with EAGAIN)."""
    memory_max = getattr(options, "memory_max", None)
    tasks_max = getattr(options, "tasks_max", None)
    if oom_kills and memory_max is not None:
        return f"memory limit {size_text(memory_max)} reached"
    if forks_refused and tasks_max is not None:
        return f"task limit {tasks_max} reached ({forks_refused} fork(s) refused)"
    return None


def check_lines(jobs: Sequence[JobSpec]) -> tuple[list[str], list[str]]:
    """`cronplus check`: (how each limit is enforced, one line a job and limit; the limits that
    are not, as `FILE:LINE: warning:` lines). Seen from this process's cgroup: the supervisor
    under systemd (Delegate=yes) has its own, and checks again at each run."""
    if not any(limits_of(job.options) for job in jobs):
        return [], []
    delegation = delegated()
    enforced: list[str] = []
    not_enforced: list[str] = []
    for job in jobs:
        for e in plan(job.options, delegation):
            if e.enforced:
                enforced.append(f"limits: {job.name}: {describe(e)}")
            else:
                not_enforced.append(f"{job.loc}: warning: job {job.name}: {describe(e)}")
    return enforced, not_enforced
