"""`queue=` without a broker: the annotation, the message (engine/remote.py's payload and result
JSON), the outcome of a lost attempt, and a worker's side of one attempt (remote.WorkerRuns) on
a real SQLite history in tmp_path with real processes: the claim that drops a redelivered
message, the cancel request that kills the group, the report with the output's head and tail."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cronplus.crontab.parser import parse_crontab
from cronplus.engine import policy, remote
from cronplus.engine.executor import AttemptResult, AttemptSpec, OutputRef
from cronplus.errors import CrontabError
from cronplus.model import JobOptions
from cronplus.status import RunStatus, Trigger
from cronplus.store.history import History
from cronplus.store.remoteruns import CANCEL_REQUEST
from tests.waiting import alive, wait_until

TICK = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def job_of(text: str):  # type: ignore[no-untyped-def]
    return parse_crontab(text, path="crontab", system=False).jobs[0]


def test_queue_and_queue_timeout_are_job_options() -> None:
    job = job_of("# cronplus: queue=gpu queue-timeout=5m\n* * * * * train\n")
    assert (job.options.queue, job.options.queue_timeout) == ("gpu", 300.0)
    assert job_of("* * * * * here\n").options.queue is None


def test_a_queue_name_with_a_space_or_colon_is_an_error_with_its_column() -> None:
    with pytest.raises(CrontabError) as err:
        parse_crontab('# cronplus: queue="a:b"\n* * * * * x\n', path="crontab", system=False)
    assert "crontab:1:" in str(err.value) and "is not a queue name" in str(err.value)


def test_the_message_carries_what_the_worker_needs_and_reads_back_the_same_attempt() -> None:
    job = job_of("MY=1\n# cronplus: name=train queue=gpu timeout=30 kill-grace=2 max-log-size=1K nice=5\n"
                 "* * * * * echo hi%line one%line two\n")
    spec = AttemptSpec(job=job, attempt_id=42, attempt=2, scheduled_at=TICK, output=OutputRef("sup", "/x.log"),
                       params=(("K", "v"),), upstream=(("up", (("A", "1"),)),))
    back = remote.spec_of(remote.payload_of(spec, "gpu"), output=OutputRef("w1", "/w.log"))
    assert (back.attempt_id, back.attempt, back.scheduled_at, back.params, back.upstream) == (
        42, 2, TICK, (("K", "v"),), (("up", (("A", "1"),)),))
    assert (back.job.name, back.job.command, back.job.stdin, tuple(back.job.env)) == (
        "train", "echo hi", "line one\nline two", (("MY", "1"),))
    o = back.job.options
    assert (o.timeout, o.kill_grace, o.max_log_size, o.nice, o.queue) == (30.0, 2.0, 1024, 5, "gpu")


def test_a_message_of_another_version_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="version 99"):
        remote.spec_of({"v": 99}, output=OutputRef("w", "/x"))


def test_a_result_survives_its_json() -> None:
    result = AttemptResult(exit_code=137, signal=9, timed_out=True, cancelled=False, started_at=1.5, ended_at=3.0,
                           pid=77, output_bytes=10, truncated=True, killed=True, host="w1",
                           output=OutputRef("w1", "/l/1.log"), outputs=(("K", "V"),), interrupted=False)
    assert remote.result_of(remote.result_json(result)) == result


def test_a_lost_attempt_is_interrupted_and_retried_like_a_failure() -> None:
    lost = AttemptResult(exit_code=None, signal=None, timed_out=False, cancelled=False, started_at=0, ended_at=1,
                         pid=None, output_bytes=0, truncated=False, error="worker w1 stopped heart-beating 9s ago",
                         interrupted=True)
    out = policy.outcome(lost, JobOptions(retries=1))
    assert (out.status, out.reason) == (RunStatus.INTERRUPTED, "worker w1 stopped heart-beating 9s ago")
    assert policy.will_retry(out, 1, JobOptions(retries=1)) and not policy.will_retry(out, 2, JobOptions(retries=1))


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    history = History(tmp_path / "history.db", host="sup")
    yield history
    history.close()


def worker_runs(tmp_path: Path, db: Path) -> remote.WorkerRuns:
    return remote.WorkerRuns(lambda: History(db, host="w1"), host="w1", log_dir=tmp_path / "wlogs",
                             outputs_dir=tmp_path / "wout", system=False)


def sent(store: History, text: str) -> dict[str, object]:
    job = job_of(text)
    run_id = store.start_run(job=job.name, attempt=1, trigger=Trigger.MANUAL, scheduled_at=TICK.timestamp(), tz=None,
                             started_at=TICK.timestamp(), log_path="/sup/logs/x.log", owner="sup:1:1")
    store.send_to_queue(run_id, "q")
    return remote.payload_of(AttemptSpec(job=job, attempt_id=run_id, attempt=1, scheduled_at=TICK,
                                         output=OutputRef("sup", "")), "q")


def test_the_worker_runs_a_message_once_and_reports_its_result_and_output(store: History, tmp_path: Path) -> None:
    payload = sent(store, "# cronplus: name=hi queue=q\n* * * * * echo hello $CRONPLUS_RUN_ID; exit 4\n")
    runs = worker_runs(tmp_path, store.db_path)
    assert runs.run(payload) == "ran"
    assert runs.run(payload) == "taken"  # the same message again (a redelivery): not run twice
    run_id = int(str(payload["run_id"]))
    (state,) = store.remote_states([run_id])
    result = remote.result_of(state.report or "")
    assert (result.exit_code, result.host, state.host) == (4, "w1", "w1")
    assert store.remote_output(run_id) == (f"hello {run_id}\n", None)
    record = store.get_run(run_id)
    assert record is not None and record.log_path == str(tmp_path / "wlogs" / "hi" / f"{run_id}.log")


def test_a_long_output_keeps_its_head_and_tail_in_the_row(store: History, tmp_path: Path) -> None:
    payload = sent(store, "# cronplus: name=big queue=q\n* * * * * seq 1 100000\n")
    worker_runs(tmp_path, store.db_path).run(payload)
    head, tail = store.remote_output(int(str(payload["run_id"])))
    assert head is not None and tail is not None
    assert head.startswith("1\n2\n") and len(head) == remote.HEAD_BYTES
    assert tail.endswith("99999\n100000\n") and len(tail) == remote.TAIL_BYTES


def test_a_cancel_request_on_the_row_terminates_the_group_on_the_worker(store: History, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    payload = sent(store, f"# cronplus: name=c queue=q kill-grace=1\n* * * * * sleep 300 & echo $! > {pidfile}; wait\n")
    run_id = int(str(payload["run_id"]))
    runs = worker_runs(tmp_path, store.db_path)
    thread = threading.Thread(target=runs.run, args=(payload,))
    started = time.monotonic()
    thread.start()
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 20, "the job to start")
        store.request_cancel(run_id)
    finally:
        thread.join(30)
    (state,) = store.remote_states([run_id])
    assert state.report != CANCEL_REQUEST
    assert remote.result_of(state.report or "").cancelled
    assert not alive(int(pidfile.read_text()))
    assert time.monotonic() - started < 20


def test_without_a_supervisor_trigger_refuses_a_queue_job_in_one_line_and_a_queued_downstream_fails_saying_why(
        tmp_path: Path) -> None:
    from tests.test_trigger import cli

    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=prep\n0 3 * * 0 true\n# cronplus: name=train after=prep queue=gpu\n0 3 * * 0 true\n")
    refused = cli(tmp_path / "state", crontab, "trigger", "train")
    assert refused.returncode == 1 and "job train has queue=gpu: trigger it through the running supervisor" in refused.stderr
    assert "Traceback" not in refused.stderr
    out = cli(tmp_path / "state", crontab, "trigger", "prep")
    assert out.returncode == 1 and "queue=gpu needs --broker (or CRONPLUS_BROKER)" in out.stderr, out  # the chain failed
    with History(tmp_path / "state" / "history.db") as history:
        train = history.latest_runs("train", 5)
    assert [(r.status, r.reason) for r in train] == [("failed", "queue=gpu needs --broker (or CRONPLUS_BROKER)")]


def test_a_broker_that_cannot_be_reached_fails_the_attempt_in_one_line_without_its_password_and_fast_after(
        store: History, tmp_path: Path) -> None:
    import asyncio
    import socket

    from cronplus.clock import SystemClock
    from cronplus.engine.celeryexec import CeleryExecutor

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    executor = CeleryExecutor(store, broker=f"redis://:hunter2secret@127.0.0.1:{port}/0", host="sup",
                              clock=SystemClock())
    job = job_of("# cronplus: name=a queue=q\n* * * * * true\n")
    results, took = [], []
    for _ in range(2):
        run_id = store.start_run(job="a", attempt=1, trigger=Trigger.MANUAL, scheduled_at=TICK.timestamp(), tz=None,
                                 started_at=TICK.timestamp(), log_path=None, owner="sup:1:1")
        started = time.monotonic()
        attempt = executor.start(AttemptSpec(job=job, attempt_id=run_id, attempt=1, scheduled_at=TICK,
                                             output=OutputRef("sup", "")))
        took.append(time.monotonic() - started)
        results.append(asyncio.run(asyncio.wait_for(attempt.result(), 10)))
        assert store.remote_states([run_id])[0].host == "sup"  # taken back: a late delivery would be dropped
    for result in results:
        assert result.error is not None and result.error.startswith(f"cannot send to queue q (broker redis://127.0.0.1:{port}/")
        assert "hunter2secret" not in result.error
    assert took[1] < took[0] / 3  # the next send within BROKER_DOWN_S does not wait for the broker again
