"""The control socket and the single-supervisor lock, on real sockets and files."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from cronplus.errors import CronplusError
from cronplus.service import control


def test_a_second_lock_on_the_same_state_dir_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    first = control.SupervisorLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(CronplusError, match=rf"another cronplus supervisor is running .*pid {os.getpid()}"):
            control.SupervisorLock(tmp_path).acquire()
    finally:
        first.release()
    again = control.SupervisorLock(tmp_path)
    again.acquire()  # released locks can be taken again
    again.release()
    assert stat.S_IMODE(os.stat(tmp_path / "supervisor.lock").st_mode) == 0o600


def test_without_a_listener_a_request_says_no_supervisor(tmp_path: Path) -> None:
    with pytest.raises(control.NoSupervisor):
        next(control.request(tmp_path / "control.sock", {"cmd": "status"}))


class ServerThread:
    """A ControlServer on its own loop in a thread, answering with a small handler."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    async def handler(self, req: dict[str, Any], send: Any) -> None:
        await send({"ok": True, "echo": req})
        if req.get("wait"):
            await asyncio.sleep(0.05)
            await send({"done": True})

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = control.ControlServer(self.path, self.handler)
        self.loop.run_until_complete(self.server.start())
        self.ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_the_socket_is_0600_and_speaks_one_json_request_per_connection(tmp_path: Path) -> None:
    (tmp_path / "control.sock").write_text("stale")  # a socket left by a killed supervisor
    srv = ServerThread(tmp_path / "control.sock")
    try:
        assert stat.S_IMODE(os.stat(tmp_path / "control.sock").st_mode) == 0o600
        answers = list(control.request(tmp_path / "control.sock", {"cmd": "status"}))
        assert answers == [{"ok": True, "echo": {"cmd": "status"}}]
        answers = list(control.request(tmp_path / "control.sock", {"cmd": "trigger", "wait": True}))
        assert answers[-1] == {"done": True} and len(answers) == 2
    finally:
        srv.close()
    assert not (tmp_path / "control.sock").exists()


def test_a_malformed_request_gets_an_error_answer(tmp_path: Path) -> None:
    import socket

    srv = ServerThread(tmp_path / "control.sock")
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(tmp_path / "control.sock"))
            s.sendall(b"not json\n")
            data = s.makefile().readline()
        assert '"ok": false' in data and "bad request" in data
    finally:
        srv.close()


def test_did_you_mean_suggests_the_closest_job() -> None:
    assert control.suggest("trian", ["train", "deploy"]) == "train"
    assert control.suggest("zzz", ["train"]) is None
