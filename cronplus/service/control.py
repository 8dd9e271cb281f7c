"""The control channel of a running supervisor: a unix socket `<state>/control.sock`, mode 0600
(0600, in the 0700 state dir), speaking JSON lines. Also the single-supervisor lock. What each
command does is service/commands.py's (the Commands facade and its dispatch table).

One request per connection (one JSON object on one line); the answers are JSON lines, then the
server closes the connection:

    {"cmd": "trigger", "job": NAME, "wait": bool, "force": bool}
        -> {"ok": true, "run_id": N | null (queued), "notes": [...]}
        and, with wait, an event per retry / run end of the chain (chain.py), then
        {"done": true, **run_json(run N), "status": the chain's worst status}
        unknown job -> {"ok": false, "error": ..., "suggestion": NAME | null}
        refused by overlap= / after= -> {"ok": false, "error": ..., "refused": true}
    {"cmd": "status"} -> {"ok": true, "jobs": [...], "runs": [...], "pid": ...}
    {"cmd": "reload"} -> once the reload is done (RELOADING=1 ... READY=1 sent):
        {"ok": true, "jobs": N}, or {"ok": false, "error": TEXT, "jobs": N} when refused, where
        TEXT has one `FILE:LINE:COL: message` line per error and N counts the jobs in effect
    {"cmd": "pause" | "resume", "jobs": [NAME, ...] | null (all: the global pause), "by": USER}
        -> {"ok": true, "jobs": [...], "all": bool, "resumed": bool}, persisted before it answers;
        an unknown job (nothing changed) -> {"ok": false, "error": ..., "suggestion": NAME | null}
    {"cmd": "backfill", "job": NAME, "from": UNIX, "to": UNIX, "parallel": N, "rerun": bool, "yes": bool}
        -> the plan, the ticks' events, {"done": true, ...} (service/backfill.py states it)
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any

from cronplus.errors import CronplusError

LOCK_NAME = "supervisor.lock"


class SupervisorLock:
    """fcntl.flock on <state>/supervisor.lock: one supervisor per state dir. The lock dies with
    the process (kill -9 included), so no stale-pid guessing is needed."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self, *, what: str = "supervisor") -> None:
        import fcntl

        try:
            # O_NOFOLLOW: a symlink planted here must not make us truncate the file it points to.
            # Mode 0600 by os.open's argument, never by os.umask: the umask is the whole process's,
            # and a thread creating a file meanwhile (the web server's, a test's) would get ours.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            f = os.fdopen(fd, "r+")  # held open: the flock lives as long as the file
        except PermissionError:
            raise
        except OSError as exc:  # ELOOP: a symlink in place of the lock
            raise CronplusError(f"cannot open {self.path}: {exc.strerror} (remove it if it is a symlink)") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise CronplusError(
                f"another cronplus supervisor is running on state dir {self.path.parent} (pid {holder}); "
                f"refusing to start a second {what}") from None
        try:  # the pid is for the message above; on a full disk the lock alone must do
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
        except OSError:
            f.truncate(0)  # a half-written pid would name the wrong process
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


Handler = Callable[[dict[str, Any], Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


class ControlServer:
    """Serves the socket on the running asyncio loop; each request goes to the supervisor's
    handler, which answers through `send` (possibly more than once, for trigger --wait)."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = Path(path)
        self.handler = handler
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()  # a stale socket: we hold the lock, so nobody serves it
        # No os.umask (process-wide, see acquire): the state dir is 0700 (filechecks), so nobody
        # else reaches the socket before the chmod.
        self._server = await asyncio.start_unix_server(self._client, path=str(self.path))
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.path.unlink(missing_ok=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def send(obj: dict[str, Any]) -> None:
            writer.write((json.dumps(obj) + "\n").encode())
            await writer.drain()

        # One request per connection; the server closes it when the answer is complete.
        try:
            line = await reader.readline()
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                await send({"ok": False, "error": f"bad request: {exc}"})
                return
            await self.handler(request, send)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            logging.getLogger("cronplus").exception("control request failed")
        finally:
            writer.close()


def suggest(name: str, names: list[str]) -> str | None:
    close = difflib.get_close_matches(name, names, n=1)
    return close[0] if close else None


class NoSupervisor(Exception):
    """Nothing listens on the control socket."""


def request(path: Path, message: dict[str, Any], *, timeout: float | None = 10.0) -> Iterator[dict[str, Any]]:
    """Send one request; yield the answers (one, or more for trigger --wait) until the server
    closes or the caller stops iterating. Raises NoSupervisor when nobody listens."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2.0)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, NotADirectoryError, ConnectionRefusedError) as exc:
            raise NoSupervisor(str(exc)) from None  # no socket there (a state "dir" that is a file)
        except OSError as exc:  # connect() names no path: say which one
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        sock.settimeout(timeout)
        sock.sendall((json.dumps(message) + "\n").encode())
        with sock.makefile("r", encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)
    finally:
        sock.close()
