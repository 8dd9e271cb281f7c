"""A run's cgroup v2 (the resource limits of a job, limits.py): the supervisor's delegated
subtree, a child cgroup per limited run, its kill, its usage, its removal.

Contract:
- `delegated() -> Delegation`: the supervisor's own cgroup v2 directory (from /proc/self/cgroup's
  `0::` line and the cgroup2 mount in /proc/self/mountinfo) when we may create children in it
  (writable, and for a systemd unit's cgroup (*.service, *.scope) marked delegated by systemd's
  trusted.delegate xattr: `Delegate=yes`; or root in a container), with the controllers its parent gives it
  (`cgroup.controllers`); otherwise `base` is None and `why` says why. Read once per process.
- `RunCgroup.create(delegation, run_id, ...)`: `<base>/cronplus-run-<run_id>` with memory.max,
  cpu.max (quota per 100 ms period: 1.5 CPUs = "150000 100000", systemd's CPUQuota=150%),
  pids.max written for the limits whose controller is there. The controllers are enabled in
  the base's `cgroup.subtree_control` on first need; when the kernel refuses that because the
  base holds processes ("no internal processes", EBUSY), the supervisor first moves itself into
  `<base>/cronplus-supervisor` (what a delegated service does).
- The job is placed in it before its command runs: a /bin/sh prologue (runner.JOIN_CGROUP)
  writes `0` to the run cgroup's cgroup.procs and execs the job's shell, same pid (Python 3.11
  has no clone3/CLONE_INTO_CGROUP, and a write in preexec_fn would make the supervisor wait for
  each migration: ~3 ms of RCU grace period here, shared when many migrate at once). A job run
  as another user is placed by the supervisor (`place(pid)`) right after its exec.
- `kill()` writes `cgroup.kill` (Linux >= 5.14): every process in it is SIGKILLed, including a
  grandchild that left the session and cleared its environment. `usage()` reads memory.peak
  (Linux >= 5.19; None without the memory controller), cpu.stat usage_usec (always there in v2)
  memory.events oom_kill and pids.events max. `remove()` rmdirs it; a cgroup still populated (a background child
  left running after a normal exit, which cron does not kill) is retried at the next removal.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path

PREFIX = "cronplus-run-"
SUPERVISOR_LEAF = "cronplus-supervisor"
PERIOD_US = 100_000  # cpu.max's period: the kernel's and systemd's default


@dataclass(frozen=True, slots=True)
class Delegation:
    base: Path | None  # our cgroup v2 directory, when we may create children in it
    controllers: frozenset[str]  # what the base's parent gives it (cgroup.controllers)
    why: str  # when base is None: why not


_delegation: Delegation | None = None


def delegated() -> Delegation:
    """The supervisor's delegated cgroup v2, read once (see the module docstring)."""
    global _delegation
    if _delegation is None:
        _delegation = _detect()
    return _delegation


def _detect() -> Delegation:
    none: frozenset[str] = frozenset()
    try:
        own = next((line[3:].strip() for line in Path("/proc/self/cgroup").read_text().splitlines()
                    if line.startswith("0::")), None)
        mount = next((line.split(" - ")[0].split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                      if " - cgroup2 " in line), None)
    except OSError as exc:
        return Delegation(None, none, f"cannot read /proc: {exc.strerror}")
    if own is None or mount is None:
        return Delegation(None, none, "no cgroup v2 hierarchy is mounted")
    if own.endswith("/" + SUPERVISOR_LEAF):  # we moved ourselves there (a restart within the same unit)
        own = own[: -len(SUPERVISOR_LEAF) - 1] or "/"
    base = Path(mount) / own.lstrip("/")
    if not (os.access(base, os.W_OK) and os.access(base / "cgroup.procs", os.W_OK)):
        return Delegation(None, none, f"{base} is not writable: not delegated (systemd Delegate=yes gives one)")
    if base.name.endswith((".service", ".scope")) and not _systemd_delegated(base):
        # root may write any unit's cgroup, but systemd owns it unless the unit delegates it
        return Delegation(None, none, f"{base} is systemd's: add Delegate=yes to the unit")
    try:
        controllers = frozenset((base / "cgroup.controllers").read_text().split())
    except OSError as exc:
        return Delegation(None, none, f"cannot read {base}/cgroup.controllers: {exc.strerror}")
    return Delegation(base, controllers, "")


