"""DeliveryWorker against a real HTTP receiver on 127.0.0.1: retries, backoff, Retry-After,
permanent errors, a down or hanging receiver, restarts, env: targets, signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.alerts.alerting import new_payload
from cronplus.alerts.delivery import DeliveryWorker, Policy, deliver_now
from cronplus.store import history, outbox
from tests.http_receiver import Receiver
from tests.waiting import wait_until

FAST = Policy(backoff_base=0.05, backoff_max=0.2, max_age_s=3600, connect_timeout=0.5, read_timeout=1.0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "history.db"


@pytest.fixture
def conn(db: Path) -> Iterator[object]:
    c = history.connect(db)
    yield c
    c.close()


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def enqueue(conn, target: str, *, event: str = "failure", job: str = "backup", fmt: str = "json",
            secret_ref: str | None = None) -> int:
    data = {"event": event, "job": job, "run_id": 1, "attempt": 1, "status": "failed", "exit_code": 1,
            "host": "h", "output_tail": "boom", "cronplus_version": "0.1.0"}
    return outbox.enqueue(conn, kind="alert", event=event, job=job, run_id=1, target=target, format=fmt,
                          secret_ref=secret_ref, payload=new_payload(data, now=time.time()), now=time.time())


def status_of(conn, row_id: int) -> str:
    row = outbox.get(conn, row_id)
    assert row is not None
    return row.status


def start_worker(db: Path, **kw) -> DeliveryWorker:
    kw.setdefault("policy", FAST)
    kw.setdefault("idle_poll_s", 0.1)
    kw.setdefault("env", {})
    worker = DeliveryWorker(db, **kw)
    worker.start()
    return worker


def test_a_pending_alert_is_delivered_and_marked_delivered(conn, db, rx) -> None:
    row_id = enqueue(conn, rx.url())
    worker = start_worker(db)
    try:
        [request] = rx.wait_for(1)
        wait_until(lambda: status_of(conn, row_id) == "delivered")
    finally:
        worker.stop()
    assert request.json()["data"]["job"] == "backup"
    assert request.headers["content-type"] == "application/json"
    assert outbox.get(conn, row_id).attempts == 1


def test_server_errors_are_retried_with_backoff_until_delivered(conn, db, rx) -> None:
    rx.fail_first(2, 503)
    row_id = enqueue(conn, rx.url())
    worker = start_worker(db)
    try:
        wait_until(lambda: status_of(conn, row_id) == "delivered")
    finally:
        worker.stop()
    assert [r.answered for r in rx.requests] == [503, 503, 200]
    assert outbox.get(conn, row_id).attempts == 3
    assert len({r.headers["user-agent"] for r in rx.requests}) == 1


def test_404_fails_at_once_and_is_not_retried(conn, db, rx) -> None:
    rx.always(404)
    row_id = enqueue(conn, rx.url())
    worker = start_worker(db)
    try:
        wait_until(lambda: status_of(conn, row_id) == "failed")
        time.sleep(0.4)  # several backoff periods: a retry would have happened by now
    finally:
        worker.stop()
    assert len(rx.requests) == 1
    row = outbox.get(conn, row_id)
    assert row.http_status == 404 and "404" in row.last_error and "not retried" in row.last_error


def test_a_400_invalid_token_is_permanent_but_408_is_retried(conn, db, rx) -> None:
    rx.fail_first(1, 408)
    ok = enqueue(conn, rx.url("/a"))
    worker = start_worker(db)
    try:
        wait_until(lambda: status_of(conn, ok) == "delivered")
        rx.always(400)
        bad = enqueue(conn, rx.url("/b"))
        worker.wake()
        wait_until(lambda: status_of(conn, bad) == "failed")
    finally:
        worker.stop()


def test_429_retry_after_is_honoured_even_when_backoff_is_tiny(conn, db, rx) -> None:
    rx.rate_limit_first(1, "1")
    row_id = enqueue(conn, rx.url())
    worker = start_worker(db)
    try:
        first, second = rx.wait_for(2, timeout=5)
        wait_until(lambda: status_of(conn, row_id) == "delivered")
    finally:
        worker.stop()
    assert first.answered == 429 and second.answered == 200
    assert second.at - first.at >= 0.9


def test_a_down_receiver_gets_every_alert_after_it_comes_back_even_across_a_restart(conn, db, rx) -> None:
    rx.stop()  # nothing listens on the port now: connection refused
    ids = [enqueue(conn, rx.url(), event="failure", job=f"job{i}") for i in range(5)]
    first = start_worker(db)
    try:
        wait_until(lambda: all(outbox.get(conn, i).attempts >= 2 for i in ids[:1]))
    finally:
        first.stop()
    rows = [outbox.get(conn, i) for i in ids]
    assert all(r.status == "pending" for r in rows)
    assert "connection refused" in rows[0].last_error
    rx.start()  # back, same port; a new worker (a restarted supervisor) on the same db
    second = start_worker(db, env={"CRONPLUS_WEBHOOK_SECRET": "s" * 32})
    try:
        wait_until(lambda: all(status_of(conn, i) == "delivered" for i in ids))
    finally:
        second.stop()
    delivered = rx.delivered()
    assert sorted(r.json()["data"]["job"] for r in delivered) == [f"job{i}" for i in range(5)]
    assert sorted(r.headers["webhook-id"] for r in delivered) == sorted(r.payload["id"] for r in rows)


def test_a_hanging_receiver_does_not_delay_alerts_to_other_receivers(conn, db, rx) -> None:
    with Receiver() as slow:
        slow.hang(60.0)  # long, so that waiting for it cannot hide in a generous bound below
        for i in range(3):
            enqueue(conn, slow.url(), job=f"slow{i}")
        worker = start_worker(db, policy=Policy(backoff_base=0.05, backoff_max=0.2, connect_timeout=0.5,
                                                read_timeout=30.0))
        try:
            time.sleep(0.2)  # the slow receiver now holds a request
            started = time.monotonic()
            fast_ids = [enqueue(conn, rx.url(), job=f"fast{i}") for i in range(5)]
            worker.wake()
            wait_until(lambda: all(status_of(conn, i) == "delivered" for i in fast_ids), timeout=20.0)
            elapsed = time.monotonic() - started
            held = len(slow.requests)
        finally:
            slow.release()
            worker.stop()
    assert elapsed < 15  # behind the hanging receiver they would wait out its 30 s read timeout
    assert held == 1  # one request per destination at a time


def test_wake_makes_the_worker_look_at_the_outbox_at_once(conn, db, rx) -> None:
    worker = start_worker(db, idle_poll_s=30.0)
    try:
        time.sleep(0.1)
        started = time.monotonic()
        row_id = enqueue(conn, rx.url())
        worker.wake()
        wait_until(lambda: status_of(conn, row_id) == "delivered", timeout=20.0)
    finally:
        worker.stop()
    assert time.monotonic() - started < 15  # not the 30 s idle poll


def test_an_alert_older_than_max_age_fails_with_the_reason(conn, db, rx) -> None:
    rx.stop()
    row_id = enqueue(conn, rx.url())
    worker = start_worker(db, policy=Policy(backoff_base=0.05, backoff_max=0.1, max_age_s=0.5, connect_timeout=0.5))
    try:
        wait_until(lambda: status_of(conn, row_id) == "failed", timeout=4)
    finally:
        worker.stop()
    error = outbox.get(conn, row_id).last_error
    assert error.startswith("gave up after") and "connection refused" in error


def test_json_alerts_are_signed_and_the_signature_verifies_with_an_independent_hmac(conn, db, rx) -> None:
    key = b"0123456789abcdef0123456789abcdef"
    env = {"CRONPLUS_WEBHOOK_SECRET": "whsec_" + base64.b64encode(key).decode(), "MY_SECRET": "plain-secret"}
    default_id = enqueue(conn, rx.url("/default"))
    custom_id = enqueue(conn, rx.url("/custom"), secret_ref="env:MY_SECRET")
    worker = start_worker(db, env=env)
    try:
        wait_until(lambda: status_of(conn, default_id) == status_of(conn, custom_id) == "delivered")
    finally:
        worker.stop()
    by_path = {r.path: r for r in rx.requests}
    for path, secret_bytes, row_id in (("/default", key, default_id), ("/custom", b"plain-secret", custom_id)):
        r = by_path[path]
        signed = f"{r.headers['webhook-id']}.{r.headers['webhook-timestamp']}.".encode() + r.body
        expected = base64.b64encode(hmac.new(secret_bytes, signed, hashlib.sha256).digest()).decode()
        assert r.headers["webhook-signature"] == f"v1,{expected}"
        assert r.headers["webhook-id"] == outbox.get(conn, row_id).payload["id"]
        assert abs(int(r.headers["webhook-timestamp"]) - time.time()) < 60


def test_an_unset_env_target_is_retried_with_a_clear_error_then_delivered_once_set(conn, db, rx) -> None:
    env: dict[str, str] = {}
    row_id = enqueue(conn, "env:OPS_WEBHOOK")
    worker = start_worker(db, env=env)
    try:
        wait_until(lambda: outbox.get(conn, row_id).attempts >= 1)
        row = outbox.get(conn, row_id)
        assert row.status == "pending"
        assert row.last_error == "alert target env:OPS_WEBHOOK is not set in the supervisor's environment"
        env["OPS_WEBHOOK"] = rx.url("/ops")
        wait_until(lambda: status_of(conn, row_id) == "delivered")
    finally:
        worker.stop()
    assert rx.requests[-1].path == "/ops"


def test_no_secret_url_or_token_reaches_logs_or_the_stored_error(conn, db, rx, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    token = "T0SECRET/B0SECRET/XYZSECRETTOKEN"
    rx.stop()
    down = enqueue(conn, f"{rx.url('/services/' + token)}?key=QUERYSECRET")
    with Receiver() as slow:
        slow.hang(2.0)
        hanging = enqueue(conn, slow.url("/services/" + token))
        worker = start_worker(db, policy=Policy(backoff_base=0.05, backoff_max=0.2, connect_timeout=0.3,
                                                read_timeout=0.3), env={"CRONPLUS_WEBHOOK_SECRET": "SIGNSECRET99"})
        try:
            wait_until(lambda: outbox.get(conn, down).attempts >= 2 and outbox.get(conn, hanging).attempts >= 1)
        finally:
            slow.release()
            worker.stop()
        stored = [outbox.get(conn, down).last_error, outbox.get(conn, hanging).last_error]
    assert "connection refused" in stored[0] and "timed out" in stored[1]
    everything = caplog.text + "\n".join(stored)
    assert "retried" in caplog.text
    for secret in ("SECRET", "QUERYSECRET", "services/"):
        assert secret not in everything


def test_deliver_now_sends_one_row_synchronously(conn, db, rx) -> None:
    row_id = enqueue(conn, rx.url())
    row = deliver_now(outbox.Outbox(conn), row_id, env={}, policy=FAST)
    assert row.status == "delivered" and len(rx.requests) == 1


CRASHING_WORKER = """
import sys, time
from cronplus.alerts.delivery import DeliveryWorker, Policy
w = DeliveryWorker(sys.argv[1], policy=Policy(read_timeout=30), lease_s=0.5, idle_poll_s=0.05,
                   env={"CRONPLUS_WEBHOOK_SECRET": "s" * 32})
