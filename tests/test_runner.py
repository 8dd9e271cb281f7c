"""runner.run_attempt against real shell commands (a table, supercronic-style): exit codes, stdin,
cron's exact environment, cwd, sessions, timeouts, cancel, stragglers, output cap, zombies."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import stat
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cronplus.engine.runner import AttemptResult, build_env, log_path_for, run_attempt
from cronplus.errors import SourceLoc
from cronplus.model import JobOptions, JobSpec, Schedule

TICK = datetime(2025, 3, 30, 3, 0, tzinfo=ZoneInfo("Europe/Berlin"))
EVERY_MINUTE = Schedule(
    text="* * * * *",
    minutes=frozenset(range(60)),
    hours=frozenset(range(24)),
    days=frozenset(range(1, 32)),
    months=frozenset(range(1, 13)),
    weekdays=frozenset(range(7)),
    dom_star=True,
    dow_star=True,
    minute_star=True,
    hour_star=True,
)


def make_job(
    command: str, *, stdin: str | None = None, env: tuple[tuple[str, str], ...] = (), user: str | None = None, **options: object
) -> JobSpec:
    return JobSpec(
        loc=SourceLoc(path="crontab", line=1),
        name="job",
        schedule=EVERY_MINUTE,
        command=command,
        stdin=stdin,
        env=env,
        options=JobOptions(**options),  # type: ignore[arg-type]
        user=user,
    )


def run(job: JobSpec, log: Path, **kwargs: object) -> AttemptResult:
    return asyncio.run(run_attempt(job, run_id=7, attempt=2, scheduled_at=TICK, log_path=log, **kwargs))  # type: ignore[arg-type]


def is_dead(pid: int) -> bool:
    """Gone, or a zombie that is not ours (this sandbox's PID 1 does not reap orphans)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return True
    return fields[0] == "Z" and int(fields[1]) != os.getpid()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def our_zombies() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == os.getpid():
                found.append(int(entry))
    return found


@pytest.mark.parametrize(
    ("command", "exit_code", "sig"),
    [
        ("true", 0, None),
        ("exit 3", 3, None),
        ("exit 99", 99, None),  # the default skip code: the runner just reports it
        ("false; exit 255", 255, None),
        ("kill -TERM $$", 143, 15),
        ("kill -KILL $$", 137, 9),
    ],
)
def test_it_reports_the_shells_exit_status(tmp_path: Path, command: str, exit_code: int, sig: int | None) -> None:
    result = run(make_job(command), tmp_path / "run.log")
    assert (result.exit_code, result.signal, result.error) == (exit_code, sig, None)
    assert not result.timed_out and not result.cancelled
    assert result.pid is not None and result.ended_at >= result.started_at


def test_it_feeds_the_percent_text_as_stdin(tmp_path: Path) -> None:
    result = run(make_job("cat", stdin="hello\nworld"), tmp_path / "run.log")
    assert result.exit_code == 0
    assert (tmp_path / "run.log").read_bytes() == b"hello\nworld"


def test_it_feeds_a_stdin_larger_than_a_pipe_without_deadlock(tmp_path: Path) -> None:
    big = "x" * (3 * 1024 * 1024)
    result = run(make_job("sleep 0.1; wc -c", stdin=big), tmp_path / "run.log")
    assert result.exit_code == 0
    assert (tmp_path / "run.log").read_text().strip() == str(len(big))


def test_a_job_that_ignores_a_big_stdin_still_finishes(tmp_path: Path) -> None:
    result = run(make_job("echo done", stdin="y" * (2 * 1024 * 1024)), tmp_path / "run.log")
    assert result.exit_code == 0
    assert (tmp_path / "run.log").read_text() == "done\n"


def test_stdin_is_dev_null_without_percent_text(tmp_path: Path) -> None:
    result = run(make_job("cat; readlink /proc/$$/fd/0"), tmp_path / "run.log")
    assert result.exit_code == 0
    assert (tmp_path / "run.log").read_text() == "/dev/null\n"


def parse_env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_the_environment_is_exactly_crons_and_nothing_leaks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC", "LISTEN_FDS", "INVOCATION_ID", "LANG"):
        monkeypatch.setenv(name, "leak")
    home = tmp_path / "home"
    home.mkdir()
    job = make_job("env | sort", env=(("HOME", str(home)), ("MAILTO", "a"), ("MAILTO", "b"), ("FOO", "bar baz")))
    result = run(job, tmp_path / "run.log")
    assert result.exit_code == 0
    me = pwd.getpwuid(os.getuid()).pw_name
    assert parse_env((tmp_path / "run.log").read_text()) == {
        "HOME": str(home),
        "MAILTO": "b",  # later lines win
        "FOO": "bar baz",
        "LOGNAME": me,
        "USER": me,
        "SHELL": "/bin/sh",
        "PATH": "/usr/bin:/bin",
        "PWD": str(home),  # set by the shell itself
        "CRONPLUS_JOB": "job",
        "CRONPLUS_RUN_ID": "7",
        "CRONPLUS_ATTEMPT": "2",
        "CRONPLUS_SCHEDULED_TIME": "2025-03-30T03:00:00+02:00",
    }


def test_crontab_lines_override_shell_and_path_but_not_logname_or_user() -> None:
    # cronie entry.c: SHELL/HOME/PATH are defaults, LOGNAME/USER are always the passwd name.
    job = make_job("x", env=(("SHELL", "/bin/bash"), ("PATH", "/opt/bin"), ("LOGNAME", "eve"), ("USER", "eve")))
    pw = pwd.getpwuid(os.getuid())
    env = build_env(job, run_id=1, attempt=1, scheduled_at=TICK, user=pw)
    assert (env["SHELL"], env["PATH"], env["HOME"]) == ("/bin/bash", "/opt/bin", pw.pw_dir)
    assert (env["LOGNAME"], env["USER"]) == (pw.pw_name, pw.pw_name)


def test_the_shell_comes_from_the_crontab_env(tmp_path: Path) -> None:
    job = make_job('echo "$BASH_VERSION"', env=(("SHELL", "/bin/bash"), ("HOME", str(tmp_path))))
    assert run(job, tmp_path / "run.log").exit_code == 0
    assert (tmp_path / "run.log").read_text().strip() != ""


def test_the_working_directory_is_home(tmp_path: Path) -> None:
    result = run(make_job("pwd -P", env=(("HOME", str(tmp_path)),)), tmp_path / "run.log")
    assert result.exit_code == 0
    assert (tmp_path / "run.log").read_text() == f"{tmp_path.resolve()}\n"


def test_a_missing_home_fails_the_job_like_cronie(tmp_path: Path) -> None:
    result = run(make_job("echo ran", env=(("HOME", str(tmp_path / "nope")),)), tmp_path / "run.log")
    assert result.exit_code is None and result.pid is None
    assert result.error is not None and result.error.startswith("chdir(HOME) failed")
    assert "chdir(HOME) failed" in (tmp_path / "run.log").read_text()


def test_a_missing_shell_is_an_error_result_and_a_log_line(tmp_path: Path) -> None:
    result = run(make_job("true", env=(("SHELL", "/no/such/shell"),)), tmp_path / "run.log")
    assert result.exit_code is None
    assert result.error == "cannot execute /no/such/shell: No such file or directory"
    assert (tmp_path / "run.log").read_text() == f"[cronplus: cannot start job: {result.error}]\n"


def test_the_job_runs_in_its_own_session_and_process_group(tmp_path: Path) -> None:
    result = run(make_job("cut -d' ' -f5,6 /proc/$$/stat"), tmp_path / "run.log")
    pgid, sid = map(int, (tmp_path / "run.log").read_text().split())
    assert pgid == sid == result.pid
    assert pgid != os.getpgid(0)


def test_stdout_and_stderr_both_go_to_the_log_in_order(tmp_path: Path) -> None:
    run(make_job("echo out; echo err >&2; echo out2"), tmp_path / "run.log")
    assert (tmp_path / "run.log").read_text() == "out\nerr\nout2\n"


def test_the_job_inherits_no_descriptor_of_the_supervisor(tmp_path: Path) -> None:
    async def main() -> list[str]:
        pids: list[int] = []
        task = asyncio.ensure_future(
            run_attempt(
                make_job("exec sleep 0.5"),
                run_id=1,
                attempt=1,
                scheduled_at=TICK,
                log_path=tmp_path / "run.log",
                on_spawn=pids.append,
            )
        )
        await asyncio.sleep(0.2)
        fds = sorted(os.listdir(f"/proc/{pids[0]}/fd"), key=int)
        await task
        return fds

    assert asyncio.run(main()) == ["0", "1", "2"]


def test_the_log_is_owner_only_and_its_new_directories_too(tmp_path: Path) -> None:
    log = log_path_for(tmp_path / "logs", "job", 7)
    assert log == tmp_path / "logs" / "job" / "7.log"
    run(make_job("echo hi"), log)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "logs").stat().st_mode) == 0o700


