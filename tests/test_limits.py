"""Resource-limit annotations (nice= memory-max= cpu-max= tasks-max=), how each is enforced
(limits.plan), the reason of a run a limit killed, and what `cronplus check` says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cronplus.crontab.parser import parse_crontab
from cronplus.engine.cgroup import Delegation
from cronplus.engine.executor import AttemptResult
from cronplus.engine.limits import describe, limit_reason, plan
from cronplus.engine.policy import outcome
from cronplus.errors import CrontabError, Severity
from cronplus.model import JobOptions
from cronplus.status import RunStatus


def options_of(annotation: str) -> JobOptions:
    return parse_crontab(f"# cronplus: {annotation}\n0 0 * * * cmd\n", path="ct", system=False).jobs[0].options


def errors(text: str) -> list[str]:
    with pytest.raises(CrontabError) as info:
        parse_crontab(text, path="ct", system=False)
    return [str(d) for d in info.value.diagnostics if d.severity is Severity.ERROR]


@pytest.mark.parametrize(("annotation", "field", "value"), [
    ("nice=10", "nice", 10), ("nice=-5", "nice", -5), ("nice=19", "nice", 19),
    ("memory-max=512M", "memory_max", 512 * 1024**2), ("memory-max=2G", "memory_max", 2 * 1024**3),
    ("cpu-max=50%", "cpu_max", 0.5), ("cpu-max=150%", "cpu_max", 1.5), ("cpu-max=1.5", "cpu_max", 1.5),
    ("cpu-max=2", "cpu_max", 2.0), ("tasks-max=64", "tasks_max", 64),
])
def test_limit_values(annotation: str, field: str, value: object) -> None:
    assert getattr(options_of(annotation), field) == value


def test_limits_are_unset_by_default_and_take_defaults_lines() -> None:
    assert (JobOptions().nice, JobOptions().memory_max, JobOptions().cpu_max, JobOptions().tasks_max) == (None,) * 4
    crontab = parse_crontab("# cronplus-defaults: memory-max=1G\n0 0 * * * a\n", path="ct", system=False)
    assert crontab.jobs[0].options.memory_max == 1024**3


@pytest.mark.parametrize(("annotation", "message"), [
    ("nice=20", "ct:1:18: bad nice: '20' is not a whole number -20 to 19"),
    ("nice=x", "ct:1:18: bad nice: 'x' is not a whole number -20 to 19"),
    ("memory-max=12", "ct:1:24: bad memory-max: '12' is too small: at least 1M (a shell alone needs more)"),
    ("memory-max=lots", "ct:1:24: bad memory-max: 'lots' is not a size (like 4096, 512K, 100M, 1G)"),
    ("cpu-max=0%", "ct:1:21: bad cpu-max: '0%' is not a CPU share (like 50%, 150% or 1.5 CPUs; at least 1%)"),
    ("cpu-max=half", "ct:1:21: bad cpu-max: 'half' is not a CPU share (like 50%, 150% or 1.5 CPUs; at least 1%)"),
    ("tasks-max=0", "ct:1:23: bad tasks-max: '0' is not a whole number >= 1"),
])
def test_bad_limit_values_are_file_line_col_errors(annotation: str, message: str) -> None:
    assert errors(f"# cronplus: {annotation}\n0 0 * * * cmd\n") == [message]


def test_a_misspelt_limit_key_gets_a_did_you_mean() -> None:
    assert errors("# cronplus: memroy-max=1G\n0 0 * * * cmd\n") == [
        "ct:1:13: unknown annotation key 'memroy-max' (did you mean 'memory-max'?)"]
    assert errors("# cronplus: task-max=3\n0 0 * * * cmd\n")[0].endswith("(did you mean 'tasks-max'?)")


ALL = JobOptions(nice=5, memory_max=512 * 1024**2, cpu_max=0.5, tasks_max=64)
FULL = Delegation(Path("/sys/fs/cgroup/system.slice/cronplus.service"), frozenset({"memory", "cpu", "pids"}), "")
BARE = Delegation(Path("/sys/fs/cgroup/unified"), frozenset({"hugetlb"}), "")
NONE = Delegation(None, frozenset(), "/sys/fs/cgroup is not writable: not delegated (systemd Delegate=yes gives one)")


def test_with_every_controller_delegated_the_limits_are_the_run_cgroups() -> None:
    where = "cgroup v2 (delegated: /sys/fs/cgroup/system.slice/cronplus.service)"
    assert [describe(e) for e in plan(ALL, FULL, euid=1000)] == [
        "nice=5: setpriority in the job's process", f"memory-max=512M: {where}", f"cpu-max=50%: {where}",
        f"tasks-max=64: {where}"]


def test_without_cgroups_memory_and_tasks_are_rlimits_and_cpu_max_is_reported_not_enforced() -> None:
    why = "(/sys/fs/cgroup is not writable: not delegated (systemd Delegate=yes gives one))"
    assert [describe(e) for e in plan(ALL, NONE, euid=1000)] == [
        "nice=5: setpriority in the job's process",
        f"memory-max=512M: rlimit RLIMIT_DATA per process {why}",
        f"cpu-max=50%: NOT ENFORCED: needs the cgroup v2 cpu controller {why}; RLIMIT_CPU limits CPU time, not a rate",
        f"tasks-max=64: rlimit RLIMIT_NPROC: counts all processes of the user {why}"]


def test_as_root_without_the_pids_controller_tasks_max_is_not_enforced_and_says_which_controller() -> None:
    (tasks,) = plan(JobOptions(tasks_max=64), BARE, euid=0)
    assert describe(tasks) == ("tasks-max=64: NOT ENFORCED: needs the cgroup v2 pids controller (no pids controller in "
                               "/sys/fs/cgroup/unified/cgroup.controllers); RLIMIT_NPROC does not apply to root")


def test_a_negative_nice_needs_root() -> None:
    assert not plan(JobOptions(nice=-5), NONE, euid=1000)[0].enforced
    assert plan(JobOptions(nice=-5), NONE, euid=0)[0].enforced


def result(**kw: object) -> AttemptResult:
    base: dict[str, object] = {"exit_code": 137, "signal": 9, "timed_out": False, "cancelled": False,
                               "started_at": 0.0, "ended_at": 1.0, "pid": 10, "output_bytes": 0, "truncated": False}
    return AttemptResult(**{**base, **kw})  # type: ignore[arg-type]


def test_a_run_the_oom_killer_ended_says_which_limit_it_reached() -> None:
    out = outcome(result(limit_reason="memory limit 512M reached"), JobOptions(memory_max=512 * 1024**2))
    assert (out.status, out.reason) == (RunStatus.FAILED, "memory limit 512M reached (killed by signal 9 (SIGKILL))")
    out = outcome(result(limit_reason="memory limit 512M reached", exit_code=1, signal=None), JobOptions())
    assert out.reason == "memory limit 512M reached (exit 1)"  # a child was killed, the shell said so
    assert outcome(result(exit_code=0, signal=None, limit_reason="memory limit 1M reached"), JobOptions()).status \
        is RunStatus.SUCCESS  # it succeeded anyway: a success is not turned into a failure


def test_the_limit_reason_names_the_limit_the_cgroup_counted() -> None:
    both = JobOptions(memory_max=512 * 1024**2, tasks_max=64)
    assert limit_reason(both, 1, 0) == "memory limit 512M reached"
    assert limit_reason(both, 0, 3) == "task limit 64 reached (3 fork(s) refused)"
    assert limit_reason(both, 0, 0) is None
    assert limit_reason(JobOptions(), 1, 3) is None  # counted, but not by a limit of ours


def test_check_lists_how_each_limit_is_enforced_and_warns_on_one_that_is_not(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=train nice=5 cpu-max=150%\n* * * * * train.sh\n")
    done = subprocess.run([sys.executable, "-m", "cronplus", "check", str(crontab)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0
    assert "limits: train: nice=5: setpriority in the job's process\n" in done.stdout
    cpu = [line for line in (done.stdout + done.stderr).splitlines() if "cpu-max=150%" in line]
    assert len(cpu) == 1
    if "NOT ENFORCED" in cpu[0]:  # this machine's cgroup (the test's process) decides which it is
        assert cpu[0].startswith(f"{crontab}:2:1: warning: job train: cpu-max=150%: NOT ENFORCED: needs the cgroup v2 cpu")
        assert done.stdout.endswith("ok: 1 job, 1 warning\n")
    else:
        assert cpu[0].startswith("limits: train: cpu-max=150%: cgroup v2 (delegated: ")
