"""Deliver the outbox over HTTP (and `mail` rows through the mailer, maildelivery.py), in the
background, never losing an alert.

`DeliveryWorker(db_path)` is a daemon thread with its own SQLite connection. It claims due
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
Targets (`env:VAR`) and secrets are resolved at send time; errors are redacted before they are
stored or logged, since requests' exception texts contain the URL.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cronplus.alerts import payloads, signing
from cronplus.alerts.outcome import Outcome
from cronplus.clock import Clock, SystemClock
from cronplus.redact import redact_text, redact_url
from cronplus.status import AlertFormat
from cronplus.store import outbox

if TYPE_CHECKING:
    from cronplus.store.outbox import OutboxRow
    from cronplus.store.schema import Connection

log = logging.getLogger("cronplus.delivery")

DEFAULT_SECRET_ENV = "CRONPLUS_WEBHOOK_SECRET"
# The worker sleeps until the next pending row is due, or until woken: every enqueue in this
# process wakes it (after its commit), and so does every finished request. This is only a safety
# net; polling every few seconds was most of an idle supervisor's CPU (bench W1).
IDLE_POLL_S = 300.0
_TRANSIENT_4XX = {408, 425, 429}


@dataclass(frozen=True, slots=True)
class Policy:
    """Retry policy and HTTP timeouts; tests shrink the delays."""

    backoff_base: float = 5.0
    backoff_max: float = 1800.0
    max_age_s: float = 24 * 3600.0
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    mail_timeout: float = 60.0  # the mailer command's whole run

    def delay(self, attempts: int) -> float:
        """Exponential backoff with up to +25% jitter, so retries of many rows spread out."""
        base = min(self.backoff_max, self.backoff_base * (2.0 ** max(0, attempts - 1)))
        return min(self.backoff_max, base * (1.0 + random.uniform(0.0, 0.25)))


class Unresolved(ValueError):
    """An `env:VAR` the supervisor's environment lacks: retried, as the operator may set it."""


class BadTarget(ValueError):
    """A target that is not a usable URL (e.g. a malformed one in `env:VAR`): failed."""


def resolve_target(target: str, env: Mapping[str, str]) -> str:
    """`env:VAR` -> $VAR, a URL stays; Unresolved when unset, BadTarget when not a usable URL
    (annotations.url_problem, as the parser checks the crontab's own). Messages are redacted."""
    from cronplus.crontab.annotations import url_problem

    url = target
    if target.startswith("env:"):
        url = env.get(target[4:], "").strip()
        if not url:
            raise Unresolved(f"alert target {target} is not set in the supervisor's environment")
    problem = url_problem(url)
    if problem:
        raise BadTarget((f"alert target {target}: " if url != target else "") + problem)
    return url


def resolve_secret(secret_ref: str | None, env: Mapping[str, str]) -> str | None:
    """The signing secret: `env:VAR` as configured, else $CRONPLUS_WEBHOOK_SECRET, else None."""
    if secret_ref:
        name = secret_ref[4:] if secret_ref.startswith("env:") else secret_ref
        value = env.get(name)
        if not value:
            raise Unresolved(f"alert-secret env:{name} is not set in the supervisor's environment")
        return value
    return env.get(DEFAULT_SECRET_ENV) or None


def webhook_id(row: OutboxRow) -> str:
    """Stable across attempts and restarts (stored in the payload at enqueue time)."""
    return str(row.payload.get("id") or f"msg_cronplus_{row.id}")


def redact_error(text: str, url: str | None, secret: str | None = None) -> str:
    """An exception text with the URL, its path/query, password and the secret removed, capped."""
    if url:
        from requests.utils import requote_uri

        p = urlsplit(url)
        q = urlsplit(requote_uri(url))  # how requests writes it in its messages (non-ASCII %-encoded)
        found = [url, p.path + ("?" + p.query if p.query else ""), p.path, p.query, p.password or "", secret or "",
                 q.path + ("?" + q.query if q.query else ""), q.path, q.query]
        text = redact_text(text, [s for s in found if s and s != "/"])
        if p.path not in ("", "/"):
            text = text.replace(p.path, "/…")
    return text[:300]


