"""The output cap through real jobs: the head/tail split at its edges, a tail ring that wraps
many times, odd caps, and a log file that cannot take more (the job must still finish)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from test_runner import TICK, make_job

from cronplus.engine.output import RING_SIZE, OutputPump, marker_line
from cronplus.engine.runner import AttemptResult, run_attempt


def run(command: str, log: Path, cap: int) -> AttemptResult:
    return asyncio.run(run_attempt(make_job(command, max_log_size=cap), run_id=1, attempt=1, scheduled_at=TICK, log_path=log))


def seq_bytes(n: int) -> bytes:
    return "".join(f"{i}\n" for i in range(1, n + 1)).encode()


def capped(data: bytes, cap: int) -> bytes:
    """What the log must hold for `data` under `cap` (the documented split)."""
    if len(data) <= cap:
        return data
    tail = min(cap // 4, 1024 * 1024)
    head = cap - tail
    return data[:head] + marker_line(len(data) - cap) + (data[-tail:] if tail else b"")


@pytest.mark.parametrize("cap", [0, 1, 3, 4, 5, 1000, 65536, 4 * 1024 * 1024])
def test_the_log_holds_head_marker_and_tail_for_any_cap(tmp_path: Path, cap: int) -> None:
    data = seq_bytes(900_000)  # ~6.3 MB: the tail ring wraps several times with uneven reads
    assert len(data) > RING_SIZE * 5
    result = run("seq 1 900000", tmp_path / "run.log", cap)
    assert result.exit_code == 0
    assert result.output_bytes == len(data) and result.truncated
    assert (tmp_path / "run.log").read_bytes() == capped(data, cap)


def test_output_exactly_at_the_cap_is_not_truncated(tmp_path: Path) -> None:
    data = seq_bytes(1000)
    result = run("seq 1 1000", tmp_path / "run.log", len(data))
    assert not result.truncated
    assert (tmp_path / "run.log").read_bytes() == data


def test_one_byte_over_the_cap_drops_exactly_one_byte(tmp_path: Path) -> None:
    data = seq_bytes(1000)
    result = run("seq 1 1000", tmp_path / "run.log", len(data) - 1)
    assert result.truncated and result.output_bytes == len(data)
    assert (tmp_path / "run.log").read_bytes() == capped(data, len(data) - 1)
    assert b"[cronplus: 1 bytes dropped]" in (tmp_path / "run.log").read_bytes()


def test_slow_small_writes_over_the_cap_keep_the_last_lines(tmp_path: Path) -> None:
    # Many tiny reads, some after the head filled: the tail must still be the last bytes.
    command = "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done"
    data = "".join(f"line-{i}\n" for i in range(300)).encode()
    result = run(command, tmp_path / "run.log", 400)
    assert (tmp_path / "run.log").read_bytes() == capped(data, 400)
    assert result.output_bytes == len(data)


def test_a_symlinked_log_path_is_refused_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious")
    os.symlink(target, tmp_path / "run.log")
    result = run("echo hi", tmp_path / "run.log", 1 << 20)
    assert result.error is not None and result.error.startswith("cannot open log")
    assert result.exit_code is None and target.read_text() == "precious"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_log_that_cannot_take_more_still_drains_the_job_to_its_end(tmp_path: Path) -> None:
    size = 5 * 1024 * 1024

    async def main() -> tuple[int, OutputPump]:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        log_fd = os.open("/dev/full", os.O_WRONLY | os.O_CLOEXEC)  # every write: ENOSPC
        proc = await asyncio.create_subprocess_exec("head", "-c", str(size), "/dev/zero", stdout=write_fd)
        os.close(write_fd)
        pump = OutputPump(read_fd, log_fd, 1 << 30)
        pump.start(asyncio.get_running_loop())
        assert pump.eof is not None
        await asyncio.wait_for(pump.eof, 10)
        code = await proc.wait()
        pump.close()
        os.close(log_fd)
        return code, pump

    code, pump = asyncio.run(main())
    assert code == 0
    assert pump.total == size and pump.dropped > 0
    assert isinstance(pump.error, OSError)
