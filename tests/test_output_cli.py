"""`cronplus output RUN_ID` in-process (tests/incli.py), on a database filled through History and
real log files."""

from __future__ import annotations

from pathlib import Path

from cronplus.status import RunStatus, Trigger
from cronplus.store.history import History
from tests import incli

T0 = 1_750_000_000.0


def output(state: Path, *args: str) -> incli.Completed[bytes]:
    return incli.run_bytes(["output", "--state-dir", str(state), *args], env=incli.base_env())


def logged_run(h: History, state: Path, data: bytes, *, finish: bool = True) -> int:
    run_id = h.start_run(job="job", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None,
                         started_at=T0, log_path=None, owner="sup")
    log = state / "logs" / "job" / f"{run_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(data)
    h.set_log_path(run_id, str(log))
    if finish:
        h.finish_run(run_id, status=RunStatus.SUCCESS, ended_at=T0 + 1, exit_code=0, reason=None, final=True)
    return run_id


def test_it_prints_the_output_bytes_as_they_were_written(state: Path, history: History) -> None:
    data = b"line 1\n\xff\xfe not utf-8\r\nno newline at the end"
    run_id = logged_run(history, state, data)
    proc = output(state, str(run_id))
    assert proc.returncode == 0 and proc.stdout == data


def test_tail_prints_the_last_n_lines(state: Path, history: History) -> None:
    data = b"".join(b"line %d\n" % i for i in range(50_000))  # several read blocks
    run_id = logged_run(history, state, data)
    assert output(state, str(run_id), "--tail", "2").stdout == b"line 49998\nline 49999\n"
    assert output(state, str(run_id), "--tail", "0").stdout == b""
    assert output(state, str(run_id), "--tail", "99999").stdout == data


def test_a_running_run_shows_its_output_so_far(state: Path, history: History) -> None:
    run_id = logged_run(history, state, b"working...\n", finish=False)
    assert output(state, str(run_id)).stdout == b"working...\n"


def test_an_unknown_run_is_an_error(state: Path, history: History) -> None:
    proc = output(state, "12345")
    assert proc.returncode == 1 and b"no run 12345" in proc.stderr


def test_a_log_deleted_by_retention_is_a_clear_error(state: Path, history: History) -> None:
    run_id = logged_run(history, state, b"x" * 100)
    history.prune(now=T0 + 10, log_dir=state / "logs", max_age_s=None, max_runs_per_job=None, max_log_bytes=10)
    proc = output(state, str(run_id))
    assert proc.returncode == 1
    assert b"no longer available" in proc.stderr and b"retention" in proc.stderr


def test_a_run_that_never_started_has_no_output(state: Path, history: History) -> None:
    record = history.record_not_run(job="b", status=RunStatus.MISSED, trigger=Trigger.SCHEDULE,
                                    scheduled_at=T0, tz=None, at=T0, reason="supervisor down")
    proc = output(state, str(record.run_id))
    assert proc.returncode == 1 and b"never started" in proc.stderr


def test_without_a_database_it_fails_with_no_history_yet(state: Path) -> None:
    proc = output(state, "1")
    assert proc.returncode == 1 and b"no history yet" in proc.stderr


def test_a_non_numeric_run_id_is_a_usage_error(state: Path, history: History) -> None:
    assert output(state, "abc").returncode == 2