w.start()
time.sleep(60)
"""


def test_an_alert_being_sent_when_the_process_died_is_sent_again_with_the_same_webhook_id(conn, db, rx) -> None:
    import subprocess
    import sys

    rx.hang(30)
    row_id = enqueue(conn, rx.url())
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_WORKER, str(db)])
    try:
        [held] = rx.wait_for(1, timeout=10)  # the request is in flight, the receiver holds it
        proc.kill()  # the supervisor dies mid-request (SIGKILL: no clean-up at all)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    rx.release()
    assert status_of(conn, row_id) == "pending"
    worker = start_worker(db, env={"CRONPLUS_WEBHOOK_SECRET": "s" * 32})
    try:
        wait_until(lambda: status_of(conn, row_id) == "delivered")
    finally:
        worker.stop()
    again = rx.requests[-1]
    assert again.headers["webhook-id"] == held.headers["webhook-id"] == outbox.get(conn, row_id).payload["id"]
    assert again.body == held.body


def test_stop_first_sends_what_is_due(conn, db, rx) -> None:
    worker = start_worker(db, idle_poll_s=30.0)
    ids = [enqueue(conn, rx.url(f"/{i}")) for i in range(3)]
    worker.stop(timeout=3.0)  # no wake(): the stop itself flushes
    assert [status_of(conn, i) for i in ids] == ["delivered"] * 3


def test_a_redirect_is_not_followed_and_fails_with_a_hint(conn, db, rx) -> None:
    rx.fail_first(1, 301, {"Location": "http://127.0.0.1:9/elsewhere/TOKEN"})
    row_id = enqueue(conn, rx.url())
    worker = start_worker(db)
    try:
        wait_until(lambda: status_of(conn, row_id) == "failed")
    finally:
        worker.stop()
    assert "redirect" in outbox.get(conn, row_id).last_error and len(rx.requests) == 1


def test_old_finished_rows_are_pruned_and_pending_ones_never(conn, db, rx) -> None:
    old = time.time() - 40 * 86400
    done = outbox.enqueue(conn, kind="alert", event="failure", job="j", run_id=1, target=rx.url(), format="json",
                          secret_ref=None, payload={"id": "msg_1"}, now=old)
    outbox.mark_failed(conn, done, error="x", http_status=404)
    pending = outbox.enqueue(conn, kind="alert", event="failure", job="j", run_id=1, target="env:UNSET_VAR",
                             format="json", secret_ref=None, payload={"id": "msg_2"}, now=old)
    ping = outbox.enqueue(conn, kind="ping", event="start", job="j", run_id=1, target=rx.url("/p"), format="json",
                          secret_ref=None, payload={}, now=time.time() - 2 * 86400)
    conn.execute("UPDATE outbox SET status = 'delivered' WHERE id = ?", (ping,))
    assert outbox.prune(conn, now=time.time(), keep_s=30 * 86400, keep_pings_s=86400) == 2
    assert outbox.get(conn, done) is None and outbox.get(conn, ping) is None
    assert outbox.get(conn, pending) is not None


def test_a_destinations_alerts_arrive_in_order_even_after_a_transient_failure(conn, db, rx) -> None:
    rx.fail_first(1, 503)
    ids = [enqueue(conn, rx.url(), job=f"job{i}") for i in range(6)]
    worker = start_worker(db, batch=4)
    try:
        wait_until(lambda: all(status_of(conn, i) == "delivered" for i in ids))
    finally:
        worker.stop()
    assert [r.json()["data"]["job"] for r in rx.delivered()] == [f"job{i}" for i in range(6)]
    assert rx.requests[0].answered == 503 and len(rx.requests) == 7


def test_a_row_with_an_unknown_format_fails_instead_of_retrying_for_a_day(conn, db, rx) -> None:
    row_id = enqueue(conn, rx.url(), fmt="carrier-pigeon")
    row = deliver_now(outbox.Outbox(conn), row_id, env={}, policy=FAST)
    assert row.status == "failed" and "cannot render carrier-pigeon payload" in row.last_error
    assert rx.requests == []


def test_an_hour_long_outage_loses_nothing_with_the_default_backoff(conn, db, rx) -> None:
    from cronplus.clock import FakeClock

    clock = FakeClock(time.time())
    rx.stop()
    row_id = outbox.enqueue(conn, kind="alert", event="failure", job="backup", run_id=1, target=rx.url(),
                            format="json", secret_ref=None, payload=new_payload({"event": "failure"}, now=clock.time()),
                            now=clock.time())
    worker = start_worker(db, clock=clock, policy=Policy(connect_timeout=0.5), idle_poll_s=0.05)
    try:
        outage_end = clock.time() + 3600
        while True:  # jump to each retry time until the hour is over
            row = outbox.get(conn, row_id)
            if row.next_attempt_at > outage_end:
                break
            clock.advance(max(0.0, row.next_attempt_at - clock.time()) + 0.01)
            worker.wake()
            tried = row.attempts
            wait_until(lambda: outbox.get(conn, row_id).attempts > tried)  # noqa: B023 - called at once
        row = outbox.get(conn, row_id)
        # 5 s doubling, +<=25% jitter: 8-9 tries in the hour, none given up, the next within 30 min
        assert row.status == "pending" and 7 <= row.attempts <= 10, row.attempts
        assert row.next_attempt_at - clock.time() <= 1800 * 1.25
        assert "connection refused" in row.last_error
        rx.start()
        clock.advance(1800 * 1.25)
        worker.wake()
        wait_until(lambda: status_of(conn, row_id) == "delivered")
    finally:
        worker.stop()
    assert len(rx.requests) == 1


@pytest.mark.parametrize("fmt", ["slack", "discord", "teams", "ntfy"])
def test_each_chat_format_arrives_unsigned_with_its_own_content_type(conn, db, rx, fmt) -> None:
    row_id = enqueue(conn, rx.url(f"/{fmt}"), fmt=fmt)
    row = deliver_now(outbox.Outbox(conn), row_id, env={"CRONPLUS_WEBHOOK_SECRET": "s" * 32}, policy=FAST)
    assert row.status == "delivered"
    [request] = rx.requests
    assert "webhook-signature" not in request.headers  # only JSON alerts are signed
    if fmt == "ntfy":
        assert request.headers["content-type"].startswith("text/plain")
        assert request.headers["priority"] == "high" and request.headers["title"] == "backup failed on h"
        assert b"boom" in request.body
    else:
        assert request.headers["content-type"] == "application/json" and request.json()
