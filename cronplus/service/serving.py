"""The shape of `cronplus run --http`'s server, as the daemon sees it (web/mount.HttpService
satisfies it; service does not import web, cli/run.py hands it over as `Settings.http`), and
NO_HTTP, what runs without --http: nothing served, nothing of cronplus.web imported.

`start(daemon)` once the daemon's Commands exist, on the loop's thread, before READY=1: it reads
or makes the token, binds and serves, and logs its URL; a bad address or token file raises
CronplusError (one line, exit 1; no run has begun). `stop()` in the daemon's shutdown, after the
scheduler's, from an executor thread (the server's threads may wait on the loop meanwhile). It
installs no signal handler.
"""

from __future__ import annotations

from typing import Any, Protocol


class HttpServing(Protocol):
    def start(self, daemon: Any) -> None: ...  # service.daemon.Daemon (named here it would be a circle)
    def stop(self) -> None: ...


class _NoHttp:
    def start(self, daemon: Any) -> None:
        pass

    def stop(self) -> None:
        pass


NO_HTTP: HttpServing = _NoHttp()
