"""service/views.py on a real SQLite history: the crontab's jobs joined with their last final
run, the runs in progress, what the supervisor holds back, and jobs removed while running."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cronplus.crontab.parser import parse_crontab
from cronplus.service.views import JobRow, held_in_reply, held_states, job_rows
from cronplus.status import RunStatus, Trigger
from cronplus.store.history import History

CRONTAB = (
    "# cronplus: name=train\n0 3 * * 0 echo train\n"
    "# cronplus: name=predict after=train tz=Europe/Paris\n*/10 * * * * echo predict\n"
    "# cronplus: name=idle\n@reboot echo boot\n"
)
NOW = datetime(2026, 3, 4, 12, 0, 30, tzinfo=UTC)  # a Wednesday


def test_rows_join_the_crontab_with_the_history_and_what_the_supervisor_holds(tmp_path: Path) -> None:
    db = tmp_path / "state" / "history.db"
    t = NOW.timestamp()
    hist = History(db)
    try:
        done = hist.start_run(job="train", attempt=1, trigger=Trigger.MANUAL, scheduled_at=t - 100, tz=None,
                              started_at=t - 100, log_path=None, owner="old")
        hist.finish_run(done, status=RunStatus.SUCCESS, ended_at=t - 24.5, exit_code=0, reason=None, final=True)
        live = hist.start_run(job="predict", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=t - 5, tz="Europe/Paris",
                              started_at=t - 5, log_path=None, owner="live")
        gone = hist.start_run(job="retired", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=t - 9, tz=None,
                              started_at=t - 9, log_path=None, owner="live")
    finally:
        hist.close()
    crontab = parse_crontab(CRONTAB, path=str(tmp_path / "crontab"), system=False)

    rows = job_rows(db, crontab, NOW, {"idle": "queued (overlap)"})

    assert [r.job for r in rows] == ["train", "predict", "idle", "retired"]
    train, predict, idle, retired = rows
    assert train.last is not None and (train.last.run_id, train.last.status) == (done, RunStatus.SUCCESS)
    assert train.running == () and train.waiting is None
    assert train.next_run == datetime(2026, 3, 8, 3, 0).astimezone()  # Sunday 03:00, local time
    assert predict.last is None and [r.run_id for r in predict.running] == [live]
    assert (predict.schedule, predict.tz, predict.after) == ("*/10 * * * *", "Europe/Paris", ("train",))
    assert predict.next_run is not None and predict.next_run.timestamp() == NOW.replace(minute=10, second=0).timestamp()
    assert idle.next_run is None and idle.waiting == "queued (overlap)"
    assert retired == JobRow(job="retired", schedule=None, tz=None, after=(), next_run=None, last=None,
                             running=retired.running, waiting=None)
    assert [r.run_id for r in retired.running] == [gone]
    assert train.to_json() == {
        "job": "train", "schedule": "0 3 * * 0", "tz": None, "after": [], "next_run": train.next_run.isoformat(),
        "last_run_id": done, "last_status": "success", "last_start": train.last.started_at.isoformat(),
        "last_end": train.last.ended_at.isoformat() if train.last.ended_at else None, "duration_s": 75.5,
        "running": [], "waiting": False,
        "paused": False, "paused_since": None, "paused_by": None, "paused_all": False,
    }
    assert idle.to_json()["waiting"] is True and predict.to_json()["running"] == [live]


def test_without_a_history_database_every_job_is_listed_without_runs(tmp_path: Path) -> None:
    crontab = parse_crontab(CRONTAB, path=str(tmp_path / "crontab"), system=False)
    rows = job_rows(tmp_path / "state" / "history.db", crontab, NOW, {})
    assert [(r.job, r.last, r.running, r.waiting) for r in rows] == [
        ("train", None, (), None), ("predict", None, (), None), ("idle", None, (), None)]
    assert not (tmp_path / "state" / "history.db").exists()  # read-only: nothing created


def test_held_states_prefer_waiting_on_an_upstream_and_ignore_what_a_reply_garbles() -> None:
    assert held_states([("b", "queued"), ("b", "waiting"), ("c", "active"), ("d", "queued")]) == {
        "b": "waiting on upstream", "d": "queued (overlap)"}
    reply = {"ok": True, "runs": [{"job": "a", "state": "waiting"}, "junk", {"job": 3, "state": "queued"},
                                  {"job": "e", "state": "queued", "run_id": None}]}
    assert held_in_reply(reply) == {"a": "waiting on upstream", "e": "queued (overlap)"}
    assert held_in_reply({}) == {} and held_in_reply({"runs": "nope"}) == {}
