"""What `cronplus run --http` hands the supervisor: `HttpService`, which the daemon starts once
its Commands exist and stops in its shutdown (service/daemon.HttpServing is its shape; service
does not import web).

- `parse_address("HOST:PORT")` (`[::1]:8080` for IPv6; port 0 picks a free one) raises UsageError.
- `HttpService(host, port, token_file=None)` is made by cli/run.py before the supervisor starts.
- `start(daemon)` (service/serving.py: before READY=1, no run begun) reads or creates the token
  (auth.load_token), binds (a bad token file or an address in use: CronplusError, one line),
  serves (LiveSite on the running loop), logs the URL and writes it to `<state>/http.address`
  (how a test or a script finds port 0's choice); `stop()` stops serving and removes the file.
- The routes: api.ROUTES, metrics.ROUTES, and the pages' (`cronplus.web.pages.routes.ROUTES`
  when that module exists).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from cronplus.errors import UsageError

if TYPE_CHECKING:
    from cronplus.service.daemon import Daemon
    from cronplus.web.http import Route
    from cronplus.web.server import WebServer

log = logging.getLogger("cronplus")
ADDRESS_FILE = "http.address"


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise UsageError(f"--http takes HOST:PORT (e.g. 127.0.0.1:8080), not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--http {text}: the port must be a number from 0 to 65535")
    return host, int(port)


def routes() -> list[Route]:
    from cronplus.web import api, metrics

    found = [*api.ROUTES, *metrics.ROUTES]
    if importlib.util.find_spec("cronplus.web.pages") and importlib.util.find_spec("cronplus.web.pages.routes"):
        found += importlib.import_module("cronplus.web.pages.routes").ROUTES
    return found


class HttpService:
    def __init__(self, host: str, port: int, *, token_file: str | None = None, health_timeout: float = 5.0) -> None:
        self.host, self.port = host, port
        self.token_file = token_file
        self.health_timeout = health_timeout  # /healthz: a loop that does not answer within it is stuck
        self.server: WebServer | None = None
        self._address_file: Path | None = None

    def start(self, daemon: Daemon) -> None:
        """Token, bind, serve (LiveSite on the running loop); the URL is logged and written to
        `<state>/http.address`."""
        from cronplus.web.auth import TOKEN_FILE, Auth, load_token
        from cronplus.web.server import WebServer
        from cronplus.web.site import LiveSite

        paths = daemon.paths
        token = load_token(Path(self.token_file) if self.token_file else paths.state_dir / TOKEN_FILE)
        auth = Auth(token)
        self.server = WebServer(self.host, self.port, routes(), auth)
        site = LiveSite(daemon, asyncio.get_running_loop(), auth=auth, health_timeout=self.health_timeout)
        url = self.server.start(site)
        self._address_file = paths.state_dir / ADDRESS_FILE
        tmp = self._address_file.with_suffix(".tmp")
        tmp.write_text(url + "\n")
        tmp.replace(self._address_file)
        log.info("http: serving on %s", url)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self._address_file is not None:
            self._address_file.unlink(missing_ok=True)
