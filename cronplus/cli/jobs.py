"""`cronplus jobs [--json]`: renders the rows of service/views.py, which joins every job of the
crontab with its schedule, next run, and what history says about it (last status, last start,
duration), plus what is happening now: runs in progress (history's `running` rows) and runs
waiting on an upstream (only the supervisor knows those: asked over its control socket
{"cmd": "status"} when one runs, otherwise left out). Works before any history exists.
A supervisor that listens but does not answer within STATUS_TIMEOUT_S is an error (exit 1, saying
so) unless the crontab is named (--crontab / CRONPLUS_CRONTAB): then a warning, and the table.
With no --crontab / CRONPLUS_CRONTAB, the crontab is the one the state dir's running supervisor
runs (it says which in the same reply), so `cronplus --state-dir DIR jobs` shows what DIR's
supervisor runs; with no supervisor, the default crontab (README "Where files live").

--json prints one object a line (like `log --json`): job schedule tz after next_run last_run_id
last_status last_start last_end duration_s running waiting paused paused_since paused_by
paused_all; times ISO 8601 with offset. A job
removed from the crontab while a run of it goes on is listed after the others, schedule null,
until that run ends.

The table: a job with a run in progress shows that run's own start and its time so far (`12s+`),
not the last finished run's; an AFTER column lists `after=` upstreams when any job has one. On a
terminal it fits the width (cli/fit.py): times lose their year and seconds, long cells are
shortened, the duration goes first; `--wide` or a pipe: everything in full. A paused job's NEXT
RUN says "paused since T (by USER)" (engine/pausing.py: its ticks are not run until resumed)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cronplus.service.views import JobRow

HELP = "table of jobs: schedule, next run, last status"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cronplus.cli.dbopt import add_db_option

    add_db_option(p)
    p.add_argument("--json", action="store_true", help="one JSON object per job, one a line")
    p.add_argument("--wide", action="store_true", help="every column in full, however wide the terminal")


STATUS_TIMEOUT_S = 4.0  # a supervisor answers within 1 s even while it starts a 2,000-job tick


class SupervisorBusy(Exception):
    """A supervisor listens on the state dir's socket but did not answer in time."""


def _supervisor_status(sock_path: Path) -> dict[str, Any]:
    """The running supervisor's status reply; empty when none runs (history is enough then).
    SupervisorBusy when one is there but does not answer: falling back to the default crontab
    would show another crontab than the one it runs."""
    if not sock_path.exists():
        return {}
    from cronplus.service.control import NoSupervisor, request

    try:
        reply = next(request(sock_path, {"cmd": "status"}, timeout=STATUS_TIMEOUT_S), {})
    except NoSupervisor:  # a socket file left behind, nobody listening
        return {}
    except TimeoutError:
        raise SupervisorBusy(f"the supervisor on {sock_path} did not answer within {STATUS_TIMEOUT_S:g}s") from None
    except (OSError, ValueError):
        return {}
    return reply if isinstance(reply, dict) else {}


def _table_row(row: JobRow, now: datetime, *, compact: bool = False) -> list[str]:
    """One table row; `compact` (a terminal too narrow for the full table): times without year
    and seconds."""
    from cronplus import humanize
    from cronplus.queuednote import queued_note
    from cronplus.service import installer

    rec = row.last
    nxt = row.next_run
    status = str(rec.status) if rec else "never run"
    started = rec.started_at if rec else None
    took = humanize.duration(rec.duration_s) if rec and rec.duration_s is not None else ""
    if row.running:
        ids = ",".join(str(r.run_id) for r in row.running)
        status = f"running (run {ids})"
        if all(queued_note(r) for r in row.running):  # a queue= attempt no worker has taken (queuednote.py)
            status = f"queued on {row.running[0].queue} (run {ids}: no worker has taken it yet)"
        started = min((r.started_at for r in row.running if r.started_at is not None), default=None)
        if started is not None:  # the run in progress: its own start and its time so far
            took = humanize.duration(max(0.0, (now - started).total_seconds())) + "+"
    elif row.waiting:
        status = row.waiting

    def when(dt: datetime) -> str:
        return dt.astimezone().strftime("%m-%d %H:%M") if compact else installer.format_local(dt)

    return [
        row.job,
        "(removed from the crontab)" if row.schedule is None else row.schedule + (f" ({row.tz})" if row.tz else ""),
        row.paused.shown if row.paused else f"{when(nxt)} ({installer.format_relative(nxt, now)})" if nxt else "-",
        status,
        (when(started) if compact else humanize.local_time(started)) if started else "",
        took,
        ",".join(row.after),
    ]


def render_table(rows: list[JobRow], now: datetime, *, width: int | None) -> str:
    """The table, fitted to `width` (None: full): see the module docstring."""
    from cronplus.cli.fit import Column, table

    columns = [Column("JOB", flex=10), Column("SCHEDULE", flex=9), Column("NEXT RUN", flex=12),
               Column("LAST STATUS", flex=16), Column("LAST START"), Column("DURATION", drop=1),
               Column("AFTER", flex=8)]
    cells = [_table_row(r, now) for r in rows]
    if not any(row.after for row in rows):  # no job has after=: no empty column
        columns, cells = columns[:-1], [c[:-1] for c in cells]
    full = table(columns, cells, width=None, tablefmt="simple")
    if width is None or max(len(line) for line in full.split("\n")) <= width:
        return full
    compact = [_table_row(r, now, compact=True)[: len(columns)] for r in rows]
    return table(columns, compact, width=width, tablefmt="simple")


def run(args: argparse.Namespace) -> int:
    from cronplus.cli.fit import terminal_width
    from cronplus.crontab.parser import load_crontab
    from cronplus.errors import CronplusError
    from cronplus.paths import environ_of, from_args
    from cronplus.service.views import held_in_reply, job_rows

    paths = from_args(args)
    chosen = bool(getattr(args, "crontab", None) or environ_of(args).get("CRONPLUS_CRONTAB"))
    try:
        status = _supervisor_status(paths.control_socket)
    except SupervisorBusy as exc:
        if not chosen:
            raise CronplusError(f"{exc}; which crontab it runs is unknown: try again, or name it with --crontab") from None
        print(f"cronplus jobs: {exc}: runs waiting on upstreams are not shown", file=sys.stderr)
        status = {}
    if not chosen and status.get("crontab"):
        paths = from_args(args, crontab=status["crontab"])
    crontab = load_crontab(paths.crontab, system=paths.system)
    now = datetime.now(UTC)
    rows = job_rows(paths.db, crontab, now, held_in_reply(status))
    for warning in crontab.warnings:
        print(str(warning), file=sys.stderr)
    if args.json:
        for row in rows:
            print(json.dumps(row.to_json()))
        return 0
    if not rows:
        print(f"no jobs in {paths.crontab}")
        return 0
    print(render_table(rows, now, width=terminal_width(wide=args.wide)))
    return 0
