"""One delivery attempt of one outbox row: resolve the target (`env:VAR`) and the secret, render
the payload, sign it, POST it with `requests` (explicit connect/read timeouts, no redirects),
and classify the answer as an Outcome (outcome.py); a `mail` row goes to maildelivery.py.
`send` never raises. Errors are redacted before they leave, since requests' exception texts
contain the URL. Which answers are retried and which fail: delivery.py's docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cronplus.alerts import payloads, signing
from cronplus.alerts.outcome import Outcome, Policy
from cronplus.redact import redact_text
from cronplus.status import AlertFormat

if TYPE_CHECKING:
    from cronplus.store.outbox import OutboxRow

DEFAULT_SECRET_ENV = "CRONPLUS_WEBHOOK_SECRET"
_TRANSIENT_4XX = {408, 425, 429}


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
