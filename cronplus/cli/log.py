"""`cronplus log [JOB...] [-n N|all] [--status S] [-S T] [-U T] [-f] [-r] [--json]`: run history,
newest last, like journalctl.

- JOB arguments are fnmatch globs on job names (`'db-*'`); several are OR-ed.
- `-n` defaults to 20, or to all when `--since`/`--until` bound the range (as journalctl shows a
  whole range); `-n all` shows everything. The same default holds for `--json`.
- `--status` takes comma lists and may repeat; statuses are validated (usage error, exit 2).
- Times as journalctl takes them (cronplus.timeparse): `-2h`, `yesterday`, `2025-06-01 14:00`...
- The table shows local times and compact durations; a run that ran past its expected duration
  (runs.slow_at, alert-on=slow) has `slow` after its status; status is coloured only on a terminal with
  NO_COLOR unset; a terminal gets a pager (`$PAGER`, else `less` with LESS=FRX) unless --no-pager
  or TERM is dumb or unset (as journalctl). On a terminal the table fits its width (cli/fit.py:
  the reason and job shortened, low-priority columns dropped); `--wide` or a pipe: every column.
- REASON ends with a manual run's parameters and the outputs it wrote ("params day=...;
  outputs score=0.93"), values escaped and cut; `--json` has them whole (`params`, `outputs`).
- `--json`: one run object per line (history.run_json: the same shape as
  `trigger --wait --json` and `alerts --json`).
- `-f`: after the last N runs, print each matching run when it *ends* (polling the read-only
  database every 0.5 s); a running run is printed once, when final. Ctrl-C/SIGTERM exit 0.
- Paused jobs (engine/pausing.py) among those asked for: one line each on stderr before the
  table, "JOB: paused since T (by USER)" ("all jobs paused since ..." for the global pause), as
  their ticks have no rows while paused; not with --json.
- No database yet: "no history yet" on stderr, exit 0 (an empty history, not an error); with -f it
  waits for the database to appear. No matching runs: empty output, exit 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Mapping
from contextlib import closing
from typing import TYPE_CHECKING, Any

from cronplus.errors import UsageError

if TYPE_CHECKING:
    from cronplus.model import RunRecord
    from cronplus.store.api import RunReader

HELP = "run history, newest last"
DEFAULT_LINES = 20
POLL_S = 0.5
HEADERS = ("RUN", "JOB", "ATTEMPT", "STATUS", "TRIGGER", "SCHEDULED", "STARTED", "DURATION", "EXIT", "REASON")
# On a narrow terminal (cli/fit.py): the reason and job are shortened, then trigger, attempt, the
# tick, the exit code (the reason says it) and the duration go, in that order.
DROP = {"TRIGGER": 1, "ATTEMPT": 2, "SCHEDULED": 3, "EXIT": 4, "DURATION": 5}
FLEX = {"JOB": 10, "REASON": 16}
# Follow mode prints line by line, so it cannot let tabulate size the columns: fixed minimums.
FOLLOW_WIDTHS = (7, 16, 7, 15, 8, 19, 19, 8, 4, 0)
COLOURS = {
    "success": "32",
    "failed": "31",
    "timeout": "31",
    "upstream_failed": "31",
    "interrupted": "35",
    "running": "36",
    "skipped": "33",
    "missed": "33",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    import re

    from cronplus.cli.dbopt import add_db_option

    add_db_option(p)

    # `-S -2h` must read -2h as the value, as journalctl's getopt does. argparse takes any
    # "-x..." that is not a negative number for an option; widen its negative-number pattern
    # (this parser has no option that starts with a digit, so nothing is shadowed).
    p._negative_number_matcher = re.compile(r"^-\d[\w. ]*$")
    p.add_argument("jobs", nargs="*", metavar="JOB", help="job names or fnmatch globs ('db-*'); default all")
    p.add_argument("-n", "--lines", metavar="N|all",
                   help=f"show the newest N runs (default {DEFAULT_LINES}; all when --since/--until is given)")
    from cronplus.status import RunStatus

    p.add_argument("--status", action="append", default=[], metavar="S[,S...]",
                   help=f"only runs with these statuses (comma list, repeatable): {', '.join(RunStatus)}")
    p.add_argument("-S", "--since", metavar="TIME", help="runs started at or after TIME ('-2h', 'yesterday', '2025-06-01 14:00')")
    p.add_argument("-U", "--until", metavar="TIME", help="runs started at or before TIME")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing runs as they end")
    p.add_argument("-r", "--reverse", action="store_true", help="newest first")
    p.add_argument("--json", action="store_true", help="one JSON object per run, one a line")
    p.add_argument("--no-pager", action="store_true", help="never pipe the table into a pager")
    p.add_argument("--wide", action="store_true", help="every column in full, however wide the terminal")


def parse_lines(value: str | None, *, bounded: bool) -> int | None:
    if value is None:
        return None if bounded else DEFAULT_LINES
    if value.lower() == "all":
        return None
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise UsageError(f"-n/--lines takes a number >= 0 or 'all', not '{value}'")
    return n


def parse_statuses(values: Iterable[str]) -> list[str]:
    from cronplus.status import RunStatus

    valid = [s.value for s in RunStatus]
    chosen: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip().lower()
            if not item:
                continue
            if item not in valid:
                raise UsageError(f"unknown status '{item}' (valid: {', '.join(valid)})")
            if item not in chosen:
                chosen.append(item)
    return chosen


def run(args: argparse.Namespace) -> int:
    from cronplus import paths
    from cronplus.timeparse import parse_time

    if args.follow and args.reverse:
        raise UsageError("--follow and --reverse cannot be combined")
    if args.follow and args.until:
        raise UsageError("--follow and --until cannot be combined")
    now = time.time()
    since = parse_time(args.since, now=now) if args.since else None
    until = parse_time(args.until, now=now) if args.until else None
    limit = parse_lines(args.lines, bounded=since is not None or until is not None)
    statuses = parse_statuses(args.status)
    filters = {"jobs": args.jobs, "statuses": statuses, "since": since, "until": until}
    db = paths.from_args(args).db
    env = paths.environ_of(args)

    hist = _open(db, wait=args.follow)
    if hist is None:
        return 0
    with closing(hist):
        if not args.json:
            for line in pause_lines(hist, args.jobs):
                print(line, file=sys.stderr)
        if args.follow:
            return _follow(hist, filters, limit, json_out=args.json, colour=_use_colour(env), wide=args.wide)
        if args.json and limit is None:  # all of a range: stream it, whatever its size
            sys.stdout.writelines(_json_line(r) for r in hist.iter_query(**filters, newest_first=args.reverse))
            return 0
        records = hist.query(**filters, limit=limit)
        if args.reverse:
            records.reverse()
        if not records:
            if not args.json:
                print("no runs match", file=sys.stderr)
            return 0
        if args.json:
            text = "".join(_json_line(r) for r in records)
        else:
            from cronplus.cli.fit import terminal_width

            text = render_table(records, colour=_use_colour(env), width=terminal_width(wide=args.wide)) + "\n"
        _emit(text, pager=not args.json and not args.no_pager, env=env)
    return 0


def pause_lines(hist: RunReader, jobs: list[str]) -> list[str]:
    """The pauses in effect of the jobs matching `jobs` (globs; none: every job)."""
    from fnmatch import fnmatchcase

    from cronplus.engine.pausing import Pauses

    pauses = Pauses.read(hist)
    lines = [pauses.everything.shown] if pauses.everything is not None else []
    return lines + [f"{name}: {pause.shown}" for name, pause in sorted(pauses.jobs.items())
                    if not jobs or any(fnmatchcase(name, glob) for glob in jobs)]


def _open(db: str | os.PathLike[str], *, wait: bool) -> RunReader | None:
    from cronplus.store.open import open_reader
    from cronplus.store.readhistory import NoHistoryError

    announced = False
    while True:
        try:
            return open_reader(db)
        except NoHistoryError as exc:
            if not wait:
                print(f"cronplus log: {exc}", file=sys.stderr)
                return None
            if not announced:
                print(f"cronplus log: {exc}; waiting for it", file=sys.stderr)
                announced = True
            try:
                time.sleep(POLL_S)
            except KeyboardInterrupt:
                return None


def _json_line(record: RunRecord) -> str:
    import json

    from cronplus.store.history import run_json

    return json.dumps(run_json(record)) + "\n"


def _cells(record: RunRecord, now: float) -> list[str]:
    from cronplus.humanize import duration, local_time

    if record.duration_s is not None:
        took = duration(record.duration_s)
    elif record.started_at is not None and not record.status.is_final:
        took = duration(now - record.started_at.timestamp()) + "+"  # still running: elapsed so far
    else:
        took = "-"
    return [
        str(record.run_id),
        record.job,
        str(record.attempt),
        f"{record.status} slow" if record.slow_at is not None else str(record.status),  # alert-on=slow marked it
        str(record.trigger),
        local_time(record.scheduled_at),
        local_time(record.started_at),
        took,
        "-" if record.exit_code is None else str(record.exit_code),
        _reason(record),
    ]


def _reason(record: RunRecord) -> str:
    """The reason, then a manual run's parameters and the outputs it wrote (engine/runio.py), each
    value escaped and cut (errors.shown): "params day=2026-12-01; outputs score=0.93"."""
    from cronplus.errors import shown
    from cronplus.queuednote import queued_note

    parts = [text] if (text := record.reason or queued_note(record)) else []  # queued: in the broker, no worker yet
    for label, pairs in (("params", record.params), ("outputs", record.outputs)):
        if pairs:
            parts.append(f"{label} " + " ".join(f"{key}={shown(value)}" for key, value in pairs))
    return "; ".join(parts)


def _paint(status: str, text: str, colour: bool) -> str:
    code = COLOURS.get(status)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def _columns() -> list[Any]:
    from cronplus.cli.fit import Column

    return [Column(h, drop=DROP.get(h, 0), flex=FLEX.get(h, 0)) for h in HEADERS]


def render_table(records: list[RunRecord], *, colour: bool, width: int | None = None) -> str:
    """The table; `width` (the terminal's) drops and shortens columns to fit (cli/fit.py)."""
    from cronplus.cli.fit import table

    now = time.time()
    rows = []
    for record in records:
        cells = _cells(record, now)
        cells[3] = _paint(str(record.status), cells[3], colour)
        rows.append(cells)
    return table(_columns(), rows, width=width)


def follow_plan(width: int | None) -> tuple[list[int], list[int]]:
    """Follow mode prints line by line: the kept columns and widths come from FOLLOW_WIDTHS (the
    reason taking the rest of the line)."""
    from cronplus.cli.fit import plan

    natural = [max(w, len(h)) for w, h in zip(FOLLOW_WIDTHS, HEADERS, strict=True)]
    natural[-1] = 60
    return plan(_columns(), natural, width)


def follow_line(record: RunRecord | None, *, colour: bool, width: int | None = None) -> str:
    """One fixed-width line of the follow-mode table (None: the header), fitted to `width`."""
    from cronplus.cli.fit import clip, shorten

    keep, widths = follow_plan(width)
    cells = list(HEADERS) if record is None else _cells(record, time.time())
    padded = []
    for i in keep:
        cut = width is not None and i != len(HEADERS) - 1 and len(cells[i]) > widths[i]  # a pipe: nothing cut
        cell = shorten(cells[i], widths[i]) if cut else cells[i]
        text = cell.ljust(FOLLOW_WIDTHS[i] if width is None else widths[i])
        padded.append(_paint(str(record.status), text, colour) if i == 3 and record is not None else text)
    return clip("  ".join(padded).rstrip(), width) + "\n"


def _follow(hist: RunReader, filters: dict[str, Any], limit: int | None, *, json_out: bool, colour: bool,
            wide: bool = False) -> int:
    """Print the newest `limit` runs, then every matching run as it becomes final, until
    Ctrl-C/SIGTERM. A run still running is watched by run_id and printed once it is final."""
    import signal

    from cronplus.cli.fit import terminal_width

    width = terminal_width(wide=wide)

    def line(record: RunRecord) -> str:
        return _json_line(record) if json_out else follow_line(record, colour=colour, width=width)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        out = sys.stdout
        statuses = set(filters["statuses"])
        watch = {**filters, "statuses": ()}  # a running row must be seen to be printed once final
        # Read the high-water mark *before* the backlog: a run committed in between is then
        # either in the backlog (and skipped below) or picked up by the first poll, never lost.
        last_id = hist.last_run_id()
        backlog = hist.query(**filters, limit=limit)
        shown = {r.run_id for r in backlog if r.status.is_final}
        pending = {r.run_id for r in backlog if not r.status.is_final}
        pending |= {r.run_id for r in hist.query(**{**watch, "statuses": ["running"]})}
        if not json_out:
            out.write(follow_line(None, colour=False, width=width))
        out.writelines(line(r) for r in backlog)
        out.flush()
        while True:
            time.sleep(POLL_S)
            current = hist.runs_by_id(sorted(pending))
            ended = [r for r in current if r.status.is_final]
            # rows that ended, or vanished (pruned), stop being watched
            pending = {r.run_id for r in current} - {r.run_id for r in ended}
            fresh = hist.query(**watch, after_run_id=last_id)
            for record in fresh:
                last_id = max(last_id, record.run_id)
                if not record.status.is_final:
                    pending.add(record.run_id)
            done = {r.run_id: r for r in ended}
            done |= {r.run_id: r for r in fresh if r.status.is_final and r.run_id not in shown}
            shown.clear()  # only the first poll can overlap the backlog
            for _, record in sorted(done.items()):
                if not statuses or str(record.status) in statuses:
                    out.write(line(record))
            out.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _use_colour(env: Mapping[str, str]) -> bool:
    return sys.stdout.isatty() and not env.get("NO_COLOR") and env.get("TERM") != "dumb"


def _emit(text: str, *, pager: bool, env: Mapping[str, str]) -> None:
    """Write to stdout, through a pager when stdout is a terminal (like git/journalctl)."""
    import shlex
    import subprocess

    # systemd's pager (terminal_is_dumb) makes the same choice: on a dumb or unknown terminal
    # less can only say "terminal is not fully functional" and wait for RETURN.
    if not (pager and sys.stdout.isatty()) or env.get("TERM", "dumb") == "dumb":
        sys.stdout.write(text)
        return
    command = env.get("CRONPLUS_PAGER", env.get("PAGER", "less"))
    if not command.strip() or command.strip() == "cat":
        sys.stdout.write(text)
        return
    env = dict(env)
    env.setdefault("LESS", "FRX")  # quit if one screen, raw colours, keep the screen
    try:
        proc = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE, env=env)
    except OSError:
        sys.stdout.write(text)
        return
    assert proc.stdin is not None
    try:
        proc.stdin.write(text.encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the user quit the pager early
    while True:
        try:
            proc.wait()
            return
        except KeyboardInterrupt:
            continue  # Ctrl-C belongs to the pager (less handles it); wait for it to exit
