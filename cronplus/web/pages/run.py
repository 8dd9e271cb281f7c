"""`/runs/RUN_ID`: one run. Its attempts (the rows of the same job and tick: retries), the facts
of this attempt (status, reason, exit code or signal, times, host), and its captured output as
text (escaped; at most SHOWN bytes on the page, the rest through the API's output route).

While the run is `running` the output is followed live: the script asks
`/runs/RUN_ID/tail?offset=N` every second for the bytes after N (`X-Run-Status` says when the
run ended, and the page then reloads once to show how); without the script a meta refresh
reloads the page every 3 s.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from cronplus.queuednote import queued_note
from cronplus.status import RunStatus
from cronplus.web.http import Request, Response, Site
from cronplus.web.pages.layout import (
    Html,
    badge,
    definition_list,
    duration,
    esc,
    fmt,
    job_href,
    join,
    local,
    not_found,
    page,
    page_headers,
    run_href,
    table,
)

if TYPE_CHECKING:
    from cronplus.model import RunRecord
    from cronplus.store.api import RunReader

SHOWN = 1024 * 1024  # bytes of output put into the page
TAIL = 256 * 1024  # bytes one follow request returns at most
FOLLOW_S = 3


def _run_id(request: Request) -> int | None:
    text = request.params.get("run_id", "")
    return int(text) if text.isdigit() else None


def handle(request: Request, site: Site) -> Response:
    now = site.now()
    run_id = _run_id(request)
    history = site.history()
    record = history.get_run(run_id) if run_id is not None else None
    if record is None:
        return not_found(f"No run {request.params.get('run_id', '')} in the history.", now=now)
    running = record.status is RunStatus.RUNNING
    attempts = _attempts(history, record)
    parts = [fmt('<h1><a href="{}">{}</a> · run {} {}</h1>', job_href(record.job), record.job, record.run_id,
                 badge(record.status)),
             definition_list(_facts(record, now))]
    if len(attempts) > 1:
        parts.append(fmt("<section><h2>Attempts</h2>{}</section>", _attempts_table(attempts, record.run_id)))
    parts.append(_output(site, record, running))
    return page(f"{record.job} run {record.run_id}", join(parts), now=now, follow=FOLLOW_S if running else None)


def tail(request: Request, site: Site) -> Response:
    """The output bytes after `offset` (at most TAIL), with the run's status: what the follow asks."""
    run_id = _run_id(request)
    record = site.history().get_run(run_id) if run_id is not None else None
    if record is None:
        return Response(status=404, body=b"no such run\n", content_type="text/plain; charset=utf-8")
    offset_text = request.arg("offset", "0") or "0"
    offset = int(offset_text) if offset_text.isdigit() else 0
    chunk = site.output(record.run_id, offset=offset, limit=TAIL) or b""
    headers = {"X-Run-Status": str(record.status), "X-Next-Offset": str(offset + len(chunk)), **page_headers()}
    return Response(body=chunk, content_type="text/plain; charset=utf-8", headers=headers)


def _attempts(history: RunReader, record: RunRecord) -> list[RunRecord]:
    """The rows of the same job and tick, oldest first: they start at or after the tick."""
    if record.scheduled_at is None:
        return [record]
    tick = record.scheduled_at.timestamp()
    rows = [r for r in history.iter_query(jobs=[record.job], since=tick - 1, limit=1000)
            if r.scheduled_at is not None and r.scheduled_at.timestamp() == tick]
    return rows or [record]


def _facts(r: RunRecord, now: float) -> dict[str, object]:
    facts: dict[str, object] = {
        "Job": fmt('<a href="{}">{}</a>', job_href(r.job), r.job),
        "Status": badge(r.status),
        "Attempt": r.attempt,
        "Trigger": str(r.trigger),
        "Tick": local(r.scheduled_at),
        "Started": local(r.started_at),
        "Ended": local(r.ended_at) if r.ended_at else "still running" if r.status is RunStatus.RUNNING else "-",
        "Duration": _duration(r, now),
    }
    if r.exit_code is not None:
        facts["Exit code"] = r.exit_code
    if r.signal is not None:
        try:
            facts["Signal"] = f"{signal.Signals(r.signal).name} ({r.signal})"
        except ValueError:
            facts["Signal"] = r.signal
    if r.reason:
        facts["Reason"] = r.reason
    if r.host:
        facts["Host"] = r.host
    elif note := queued_note(r):  # a queue= attempt still in the broker (queuednote.py)
        facts["Host"] = note
    if r.pid:
        facts["PID"] = r.pid
    return facts


def _duration(r: RunRecord, now: float) -> Html:
    """A final run's duration; a running one's time so far, kept current by the script."""
    if r.duration_s is not None:
        return esc(duration(r.duration_s))
    if r.started_at is None or r.status is not RunStatus.RUNNING:
        return esc("-")
    return fmt('<time class="elapsed" datetime="{}">{}</time> so far', r.started_at.isoformat(),
               duration(now - r.started_at.timestamp()))


def _attempts_table(attempts: list[RunRecord], current: int) -> Html:
    rows = [fmt('<tr{}><td data-label="Attempt"><a href="{}">{}</a></td><td data-label="Status">{}</td>'
                '<td data-label="Started">{}</td><td data-label="Duration">{}</td><td data-label="Reason">{}</td></tr>',
                Html(' class="current"') if a.run_id == current else "", run_href(a.run_id), a.attempt,
                badge(a.status), local(a.started_at), duration(a.duration_s), a.reason or "")
            for a in attempts]
    return table(("Attempt", "Status", "Started", "Duration", "Reason"), rows)


def _output(site: Site, record: RunRecord, running: bool) -> Html:
    data = site.output(record.run_id, offset=0, limit=SHOWN + 1)
    if data is None:
        return _kept(site, record)
    cut = len(data) > SHOWN
    data = data[:SHOWN]
    note = Html("")
    follow = Html("")
    if cut:
        note = fmt('<p class="notice">Only the first {} bytes are shown: the whole output is at '
                   '<a href="{}">{}</a>.</p>', SHOWN, f"/api/v1/runs/{record.run_id}/output",
                   f"/api/v1/runs/{record.run_id}/output")
    elif running:
        follow = fmt(' data-follow="{}/tail" data-offset="{}"', run_href(record.run_id), len(data))
    shown = data.decode("utf-8", errors="replace")
    empty = fmt('<p class="muted" id="no-output">{}</p>', "No output yet." if running else "The run wrote nothing.") \
        if not data else Html("")
    raw = fmt(' <a class="small" href="{}">raw</a>', f"/api/v1/runs/{record.run_id}/output")
    return fmt('<section><h2>Output{}{}</h2>{}{}<pre class="output" id="output"{}>{}</pre></section>',
               fmt(' <span class="small muted">followed live</span>') if follow else "", raw, note, empty, follow,
               esc(shown))


def _kept(site: Site, record: RunRecord) -> Html:
    """No log here: a shared store's row keeps its first and last 8 KiB (engine/outputexcerpt.py)."""
    from cronplus.engine.outputexcerpt import render

    history = site.history()
    excerpt = history.output_excerpt(record.run_id) if history.shared else None
    if excerpt is None:
        return fmt('<section><h2>Output</h2><p class="muted">No output kept for this run.</p></section>')
    text = render(excerpt, host=record.host, path=record.log_path).decode("utf-8", errors="replace")
    return fmt('<section><h2>Output</h2><p class="notice">The full log is on {} at {}: the first and last 8 KiB'
               ' its history row keeps are shown.</p><pre class="output" id="output">{}</pre></section>',
               record.host or "the host that ran it", record.log_path or "?", esc(text))
