"""The frame every page shares, and the one way text gets into markup.

Escaping: markup is built only with `fmt(template, *values)` (and `esc(value)`): the template is
a literal of this package, every value is HTML-escaped (quotes included, so it is safe in an
attribute too) unless it is already `Html`, markup made by `fmt`/`esc` itself. A job name, a
reason or a run's output from the store can therefore never become markup.

`page(...)` wraps a body into the document: navigation, the stylesheet and the refresh script
from /static/ (no inline script or style, so a strict Content-Security-Policy holds: it is sent
with every page), `<noscript>` meta refresh where a page follows something live, and the
supervisor's clock in `data-now` (the countdowns count from it, not from the browser's clock).

Statuses are shown as a colour, a symbol and a word (`badge`), or a colour and a symbol with the
word in a tooltip (`cell`): never by colour alone. Colours are Okabe and Ito's palette.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import datetime
from urllib.parse import quote, urlencode

from cronplus.web.http import Response

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
       " form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

# status -> (symbol, words for a person); the CSS colours them by class `st-<status>`.
STATUS: dict[str, tuple[str, str]] = {
    "success": ("✓", "success"),
    "failed": ("✗", "failed"),
    "timeout": ("◷", "timed out"),  # a clock face: ⏱ is missing from common fonts (DejaVu)
    "running": ("▶", "running"),
    "skipped": ("↷", "skipped"),
    "upstream_failed": ("⇡", "upstream failed"),
    "missed": ("∅", "missed"),
    "interrupted": ("↯", "interrupted"),
    "queued": ("…", "queued"),
    "waiting": ("…", "waiting"),
    "none": ("·", "no run yet"),
}


class Html(str):
    """Markup that may be emitted as it is: made only by `esc`, `fmt` and `join`."""

    __slots__ = ()


def esc(value: object) -> Html:
    """`value` as text in HTML (an `Html` value is already markup and stays as it is)."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def fmt(template: str, *values: object, **named: object) -> Html:
    """`template.format(...)` with every value escaped; the template itself is trusted markup."""
    return Html(template.format(*(esc(v) for v in values), **{k: esc(v) for k, v in named.items()}))


def join(parts: Iterable[Html], sep: str = "") -> Html:
    return Html(sep.join(esc(p) for p in parts))


def href(path: str, **query: object) -> str:
    """A same-site URL; empty query values are left out, a list is the parameter repeated.
    Escaped when put into markup by fmt."""
    pairs = [(k, str(item)) for k, v in query.items()
             for item in (v if isinstance(v, (list, tuple)) else [v]) if item not in (None, "")]
    return path + ("?" + urlencode(pairs) if pairs else "")


def job_href(name: str) -> str:
    return "/jobs/" + quote(name, safe="")


def run_href(run_id: int) -> str:
    return f"/runs/{run_id}"


def status_key(status: object | None) -> str:
    key = "none" if status is None else str(status)
    return key if key in STATUS else "none"


def badge(status: object | None) -> Html:
    """Colour, symbol and word: `✓ success`."""
    key = status_key(status)
    symbol, words = STATUS[key]
    return fmt('<span class="badge st-{}"><span class="sym" aria-hidden="true">{}</span> {}</span>',
               key, symbol, words)


def symbol_of(status: object | None) -> str:
    return STATUS[status_key(status)][0]


def clip(value: str, n: int) -> str:
    """At most n characters, an ellipsis marking the cut (the whole text goes in a title)."""
    return value if len(value) <= n else value[: n - 1] + "…"


def local(value: datetime | float | None, *, with_date: bool = True) -> str:
    from cronplus.humanize import local_time

    return local_time(value, with_date=with_date)


def when(value: datetime | None, now: float, *, countdown: bool = False) -> Html:
    """A time as a <time> element: the local time, and how far from now (`in 4min`, `3h ago`);
    with `countdown`, the script keeps the distance current."""
    if value is None:
        return fmt('<span class="muted">-</span>')
    rel = relative(value.timestamp() - now)
    if countdown:
        return fmt('<time datetime="{}" class="countdown" title="{}"><span class="rel">{}</span> '
                   '<span class="at">{}</span></time>', value.isoformat(), value.isoformat(), rel, local(value))
    return fmt('<time datetime="{}" title="{}">{} <span class="rel">{}</span></time>',
               value.isoformat(), value.isoformat(), local(value), rel)


def relative(seconds: float) -> str:
    from cronplus.humanize import duration

    if abs(seconds) < 1:
        return "just now"
    text = duration(abs(round(seconds)))
    return f"in {text}" if seconds > 0 else f"{text} ago"


def duration(seconds: float | None) -> str:
    from cronplus.humanize import duration as human

    return human(seconds)


NAV = (("/", "Jobs"), ("/graph", "Graph"), ("/timeline", "Timeline"), ("/alerts", "Alerts"))


def page(title: str, body: Html, *, now: float, active: str = "", status: int = 200,
         follow: int | None = None, refresh: int | None = None) -> Response:
    """The whole document. `refresh`: the script reloads the page's <main> every N seconds
    (no script: a meta refresh); `follow`: same, for a page following a run live."""
    links = join(fmt('<a href="{}"{}>{}</a>', path, Html(' aria-current="page"') if path == active else "", name)
                 for path, name in NAV)
    every = follow or refresh
    meta = fmt('<noscript><meta http-equiv="refresh" content="{}"></noscript>', every) if every else Html("")
    doc = fmt(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<title>{title} · cronplus</title>{meta}'
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/static/cronplus.css">'
        '<script src="/static/cronplus.js" defer></script></head>'
        '<body data-now="{now}" data-refresh="{every}">'
        '<header><a class="brand" href="/">cronplus</a><nav>{links}</nav></header>'
        '<main>{body}</main>'
        '<footer>supervisor time {clock}{again}</footer></body></html>\n',
        title=title, meta=meta, now=f"{now:.3f}", every=every or "", links=links, body=body,
        # no refresh link while following a run: the page's output grows by itself
        clock=local(now), again=fmt(' · <a class="refresh" href="">refresh</a>') if refresh and not follow else "")
    return Response(status=status, body=doc.encode(), headers=page_headers())


def page_headers() -> dict[str, str]:
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


def not_found(what: str, *, now: float) -> Response:
    body = fmt('<h1>Not found</h1><p class="notice">{}</p><p><a href="/">All jobs</a></p>', what)
    return page("Not found", body, now=now, status=404)


def table(headers: Iterable[str], rows: Iterable[Html], *, cls: str = "") -> Html:
    head = join(fmt("<th>{}</th>", h) for h in headers)
    return fmt('<div class="scroll"><table class="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>',
               cls, head, join(rows))


def definition_list(items: Mapping[str, object]) -> Html:
    return fmt('<dl class="facts">{}</dl>', join(fmt("<dt>{}</dt><dd>{}</dd>", k, v) for k, v in items.items()))
