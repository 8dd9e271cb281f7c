"""The concrete `Site` (http.py) over a running supervisor: what a handler reads and does, from
the server's threads, never blocking the event loop.

- Reads of history and the outbox: a reader of the store (store/open.open_reader, open_outbox
  read-only) opened by the request's thread when first needed and closed when its response is
  sent (`RequestSite.close`); it never makes the supervisor's writer wait (SQLite's WAL).
- The loop's state (`snapshot`) and actions (`trigger`, `pause`, `resume`): carried to the event loop with
  `call_soon_threadsafe` and waited for here (`LiveSite.on_loop`), so the scheduler's objects
  are only ever touched on its own thread; service/commands.py's Commands answers, as it does
  the control socket.
- `alive(timeout)`: the scheduling task lives (service/loopwatch.py) and the loop answers within
  `timeout` (a loop blocked by a bug is as dead to /healthz as a crashed task), and, with a shared
  store, it claims ticks (else the lease's problem: clock skew, no lease; service/heartbeat.py).
- `stats()`: the supervisor's Stats (`daemon.stats`, service/stats.RunStats, fed by run events).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from cronplus.errors import CronplusError

if TYPE_CHECKING:
    from cronplus.model import Crontab
    from cronplus.service.commands import SupervisorSnapshot
    from cronplus.service.daemon import Daemon
    from cronplus.service.views import JobRow
    from cronplus.store.api import OutboxQueue, RunReader
    from cronplus.web.auth import Auth
    from cronplus.web.http import Stats

T = TypeVar("T")
LOOP_TIMEOUT_S = 10.0  # a loop that does not answer within this is stuck (a tick yields every chunk)


class LoopUnavailable(CronplusError):
    """The event loop did not answer: stopped, or stuck."""


class LiveSite:
    def __init__(self, daemon: Daemon, loop: asyncio.AbstractEventLoop, *,
                 auth: Auth | None = None, health_timeout: float = 5.0) -> None:
        self.daemon = daemon
        self.auth = auth
        self.health_timeout = health_timeout
        self.loop = loop
        self.closing = threading.Event()

    def for_request(self) -> RequestSite:
        return RequestSite(self)

    def on_loop(self, fn: Callable[[], T], timeout: float = LOOP_TIMEOUT_S) -> T:
        """fn() run on the event loop's thread; its result (or exception) here."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except Exception as exc:  # noqa: BLE001 (handed back to the caller's thread, raised there)
                    future.set_exception(exc)

        try:
            self.loop.call_soon_threadsafe(call)
            return future.result(timeout)
        except RuntimeError:  # the loop is closed
            raise LoopUnavailable("the supervisor is stopping") from None
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise LoopUnavailable(f"the scheduling loop did not answer within {timeout:g}s") from None

    def alive(self, timeout: float | None = None) -> str | None:
        """None when the scheduling loop lives and answers (within `health_timeout`) and, with a
        shared store, its database is there; else why not (/healthz: 503 and this text)."""
        timeout = self.health_timeout if timeout is None else timeout
        watch = self.daemon.loopwatch
        if not watch.alive:
            return watch.died or "the scheduling loop is not running"
        try:
            self.on_loop(lambda: None, timeout)
        except LoopUnavailable as exc:
            return str(exc)
        store = self.daemon.scheduler.store
        if store.away:  # a shared store's database: no run starts until it is back (engine/outage.py)
            return f"{store.problem} ({len(store.held)} history write(s) held in memory)"
        lease = self.daemon.lease  # a shared store's (service/heartbeat.py): clock skew, no lease
        return lease.problem if lease is not None else None


class RequestSite:
    """One request's Site: its own read connections, closed with `close()`."""

    def __init__(self, live: LiveSite) -> None:
        self.live = live
        self.daemon = live.daemon
        self.auth = live.auth  # POST /login checks a token against it
        self._history: RunReader | None = None
        self._outbox: OutboxQueue | None = None

    @property
    def closing(self) -> threading.Event:
        return self.live.closing

    def alive(self) -> str | None:
        return self.live.alive()

    def close(self) -> None:
        if self._history is not None:
            self._history.close()
            self._history = None
        if self._outbox is not None:
            self._outbox.close()
            self._outbox = None

    def now(self) -> float:
        return self.daemon.clock.time()

    def snapshot(self) -> SupervisorSnapshot:
        return self.live.on_loop(self.daemon.commands.status)

    def crontab(self) -> Crontab:
        return self.daemon.crontab  # swapped whole by a reload: a reference read is atomic

    def job_rows(self, only: str | None = None) -> list[JobRow]:
        """The jobs' rows (`only`: that job's row alone, if it has one), next runs from the
        loop's snapshot: the ticks the scheduler will act on, without computing them again."""
        from dataclasses import replace

        from cronplus.service.views import held_in_reply, job_rows

        snapshot = self.snapshot()
        held = held_in_reply(snapshot.to_json())  # "queued for pool gpu (2 ahead)" too
        next_runs = {job.name: job.next_run for job in snapshot.jobs}
        now = datetime.fromtimestamp(self.now(), tz=UTC).astimezone()
        crontab = self.crontab()
        if only is not None:
            crontab = replace(crontab, jobs=tuple(job for job in crontab.jobs if job.name == only))
        rows = job_rows(self.daemon.paths.db, crontab, now, held, next_runs)
        return rows if only is None else [row for row in rows if row.job == only]

    def history(self) -> RunReader:
        if self._history is None:
            from cronplus.store.open import open_reader

            self._history = open_reader(self.daemon.paths.db)
        return self._history

    def outbox(self) -> OutboxQueue:
        if self._outbox is None:
            from cronplus.store.open import open_outbox

            self._outbox = open_outbox(self.daemon.paths.db, readonly=True)
        return self._outbox

    def stats(self) -> Stats:
        return self.daemon.stats  # its reads take a copy under its lock: safe from this thread

    def output(self, run_id: int, *, offset: int = 0, limit: int | None = None) -> bytes | None:
        """Bytes of the run's log from `offset` (at most `limit`); None: no log kept here (the run
        never started, its log is gone, or it is on the other host of a shared store that ran it)."""
        record = self.history().get_run(run_id)
        if record is None or not record.log_path:
            return None
        mine = self.daemon.history
        if mine.shared and record.host not in (None, mine.host):  # its log is on the host that ran it
            return None
        try:
            with open(record.log_path, "rb") as f:
                f.seek(max(0, offset))
                return f.read(-1 if limit is None else max(0, limit))
        except FileNotFoundError:  # no output (yet): logs are made at the first byte; else deleted
            return b"" if record.log_absent_is_empty else None

    def trigger(self, job: str, *, params: Mapping[str, str] | None = None, force: bool = False) -> dict[str, Any]:
        commands = self.daemon.commands  # params: validated there (an `invalid` refusal)
        return self.live.on_loop(lambda: commands.trigger(job, force=force, params=params).to_json())

    def pause(self, job: str) -> dict[str, Any]:
        commands = self.daemon.commands
        return self.live.on_loop(lambda: commands.pause([job], by="api").to_json())

    def resume(self, job: str) -> dict[str, Any]:
        commands = self.daemon.commands
        return self.live.on_loop(lambda: commands.resume([job]).to_json())
