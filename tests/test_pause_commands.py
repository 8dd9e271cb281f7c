"""The command facade's pause and resume (service/commands.py) over a real Scheduler on a FakeClock,
and its snapshot's `running` count (only runs whose process runs)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from cronplus.engine.runstate import RunState
from cronplus.engine.scheduler import Scheduler
from cronplus.model import Crontab
from cronplus.service.commands import Commands, Paused, PauseRefusal
from tests.test_scheduler import World, run, ts


@dataclass
class FakePaths:  # only what the facade reads of paths.Paths
    crontab: Path


class Sup:
    """What service/commands.Supervisor needs of the daemon, around a World's scheduler."""

    def __init__(self, w: World) -> None:
        self.paths = FakePaths(w.tmp_path / "crontab")
        self.crontab: Crontab = w.sched.crontab
        self.crontab_missing = False
        self.scheduler: Scheduler = w.sched

    def reload(self) -> str | None:
        return None


def test_a_run_waiting_for_its_retry_is_not_counted_running(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a retries=1 retry-delay=1h\n* * * * * false\n", ts("2026-01-01T12:00:30"))
        commands = Commands(Sup(w))
        w.clock.jump(ts("2026-01-01T12:01:00") - w.clock.time())
        w.sched.step(w.clock.time())  # (not World.step_at: it steps until no run is started)
        for _ in range(500):
            if [r.state for r in w.sched.runs] == [RunState.RETRY_WAIT]:
                break
            await asyncio.sleep(0.01)
        snapshot = commands.status()
        assert [r.state for r in snapshot.runs] == ["active"]  # the socket's word, as before
        assert snapshot.running == w.sched.running() == 0
        await w.sched.shutdown(1.0)  # the retry will not happen: its ended attempt becomes final

    run(main())


def test_pause_of_an_unknown_job_changes_nothing_and_names_the_closest(tmp_path: Path) -> None:
    w = World(tmp_path, "# cronplus: name=backup\n* * * * * true\n", ts("2026-01-01T12:00:30"))
    commands = Commands(Sup(w))
    refusal = commands.pause(["backpu", "backup"], by="alice")
    assert isinstance(refusal, PauseRefusal)
    assert refusal.to_json() == {"ok": False, "error": "no job named 'backpu'", "suggestion": "backup"}
    assert w.sched.ticker.pauses.of("backup") is None
    assert commands.pause(["backup"], by="alice") == Paused(jobs=("backup",))
    snap = commands.status()
    assert snap.jobs[0].paused is not None and snap.jobs[0].paused.by == "alice"
    assert commands.resume(None) == Paused(jobs=(), resumed=True)  # --all lifts the global pause only
    assert w.sched.ticker.pauses.of("backup") is not None
    assert commands.resume(["backup"]) == Paused(jobs=("backup",), resumed=True)
    assert commands.status().jobs[0].paused is None
