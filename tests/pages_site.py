"""A `Site` (web/http.py) over real stores, for the pages' render tests before and apart from the
server: a real SQLite history written by `History` and read through `open_readonly`, the outbox
through `outbox.Outbox` on a read-only connection, a `Crontab` from the real parser, job rows
from `service.views.job_rows`, output read from the runs' log files. What only a live supervisor
knows (its runs in flight, the last reload's result) is given by the test; an action starts a
real `running` row, as the supervisor would before its spawn.

`get(site, path, ...)` routes a request through the pages' ROUTES as the server would (a segment
in braces is a parameter), so the tests exercise the same table the server mounts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cronplus.crontab.schedule import next_fire
from cronplus.model import Crontab
from cronplus.service.commands import JobState, RunState, SupervisorSnapshot
from cronplus.service.views import JobRow, held_in_reply, job_rows
from cronplus.status import Trigger
from cronplus.store import outbox as outbox_mod
from cronplus.store.history import History, ReadHistory, connect, open_readonly
from cronplus.web.http import Request, Response
from cronplus.web.pages.routes import ROUTES


class FixedStats:
    def __init__(self, *, reload_ok: bool = True) -> None:
        self._reload_ok = reload_ok

    def runs_total(self) -> Mapping[tuple[str, str], int]:
        return {}

    def last_success(self) -> Mapping[str, float]:
        return {}

    def last_duration(self) -> Mapping[str, float]:
        return {}

    def start_delay(self) -> tuple[Sequence[float], Sequence[int], float, int]:
        return ((), (), 0.0, 0)

    def alert_deliveries(self) -> Mapping[str, int]:
        return {}

    def reload_ok(self) -> bool:
        return self._reload_ok


class StoreSite:
    def __init__(self, db_path: Path, crontab: Crontab, *, now: float, runs: Sequence[RunState] = (),
                 warnings: Sequence[str] | None = None, reload_ok: bool = True) -> None:
        self.db_path = db_path
        self._crontab = crontab
        self._now = now
        self.runs = tuple(runs)
        self.warnings = tuple(str(w) for w in crontab.warnings) if warnings is None else tuple(warnings)
        self._stats = FixedStats(reload_ok=reload_ok)
        self._history: ReadHistory | None = None
        self._outbox: outbox_mod.Outbox | None = None
        self.triggered: list[str] = []
        self.refuse: str | None = None  # the refusal after= / overlap= would give a trigger without force

    def close(self) -> None:
        if self._history is not None:
            self._history.close()
        if self._outbox is not None:
            self._outbox.close()

    def now(self) -> float:
        return self._now

    def snapshot(self) -> SupervisorSnapshot:
        at = datetime.fromtimestamp(self._now, UTC)
        jobs = tuple(JobState(name=j.name, schedule=j.schedule.text, tz=j.tz,
                              next_run=None if j.schedule.reboot else next_fire(j.schedule, at, j.tz))
                     for j in self._crontab.jobs)
        return SupervisorSnapshot(pid=os.getpid(), crontab=self._crontab.path, crontab_missing=False,
                                  warnings=self.warnings, jobs=jobs, runs=self.runs)

    def crontab(self) -> Crontab:
        return self._crontab

    def job_rows(self, only: str | None = None) -> list[JobRow]:
        """As the supervisor's site: next runs and held runs from the snapshot."""
        snapshot = self.snapshot()
        held = held_in_reply(snapshot.to_json())  # as site.py: a run queued for a pool slot too
        next_runs = {job.name: job.next_run for job in snapshot.jobs}
        rows = job_rows(self.db_path, self._crontab, datetime.fromtimestamp(self._now, UTC), held, next_runs)
        return rows if only is None else [row for row in rows if row.job == only]

    def history(self) -> ReadHistory:
        if self._history is None:
            self._history = open_readonly(self.db_path)
        return self._history

    def outbox(self) -> outbox_mod.Outbox:
        if self._outbox is None:
            self._outbox = outbox_mod.Outbox(connect(self.db_path, readonly=True))
        return self._outbox

    def stats(self) -> FixedStats:
        return self._stats

    def output(self, run_id: int, *, offset: int = 0, limit: int | None = None) -> bytes | None:
        record = self.history().get_run(run_id)
        if record is None or record.log_path is None or not os.path.exists(record.log_path):
            return None
        with open(record.log_path, "rb") as f:
            f.seek(offset)
            return f.read() if limit is None else f.read(limit)

    def trigger(self, job: str, *, params: Mapping[str, str] | None = None, force: bool = False) -> dict[str, Any]:
        if self._crontab.job(job) is None:
            return {"ok": False, "error": f"no job named {job!r}", "suggestion": None}
        if self.refuse and not force:
            return {"ok": False, "error": self.refuse, "refused": True}
        self.triggered.append(job)
        hist = History(self.db_path)
        try:
            run_id = hist.start_run(job=job, attempt=1, trigger=Trigger.MANUAL, scheduled_at=self._now, tz=None,
                                    started_at=self._now, log_path=None, owner="test")
        finally:
            hist.close()
        return {"ok": True, "run_id": run_id, "notes": []}


def _match(pattern: str, path: str) -> dict[str, str] | None:
    want, got = pattern.strip("/").split("/"), path.strip("/").split("/")
    if len(want) != len(got):
        return None
    params = {}
    for w, g in zip(want, got, strict=True):
        if w.startswith("{") and w.endswith("}"):
            if not g:
                return None
            params[w[1:-1]] = unquote(g)
        elif w != g:
            return None
    return params


def get(site: StoreSite, url: str, *, method: str = "GET", authenticated: bool = False,
        body: bytes = b"") -> Response:
    """Route `url` through ROUTES and call its handler, as the server does (404 when none)."""
    parts = urlsplit(url)
    for route in ROUTES:
        params = _match(route.pattern, parts.path)
        if route.method == method and params is not None:
            request = Request(method=method, path=unquote(parts.path), query=parse_qs(parts.query),
                              headers={}, body=body, params=params, authenticated=authenticated)
            return route.handler(request, site)
    return Response(status=404, body=b"no route")


def text(response: Response) -> str:
    assert isinstance(response.body, bytes)
    return response.body.decode()
