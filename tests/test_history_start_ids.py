"""start_runs gives a tick's rows the ids AUTOINCREMENT would (above every id given before), with
each log path named after its own id; rows that bring their own ids (storeguard's held rows) keep
them. Real SQLite in tmp_path."""

from __future__ import annotations

from pathlib import Path

from cronplus.status import RunStatus, Trigger
from cronplus.store.history import History, RunStart

T0 = 1_750_000_000.0


def starts(n: int, *, ids: list[int | None] | None = None) -> list[RunStart]:
    return [RunStart(job=f"job{i}", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None, started_at=T0,
                     owner="sup-1", log_path=lambda rid, i=i: f"/logs/job{i}/{rid}.log",
                     run_id=None if ids is None else ids[i]) for i in range(n)]


def test_a_ticks_ids_follow_every_id_given_before_whichever_way_it_was_given(tmp_path: Path) -> None:
    with History(tmp_path / "history.db") as h:
        held = h.start_runs(starts(1, ids=[7]))
        missed = h.record_not_run(job="m", status=RunStatus.MISSED, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None,
                                  at=T0, reason="supervisor down")
        tick = h.start_runs(starts(2))
        assert (held, missed.run_id, tick) == ([7], 8, [9, 10])
        assert [h.get_run(r).log_path for r in tick] == ["/logs/job0/9.log", "/logs/job1/10.log"]


def test_rows_that_bring_their_ids_keep_them_and_their_log_paths(tmp_path: Path) -> None:
    with History(tmp_path / "history.db") as h:
        got = h.start_runs(starts(2, ids=[40, 41]))
        assert got == [40, 41]
        assert [h.get_run(r).log_path for r in got] == ["/logs/job0/40.log", "/logs/job1/41.log"]
        assert h.start_runs(starts(1)) == [42]
