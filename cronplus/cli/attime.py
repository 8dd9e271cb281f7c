"""`--at TIME` of `why` and `exec`, and finding the job they name.

`--at` is read in the job's zone: ISO 8601 with an offset is that instant; without one
(`2026-03-29 02:30`, `2026-03-29T02:30`) it is wall time in the job's zone (tz= / CRON_TZ, else
local), kept as the naive wall time too, since a time in a spring-forward gap has no instant of
its own; anything else is what `log --since` takes (`-2h`, `yesterday`, `@1750000000`).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronplus.model import Crontab, JobSpec
    from cronplus.paths import Paths


def parse_at(text: str, tz: str | None, *, now: float) -> tuple[datetime, datetime | None]:
    """(the aware instant, the naive wall time when one was written without an offset)."""
    from cronplus.crontab.schedule import zone

    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw) if raw[:4].isdigit() and "-" in raw[:8] else None
    except ValueError:
        value = None
    if value is not None:
        if value.tzinfo is not None:
            return value, None
        # Through UTC: a wall time that a spring-forward skips becomes a real instant (read with
        # the offset before the gap, as `date -d` does); a repeated one is its first pass.
        return value.replace(tzinfo=zone(tz)).astimezone(UTC).astimezone(zone(tz)), value
    from cronplus.timeparse import parse_time

    return datetime.fromtimestamp(parse_time(raw, now=now), UTC).astimezone(zone(tz)), None


def load_job(args: argparse.Namespace) -> tuple[Crontab, JobSpec, Paths]:
    """The crontab the command's options name and its job `args.job` (CronplusError naming the
    file, with a "did you mean", when there is no such job)."""
    import difflib

    from cronplus import paths
    from cronplus.crontab.parser import load_crontab
    from cronplus.errors import CronplusError, escape

    where = paths.from_args(args)
    crontab = load_crontab(where.crontab, system=where.system)
    job = crontab.job(args.job)
    if job is None:
        close = difflib.get_close_matches(args.job, [j.name for j in crontab.jobs], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise CronplusError(f"no job named '{escape(args.job)}' in {escape(str(crontab.path))}{hint}")
    return crontab, job, where
