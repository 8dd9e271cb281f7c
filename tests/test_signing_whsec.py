"""`whsec_` secrets as the receivers' official verifier reads them: the `standardwebhooks`
package verifies what cronplus signed, with the secret padded or with its `=` padding stripped;
a `whsec_` secret that is not base64 is refused, at send time, with a redacted reason."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from cronplus.alerts import signing
from cronplus.alerts.alerting import new_payload
from cronplus.alerts.delivery import DeliveryWorker, Policy
from cronplus.store import history, outbox
from tests.http_receiver import Receiver
from tests.waiting import wait_until

FAST = Policy(backoff_base=0.05, backoff_max=0.2, max_age_s=3600, connect_timeout=0.5, read_timeout=1.0)
# Key lengths whose base64 needs one and two `=`: both paddings are exercised.
KEYS = [b"k" * 32, b"\x00\xffsecret-key-" * 3 + b"x"]



@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.mark.parametrize("key", KEYS)
def test_an_unpadded_whsec_secret_signs_with_the_same_key_as_the_padded_one(key: bytes) -> None:
    padded = "whsec_" + base64.b64encode(key).decode()
    assert padded.endswith("=")
    unpadded = padded.rstrip("=")
    assert signing.secret_key(unpadded) == signing.secret_key(padded) == key
    body = b'{"type":"cronplus.job.failure"}'
    now = int(time.time())  # the verifier refuses timestamps more than 5 minutes off
    headers = signing.headers(unpadded, "msg_1", now, body)
    for configured in (padded, unpadded):  # the receiver may hold either form
        assert Webhook(configured).verify(body, headers) == {"type": "cronplus.job.failure"}


@pytest.mark.parametrize("bad", ["whsec_!!!notbase64", "whsec_abcde", "whsec_"])
def test_a_whsec_secret_that_is_not_base64_is_refused_without_quoting_it(bad: str) -> None:
    with pytest.raises(signing.BadSecret, match="not base64") as err:
        signing.secret_key(bad)
    tail = bad.removeprefix("whsec_")
    assert not tail or tail not in str(err.value)


def _enqueue(conn, url: str) -> int:
    data = {"event": "failure", "job": "backup", "run_id": 1, "attempt": 1, "status": "failed", "exit_code": 1,
            "host": "h", "output_tail": "boom", "cronplus_version": "0"}
    now = time.time()
    return outbox.enqueue(conn, kind="alert", event="failure", job="backup", run_id=1, target=url, format="json",
                          secret_ref=None, payload=new_payload(data, now=now), now=now)


def test_alerts_signed_with_an_unpadded_secret_verify_with_the_standardwebhooks_package(tmp_path: Path, rx) -> None:
    key = KEYS[1]
    padded = "whsec_" + base64.b64encode(key).decode()
    conn = history.connect(tmp_path / "history.db")
    row_id = _enqueue(conn, rx.url("/hook"))
    worker = DeliveryWorker(tmp_path / "history.db", policy=FAST, idle_poll_s=0.1,
                            env={"CRONPLUS_WEBHOOK_SECRET": padded.rstrip("=")})
    worker.start()
    try:
        [request] = rx.wait_for(1)
        wait_until(lambda: outbox.get(conn, row_id).status == "delivered")
    finally:
        worker.stop()
        conn.close()
    assert Webhook(padded).verify(request.body, request.headers)["data"]["job"] == "backup"


def test_a_mangled_whsec_secret_is_retried_with_a_redacted_reason_then_signed_once_fixed(tmp_path: Path, rx) -> None:
    env = {"CRONPLUS_WEBHOOK_SECRET": "whsec_%%TOPSECRET%%"}
    conn = history.connect(tmp_path / "history.db")
    row_id = _enqueue(conn, rx.url("/hook"))
    worker = DeliveryWorker(tmp_path / "history.db", policy=FAST, idle_poll_s=0.1, env=env)
    worker.start()
    try:
        wait_until(lambda: outbox.get(conn, row_id).attempts >= 1)
        row = outbox.get(conn, row_id)
        assert row.status == "pending" and rx.requests == []
        assert "not base64" in row.last_error and "TOPSECRET" not in row.last_error
        good = "whsec_" + base64.b64encode(KEYS[0]).decode()
        env["CRONPLUS_WEBHOOK_SECRET"] = good
        [request] = rx.wait_for(1)
        wait_until(lambda: outbox.get(conn, row_id).status == "delivered")
    finally:
        worker.stop()
        conn.close()
    assert Webhook(good).verify(request.body, request.headers)["type"] == "cronplus.job.failure"


def test_a_supervisor_says_at_start_that_its_whsec_secret_is_not_base64(tmp_path: Path, supervisors) -> None:
    from tests.test_daemon import Supervisor

    (tmp_path / "crontab").write_text(
        "# cronplus: name=a alert=http://127.0.0.1:9/hook alert-secret=env:OPS_SECRET\n0 3 * * * true\n"
        "# cronplus: name=b alert=http://127.0.0.1:9/hook\n0 3 * * * true\n")
    sup = Supervisor(tmp_path, "", env={"OPS_SECRET": "whsec_%%TOPSECRET%%",
                                        "CRONPLUS_WEBHOOK_SECRET": "whsec_" + base64.b64encode(KEYS[0]).decode()})
    supervisors.append(sup)
    sup.wait_ready()
    assert sup.stop() == 0
    said = [line for line in sup.stderr.splitlines() if "not base64" in line]
    assert len(said) == 1 and "$OPS_SECRET" in said[0] and "TOPSECRET" not in sup.stderr
