"""A throw-away Redis server for the tests (the Celery broker of `queue=` jobs): one per session
(conftest's `redis_server`), or one of a test's own when it restarts it; Debian's `redis-server`
on PATH, listening on 127.0.0.1 at a free port, its files in a directory of the test session's,
append-only file on with `appendfsync always` (docs/workers.md's persistence: a restarted broker
keeps every queued attempt); stopped at the end.

Each test gets a database of its own (`redis_url`: a free one of the 16, flushed first).

No binary: a skip saying so, but in CI (CI=true) a failure, as is a server that does not start.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.pgserver import in_ci

START_TIMEOUT_S = 20.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, base: Path, binary: str) -> None:
        self.base = base
        self.binary = binary
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._next_db = 0

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.base),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
             "--logfile", str(self.base / "redis.log"), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.base / "redis.log")
                raise RuntimeError(f"redis-server did not start: {log.read_text()[-2000:] if log.exists() else ''}")
            time.sleep(0.05)

    def command(self, *words: str) -> bytes:
        """One command in Redis' inline protocol; the raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall((" ".join(words) + "\r\n").encode())
            return s.recv(65536)

    def ping(self) -> bool:
        try:
            return self.command("PING").startswith(b"+PONG")
        except OSError:
            return False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def fresh_url(self) -> str:
        db, self._next_db = self._next_db, (self._next_db + 1) % 16
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(f"SELECT {db}\r\nFLUSHDB\r\n".encode())
            s.recv(1024)
        return self.url(db)

    def queue_length(self, db: int, queue: str) -> int:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(f"SELECT {db}\r\nLLEN {queue}\r\n".encode())
            time.sleep(0.05)
            reply = s.recv(1024).decode()
        return int(reply.rsplit(":", 1)[1].strip())

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: redis-server syncs its append-only file and exits
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


def start_server(base: Path) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "no redis-server on PATH: apt-get install redis-server"
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    server = RedisServer(base, binary)
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        with contextlib.suppress(OSError):
            server.stop()
        pytest.fail(f"could not start the test Redis server: {exc}", pytrace=False)
    return server
