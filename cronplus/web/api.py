"""The HTTP API (docs/web.md) under /api/v1 (described by openapi.py), and the token login.

- `GET /api/v1/jobs` -> `{"jobs": [JOB, ...]}`; `GET /api/v1/jobs/NAME` -> JOB with `options`.
  JOB is `cronplus jobs --json`'s object (service/views.JobRow.to_json) plus `name` and
  `last_run` (the last final run, as RUN, or null).
- `GET /api/v1/runs?job=&status=&since=&until=&limit=&before=` -> `{"runs": [RUN, ...], "next":
  URL or null}`, newest first; `job` (fnmatch globs) and `status` may repeat; since/until take
  what `cronplus log --since` takes (timeparse.py); `limit` 1..1000 (50); `before` (a run id,
  exclusive) is the cursor: `next` is the URL of the following page.
- `GET /api/v1/runs/ID` -> RUN, exactly `cronplus log --json`'s object (store.run_json).
- `GET /api/v1/runs/ID/output[?offset=N][&follow=1]` -> the captured output, text/plain, bytes
  as the job wrote them; `follow=1` keeps the response open while the run runs, sending what it
  writes, and ends once it is over. A shared store's run whose log is not on this host (another
  host ran it, or it is gone) answers the head and tail its row keeps, with a line between them
  saying how many bytes are not shown and where the full log is (`X-Output-Excerpt: head-tail`).
- `POST /api/v1/jobs/NAME/trigger[?force=1]` (or a JSON body `{"force": true}`; `{"params":
  {"K": "V"}}` gives the run CRONPLUS_PARAM_K, 400 for a bad name or size) -> 202
  `{"ok": true, "run_id": N (null when queued behind a run of the job), "notes": [...]}` with a
  Location; 404 (no such job, with `suggestion`), 409 (after= / overlap= refuse: force would
  start it), 503 (the supervisor is stopping). Needs the token (server.py, auth.py).
- `POST /login` (form `token`, optional `next`): the session cookie and a 303 to `next` (a path
  of this site), or 401; `POST /logout` clears it.
- `POST /api/v1/jobs/NAME/pause`, `/resume` -> 200 `{"ok": true, "jobs": [NAME], "all": false,
  "resumed": bool}` (persisted: engine/pausing.py; paused by "api"); 404 (no such job, with
  `suggestion`). Needs the token, as trigger.
Errors are `{"error": MESSAGE, "status": CODE}` (server.error).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode

from cronplus.errors import CronplusError
from cronplus.web.http import Request, Response, Route, Site
from cronplus.web.server import error

if TYPE_CHECKING:
    from cronplus.model import JobSpec, RunRecord

JSON = "application/json"
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
FOLLOW_POLL_S = 0.25  # how often a followed run's log and row are looked at again
CHUNK = 1 << 16


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status=status, body=json.dumps(data).encode(), content_type=JSON, headers=headers or {})


class BadRequest(CronplusError):
    pass


def _int(request: Request, name: str, *, default: int | None, low: int, high: int | None = None) -> int | None:
    text = request.arg(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {text[:40]!r}") from None
    if value < low or (high is not None and value > high):
        raise BadRequest(f"{name} must be between {low} and {high}" if high is not None else f"{name} must be >= {low}")
    return value


def _flag(request: Request, name: str) -> bool:
    return (request.arg(name) or "").lower() in ("1", "true", "yes", "on")


# ---- jobs ----------------------------------------------------------------------------------

def _options(job: JobSpec) -> dict[str, Any]:
    """A job's options as shown: alert and ping destinations are secrets, so only whether set."""
    o = job.options
    return {"retries": o.retries, "retry_delay_s": o.retry_delay, "backoff": o.backoff,
            "max_retry_delay_s": o.max_retry_delay, "timeout_s": o.timeout, "kill_grace_s": o.kill_grace,
            "overlap": str(o.overlap), "after": list(o.after), "trigger": str(o.trigger), "skip_exit": o.skip_exit,
            "catch_up": str(o.catch_up), "jitter_s": o.jitter, "alert": o.alert is not None,
            "alert_format": str(o.alert_format), "alert_on": sorted(str(e) for e in o.alert_on),
            "ping": o.ping is not None, "max_log_size": o.max_log_size,
            "source": f"{job.loc.path}:{job.loc.line}"}


def _job_objects(site: Site, name: str | None = None) -> list[dict[str, Any]]:
    from cronplus.store.history import run_json

    found = []
    for row in site.job_rows(only=name):
        obj = row.to_json()
        found.append({"name": row.job, **obj, "last_run": run_json(row.last) if row.last else None})
    return found


def list_jobs(request: Request, site: Site) -> Response:
    return _json({"jobs": _job_objects(site)})


