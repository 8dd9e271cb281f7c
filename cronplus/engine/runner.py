"""One attempt of one job, run exactly as cron would, from an asyncio event loop.

Contract (docs/ARCHITECTURE.md, runner.py):
- `build_env` gives cron's environment and nothing of the supervisor's: the crontab's env lines
  in effect (in order, later wins), then SHELL=/bin/sh, HOME=<passwd dir>, PATH=/usr/bin:/bin
  only where the crontab did not set them, then LOGNAME and USER *always* from the passwd entry
  (cronie's entry.c load_entry: the first three are defaults, the last two overrides), then
  CRONPLUS_JOB / CRONPLUS_RUN_ID / CRONPLUS_ATTEMPT / CRONPLUS_SCHEDULED_TIME.
- `run_attempt` runs `$SHELL -c COMMAND` in its own session and process group, cwd $HOME, stdin
  /dev/null or the `%` text, stdout+stderr into the run log (0600, parent dirs 0700). It never
  raises for a job's failure: a spawn failure (shell missing, unknown user, chdir(HOME) failed,
  as cronie's do_command.c fails the job) comes back as `AttemptResult.error` with one
  `[cronplus: ...]` line in the log.
- Exit status: `exit_code` is the shell's status. When the shell was killed by a signal,
  `signal` is its number and `exit_code` is 128+signal, what `$?` shows in a shell and what
  `cronplus log` users read as "killed" (a job exiting 143 by itself has `signal` None).
- `timeout` or `cancel` set: SIGTERM (and SIGCONT) to the whole process group and to every
  process of the run that left it (`setsid`, a double fork: found by CRONPLUS_RUN_ID among the
  supervisor's descendants, runprocs.py), SIGKILL to them `kill_grace` seconds later if anything
  is still alive. Cancelling the coroutine
  itself SIGKILLs the group at once and reaps the shell before re-raising.
- Stragglers: when the shell exits normally, processes it left in the background keep running,
  as under cron. If one still holds the output pipe, the run is finished after OUTPUT_GRACE
  seconds (supervise.py; whatever it wrote until then is in the log); the pipe is then closed, so its later
  writes get EPIPE/SIGPIPE. They are not killed: cron does not kill them either.
- No thread per process: exit is seen through a pidfd in the loop (Linux >= 5.3), with a
  polling fallback; the shell is always reaped, also when killed or cancelled. Orphaned
  grandchildren are PID 1's to reap: under an init that does not reap (some containers), a
  killed group looks alive until its SIGKILL, so a timed-out run then ends after `kill_grace`.
- System mode (`system=True` and `job.user`): uid, gid and the supplementary groups of
  os.getgrouplist (initgroups semantics), HOME/LOGNAME/USER from that passwd entry; an unknown
  user is an error result. Popen changes directory before it drops privileges, so a HOME only
  root may enter still passes the chdir. When the job's identity is already ours, no switch is
  asked for, which keeps Popen's fast vfork path (W3: 1,000 spawns). passwd and group lookups
  are reused for PASSWD_TTL seconds (a failed lookup is never cached).
- Per attempt only what must be: the log file (and a new job's log directory) is created at
  the job's first byte of output (a job that prints nothing has none: its row keeps the path,
  `output` and the web read it as empty; output.prepare_log); one /dev/null fd serves every
  job's stdin.
- The supervisor's RLIMIT_NOFILE soft limit is raised once (each running attempt holds 3-4
  fds); each job gets the original limit back through prlimit right after the spawn.
- Resource limits (limits.py, cgroup.py): a job with `nice`/`memory-max`/`cpu-max`/`tasks-max`
  joins a cgroup v2 of its own when the supervisor has a delegated one (a /bin/sh prologue,
  JOIN_CGROUP, before the job's shell is exec'd with the same pid and environment); rlimit
  fallbacks and nice are set by a preexec_fn (the fork path; jobs without them keep vfork); a
  limit this host cannot enforce is one `[cronplus: ...]` line at the top of its log.
- Time: the runner never reads the wall clock for a result. `started_at` is the injected
  Clock's `time()` at the spawn, `ended_at` is `started_at` plus the attempt's duration measured
  on `time.monotonic()` (see `Spawned.now`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import pwd
import resource
import subprocess
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from cronplus.clock import Clock, SystemClock
from cronplus.engine import runio
from cronplus.engine.executor import AttemptResult
from cronplus.engine.output import StdinFeeder, devnull_fd, prepare_log
from cronplus.engine.procgroup import track
from cronplus.engine.runio import Pairs
from cronplus.engine.runprocs import RunTag
from cronplus.engine.spawned import Spawned, failure, why
from cronplus.engine.supervise import supervise
from cronplus.model import JobSpec

if TYPE_CHECKING:
    from cronplus.engine.cgroup import RunCgroup

__all__ = ["AttemptResult", "Spawned", "build_env", "log_path_for", "run_attempt", "spawn_attempt", "supervise"]

DEFAULT_PATH = "/usr/bin:/bin"  # cronie's _PATH_DEFPATH
DEFAULT_SHELL = "/bin/sh"  # cronie's _PATH_BSHELL


def log_path_for(log_dir: Path, job: str, run_id: int) -> Path:
    """<log_dir>/<job>/<run_id>.log"""
    return Path(log_dir) / job / f"{run_id}.log"


def build_env(
    job: JobSpec,
    *,
    run_id: int,
    attempt: int,
    scheduled_at: datetime,
    user: pwd.struct_passwd | None = None,
    params: Pairs = (),
    upstream: Mapping[str, Pairs] | None = None,
    output_file: str | None = None,
) -> dict[str, str]:
    """Cron's environment for one attempt (see the module docstring for the order); then a
    manual run's CRONPLUS_PARAM_<K>, its upstreams' CRONPLUS_UPSTREAM_<JOB>_<KEY> and
    CRONPLUS_OUTPUT (runio.py)."""
    pw = user if user is not None else _own_passwd()
    env: dict[str, str] = {}
    for key, value in job.env:  # later lines win, as env_set() replaces in place
        env[key] = value
    env.setdefault("SHELL", DEFAULT_SHELL)
    env.setdefault("HOME", pw.pw_dir)
    env.setdefault("PATH", DEFAULT_PATH)
    env["LOGNAME"] = pw.pw_name
    env["USER"] = pw.pw_name
    if scheduled_at.tzinfo is None:
        scheduled_at = scheduled_at.astimezone()
    env["CRONPLUS_JOB"] = job.name
    env["CRONPLUS_RUN_ID"] = str(run_id)
    env["CRONPLUS_ATTEMPT"] = str(attempt)
    env["CRONPLUS_SCHEDULED_TIME"] = scheduled_at.isoformat(timespec="seconds")
    if upstream:
        env.update(runio.upstream_env(upstream))
    if params:
        env.update(runio.param_env(params))
    if output_file is not None:
        env["CRONPLUS_OUTPUT"] = output_file
    return env


# -- fd limits ---------------------------------------------------------------------------


_nofile_raised = False
_child_nofile: tuple[int, int] | None = None


def _ensure_fd_capacity() -> None:
    """Raise our soft RLIMIT_NOFILE to the hard limit once: each running attempt holds 3-4 fds,
    and systemd's default soft limit of 1024 would stop us near 300 concurrent jobs. Jobs get the
    original limit back (`_restore_child_limit`), as cron's children would have it."""
    global _nofile_raised, _child_nofile
    if _nofile_raised:
        return
    _nofile_raised = True
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if want > soft:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            _child_nofile = (soft, hard)