def _systemd_delegated(base: Path) -> bool:
    """systemd (>= 251) marks a delegated cgroup with the xattr trusted.delegate (user.delegate
    under a user manager)."""
    for name in ("trusted.delegate", "user.delegate"):
        with contextlib.suppress(OSError):
            if os.getxattr(base, name) == b"1":
                return True
    return False


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


_enabled: set[str] = set()


def _enable(base: Path, wanted: set[str]) -> None:
    """Enable `wanted` controllers for our children; move ourselves to a leaf if the kernel asks."""
    missing = wanted - _enabled
    if not missing:
        return
    line = " ".join("+" + c for c in sorted(missing))
    try:
        _write(base / "cgroup.subtree_control", line)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
        leaf = base / SUPERVISOR_LEAF
        with contextlib.suppress(FileExistsError):
            leaf.mkdir()
        _write(leaf / "cgroup.procs", str(os.getpid()))  # all our threads go with us
        _write(base / "cgroup.subtree_control", line)
    _enabled.update(missing)


_leftover: set[Path] = set()  # run cgroups still populated when their run ended


class RunCgroup:
    """One run's cgroup (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.procs = str(path / "cgroup.procs")

    @classmethod
    def create(cls, delegation: Delegation, run_id: int, *, memory_max: int | None, cpu_max: float | None,
               tasks_max: int | None) -> RunCgroup:
        """Raises OSError when the cgroup cannot be made (the caller falls back to rlimits)."""
        assert delegation.base is not None
        settings = {"memory": ("memory.max", memory_max), "cpu": ("cpu.max", cpu_max), "pids": ("pids.max", tasks_max)}
        wanted = {c for c, (_, value) in settings.items() if value is not None and c in delegation.controllers}
        _enable(delegation.base, wanted)
        path = delegation.base / f"{PREFIX}{run_id}"
        with contextlib.suppress(FileExistsError):  # a crashed supervisor's, same run id: reused
            path.mkdir()
        cgroup = cls(path)
        try:
            for controller in sorted(wanted):
                name, value = settings[controller]
                if controller == "cpu":
                    assert isinstance(value, float)
                    _write(path / name, f"{max(1000, round(value * PERIOD_US))} {PERIOD_US}")
                else:
                    _write(path / name, str(value))
        except OSError:
            cgroup.remove()
            raise
        return cgroup

    def place(self, pid: int) -> None:
        """Move process `pid` here."""
        fd = os.open(self.procs, os.O_WRONLY)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)

    def kill(self) -> None:
        """SIGKILL every process in it (cgroup.kill); without cgroup.kill, each listed pid."""
        try:
            _write(self.path / "cgroup.kill", "1")
        except FileNotFoundError:
            with contextlib.suppress(OSError):
                for pid in (self.path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), 9)
        except OSError:
            pass

    def populated(self) -> bool:
        """Whether a process is still in it (cgroup.events `populated`; gone: no)."""
        try:
            events = (self.path / "cgroup.events").read_text()
        except OSError:
            return False
        return "populated 1" in events

    async def emptied(self, timeout: float) -> bool:
        """Wait (without blocking the loop) until its processes are gone, at most `timeout` s:
        cgroup.kill only sends SIGKILL, the processes die a moment later, and rmdir fails (EBUSY)
        while one is left."""
        import asyncio
        import time

        deadline = time.monotonic() + timeout
        while self.populated():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def usage(self) -> tuple[int | None, float | None, int, int]:
        """(memory.peak bytes or None, CPU seconds or None, memory.events oom_kill count,
        pids.events max: forks refused by pids.max)."""
        peak = cpu = None
        oom = refused = 0
        with contextlib.suppress(OSError, ValueError):
            peak = int((self.path / "memory.peak").read_text())
        with contextlib.suppress(OSError, ValueError):
            stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines() if " " in line)
            cpu = int(stat["usage_usec"]) / 1e6
        with contextlib.suppress(OSError, ValueError):
            events = dict(line.split() for line in (self.path / "memory.events").read_text().splitlines() if " " in line)
            oom = int(events.get("oom_kill", 0))
        with contextlib.suppress(OSError, ValueError):
            events = dict(line.split() for line in (self.path / "pids.events").read_text().splitlines() if " " in line)
            refused = int(events.get("max", 0))
        return peak, cpu, oom, refused

    def remove(self) -> None:
        """rmdir it (and any earlier run cgroup that was still populated then)."""
        for path in [self.path, *_leftover]:
            try:
                path.rmdir()
            except FileNotFoundError:
                _leftover.discard(path)
            except OSError:  # EBUSY: a process still lives in it; try again at the next removal
                _leftover.add(path)
            else:
                _leftover.discard(path)