def get_job(request: Request, site: Site) -> Response:
    from cronplus.service.control import suggest

    name = request.params["name"]
    found = _job_objects(site, name)
    if not found:
        names = [job.name for job in site.crontab().jobs]
        hint = suggest(name, names)
        return _json({"error": f"no job named {name!r}", "status": 404, "suggestion": hint}, 404)
    job = site.crontab().job(name)
    return _json({**found[0], "options": _options(job) if job is not None else None})


def trigger_job(request: Request, site: Site) -> Response:
    name = request.params["name"]
    force = _flag(request, "force")
    params = None
    if request.body:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return error(request.path, 400, 'the body must be a JSON object, e.g. {"force": true}')
        force = force or body.get("force") is True
        params = body.get("params")
    reply = site.trigger(name, force=force, params=params)
    if reply.get("ok"):
        run_id = reply.get("run_id")
        headers = {"Location": f"/api/v1/runs/{run_id}"} if run_id is not None else {}
        return _json(reply, 202, headers)
    if reply.get("invalid"):  # bad params: a key, a size, not an object of strings
        return _json({**reply, "status": 400}, 400)
    if reply.get("refused"):
        return _json({**reply, "status": 409}, 409)
    if site.crontab().job(name) is not None:  # known but refused: the supervisor is stopping
        return _json({**reply, "status": 503}, 503)
    return _json({**reply, "status": 404}, 404)


def pause_job(request: Request, site: Site) -> Response:
    reply = site.pause(request.params["name"])
    return _json(reply) if reply.get("ok") else _json({**reply, "status": 404}, 404)


def resume_job(request: Request, site: Site) -> Response:
    reply = site.resume(request.params["name"])
    return _json(reply) if reply.get("ok") else _json({**reply, "status": 404}, 404)


# ---- runs ----------------------------------------------------------------------------------

def _time(request: Request, name: str, now: float) -> float | None:
    from cronplus.errors import UsageError
    from cronplus.timeparse import parse_time

    text = request.arg(name)
    if not text:
        return None
    try:
        return parse_time(text, now=now)
    except UsageError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def list_runs(request: Request, site: Site) -> Response:
    from cronplus.status import RunStatus
    from cronplus.store.history import run_json

    jobs = [j for j in request.query.get("job", []) if j]
    statuses = [s for s in request.query.get("status", []) if s]
    known = {str(s) for s in RunStatus}
    wrong = [s for s in statuses if s not in known]
    if wrong:
        raise BadRequest(f"unknown status {wrong[0][:40]!r}: one of {', '.join(sorted(known))}")
    now = site.now()
    since, until = _time(request, "since", now), _time(request, "until", now)
    limit = _int(request, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    before = _int(request, "before", default=None, low=1)
    assert limit is not None
    runs = []
    # Newest first from the cursor; the rows at or above `before` are skipped as they stream
    # (a page far back reads the rows before it: store.api has no `before_run_id` yet).
    for record in site.history().iter_query(jobs=jobs, statuses=statuses, since=since, until=until,
                                            newest_first=True):
        if before is not None and record.run_id >= before:
            continue
        runs.append(record)
        if len(runs) > limit:
            break
    more = len(runs) > limit
    runs = runs[:limit]
    following = None
    if more:
        query = {k: v for k, v in request.query.items() if k != "before"}
        for name, value in (("since", since), ("until", until)):
            if value is not None:  # `-1h` would move with each page: the next page keeps this one's instant
                query[name] = [f"@{value:.6f}"]
        following = "/api/v1/runs?" + urlencode({**query, "before": [str(runs[-1].run_id)]}, doseq=True)
    return _json({"runs": [run_json(r) for r in runs], "next": following})


def _run_id(request: Request) -> int:
    text = request.params["run_id"].lstrip("#")
    if not text.isdigit():
        raise BadRequest(f"a run id is a number, not {text[:40]!r}")
    return int(text)


def get_run(request: Request, site: Site) -> Response:
    from cronplus.store.history import run_json

    run_id = _run_id(request)
    record = site.history().get_run(run_id)
    if record is None:
        return error(request.path, 404, f"no run {run_id} in history")
    return _json(run_json(record))


def get_output(request: Request, site: Site) -> Response:
    from cronplus.status import RunStatus

    run_id = _run_id(request)
    offset = _int(request, "offset", default=0, low=0) or 0
    record = site.history().get_run(run_id)
    if record is None:
        return error(request.path, 404, f"no run {run_id} in history")
    if not record.log_path:
        return error(request.path, 404, f"run {run_id} ({record.job}, {record.status}) has no output: it never started")
    first = site.output(run_id, offset=offset, limit=CHUNK)
    if first is None:
        return _excerpt(request, site, record) or error(
            request.path, 410, f"the output of run {run_id} is no longer available (log retention)")
    headers = {"X-Run-Status": str(record.status)}
    if len(first) < CHUNK and (not _flag(request, "follow") or record.status != RunStatus.RUNNING):
        return Response(body=first, content_type="text/plain; charset=utf-8", headers=headers)
    follow = _flag(request, "follow") and record.status == RunStatus.RUNNING
    return Response(body=_stream(site, run_id, offset, first, follow=follow),
                    content_type="text/plain; charset=utf-8", headers=headers)


def _excerpt(request: Request, site: Site, record: RunRecord) -> Response | None:
    """A shared store's run whose log is not here (another host ran it, or it is gone): the head
    and tail its row keeps, with the line saying where the full log is (engine/outputexcerpt.py);
    `offset` counts in that text. None when the row keeps none."""
    from cronplus.engine.outputexcerpt import render

    reader = site.history()
    excerpt = reader.output_excerpt(record.run_id) if reader.shared else None
    if excerpt is None:
        return None
    body = render(excerpt, host=record.host, path=record.log_path)
    offset = _int(request, "offset", default=0, low=0) or 0
    return Response(body=body[offset:], content_type="text/plain; charset=utf-8",
                    headers={"X-Run-Status": str(record.status), "X-Output-Excerpt": "head-tail"})


def _stream(site: Site, run_id: int, offset: int, first: bytes, *, follow: bool) -> Iterator[bytes]:
    """The log from `offset` in chunks (a 1 GB log costs no memory); with `follow`, what the run
    writes too, until its row is final and the log read to its end (or the server stops)."""
    from cronplus.status import RunStatus

    closing = getattr(site, "closing", None)
    yield first
    offset += len(first)
    while closing is None or not closing.is_set():
        record = site.history().get_run(run_id) if follow else None
        running = record is not None and record.status == RunStatus.RUNNING
        chunk = site.output(run_id, offset=offset, limit=CHUNK) or b""
        while chunk:
            yield chunk
            offset += len(chunk)
            chunk = site.output(run_id, offset=offset, limit=CHUNK) or b""
        if not running:
            return
        if closing is not None:
            closing.wait(FOLLOW_POLL_S)  # the server's stop ends the wait at once
        else:
            time.sleep(FOLLOW_POLL_S)


# ---- login ---------------------------------------------------------------------------------

def _form(request: Request) -> dict[str, str]:
    fields = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items() if v}


