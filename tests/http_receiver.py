"""A real HTTP receiver for alert tests: stdlib ThreadingHTTPServer on 127.0.0.1, port 0, in a
thread. It records every request and can be told to misbehave: fail the first N requests, answer
429 with Retry-After, answer a fixed status (404, 400, ...), hang, or be down (and come back on
the same port).

    with Receiver() as rx:
        rx.fail_first(2)            # 500 twice, then 200
        url = rx.url("/hook")
        ...
        rx.wait_for(3)              # the requests, once three have arrived
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float  # time.monotonic() on arrival
    answered: int  # the status we answered

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: Receiver


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle + delayed ACK
    # would add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        rx = self.server.receiver  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, hang = rx._decide()
        # Recorded on arrival (before any hang), so a test can see a request that is being held.
        rx._record(Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                            body, time.monotonic(), status))
        if hang:
            rx._released.wait(hang)
        payload = b"ok" if status < 300 else b"nope"
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass

    do_PUT = do_POST


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.Condition()
        self._fail_first = 0
        self._fail_status = 500
        self._fail_headers: dict[str, str] = {}
        self._status = 200
        self._hang: float = 0.0
        self._released = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self.start()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Listen (again, on the same port after a stop)."""
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.receiver = self
        self.port = server.server_address[1]
        self._server = server
        self._released.clear()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Go down: stop listening (connections are refused) until start()."""
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # -- behaviour ----------------------------------------------------------------------------
    def fail_first(self, n: int, status: int = 500, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._fail_first, self._fail_status, self._fail_headers = n, status, dict(headers or {})

    def rate_limit_first(self, n: int, retry_after: str) -> None:
        self.fail_first(n, 429, {"Retry-After": retry_after})

    def always(self, status: int) -> None:
        with self._lock:
            self._status = status

    def hang(self, seconds: float) -> None:
        """Hold every request `seconds` (or until release()) before answering."""
        with self._lock:
            self._hang = seconds
            self._released.clear()

    def release(self) -> None:
        with self._lock:
            self._hang = 0.0
        self._released.set()

    def _decide(self) -> tuple[int, dict[str, str], float]:
        with self._lock:
            if self._fail_first > 0:
                self._fail_first -= 1
                return self._fail_status, self._fail_headers, self._hang
            return self._status, {}, self._hang

    # -- what arrived ---------------------------------------------------------------------------
    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)
            self._lock.notify_all()

    def wait_for(self, n: int, timeout: float = 5.0, *, ok_only: bool = False) -> list[Recorded]:
        """Block until `n` requests (answered 2xx if ok_only) arrived; AssertionError on timeout."""
        deadline = time.monotonic() + timeout

        def matching() -> list[Recorded]:
            return [r for r in self.requests if not ok_only or r.answered < 300]

        with self._lock:
            while len(matching()) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} requests, got {len(matching())}: {self.requests}")
                self._lock.wait(left)
            return matching()

    def delivered(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.answered < 300]
