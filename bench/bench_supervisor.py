#!/usr/bin/env python3
"""Supervisor benchmarks (workloads in /work/shared/BENCH.md), each side by side with a ~20-line
bare Python loop that sleeps to the next minute and spawns every command with subprocess.

  W1 idle:      N jobs far ahead (yearly); RSS and CPU seconds of each process over --idle seconds
  W2 delay:     20 `* * * * *` jobs stamping their start (a tiny C program); delay from the minute
                boundary over --minutes minutes each: median, p95 (one after the other)
  W3 fan-out:   --fanout jobs due at one minute; until the last has started / all are recorded;
                peak RSS (one after the other, one minute each)

Usage: .venv/bin/python bench/bench_supervisor.py [--only W1,W2,W3] [--minutes 3] [--idle 120]
A job "starts" when its stamp process writes clock_gettime(CLOCK_REALTIME).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
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

BARE_LOOP = r"""
import subprocess, sys, time
# The bare loop: parse `m h dom mon dow cmd` lines, run every job each minute (all are * * * * *)
# or never (anything else), output straight to a file.
lines = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
every = [l.split(None, 5)[5] for l in lines if l.split(None, 5)[:5] == ["*"] * 5]
out = open(sys.argv[2], "ab")
minutes = int(sys.argv[3]) if len(sys.argv) > 3 else 10**9
children = []
for _ in range(minutes):
    time.sleep(60 - time.time() % 60)
    children = [p for p in children if p.poll() is None]
    for cmd in every:
        children.append(subprocess.Popen(cmd, shell=True, stdout=out, stderr=out, stdin=subprocess.DEVNULL))
for p in children:
    p.wait()
"""


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


def write_crontab(path: Path, n: int, command: str, schedule: str = "* * * * *") -> None:
    lines = []
    for i in range(n):
        lines.append(f"# cronplus: name=j{i:04d}")
        lines.append(f"{schedule} {command.format(i=i)}")
    path.write_text("\n".join(lines) + "\n")


def start_cronplus(work: Path, crontab: Path, tag: str) -> subprocess.Popen[bytes]:
    state = work / f"state-{tag}"
    proc = subprocess.Popen([str(ROOT / ".venv/bin/cronplus"), "--crontab", str(crontab), "--state-dir", str(state),
                             "run"], stdout=subprocess.DEVNULL, stderr=open(work / f"cronplus-{tag}.err", "w"))  # noqa: SIM115
    deadline = time.time() + 15
    while not (state / "control.sock").exists():
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"cronplus did not start: {(work / f'cronplus-{tag}.err').read_text()}")
        time.sleep(0.05)
    return proc


def start_bare(work: Path, crontab: Path, tag: str, minutes: int = 10**6) -> subprocess.Popen[bytes]:
    script = work / "bare_loop.py"
    script.write_text(BARE_LOOP)
    return subprocess.Popen([sys.executable, str(script), str(crontab), str(work / f"bare-{tag}.out"), str(minutes)])


def proc_stats(pid: int) -> tuple[float, float, float]:
    """(RSS MiB, peak RSS MiB, CPU seconds user+system) of one process."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if line.startswith("Vm")}
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return int(fields["VmRSS"]) / 1024, int(fields["VmHWM"]) / 1024, cpu


def cpu_and_wakeups(pid: int) -> tuple[float, int]:
    """CPU seconds on all threads (schedstat: nanoseconds, not 10 ms clock ticks) and voluntary
    context switches (each is a wake-up from a sleep) of one process."""
    ns = switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            ns += int((task / "schedstat").read_text().split()[0])
            status = (task / "status").read_text()
        except OSError:
            continue
        switches += int(next(line for line in status.splitlines() if line.startswith("voluntary_ctxt")).split()[1])
    return ns / 1e9, switches


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_boundary(margin: float = 3.0) -> None:
    """Start supervisors with at least `margin` s before the next minute, so they are ready for it."""
    if 60 - time.time() % 60 < margin:
        time.sleep(60 - time.time() % 60 + 0.5)


def read_stamps(path: Path) -> list[tuple[str, float]]:
    if not path.exists():
        return []
    return [(parts[0], float(parts[1])) for parts in (line.split() for line in path.read_text().splitlines()) if len(parts) == 2]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def w1(work: Path, n: int, seconds: float) -> None:
    crontab = work / "w1.crontab"
    write_crontab(crontab, n, "true", schedule="0 0 1 1 *")
    cp, bare = start_cronplus(work, crontab, "w1"), start_bare(work, crontab, "w1")
    time.sleep(2)  # start-up done
    c0, b0 = cpu_and_wakeups(cp.pid), cpu_and_wakeups(bare.pid)
    time.sleep(seconds)
    c1, b1 = cpu_and_wakeups(cp.pid), cpu_and_wakeups(bare.pid)
    rss = proc_stats(cp.pid)[0], proc_stats(bare.pid)[0]
    stop(cp), stop(bare)
    scale = 120.0 / seconds
    print(f"W1 idle, {n} yearly jobs, measured {seconds:g}s (scaled to 120 s x{scale:g}):")
    for name, before, after, mib in (("cronplus", c0, c1, rss[0]), ("bare    ", b0, b1, rss[1])):
        print(f"  {name}: RSS {mib:.1f} MiB, CPU {(after[0] - before[0]) * scale:.4f} s/120s,"
              f" {(after[1] - before[1]) * scale:.0f} wake-ups/120s")


