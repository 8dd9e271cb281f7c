"""The supervisor as child subreaper: orphans of jobs are reaped by it, not left as zombies to a
PID 1 that does not reap (this sandbox's does not: these tests fail without the reaper)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from cronplus.engine.orphans import OrphanReaper, reap_orphans
from cronplus.engine.runner import run_attempt
from tests.test_runner import TICK, make_job, our_zombies


def gone(pid: int) -> bool:
    """No process at all: not running, not a zombie anywhere."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def wait_for(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def test_an_orphan_of_a_job_is_adopted_and_reaped_when_it_exits(tmp_path: Path) -> None:
    child = tmp_path / "child.pid"

    async def main() -> None:
        reaper = OrphanReaper(asyncio.get_running_loop())
        assert reaper.start()
        try:
            result = await run_attempt(make_job(f"sleep 0.5 >/dev/null 2>&1 & echo $! > {child}"), run_id=1,
                                       attempt=1, scheduled_at=TICK, log_path=tmp_path / "run.log")
            assert result.exit_code == 0
            orphan = int(child.read_text())
            assert parent_of(orphan) == os.getpid()  # adopted, not handed to PID 1
            assert await wait_for(lambda: gone(orphan), timeout=1.5), "the orphan was left a zombie"
        finally:
            reaper.stop()

    asyncio.run(main())
    assert our_zombies() == []


def test_after_stop_orphans_go_to_pid_1_again(tmp_path: Path) -> None:
    child = tmp_path / "child.pid"

    async def main() -> None:
        reaper = OrphanReaper(asyncio.get_running_loop())
        assert reaper.start()
        reaper.stop()
        await run_attempt(make_job(f"sleep 2 >/dev/null 2>&1 & echo $! > {child}"), run_id=1, attempt=1,
                          scheduled_at=TICK, log_path=tmp_path / "run.log")
        assert parent_of(int(child.read_text())) != os.getpid()

    asyncio.run(main())


def test_a_timed_out_group_ends_without_waiting_out_the_kill_grace(tmp_path: Path) -> None:
    """Without a reaper, the killed grandchild stays a zombie in the group under a non-reaping
    PID 1, the group looks alive, and the run ends only after kill_grace (here 20 s)."""
    async def main() -> float:
        reaper = OrphanReaper(asyncio.get_running_loop())
        assert reaper.start()
        try:
            started = time.monotonic()
            result = await run_attempt(make_job("sleep 100 & wait", timeout=0.3, kill_grace=20.0), run_id=1,
                                       attempt=1, scheduled_at=TICK, log_path=tmp_path / "run.log")
            assert result.timed_out
            return time.monotonic() - started
        finally:
            reaper.stop()

    assert asyncio.run(main()) < 1.5
    assert our_zombies() == []


def test_the_reaper_never_takes_a_job_shells_status(tmp_path: Path) -> None:
    """Sweeps while shells exit: every run still gets its own exit code."""
    async def main() -> list[int | None]:
        reaper = OrphanReaper(asyncio.get_running_loop())
        assert reaper.start()
        try:
            async def one(i: int) -> int | None:
                result = await run_attempt(make_job(f"sleep 0.0{i % 5}; exit {i}"), run_id=i, attempt=1,
                                           scheduled_at=TICK, log_path=tmp_path / f"{i}.log")
                reap_orphans()
                return result.exit_code

            return await asyncio.gather(*(one(i) for i in range(30)))
        finally:
            reaper.stop()

    assert asyncio.run(main()) == list(range(30))
