"""Shared pieces of the supervisor benchmarks (bench_supervisor.py, bench_tick.py): the job's
start stamp (a tiny C program), the two ~20-line bare loops (BARES: a threading one, BARE_LOOP,
and an asyncio one, BARE_ASYNCIO), starting each side on a shifted clock, and reading a
process's CPU and RSS from /proc.

A shifted clock: `python -m tests.shifted_run OFFSET ... run` is the real `cronplus run` whose
wall clock is the system clock plus OFFSET seconds, so the next minute boundary can be put a
few seconds after start instead of up to a minute away. The bare loop takes the same OFFSET.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STAMP_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s %ld.%09ld\n", argc > 2 ? argv[2] : "-", (long)ts.tv_sec, ts.tv_nsec);
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return 1;
    return write(fd, buf, n) == n ? 0 : 1;
}
"""

# argv: CRONTAB OUT RECORDS OFFSET MINUTES. Every `* * * * *` line runs at each of the next
# MINUTES minute boundaries of the clock shifted by OFFSET; other lines never. Output goes straight
# to OUT; a thread reaps each tick's children in order and appends "index status time" to RECORDS
# (the bare loop's "history record").
BARE_LOOP = r"""
import subprocess, sys, threading, time
crontab, out_path, rec_path, offset, minutes = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
lines = [l.rstrip("\n") for l in open(crontab) if l.strip() and not l.startswith("#")]
every = [l.split(None, 5)[5] for l in lines if l.split(None, 5)[:5] == ["*"] * 5]
out, rec = open(out_path, "ab"), open(rec_path, "a")
def reap(procs):
    for i, p in procs:
        p.wait()
        rec.write(f"{i} {p.returncode} {time.time():.6f}\n")
        rec.flush()
threads = []
for _ in range(minutes):
    time.sleep(60 - (time.time() + offset) % 60)
    procs = [(i, subprocess.Popen(c, shell=True, stdin=subprocess.DEVNULL, stdout=out, stderr=out))
             for i, c in enumerate(every)]
    threads.append(threading.Thread(target=reap, args=(procs,)))
    threads[-1].start()
for t in threads:
    t.join()
"""


# The same argv, jobs, output and record lines as BARE_LOOP, the asyncio way: each due command is
# started by asyncio.create_subprocess_shell, back to back, and a task per child awaits its
# proc.wait() and writes its record line. Child exits come through the event loop policy's
# default child watcher, used as is: on Python 3.11 that is ThreadedChildWatcher
# (asyncio/unix_events.py, _UnixDefaultEventLoopPolicy._init_watcher), which starts one thread
# per child, blocked in waitpid(pid) until it exits, then hands the status to the loop
# (call_soon_threadsafe). Python 3.12 picks PidfdChildWatcher where the kernel has pidfds.
BARE_ASYNCIO = r"""
import asyncio, subprocess, sys, time
crontab, out_path, rec_path, offset, minutes = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
lines = [l.rstrip("\n") for l in open(crontab) if l.strip() and not l.startswith("#")]
every = [l.split(None, 5)[5] for l in lines if l.split(None, 5)[:5] == ["*"] * 5]
out, rec = open(out_path, "ab"), open(rec_path, "a")
async def reap(i, proc):
    await proc.wait()
    rec.write(f"{i} {proc.returncode} {time.time():.6f}\n")
    rec.flush()
async def main():
    waits = []
    for _ in range(minutes):
        await asyncio.sleep(60 - (time.time() + offset) % 60)
        for i, c in enumerate(every):
            proc = await asyncio.create_subprocess_shell(c, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            waits.append(asyncio.create_task(reap(i, proc)))
    await asyncio.gather(*waits)
asyncio.run(main())
"""

BARES = {"bare": BARE_LOOP, "bare-asyncio": BARE_ASYNCIO}  # side name -> its script


def compile_stamp(work: Path) -> str:
    src = work / "stamp.c"
    src.write_text(STAMP_C)
    exe = work / "stamp"
    if shutil.which("gcc"):
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(src)], check=True)
        return str(exe)
    sh = work / "stamp.sh"  # fallback: a shell stamp (slower start, same measurement)
    sh.write_text('#!/bin/sh\necho "$2 $(date +%s.%N)" >> "$1"\n')
    sh.chmod(0o755)
    return str(sh)


def write_crontab(path: Path, n: int, command: str, schedule: str = "* * * * *", annotation: str = "") -> None:
    lines = []
    for i in range(n):
        lines.append(f"# cronplus: name=j{i:04d}{' ' + annotation if annotation else ''}")
        lines.append(f"{schedule} {command.format(i=i)}")
    path.write_text("\n".join(lines) + "\n")


