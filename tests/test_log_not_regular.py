"""A run's log path that is not a regular file (a device node or a FIFO in its place: planted, or
a log directory pointed at /dev) is refused: never chmod'ed, never written. Opening it and making
it 0600, as a log, turned a null device's mode to 0600; the machine's /dev/null was found so."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cronplus.engine.output import open_log


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_in_the_logs_place_is_refused_and_keeps_its_mode(tmp_path: Path) -> None:
    node = tmp_path / "job" / "7.log"
    node.parent.mkdir()
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a null device of our own
    os.chmod(node, 0o666)
    with pytest.raises(OSError, match="not a regular file"):
        open_log(node)
    assert stat.S_IMODE(node.stat().st_mode) == 0o666


def test_a_fifo_in_the_logs_place_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "job" / "8.log"
    fifo.parent.mkdir()
    os.mkfifo(fifo, 0o644)
    with pytest.raises(OSError):  # ENXIO (no reader, O_NONBLOCK) or "not a regular file"
        open_log(fifo)
    assert stat.S_IMODE(fifo.stat().st_mode) == 0o644


def test_a_regular_log_is_made_0600(tmp_path: Path) -> None:
    log = tmp_path / "job" / "9.log"
    log.parent.mkdir()
    log.write_text("old")
    log.chmod(0o644)
    os.close(open_log(log))
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and log.read_text() == ""
