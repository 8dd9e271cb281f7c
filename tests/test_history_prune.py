"""Retention (History.prune): age, runs per job, and the log disk budget, on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from cronplus.status import RunStatus, Trigger
from cronplus.store.history import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_LOG_BYTES,
    DEFAULT_MAX_RUNS_PER_JOB,
    History,
)

T0 = 1_750_000_000.0
DAY = 86400.0


@pytest.fixture
def history(tmp_path: Path) -> History:
    h = History(tmp_path / "history.db")
    yield h
    h.close()


def run(h: History, log_dir: Path, job: str, at: float, *, size: int = 0, finish: bool = True) -> int:
    run_id = h.start_run(job=job, attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=at, tz=None,
                         started_at=at, log_path=None, owner="sup")
    log = log_dir / job / f"{run_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"x" * size)
    h.set_log_path(run_id, str(log))
    if finish:
        h.finish_run(run_id, status=RunStatus.SUCCESS, ended_at=at + 1, exit_code=0, reason=None, final=True)
    return run_id


def prune(h: History, log_dir: Path, **limits: float | None) -> dict[str, int]:
    options = {"max_age_s": None, "max_runs_per_job": None, "max_log_bytes": None} | limits
    return h.prune(now=T0 + 100 * DAY, log_dir=log_dir, **options)


def test_the_defaults_keep_a_busy_host_safe() -> None:
    assert DEFAULT_MAX_AGE_S == 90 * DAY
    assert DEFAULT_MAX_RUNS_PER_JOB == 10_000
    assert DEFAULT_MAX_LOG_BYTES == 1024**3


def test_rows_older_than_the_max_age_go_with_their_logs(history: History, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    old = run(history, logs, "a", T0)
    recent = run(history, logs, "a", T0 + 99 * DAY)
    skipped = history.record_not_run(job="b", status=RunStatus.SKIPPED, trigger=Trigger.SCHEDULE,
                                     scheduled_at=T0, tz=None, at=T0, reason="overlap").run_id
    counts = prune(history, logs, max_age_s=30 * DAY)
    assert counts["rows_by_age"] == 2
    assert history.get_run(old) is None and history.get_run(skipped) is None
    assert not (logs / "a" / f"{old}.log").exists()
    assert history.get_run(recent) is not None and (logs / "a" / f"{recent}.log").exists()


def test_a_running_run_is_never_pruned_however_old(history: History, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    running = run(history, logs, "a", T0, size=5000, finish=False)
    counts = prune(history, logs, max_age_s=1, max_runs_per_job=0, max_log_bytes=0)
    assert counts["rows_by_age"] == counts["rows_by_count"] == counts["logs_evicted"] == 0
    assert history.get_run(running).status is RunStatus.RUNNING
    assert (logs / "a" / f"{running}.log").exists()


def test_each_job_keeps_at_most_n_runs_the_newest(history: History, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    a = [run(history, logs, "a", T0 + i) for i in range(7)]
    b = [run(history, logs, "b", T0 + i) for i in range(2)]
    counts = prune(history, logs, max_runs_per_job=3)
    assert counts["rows_by_count"] == 4
    assert [r.run_id for r in history.latest_runs("a", 100)] == a[-3:]
    assert [r.run_id for r in history.latest_runs("b", 100)] == b
    assert sorted(p.name for p in (logs / "a").iterdir()) == sorted(f"{i}.log" for i in a[-3:])


def test_the_log_budget_evicts_the_oldest_logs_and_keeps_their_rows(history: History, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    ids = [run(history, logs, "a" if i % 2 else "b", T0 + i, size=1000) for i in range(6)]
    counts = prune(history, logs, max_log_bytes=2500)
    assert counts["logs_evicted"] == 4 and counts["log_bytes_freed"] == 4000
    present = [i for i in ids if Path(history.get_run(i).log_path).exists()]
    assert present == ids[-2:]
    assert all(history.get_run(i) is not None for i in ids)
    assert prune(history, logs, max_log_bytes=2500)["logs_evicted"] == 0


def test_prune_never_deletes_a_file_outside_the_log_dir(history: History, tmp_path: Path) -> None:
    elsewhere = tmp_path / "precious"
    run_id = run(history, elsewhere, "a", T0, size=10)
    counts = prune(history, tmp_path / "logs", max_age_s=1, max_log_bytes=0)
    assert counts["rows_by_age"] == 1
    assert (elsewhere / "a" / f"{run_id}.log").exists()


def test_prune_deletes_in_batches_beyond_one_transaction(history: History, tmp_path: Path) -> None:
    from cronplus.store import retention

    rows = [("a", 1, "success", "schedule", T0 + i, T0 + i, T0 + i + 1, 1) for i in range(retention.PRUNE_BATCH * 2 + 5)]
    history.conn.execute("BEGIN")
    history.conn.executemany(
        "INSERT INTO runs (job, attempt, status, trigger, scheduled_at, started_at, ended_at, final)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    history.conn.execute("COMMIT")
    counts = prune(history, tmp_path / "logs", max_runs_per_job=10)
    assert counts["rows_by_count"] == len(rows) - 10
    assert len(history.latest_runs("a", 100)) == 10


def test_the_log_budget_counts_only_logs_of_rows_still_in_history(history: History, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    ids = [run(history, logs, "a", T0 + i, size=1000) for i in range(4)]
    assert prune(history, logs, max_runs_per_job=2)["rows_by_count"] == 2
    assert prune(history, logs, max_log_bytes=2500)["logs_evicted"] == 0
    assert all(Path(history.get_run(i).log_path).exists() for i in ids[-2:])
    assert prune(history, logs, max_log_bytes=1500)["logs_evicted"] == 1


def test_the_log_budget_ignores_logs_still_being_written(history: History, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    done = run(history, logs, "a", T0, size=1000)
    running = run(history, logs, "a", T0 + 1, size=5000, finish=False)
    assert prune(history, logs, max_log_bytes=1000)["logs_evicted"] == 0
    assert prune(history, logs, max_log_bytes=999)["logs_evicted"] == 1
    assert not Path(history.get_run(done).log_path).exists()
    assert Path(history.get_run(running).log_path).exists()


def test_one_call_does_a_bounded_amount_of_work_and_later_calls_finish_it(history: History, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    ids = [run(history, logs, "a", T0 + i, size=100) for i in range(10)]
    first = history.prune(now=T0 + 100 * DAY, log_dir=logs, max_age_s=None, max_runs_per_job=2,
                          max_log_bytes=None, max_rows=3)
    assert first["rows_by_count"] == 3
    second = history.prune(now=T0 + 100 * DAY, log_dir=logs, max_age_s=None, max_runs_per_job=2,
                           max_log_bytes=None, max_rows=None)
    assert second["rows_by_count"] == 5
    assert [r.run_id for r in history.latest_runs("a", 100)] == ids[-2:]


def test_log_eviction_resumes_where_it_stopped_and_still_finds_older_logs(history: History, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    long_runner = run(history, logs, "slow", T0, size=1000, finish=False)
    ids = [run(history, logs, "a", T0 + i, size=1000) for i in range(1, 5)]
    assert prune(history, logs, max_log_bytes=2000)["logs_evicted"] == 2  # ids[0], ids[1]
    history.finish_run(long_runner, status=RunStatus.SUCCESS, ended_at=T0 + 9, exit_code=0, reason=None, final=True)
    # the oldest log now counts (below the cursor): it goes first, then nothing else is needed
    assert prune(history, logs, max_log_bytes=2000)["logs_evicted"] == 1
    assert not Path(history.get_run(long_runner).log_path).exists()
    assert all(Path(history.get_run(i).log_path).exists() for i in ids[2:])
