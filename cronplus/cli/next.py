"""`cronplus next`: the next run times of a cron expression or of a crontab job (README "Using it day to day").

    cronplus next EXPR [-n N] [--tz ZONE] [--from ISO]
    cronplus next --job NAME [FILE] [-n N] [--tz ZONE] [--from ISO]

Prints the next N (default 5) fire times strictly after --from (default: now), one a line, as
ISO 8601 local time of the schedule's zone with its UTC offset (`2025-03-30T03:00:00+02:00`),
following cron's day-field and DST rules (cronplus/crontab/schedule.py). A schedule that never fires
(`0 0 30 2 *`, `@reboot`) prints nothing and exits 0 (a note goes to stderr).

EXPR may be one quoted argument or the five fields as separate words; `@nicknames` work.
--tz: zone of the schedule (default: the local zone; with --job, the job's tz= / CRON_TZ).
--from: ISO 8601; with an offset it is that instant, without one it is wall time in the
schedule's zone (the first occurrence, for a repeated time).

Exit status: 0 ok; 1 invalid expression (`<expr>:1:COL: message` on stderr), unreadable or
invalid crontab, unknown job; 2 usage errors: bad --tz, bad --from, bad -n (they are mistakes
on the command line, not in a schedule).

Start-up matters (`cronplus next` is typed interactively and used in scripts): this module
imports only argparse at the top and parses EXPR with crontab.fields (not the whole crontab
parser); croniter is imported lazily by schedule.next_fire, and not at all for a schedule that
never fires or whose times are all found by its today-or-tomorrow shortcut.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime, tzinfo

    from cronplus.model import Schedule

HELP = "print the next run times of a cron expression or job"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="EXPR",
                   help="cron expression ('*/5 * * * *', '@daily'); with --job: the crontab FILE")
    p.add_argument("-n", type=int, default=5, metavar="N", help="how many run times (default 5)")
    p.add_argument("--tz", metavar="ZONE", help="IANA time zone of the schedule (default: local, or the job's)")
    p.add_argument("--from", dest="from_", metavar="ISO",
                   help="start after this time (ISO 8601; no offset = wall time in the zone; default now)")
    p.add_argument("--job", metavar="NAME", help="use the schedule and zone of this job of the crontab")


def run(args: argparse.Namespace) -> int:
    from cronplus.errors import CrontabError, UsageError

    if args.n < 0:
        raise UsageError("-n must be 0 or more")
    try:
        schedule, tz = _job_schedule(args) if args.job else _expr_schedule(args)
    except CrontabError as exc:
        for diag in exc.diagnostics:
            print(diag, file=sys.stderr)
        return 1
    from cronplus.crontab.schedule import next_fires

    tz = args.tz or tz
    start = _start(args.from_, _zone(tz))
    times = next_fires(schedule, start, tz, args.n)
    if not times and args.n:
        why = "@reboot has no clock times" if schedule.reboot else "this schedule never fires"
        print(f"cronplus next: {why}", file=sys.stderr)
    sys.stdout.write("".join(t.isoformat() + "\n" for t in times))
    return 0


def _expr_schedule(args: argparse.Namespace) -> tuple[Schedule, str | None]:
    # from .fields, not .parser: that would load the whole crontab language (annotations, deps, lint)
    from cronplus.crontab.fields import parse_schedule
    from cronplus.errors import UsageError

    if not args.words:
        raise UsageError("give a cron expression (quote it: cronplus next '*/5 * * * *') or --job NAME")
    return parse_schedule(" ".join(args.words)), None


def _job_schedule(args: argparse.Namespace) -> tuple[Schedule, str | None]:
    from cronplus.crontab.parser import load_crontab
    from cronplus.errors import CronplusError, UsageError

    if len(args.words) > 1:
        raise UsageError("with --job, give at most one crontab FILE")
    if args.words:
        crontab = load_crontab(args.words[0], system=True if getattr(args, "system", False) else None)
    else:
        from cronplus import paths

        where = paths.from_args(args)
        crontab = load_crontab(where.crontab, system=where.system)
    job = crontab.job(args.job)
    if job is None:
        import difflib

        names = [j.name for j in crontab.jobs]
        close = difflib.get_close_matches(args.job, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise CronplusError(f"no job named '{args.job}' in {crontab.path}{hint}")
    return job.schedule, job.tz


def _zone(tz: str | None) -> tzinfo:
    from cronplus.crontab.schedule import UnknownZoneError, zone
    from cronplus.errors import UsageError

    try:
        return zone(tz)
    except UnknownZoneError as exc:
        raise UsageError(str(exc)) from exc


def _start(text: str | None, tzi: tzinfo) -> datetime:
    from datetime import datetime

    from cronplus.errors import UsageError

    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"bad --from '{text}': expected ISO 8601 like 2025-03-30T01:00 or 2025-03-30T01:00+01:00") from exc
    return value.replace(tzinfo=tzi) if value.tzinfo is None else value
