"""Standard Webhooks signatures (https://www.standardwebhooks.com/), pure functions.

The sender signs `f"{webhook_id}.{webhook_timestamp}.{body}"` with HMAC-SHA256 and sends
`webhook-signature: v1,<base64 digest>`. Per the spec a secret of the form `whsec_<base64>`
is base64-decoded to get the key bytes, with its `=` padding restored when it was stripped (the
official `standardwebhooks` and `svix` verifiers decode it so); any other secret is used as its
raw UTF-8 bytes (what most senders that accept free-form secrets do). A `whsec_` secret whose
tail is not base64 raises `BadSecret` (its message never quotes the secret): signing with some
other key would send alerts no receiver can verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping

WHSEC_PREFIX = "whsec_"


class BadSecret(ValueError):
    """A `whsec_` secret that is not `whsec_` + base64 (the message does not quote it)."""


def secret_key(secret: str) -> bytes:
    """The HMAC key bytes behind a configured secret; BadSecret for a malformed `whsec_` one."""
    if not secret.startswith(WHSEC_PREFIX):
        return secret.encode("utf-8")
    tail = secret[len(WHSEC_PREFIX) :].strip()
    try:
        key = base64.b64decode(tail + "=" * (-len(tail) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise BadSecret(
            f"the signing secret starts with {WHSEC_PREFIX} but the {len(tail)} characters after it are not"
            " base64: copy the whole secret from the receiver (whsec_ followed by A-Z a-z 0-9 + /)"
        )
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,<base64 HMAC-SHA256>`."""
    signed = webhook_id.encode("utf-8") + b"." + str(int(timestamp)).encode("ascii") + b"." + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery attempt."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }


def verify(secret: str, header_values: dict[str, str], body: bytes) -> bool:
    """True when any `v1,` signature in the header matches (receivers may hold several)."""
    expected = sign(secret, header_values["webhook-id"], int(header_values["webhook-timestamp"]), body)
    candidates = header_values.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def secret_problems(refs: Iterable[str | None], env: Mapping[str, str], *,
                    default_env: str = "CRONPLUS_WEBHOOK_SECRET") -> list[str]:
    """One line per configured secret (`env:VAR`, None for $`default_env`) that is set in `env`
    but is a malformed `whsec_` secret: what the supervisor says at start, rather than only
    leaving its alerts pending. Unset ones are not reported here (delivery says so)."""
    problems = []
    for name in sorted({ref[4:] if ref and ref.startswith("env:") else (ref or default_env) for ref in refs}):
        value = env.get(name)
        if not value:
            continue
        try:
            secret_key(value)
        except BadSecret as exc:
            problems.append(f"${name}: {exc}; signed alerts wait until it is fixed")
    return problems