def test_a_log_directory_removed_between_runs_is_created_again(tmp_path: Path) -> None:
    first, second = log_path_for(tmp_path / "logs", "job", 1), log_path_for(tmp_path / "logs", "job", 2)
    assert run(make_job("echo one"), first).exit_code == 0
    shutil.rmtree(tmp_path / "logs")  # e.g. an operator cleaning up while the supervisor runs
    result = run(make_job("echo two"), second)
    assert result.exit_code == 0 and result.error is None
    assert second.read_text() == "two\n"
    assert stat.S_IMODE(second.parent.stat().st_mode) == 0o700


def test_an_existing_log_file_is_truncated_and_made_owner_only(tmp_path: Path) -> None:
    log = log_path_for(tmp_path / "logs", "job", 7)
    log.parent.mkdir(parents=True)
    log.write_text("stale output from an earlier database\n")
    log.chmod(0o644)
    run(make_job("echo fresh"), log)
    assert log.read_text() == "fresh\n"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_on_spawn_gets_the_pid(tmp_path: Path) -> None:
    seen: list[int] = []
    result = run(make_job("true"), tmp_path / "run.log", on_spawn=seen.append)
    assert seen == [result.pid]


TERM_PROOF_TREE = "trap '' TERM; sh -c 'trap \"\" TERM; sleep 100 & echo $!; wait' & echo $!; wait"


