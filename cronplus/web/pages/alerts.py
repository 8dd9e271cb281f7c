"""`/alerts`: the alert deliveries (the outbox: alerts, pings, mail), newest first, optionally
of one status (`?status=pending|delivered|failed`): what, for which job and run, to where
(redacted: a webhook's scheme and host, or the `env:VAR` it names; mail shows its addresses,
as `cronplus alerts` does), its state, attempts, and the last error (stored redacted, cut again
here to hosts in case). Counts per status on top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cronplus.status import DeliveryStatus
from cronplus.web.http import Request, Response, Site
from cronplus.web.pages.layout import Html, fmt, href, job_href, join, local, page, run_href, table

if TYPE_CHECKING:
    from cronplus.store.outbox import OutboxRow

LIMIT = 200
SYMBOL = {"pending": "…", "delivered": "✓", "failed": "✗"}
CLASS = {"pending": "waiting", "delivered": "success", "failed": "failed"}


def target(row: OutboxRow) -> str:
    """Where a row goes, without its secret."""
    from cronplus.redact import redact_url

    return row.target if row.kind == "mail" else redact_url(row.target)


def handle(request: Request, site: Site) -> Response:
    from cronplus.redact import redact_urls_in

    now = site.now()
    wanted = request.arg("status") or None
    if wanted not in (None, *(str(s) for s in DeliveryStatus)):
        wanted = None
    outbox = site.outbox()
    counts = outbox.counts()
    rows = list(reversed(outbox.list_rows(status=wanted, limit=LIMIT)))
    tabs = [fmt('<a href="/alerts"{}>all</a>', Html(' aria-current="page"') if wanted is None else "")]
    for s in DeliveryStatus:
        tabs.append(fmt('<a href="{}"{}><span class="badge st-{}"><span class="sym">{}</span> {} {}</span></a>',
                        href("/alerts", status=str(s)), Html(' aria-current="page"') if wanted == str(s) else "",
                        CLASS[str(s)], SYMBOL[str(s)], counts.get(str(s), 0), str(s)))
    body = [fmt('<tr><td data-label="#">{}</td><td data-label="Created">{}</td><td data-label="Job">{}</td>'
                '<td data-label="Event">{} {}</td><td data-label="To">{} <code>{}</code></td><td data-label="State">'
                '<span class="badge st-{}"><span class="sym">{}</span> {}</span></td><td data-label="Attempts">{}</td>'
                '<td data-label="Next / delivered">{}</td><td data-label="Last error">{}</td></tr>',
                r.id, local(r.created_at),
                fmt('<a href="{}">{}</a>', job_href(r.job), r.job) if r.job else "-",
                r.event, fmt('<a href="{}">run {}</a>', run_href(r.run_id), r.run_id) if r.run_id is not None else "",
                r.kind, target(r), CLASS.get(r.status, "none"), SYMBOL.get(r.status, "·"), r.status, r.attempts,
                local(r.delivered_at) if r.delivered_at else local(r.next_attempt_at) if r.status == "pending" else "-",
                redact_urls_in(r.last_error) if r.last_error else "")
            for r in rows]
    parts = [fmt("<h1>Alert deliveries</h1>"), fmt('<p class="tabs">{}</p>', join(tabs, " "))]
    if body:
        parts.append(table(("#", "Created", "Job", "Event", "To", "State", "Attempts", "Next / delivered", "Last error"),
                           body, cls="alerts"))
        if len(rows) >= LIMIT:
            parts.append(fmt('<p class="muted">The newest {} are shown; <code>cronplus alerts -n 0</code> lists all.</p>', LIMIT))
    else:
        parts.append(fmt('<p class="muted">No deliveries{}.</p>', f" {wanted}" if wanted else " yet"))
    return page("Alerts", join(parts), now=now, active="/alerts", refresh=30)