def _local_path(target: str | None) -> str:
    """Where to go after login: a path of this site only (never //host or a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return quote(target, safe="/?=&%#;:@+,-._~")


def login(request: Request, site: Site) -> Response:
    from cronplus.web.auth import Auth

    auth = getattr(site, "auth", None)
    form = _form(request)
    if not isinstance(auth, Auth) or not auth.token_ok(form.get("token", "")):
        return error(request.path, 401, "wrong token: it is in the supervisor's state directory, http.token")
    return Response(status=303, headers={"Location": _local_path(form.get("next")), "Set-Cookie": auth.session_cookie()})


def logout(request: Request, site: Site) -> Response:
    from cronplus.web.auth import Auth

    return Response(status=303, headers={"Location": "/", "Set-Cookie": Auth.cleared_cookie()})


def openapi(request: Request, site: Site) -> Response:
    from cronplus.web.openapi import document

    return _json(document())


def _guarded(handler: Any) -> Any:
    """A BadRequest is a 400 with its message (the handlers raise it for a bad parameter)."""
    def run(request: Request, site: Site) -> Response:
        try:
            return handler(request, site)  # type: ignore[no-any-return]
        except BadRequest as exc:
            return error(request.path, 400, str(exc))
    run.__name__ = run.__qualname__ = getattr(handler, "__name__", "handler")
    return run


ROUTES = [
    Route("GET", "/api/v1/jobs", _guarded(list_jobs)),
    Route("GET", "/api/v1/jobs/{name}", _guarded(get_job)),
    Route("POST", "/api/v1/jobs/{name}/trigger", _guarded(trigger_job), action=True),
    Route("POST", "/api/v1/jobs/{name}/pause", _guarded(pause_job), action=True),
    Route("POST", "/api/v1/jobs/{name}/resume", _guarded(resume_job), action=True),
    Route("GET", "/api/v1/runs", _guarded(list_runs)),
    Route("GET", "/api/v1/runs/{run_id}", _guarded(get_run)),
    Route("GET", "/api/v1/runs/{run_id}/output", _guarded(get_output)),
    Route("GET", "/api/v1/openapi.json", openapi),
    Route("POST", "/login", login),
    Route("POST", "/logout", logout),
]