def test_a_timeout_kills_a_term_ignoring_child_and_its_grandchild(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(make_job(TERM_PROOF_TREE, timeout=0.8, kill_grace=0.3), tmp_path / "run.log")
    elapsed = time.monotonic() - started
    assert result.timed_out and not result.cancelled
    assert result.signal == 9 and result.exit_code == 137
    pids = [int(p) for p in (tmp_path / "run.log").read_text().split()]
    assert len(pids) == 2
    assert wait_until(lambda: all(is_dead(p) for p in pids))  # SIGKILL lands within moments
    assert elapsed < 8  # the kill grace of 0.3 s, not the default 10 s, nor the 100 s sleep


def test_a_timeout_that_sigterm_ends_does_not_wait_for_sigkill(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(make_job("exec sleep 30", timeout=0.2, kill_grace=5), tmp_path / "run.log")
    assert result.timed_out and result.signal == 15
    assert time.monotonic() - started < 4.5  # no waiting out the 5 s kill grace


def test_setting_cancel_terminates_the_group(tmp_path: Path) -> None:
    async def main() -> AttemptResult:
        cancel = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, cancel.set)
        return await run_attempt(
            make_job("exec sleep 30"), run_id=1, attempt=1, scheduled_at=TICK, log_path=tmp_path / "run.log", cancel=cancel
        )

    result = asyncio.run(main())
    assert result.cancelled and not result.timed_out
    assert result.signal == 15


def test_cancelling_the_task_kills_and_reaps_the_job(tmp_path: Path) -> None:
    pids: list[int] = []

    async def main() -> None:
        task = asyncio.ensure_future(
            run_attempt(
                make_job("sleep 30"), run_id=1, attempt=1, scheduled_at=TICK, log_path=tmp_path / "run.log", on_spawn=pids.append
            )
        )
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert pids and wait_until(lambda: is_dead(pids[0]))
    assert our_zombies() == []


def test_a_background_child_holding_the_pipe_does_not_hang_the_run(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(make_job("sleep 30 & echo hi"), tmp_path / "run.log")
    try:
        assert time.monotonic() - started < 20  # not the 30 s of the straggler
        assert result.exit_code == 0
        assert (tmp_path / "run.log").read_text() == "hi\n"
    finally:
        assert result.pid is not None
        os.killpg(result.pid, 9)  # the straggler keeps running, as under cron: clean it up


def test_output_over_the_cap_keeps_head_and_tail_with_a_marker(tmp_path: Path) -> None:
    expected = "".join(f"{i}\n" for i in range(1, 100001)).encode()
    result = run(make_job("seq 1 100000", max_log_size=4096), tmp_path / "run.log")
    data = (tmp_path / "run.log").read_bytes()
    head, tail = 3072, 1024  # tail = min(cap // 4, 1 MiB)
    dropped = len(expected) - head - tail
    assert result.output_bytes == len(expected) and result.truncated
    assert data == expected[:head] + f"\n[cronplus: {dropped} bytes dropped]\n".encode() + expected[-tail:]


def test_output_under_the_cap_is_kept_whole(tmp_path: Path) -> None:
    expected = "".join(f"{i}\n" for i in range(1, 100001)).encode()
    result = run(make_job("seq 1 100000", max_log_size=len(expected)), tmp_path / "run.log")
    assert (tmp_path / "run.log").read_bytes() == expected
    assert result.output_bytes == len(expected) and not result.truncated


def peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_huge_output_is_drained_in_bounded_memory(tmp_path: Path) -> None:
    size = 200 * 1024 * 1024
    before = peak_rss_kb()
    result = run(make_job(f"head -c {size} /dev/zero", max_log_size=8 * 1024 * 1024), tmp_path / "run.log")
    assert result.exit_code == 0 and result.output_bytes == size and result.truncated
    assert (tmp_path / "run.log").stat().st_size < 8 * 1024 * 1024 + 100
    assert peak_rss_kb() - before < 20 * 1024


def test_no_zombies_are_left_after_many_kinds_of_runs(tmp_path: Path) -> None:
    for i, job in enumerate([make_job("exit 1"), make_job("kill -9 $$"), make_job("sleep 5", timeout=0.1, kill_grace=0.1)]):
        run(job, tmp_path / f"{i}.log")
    assert our_zombies() == []


def test_two_hundred_concurrent_attempts_complete(tmp_path: Path) -> None:
    async def main() -> list[AttemptResult]:
        return await asyncio.gather(
            *(
                run_attempt(
                    make_job("echo $CRONPLUS_RUN_ID"), run_id=i, attempt=1, scheduled_at=TICK, log_path=tmp_path / f"{i}.log"
                )
                for i in range(200)
            )
        )

    results = asyncio.run(main())
    assert [r.exit_code for r in results] == [0] * 200
    assert all((tmp_path / f"{i}.log").read_text() == f"{i}\n" for i in range(200))
    assert our_zombies() == []


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@root_only
def test_system_mode_runs_as_the_user_with_its_groups(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    job = make_job("id -u; id -g; id -G; echo $LOGNAME $USER", env=(("HOME", "/"),), user="nobody")
    result = run(job, tmp_path / "run.log", system=True)
    assert result.exit_code == 0, (tmp_path / "run.log").read_text()
    uid, gid, groups, names = (tmp_path / "run.log").read_text().splitlines()
    assert (int(uid), int(gid)) == (nobody.pw_uid, nobody.pw_gid)
    assert sorted(map(int, groups.split())) == sorted(set(os.getgrouplist("nobody", nobody.pw_gid)))
    assert names == "nobody nobody"


@root_only
def test_system_mode_takes_home_from_the_users_passwd_entry(tmp_path: Path) -> None:
    # nobody's home is /nonexistent: cronie fails such a job with "chdir(HOME) failed".
    result = run(make_job("true", user="nobody"), tmp_path / "run.log", system=True)
    assert result.error is not None and "chdir(HOME) failed: /nonexistent" in result.error


def test_system_mode_with_an_unknown_user_is_an_error_result(tmp_path: Path) -> None:
    result = run(make_job("true", user="no-such-user-xyz"), tmp_path / "run.log", system=True)
    assert result.exit_code is None and result.error == "no such user 'no-such-user-xyz'"
    assert "no such user" in (tmp_path / "run.log").read_text()


def test_a_child_reaped_behind_our_back_is_an_error_result_not_a_hang(tmp_path: Path) -> None:
    import signal

    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel then reaps every child itself
    try:
        result = run(make_job("echo hi"), tmp_path / "run.log")
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert result.exit_code is None and result.pid is not None
    assert result.error == "exit status lost: the job was reaped outside cronplus"
    assert (tmp_path / "run.log").read_text() == "hi\n"


def test_spawn_attempt_starts_the_process_before_anything_awaits_it(tmp_path: Path) -> None:
    """The scheduler spawns a tick's jobs back to back and supervises them afterwards: the job
    runs from spawn_attempt on, and supervise collects its output and status later."""
    from cronplus.engine.runner import spawn_attempt, supervise

    marker = tmp_path / "ran"
    spawned = spawn_attempt(make_job(f"echo out; touch {marker}"), run_id=1, attempt=1, scheduled_at=TICK,
                            log_path=tmp_path / "run.log")
    assert spawned.pid is not None and spawned.failure is None
    assert wait_until(lambda: marker.exists(), timeout=5.0)  # no event loop has run yet
    result = asyncio.run(supervise(spawned))
    assert (result.exit_code, result.pid, result.output_bytes) == (0, spawned.pid, 4)
    assert (tmp_path / "run.log").read_text() == "out\n"
    assert our_zombies() == []


def test_a_spawn_failure_is_returned_by_supervise_with_its_note_in_the_log(tmp_path: Path) -> None:
    from cronplus.engine.runner import spawn_attempt, supervise

    job = make_job("true", env=(("SHELL", str(tmp_path / "no-such-shell")),))
    spawned = spawn_attempt(job, run_id=1, attempt=1, scheduled_at=TICK, log_path=tmp_path / "run.log")
    assert spawned.pid is None
    result = asyncio.run(supervise(spawned))
    assert result.exit_code is None and result.error and "no-such-shell" in result.error
    assert "[cronplus: cannot start job:" in (tmp_path / "run.log").read_text()


def test_an_abandoned_spawn_is_killed_with_its_group_reaped_and_its_fds_closed(tmp_path: Path) -> None:
    """If the supervisor fails between spawn and supervision, nothing is left behind."""
    from cronplus.engine.runner import spawn_attempt

    fds_before = set(os.listdir("/proc/self/fd"))
    child = tmp_path / "child.pid"
    spawned = spawn_attempt(make_job(f"sleep 100 & echo $! > {child}.tmp; mv {child}.tmp {child}; wait"),
                            run_id=1, attempt=1, scheduled_at=TICK, log_path=tmp_path / "run.log")
    assert spawned.pid is not None
    assert wait_until(child.exists, timeout=5.0)
    spawned.kill()
    spawned.kill()  # idempotent
    assert is_dead(spawned.pid)
    assert wait_until(lambda: is_dead(int(child.read_text())), timeout=5.0)
    assert our_zombies() == []
    assert set(os.listdir("/proc/self/fd")) <= fds_before | {str(fd) for fd in _devnull_fds()}


def _devnull_fds() -> list[int]:
    from cronplus.engine.output import devnull_fd

    return [devnull_fd()]
