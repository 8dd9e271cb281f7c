"""Show secrets without showing them: webhook and ping URLs carry tokens in their path or query."""

from __future__ import annotations

from urllib.parse import urlsplit


def redact_url(target: str | None) -> str:
    """`https://hooks.slack.com/services/T0/B0/XYZ` -> `https://hooks.slack.com/…`;
    `env:OPS_WEBHOOK` stays as it is (it names the secret, it is not the secret)."""
    if not target:
        return ""
    if target.startswith("env:"):
        return target
    try:
        parts = urlsplit(target)
    except ValueError:
        return "<invalid url>"
    if not parts.scheme or not parts.hostname:
        return "<redacted>"
    host = parts.hostname
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}/…"


def redact_text(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of any secret (URL, token) in `text` by its redacted form."""
    for secret in sorted((s for s in secrets if s and len(s) >= 6), key=len, reverse=True):
        text = text.replace(secret, redact_url(secret) if "://" in secret else "<redacted>")
    return text
