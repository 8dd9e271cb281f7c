"""The pages' routes, for the server to mount (web/server.py): GET pages, the follow of a run's
output, the static assets, and the page actions (run now, pause, resume), which the server guards (token or
session, origin check) because they are marked `action`."""

from __future__ import annotations

from cronplus.web.http import Route
from cronplus.web.pages import alerts, graph, job, jobs, pausing, run, static, timeline

ROUTES: list[Route] = [
    Route("GET", "/", jobs.handle),
    Route("GET", "/jobs/{name}", job.handle),
    Route("POST", "/jobs/{name}/trigger", job.trigger, action=True),
    Route("POST", "/jobs/{name}/pause", pausing.pause, action=True),
    Route("POST", "/jobs/{name}/resume", pausing.resume, action=True),
    Route("GET", "/runs/{run_id}", run.handle),
    Route("GET", "/runs/{run_id}/tail", run.tail),
    Route("GET", "/graph", graph.handle),
    Route("GET", "/timeline", timeline.handle),
    Route("GET", "/alerts", alerts.handle),
    Route("GET", "/static/{name}", static.handle),
]
