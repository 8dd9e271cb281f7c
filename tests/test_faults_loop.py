"""A scheduling loop that dies of an unexpected exception is never silent: the traceback at
ERROR, STATUS= says so, the daemon is told to stop (exit 1), and the watchdog is no longer fed.
A real asyncio task that raises, a real Notifier on a real AF_UNIX datagram socket."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.service.loopwatch import LoopWatch
from cronplus.service.systemd import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield sock, str(path)
    sock.close()


def drain(sock: socket.socket) -> list[str]:
    sock.setblocking(False)
    got = []
    try:
        while True:
            got.append(sock.recv(4096).decode())
    except BlockingIOError:
        return got


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_dead_scheduling_loop_is_logged_shown_in_status_stops_the_daemon_and_starves_the_watchdog(
        listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"})  # a ping every 10 ms
    records = Records()
    logger = logging.getLogger("cronplus")
    logger.addHandler(records)
    deaths: list[bool] = []

    async def main() -> None:
        pinged = asyncio.Event()
        watch = LoopWatch(notifier, on_death=lambda: deaths.append(True))

        async def loop() -> None:  # stands for Scheduler.serve: runs a while, then a bug
            await pinged.wait()
            {}["no such key"]  # noqa: B018 - the bug

        task = asyncio.create_task(loop())
        watch.watch(task)
        feeder = asyncio.create_task(watch.feed_watchdog())
        while "WATCHDOG=1" not in drain(sock):
            await asyncio.sleep(0.01)
        pinged.set()
        await asyncio.wait_for(feeder, timeout=30)  # the feeder stops by itself once the loop is dead
        assert watch.died == "scheduling loop died: KeyError: 'no such key'"

    try:
        asyncio.run(main())
    finally:
        logger.removeHandler(records)
    after = drain(sock)
    died = [m for m in after if m.startswith("STATUS=")]
    assert died == ["STATUS=scheduling loop died: KeyError: 'no such key'; stopping to be restarted"]
    assert "WATCHDOG=1" not in after[after.index(died[0]):], "no ping once the loop is dead"
    assert deaths == [True]
    errors = [r for r in records.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None, "logged once, with its traceback"
    assert "scheduling loop died: KeyError" in errors[0].getMessage()


def test_the_loop_ending_at_shutdown_is_not_a_death(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    deaths: list[bool] = []

    async def main() -> None:
        stopping = asyncio.Event()
        watch = LoopWatch(Notifier.from_env({"NOTIFY_SOCKET": path}), on_death=lambda: deaths.append(True),
                          stopping=stopping.is_set)

        async def loop() -> None:
            await stopping.wait()

        task = asyncio.create_task(loop())
        watch.watch(task)
        stopping.set()
        await task

    asyncio.run(main())
    assert deaths == [] and drain(sock) == []
