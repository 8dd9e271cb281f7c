"""chain.py inside the real Scheduler (FakeClock, real processes and History): the events of the
runs one manual trigger caused, and overlap= on a manual run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cronplus.engine.chain import TriggerRefused
from tests.test_scheduler import World, run, ts


async def follow(w: World, name: str, *, force: bool = False) -> tuple[Any, list[dict[str, Any]]]:
    """Trigger `name` with the scheduler served; its chain's events, the done message last."""
    serve = asyncio.get_running_loop().create_task(w.sched.serve())
    try:
        started = w.sched.trigger(name, force=force)
        events = [e async for e in started.chain.events()]
        return started, events
    finally:
        w.sched.stopping = True
        w.sched.wake()
        await serve


def test_a_diamond_chain_ends_once_every_downstream_run_is_final(tmp_path: Path) -> None:
    text = ("# cronplus: name=a\n0 3 * * 0 true\n# cronplus: name=b after=a\n0 3 * * 0 true\n"
            "# cronplus: name=c after=a\n0 3 * * 0 exit 2\n"
            "# cronplus: name=d after=b,c trigger=all_done\n0 3 * * 0 true\n"
            "# cronplus: name=other\n0 3 * * 0 true\n")

    async def main() -> None:
        w = World(tmp_path, text, ts("2026-01-01T12:00:30"))
        _, events = await follow(w, "a")
        ended = [(e["job"], e["status"]) for e in events if e.get("event") == "ended"]
        assert ended[0] == ("a", "success") and ended[-1] == ("d", "success")
        assert sorted(ended[1:3]) == [("b", "success"), ("c", "failed")] and len(ended) == 4
        assert events[-1]["done"] is True and events[-1]["job"] == "a" and events[-1]["status"] == "failed"
        assert [r[0] for r in w.rows()].count("d") == 1  # one d run for the tick, though two upstreams ended

    run(main())


def test_overlap_replace_holds_for_a_manual_trigger(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=nap overlap=replace kill-grace=0.5\n0 3 * * 0 sleep 30\n",
                  ts("2026-01-01T12:00:30"))
        serve = asyncio.get_running_loop().create_task(w.sched.serve())
        first = w.sched.trigger("nap")
        second = w.sched.trigger("nap")
        assert second.chain.notes == ["job nap is running (run 1): this run replaces it (overlap=replace)"]
        events = [e async for e in first.chain.events()]
        assert events[0]["reason"] == "replaced by run 2" and events[-1]["done"]
        await w.sched.shutdown(0.0)
        await serve

    run(main())


def test_overlap_skip_refuses_a_manual_trigger_and_force_starts_another(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=nap kill-grace=0.5\n0 3 * * 0 sleep 30\n", ts("2026-01-01T12:00:30"))
        serve = asyncio.get_running_loop().create_task(w.sched.serve())
        w.sched.trigger("nap")
        with pytest.raises(TriggerRefused, match=r"already running \(run 1\) and has overlap=skip"):
            w.sched.trigger("nap")
        w.sched.trigger("nap", force=True)
        assert [r[2] for r in w.rows()] == ["running", "running"]
        await w.sched.shutdown(0.0)
        await serve

    run(main())
