"""engine/backfill.py's throughput bookkeeping inside the real Scheduler (FakeClock, real History,
real job processes): ticks freed together start together (their rows in one transaction), and
progress events are rate-limited (at most one a `progress_every`, a failed tick's at once, one
held back given when its time comes, the last always)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cronplus.engine.backfill import Backfill, plan
from tests.test_scheduler import World, run, ts

NOW = ts("2026-06-01T12:00:30")
H0 = ts("2026-01-01T00:00:00")
HOUR = 3600.0


async def backfill(w: World, name: str, start: float, end: float, **kw: Any) -> list[dict[str, Any]]:
    """Run a backfill with the scheduler served; every event, the done message last."""
    serve = asyncio.get_running_loop().create_task(w.sched.serve())
    try:
        bf = Backfill(w.sched, plan(w.sched.jobs[name], w.history, start, end, rerun=False), **kw)
        return [e async for e in bf.events()]
    finally:
        w.sched.stopping = True
        w.sched.wake()
        await serve


def progress(events: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    return [(e["finished"], e["total"], e["failed"]) for e in events if e.get("event") == "progress"]


def test_the_first_parallel_ticks_get_their_rows_in_one_transaction(tmp_path: Path) -> None:
    statements: list[str] = []

    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n0 * * * * true\n", NOW)
        w.history.conn.set_trace_callback(statements.append)
        events = await backfill(w, "a", H0, H0 + 5 * HOUR, parallel=4)
        assert events[-1]["finished"] == 6 and events[-1]["status"] == "success"
        assert [r[2:4] for r in w.rows()] == [("success", "backfill")] * 6

    run(main())
    inserts: list[int] = []  # rows inserted into runs, per transaction that inserted any
    rows: set[str] = set()  # the INSERTs of this transaction (the trace may repeat a statement it steps again)
    for sql in statements:
        if sql.startswith("BEGIN"):
            rows = set()
        elif sql.startswith("INSERT INTO runs "):
            rows.add(sql)
        elif sql.startswith("COMMIT") and rows:
            inserts.append(len(rows))
    assert inserts[0] == 4  # one transaction for the 4 ticks --parallel 4 starts at once (was 4 of 1)
    assert sum(inserts) == 6


def test_progress_is_given_for_the_first_a_failed_and_the_last_tick_within_one_interval(tmp_path: Path) -> None:
    # The fourth tick (03:00) fails; progress_every is an hour: nothing else is due within it.
    text = ('# cronplus: name=a\n0 * * * * [ "$CRONPLUS_SCHEDULED_TIME" != "2026-01-01T03:00:00+00:00" ]\n')

    async def main() -> None:
        w = World(tmp_path, text, NOW)
        events = await backfill(w, "a", H0, H0 + 7 * HOUR, parallel=1, progress_every=HOUR)
        assert progress(events) == [(1, 8, 0), (4, 8, 1), (8, 8, 1)]
        assert sum(1 for e in events if e.get("event") == "ended") == 8  # every run's own event still goes out
        assert events[-1] | {"status": "x"} == {"done": True, "job": "a", "total": 8, "finished": 8, "failed": 1,
                                                "already_done": 0, "stopped": None, "status": "x"}
        assert events[-1]["status"] == "failed"

    run(main())


def test_a_progress_held_back_is_given_when_its_interval_is_over_not_only_at_the_end(tmp_path: Path) -> None:
    # Ticks 00:00 and 01:00 end at once; 02:00 runs 3 s: the 2/3 held back goes out before it ends.
    text = '# cronplus: name=a\n0 * * * * [ "$CRONPLUS_SCHEDULED_TIME" != "2026-01-01T02:00:00+00:00" ] || sleep 3\n'

    async def main() -> None:
        w = World(tmp_path, text, NOW)
        events = await backfill(w, "a", H0, H0 + 2 * HOUR, parallel=1, progress_every=0.5)
        assert progress(events) == [(1, 3, 0), (2, 3, 0), (3, 3, 0)]
        second = events.index(next(e for e in events if e.get("event") == "progress" and e["finished"] == 2))
        third_ended = events.index(next(e for e in events if e.get("event") == "ended"
                                        and e["scheduled_at"].startswith("2026-01-01T02:00")))
        assert second < third_ended

    run(main())


def test_with_no_interval_every_tick_gives_its_progress(tmp_path: Path) -> None:
    async def main() -> None:
        w = World(tmp_path, "# cronplus: name=a\n0 * * * * true\n", NOW)
        events = await backfill(w, "a", H0, H0 + 4 * HOUR, parallel=2, progress_every=0.0)
        assert progress(events) == [(n, 5, 0) for n in range(1, 6)]

    run(main())
