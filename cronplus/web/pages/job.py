"""`/jobs/NAME`: one job. Its facts (schedule and the next fire times from crontab/schedule.py,
the command with any URL cut to its host, the options that differ from the defaults, alert and
ping targets redacted, `after=` edges both ways), a "run now" button, a duration chart of its
last runs, and its history: newest first, filtered by `status` and `since` (the forms of
`cronplus log --since`), PAGE rows a page, `before=RUN_ID` for the next (older) page.

`POST /jobs/NAME/trigger` (an action: the server asks for the token and checks the origin
first) starts a run through `Site.trigger` and redirects to it (303), or shows why not.
A browser without the session is shown the token form instead of the button (POST /login,
auth.py's), which brings it back here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING

from cronplus.model import JobOptions
from cronplus.status import RunStatus
from cronplus.web.http import Request, Response, Site
from cronplus.web.pages.layout import (
    Html,
    badge,
    definition_list,
    duration,
    esc,
    fmt,
    href,
    job_href,
    join,
    local,
    not_found,
    page,
    run_href,
    table,
    when,
)
from cronplus.web.pages.svg import duration_chart

if TYPE_CHECKING:
    from cronplus.model import JobSpec, RunRecord
    from cronplus.store.api import RunReader

PAGE = 50
CHART_RUNS = 60
NEXT_RUNS = 5
CHARTED = (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.INTERRUPTED)


def handle(request: Request, site: Site) -> Response:
    return _render(request, site)


def trigger(request: Request, site: Site) -> Response:
    from urllib.parse import parse_qs

    name = request.params.get("name", "")
    form = parse_qs(request.body.decode("utf-8", errors="replace"))
    force = form.get("force", [""])[0] == "1"
    reply = site.trigger(name, force=force)
    run_id = reply.get("run_id")
    if reply.get("ok") and isinstance(run_id, int):
        return Response(status=303, headers={"Location": run_href(run_id)})
    if reply.get("ok"):
        message = f"{name} is queued behind its running run (overlap=queue)."
        return _render(request, site, notice=message, status=202)
    message = str(reply.get("error") or "the supervisor refused")
    if reply.get("suggestion"):
        message += f" (did you mean {reply['suggestion']}?)"
    return _render(request, site, notice=message, status=409, refused=bool(reply.get("refused")))


def _render(request: Request, site: Site, *, notice: str | None = None, status: int = 200,
            refused: bool = False) -> Response:
    now = site.now()
    name = request.params.get("name", "")
    spec = site.crontab().job(name)
    history = site.history()
    if spec is None and not history.latest_runs(name, 1):
        return not_found(f"No job named {name} in the crontab or the history.", now=now)
    error = None
    statuses = [s for s in request.query.get("status", []) if s in {str(v) for v in RunStatus}]
    since_text = (request.arg("since") or "").strip()
    since = None
    if since_text:
        from cronplus.errors import UsageError
        from cronplus.timeparse import parse_time

        try:
            since = parse_time(since_text, now=now)
        except UsageError as exc:
            error, status = str(exc), 400
    before = _int(request.arg("before"))
    rows = list(islice(_history(history, name, statuses, since, before), PAGE + 1))
    more, rows = len(rows) > PAGE, rows[:PAGE]
    parts = [fmt('<h1>{}</h1>', name)]
    if notice:
        parts.append(fmt('<p class="notice">{}</p>', notice))
    parts.append(_facts(spec, site, now, signed_in=request.authenticated) if spec else
                 fmt('<p class="notice">{} is not in the crontab any more; its history is kept.</p>', name))
    from cronplus.engine.pausing import Pauses
    from cronplus.web.pages.pausing import button, paused_badge

    pause = Pauses.read(history).of(name)
    if pause is not None:
        parts.append(fmt("<p>{}</p>", paused_badge(pause)))
    if spec:
        parts.append(_run_now(name, request, refused=refused))
        if request.authenticated:
            parts.append(button(name, paused=pause is not None and not pause.everything))
    charted = history.query(jobs=[name], statuses=[str(s) for s in CHARTED], limit=CHART_RUNS)
    parts.append(fmt('<section><h2>Durations</h2>{}</section>', duration_chart(charted)))
    parts.append(_filters(name, statuses, since_text, error))
    parts.append(_table(rows, now))
    if more:
        parts.append(fmt('<p class="pager"><a href="{}">Older runs →</a></p>',
                         href(job_href(name), status=statuses, since=since_text, before=rows[-1].run_id)))
    if before is not None:
        parts.append(fmt('<p class="pager"><a href="{}">← Newest runs</a></p>',
                         href(job_href(name), status=statuses, since=since_text)))
    # Refreshed while it shows the newest runs; not a deeper page, nor the answer to a POST (its
    # URL is the action's: reloading it would not show the job).
    live = before is None and request.method == "GET"
    return page(name, join(parts), now=now, status=status, refresh=30 if live else None)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _history(history: RunReader, name: str, statuses: list[str], since: float | None,
             before: int | None) -> Iterator[RunRecord]:
    """Newest first, from the cursor: a deep page reads past the newer rows, never all of them."""
    for record in history.iter_query(jobs=[name], statuses=statuses, since=since, newest_first=True):
        if before is None or record.run_id < before:
            yield record


def _facts(spec: JobSpec, site: Site, now: float, *, signed_in: bool) -> Html:
    from cronplus.crontab.schedule import next_fires
    from cronplus.redact import redact_urls_in

    if spec.schedule.reboot:
        upcoming: Html = esc("at boot only")
    else:
        fires = next_fires(spec.schedule, datetime.fromtimestamp(now, UTC), spec.tz, NEXT_RUNS)
        upcoming = fmt('<ol class="next">{}</ol>', join(fmt("<li>{}</li>", when(t, now, countdown=True)) for t in fires)) \
            if fires else esc("never (no such date)")
    downstream = [j.name for j in site.crontab().jobs if spec.name in j.options.after]
    facts: dict[str, object] = {
        "Schedule": fmt("<code>{}</code> {}", spec.schedule.text, spec.tz or "local time"),
        "Next runs": upcoming,
        # Reading the pages needs no token, and a command may carry a password (`PGPASSWORD=...`)
        # where no URL shows it: only the token's holder sees it, URLs still cut to their host.
        "Command": fmt("<code>{}</code>", redact_urls_in(spec.command)) if signed_in else
        fmt('<span class="muted">shown once signed in (below)</span>'),
        "After (upstream)": _links(spec.options.after) if spec.options.after else "-",
        "Before (downstream)": _links(downstream) if downstream else "-",
        "Defined at": f"{spec.loc.path}:{spec.loc.line}",
    }
    if spec.user:
        facts["User"] = spec.user
    facts.update(_options(spec.options))
    return definition_list(facts)


def _links(names: Iterable[str]) -> Html:
    return join((fmt('<a href="{}">{}</a>', job_href(n), n) for n in names), ", ")


def _options(options: JobOptions) -> dict[str, object]:
    """The options that differ from cron's behaviour (the defaults), as the crontab spells them."""
    from cronplus.redact import redact_url

    default = JobOptions()
    shown: dict[str, object] = {}
    plain = (("retries", "retries"), ("overlap", "overlap"), ("trigger", "trigger"), ("skip_exit", "skip-exit"),
             ("catch_up", "catch-up"), ("alert_format", "alert-format"))
    for attr, key in plain:
        if getattr(options, attr) != getattr(default, attr):
            shown[key] = str(getattr(options, attr))
    spans = (("retry_delay", "retry-delay"), ("backoff", "backoff"), ("timeout", "timeout"), ("kill_grace", "kill-grace"),
             ("jitter", "jitter"))
    for attr, key in spans:
        value = getattr(options, attr)
        if value != getattr(default, attr) and value is not None:
            shown[key] = f"{value:g}x" if attr == "backoff" else duration(value)
    if options.alert:
        shown["alert"] = redact_url(options.alert) if not options.alert.startswith("mailto:") else options.alert
        shown["alert-on"] = ",".join(sorted(str(e) for e in options.alert_on))
    if options.ping:
        shown["ping"] = redact_url(options.ping)
    if options.max_log_size != default.max_log_size:
        shown["max-log-size"] = f"{options.max_log_size} bytes"
    return {k: fmt("<code>{}</code>", v) for k, v in shown.items()}


