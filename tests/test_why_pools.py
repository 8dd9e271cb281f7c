"""`cronplus why` for pools (engine/explain.py, findings.PoolQueued): a run the supervisor holds
queued for a slot, and a run whose row says it waited for one (runs.queued_s, written by the real
scheduler over real processes)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cronplus.engine.explain import Held, World, explain
from tests.test_pools import T1, PoolWorld, run


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def test_a_run_held_queued_for_a_pool_is_the_headline_with_how_many_are_ahead(tmp_path: Path) -> None:
    w = PoolWorld(tmp_path, "# cronplus-pools: gpu=1\n# cronplus: name=train pool=gpu\n* * * * * true\n")
    held = (Held(job="train", tick=utc(T1), state="queued", pool="pool gpu", ahead=2),)
    answer = explain(w.sched.jobs["train"], w.history, World(now=utc(T1 + 30), held=held), at=utc(T1))
    assert [x.verdict.value for x in answer.findings] == ["pool_queued"]
    assert answer.findings[0].sentence() == ("The tick 2026-01-01 12:01:00+00:00 is queued for pool gpu, 2 run(s) "
                                             "ahead of it: it starts when a slot frees (first come first served).")
    assert answer.findings[0].to_json()["ahead"] == 2


def test_a_run_that_waited_for_its_slot_says_so_after_the_headline(tmp_path: Path) -> None:
    async def main() -> None:
        w = PoolWorld(tmp_path, "# cronplus-pools: gpu=1\n# cronplus: name=a pool=gpu\n* * * * * sleep 0.3\n"
                                "# cronplus: name=b pool=gpu\n* * * * * true\n")
        w.clock.jump(T1 - w.clock.time())
        w.sched.step(T1)
        await w.settle(step_s=1.0)
        waited = w.queued()["b"]
        assert waited is not None and waited >= 2.0
        answer = explain(w.sched.jobs["b"], w.history, World(now=utc(T1 + 50)), at=utc(T1))
        assert [x.verdict.value for x in answer.findings][:2] == ["ran", "pool_queued"]
        assert "queued for pool gpu before it started" in answer.findings[1].sentence()
        first = explain(w.sched.jobs["a"], w.history, World(now=utc(T1 + 50)), at=utc(T1))
        assert "pool_queued" not in [x.verdict.value for x in first.findings]

    run(main())
