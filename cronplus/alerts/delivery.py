"""Deliver the outbox over HTTP (and `mail` rows through the mailer, maildelivery.py), in the
background, never losing an alert.

`DeliveryWorker(db)` is a daemon thread with its own store connection (store/open.py's
`open_outbox(db)`; `db` a location: a path or a URL). It claims due
outbox rows (a lease, see outbox.py), hands them to a small thread pool that POSTs them with
`requests` (explicit connect/read timeouts), and records each outcome:

- 2xx: delivered.
- 408, 425, 429, 5xx, connection errors, timeouts, an unset `env:VAR`, a `whsec_` secret that
  is not base64 (signing.BadSecret): retried with exponential
  backoff plus jitter (`Retry-After` honoured on 429/503), until the row is `max_age_s` old;
  then failed with the last reason.
- other 4xx (400 bad token, 404, 410), a 3xx (not followed), an unrenderable payload, a
  malformed URL in an `env:VAR` (annotations.url_problem; message redacted): failed.

At most one request per destination is in flight, and a transient failure pushes that
destination's other pending rows back too, so a dead or hanging receiver occupies one pool
thread at most and never starves the others (and a destination's alerts stay in order).
One attempt (resolve, render, sign, POST, classify) is webhook.py's `send`; the retry policy
and an attempt's Outcome are in outcome.py.

`on_settled(events.AlertSettled)`, when given, hears each recorded attempt once its batch is
committed (result delivered / retry / failed), on the delivery thread: the daemon carries it to
its loop, where the counters for /metrics are kept (service/stats.py). It must not block.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cronplus.alerts.outcome import Outcome
from cronplus.alerts.outcome import Policy as Policy  # the public name stays here
from cronplus.alerts.webhook import send
from cronplus.clock import Clock, SystemClock
from cronplus.engine.events import AlertSettled
from cronplus.redact import redact_url

if TYPE_CHECKING:
    from cronplus.store.api import OutboxQueue
    from cronplus.store.outbox import OutboxRow

log = logging.getLogger("cronplus.delivery")

# The worker sleeps until the next pending row is due, or until woken: every enqueue in this
# process wakes it (after its commit), and so does every finished request. This is only a safety
# net; polling every few seconds was most of an idle supervisor's CPU (bench W1).
IDLE_POLL_S = 300.0


def record(box: OutboxQueue, row: OutboxRow, outcome: Outcome, *, now: float, policy: Policy) -> str:
    """Store an outcome; returns the row's new status. Also backs off the whole destination."""
    if outcome.kind == "delivered":
        box.mark_delivered(row.id, now=now, http_status=outcome.http_status)
        return "delivered"
    error = outcome.error or "unknown error"
    if outcome.kind == "retry":
        deadline = row.created_at + policy.max_age_s
        if now >= deadline:
            error = f"gave up after {row.attempts + 1} attempts over {now - row.created_at:.0f}s: {error}"
        else:
            delay = outcome.retry_after if outcome.retry_after is not None else policy.delay(row.attempts + 1)
            next_at = min(now + delay, deadline)
            box.mark_retry(row.id, next_attempt_at=next_at, error=error, http_status=outcome.http_status)
            # Per-destination backoff: the same receiver's other rows wait too, keeping order.
            box.hold_target(row.target, until=next_at, except_id=row.id)
            return "pending"
    box.mark_failed(row.id, error=error, http_status=outcome.http_status)
    return "failed"


def deliver_now(
    box: OutboxQueue,
    row_id: int,
    *,
    env: Mapping[str, str] | None = None,
    policy: Policy | None = None,
    clock: Clock | None = None,
    mailer: str | None = None,
) -> OutboxRow | None:
    """Send one row synchronously, once (for `cronplus alerts --test`); returns the row after."""
    import requests

    clock = clock or SystemClock()
    policy = policy or Policy()
    now = clock.time()
    won = box.claim([row_id], now=now, lease_s=policy.connect_timeout + policy.read_timeout + 10)
    if won:
        with requests.Session() as session:
            outcome = send(won[0], session=session, env=os.environ if env is None else env, policy=policy, now=now,
                           mailer=mailer)
        record(box, won[0], outcome, now=clock.time(), policy=policy)
    return box.get(row_id)


