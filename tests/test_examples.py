"""The example pipeline really runs: train -> evaluate -> deploy -> predict -> report, as separate
python3 processes in a scratch data dir, and examples/crontab is a valid cronplus crontab."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from cronplus.crontab.parser import load_crontab
from cronplus.status import RunStatus, Trigger, TriggerRule
from cronplus.store.history import History

ROOT = Path(__file__).resolve().parent.parent
ML = ROOT / "examples" / "ml"


def step(name: str, data: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run one script as cron would: clean environment, PATH=/usr/bin:/bin, from the repo root."""
    full = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT), "CRONPLUS_EXAMPLE_DIR": str(data),
            "CRONPLUS_HISTORY_DB": str(data / "history.db"), **env}
    return subprocess.run([sys.executable, str(ML / f"{name}.py")], capture_output=True, text=True, env=full,
                          cwd=ROOT, timeout=60)


def test_the_pipeline_trains_deploys_a_better_model_and_predicts_with_it(tmp_path: Path) -> None:
    assert step("predict", tmp_path).returncode == 99  # nothing deployed yet: skip, not failure
    train = step("train", tmp_path, TRAIN_SEED="1")
    assert train.returncode == 0, train.stderr
    candidate = json.loads((tmp_path / "candidate.json").read_text())
    assert [round(c) for c in candidate["coef"]] == [3, -2, 0, 1] or abs(candidate["coef"][0] - 3) < 0.2
    assert step("evaluate", tmp_path).returncode == 0
    deploy = step("deploy", tmp_path)
    assert deploy.returncode == 0, deploy.stderr
    model = json.loads((tmp_path / "model.json").read_text())
    assert model["id"] == candidate["id"] and (tmp_path / "models" / f"{model['id']}.json").exists()
    predict = step("predict", tmp_path, CRONPLUS_SCHEDULED_TIME="2026-01-04T03:10:00+01:00")
    assert predict.returncode == 0, predict.stderr
    csv = (tmp_path / "predictions" / "2026-01-04T031000p0100.csv").read_text().splitlines()
    assert csv[0] == "model,x1,x2,x3,prediction" and len(csv) == 21
    x1, x2, x3, y = map(float, csv[1].split(",")[1:])
    assert abs(y - (3 * x1 - 2 * x2 + 0.5 * x3 + 1)) < 1.0  # it learned the hidden relation


def test_a_worse_candidate_makes_evaluate_exit_with_the_skip_code_and_deploy_refuses(tmp_path: Path) -> None:
    step("train", tmp_path, TRAIN_SEED="1", TRAIN_SAMPLES="500")
    step("evaluate", tmp_path)
    step("deploy", tmp_path)
    deployed = json.loads((tmp_path / "model.json").read_text())["id"]
    step("train", tmp_path, TRAIN_SEED="2", TRAIN_SAMPLES="8", TRAIN_NOISE="6")
    evaluate = step("evaluate", tmp_path)
    assert evaluate.returncode == 99, evaluate.stdout + evaluate.stderr
    assert "not better" in evaluate.stdout
    deploy = step("deploy", tmp_path)  # run by hand anyway: it must not ship the loser
    assert deploy.returncode == 1
    assert json.loads((tmp_path / "model.json").read_text())["id"] == deployed


def test_the_report_summarises_the_history_read_only(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    hist = History(db)
    now = time.time()
    for status in (RunStatus.SUCCESS, RunStatus.SUCCESS, RunStatus.FAILED):
        rid = hist.start_run(job="predict", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=now - 50, tz=None,
                             started_at=now - 50, log_path=None, owner="x")
        hist.finish_run(rid, status=status, ended_at=now - 40, exit_code=0 if status == "success" else 1,
                        reason=None, final=True)
    hist.record_not_run(job="deploy", status=RunStatus.SKIPPED, trigger=Trigger.SCHEDULE, scheduled_at=now - 30,
                        tz=None, at=now - 30, reason="upstream evaluate skipped")
    hist.close()
    before = db.stat().st_mtime_ns
    report = step("report", tmp_path)
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    assert any(line.split() == ["predict", "success", "2"] for line in lines), report.stdout
    assert any(line.split() == ["predict", "failed", "1"] for line in lines)
    assert any(line.split() == ["deploy", "skipped", "1"] for line in lines)
    assert db.stat().st_mtime_ns == before
    assert list((tmp_path / "reports").glob("*.txt"))


def test_the_example_crontab_is_valid_and_wires_the_pipeline() -> None:
    crontab = load_crontab(ROOT / "examples" / "crontab")
    jobs = {job.name: job for job in crontab.jobs}
    assert set(jobs) == {"train", "evaluate", "deploy", "predict", "report"}
    assert jobs["evaluate"].options.after == ("train",)
    assert jobs["evaluate"].options.skip_exit == 99
    assert jobs["deploy"].options.after == ("evaluate",)
    assert jobs["deploy"].options.trigger is TriggerRule.ALL_SUCCESS
    assert jobs["report"].options.trigger is TriggerRule.ALL_DONE
    assert jobs["predict"].schedule.text == "*/10 * * * *"
    assert jobs["train"].options.retries == 2 and jobs["predict"].options.timeout == 120
    for job in crontab.jobs:  # every script it names exists, relative to the repo root (HOME=.)
        env = dict(job.env)
        assert env["HOME"] == "." and "/usr/bin" in env["PATH"].split(":")
        script = job.command.split()[1]
        assert (ROOT / script).is_file(), script


def test_the_quickstart_runs_the_pipeline_through_cronplus_itself(tmp_path: Path) -> None:
    """As in the README: from a directory holding examples/, trigger train; evaluate and deploy
    follow, the jobs find their scripts through HOME=. and write under ./state/example."""
    import shutil

    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8"}
    base = [sys.executable, "-m", "cronplus", "--crontab", "examples/crontab", "--state-dir", "./state"]

    def cronplus(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    first = cronplus("trigger", "train", "--wait")
    assert first.returncode == 0, first.stdout + first.stderr
    runs = [json.loads(line) for line in cronplus("log", "--json").stdout.splitlines()]
    assert [(r["job"], r["status"]) for r in runs] == [("train", "success"), ("evaluate", "success"), ("deploy", "success")]
    assert (tmp_path / "state" / "example" / "model.json").exists()
    again = cronplus("trigger", "train", "--wait")  # the same week's model again: not better
    assert again.returncode == 0, again.stdout + again.stderr
    runs = [json.loads(line) for line in cronplus("log", "--json").stdout.splitlines()]
    assert [(r["job"], r["status"]) for r in runs[3:]] == [("train", "success"), ("evaluate", "skipped"), ("deploy", "skipped")]
    table = cronplus("jobs")
    assert table.returncode == 0 and "skipped" in table.stdout