def _describe_exception(exc: BaseException, url: str, secret: str | None) -> str:
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "read timed out (receiver did not answer)"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "refused" in text.lower():
            return "connection refused"
        if "name or service not known" in text.lower() or "nodename nor servname" in text.lower():
            return "host name not found"
        return "connection error: " + redact_error(text, url, secret)
    return f"{type(exc).__name__}: {redact_error(str(exc), url, secret)}"


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def build_request(row: OutboxRow, env: Mapping[str, str], now: float) -> tuple[str, payloads.HttpRequest, str | None]:
    """URL, rendered request (signed for JSON alerts) and the secret used; Unresolved for an
    unset env:VAR, another exception for a payload that cannot be rendered."""
    url = resolve_target(row.target, env)
    if row.kind == "ping":
        request = payloads.render_ping(row.event, row.payload)
        return url.rstrip("/") + request.url_suffix, request, None
    request = payloads.render(row.format, row.payload)
    secret = None
    if row.format == AlertFormat.JSON:
        secret = resolve_secret(row.secret_ref, env)
        if secret:
            request.headers.update(signing.headers(secret, webhook_id(row), int(now), request.body))
    return url, request, secret


def send(row: OutboxRow, *, session: Any, env: Mapping[str, str], policy: Policy, now: float,
         mailer: str | None = None) -> Outcome:
    """One attempt: resolve, render, sign, POST, classify (a `mail` row: run the mailer,
    maildelivery.py). Never raises."""
    if row.kind == "mail":
        from cronplus.alerts.maildelivery import send_mail

        return send_mail(row, mailer=mailer, env=env, timeout=policy.mail_timeout)
    try:
        url, request, secret = build_request(row, env, now)
    except (Unresolved, signing.BadSecret) as exc:  # unset env:VAR or a mangled whsec_ secret:
        return Outcome("retry", error=str(exc))  # the operator may still fix it, so retry
    except BadTarget as exc:  # a malformed URL will not become a good one
        return Outcome("failed", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a payload we cannot render will never render
        return Outcome("failed", error=f"cannot render {row.format} payload: {type(exc).__name__}")
    import requests

    headers = {"User-Agent": "cronplus", **request.headers}
    try:
        # No redirects: requests would turn a redirected POST (301/302) into a GET without the
        # body, and a Location may carry a token; the configured URL must be the final one.
        response = session.post(
            url,
            data=request.body,
            headers=headers,
            timeout=(policy.connect_timeout, policy.read_timeout),
            allow_redirects=False,
        )
    except requests.exceptions.RequestException as exc:
        return Outcome("retry", error=_describe_exception(exc, url, secret))
    except Exception as exc:  # noqa: BLE001 - urllib3/idna errors escape requests for some hosts: permanent
        return Outcome("failed", error=_describe_exception(exc, url, secret))
    status = response.status_code
    response.close()
    if 200 <= status < 300:
        return Outcome("delivered", http_status=status)
    reason = f"HTTP {status} {redact_error(response.reason or '', url, secret)}".strip()
    if 300 <= status < 400:
        return Outcome("failed", http_status=status, error=reason + " (a redirect: configure the final URL)")
    if status in _TRANSIENT_4XX or status >= 500:
        after = _retry_after(response.headers.get("Retry-After"), now) if status in (429, 503) else None
        return Outcome("retry", http_status=status, error=reason, retry_after=after)
    return Outcome("failed", http_status=status, error=reason + " (permanent, not retried)")


def record(conn: Connection, row: OutboxRow, outcome: Outcome, *, now: float, policy: Policy) -> str:
    """Store an outcome; returns the row's new status. Also backs off the whole destination."""
    if outcome.kind == "delivered":
        outbox.mark_delivered(conn, row.id, now=now, http_status=outcome.http_status)
        return "delivered"
    error = outcome.error or "unknown error"
    if outcome.kind == "retry":
        deadline = row.created_at + policy.max_age_s
        if now >= deadline:
            error = f"gave up after {row.attempts + 1} attempts over {now - row.created_at:.0f}s: {error}"
        else:
            delay = outcome.retry_after if outcome.retry_after is not None else policy.delay(row.attempts + 1)
            next_at = min(now + delay, deadline)
            outbox.mark_retry(conn, row.id, next_attempt_at=next_at, error=error, http_status=outcome.http_status)
            # Per-destination backoff: the same receiver's other rows wait too, keeping order.
            conn.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE status = 'pending' AND target = ? AND id != ?"
                " AND next_attempt_at < ?",
                (next_at, row.target, row.id, next_at),
            )
            return "pending"
    outbox.mark_failed(conn, row.id, error=error, http_status=outcome.http_status)
    return "failed"