def offset_for(lead: float) -> tuple[float, float]:
    """An offset putting the shifted clock's next minute boundary `lead` real seconds from now,
    and that boundary's real time."""
    now = time.time()
    real_boundary = now + lead
    shifted = (real_boundary // 60 + 1) * 60  # a whole minute at or after real_boundary...
    offset = shifted - real_boundary  # ...made to fall exactly on it
    return offset, real_boundary


# The supervisor's RuntimeDirectory=, as its systemd unit gives it one (/run/cronplus, a tmpfs:
# cronplus/rundir.py puts the jobs' $CRONPLUS_OUTPUT files there). None: as when run by hand
# (they go to the state dir, on this machine's journal-less ext4 ~0.1-0.2 ms of CPU a run more).
RUNTIME_BASE: Path | None = None


def runtime_base(work: Path) -> Path | None:
    """A private tmpfs directory standing in for /run (this machine's /run is on disk) for the
    supervisors' RuntimeDirectory=; None when there is no /dev/shm. Removed by the caller."""
    if not os.path.isdir("/dev/shm"):
        return None
    return Path(tempfile.mkdtemp(prefix=f"bench-run-{work.name}-", dir="/dev/shm"))


def start_cronplus(work: Path, crontab: Path, state: Path, offset: float, tag: str,
                   root: Path = ROOT, extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """The real supervisor (the checkout at `root`) on a shifted clock, with `run`'s options
    `extra` (e.g. --db URL --host-id ID), its RuntimeDirectory= under RUNTIME_BASE when set;
    returns once its control socket is up."""
    err = work / f"cronplus-{tag}.err"
    env = dict(os.environ)
    env.pop("RUNTIME_DIRECTORY", None)
    if RUNTIME_BASE is not None:
        runtime = RUNTIME_BASE / tag
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["RUNTIME_DIRECTORY"] = str(runtime)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.shifted_run", repr(offset), "--crontab", str(crontab), "--state-dir", str(state), "run", *extra],
        cwd=root, stdout=subprocess.DEVNULL, stderr=open(err, "w"), env=env)  # noqa: SIM115
    deadline = time.time() + 30
    while not (state / "control.sock").exists():
        if proc.poll() is not None or time.time() > deadline:
            stop(proc)
            raise SystemExit(f"cronplus did not start: {err.read_text()}")
        time.sleep(0.02)
    return proc


def start_bare(work: Path, crontab: Path, tag: str, offset: float, minutes: int,
               kind: str = "bare") -> subprocess.Popen[bytes]:
    """The bare loop BARES[kind]: output to `<work>/bare-<tag>.out`, records to `.rec`."""
    script = work / f"{kind}_loop.py"
    script.write_text(BARES[kind])
    return subprocess.Popen([sys.executable, str(script), str(crontab), str(work / f"bare-{tag}.out"),
                             str(work / f"bare-{tag}.rec"), repr(offset), str(minutes)])


def final_runs_sqlite(db: Path) -> int:
    """How many runs of a supervisor's SQLite history are final (not `running`): 0 while it cannot
    be read yet (read-only, never creates it)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
        try:
            return int(conn.execute("SELECT count(*) FROM runs WHERE status != 'running'").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {line.split(":")[0]: line.split(":", 1)[1].strip() for line in text.splitlines() if ":" in line}


def rss_mib(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of one process, MiB."""
    s = _status(pid)
    return int(s["VmRSS"].split()[0]) / 1024, int(s["VmHWM"].split()[0]) / 1024


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and all its descendants, MiB."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += rss_mib(p)[0]
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, KeyError):  # gone, or a zombie (no VmRSS)
            continue
    return total


def cpu_seconds(pid: int) -> tuple[float, int]:
    """CPU seconds on all live threads (schedstat: nanoseconds, not 10 ms clock ticks) and voluntary
    context switches (each a wake-up from a sleep) of one process. A thread that has exited is
    no longer listed, so its CPU is missing from a difference of two reads: stat_cpu_ticks has it."""
    ns = switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            ns += int((task / "schedstat").read_text().split()[0])
            status = (task / "status").read_text()
        except OSError:
            continue
        switches += int(next(line for line in status.splitlines() if line.startswith("voluntary_ctxt")).split()[1])
    return ns / 1e9, switches


CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_cpu_ticks(pid: int) -> tuple[int, int, int, int]:
    """(utime, stime, cutime, cstime) of one process from /proc/PID/stat (proc(5) fields 14-17),
    in clock ticks (10 ms here). utime+stime is the whole thread group's CPU, threads that have
    exited included; cutime+cstime is every child's it (any of its threads) has waited for, with
    what those had reaped in turn. The kernel keeps each in ns and rounds it down when read."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # after "(comm)": field 3 on
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return utime, stime, cutime, cstime


def stat_cpu_delta(before: tuple[int, int, int, int], after: tuple[int, int, int, int]) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds between two stat_cpu_ticks reads of a process that
    reaped children in between. Each field is rounded down when read, by half a tick on average,
    so a difference is within a tick per field, unbiased when both reads lost their half tick;
    a children's field that read 0 before was exactly 0 (nothing reaped yet: the bench reads it
    in a fresh process), so the half tick its later read lost is added back. Without that, a W2
    tick of 20 runs read ~10 ms, 0.5 ms a run, low: its jobs read 0.6 ms a run against 1.0 ms
    measured apart (job_cpu_alone). An own field may read 0 at the start too, but then it may as
    well be a few ms, so the own figure may read up to half a tick low per window."""
    own = after[0] + after[1] - before[0] - before[1]
    children = sum(a - b + (0.5 if b == 0 else 0.0) for a, b in zip(after[2:], before[2:], strict=True))
    return own / CLK_TCK, children / CLK_TCK


def job_cpu_alone(command: str, runs: int = 100) -> float:
    """CPU seconds one run of `command` costs by itself, started as the bare loops start it
    (/bin/sh -c) one at a time by this process: getrusage(RUSAGE_CHILDREN), in microseconds, over
    `runs` runs. A side's CPU/run (with its jobs) less its own should read about this."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(runs):
        subprocess.run(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / runs


def read_stamps(path: Path) -> list[tuple[str, float]]:
    if not path.exists():
        return []
    return [(parts[0], float(parts[-1])) for parts in (line.split() for line in path.read_text().splitlines()) if len(parts) >= 2]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def sleep_until(real: float) -> None:
    time.sleep(max(0.0, real - time.time()))


def nice_ratio(a: float, b: float) -> str:
    return f"x{a / b:.2f}" if b > 0 else "-"


def env_note() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
