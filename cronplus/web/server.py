"""The HTTP server of `cronplus run --http HOST:PORT`: the stdlib's ThreadingHTTPServer in threads
of its own, so serving never delays a tick (the event loop never reads a socket or a database
for it), routing to `Route` handlers (http.py), auth and CSRF (auth.py), security headers.

Why the stdlib: the supervisor serves a handful of people and one Prometheus, on loopback by
default; a thread per request with a read-only store reader each is enough (bench/
measures it), and an embedded ASGI server would bring its own event loop and signal handlers
(uvicorn's took SIGTERM from the supervisor). The server installs no signal handler: the
daemon stops it (`stop()`) in its own shutdown, once.

Contract:
- `WebServer(host, port, routes, auth)` binds at construction (an address in use is a
  CronplusError naming it, before the supervisor starts anything); `start(site)` serves in a daemon
  thread and returns the URL (port 0 picks a free port: the URL has the bound one); `stop()`
  stops accepting, tells streams to end (`site.closing`), waits up to 2 s for the responses in
  progress to end (a followed output gets its last chunk), and closes the socket.
- Each request gets a `Request` (path percent-decoded, route parameters decoded per segment,
  so a job name may hold `/` as %2F) and a Site of its own (`site.for_request()`, closed after
  the response, streamed ones included). `Route.action`: 401 without a token or session
  cookie; any non-GET request with a foreign Origin/Referer: 403 (auth.Auth.cross_site).
- Errors are JSON `{"error": ...}` under /api/, an escaped HTML page elsewhere, plain text for
  /metrics and /healthz; a handler's exception is a 500 logged with its traceback.
- Every response carries a CSP (no inline script: pages hash what they inline and set their
  own CSP header, which is kept), `X-Content-Type-Options: nosniff`, `frame-ancestors 'none'`
  and `X-Frame-Options: DENY`, `Referrer-Policy: same-origin`; API replies `Cache-Control: no-store`.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from cronplus.errors import CronplusError
from cronplus.web.http import Request, Response, Route, Site

if TYPE_CHECKING:
    from cronplus.web.auth import Auth

log = logging.getLogger("cronplus")

STOP_WAIT_S = 2.0  # at shutdown, how long responses in progress may take to end
MAX_BODY = 64 * 1024  # a login form or a trigger's JSON; nothing here takes uploads
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
_PARAM = re.compile(r"^\{(\w+)\}$")


class RequestSite(Site, Protocol):
    def close(self) -> None: ...


class SiteSource(Protocol):
    """What the server needs of the concrete site (web/site.py LiveSite)."""

    closing: threading.Event

    def for_request(self) -> RequestSite: ...


def error(path: str, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error in the caller's language: JSON under /api/, plain text for machines' endpoints,
    an escaped HTML page for a person. A URL's undecodable bytes (kept as surrogates) show as \\xNN."""
    message = message.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if path.startswith("/api/"):
        body = json.dumps({"error": message, "status": status}).encode()
        return Response(status=status, body=body, content_type="application/json", headers=dict(headers or {}))
    if path in ("/metrics", "/healthz"):
        return Response(status=status, body=(message + "\n").encode(), content_type="text/plain; charset=utf-8",
                        headers=dict(headers or {}))
    text = html.escape(message)
    page = (f"<!doctype html><html lang=en><meta charset=utf-8><title>{status} cronplus</title>"
            f"<h1>{status}</h1><p>{text}</p><p><a href=\"/\">jobs</a></p></html>")
    return Response(status=status, body=page.encode(), headers=dict(headers or {}))


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = [(route, route.pattern.strip("/").split("/")) for route in routes]

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | tuple[None, list[str]]:
        """The route and its decoded parameters, or None and the methods the path allows."""
        segments = raw_path.strip("/").split("/")
        allowed: list[str] = []
        for route, parts in self.routes:
            params = _match(parts, segments)
            if params is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, params
            allowed.append(route.method)
        return None, allowed


def _loopback_host(host: str) -> bool:
    """A Host header naming a loopback server: `localhost` or an IP address, any port."""
    import ipaddress

    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _match(parts: list[str], segments: list[str]) -> dict[str, str] | None:
    if len(parts) != len(segments):
        return None
    params: dict[str, str] = {}
    for part, segment in zip(parts, segments, strict=True):
        name = _PARAM.match(part)
        if name:
            if not segment:
                return None
            params[name.group(1)] = unquote(segment, errors="surrogateescape")
        elif part != segment:
            return None
    return params


