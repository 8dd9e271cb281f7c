"""Run lifecycle with real short processes: retries, skip-exit, overlap policies, dependencies
with trigger rules, manual chains, giving up on a stuck upstream, shutdown."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.test_scheduler import World, run, ts

T1 = ts("2026-01-01T12:01:00")
T2 = ts("2026-01-01T12:02:00")
T3 = ts("2026-01-01T12:03:00")


def world(tmp_path: Path, text: str) -> World:
    return World(tmp_path, text, ts("2026-01-01T12:00:30"))


def test_a_failing_job_is_retried_as_new_attempt_rows_of_the_same_tick(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=a retries=2 retry-delay=0.1 backoff=2\n* * * * * exit 3\n")
        started = time.monotonic()
        await w.step_at(T1)
        assert time.monotonic() - started >= 0.3  # 0.1 then 0.2
        assert w.rows() == [("a", 1, "failed", "schedule", T1, "exit 3"), ("a", 2, "failed", "retry", T1, "exit 3"),
                            ("a", 3, "failed", "retry", T1, "exit 3")]
        finals = [r[0] for r in w.history.conn.execute("SELECT final FROM runs ORDER BY run_id")]
        assert finals == [0, 0, 1]

    run(main())


def test_a_retry_that_succeeds_ends_the_run(tmp_path: Path) -> None:
    async def main() -> None:
        marker = tmp_path / "once"
        w = world(tmp_path, f"# cronplus: name=a retries=3 retry-delay=0.05\n* * * * * test -e {marker} || {{ touch {marker}; exit 1; }}\n")
        await w.step_at(T1)
        assert [r[2] for r in w.rows()] == ["failed", "success"]

    run(main())


def test_the_skip_exit_code_is_recorded_skipped_and_not_retried(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=a retries=2 retry-delay=0.05 skip-exit=42\n* * * * * exit 42\n")
        await w.step_at(T1)
        assert [r[2] for r in w.rows()] == ["skipped"]

    run(main())


def test_a_timeout_is_recorded_timeout(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=a timeout=0.3 kill-grace=0.2\n* * * * * sleep 5\n")
        await w.step_at(T1)
        assert [(r[2], r[5]) for r in w.rows()] == [("timeout", "timeout after 0.3s: ended on SIGTERM")]

    run(main())


async def tick_while_running(w: World, *ticks: float) -> None:
    for when in ticks:
        w.clock.jump(when - w.clock.time())
        w.sched.step(when)
        await asyncio.sleep(0.05)


def test_overlap_skip_records_the_new_tick_as_skipped_naming_the_running_run(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=a overlap=skip\n* * * * * sleep 0.5\n")
        await tick_while_running(w, T1, T2)
        await w.sched.wait_idle()
        rows = sorted(w.rows(), key=lambda r: r[4])
        assert [(r[2], r[5]) for r in rows] == [("success", None), ("skipped", "previous run 1 still running")]

    run(main())


def test_overlap_queue_keeps_one_waiting_tick_and_skips_further_ones(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=a overlap=queue\n* * * * * sleep 0.4\n")
        await tick_while_running(w, T1, T2, T3)
        await w.sched.wait_idle()
        rows = {r[4]: r[2] for r in w.rows()}
        assert rows == {T1: "success", T2: "success", T3: "skipped"}
        starts = [r[0] for r in w.history.conn.execute("SELECT started_at FROM runs WHERE status='success' ORDER BY run_id")]
        assert starts[1] - starts[0] >= 0.35  # the queued tick started after the first ended

    run(main())


def test_overlap_replace_cancels_the_running_run_and_names_its_replacement(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=a overlap=replace kill-grace=1\n* * * * * sleep 0.6\n")
        await tick_while_running(w, T1, T2)
        await w.sched.wait_idle()
        assert [(r[2], r[4], r[5]) for r in w.rows()] == [("failed", T1, "replaced by run 2"), ("success", T2, None)]

    run(main())


def test_overlap_allow_runs_both_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=a overlap=allow\n* * * * * sleep 0.4\n")
        started = time.monotonic()
        await tick_while_running(w, T1, T2)
        await w.sched.wait_idle()
        assert [r[2] for r in w.rows()] == ["success", "success"]
        assert time.monotonic() - started < 0.75

    run(main())


PIPELINE = """\
# cronplus: name=train
* * * * * {train}
# cronplus: name=evaluate after=train skip-exit=99
* * * * * {evaluate}
# cronplus: name=deploy after=evaluate
* * * * * echo deployed
"""


@pytest.mark.parametrize(("train", "evaluate", "expected"), [
    ("true", "true", ["success", "success", "success"]),
    ("true", "exit 99", ["success", "skipped", "skipped"]),
    ("exit 1", "true", ["failed", "upstream_failed", "upstream_failed"]),
])
def test_a_pipeline_at_one_tick_runs_in_dependency_order_with_skip_and_failure_propagation(
        tmp_path: Path, train: str, evaluate: str, expected: list[str]) -> None:
    async def main() -> None:
        w = world(tmp_path, PIPELINE.format(train=f"sleep 0.1; {train}", evaluate=evaluate))
        await w.step_at(T1)
        got = {r[0]: r for r in w.rows()}
        assert [got[j][2] for j in ("train", "evaluate", "deploy")] == expected
        assert all(r[4] == T1 for r in got.values())
        if expected[2] != "success":
            assert "upstream evaluate" in got["deploy"][5]

    run(main())


@pytest.mark.parametrize(("rule", "up_a", "up_b", "expected"), [
    ("all_done", "exit 1", "true", "success"),
    ("one_success", "exit 1", "true", "success"),
    ("one_failed", "exit 1", "true", "success"),
    ("one_failed", "true", "true", "skipped"),
    ("all_failed", "exit 1", "exit 2", "success"),
    ("all_failed", "true", "exit 2", "skipped"),
    ("none_failed", "true", "exit 99", "success"),
    ("none_failed", "exit 1", "true", "upstream_failed"),
    ("all_success", "true", "exit 1", "upstream_failed"),
])
def test_every_trigger_rule_decides_the_downstream_run(tmp_path: Path, rule: str, up_a: str, up_b: str, expected: str) -> None:
    async def main() -> None:
        text = (f"# cronplus: name=a\n* * * * * {up_a}\n# cronplus: name=b\n* * * * * {up_b}\n"
                f"# cronplus: name=c after=a,b trigger={rule}\n* * * * * true\n")
        w = world(tmp_path, text)
        await w.step_at(T1)
        assert {r[0]: r[2] for r in w.rows()}["c"] == expected

    run(main())


def test_a_manual_trigger_drives_the_downstream_chain(tmp_path: Path) -> None:
    async def main() -> None:
        text = PIPELINE.format(train="true", evaluate="true").replace("* * * * *", "0 3 * * 0")
        w = world(tmp_path, text)
        serve = asyncio.get_running_loop().create_task(w.sched.serve())
        w.sched.trigger("train")
        await asyncio.sleep(0.05)
        await w.sched.wait_idle()
        w.sched.stopping = True
        w.sched.wake()
        await serve
        rows = w.rows()
        assert [(r[0], r[2], r[3]) for r in rows] == [
            ("train", "success", "manual"), ("evaluate", "success", "manual"), ("deploy", "success", "manual")]
        assert len({r[4] for r in rows}) == 1  # one tick: the trigger instant

    run(main())


def test_a_downstream_gives_up_waiting_when_its_next_tick_arrives(tmp_path: Path) -> None:
    async def main() -> None:
        text = "# cronplus: name=up\n* * * * * sleep 0.6\n# cronplus: name=down after=up\n* * * * * true\n"
        w = world(tmp_path, text)
        await tick_while_running(w, T1, T2)
        await w.step_at(T2 + 1)
        down = {r[4]: r for r in w.rows() if r[0] == "down"}
        assert (down[T1][2], down[T1][5]) == ("upstream_failed", "gave up waiting for upstream up")
        assert down[T2][2] == "skipped"  # up's T2 tick was skipped (overlap), so down's is too

    run(main())


def test_shutdown_interrupts_runs_still_going_after_the_grace(tmp_path: Path) -> None:
    async def main() -> None:
        w = world(tmp_path, "# cronplus: name=a\n* * * * * sleep 5\n# cronplus: name=b\n* * * * * sleep 0.1\n")
        w.sched.step(T1)
        started = time.monotonic()
        await w.sched.shutdown(0.5)
        assert time.monotonic() - started < 4  # not the 5 s the job wanted
        assert {r[0]: (r[2], r[5]) for r in w.rows()} == {"a": ("interrupted", "supervisor shutdown"), "b": ("success", None)}

    run(main())
