"""Show secrets without showing them: webhook and ping URLs carry tokens in their path or query
(and sometimes a password in their authority). Nothing here raises, whatever the input: a
malformed URL is exactly when a traceback would otherwise print it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# scheme://authority then the rest up to whitespace or a quote: what a URL looks like in free
# text (an exception message, a traceback line, a log line).
_URL_IN_TEXT = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)([^\s/?#'\"<>]*)([^\s'\"<>]*)")


def redact_url(target: str | None) -> str:
    """`https://hooks.slack.com/services/T0/B0/XYZ` -> `https://hooks.slack.com/…`;
    `env:OPS_WEBHOOK` stays as it is (it names the secret, it is not the secret)."""
    if not target:
        return ""
    if target.startswith("env:"):
        return target
    try:
        parts = urlsplit(target)
        host = parts.hostname
    except ValueError:
        return "<invalid url>"
    if not parts.scheme or not host:
        return "<redacted>"
    try:
        port = parts.port
    except ValueError:  # out of range or not a number: show none rather than fail
        port = None
    if port:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}/…"


def redact_text(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of any secret (URL, token) in `text` by its redacted form."""
    for secret in sorted((s for s in secrets if s and len(s) >= 6), key=len, reverse=True):
        text = text.replace(secret, redact_url(secret) if "://" in secret else "<redacted>")
    return text


def _keep_host(m: re.Match[str]) -> str:
    host = m.group(2).rpartition("@")[2]  # user:password@ goes
    return f"{m.group(1)}{host}/…" if m.group(3) or host != m.group(2) else m.group(0)


def redact_urls_in(text: str) -> str:
    """Every URL in free text cut to its scheme and host: the last line of defence for texts
    that may quote a URL we do not know (a library's exception, a traceback)."""
    return _URL_IN_TEXT.sub(_keep_host, text)


# libpq's URL parameters that name where the database is, not how to get in: kept.
_DB_PLACE_PARAMS = ("host", "hostaddr", "port", "dbname", "user", "service")


def redact_db_url(url: str) -> str:
    """A libpq URL as it may be printed: `postgresql://ops:s3cret@db1:5432/cron?sslkey=...` ->
    `postgresql://ops@db1:5432/cron`. The password goes, and every query parameter but those
    of _DB_PLACE_PARAMS (`password`, `options`, `sslpassword`... may carry secrets)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<redacted>"
    # The last "@" ends the user info, even past a "/" or "?": a password with an unencoded
    # "/", "?" or "@" in it must not show (libpq refuses such a URL, and we say so with it).
    userinfo, at, place = rest.partition("#")[0].rpartition("@")
    user = userinfo.partition(":")[0].partition("/")[0].partition("?")[0]
    main, _, query = place.partition("?")
    hosts, slash, dbname = main.partition("/")
    path = slash + dbname
    kept = [part for part in query.split("&") if part.partition("=")[0] in _DB_PLACE_PARAMS]
    shown = f"{scheme}://{user}{at if user else ''}{hosts}{path}" + (f"?{'&'.join(kept)}" if kept else "")
    return shown if shown.isprintable() else "<redacted>"