class DeliveryWorker:
    """The background sender. `start()`, `wake()` after enqueueing, `stop(timeout)`."""

    def __init__(
        self,
        db: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        policy: Policy | None = None,
        max_workers: int = 4,
        lease_s: float | None = None,
        idle_poll_s: float = IDLE_POLL_S,
        env: Mapping[str, str] | None = None,
        keep_s: float = 30 * 86400.0,
        keep_pings_s: float = 86400.0,
        batch: int = 16,
        mailer: str | None = None,
        on_settled: Callable[[AlertSettled], None] | None = None,
    ) -> None:
        self.on_settled = on_settled
        self.mailer = mailer  # `cronplus run --mailer CMD`; None: $CRONPLUS_MAILER, else sendmail
        from cronplus.store.open import shown, sqlite_path

        self.db = db
        self.db_path = sqlite_path(db) or Path(shown(db))  # what messages name (a URL: redacted)
        self.keep_s, self.keep_pings_s = keep_s, keep_pings_s
        self.batch = max(1, batch)
        self.clock = clock or SystemClock()
        self.policy = policy or Policy()
        self.max_workers = max(1, max_workers)
        self.lease_s = lease_s if lease_s is not None else self.policy.connect_timeout + self.policy.read_timeout + 10
        self.idle_poll_s = idle_poll_s
        self.env: Mapping[str, str] = os.environ if env is None else env
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._results: queue.Queue[tuple[str, list[tuple[OutboxRow, Outcome]], list[OutboxRow]]] = queue.Queue()
        self._busy: dict[str, int] = {}  # target -> row id in flight
        self._thread: threading.Thread | None = None
        self._stop_deadline = 0.0
        self._tasks: queue.Queue[tuple[str, list[OutboxRow]] | None] = queue.Queue()
        self._local = threading.local()

    # -- public -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        # Daemon sender threads (not a ThreadPoolExecutor, whose threads the interpreter joins
        # at exit): a receiver that hangs must not hold up the supervisor's exit.
        for i in range(self.max_workers):
            threading.Thread(target=self._sender, name=f"cronplus-send-{i}", daemon=True).start()
        self._thread = threading.Thread(target=self._run, name="cronplus-delivery", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the outbox now (called after an enqueue); safe from any thread."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after sending what is due now (within `timeout`). Rows still unsent stay pending
        and the next worker sends them (an in-flight one once its lease expires: at-least-once)."""
        self._stop_deadline = time.monotonic() + max(0.0, timeout * 0.9)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for _ in range(self.max_workers):
            self._tasks.put(None)

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            from cronplus.store.open import open_outbox

            box = open_outbox(self.db)
        except Exception:  # noqa: BLE001 - logged; alerts stay in the outbox for the next start
            log.exception("alert delivery cannot open %s; alerts stay queued", self.db_path)
            return
        next_prune = 0.0
        full = 0  # consecutive passes the disk refused our writes (said once, retried with backoff)
        try:
            while True:
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + 3600.0
                    self._prune(box)
                try:
                    self._record_results(box)
                    if self._stopping.is_set() and self._finished(box):
                        break
                    self._dispatch(box)
                    timeout = self._sleep_for(box)
                except Exception as exc:  # noqa: BLE001 - a DB hiccup must not kill delivery for good
                    timeout, full = self._loop_error(exc, full)
                else:
                    if full:
                        log.warning("alert delivery: the outbox is writable again")
                    full = 0
                if self._stopping.is_set():
                    timeout = min(timeout, 0.05)
                timeout = min(timeout, max(0.0, next_prune - time.monotonic()))
                self._wake.wait(timeout)
                self._wake.clear()
        finally:
            box.close()

    def _loop_error(self, exc: Exception, full: int) -> tuple[float, int]:
        """A full disk is said once and retried with backoff (1 s doubling to 30 s), not logged
        with a traceback every second; alerts stay queued (outbox.py: at-least-once)."""
        from cronplus.store.faults import storage_problem
        from cronplus.store.schema import db_problem, is_corrupt

        problem = storage_problem(exc, self.db_path) or (db_problem(self.db_path, exc) if is_corrupt(exc) else None)
        if problem is None:
            log.exception("alert delivery loop error; retrying shortly")
            return 1.0, 0
        if not full:
            log.warning("alert delivery paused: %s; alerts stay queued", problem)
        return min(30.0, 2.0 ** full), full + 1

    def _prune(self, box: OutboxQueue) -> None:
        try:
            removed = box.prune(now=self.clock.time(), keep_s=self.keep_s, keep_pings_s=self.keep_pings_s)
        except Exception as exc:  # noqa: BLE001 - pruning is housekeeping, never fatal
            from cronplus.store.faults import is_storage_error
            from cronplus.store.schema import is_corrupt

            if not is_storage_error(exc) and not is_corrupt(exc):  # the delivery loop says so
                log.exception("pruning the alert outbox failed")
            return
        if removed:
            log.debug("pruned %d old outbox rows", removed)

    def _finished(self, box: OutboxQueue) -> bool:
        """While stopping: done when nothing is in flight or due, or the grace is over."""
        if time.monotonic() >= self._stop_deadline:
            return True
        return not self._busy and not box.due_targets(now=self.clock.time(), limit=1)

    def _record_results(self, box: OutboxQueue) -> None:
        while True:
            try:
                target, results, unsent = self._results.get_nowait()
            except queue.Empty:
                return
            self._record_batch(box, target, results, unsent)

    def _record_batch(self, box: OutboxQueue, target: str, results: list[tuple[OutboxRow, Outcome]],
                      unsent: list[OutboxRow]) -> None:
        """One transaction per batch: give back the leases of rows not tried (they are due again
        now, or after the destination's backoff that `record` applies), then the outcomes."""
        self._busy.pop(target, None)
        now = self.clock.time()
        with box.batch():
            box.release([row.id for row in unsent], now=now)
            statuses = [record(box, row, outcome, now=now, policy=self.policy) for row, outcome in results]
        where = target if target.startswith("mailto:") else redact_url(target)  # addresses are no secret
        for (row, outcome), status in zip(results, statuses, strict=True):
            if status == "delivered":
                log.debug("alert %d (%s %s) delivered to %s", row.id, row.job, row.event, where)
            elif status == "failed":
                log.warning("alert %d (%s %s) to %s failed: %s", row.id, row.job, row.event, where, outcome.error)
            else:
                log.info("alert %d (%s %s) to %s will be retried: %s", row.id, row.job, row.event, where,
                         outcome.error)
            if self.on_settled is not None:
                try:
                    self.on_settled(AlertSettled(row_id=row.id, kind=row.kind, job=row.job, event=row.event,
                                                 result="retry" if status == "pending" else status))
                except Exception:  # noqa: BLE001 - a listener's bug never stops delivery
                    log.exception("alert delivery: on_settled failed")

    def _dispatch(self, box: OutboxQueue) -> None:
        """Claim up to `batch` due rows for each idle destination (one batch in flight per
        destination, sent in order by one pool thread), for as many destinations as threads."""
        free = self.max_workers - len(self._busy)
        if free <= 0:
            return
        batches: dict[str, list[int]] = {}
        for row_id, target in box.due_targets(now=self.clock.time(), limit=500):
            if target in self._busy:
                continue
            if target not in batches:
                if len(batches) >= free:
                    continue
                batches[target] = []
            if len(batches[target]) < self.batch:
                batches[target].append(row_id)
        chosen = [row_id for ids in batches.values() for row_id in ids]
        claimed: dict[str, list[OutboxRow]] = {}
        for row in box.claim(chosen, now=self.clock.time(), lease_s=self.lease_s):
            claimed.setdefault(row.target, []).append(row)
        for target, rows in claimed.items():
            self._busy[target] = rows[0].id
            self._tasks.put((target, rows))

    def _sleep_for(self, box: OutboxQueue) -> float:
        busy = list(self._busy)
        if len(busy) >= self.max_workers:
            return self.idle_poll_s  # a finishing request wakes us
        value = box.next_due_at(exclude_targets=busy)
        if value is None:
            return self.idle_poll_s
        return max(0.0, min(self.idle_poll_s, value - self.clock.time()))

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = self._local.session = requests.Session()
        return session

    def _sender(self) -> None:
        while (task := self._tasks.get()) is not None:
            self._send_in_pool(*task)

    def _send_in_pool(self, target: str, rows: list[OutboxRow]) -> None:
        """Send a destination's rows in order; stop at the first transient failure (the rest
        waits for the destination's backoff)."""
        results: list[tuple[OutboxRow, Outcome]] = []
        for row in rows:
            if self._stopping.is_set() and time.monotonic() >= self._stop_deadline:
                break
            try:
                session = None if row.kind == "mail" else self._session()
                outcome = send(row, session=session, env=self.env, policy=self.policy, now=self.clock.time(),
                               mailer=self.mailer)
            except Exception as exc:  # noqa: BLE001 - send() should not raise; never lose the row
                outcome = Outcome("retry", error=f"internal error: {type(exc).__name__}")
            results.append((row, outcome))
            if outcome.kind == "retry":
                break
        self._results.put((target, results, rows[len(results):]))
        self._wake.set()