def deliver_now(
    conn: Connection,
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
    won = outbox.claim(conn, [row_id], now=now, lease_s=policy.connect_timeout + policy.read_timeout + 10)
    if won:
        with requests.Session() as session:
            outcome = send(won[0], session=session, env=os.environ if env is None else env, policy=policy, now=now,
                           mailer=mailer)
        record(conn, won[0], outcome, now=clock.time(), policy=policy)
    return outbox.get(conn, row_id)


class DeliveryWorker:
    """The background sender. `start()`, `wake()` after enqueueing, `stop(timeout)`."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
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
    ) -> None:
        self.mailer = mailer  # `cronplus run --mailer CMD`; None: $CRONPLUS_MAILER, else sendmail
        self.db_path = Path(db_path)
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
        from cronplus.store import history

        try:
            conn = history.connect(self.db_path)
        except Exception:  # noqa: BLE001 - logged; alerts stay in the outbox for the next start
            log.exception("alert delivery cannot open %s; alerts stay queued", self.db_path)
            return
        next_prune = 0.0
        full = 0  # consecutive passes the disk refused our writes (said once, retried with backoff)
        try:
            while True:
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + 3600.0
                    self._prune(conn)
                try:
                    self._record_results(conn)
                    if self._stopping.is_set() and self._finished(conn):
                        break
                    self._dispatch(conn)
                    timeout = self._sleep_for(conn)
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
            conn.close()

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

    def _prune(self, conn: Connection) -> None:
        try:
            removed = outbox.prune(conn, now=self.clock.time(), keep_s=self.keep_s, keep_pings_s=self.keep_pings_s)
        except Exception as exc:  # noqa: BLE001 - pruning is housekeeping, never fatal
            from cronplus.store.faults import is_storage_error
            from cronplus.store.schema import is_corrupt

            if not is_storage_error(exc) and not is_corrupt(exc):  # the delivery loop says so
                log.exception("pruning the alert outbox failed")
            return
        if removed:
            log.debug("pruned %d old outbox rows", removed)

    def _finished(self, conn: Connection) -> bool:
        """While stopping: done when nothing is in flight or due, or the grace is over."""
        if time.monotonic() >= self._stop_deadline:
            return True
        return not self._busy and not outbox.due_targets(conn, now=self.clock.time(), limit=1)

    def _record_results(self, conn: Connection) -> None:
        while True:
            try:
                target, results, unsent = self._results.get_nowait()
            except queue.Empty:
                return
            self._record_batch(conn, target, results, unsent)

    def _record_batch(self, conn: Connection, target: str, results: list[tuple[OutboxRow, Outcome]],
                      unsent: list[OutboxRow]) -> None:
        """One transaction per batch: give back the leases of rows not tried (they are due again
        now, or after the destination's backoff that `record` applies), then the outcomes."""
        self._busy.pop(target, None)
        now = self.clock.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for row in unsent:
                conn.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND status = 'pending'", (now, row.id))
            statuses = [record(conn, row, outcome, now=now, policy=self.policy) for row, outcome in results]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        where = target if target.startswith("mailto:") else redact_url(target)  # addresses are no secret
        for (row, outcome), status in zip(results, statuses, strict=True):
            if status == "delivered":
                log.debug("alert %d (%s %s) delivered to %s", row.id, row.job, row.event, where)
            elif status == "failed":
                log.warning("alert %d (%s %s) to %s failed: %s", row.id, row.job, row.event, where, outcome.error)
            else:
                log.info("alert %d (%s %s) to %s will be retried: %s", row.id, row.job, row.event, where,
                         outcome.error)

    def _dispatch(self, conn: Connection) -> None:
        """Claim up to `batch` due rows for each idle destination (one batch in flight per
        destination, sent in order by one pool thread), for as many destinations as threads."""
        free = self.max_workers - len(self._busy)
        if free <= 0:
            return
        batches: dict[str, list[int]] = {}
        for row_id, target in outbox.due_targets(conn, now=self.clock.time(), limit=500):
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
        for row in outbox.claim(conn, chosen, now=self.clock.time(), lease_s=self.lease_s):
            claimed.setdefault(row.target, []).append(row)
        for target, rows in claimed.items():
            self._busy[target] = rows[0].id
            self._tasks.put((target, rows))

    def _sleep_for(self, conn: Connection) -> float:
        busy = list(self._busy)
        sql = "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'"
        if busy:
            sql += f" AND target NOT IN ({','.join('?' * len(busy))})"
        if len(busy) >= self.max_workers:
            return self.idle_poll_s  # a finishing request wakes us
        value = conn.execute(sql, busy).fetchone()[0]
        if value is None:
            return self.idle_poll_s
        return max(0.0, min(self.idle_poll_s, float(value) - self.clock.time()))

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