def _run_now(name: str, request: Request, *, refused: bool = False) -> Html:
    """The button (a form POST: works without the script); after a refusal by after= or
    overlap=, a second one that forces the run, as `cronplus trigger --force` does."""
    action = job_href(name) + "/trigger"
    if request.authenticated:
        force = fmt('<input type="hidden" name="force" value="1"><button type="submit" class="force">'
                    '▶ Run anyway (force)</button>') if refused else fmt('<button type="submit">▶ Run now</button>')
        return fmt('<div class="actions"><form class="run-now" method="post" action="{}">{}</form>'
                   '<form class="sign-out" method="post" action="/logout"><button type="submit">Sign out</button>'
                   '</form></div>', action, force)
    return fmt('<form class="run-now login" method="post" action="/login">'
               '<input type="hidden" name="next" value="{}">'
               '<label>Token to act <input type="password" name="token" autocomplete="current-password" required '
               'placeholder="contents of http.token"></label> <button type="submit">Sign in</button>'
               '<span class="small muted">Once signed in, this page has a “Run now” button.</span></form>', job_href(name))


def _filters(name: str, statuses: list[str], since: str, error: str | None) -> Html:
    options = join(fmt('<option value="{}"{}>{}</option>', s, Html(" selected") if s in statuses else "", s)
                   for s in [""] + [str(v) for v in RunStatus])
    err = fmt('<p class="notice error">{}</p>', error) if error else Html("")
    return fmt('<section><h2>History</h2><form class="filters" method="get" action="{}">'
               '<label>Status <select name="status">{}</select></label> '
               '<label>Since <input name="since" value="{}" placeholder="-24h, yesterday, 2025-06-01"></label> '
               '<button type="submit">Filter</button></form>{}</section>', job_href(name), options, since, err)


def _table(rows: list[RunRecord], now: float) -> Html:
    if not rows:
        return fmt('<p class="muted">No runs match.</p>')
    body = [fmt('<tr><td data-label="Run"><a href="{}">{}</a></td><td data-label="Status">{}</td>'
                '<td data-label="Attempt">{}</td><td data-label="Trigger">{}</td><td data-label="Tick">{}</td>'
                '<td data-label="Started">{}</td><td data-label="Duration">{}</td><td data-label="Reason">{}</td></tr>',
                run_href(r.run_id), r.run_id, badge(r.status), r.attempt, str(r.trigger), local(r.scheduled_at),
                local(r.started_at), duration(r.duration_s), r.reason or "")
            for r in rows]
    return table(("Run", "Status", "Attempt", "Trigger", "Tick", "Started", "Duration", "Reason"), body, cls="runs")
