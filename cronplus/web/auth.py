"""Who may act, and from where: the HTTP token, the session cookie, the CSRF check, the address
rule (docs/web.md).

- The token is in `<state>/http.token` (or the file `--http-token-file` names): 0600, created
  with a random value at first start when missing, never printed nor logged. A token file that
  its group or others may read is refused (`TokenProblem`, one line naming it and the chmod).
- A request is `authenticated` when it carries `Authorization: Bearer TOKEN` or the session
  cookie. The cookie's value is an HMAC of the token (so it survives a restart, and changing
  the token logs every browser out); `POST /login` (form field `token`) sets it HttpOnly,
  SameSite=Strict, Path=/; `POST /logout` clears it. Comparisons are constant-time.
- CSRF: every request that is not GET/HEAD must come from this origin: its `Origin` (else its
  `Referer`) names the host the request was sent to. A request with neither header is let
  through only with a bearer token (curl, scripts: a browser always sends Origin on a POST, and
  a cross-site page cannot set Authorization without a CORS preflight, which we never grant).
- `address_problem(host, token_file)`: serving a non-loopback address needs an explicit
  `--http-token-file` (the operator chose who holds the token).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import stat
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

from cronplus.errors import CronplusError

TOKEN_FILE = "http.token"
COOKIE = "cronplus_session"
SAFE_METHODS = frozenset({"GET", "HEAD"})


class TokenProblem(CronplusError):
    """A token file that cannot be used: unreadable, empty, or readable by others."""


def load_token(path: Path) -> str:
    """The token in `path`, created (0600, 32 random bytes, URL-safe) when the file is missing."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    try:
        st = path.stat()
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenProblem(f"cannot read the HTTP token file {path}: {getattr(exc, 'strerror', exc)}") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise TokenProblem(f"the HTTP token file {path} may be read by others (mode {stat.S_IMODE(st.st_mode):o}):"
                           f" chmod 600 {path}")
    if not text:
        raise TokenProblem(f"the HTTP token file {path} is empty: put a token in it, or delete it to have one made")
    return text


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def address_problem(host: str, token_file: str | None) -> str | None:
    if is_loopback(host) or token_file:
        return None
    return (f"--http {host}: a non-loopback address serves other hosts; name the token file with"
            " --http-token-file FILE (its token is needed for every action)")


class Auth:
    """Checks a request's credentials and origin against one token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._session = hmac.new(self._token, b"cronplus web session", hashlib.sha256).hexdigest()

    def bearer_ok(self, headers: Mapping[str, str]) -> bool:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self._token)

    def cookie_ok(self, headers: Mapping[str, str]) -> bool:
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except CookieError:
            return False
        morsel = cookie.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self._session.encode())

    def authenticated(self, headers: Mapping[str, str]) -> bool:
        return self.bearer_ok(headers) or self.cookie_ok(headers)

    def token_ok(self, token: str) -> bool:
        return hmac.compare_digest(token.strip().encode(), self._token)

    def session_cookie(self) -> str:
        return f"{COOKIE}={self._session}; HttpOnly; SameSite=Strict; Path=/"

    @staticmethod
    def cleared_cookie() -> str:
        return f"{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"

    def cross_site(self, method: str, headers: Mapping[str, str]) -> str | None:
        """Why a state-changing request is refused as cross-site, or None to let it through."""
        if method in SAFE_METHODS:
            return None
        host = headers.get("host", "").lower()
        origin = headers.get("origin")
        if origin is not None:
            if origin == "null" or urlsplit(origin).netloc.lower() != host:
                return "cross-site request refused: its Origin is not this server"
            return None
        referer = headers.get("referer")
        if referer is not None:
            return None if urlsplit(referer).netloc.lower() == host else "cross-site request refused: its Referer is not this server"
        if self.bearer_ok(headers):
            return None
        return "request refused: no Origin or Referer header (send the token as Authorization: Bearer TOKEN)"
