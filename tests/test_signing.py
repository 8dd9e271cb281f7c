"""Standard Webhooks signatures, checked against an independent HMAC computation."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from cronplus.alerts import signing


def independent_signature(key: bytes, msg_id: str, ts: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def test_a_whsec_secret_is_base64_decoded_into_the_key() -> None:
    key = b"\x01\x02secret-bytes\xff"
    secret = "whsec_" + base64.b64encode(key).decode()
    body = b'{"type":"cronplus.job.failure"}'
    assert signing.sign(secret, "msg_1", 1700000000, body) == independent_signature(key, "msg_1", 1700000000, body)


def test_a_plain_secret_is_used_as_its_utf8_bytes() -> None:
    body = "{\"job\":\"bäckup\"}".encode()
    assert signing.sign("s3cret-ü", "msg_2", 1, body) == independent_signature("s3cret-ü".encode(), "msg_2", 1, body)


def test_a_whsec_secret_with_invalid_base64_is_refused_not_used_as_some_other_key() -> None:
    # Signing with the raw bytes would send alerts no Standard Webhooks receiver can verify.
    with pytest.raises(signing.BadSecret, match="not base64") as err:
        signing.secret_key("whsec_!!!not base64")
    assert "!!!not" not in str(err.value)


def test_verify_accepts_one_of_several_signatures_and_rejects_a_tampered_body() -> None:
    headers = signing.headers("k" * 24, "msg_3", 42, b"body")
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    assert signing.verify("k" * 24, headers, b"body")
    assert not signing.verify("k" * 24, headers, b"body!")
    assert headers["webhook-timestamp"] == "42" and headers["webhook-id"] == "msg_3"
