"""A real `cronplus run --http 127.0.0.1:0` for the web tests, and a plain HTTP client for it
(http.client: what a script or Prometheus would use, nothing of cronplus)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.test_daemon import Supervisor
from tests.waiting import wait_until


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # names lower case
    body: bytes

    def json(self) -> Any:
        assert self.headers["content-type"] == "application/json", self.headers
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class WebSupervisor(Supervisor):
    """A supervisor serving HTTP; `url` is read from <state>/http.address once it listens."""

    def __init__(self, tmp_path: Path, text: str, *extra: str, env: dict[str, str] | None = None,
                 http: str | None = "127.0.0.1:0") -> None:
        super().__init__(tmp_path, text, *(("--http", http) if http else ()), *extra, env=env)

    def wait_http(self) -> WebSupervisor:
        self.wait_ready()
        self.url = wait_until(self._address, what="the supervisor's http.address")
        return self

    def _address(self) -> str | None:
        try:
            return (self.state / "http.address").read_text().strip() or None
        except FileNotFoundError:
            assert self.proc.poll() is None, self.stderr
            return None

    @property
    def token(self) -> str:
        return (self.state / "http.token").read_text().strip()

    @property
    def origin(self) -> str:
        return self.url

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                body: bytes | str | None = None, timeout: float = 20) -> Reply:
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def trigger(self, job: str, *, auth: bool = True, origin: str | None = None, query: str = "") -> Reply:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        if origin is not None:
            headers["Origin"] = origin
        return self.request("POST", f"/api/v1/jobs/{job}/trigger{query}", headers=headers)

    def wait_final(self, run_id: int) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            run: dict[str, Any] = self.get(f"/api/v1/runs/{run_id}").json()
            return run if run["status"] != "running" else None

        return wait_until(final, what=f"run {run_id} to end")


def start_web(supervisors: list[Supervisor], tmp_path: Path, text: str, *extra: str,
              env: dict[str, str] | None = None) -> WebSupervisor:
    sup = WebSupervisor(tmp_path, text, *extra, env=env)
    supervisors.append(sup)
    return sup.wait_http()
