"""W6 parse: time `cronplus check` on a generated 10,000-job crontab, and `cronplus --help`;
and the parser's growth on 100,000-line files of several shapes.

Usage: python bench/bench_parse.py [--jobs N] [--runs R]
       python bench/bench_parse.py --shapes [--lines N] [--only SHAPE,...]

Default mode prints medians (and min/max) of R subprocess runs each, plus the in-process parse
time (later runs reuse the parser's caches), and a bare `python -c pass` start-up as the floor.
The generated file mixes ~1,500 distinct schedules, annotations every 10th job with after=
chains, and CRON_TZ=Europe/Berlin. Machine is shared: compare ratios, not absolutes.

`--shapes` parses one generated file per shape, each in a fresh process (so peak RSS is that
shape's own): `parse_crontab` wall and CPU time (CPU is steadier on a shared machine) and the process's peak RSS (ru_maxrss), next to a floor
on the same text (`str.splitlines()` and the RSS with the text loaded). Shapes:
  env     N environment lines, then one job (each job keeps the env in effect at its line)
  jobs    N job lines, 1 in 4 sharing its command with another (hashed default names)
  mixed   env, comments, annotations (name=, after=), job lines and blank lines interleaved
  errors  N bad lines of several kinds (every one reported), including after= to no job and
          many small dependency cycles
Goal (issue 9): each under 2 s and 200 MB at N = 100,000.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MINUTES = ["*/5", "0", "15", "30", "*/15", "0-30/10", "5,35", "*", "{i}", "{i},{j}"]
HOURS = ["*", "3", "0-23/2", "9-17", "*/6", "1,13"]
DOMS = ["*", "1", "15", "1-7", "*/2"]
MONTHS = ["*", "jan-jun", "*/3", "1,7"]
DOWS = ["*", "mon-fri", "0", "sat,sun", "1-5/2"]


def generate(n: int, seed: int = 1) -> str:
    rnd = random.Random(seed)
    lines = ["SHELL=/bin/sh", "PATH=/usr/bin:/bin", "CRON_TZ=Europe/Berlin",  # a DST zone, so lint's DST checks run
             "# cronplus-defaults: retries=1 retry-delay=30s timeout=1h"]
    for i in range(n):
        if i % 10 == 0:
            after = f" after=job{i - 10}" if i >= 10 else ""
            lines.append(f"# cronplus: name=job{i} overlap=skip{after}")
        if i % 97 == 0:
            sched = rnd.choice(["@daily", "@hourly", "@weekly"])
        else:
            dom, dow = rnd.choice(DOMS), rnd.choice(DOWS)
            if dom != "*" and dow != "*":
                dow = "*"
            minute = rnd.choice(MINUTES).format(i=i % 60, j=(i * 7) % 60)
            sched = " ".join([minute, rnd.choice(HOURS), dom, rnd.choice(MONTHS), dow])
        lines.append(f"{sched} /usr/local/bin/task{i} --flag {i} >> /var/log/t{i}.log 2>&1")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- shapes


def _schedule(rnd: random.Random, i: int) -> str:
    dom, dow = rnd.choice(DOMS), rnd.choice(DOWS)
    if dom != "*" and dow != "*":
        dow = "*"
    minute = rnd.choice(MINUTES).format(i=i % 60, j=(i * 7) % 60)
    return " ".join([minute, rnd.choice(HOURS), dom, rnd.choice(MONTHS), dow])


def shape_env(n: int) -> str:
    lines = [f"VAR_{i}=value number {i}" for i in range(n)]
    lines.append("0 * * * * /bin/true")
    return "\n".join(lines) + "\n"


def shape_jobs(n: int) -> str:
    rnd = random.Random(2)
    lines = []
    for i in range(n):
        cmd_id = i if i % 4 else i // 4  # every 4th line repeats an earlier command
        lines.append(f"{_schedule(rnd, i)} /usr/local/bin/task{cmd_id} --flag >> /var/log/t{cmd_id}.log 2>&1")
    return "\n".join(lines) + "\n"


def shape_mixed(n: int) -> str:
    rnd = random.Random(3)
    lines = ["SHELL=/bin/sh", "CRON_TZ=Europe/Berlin", "# cronplus-defaults: retries=1 timeout=1h"]
    i = 0
    while len(lines) < n:
        lines.append(f"STAGE_{i % 500}=stage {i}")
        lines.append(f"# job {i}: an ordinary comment")
        lines.append(f"# cronplus: name=m{i}" + (f" after=m{i - 1}" if i % 3 else "") + " retries=2")
        lines.append(f"{_schedule(rnd, i)} /opt/run.sh step{i} % input {i}")
        lines.append(f"{_schedule(rnd, i + 1)} /opt/same.sh --all")  # one command, many lines
        lines.append("")
        i += 1
    return "\n".join(lines[:n]) + "\n"


def shape_errors(n: int) -> str:
    kinds = [
        "61 * * * * true {i}",
        "* * * * * * true {i}",
        "@dialy true {i}",
        "# cronplus: name=e{i} after=nosuchjob{i}\n0 * * * * true {i}",
        "# cronplus: retires=3\n0 * * * * true {i}",
        "hello world {i}",
        "0 0 31 2 mon-fri-sat true {i}",
        "# cronplus: name=c{i} after=d{i}\n0 * * * * true\n# cronplus: name=d{i} after=c{i}\n0 * * * * true",
    ]
    lines: list[str] = []
    i = 0
    while len(lines) < n:
        lines.extend(kinds[i % len(kinds)].format(i=i).split("\n"))
        i += 1
    return "\n".join(lines[:n]) + "\n"


SHAPES = {"env": shape_env, "jobs": shape_jobs, "mixed": shape_mixed, "errors": shape_errors}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(shape: str, n: int) -> None:
    """One shape in this (fresh) process: JSON with times and peak RSS on stdout."""
    text = SHAPES[shape](n)
    from cronplus.crontab.parser import parse_crontab
    from cronplus.errors import CrontabError

    t0 = time.perf_counter()
    lines = text.splitlines()
    floor_s = time.perf_counter() - t0
    del lines
    base_mb = _maxrss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        ct = parse_crontab(text, path="bench.crontab", system=False)
        result = f"{len(ct.jobs)} jobs, {len(ct.warnings)} warnings"
    except CrontabError as exc:
        result = f"{len(exc.diagnostics)} errors"
    parse_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"shape": shape, "lines": n, "bytes": len(text), "result": result,
                      "parse_s": parse_s, "cpu_s": cpu_s, "floor_s": floor_s, "peak_mb": _maxrss_mb(), "base_mb": base_mb}))


def shapes(n: int, only: list[str]) -> None:
    print(f"parse growth: {n} lines per shape, one fresh process each")
    print(f"{'shape':<7} {'parse':>8} {'cpu':>7} {'splitlines':>11} {'peak RSS':>9} {'text RSS':>9}  result")
    for shape in only:
        out = subprocess.run([sys.executable, __file__, "--child", shape, "--lines", str(n)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"{shape:<7} failed: {out.stderr[-300:]}")
            continue
        r = json.loads(out.stdout)
        print(f"{shape:<7} {r['parse_s']:7.2f}s {r['cpu_s']:6.2f}s {r['floor_s'] * 1000:9.1f}ms {r['peak_mb']:7.0f}MB "
              f"{r['base_mb']:7.0f}MB  {r['result']}")


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        out.append(time.perf_counter() - t0)
        if result.returncode not in (0,):
            raise SystemExit(f"{' '.join(cmd)} failed: {result.stderr[-500:]}")
    return out


def fmt(name: str, xs: list[float]) -> str:
    return f"{name:<34} median {statistics.median(xs) * 1000:7.1f} ms  (min {min(xs) * 1000:.1f}, max {max(xs) * 1000:.1f}, n={len(xs)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--shapes", action="store_true", help="parse growth per shape (see above)")
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--only", default=",".join(SHAPES), help="comma list of shapes")
    ap.add_argument("--child", choices=list(SHAPES), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.lines)
        return
    if a.shapes:
        shapes(a.lines, a.only.split(","))
        return
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "crontab"
        path.write_text(generate(a.jobs))
        py = sys.executable
        floor = timed([py, "-c", "pass"], a.runs)
        helps = timed([py, "-m", "cronplus", "--help"], a.runs)
        checks = timed([py, "-m", "cronplus", "check", str(path)], a.runs)
        from cronplus.crontab.parser import load_crontab

        inproc = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            ct = load_crontab(path, system=False)
            inproc.append(time.perf_counter() - t0)
        print(f"W6 parse: {a.jobs} jobs ({len(ct.jobs)} parsed, {len(ct.warnings)} warnings), {path.stat().st_size} bytes")
        print(fmt("python -c pass (floor)", floor))
        print(fmt("cronplus --help", helps))
        print(fmt(f"cronplus check ({a.jobs} jobs)", checks))
        print(fmt("load_crontab in-process", inproc))
        print(f"check per job (in-process): {statistics.median(inproc) / a.jobs * 1e6:.1f} us")


if __name__ == "__main__":
    main()