def _restore_child_limit(pid: int) -> None:
    if _child_nofile is not None:
        with contextlib.suppress(OSError):
            resource.prlimit(pid, resource.RLIMIT_NOFILE, _child_nofile)


# -- identity ---------------------------------------------------------------------------


PASSWD_TTL = 10.0  # seconds a passwd/group lookup is reused: a 1,000-job minute asks once, not 1,000 times
_lookups: dict[tuple[str, int | str], tuple[float, Any]] = {}


_T = TypeVar("_T")


def _cached(kind: str, key: int | str, lookup: Callable[[], _T]) -> _T:
    """`lookup()` reused for PASSWD_TTL seconds (NSS can be a file parse or an LDAP round trip
    per call); a failure (KeyError: unknown user) is not cached, so a new user is seen at once."""
    now = time.monotonic()
    hit = _lookups.get((kind, key))
    if hit is not None and now - hit[0] < PASSWD_TTL:
        return cast(_T, hit[1])  # stored under this (kind, key) by the same lookup
    value = lookup()
    _lookups[(kind, key)] = (now, value)
    return value


def _identity(pw: pwd.struct_passwd) -> dict[str, Any]:
    """Popen arguments to become `pw` (initgroups semantics). Empty when we already are exactly
    that identity, which keeps the fast vfork spawn path (Popen cannot vfork with user=)."""
    groups = _cached("groups", f"{pw.pw_name}:{pw.pw_gid}", lambda: os.getgrouplist(pw.pw_name, pw.pw_gid))
    if (
        os.geteuid() == pw.pw_uid
        and os.getuid() == pw.pw_uid
        and os.getegid() == pw.pw_gid
        and sorted(set(os.getgroups())) == sorted(set(groups))
    ):
        return {}
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": groups}


# -- the attempt ------------------------------------------------------------------------


