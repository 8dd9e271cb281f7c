"""`/graph`: the `after=` graph as server-drawn SVG, each job a box coloured by its last final
run's status (running while a run of it goes on), with that status's symbol in the box.

Layout: layered by topological depth (crontab/deps.py `topological_order`): a job with no
upstream is in column 0, any other one column right of its deepest upstream; within a column,
file order. Only jobs that take part in an edge are drawn; the others are listed below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cronplus.web.http import Request, Response, Site
from cronplus.web.pages.layout import STATUS, Html, fmt, job_href, join, page
from cronplus.web.pages.svg import Node, graph

if TYPE_CHECKING:
    from cronplus.model import JobSpec


def layers(jobs: Sequence[JobSpec]) -> dict[str, int]:
    """Job -> its column: 0 without upstreams, else 1 + its deepest upstream's column."""
    from cronplus.crontab.deps import topological_order

    ups = {job.name: job.options.after for job in jobs}
    depth: dict[str, int] = {}
    for name in topological_order(jobs):
        depth[name] = 1 + max((depth[u] for u in ups[name] if u in depth), default=-1)
    return depth


def legend() -> Html:
    keys = ("success", "failed", "timeout", "running", "skipped", "upstream_failed", "missed", "interrupted", "none")
    return fmt('<p class="legend">{}</p>', join(
        fmt('<span class="badge st-{}"><span class="sym" aria-hidden="true">{}</span> {}</span>', k, *STATUS[k])
        for k in keys))


def handle(request: Request, site: Site) -> Response:
    now = site.now()
    jobs = site.crontab().jobs
    depth = layers(jobs)
    status: dict[str, str | None] = {}
    for row in site.job_rows():
        status[row.job] = "running" if row.running else (str(row.last.status) if row.last else None)
    edges = [(up, job.name) for job in jobs for up in job.options.after if up in depth]
    linked = {name for edge in edges for name in edge}
    nodes = [Node(name=job.name, url=job_href(job.name), status=status.get(job.name), layer=depth[job.name])
             for job in jobs if job.name in linked]
    alone = [job.name for job in jobs if job.name not in linked]
    parts = [fmt("<h1>Dependencies</h1>"), legend()]
    if nodes:
        parts.append(fmt('<div class="scroll">{}</div>', graph(nodes, edges)))
    else:
        parts.append(fmt('<p class="muted">No job has an <code>after=</code>.</p>'))
    if alone:
        parts.append(fmt('<details><summary>{} job{} without <code>after=</code> edges</summary><p>{}</p></details>',
                         len(alone), "" if len(alone) == 1 else "s",
                         join((fmt('<a href="{}">{}</a>', job_href(n), n) for n in alone), ", ")))
    return page("Graph", join(parts), now=now, active="/graph", refresh=30)
