"""`/timeline`: the last 24 hours (or 6, or 1: `?hours=`) as a Gantt chart (SVG), one row per job that ran in them (the
crontab's order, then jobs no longer in it), a bar per run from its start to its end, a running
run up to now; the hour lines are local time. At most LIMIT runs, the newest (a note says when
more were left out), ROWS jobs a page (`?page=N`); the window can be moved back a day at a time
(`?end=UNIX`), a window at a time.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cronplus.web.http import Request, Response, Site
from cronplus.web.pages.graph import legend
from cronplus.web.pages.layout import Html, fmt, href, job_href, join, local, page
from cronplus.web.pages.svg import GanttRow, gantt

LIMIT = 5000
ROWS = 100  # jobs a page
SCAN = LIMIT + 1000  # rows the walk from the newest reads at most (a busy day: LIMIT of them)
SLACK_S = 6 * 3600.0  # a run that started this long before the window and ended in it is drawn too

if TYPE_CHECKING:
    from cronplus.model import RunRecord
    from cronplus.store.api import RunReader


def handle(request: Request, site: Site) -> Response:
    now = site.now()
    hours = int(h) if (h := request.arg("hours") or "") in ("1", "6", "24") else 24
    window = hours * 3600.0
    end_text = request.arg("end")
    try:
        end = float(end_text) if end_text is not None else now
    except ValueError:
        end = now
    if not math.isfinite(end) or end > now or end < 0:
        end, end_text = now, None
    start = end - window
    history = site.history()
    runs = _latest(history, start, now) if end_text is None else None
    if runs is None:  # an earlier day, or a history whose newest runs are not the window's
        runs = list(history.iter_query(since=start, until=end, newest_first=True, limit=LIMIT))
    capped = len(runs) >= LIMIT
    seen = {r.run_id for r in runs}
    runs += [r for r in history.running() if r.run_id not in seen and r.started_at is not None
             and r.started_at.timestamp() < end]
    by_job: dict[str, list[RunRecord]] = {}
    for r in sorted(runs, key=lambda r: r.run_id):
        by_job.setdefault(r.job, []).append(r)
    order = [job.name for job in site.crontab().jobs if job.name in by_job]
    order += sorted(set(by_job) - set(order))
    pages = max((len(order) + ROWS - 1) // ROWS, 1)
    number = min(max(int(p) if (p := request.arg("page") or "").isdigit() else 1, 1), pages)
    rows = [GanttRow(label=name, url=job_href(name), runs=by_job[name])
            for name in order[(number - 1) * ROWS:number * ROWS]]
    parts = [fmt("<h1>Timeline</h1><p>{} runs of {} jobs from {} to {}.</p>", len(runs), len(order), local(start), local(end)),
             legend(), fmt('<div class="scroll">{}</div>', gantt(rows, start=start, end=end, now=now))]
    if pages > 1:
        parts.append(fmt('<p class="pager">jobs {} to {} of {} · {}</p>', (number - 1) * ROWS + 1,
                         min(number * ROWS, len(order)), len(order), join(
                             (fmt('<a href="{}"{}>{}</a>', href("/timeline", hours=request.arg("hours"), end=end_text, page=n),
                                  Html(' aria-current="page"') if n == number else "", n) for n in range(1, pages + 1)), " ")))
    if capped:
        parts.append(fmt('<p class="notice">Only the newest {} runs of the window are drawn.</p>', LIMIT))
    shown = None if hours == 24 else hours  # in the links; 24 is the default
    nav = [fmt('<a href="{}">← previous {} h</a>', href("/timeline", hours=shown, end=f"{start:.0f}"), hours)]
    if end < now:
        nav.append(fmt('<a href="{}">next {} h →</a>', href("/timeline", hours=shown, end=f"{min(end + window, now):.0f}"),
                       hours))
        nav.append(fmt('<a href="{}">now</a>', href("/timeline", hours=shown)))
    widths = join((fmt('<a href="{}"{}>{} h</a>', href("/timeline", hours=None if n == 24 else n, end=end_text),
                       Html(' aria-current="page"') if n == hours else "", n) for n in (1, 6, 24)), " ")
    parts.append(fmt('<p class="pager">{} · window: {}</p>', join(nav, " · "), widths))
    return page("Timeline", join(parts), now=now, active="/timeline", refresh=60 if end_text is None else None)



def _latest(history: RunReader, start: float, now: float) -> list[RunRecord] | None:
    """The runs of the last day, newest first, walking run ids down from the newest (cheap, and
    SQLite's plan for a wide time range sorts every row in it first): run ids are handed out
    at start, so once runs start more than SLACK_S before the window, none after them is in it
    (a longer run still going is in `running()`). None when SCAN rows are not enough (runs
    stamped after now: the clock was set back), for the time index to answer instead."""
    runs: list[RunRecord] = []
    for scanned, r in enumerate(history.iter_query(newest_first=True)):
        if len(runs) >= LIMIT:
            break
        if scanned >= SCAN:
            return None
        t = (r.started_at or r.ended_at)
        if t is None:
            continue
        if t.timestamp() < start - SLACK_S:
            break
        ended = r.ended_at.timestamp() if r.ended_at else now
        if ended >= start and t.timestamp() <= now:
            runs.append(r)
    return runs