class _SpawnError(Exception):
    """Why the job could not be started; becomes AttemptResult.error and a log line."""


def _resolve_user(job: JobSpec, system: bool) -> tuple[pwd.struct_passwd, dict[str, Any]]:
    if system and job.user:
        name = job.user
        try:
            pw = _cached("name", name, lambda: pwd.getpwnam(name))
        except KeyError:
            raise _SpawnError(f"no such user '{job.user}'") from None
        return pw, _identity(pw)
    return _own_passwd(), {}


def _own_passwd() -> pwd.struct_passwd:
    uid = os.getuid()
    return _cached("uid", uid, lambda: pwd.getpwuid(uid))


def _spawn_error_text(exc: BaseException, shell: str, home: str) -> str:
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        if exc.filename == home:  # cronie: "chdir(HOME) failed", the job does not run
            return f"chdir(HOME) failed: {home}: {reason}"
        if exc.filename == shell:
            return f"cannot execute {shell}: {reason}"
        return f"cannot start {shell}: {reason}"
    return f"cannot start {shell}: {exc}"


def _write_note(spawned: Spawned, text: str) -> None:
    """One `[cronplus: ...]` line in the run's log (created for it: a note is output)."""
    with contextlib.suppress(OSError):
        os.write(spawned.open_log(), f"[cronplus: {text}]\n".encode())


def spawn_attempt(
    job: JobSpec,
    *,
    run_id: int,
    attempt: int,
    scheduled_at: datetime,
    log_path: Path,
    system: bool = False,
    clock: Clock | None = None,
    params: Pairs = (),
    upstream: Mapping[str, Pairs] | None = None,
    outputs_dir: Path | None = None,
) -> Spawned:
    """Start one attempt's process now (synchronously; never raises for the job's sake). A spawn
    failure comes back as `Spawned.failure`, with its `[cronplus: ...]` line in the log. `clock`
    gives the attempt's start (the scheduler passes its own; the system clock by default).
    `params`, `upstream`: build_env's; `outputs_dir`: where its $CRONPLUS_OUTPUT file is made
    (none without it), read by supervise."""
    spawned = Spawned(job, (clock or _SYSTEM_CLOCK).time(), time.monotonic())
    _ensure_fd_capacity()
    lost = None
    try:
        log_fd = prepare_log(log_path)  # the log itself is made at the job's first byte (-1)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return _failed(spawned, f"cannot open log {log_path}: {exc.strerror or exc}")
        # A full log disk is no reason not to run the job (cron runs it and loses the mail):
        # it runs, its output is drained and dropped, and its record says so.
        lost = f"output lost: {why(exc)}: {log_path}"
        log_fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    spawned.log_fd, spawned.log_path = log_fd, log_path
    try:
        pw, identity = _resolve_user(job, system)
        outputs = _output_file(outputs_dir, run_id, pw, identity)
        env = build_env(job, run_id=run_id, attempt=attempt, scheduled_at=scheduled_at, user=pw, params=params,
                        upstream=upstream, output_file=str(outputs.path) if outputs is not None else None)
    except _SpawnError as exc:
        _write_note(spawned, f"cannot start job: {exc}")
        spawned.close_fds()
        return _failed(spawned, str(exc))
    spawned.outputs = outputs
    shell, home = env["SHELL"], env["HOME"]
    argv = [shell, "-c", job.command]
    limited: dict[str, Any] = {}
    run_cgroup = None
    if _has_limits(job):
        argv, limited, run_cgroup = _limits(job, run_id, lambda text: _write_note(spawned, text), argv,
                                            switch=bool(identity))
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    feeder = StdinFeeder(job.stdin.encode()) if job.stdin is not None else None
    try:
        # Popen returns once the shell is exec'd (vfork path, ~1 ms); asyncio's own subprocess
        # API would add a transport and a child watcher per job for nothing we need.
        proc = subprocess.Popen(
            argv,
            stdin=feeder.read_fd if feeder else devnull_fd(),
            stdout=write_fd,
            stderr=write_fd,
            cwd=home,
            env=env,
            start_new_session=True,  # own session and process group: pgid == pid
            **identity,
            **limited,
        )
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        os.close(read_fd)
        if run_cgroup is not None:
            run_cgroup.remove()
        if feeder:
            feeder.close()
        error = _spawn_error_text(exc, shell, home)
        _write_note(spawned, f"cannot start job: {error}")
        spawned.close_fds()  # the log's fd and the outputs file
        return _failed(spawned, error)
    finally:
        os.close(write_fd)  # only the job holds the write end now: EOF when it and its children close it
    track(proc.pid)
    if run_cgroup is not None and identity:  # the child was another user by its preexec_fn: we place it
        try:
            run_cgroup.place(proc.pid)
        except OSError as exc:
            _write_note(spawned, f"the job runs outside its cgroup {run_cgroup.path}: {why(exc)}")
    _restore_child_limit(proc.pid)
    spawned.proc, spawned.read_fd, spawned.feeder = proc, read_fd, feeder
    spawned.output_lost, spawned.tag = lost, RunTag(run_id, job.name)
    spawned.cgroup = run_cgroup
    return spawned


