"""`GET /metrics` in the Prometheus text format (0.0.4), and `GET /healthz`.

Names follow Prometheus' rules (units in names, `_total` on counters only, labels bounded: a job
name, a run status, a delivery result): docs/web.md's list.

- counters, since the supervisor started (Site.stats()): `cronplus_job_runs_total{job,status}`
  (final runs recorded), `cronplus_alert_deliveries_total{result}` (delivery attempts), and the histogram
  `cronplus_start_delay_seconds` (tick to spawn of scheduled runs);
- gauges: `cronplus_job_last_success_timestamp_seconds{job}`, `cronplus_job_last_duration_seconds{job}`
  (Stats), `cronplus_job_running{job}` and `cronplus_job_next_run_timestamp_seconds{job}` (the
  loop's snapshot: every job of the crontab has a `running` sample, 0 included),
  `cronplus_alerts_pending` (the outbox), `cronplus_reload_success`, `cronplus_build_info{version}`.
`cronplus_job_paused` comes with pause (issue 13). Nothing secret is a label: job names only.

`/healthz`: 200 `ok` while the scheduling loop lives and answers (site.LiveSite.alive), else 503
with the reason, as the watchdog would see it; 503 too while a host of a cluster refuses to claim
ticks (its clock skewed from the database's, or no lease: the reason says which).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cronplus.web.http import Request, Response, Route, Site

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Mapping[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items()) + "}"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[Mapping[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def histogram(self, name: str, help_text: str, bounds: Iterable[float], cumulative: Iterable[int],
                  total: float, count: int) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} histogram")
        for bound, n in zip(bounds, cumulative, strict=True):
            self.lines.append(f'{name}_bucket{{le="{_number(bound)}"}} {n}')
        self.lines.append(f'{name}_bucket{{le="+Inf"}} {count}')
        self.lines.append(f"{name}_sum {_number(total)}")
        self.lines.append(f"{name}_count {count}")

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


def render(site: Site) -> bytes:
    from cronplus import __version__

    snapshot = site.snapshot()
    stats = site.stats()
    out = Exposition()
    runs = stats.runs_total()
    out.family("cronplus_job_runs_total", "counter", "Final runs ended since the supervisor started, by job and status.",
               ((({"job": job, "status": status}), n) for (job, status), n in sorted(runs.items())))
    out.family("cronplus_job_last_success_timestamp_seconds", "gauge",
               "Unix time of the job's last successful run's end.",
               (({"job": job}, t) for job, t in sorted(stats.last_success().items())))
    out.family("cronplus_job_last_duration_seconds", "gauge", "Duration of the job's last final run.",
               (({"job": job}, s) for job, s in sorted(stats.last_duration().items())))
    active: dict[str, int] = {job.name: 0 for job in snapshot.jobs}
    for run in snapshot.runs:
        if run.running:  # its process runs (the socket's "active" includes a retry's wait)
            active[run.job] = active.get(run.job, 0) + 1
    out.family("cronplus_job_running", "gauge", "Runs of the job whose process runs now.",
               (({"job": job}, n) for job, n in sorted(active.items())))
    out.family("cronplus_job_paused", "gauge", "1 while the job is paused (by name or all jobs: cronplus pause).",
               (({"job": job.name}, 1 if job.paused is not None else 0) for job in snapshot.jobs))
    out.family("cronplus_job_next_run_timestamp_seconds", "gauge", "Unix time of the job's next scheduled run.",
               (({"job": job.name}, job.next_run.timestamp()) for job in snapshot.jobs if job.next_run is not None))
    bounds, cumulative, total, count = stats.start_delay()
    out.histogram("cronplus_start_delay_seconds", "Delay from a scheduled tick to its run's spawn.",
                  bounds, cumulative, total, count)
    pending = site.outbox().counts().get("pending", 0)
    out.family("cronplus_alerts_pending", "gauge", "Alert, ping and mail deliveries waiting in the outbox.",
               [({}, pending)])
    out.family("cronplus_alert_deliveries_total", "counter",
               "Delivery attempts of alert, ping and mail rows since the supervisor started, by result.",
               (({"result": result}, n) for result, n in sorted(stats.alert_deliveries().items())))
    out.family("cronplus_reload_success", "gauge", "1 when the last crontab reload succeeded (or none happened).",
               [({}, 1 if stats.reload_ok() else 0)])
    out.family("cronplus_build_info", "gauge", "The running cronplus version.", [({"version": __version__}, 1)])
    return out.text()


def metrics(request: Request, site: Site) -> Response:
    return Response(body=render(site), content_type=CONTENT_TYPE)


def healthz(request: Request, site: Site) -> Response:
    alive: Any = getattr(site, "alive", None)
    problem = alive() if callable(alive) else "no supervisor"
    if problem is None:
        return Response(body=b"ok\n", content_type="text/plain; charset=utf-8")
    return Response(status=503, body=f"{problem}\n".encode(), content_type="text/plain; charset=utf-8")


ROUTES = [Route("GET", "/metrics", metrics), Route("GET", "/healthz", healthz)]
