"""Charts as inline SVG, built server-side (no script draws anything): a run's duration bars,
the Gantt rows of a time window, the boxes and arrows of the `after=` graph.

Shapes carry the class `st-<status>` (the stylesheet colours them, Okabe-Ito) and a status
symbol beside or on them, and each has a `<title>` (the tooltip a browser shows, the text a
screen reader reads): colour is never the only sign. Every text goes through layout's `fmt`.
Sizes are in viewBox units; the stylesheet scales an SVG to its container's width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cronplus.model import RunRecord
from cronplus.web.pages.layout import (
    Html,
    clip,
    duration,
    esc,
    fmt,
    join,
    local,
    run_href,
    status_key,
    symbol_of,
)


def _n(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def svg(width: float, height: float, body: Html, *, label: str, cls: str = "chart") -> Html:
    # role=group, not img: the shapes are links a keyboard and a screen reader can reach
    return fmt('<svg class="{}" width="{}" height="{}" viewBox="0 0 {} {}" role="group" aria-label="{}" '
               'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">{}</svg>',
               cls, _n(width), _n(height), _n(width), _n(height), label, body)


def rect(x: float, y: float, w: float, h: float, *, cls: str, title: str = "", rx: float = 0) -> Html:
    tip = fmt("<title>{}</title>", title) if title else Html("")
    return fmt('<rect class="{}" x="{}" y="{}" width="{}" height="{}" rx="{}">{}</rect>',
               cls, _n(x), _n(y), _n(max(w, 0)), _n(max(h, 0)), _n(rx), tip)


def text(x: float, y: float, value: str, *, cls: str = "", anchor: str = "start") -> Html:
    return fmt('<text class="{}" x="{}" y="{}" text-anchor="{}">{}</text>', cls, _n(x), _n(y), anchor, value)


def link(url: str, body: Html) -> Html:
    return fmt('<a href="{}">{}</a>', url, body)


def _run_title(r: RunRecord) -> str:
    parts = [r.job, f"run {r.run_id}", str(r.status), local(r.started_at)]
    if r.duration_s is not None:
        parts.append(duration(r.duration_s))
    if r.reason:
        parts.append(r.reason)
    return " · ".join(parts)


def duration_chart(runs: Sequence[RunRecord], *, width: float = 640, height: float = 160) -> Html:
    """One bar per run (oldest left), its height the run's duration; the symbol of a run that did
    not succeed above its bar; the longest duration labelled on the axis."""
    runs = [r for r in runs if r.duration_s is not None]
    if not runs:
        return fmt('<p class="muted">No finished runs to chart yet.</p>')
    top, left, bottom = 18.0, 48.0, 18.0
    width = min(width, max(240.0, left + 20.0 * len(runs) + 8))  # a few runs: a narrower chart
    plot_h = height - top - bottom
    longest = max(r.duration_s or 0.0 for r in runs) or 1.0
    slot = min((width - left - 8) / len(runs), 20.0)  # newest at the right
    bar_w = max(slot * 0.75, 1.0)
    first = width - 8 - slot * len(runs)
    parts: list[Html] = [
        text(left - 6, top + 4, duration(longest), cls="axis", anchor="end"),
        text(left - 6, top + plot_h, "0", cls="axis", anchor="end"),
        fmt('<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"></line>', _n(left), _n(top + plot_h), _n(width), _n(top + plot_h)),
    ]
    for i, r in enumerate(runs):
        h = max(plot_h * (r.duration_s or 0.0) / longest, 1.0)
        x = first + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        bar = rect(x, y, bar_w, h, cls=f"bar st-{status_key(r.status)}", title=_run_title(r))
        if status_key(r.status) != "success":
            bar = Html(bar + text(x + bar_w / 2, y - 3, symbol_of(r.status), cls="sym", anchor="middle"))
        parts.append(link(run_href(r.run_id), bar))
    label = f"durations of the last {len(runs)} runs, longest {duration(longest)}"
    return svg(width, height, join(parts), label=label)


@dataclass(frozen=True)
class GanttRow:
    label: str
    url: str
    runs: Sequence[RunRecord]


def gantt(rows: Sequence[GanttRow], *, start: float, end: float, now: float, width: float = 960) -> Html:
    """One row per job over [start, end]: a bar per run from its start to its end (a running one
    to `now`), time ticks along the top (at most 12: every 10 min for an hour, 3 h for a day). A bar is at least 2 units wide, so a one-second run shows."""
    if not rows:
        return fmt('<p class="muted">No runs in this window.</p>')
    label_w, row_h, top = 150.0, 22.0, 24.0
    span = max(end - start, 1.0)
    plot_w = width - label_w - 8

    def x_of(t: float) -> float:
        return label_w + plot_w * min(max(t - start, 0.0), span) / span

    height = top + row_h * len(rows) + 6
    parts: list[Html] = []
    step = next((s for s in (600, 1800, 3600, 3 * 3600, 6 * 3600) if span / s <= 12), 12 * 3600)
    t = (int(start // step) + 1) * step
    while t <= end:
        x = x_of(t)
        parts.append(fmt('<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"></line>', _n(x), _n(top - 4), _n(x), _n(height)))
        parts.append(text(x, top - 8, local(t, with_date=False)[:5], cls="axis", anchor="middle"))
        t += step
    for i, row in enumerate(rows):
        y = top + i * row_h
        parts.append(link(row.url, text(label_w - 6, y + row_h * 0.68, clip(row.label, 20), cls="label", anchor="end")))
        # Bars written out by hand rather than with fmt (thousands a page); the title is the
        # only text from the store in them, escaped.
        for r in row.runs:
            if r.started_at is None:
                continue
            t0 = r.started_at.timestamp()
            t1 = r.ended_at.timestamp() if r.ended_at is not None else now
            x0, x1 = x_of(t0), x_of(t1)
            key = status_key(r.status)
            mark = "" if key == "success" else \
                f'<text class="sym on-bar" x="{_n(x0 + 1)}" y="{_n(y + row_h * 0.7)}">{symbol_of(key)}</text>'
            parts.append(Html(
                f'<a href="/runs/{r.run_id}"><rect class="bar st-{key}" x="{_n(x0)}" y="{_n(y + 4)}" '
                f'width="{_n(max(x1 - x0, 2.0))}" height="{_n(row_h - 8)}"><title>{esc(_run_title(r))}</title>'
                f'</rect>{mark}</a>'))
    x_now = x_of(now)
    parts.append(fmt('<line class="now" x1="{}" y1="{}" x2="{}" y2="{}"><title>now</title></line>',
                     _n(x_now), _n(top - 4), _n(x_now), _n(height)))
    return svg(width, height, join(parts), label=f"timeline of {len(rows)} jobs", cls="chart gantt")


@dataclass(frozen=True)
class Node:
    name: str
    url: str
    status: str | None  # the last final run's status, or None
    layer: int


def graph(nodes: Sequence[Node], edges: Sequence[tuple[str, str]], *, width_per_layer: float = 200) -> Html:
    """Nodes in columns by layer (topological depth), left to right; an arrow from each upstream
    to its downstream job. Each box shows the job's name and its last status's symbol."""
    if not nodes:
        return fmt('<p class="muted">No jobs.</p>')
    box_w, box_h, gap_y, pad = 160.0, 36.0, 18.0, 12.0
    by_layer: dict[int, list[Node]] = {}
    for node in nodes:
        by_layer.setdefault(node.layer, []).append(node)
    pos: Mapping[str, tuple[float, float]] = {
        node.name: (pad + layer * width_per_layer, pad + i * (box_h + gap_y))
        for layer, members in by_layer.items() for i, node in enumerate(members)}
    width = pad * 2 + (max(by_layer) * width_per_layer) + box_w
    height = pad * 2 + max(len(m) for m in by_layer.values()) * (box_h + gap_y) - gap_y
    parts: list[Html] = [fmt(
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path class="arrowhead" d="M 0 0 L 10 5 L 0 10 z"></path></marker></defs>')]
    # Written out by hand rather than with fmt (a thousand jobs make thousands of shapes); the
    # job names are the only text in them, escaped.
    for up, down in edges:
        if up not in pos or down not in pos:
            continue
        (x0, y0), (x1, y1) = pos[up], pos[down]
        sx, sy, ex, ey = x0 + box_w, y0 + box_h / 2, x1, y1 + box_h / 2
        mid = _n((sx + ex) / 2)
        parts.append(Html(f'<path class="edge" d="M {_n(sx)} {_n(sy)} C {mid} {_n(sy)}, {mid} {_n(ey)}, {_n(ex)} {_n(ey)}"'
                          f' marker-end="url(#arrow)"><title>{esc(up)} → {esc(down)}</title></path>'))
    for node in nodes:
        x, y = pos[node.name]
        key = status_key(node.status)
        base = _n(y + box_h * 0.64)
        parts.append(Html(
            f'<a href="{esc(node.url)}"><rect class="node st-{key}" x="{_n(x)}" y="{_n(y)}" width="{_n(box_w)}" '
            f'height="{_n(box_h)}" rx="6"><title>{esc(node.name)}: last run {key.replace("_", " ")}</title></rect>'
            f'<text class="sym" x="{_n(x + 10)}" y="{base}">{symbol_of(key)}</text>'
            f'<text class="label" x="{_n(x + 28)}" y="{base}">{esc(clip(node.name, 18))}</text></a>'))
    return svg(width, height, join(parts), label=f"dependency graph of {len(nodes)} jobs", cls="chart graph")
