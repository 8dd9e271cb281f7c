"""`/`: every job's state at a glance.

A summary line (how many jobs, failing, running; the last reload's result), the crontab's lint
warnings, then one row per job (`Site.job_rows`, what `cronplus jobs` shows): its schedule, a
strip of its recent runs oldest to newest as Airflow's grid draws them (a square per run, its
colour and symbol the status, a link to the run), the last final run, the next run with a
countdown (or "paused since T (by USER)": pages/pausing.py), and what runs or waits now; PAGE
jobs a page, filtered by a part of the name (`q`) or to the failing or running ones (`show`). Below, the runs the supervisor holds (its
snapshot). Refreshed every 15 s by the script (a meta refresh without it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cronplus.queuednote import queued_note
from cronplus.web.http import Request, Response, Site
from cronplus.web.pages.layout import (
    STATUS,
    Html,
    badge,
    clip,
    duration,
    esc,
    fmt,
    href,
    job_href,
    join,
    local,
    page,
    relative,
    run_href,
    status_key,
    symbol_of,
    table,
    when,
)

if TYPE_CHECKING:
    from cronplus.model import RunRecord
    from cronplus.service.commands import SupervisorSnapshot
    from cronplus.service.views import JobRow

PAGE = 100  # jobs a page: a thousand rows are neither read at a glance nor rendered in 100 ms
STRIP = 14  # runs in a job's strip: two weeks of a daily job, a bit over two hours of a 10-minute one
IN_FLIGHT = 50  # runs listed under "Now": a 2,000-job tick would otherwise list them all
REFRESH_S = 15


def strip(runs: Sequence[RunRecord], *, slots: int = STRIP) -> Html:
    """The last `slots` runs as squares, oldest left; empty squares pad a short history on the left.
    (Written out by hand rather than with fmt: 1,000 jobs make 14,000 of these on one page.)"""
    empty = '<span class="cell empty"></span>' * max(slots - len(runs), 0)
    cells = []
    for r in runs[-slots:]:
        key = status_key(r.status)
        at = local(r.started_at or r.ended_at)[5:16]  # MM-DD HH:MM, local time
        reason = f" · {esc(r.reason)}" if r.reason else ""
        cells.append(f'<a class="cell st-{key}" href="/runs/{r.run_id}" title="run {r.run_id} · {key} · {at}'
                     f'{reason}">{STATUS[key][0]}</a>')
    return Html(f'<span class="strip">{empty}{"".join(cells)}</span>')


def handle(request: Request, site: Site) -> Response:
    now = site.now()
    rows = site.job_rows()
    snap = site.snapshot()
    history = site.history()
    shown = _filtered(rows, request)
    pages = max((len(shown) + PAGE - 1) // PAGE, 1)
    number = min(max(_int(request.arg("page"), 1), 1), pages)
    body = [_summary(rows, snap, site), _warnings(snap), _filter_form(request, len(shown), len(rows))]
    table_rows = [_row(row, history.latest_runs(row.job, STRIP), now)
                  for row in shown[(number - 1) * PAGE:number * PAGE]]
    if table_rows:
        body.append(table(("Job", "Schedule", "Recent runs", "Last run", "Next run", "Now"), table_rows, cls="jobs"))
    else:
        body.append(fmt('<p class="notice">{}</p>', "No job matches." if rows else "The crontab has no jobs."))
    if pages > 1:
        body.append(_pager(request, number, pages))
    body.append(_in_flight(snap, now))
    return page("Jobs", join(body), now=now, active="/", refresh=REFRESH_S)


def _int(text: str | None, default: int) -> int:
    return int(text) if text is not None and text.isdigit() else default


def failing(row: JobRow) -> bool:
    return row.last is not None and status_key(row.last.status) not in ("success", "skipped")


def _filtered(rows: Sequence[JobRow], request: Request) -> list[JobRow]:
    """`q`: part of the name (any case); `show`: `failing` (last run not a success) / `running`."""
    q = (request.arg("q") or "").strip().lower()
    show = request.arg("show")
    return [r for r in rows if q in r.job.lower()
            and (show != "failing" or failing(r)) and (show != "running" or r.running)]


def _filter_form(request: Request, matching: int, total: int) -> Html:
    if total <= PAGE and not request.arg("q") and not request.arg("show"):
        return Html("")
    show = request.arg("show") or ""
    choices = join(fmt('<option value="{}"{}>{}</option>', value, Html(" selected") if value == show else "", label)
                   for value, label in (("", "all jobs"), ("failing", "failing"), ("running", "running")))
    return fmt('<form class="filters" method="get" action="/"><label>Name <input name="q" value="{}"></label> '
               '<label>Show <select name="show">{}</select></label> <button type="submit">Filter</button> '
               '<span class="muted">{} of {} jobs</span></form>', request.arg("q") or "", choices, matching, total)


def _pager(request: Request, number: int, pages: int) -> Html:
    def to(n: int) -> str:
        return href("/", q=request.arg("q"), show=request.arg("show"), page=n if n > 1 else None)

    links = [fmt('<a href="{}">← previous</a>', to(number - 1))] if number > 1 else []
    links.append(fmt("page {} of {}", number, pages))
    if number < pages:
        links.append(fmt('<a href="{}">next →</a>', to(number + 1)))
    return fmt('<p class="pager">{}</p>', join(links, " · "))


def _summary(rows: Sequence[JobRow], snap: SupervisorSnapshot, site: Site) -> Html:
    bad = sum(1 for r in rows if failing(r))
    running = sum(len(r.running) for r in rows)
    reload_ok = site.stats().reload_ok()
    if snap.crontab_missing:
        loaded = fmt('<span class="badge st-failed"><span class="sym">✗</span> crontab {} is missing</span>', snap.crontab)
    elif reload_ok:
        loaded = fmt('<span class="badge st-success"><span class="sym">✓</span> crontab loaded</span> <code>{}</code>',
                     snap.crontab)
    else:
        loaded = fmt('<span class="badge st-failed"><span class="sym">✗</span> the last reload failed: '
                     'the previous crontab is kept</span> <code>{}</code>', snap.crontab)
    return fmt('<section class="summary"><h1>Jobs</h1><p><a href="/">{} jobs</a> · <a class="{}" href="/?show=failing">'
               '{} {} failing</a> · <a class="{}" href="/?show=running">{} {} running</a></p><p>{}</p></section>',
               len(rows), "st-text-failed" if bad else "", symbol_of("failed"), bad,
               "st-text-running" if running else "", symbol_of("running"), running, loaded)


def _warnings(snap: SupervisorSnapshot) -> Html:
    if not snap.warnings:
        return Html("")
    items = join(fmt("<li><code>{}</code></li>", w) for w in snap.warnings)
    return fmt('<details class="warnings" open><summary>⚠ {} lint warning{}</summary><ul>{}</ul></details>',
               len(snap.warnings), "" if len(snap.warnings) == 1 else "s", items)


def _row(row: JobRow, recent: Sequence[RunRecord], now: float) -> Html:
    name = fmt('<a class="job" href="{}" title="{}">{}</a>', job_href(row.job), row.job, clip(row.job, 40))
    if row.after:
        name = fmt('{}<div class="small muted">after {}</div>', name,
                   join((fmt('<a href="{}">{}</a>', job_href(a), a) for a in row.after), ", "))
    if row.schedule is None:
        schedule = fmt('<span class="muted">removed from the crontab</span>')
    else:
        schedule = fmt("<code>{}</code>{}", row.schedule,
                       fmt(' <span class="small muted">{}</span>', row.tz) if row.tz else "")
    last = row.last
    if last is None:
        last_cell = badge(None)
    else:
        ago = relative(last.ended_at.timestamp() - now) if last.ended_at else ""
        last_cell = fmt('<a href="{}">{}</a><div class="small muted">{} · took {}</div>', run_href(last.run_id),
                        badge(last.status), ago, duration(last.duration_s))
    if row.paused is not None:  # its ticks are not run until resumed (cronplus pause)
        from cronplus.web.pages.pausing import paused_badge

        next_cell = paused_badge(row.paused)
    elif row.next_run is not None:
        next_cell = when(row.next_run, now, countdown=True)
    elif row.schedule is not None and row.schedule.startswith("@reboot"):
        next_cell = fmt('<span class="muted">at boot</span>')
    else:
        next_cell = fmt('<span class="muted">-</span>')
    doing = [fmt('<a href="{}">{}</a> <span class="small muted">{}</span>', run_href(r.run_id), badge("running"),
                 queued_note(r) or (relative(r.started_at.timestamp() - now) if r.started_at else ""))
             for r in row.running]  # a queue= attempt in the broker: "queued on NAME ..." (queuednote.py)
    if row.waiting:
        doing.append(fmt('<span class="badge st-waiting"><span class="sym">…</span> {}</span>', row.waiting))
    return fmt('<tr class="st-row-{}"><td data-label="Job">{}</td><td data-label="Schedule">{}</td>'
               '<td data-label="Recent">{}</td><td data-label="Last">{}</td><td data-label="Next">{}</td>'
               '<td data-label="Now">{}</td></tr>',
               status_key(last.status if last else None), name, schedule, strip(recent), last_cell, next_cell,
               join(doing, " ") or esc(""))


def _in_flight(snap: SupervisorSnapshot, now: float) -> Html:
    """The runs the supervisor holds: active ones, and those waiting on upstreams or queued."""
    if not snap.runs:
        return fmt('<section><h2>Now</h2><p class="muted">Nothing runs or waits.</p></section>')
    items = []
    for r in snap.runs[:IN_FLIGHT]:
        run = fmt('<a href="{}">run {}</a>', run_href(r.run_id), r.run_id) if r.run_id is not None else esc("no row yet")
        since = relative(r.started_at - now) if r.started_at is not None else ""
        items.append(fmt('<li><a href="{}">{}</a> · {} · {} · attempt {} · tick {} {}</li>', job_href(r.job), r.job,
                         _state(r.state, r.pool, r.ahead), run, r.attempt,
                         local(r.scheduled_at), fmt('<span class="muted">started {}</span>', since) if since else ""))
    more = len(snap.runs) - IN_FLIGHT
    if more > 0:
        items.append(fmt('<li class="muted">and {} more (the <a href="/?show=running">running jobs</a>)</li>', more))
    return fmt('<section><h2>Now</h2><ul class="inflight">{}</ul></section>', join(items))


def _state(state: str, pool: str | None = None, ahead: int | None = None) -> Html:
    if state == "active":
        return badge("running")
    words = {"waiting": "waiting on upstream", "queued": "queued (overlap)", "delayed": "delayed (jitter)"}
    word = f"queued for {pool} ({ahead} ahead)" if pool is not None else words.get(state, state)  # engine/pools.py
    return fmt('<span class="badge st-waiting"><span class="sym">…</span> {}</span>', word)
