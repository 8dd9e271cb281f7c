"""What the web server hands a handler and gets back, and what a handler may read and do.

A handler is `(Request, Site) -> Response`, registered as a `Route`. Handlers run in the
server's worker threads, never on the supervisor's event loop: every read goes through `Site`
(a read-only store connection of the calling thread, a snapshot the loop took), every action
through `Site.trigger` (`pause`, `resume`), which the server carries to the loop (service/commands).

May import: foundation, crontab, store, engine, alerts, service (as web/__init__.py says).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cronplus.model import Crontab
    from cronplus.service.commands import SupervisorSnapshot
    from cronplus.service.views import JobRow
    from cronplus.store.api import OutboxQueue, RunReader


@dataclass(frozen=True, kw_only=True)
class Request:
    method: str  # upper case
    path: str  # percent-decoded, without the query
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # names lower case
    body: bytes = b""
    params: Mapping[str, str] = field(default_factory=dict)  # from the route's pattern: {"name": "train"}
    authenticated: bool = False  # a valid bearer token or session cookie came with it

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`."""
        values = self.query.get(name)
        return values[0] if values else default


@dataclass(kw_only=True)
class Response:
    status: int = 200
    body: bytes | Iterator[bytes] = b""  # an iterator is streamed (a run's output followed live)
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class Stats(Protocol):
    """Counters since the supervisor started, fed by run events (an after-commit subscriber in
    service/), for /metrics. Prometheus takes a counter's reset at a restart in its stride."""

    def runs_total(self) -> Mapping[tuple[str, str], int]: ...  # (job, status) -> final runs ended
    def last_success(self) -> Mapping[str, float]: ...  # job -> Unix time of its last successful end
    def last_duration(self) -> Mapping[str, float]: ...  # job -> seconds of its last final run
    def start_delay(self) -> tuple[Sequence[float], Sequence[int], float, int]: ...  # bucket bounds, cumulative counts, sum, count (tick -> spawn)
    def alert_deliveries(self) -> Mapping[str, int]: ...  # result (delivered / retry / failed) -> count
    def reload_ok(self) -> bool: ...  # the last reload's result (True before any)


class Site(Protocol):
    """What a handler may read and do. Reads are this thread's; actions go to the loop."""

    def now(self) -> float: ...  # the supervisor's clock (Settings.clock)
    def snapshot(self) -> SupervisorSnapshot: ...  # the loop's state: jobs, runs in flight, warnings
    def crontab(self) -> Crontab: ...  # the crontab in effect
    def job_rows(self, only: str | None = None) -> list[JobRow]: ...  # service.views rows: what `cronplus jobs` shows; only: one job's
    def history(self) -> RunReader: ...  # read-only, this thread's connection
    def outbox(self) -> OutboxQueue: ...  # read-only use: list_rows, counts
    def stats(self) -> Stats: ...
    def output(self, run_id: int, *, offset: int = 0, limit: int | None = None) -> bytes | None: ...  # None: no output kept
    def trigger(self, job: str, *, params: Mapping[str, str] | None = None,
                force: bool = False) -> dict[str, Any]: ...  # as Commands.trigger's JSON; force: as `trigger --force`
    def pause(self, job: str) -> dict[str, Any]: ...  # as Commands.pause's JSON (by "api")
    def resume(self, job: str) -> dict[str, Any]: ...  # as Commands.resume's JSON


Handler = Callable[[Request, Site], Response]


@dataclass(frozen=True)
class Route:
    method: str  # GET / POST
    pattern: str  # "/jobs/{name}", "/api/v1/runs/{run_id}"; a segment in braces is a parameter
    handler: Handler
    action: bool = False  # True: needs the token (auth.py) and passes the CSRF check
