"""Resource limits for real: a supervisor process (tests/limits_run.py) in a cgroup v2 of its own
(the delegated case: a test-session sub-cgroup), or in a mount namespace where the cgroup v2
hierarchy is read-only (not delegated: rlimits), runs one limited attempt."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HELPER = Path(__file__).with_name("limits_run.py")


def cgroup2_mount() -> Path | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if " - cgroup2 " in line:
            return Path(line.split()[4])
    return None


@pytest.fixture
def session_cgroup(tmp_path: Path) -> Iterator[Path]:
    """A sub-cgroup made for this test: the helper supervisor joins it, its run cgroups go under it."""
    mount = cgroup2_mount()
    if mount is None or not os.access(mount, os.W_OK):
        pytest.skip("no writable cgroup v2 hierarchy on this machine")
    path = mount / f"cronplus-test-{os.getpid()}-{tmp_path.name}"
    try:
        path.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup here: {exc}")
    yield path
    for child in [*path.glob("*/"), path]:  # whatever a failed test left: killed, removed
        if (child / "cgroup.kill").exists():
            (child / "cgroup.kill").write_text("1")
    deadline = time.monotonic() + 10
    for child in [*[p for p in path.iterdir() if p.is_dir()], path]:
        while True:
            try:
                child.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def supervise(tmp_path: Path, command: str, options: dict[str, object], *, cgroup: Path | None = None,
              readonly_cgroups: bool = False) -> dict[str, object]:
    spec = {"cgroup": str(cgroup) if cgroup else None, "command": command, "options": options,
            "log": str(tmp_path / "run.log")}
    argv = [sys.executable, str(HELPER), json.dumps(spec)]
    if readonly_cgroups:
        mount = cgroup2_mount()
        if mount is None or shutil.which("unshare") is None:
            pytest.skip("needs a cgroup v2 mount and unshare(1)")
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                f'mount -o remount,bind,ro {mount} && exec "$@"', "sh", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if readonly_cgroups and done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"cannot make a read-only cgroup mount here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def is_dead(pid: int) -> bool:
    """Gone, or a zombie (this sandbox's PID 1 may not reap orphans)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return fields[0] == "Z"


# A grandchild that leaves the job's session, loses its parent chain (a double fork), clears its
# environment (so it cannot be found by CRONPLUS_RUN_ID) and ignores SIGTERM: runprocs.py says it
# cannot find such a process; only the run's cgroup still knows it.
ESCAPER = ("(env -i setsid sh -c 'echo $$ > {pidfile}; trap \"\" TERM; exec sleep 300' >/dev/null 2>&1 </dev/null &); "
           "while [ ! -s {pidfile} ]; do sleep 0.05; done; sleep 300")


def test_a_timeout_kills_a_grandchild_that_left_the_session_through_the_run_cgroup(
        tmp_path: Path, session_cgroup: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    result = supervise(tmp_path, ESCAPER.format(pidfile=pidfile), {"timeout": 1.0, "kill_grace": 0.5, "nice": 1},
                       cgroup=session_cgroup)
    assert result["timed_out"] is True
    assert result["base"] == str(session_cgroup)
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while not is_dead(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert is_dead(grandchild), "the grandchild survived the timeout"
    assert not [p for p in session_cgroup.iterdir() if p.is_dir()], "the run cgroup was not removed"


def test_without_limits_the_same_grandchild_survives_a_timeout(tmp_path: Path, session_cgroup: Path) -> None:
    """The control: what the run cgroup adds (cron's process-group kill cannot reach it)."""
    pidfile = tmp_path / "grandchild.pid"
    result = supervise(tmp_path, ESCAPER.format(pidfile=pidfile), {"timeout": 1.0, "kill_grace": 0.5},
                       cgroup=session_cgroup)
    assert result["timed_out"] is True
    grandchild = int(pidfile.read_text())
    try:
        assert not is_dead(grandchild)
    finally:
        os.kill(grandchild, signal.SIGKILL)


def test_a_limited_run_records_its_cpu_time_from_its_cgroup(tmp_path: Path, session_cgroup: Path) -> None:
    burn = f"{sys.executable} -c 'import time; t = time.process_time(); exec(\"while time.process_time() - t < 0.3: pass\")'"
    result = supervise(tmp_path, burn, {"nice": 2}, cgroup=session_cgroup)
    assert result["exit_code"] == 0
    assert isinstance(result["cpu_s"], float) and 0.25 <= result["cpu_s"] < 30
    controllers = (session_cgroup / "cgroup.controllers").read_text().split()
    if "memory" in controllers:
        assert isinstance(result["peak_memory_bytes"], int) and result["peak_memory_bytes"] > 0
    else:  # no memory controller given to us: memory.peak does not exist, nothing is made up
        assert result["peak_memory_bytes"] is None


def test_memory_max_in_a_cgroup_without_the_memory_controller_falls_back_to_an_rlimit(
        tmp_path: Path, session_cgroup: Path) -> None:
    controllers = (session_cgroup / "cgroup.controllers").read_text().split()
    alloc = f"{sys.executable} -c 'bytearray(200 * 1024 * 1024)'"
    result = supervise(tmp_path, alloc, {"memory_max": 64 * 1024 * 1024}, cgroup=session_cgroup)
    assert result["exit_code"] != 0
    if "memory" in controllers:
        assert result["plan"] == [f"memory-max=64M: cgroup v2 (delegated: {session_cgroup})"]
        assert result["limit_reason"] == "memory limit 64M reached"
    else:
        assert result["plan"] == [f"memory-max=64M: rlimit RLIMIT_DATA per process (no memory controller in "
                                  f"{session_cgroup}/cgroup.controllers)"]
        assert "MemoryError" in (tmp_path / "run.log").read_text()
        assert result["limit_reason"] is None  # an rlimit kills nothing: no reason is made up


def test_cpu_max_that_cannot_be_enforced_is_said_in_the_runs_log(tmp_path: Path, session_cgroup: Path) -> None:
    if "cpu" in (session_cgroup / "cgroup.controllers").read_text().split():
        pytest.skip("the cpu controller is available here: cpu-max is enforced")
    result = supervise(tmp_path, "echo ran", {"cpu_max": 0.5}, cgroup=session_cgroup)
    assert result["exit_code"] == 0
    log = (tmp_path / "run.log").read_text()
    assert "[cronplus: cpu-max=50%: NOT ENFORCED: needs the cgroup v2 cpu controller" in log
    assert log.endswith("ran\n")


def test_not_delegated_memory_max_and_nice_are_rlimit_and_setpriority(tmp_path: Path) -> None:
    script = ("import os; print(os.getpriority(os.PRIO_PROCESS, 0)); "
              "import sys; sys.stdout.flush(); bytearray(200 * 1024 * 1024)")
    result = supervise(tmp_path, f'{sys.executable} -c "{script}"', {"memory_max": 64 * 1024 * 1024, "nice": 7},
                       readonly_cgroups=True)
    assert result["base"] is None
    nice, memory = result["plan"]  # type: ignore[misc]
    assert nice == "nice=7: setpriority in the job's process"
    assert memory.startswith("memory-max=64M: rlimit RLIMIT_DATA per process (")
    assert memory.endswith("is not writable: not delegated (systemd Delegate=yes gives one))")
    log = (tmp_path / "run.log").read_text()
    assert log.startswith("7\n") and "MemoryError" in log
    assert result["exit_code"] == 1
    assert (result["cpu_s"], result["peak_memory_bytes"]) == (None, None)  # no cgroup: nothing measured


def test_a_limited_job_runs_in_its_run_cgroup_as_the_same_process_with_crons_environment(
        tmp_path: Path, session_cgroup: Path) -> None:
    probe = "echo $$; grep '^0::' /proc/self/cgroup; env | sort"
    limited = supervise(tmp_path, probe, {"tasks_max": 1000}, cgroup=session_cgroup)
    limited_log = (tmp_path / "run.log").read_text().splitlines()
    supervise(tmp_path, probe, {}, cgroup=session_cgroup)
    plain_log = (tmp_path / "run.log").read_text().splitlines()
    notes = [line for line in limited_log if line.startswith("[cronplus:")]  # tasks-max as root without pids
    limited_log = limited_log[len(notes):]
    assert limited_log[0] == str(limited["pid"])  # the job's shell is the process cronplus started
    own = "/" + str(session_cgroup.relative_to(cgroup2_mount() or "/"))
    assert limited_log[1] == f"0::{own}/cronplus-run-7"
    assert plain_log[1] == f"0::{own}"
    assert limited_log[2:] == plain_log[2:]  # the same environment, byte for byte


def test_a_systemd_units_cgroup_is_used_only_when_the_unit_delegates_it(tmp_path: Path, session_cgroup: Path) -> None:
    unit = session_cgroup / "cronplus.service"
    unit.mkdir()  # removed by the fixture
    result = supervise(tmp_path, "true", {"tasks_max": 1000}, cgroup=unit)
    assert result["base"] is None  # writable to root, but systemd's: no Delegate=yes
    assert result["plan"] == [f"tasks-max=1000: NOT ENFORCED: needs the cgroup v2 pids controller ({unit} is "
                              "systemd's: add Delegate=yes to the unit); RLIMIT_NPROC does not apply to root"]
    os.setxattr(unit, "trusted.delegate", b"1")  # what systemd >= 251 sets for Delegate=yes
    result = supervise(tmp_path, "true", {"tasks_max": 1000}, cgroup=unit)
    assert result["base"] == str(unit)