def w2(work: Path, stamp: str, minutes: int) -> None:
    """Each supervisor alone on the machine for `minutes` minutes (cronplus first, then the bare
    loop), same 20 jobs: run at once on 2 cores they competed and the ratio was noise."""
    results: dict[str, list[float]] = {}
    for tag in ("cp", "bare"):
        out = work / f"w2.{tag}.stamps"
        crontab = work / f"w2-{tag}.crontab"
        write_crontab(crontab, 20, f"{stamp} {out} {{i}}")
        wait_for_boundary(5)
        proc = start_cronplus(work, crontab, f"w2-{tag}") if tag == "cp" else start_bare(work, crontab, "w2", minutes)
        first_minute = (time.time() // 60 + 1) * 60
        time.sleep(max(0.0, first_minute + 60 * (minutes - 1) + 5 - time.time()))
        stop(proc)
        results[tag] = [t - (t // 60) * 60 for _, t in read_stamps(out)]
    print(f"W2 start delay, 20 jobs * * * * *, {minutes} minute(s) each, one supervisor at a time:")
    for tag, name in (("cp", "cronplus"), ("bare", "bare    ")):
        d = results[tag]
        if d:
            print(f"  {name}: n={len(d)} median {statistics.median(d) * 1000:.1f} ms, p95 {pct(d, 95) * 1000:.1f} ms,"
                  f" max {max(d) * 1000:.1f} ms")
        else:
            print(f"  {name}: no stamps")
    if results["cp"] and results["bare"]:
        print(f"  ratio cronplus/bare: median x{statistics.median(results['cp']) / statistics.median(results['bare']):.2f},"
              f" p95 x{pct(results['cp'], 95) / pct(results['bare'], 95):.2f}")


def w3(work: Path, stamp: str, n: int) -> None:
    print(f"W3 fan-out, {n} jobs due at one minute (one supervisor at a time):")
    for tag in ("cp", "bare"):
        out = work / f"w3.{tag}.stamps"
        crontab = work / f"w3-{tag}.crontab"
        write_crontab(crontab, n, f"{stamp} {out} {{i}}")
        wait_for_boundary(5)
        proc = start_cronplus(work, crontab, "w3") if tag == "cp" else start_bare(work, crontab, "w3", 1)
        boundary = (time.time() // 60 + 1) * 60
        peak = 0.0
        deadline = boundary + 30
        recorded_at = None
        while time.time() < deadline:
            try:
                peak = max(peak, proc_stats(proc.pid)[1])
            except (FileNotFoundError, ProcessLookupError, KeyError):  # exited (a zombie has no VmRSS)
                break
            if len(read_stamps(out)) >= n and time.time() > boundary:
                if tag == "bare":
                    break
                recorded_at = all_recorded(work / "state-w3" / "history.db", n)
                if recorded_at:
                    break
            time.sleep(0.1)
        stamps = [t for _, t in read_stamps(out)]
        stop(proc)
        name = "cronplus" if tag == "cp" else "bare    "
        if not stamps:
            print(f"  {name}: no stamps")
            continue
        last = max(stamps) - boundary
        rec = f", all recorded {recorded_at - boundary:.2f} s" if recorded_at else ""
        print(f"  {name}: started {len(stamps)}/{n}, last start {last:.2f} s{rec}, peak RSS {peak:.1f} MiB")
        if tag == "cp":
            shutil.rmtree(work / "state-w3", ignore_errors=True)


def all_recorded(db: Path, n: int) -> float | None:
    """When every run is final in history: the latest ended_at, else None."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            done, last = conn.execute("SELECT count(*), max(ended_at) FROM runs WHERE status != 'running'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return float(last) if done >= n else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="W1,W2,W3")
    ap.add_argument("--minutes", type=int, default=3, help="W2 duration")
    ap.add_argument("--idle", type=float, default=120.0, help="W1 measurement seconds (scaled to 120 s)")
    ap.add_argument("--idle-jobs", type=int, default=100)
    ap.add_argument("--fanout", type=int, default=1000)
    args = ap.parse_args()
    only = {w.strip().upper() for w in args.only.split(",")}
    with tempfile.TemporaryDirectory(prefix="bench-supervisor-") as tmp:
        work = Path(tmp)
        stamp = compile_stamp(work)
        if "W1" in only:
            w1(work, args.idle_jobs, args.idle)
        if "W2" in only:
            w2(work, stamp, args.minutes)
        if "W3" in only:
            w3(work, stamp, args.fanout)


if __name__ == "__main__":
    main()
