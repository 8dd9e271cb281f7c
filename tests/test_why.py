"""`cronplus why JOB [--at TIME] [--json]` (issue 16, items 1 and 4): each verdict from a real
scenario. The history is written by the real scheduler (tests/test_scheduler.World: a Scheduler
on a FakeClock over a real History, real job processes) or by real supervisors (downtime: two
`cronplus run` on shifted clocks, tests/shifted_run.py); the answer comes from the real command,
run in-process (tests/incli.py)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_crontab
from cronplus.engine.explain import World as Facts
from cronplus.engine.explain import explain
from cronplus.store.history import History
from tests import incli
from tests.test_faults_restart import Shifted, rows
from tests.test_scheduler import World, ts
from tests.waiting import wait_until

LONG_AGO = ts("2020-01-01T00:00:00")  # a crontab mtime before every scenario's ticks


def why(tmp_path: Path, *args: str, state: Path | None = None) -> incli.Completed[str]:
    env = incli.base_env(HOME=str(tmp_path))
    return incli.run(["--crontab", str(tmp_path / "crontab"), "--state-dir", str(state or tmp_path / "state"),
                      "why", *args], env=env)


def why_json(tmp_path: Path, *args: str) -> dict[str, Any]:
    done = why(tmp_path, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def scenario(tmp_path: Path, text: str, start: float) -> World:
    """A scheduler world whose history is the state dir's history.db, and the crontab file the
    CLI reads (dated before the scenario: the file did not change since)."""
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "crontab").write_text(text)
    os.utime(tmp_path / "crontab", (LONG_AGO, LONG_AGO))
    w = World.__new__(World)
    w.tmp_path, w.text = tmp_path, text
    w.history = History(state / "history.db")
    w.clock = FakeClock(start)
    w.sched = w.new_scheduler()
    return w


def verdicts(answer: dict[str, Any]) -> list[str]:
    return [f["verdict"] for f in answer["findings"]]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---- overlap ------------------------------------------------------------------------------


def test_a_tick_skipped_by_overlap_names_the_run_that_held_it(tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    text = f"# cronplus: name=slow\n* * * * * until [ -e {stop} ]; do sleep 0.05; done\n"
    t1 = ts("2026-03-02T10:00:00")

    async def main() -> None:
        w = scenario(tmp_path, text, t1 - 1)
        w.clock.jump(1)
        w.sched.step(t1)  # run 1 starts and keeps running
        await asyncio.sleep(0.1)
        w.clock.jump(60)
        w.sched.step(t1 + 60)  # the next tick finds it running: skipped
        stop.touch()
        await w.sched.wait_idle()
        w.history.close()

    run(main())
    answer = why_json(tmp_path, "slow", "--at", "2026-03-02T10:01:00+00:00")
    assert verdicts(answer) == ["overlap"]
    finding = answer["findings"][0]
    assert finding["run"]["status"] == "skipped"
    assert [h["run_id"] for h in finding["holders"]] == [1]
    assert finding["holders"][0]["scheduled_at"] == "2026-03-02T10:00:00+00:00"
    assert finding["policy"] == "skip"
    text_answer = why(tmp_path, "slow", "--at", "2026-03-02T10:01:00+00:00").stdout
    assert text_answer.splitlines()[0] == "slow: overlap"
    assert "overlap=skip (previous run 1 still running): held by run 1" in text_answer


# ---- upstream -----------------------------------------------------------------------------


def test_an_upstream_failure_names_the_upstream_run_and_the_trigger_rule(tmp_path: Path) -> None:
    text = ("# cronplus: name=extract\n0 * * * * exit 3\n"
            "# cronplus: name=load after=extract trigger=all_success\n0 * * * * true\n")
    t1 = ts("2026-03-02T10:00:00")

    async def main() -> None:
        w = scenario(tmp_path, text, t1 - 1)
        await w.step_at(t1)
        await w.step_at(t1 + 1)
        assert {r[0]: r[2] for r in w.rows()} == {"extract": "failed", "load": "upstream_failed"}
        w.history.close()

    run(main())
    answer = why_json(tmp_path, "load", "--at", "2026-03-02 10:00")
    assert verdicts(answer) == ["upstream_failed"]
    finding = answer["findings"][0]
    assert finding["rule"] == "all_success"
    assert finding["upstreams"][0]["job"] == "extract"
    assert finding["upstreams"][0]["run"]["status"] == "failed"
    assert finding["upstreams"][0]["run"]["exit_code"] == 3
    out = why(tmp_path, "load", "--at", "2026-03-02 10:00").stdout
    assert "run 2 is upstream_failed by its upstreams (after=extract trigger=all_success): extract run 1 (failed: exit 3)" in out


def test_a_downstream_still_waiting_names_the_upstream_run_in_flight(tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    text = (f"# cronplus: name=extract\n0 * * * * until [ -e {stop} ]; do sleep 0.05; done\n"
            "# cronplus: name=load after=extract\n0 * * * * true\n")
    t1 = ts("2026-03-02T10:00:00")

    async def main() -> None:
        w = scenario(tmp_path, text, t1 - 1)
        w.clock.jump(1)
        w.sched.step(t1)
        await asyncio.sleep(0.1)
        reader = History(tmp_path / "state" / "history.db")
        job = w.sched.jobs["load"]
        answer = explain(job, reader, Facts(now=_utc(t1 + 30)))
        reader.close()
        stop.touch()
        await w.step_at(t1 + 31)  # extract ends, load runs
        w.history.close()
        return answer

    answer = run(main())
    assert answer.verdict == "waiting_upstream"
    assert answer.tick is not None and answer.tick.timestamp() == t1
    assert "extract still running" in answer.sentences()[0]


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


# ---- DST in a real zone -------------------------------------------------------------------


def test_a_fixed_time_in_the_spring_forward_gap_ran_once_right_after_it(tmp_path: Path) -> None:
    text = "# cronplus: name=nightly tz=Europe/Berlin\n30 2 * * * true\n"
    after_gap = ts("2026-03-29T03:00:00", "Europe/Berlin")

    async def main() -> None:
        w = scenario(tmp_path, text, ts("2026-03-29T01:59:00", "Europe/Berlin"))
        await w.step_at(after_gap)
        w.history.close()

    run(main())
    answer = why_json(tmp_path, "nightly", "--at", "2026-03-29 02:30")
    assert verdicts(answer) == ["dst_gap", "ran"]
    gap, ran = answer["findings"]
    assert gap["fired_at"] == "2026-03-29T03:00:00+02:00"
    assert gap["wildcard"] is False
    assert ran["run"]["scheduled_at"] == "2026-03-29T03:00:00+02:00"
    out = why(tmp_path, "nightly", "--at", "2026-03-29 02:30").stdout
    assert "02:30 does not exist in Europe/Berlin on 2026-03-29" in out
    assert "once, at the first instant after it, 2026-03-29 03:00:00+02:00" in out
    assert "run 1 (success), started 2026-03-29 03:00:00+02:00" in out  # the run's times in the job's zone too


def test_a_wildcard_job_does_not_run_for_the_times_the_gap_skips(tmp_path: Path) -> None:
    text = "# cronplus: name=often tz=Europe/Berlin\n*/30 * * * * true\n"
    (tmp_path / "state").mkdir()
    (tmp_path / "crontab").write_text(text)
    answer = why_json(tmp_path, "often", "--at", "2026-03-29 02:30")
    assert verdicts(answer) == ["dst_gap"]
    assert answer["findings"][0]["wildcard"] is True
    assert answer["findings"][0]["next"] == "2026-03-29T03:00:00+02:00"
    assert answer["tick"] is None


def test_a_wall_time_in_the_gap_that_is_not_a_tick_says_the_time_does_not_exist(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "crontab").write_text("# cronplus: name=nightly tz=Europe/Berlin\n30 2 * * * true\n")
    answer = why_json(tmp_path, "nightly", "--at", "2026-03-29 02:15")
    assert verdicts(answer) == ["not_due"]
    assert answer["findings"][0]["sentence"].startswith(
        "Not due at 02:15 (that wall time does not exist on 2026-03-29, clocks spring forward: read as "
        "2026-03-29 03:15:00+02:00)")
    assert answer["findings"][0]["previous"] == "2026-03-29T03:00:00+02:00"  # 02:30's run, caught up


def test_a_fixed_time_job_ran_only_in_the_first_pass_of_the_repeated_hour(tmp_path: Path) -> None:
    text = "# cronplus: name=nightly tz=Europe/Berlin\n30 2 * * * true\n"
    first = ts("2026-10-25T00:30:00")  # 02:30 CEST
    second = first + 3600  # 02:30 CET

    async def main() -> None:
        w = scenario(tmp_path, text, first - 60)
        await w.step_at(first)
        await w.step_at(second)
        assert [r[2] for r in w.rows()] == ["success"]
        w.history.close()

    run(main())
    answer = why_json(tmp_path, "nightly", "--at", "2026-10-25T02:30:00+01:00")
    assert verdicts(answer) == ["dst_repeat", "ran"]
    repeat, ran = answer["findings"]
    assert repeat["asked_second"] is True
    assert repeat["first"] == "2026-10-25T02:30:00+02:00"
    assert ran["run"]["scheduled_at"] == "2026-10-25T02:30:00+02:00"
    assert "first pass only, so not at 2026-10-25 02:30:00+01:00" in repeat["sentence"]


# ---- not due: the day fields --------------------------------------------------------------


def test_not_due_spells_out_the_or_rule_of_two_restricted_day_fields(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "crontab").write_text("# cronplus: name=monthly tz=UTC\n0 0 13 * 5\ttrue\n")
    answer = why_json(tmp_path, "monthly", "--at", "2026-03-12T00:00:00+00:00")  # a Thursday, the 12th
    assert verdicts(answer) == ["not_due"]
    finding = answer["findings"][0]
    assert finding["day"]["rule"] == "either"
    assert finding["previous"] == "2026-03-06T00:00:00+00:00"  # a Friday
    assert finding["next"] == "2026-03-13T00:00:00+00:00"  # the 13th (and a Friday)
    assert "both restricted, so cron runs the job when EITHER matches" in finding["sentence"]
    assert "on Thursday 2026-03-12 day-of-month '13' does not match and day-of-week '5' does not match" \
        in finding["sentence"]


def test_not_due_spells_out_the_and_rule_when_a_day_field_starts_with_a_star(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "crontab").write_text("# cronplus: name=odd tz=UTC\n0 0 */2 * 1 true\n")
    answer = why_json(tmp_path, "odd", "--at", "2026-03-02T00:00:00+00:00")  # Monday the 2nd: even
    finding = answer["findings"][0]
    assert finding["verdict"] == "not_due"
    assert finding["day"]["rule"] == "both"
    assert finding["day"]["day_of_week_matches"] is True and finding["day"]["day_of_month_matches"] is False
    assert "day-of-month '*/2' starts with '*', so cron runs the job only when BOTH day fields match" \
        in finding["sentence"]
    assert finding["next"] == "2026-03-09T00:00:00+00:00"  # Monday the 9th: odd


# ---- downtime: real supervisors -----------------------------------------------------------


def test_ticks_missed_while_no_supervisor_ran_are_explained_with_the_gap(shifted, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "crontab").write_text("# cronplus: name=beat\n*/5 * * * * true\n"
                                      "# cronplus: name=caught catch-up=last\n*/5 * * * * true\n")
    os.utime(tmp_path / "crontab", (LONG_AGO, LONG_AGO))
    first = Shifted(tmp_path, -3 * 3600.0)
    shifted.append(first)
    first.wait_ready()
    assert first.stop() == 0
    down_from = time.time() - 3 * 3600
    again = Shifted(tmp_path, -3600.0)
    shifted.append(again)
    again.wait_ready()
    wait_until(lambda: rows(again.state, "SELECT 1 FROM runs WHERE status = 'missed'"), 30, "the missed rows")
    assert again.stop() == 0
    tick = (down_from // 300 + 4) * 300  # well inside the gap
    answer = why_json(tmp_path, "beat", "--at", f"@{tick:.0f}")
    assert verdicts(answer) == ["supervisor_down"]
    finding = answer["findings"][0]
    assert finding["run"]["status"] == "missed"
    assert finding["run"]["reason"].startswith("supervisor not running")
    assert 20 <= finding["missed"] <= 25  # two hours of */5, give or take the edges
    first_missed, last_missed, asked = (datetime.fromisoformat(t) for t in
                                        (finding["first_missed"], finding["last_missed"], answer["tick"]))
    assert first_missed < asked < last_missed
    assert finding["back_at"] is not None
    # with catch-up=last, the latest missed tick ran when the supervisor came back
    caught = why_json(tmp_path, "caught", "--at", finding["last_missed"])
    assert verdicts(caught) == ["ran"]
    assert caught["findings"][0]["run"]["trigger"] == "catch-up"
    assert "catch-up=last ran the latest tick missed while no supervisor ran" in caught["findings"][0]["sentence"]
    # the default question: the last tick, which no supervisor has handled since the second stopped
    now_answer = why_json(tmp_path, "beat")
    assert verdicts(now_answer) == ["supervisor_down"]
    assert now_answer["findings"][0]["run"] is None
    assert now_answer["findings"][0]["last_handled"] is not None


# ---- more verdicts from the real scheduler ------------------------------------------------


def test_a_jittered_start_says_how_late_jitter_made_it(tmp_path: Path) -> None:
    import random

    text = "# cronplus: name=spread jitter=40s\n0 * * * * true\n"
    t1 = ts("2026-03-02T10:00:00")

    async def main() -> None:
        w = scenario(tmp_path, text, t1 - 1)
        w.sched.rng = random.Random(7)
        await w.step_at(t1)
        delayed = [r for r in w.sched.runs if r.state == "delayed"]
        assert delayed and delayed[0].start_at is not None
        await w.step_at(delayed[0].start_at)
        w.history.close()

    run(main())
    answer = why_json(tmp_path, "spread", "--at", "2026-03-02T10:00:00+00:00")
    assert verdicts(answer) == ["ran", "jitter"]
    assert answer["findings"][1]["jitter_s"] == 40.0
    assert "jitter=40s delayed the start by" in answer["findings"][1]["sentence"]


def test_a_run_the_supervisor_stopped_while_it_ran_is_interrupted(tmp_path: Path) -> None:
    text = "# cronplus: name=long\n0 * * * * sleep 30\n"
    t1 = ts("2026-03-02T10:00:00")

    async def main() -> None:
        w = scenario(tmp_path, text, t1 - 1)
        w.clock.jump(1)
        w.sched.step(t1)
        await asyncio.sleep(0.1)
        await w.sched.shutdown(0.0)
        w.history.close()

    run(main())
    answer = why_json(tmp_path, "long", "--at", "2026-03-02T10:00:00+00:00")
    assert verdicts(answer) == ["interrupted"]
    assert answer["findings"][0]["run"]["reason"] == "supervisor shutdown"


def test_a_job_added_after_the_tick_is_said_to_be_a_crontab_change(tmp_path: Path) -> None:
    t1 = ts("2026-03-02T10:00:00")

    async def main() -> None:
        w = scenario(tmp_path, "# cronplus: name=new\n0 * * * * true\n", t1 + 1800)  # first seen at 10:30
        await w.step_at(t1 + 3600)
        w.history.close()

    run(main())
    os.utime(tmp_path / "crontab", (t1 + 1800, t1 + 1800))
    answer = why_json(tmp_path, "new", "--at", "2026-03-02T10:00:00+00:00")
    assert verdicts(answer) == ["crontab_changed"]
    assert answer["findings"][0]["first_run"]["scheduled_at"] == "2026-03-02T11:00:00+00:00"
    assert answer["findings"][0]["changed_at"] == "2026-03-02T10:30:00+00:00"
    assert "the crontab file was modified at 2026-03-02 10:30:00+00:00, after the tick" in answer["findings"][0]["sentence"]


def test_a_job_whose_user_is_missing_says_so_from_its_failed_run(tmp_path: Path) -> None:
    user = "cronplus-no-such-user"
    text = f"# cronplus: name=sys\n0 * * * * {user} true\n"
    t1 = ts("2026-03-02T10:00:00")

    async def main() -> None:
        state = tmp_path / "state"
        state.mkdir()
        history = History(state / "history.db")
        from cronplus.engine.scheduler import Scheduler

        crontab = parse_crontab(text, path=str(tmp_path / "crontab"), system=True)
        clock = FakeClock(t1 - 1)
        sched = Scheduler(crontab, history=history, alerting=None, log_dir=tmp_path / "logs", owner="t", clock=clock)
        clock.jump(1)
        sched.step(t1)
        await sched.wait_idle()
        history.close()
        job = crontab.job("sys")
        assert job is not None
        reader = History(state / "history.db")
        try:
            return explain(job, reader, Facts(now=_utc(t1 + 60), system=True, user_exists=lambda name: False),
                           at=_utc(t1))
        finally:
            reader.close()

    answer = run(main())
    assert [f.verdict for f in answer.findings] == ["user_missing"]
    assert f"'{user}' could not be found" in answer.sentences()[0]


def test_json_has_the_documented_shape(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "crontab").write_text("# cronplus: name=j tz=UTC\n0 0 13 * 5 true\n")
    answer = why_json(tmp_path, "j", "--at", "2026-03-12T00:00:00+00:00")
    assert set(answer) == {"job", "at", "tick", "verdict", "findings"}
    assert answer["job"] == "j" and answer["verdict"] == "not_due" and answer["tick"] is None
    assert answer["at"] == "2026-03-12T00:00:00+00:00"
    for finding in answer["findings"]:
        assert {"verdict", "sentence"} <= set(finding)


def test_an_unknown_job_is_one_line_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=backup\n0 0 * * * true\n")
    done = why(tmp_path, "bakup")
    assert done.returncode == 1
    assert done.stderr.strip() == f"cronplus why: no job named 'bakup' in {tmp_path / 'crontab'} (did you mean 'backup'?)"


def test_without_history_the_answer_is_that_no_supervisor_ran(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=j\n0 0 * * * true\n")
    done = why(tmp_path, "j")
    assert done.returncode == 0
    assert "no history yet" in done.stderr
    assert done.stdout.splitlines()[0] == "j: supervisor_down"
    assert "no supervisor has ever scheduled this job" in done.stdout


def test_a_run_that_exited_with_skip_exit_says_so(tmp_path: Path) -> None:
    t1 = ts("2026-03-02T10:00:00")

    async def main() -> None:
        w = scenario(tmp_path, "# cronplus: name=maybe skip-exit=42\n0 * * * * exit 42\n", t1 - 1)
        await w.step_at(t1)
        w.history.close()

    run(main())
    answer = why_json(tmp_path, "maybe", "--at", "2026-03-02T10:00:00+00:00")
    assert verdicts(answer) == ["skip_exit"]
    assert "exited 42, the job's skip-exit" in answer["findings"][0]["sentence"]


def test_a_queued_tick_started_late_behind_the_previous_run(tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    text = f"# cronplus: name=q overlap=queue\n* * * * * until [ -e {stop} ]; do sleep 0.05; done\n"
    t1 = ts("2026-03-02T10:00:00")

    async def main() -> None:
        w = scenario(tmp_path, text, t1 - 1)
        w.clock.jump(1)
        w.sched.step(t1)
        await asyncio.sleep(0.1)
        w.clock.jump(60)
        w.sched.step(t1 + 60)  # queued behind run 1
        w.clock.jump(30)
        stop.touch()
        await w.step_at(t1 + 90)  # run 1 ends; the queued tick starts now, 30 s late
        w.history.close()

    run(main())
    answer = why_json(tmp_path, "q", "--at", "2026-03-02T10:01:00+00:00")
    assert verdicts(answer) == ["ran", "late_start"]
    assert "overlap=queue: it waited for the job's previous run to end" in answer["findings"][1]["sentence"]


def test_a_run_replaced_by_the_next_tick_names_its_replacement(tmp_path: Path) -> None:
    text = "# cronplus: name=r overlap=replace kill-grace=2s\n* * * * * sleep 30\n"
    t1 = ts("2026-03-02T10:00:00")

    async def main() -> None:
        w = scenario(tmp_path, text, t1 - 1)
        w.clock.jump(1)
        w.sched.step(t1)
        await asyncio.sleep(0.1)
        w.clock.jump(60)
        w.sched.step(t1 + 60)  # run 2 replaces run 1
        deadline = time.monotonic() + 20
        while w.history.get_run(1).status == "running":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "run 1 was not replaced"
            await asyncio.sleep(0.05)
        await w.sched.shutdown(0.0)
        w.history.close()

    run(main())
    answer = why_json(tmp_path, "r", "--at", "2026-03-02T10:00:00+00:00")
    assert verdicts(answer) == ["overlap"]
    assert answer["findings"][0]["run"]["reason"] == "replaced by run 2"
    assert [h["run_id"] for h in answer["findings"][0]["holders"]] == [2]


def test_a_tick_still_to_come_is_not_yet(tmp_path: Path) -> None:
    job = parse_crontab("# cronplus: name=j tz=UTC\n0 12 * * *\ttrue\n", path="c", system=False).jobs[0]
    reader = History(":memory:")
    try:
        answer = explain(job, reader, Facts(now=_utc(ts("2026-03-02T10:00:00"))), at=_utc(ts("2026-03-02T12:00:00")))
    finally:
        reader.close()
    assert [f.verdict for f in answer.findings] == ["not_yet"]
    assert answer.sentences() == ["The tick 2026-03-02 12:00:00+00:00 is still to come (now 2026-03-02 10:00:00+00:00)."]


def test_a_jittered_tick_the_supervisors_stop_kept_from_starting_says_so(tmp_path: Path) -> None:
    t1 = ts("2026-03-02T10:00:00")

    async def main() -> None:
        w = scenario(tmp_path, "# cronplus: name=late jitter=50s\n0 * * * * true\n", t1 - 1)
        w.clock.jump(1)
        w.sched.step(t1)  # delayed by jitter: no row yet
        pending = explain(w.sched.jobs["late"], w.history, Facts(now=_utc(t1 + 10)))
        assert [x.verdict for x in pending.findings] == ["jitter"]
        assert "starts at a random moment up to 50s after it, and has no row until it starts" in pending.sentences()[0]
        await w.sched.shutdown(0.0)
        w.history.close()

    run(main())
    answer = why_json(tmp_path, "late", "--at", "2026-03-02T10:00:00+00:00")
    assert verdicts(answer) == ["interrupted"]
    assert answer["findings"][0]["sentence"].startswith(
        "The tick 2026-03-02 10:00:00+00:00 never started: the supervisor was stopping (supervisor shutdown before it could start)")


# ---- what a running supervisor holds without a row ------------------------------------------


def test_a_downstream_a_running_supervisor_holds_waiting_names_its_upstream(shifted, tmp_path: Path) -> None:  # noqa: F811
    stop = tmp_path / "stop"
    (tmp_path / "crontab").write_text(f"# cronplus: name=extract\n* * * * * until [ -e {stop} ]; do sleep 0.05; done\n"
                                      "# cronplus: name=load after=extract\n* * * * * true\n")
    os.utime(tmp_path / "crontab", (LONG_AGO, LONG_AGO))
    now = time.time()
    tick = (now // 60 - 5) * 60  # a past minute, reached by the shifted clock a few seconds from now
    sup = Shifted(tmp_path, tick - 4.0 - now)
    shifted.append(sup)
    try:
        sup.wait_ready()
        wait_until(lambda: rows(sup.state, "SELECT 1 FROM runs WHERE job = 'extract' AND status = 'running'"), 30,
                   "extract to start")
        answer = why_json(tmp_path, "load", "--at", f"@{tick:.0f}")
        assert verdicts(answer) == ["waiting_upstream"]
        finding = answer["findings"][0]
        assert finding["upstreams"] == [{"job": "extract", "run": None, "running": True}]
        assert "a run waits for its upstreams (trigger=all_success): extract still running" in finding["sentence"]
    finally:
        stop.touch()
    assert sup.stop() == 0


def test_a_tick_queued_behind_a_running_run_names_that_run(tmp_path: Path) -> None:
    from cronplus.engine.explain import Held

    stop = tmp_path / "stop"
    text = f"# cronplus: name=q overlap=queue\n* * * * * until [ -e {stop} ]; do sleep 0.05; done\n"
    t1 = ts("2026-03-02T10:00:00")

    async def main() -> Any:
        w = scenario(tmp_path, text, t1 - 1)
        w.clock.jump(1)
        w.sched.step(t1)
        await asyncio.sleep(0.1)
        w.clock.jump(60)
        w.sched.step(t1 + 60)  # queued behind run 1: no row
        held = tuple(Held(job=r.job.name, tick=r.tick, state=r.state) for r in w.sched.runs)  # what `status` reports
        answer = explain(w.sched.jobs["q"], w.history, Facts(now=_utc(t1 + 61), held=held), at=_utc(t1 + 60))
        stop.touch()
        await w.step_at(t1 + 62)
        w.history.close()
        return answer

    answer = run(main())
    assert [x.verdict for x in answer.findings] == ["overlap"]
    assert answer.sentences()[0].startswith("The tick 2026-03-02 10:01:00+00:00 is queued by overlap=queue behind run 1 "
                                            "(tick 2026-03-02 10:00:00+00:00")