class WebServer:
    site: SiteSource

    def __init__(self, host: str, port: int, routes: Iterable[Route], auth: Auth) -> None:
        from cronplus.web.auth import is_loopback

        self.router = Router(routes)
        self.auth = auth
        self.loopback = is_loopback(host)
        handler = type("Handler", (_Handler,), {"web": self})
        try:
            self.httpd = _HTTPServer((host, port), handler)
        except OSError as exc:
            raise CronplusError(f"--http {host}:{port}: cannot listen there: {exc.strerror or exc}") from None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._serving: set[threading.Thread] = set()  # request threads still answering

    @property
    def url(self) -> str:
        host, port = str(self.httpd.server_address[0]), self.httpd.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self, site: SiteSource) -> str:
        self.site = site
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="cronplus-http", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop accepting, let the responses in progress end (a followed output ends at once:
        `closing`), waiting at most STOP_WAIT_S for a slow client, then close the socket."""
        if self._thread is not None:
            self.site.closing.set()
            self.httpd.shutdown()
            self._thread.join(timeout=5.0)
            deadline = time.monotonic() + STOP_WAIT_S
            with self._lock:
                serving = list(self._serving)
            for thread in serving:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.httpd.server_close()

    def serving(self, thread: threading.Thread, on: bool) -> None:
        with self._lock:
            if on:
                self._serving.add(thread)
            else:
                self._serving.discard(thread)

    def respond(self, method: str, target: str, headers: Mapping[str, str], body: bytes,
                site: RequestSite) -> Response:
        parts = urlsplit(target)
        raw_path = parts.path or "/"
        path = unquote(raw_path, errors="surrogateescape")
        route, found = self.router.match(method, raw_path)
        if route is None:
            if found:
                return error(path, 405, f"{method} is not allowed here", {"Allow": ", ".join(sorted(set(found)))})
            return error(path, 404, f"nothing at {path}")
        assert isinstance(found, dict)
        if self.loopback and not _loopback_host(headers.get("host", "")):
            # DNS rebinding: a page of evil.example resolved to 127.0.0.1 would read the API
            # from the user's browser; on loopback only an address or localhost names us.
            return error(path, 403, "this server answers to its address or localhost only (Host header)")
        refusal = self.auth.cross_site(method, headers)
        if refusal is not None:
            return error(path, 403, refusal)
        authenticated = self.auth.authenticated(headers)
        if route.action and not authenticated:
            return error(path, 401, "this action needs the token: Authorization: Bearer TOKEN"
                         " (the token is in the supervisor's state directory, http.token)",
                         {"WWW-Authenticate": 'Bearer realm="cronplus"'})
        request = Request(method="GET" if method == "HEAD" else method, path=path,
                          query=parse_qs(parts.query, keep_blank_values=True), headers=headers, body=body,
                          params=found, authenticated=authenticated)
        try:
            return route.handler(request, site)
        except CronplusError as exc:  # the loop did not answer, no history yet: said, not a bug
            return error(path, 503, str(exc))


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 64  # listen backlog: a page's assets and a scrape arriving together
    daemon_threads = True  # a client following a run's output must not hold the supervisor's exit
    block_on_close = False


class _Handler(BaseHTTPRequestHandler):
    web: WebServer
    protocol_version = "HTTP/1.1"
    def version_string(self) -> str:
        return "cronplus"
    timeout = 60  # a client that sends nothing holds only its own thread, and not for long

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815

    def _serve(self) -> None:
        method = self.command.upper()
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = urlsplit(self.path).path
        site = self.web.site.for_request()
        self.web.serving(threading.current_thread(), True)
        try:
            length = int(headers.get("content-length") or 0)
            if length < 0 or length > MAX_BODY:
                response = error(path, 413, f"request body over {MAX_BODY} bytes")
                self.close_connection = True
            else:
                body = self.rfile.read(length) if length else b""
                try:
                    response = self.web.respond(method, self.path, headers, body, site)
                except Exception:
                    log.exception("http: %s %s failed", method, path)
                    response = error(path, 500, "internal error (logged by the supervisor)")
            self._send(response, head=method == "HEAD", api=path.startswith("/api/"))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except ValueError:
            self._send(error(path, 400, "bad Content-Length"), head=False, api=path.startswith("/api/"))
        finally:
            site.close()
            self.web.serving(threading.current_thread(), False)

    def _send(self, response: Response, *, head: bool, api: bool) -> None:
        self.send_response(response.status)
        headers = {**SECURITY_HEADERS, **response.headers}
        if api:
            headers.setdefault("Cache-Control", "no-store")
        headers["Content-Type"] = response.content_type
        body = response.body
        streamed = not isinstance(body, bytes)
        if streamed:
            headers["Transfer-Encoding"] = "chunked"
        else:
            assert isinstance(body, bytes)
            headers["Content-Length"] = str(len(body))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            _close(body)
            return
        if isinstance(body, bytes):
            self.wfile.write(body)
            return
        try:
            for chunk in body:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        finally:
            _close(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        # Requests are not logged: a URL may carry what a user pasted; errors are (above).
        pass


def _close(body: bytes | Iterator[bytes]) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()
