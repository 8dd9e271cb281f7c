"""The shape of `cronplus run --http`'s server, as the daemon sees it (web/mount.HttpService
satisfies it; service does not import web, cli/run.py hands it over as `Settings.http`).

`bind(paths)` before anything starts (a bad address or token file is one line, no run begun);
`start(daemon) -> url` once the daemon's Commands exist, on the loop's thread; `stop()` in the
daemon's shutdown, after the scheduler's (from an executor thread: the server's threads may
wait on the loop meanwhile). It installs no signal handler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cronplus.paths import Paths


class HttpServing(Protocol):
    def bind(self, paths: Paths) -> None: ...
    def start(self, daemon: Any) -> str: ...  # service.daemon.Daemon (named here it would be a circle)
    def stop(self) -> None: ...
