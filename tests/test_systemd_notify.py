"""sd_notify against real AF_UNIX datagram sockets: a path in tmp_path and an abstract name."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.service.systemd import Notifier, format_duration, format_status


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield sock, str(path)
    sock.close()


@pytest.fixture
def abstract_listener() -> Iterator[tuple[socket.socket, str]]:
    name = f"cronplus-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    yield sock, "@" + name
    sock.close()


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_ready_sends_ready_1_to_a_socket_path(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path})
    assert notifier.ready() is True
    assert received(sock) == "READY=1"


def test_an_at_sign_address_reaches_the_abstract_namespace(abstract_listener: tuple[socket.socket, str]) -> None:
    sock, address = abstract_listener
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address})
    assert notifier.stopping() is True
    assert received(sock) == "STOPPING=1"


def test_every_state_message_has_the_documented_wording(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path})
    notifier.status("3 jobs, 0 running, next: backup in 4min")
    assert received(sock) == "STATUS=3 jobs, 0 running, next: backup in 4min"
    notifier.watchdog()
    assert received(sock) == "WATCHDOG=1"
    notifier.stopping()
    assert received(sock) == "STOPPING=1"
    notifier.ready()
    assert received(sock) == "READY=1"


def test_reloading_carries_the_current_monotonic_time_in_microseconds(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier.from_env({"NOTIFY_SOCKET": path}).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = received(sock).split("\n")
    assert first == "RELOADING=1"
    name, value = second.split("=")
    assert name == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_a_newline_in_status_text_cannot_inject_another_assignment(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    Notifier.from_env({"NOTIFY_SOCKET": path}).status("evil\nREADY=1")
    assert received(sock) == "STATUS=evil READY=1"


def test_without_notify_socket_every_call_is_a_silent_no_op() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert [notifier.ready(), notifier.reloading(), notifier.stopping(), notifier.status("x"), notifier.watchdog()] == [
        False
    ] * 5
    assert notifier.watchdog_interval() is None


def test_a_socket_that_went_away_makes_sends_fail_quietly(tmp_path: Path) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens.sock")})
    assert notifier.enabled
    assert notifier.ready() is False  # ENOENT, logged at debug, not raised


def test_a_full_receive_queue_does_not_block_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "slow.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        notifier = Notifier.from_env({"NOTIFY_SOCKET": str(path)})
        sent = 0
        while notifier.status("x" * 1000):  # nobody reads: the queue fills up
            sent += 1
            assert sent < 100_000
        started = time.monotonic()
        assert notifier.watchdog() is False
        assert time.monotonic() - started < 2  # gave up after the send timeout (0.5 s)
    finally:
        sock.close()


def test_the_socket_is_not_inherited_by_child_processes(listener: tuple[socket.socket, str]) -> None:
    _, path = listener
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path})
    notifier.ready()
    assert notifier._sock is not None and not notifier._sock.get_inheritable()
    notifier.close()


def test_watchdog_interval_is_half_of_watchdog_usec_for_our_own_pid() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_env(env).watchdog_interval() == 30.0
    del env["WATCHDOG_PID"]
    assert Notifier.from_env(env).watchdog_interval() == 30.0


def test_watchdog_interval_is_none_when_the_watchdog_is_meant_for_another_process() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier.from_env(env).watchdog_interval() is None


@pytest.mark.parametrize("usec", ["", "0", "soon", "-5"])
def test_watchdog_interval_is_none_for_a_missing_or_bad_watchdog_usec(usec: str) -> None:
    assert Notifier.from_env({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": usec}).watchdog_interval() is None


def test_an_unsupported_address_family_disables_notification() -> None:
    assert not Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "now"), (-3, "now"), (1, "1s"), (45, "45s"), (59.4, "59s"), (60, "1min"), (240, "4min"),
     (269, "4min"), (3599, "1h"), (3600, "1h"), (7500, "2h5min"), (86400, "1d"), (3 * 86400 + 4 * 3600, "3d4h")],
)
def test_durations_are_compact_and_rounded(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_status_text_reads_like_the_example_in_the_operations_issue() -> None:
    assert format_status(12, 1, "backup", 240) == "12 jobs, 1 running, next: backup in 4min"


def test_status_text_handles_one_job_nothing_scheduled_and_an_overdue_run() -> None:
    assert format_status(1, 0, None, None) == "1 job, 0 running, nothing scheduled"
    assert format_status(2, 2, "sync", 0) == "2 jobs, 2 running, next: sync now"
    assert format_status(0, 0, "x", None) == "0 jobs, 0 running, next: x"