# -- resource limits (limits.py) ----------------------------------------------------------


def _has_limits(job: JobSpec) -> bool:
    o = job.options
    return o.nice is not None or o.memory_max is not None or o.cpu_max is not None or o.tasks_max is not None


# Joins the run's cgroup, then execs the job's shell (same pid, same environment: cron's). The
# kernel's cgroup migration takes milliseconds (an RCU grace period); done here, after Popen's
# exec, the supervisor goes on spawning meanwhile and concurrent migrations share that wait.
JOIN_CGROUP = ('echo 0 2>/dev/null >"$0" || echo "[cronplus: the job runs outside its cgroup: cannot write $0]" >&2; '
               'exec "$@"')


def _limits(job: JobSpec, run_id: int, note: Callable[[str], None], argv: list[str], *,
            switch: bool) -> tuple[list[str], dict[str, Any], RunCgroup | None]:
    """(argv, Popen arguments, the run's cgroup) for a limited job: the cgroup made here and
    joined by a /bin/sh prologue (JOIN_CGROUP) before the job's shell; rlimits and nice by a
    preexec_fn (the fork path instead of vfork: only jobs with those limits pay it); one log
    line per limit this host cannot enforce. `switch`: the child becomes another user, who may
    not write cgroup.procs: the parent places it right after the exec instead (a shell that
    forks at once may leave a child outside: said in the README)."""
    from cronplus.engine import cgroup as cg
    from cronplus.engine import limits

    delegation = cg.delegated()
    plan = limits.plan(job.options, delegation)
    for e in plan:
        if not e.enforced:
            note(limits.describe(e))
    run_cgroup = None
    if limits.wants_cgroup(plan, delegation):
        values = limits.limits_of(job.options)
        try:
            run_cgroup = cg.RunCgroup.create(delegation, run_id, memory_max=job.options.memory_max,
                                             cpu_max=job.options.cpu_max, tasks_max=job.options.tasks_max)
        except OSError as exc:  # the limits fall back to what needs no cgroup, and the log says so
            note(f"cannot create a cgroup in {delegation.base}: {why(exc)}; limits "
                        + " ".join(f"{limits.annotation(f)}={limits.value_text(f, v)}" for f, v in values.items())
                        + " use rlimits where they can")
            plan = limits.plan(job.options, cg.Delegation(None, frozenset(), f"cannot create a cgroup: {why(exc)}"))
    setup = limits.child_setup(plan)
    if run_cgroup is not None and not switch and os.access(argv[0], os.X_OK):  # else Popen's own error
        argv = [DEFAULT_SHELL, "-c", JOIN_CGROUP, run_cgroup.procs, *argv]
    return argv, ({"preexec_fn": setup} if setup else {}), run_cgroup


async def run_attempt(
    job: JobSpec,
    *,
    run_id: int,
    attempt: int,
    scheduled_at: datetime,
    log_path: Path,
    system: bool = False,
    on_spawn: Callable[[int], None] | None = None,
    cancel: asyncio.Event | None = None,
    clock: Clock | None = None,
) -> AttemptResult:
    """Run one attempt to completion (see the module docstring). Never raises for the job's sake."""
    spawned = spawn_attempt(job, run_id=run_id, attempt=attempt, scheduled_at=scheduled_at,
                            log_path=log_path, system=system, clock=clock)
    if on_spawn is not None and spawned.pid is not None:
        try:
            on_spawn(spawned.pid)
        except BaseException:
            spawned.kill()
            raise
    return await supervise(spawned, cancel=cancel)


_SYSTEM_CLOCK = SystemClock()


def _output_file(directory: Path | None, run_id: int, pw: pwd.struct_passwd,
                 identity: dict[str, Any]) -> runio.OutputFile | None:
    """The attempt's $CRONPLUS_OUTPUT file; a job run as another user (system crontab) owns it."""
    if directory is None:
        return None
    try:
        made = runio.OutputFile(directory, run_id)
        if identity:
            os.chown(made.path, pw.pw_uid, pw.pw_gid)
    except OSError as exc:
        raise _SpawnError(f"cannot create the outputs file in {directory}: {exc.strerror or exc}") from None
    return made


def _failed(spawned: Spawned, error: str) -> Spawned:
    spawned.failure = failure(spawned, error)
    return spawned
