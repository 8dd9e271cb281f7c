"""Data into and out of a run (engine/runio.py, SPEC §8): `trigger --param K=V` reaches the job's
environment and its history row; `$CRONPLUS_OUTPUT`'s KEY=VALUE lines are the run's outputs, in
history, in `log`, and in the after= jobs' environment as CRONPLUS_UPSTREAM_<JOB>_<KEY>. Real
processes: the in-process CLI (tests/incli.py) for a trigger without a supervisor, a real
supervisor (`cronplus run`) through the control socket."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
from pathlib import Path

import pytest

from cronplus.engine import runio
from cronplus.errors import UsageError
from tests import incli
from tests.test_daemon import cli, start
from tests.test_faults_restart import Shifted, offset_to_next_minute, rows
from tests.waiting import wait_until


def _env(tmp_path: Path, crontab: Path) -> dict[str, str]:
    return incli.base_env(HOME=str(tmp_path), CRONPLUS_CRONTAB=str(crontab),
                          CRONPLUS_STATE_DIR=str(tmp_path / "state"))


def _cronplus(tmp_path: Path, crontab: Path, *argv: str) -> incli.Completed[str]:
    return incli.run(["--crontab", str(crontab), "--state-dir", str(tmp_path / "state"), *argv],
                     env=_env(tmp_path, crontab))


def _crontab(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crontab"
    path.write_text(f"HOME={tmp_path}\n{text}")  # the jobs' cwd: where a `touch pwned` would land
    return path


def _rows(state: Path) -> list[tuple]:
    conn = sqlite3.connect(state / "history.db")
    try:
        return [tuple(r) for r in conn.execute("SELECT job, status, params, outputs, reason FROM runs ORDER BY run_id")]
    finally:
        conn.close()


# ---- parameters ---------------------------------------------------------------------------


def test_trigger_param_reaches_the_jobs_env_and_history_without_a_supervisor(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    crontab = _crontab(tmp_path, f"# cronplus: name=report\n0 3 * * 0 env | grep ^CRONPLUS_PARAM_ | sort > {seen}\n"
                                 "# cronplus: name=after-report after=report\n"
                                 f"0 3 * * 0 env | grep -c ^CRONPLUS_PARAM_ > {seen}.down; true\n")
    out = _cronplus(tmp_path, crontab, "trigger", "report", "--param", "day=2026-12-01",
                    "--param", "Mode=full run; $(touch pwned)")
    assert out.returncode == 0, out.stderr
    # case kept, the value never executed (no `pwned` file in the job's cwd, $HOME)
    assert seen.read_text() == "CRONPLUS_PARAM_Mode=full run; $(touch pwned)\nCRONPLUS_PARAM_day=2026-12-01\n"
    assert not (tmp_path / "pwned").exists()
    assert Path(f"{seen}.down").read_text() == "0\n"  # downstream runs do not inherit them
    rows = _rows(tmp_path / "state")
    assert json.loads(rows[0][2]) == {"day": "2026-12-01", "Mode": "full run; $(touch pwned)"}
    assert rows[1][2] is None
    log = _cronplus(tmp_path, crontab, "log", "report", "--json")
    assert json.loads(log.stdout)["params"] == {"day": "2026-12-01", "Mode": "full run; $(touch pwned)"}
    human = _cronplus(tmp_path, crontab, "log", "report", "--wide")
    assert "params day=2026-12-01 Mode=full run; $(touch pwned)" in human.stdout


@pytest.mark.parametrize("arg, said", [
    ("1day=x", "'1day' is not a name"),
    ("my-key=x", "'my-key' is not a name"),
    ("novalue", "expected K=V"),
    ("=x", "an empty name"),
    ("big=" + "x" * 4097, "big: the value has 4097 bytes, at most 4096 are allowed"),
])
def test_a_bad_param_is_refused_in_one_line_before_anything_runs(tmp_path: Path, arg: str, said: str) -> None:
    crontab = _crontab(tmp_path, f"# cronplus: name=report\n0 3 * * 0 touch {tmp_path}/ran\n")
    out = _cronplus(tmp_path, crontab, "trigger", "report", "--param", arg)
    assert out.returncode == 2
    assert said in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "ran").exists()


def test_more_than_64_params_are_refused() -> None:
    with pytest.raises(UsageError, match="65 parameters given, at most 64"):
        runio.params_from_args([f"k{i}=v" for i in range(65)])
    assert len(runio.params_from_args([f"k{i}=v" for i in range(64)])) == 64


def test_trigger_param_through_a_running_supervisor_and_a_bad_one_refused_by_it(supervisors, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    sup = start(supervisors, tmp_path, f"# cronplus: name=report retries=1 retry-delay=0.1\n"
                                       f"0 0 1 1 * echo \"$CRONPLUS_PARAM_day\" >> {seen}; exit 3\n")
    out = cli(sup.state, sup.crontab, "trigger", "report", "--wait", "--param", "day=2026-12-01")
    assert out.returncode == 1, out.stderr
    assert seen.read_text() == "2026-12-01\n2026-12-01\n"  # every attempt gets them, and records them
    assert [json.loads(r[2]) for r in _rows(sup.state)] == [{"day": "2026-12-01"}] * 2
    # the socket validates too (a client that skips the CLI's check)
    from cronplus.service import control

    answer = next(control.request(sup.state / "control.sock", {"cmd": "trigger", "job": "report",
                                                               "params": {"bad-key": "x"}}, timeout=10))
    assert answer["ok"] is False and "'bad-key' is not a name" in answer["error"]
    assert len(_rows(sup.state)) == 2


# ---- outputs -------------------------------------------------------------------------------


PIPELINE = """\
# cronplus: name=train
0 3 * * 0 printf 'model_path=/models/cand 1.json\\nscore=0.93\\nnotes<<EOF\\nline one\\nline two\\nEOF\\n' >> "$CRONPLUS_OUTPUT"; ls -l "$CRONPLUS_OUTPUT" > {dir}/mode
# cronplus: name=evaluate after=train
0 3 * * 0 env | grep ^CRONPLUS_UPSTREAM_ | sort > {dir}/down; printf \\%s "$CRONPLUS_UPSTREAM_TRAIN_NOTES" > {dir}/notes; ls {state}/outputs > {dir}/listing
"""


def test_outputs_reach_the_downstream_jobs_env_history_and_log(tmp_path: Path) -> None:
    crontab = _crontab(tmp_path, PIPELINE.format(dir=tmp_path, state=tmp_path / "state"))
    out = _cronplus(tmp_path, crontab, "trigger", "train", "--wait")
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "mode").read_text().startswith("-rw------- ")  # 0600, fresh per attempt
    assert (tmp_path / "down").read_text() == ("CRONPLUS_UPSTREAM_TRAIN_MODEL_PATH=/models/cand 1.json\n"
                                               "CRONPLUS_UPSTREAM_TRAIN_NOTES=line one\n"  # (grep: its first line)
                                               "CRONPLUS_UPSTREAM_TRAIN_SCORE=0.93\n")
    assert (tmp_path / "notes").read_text() == "line one\nline two"
    # train's file was removed after its attempt; evaluate's own was there while it ran
    assert (tmp_path / "listing").read_text().startswith("2.") and len((tmp_path / "listing").read_text().split()) == 1
    assert os.listdir(tmp_path / "state" / "outputs") == []
    assert stat.S_IMODE(os.stat(tmp_path / "state" / "outputs").st_mode) == 0o700
    log = _cronplus(tmp_path, crontab, "log", "train", "--json")
    assert json.loads(log.stdout)["outputs"] == {"model_path": "/models/cand 1.json", "score": "0.93",
                                                 "notes": "line one\nline two"}
    human = _cronplus(tmp_path, crontab, "log", "train", "--wide")
    assert "outputs model_path=/models/cand 1.json score=0.93 notes=line one\\x0aline two" in human.stdout


def test_a_huge_outputs_file_is_capped_and_the_run_says_so(tmp_path: Path) -> None:
    # 1 MiB of a repeated line, the file then made 1 GiB (sparse): read up to 64 KiB only, the
    # line cut there is no value
    crontab = _crontab(tmp_path, "# cronplus: name=chatty\n"
                                 "0 3 * * 0 echo first=1 > \"$CRONPLUS_OUTPUT\"; "
                                 "yes k=0123456789abcdef | head -c 1048576 >> \"$CRONPLUS_OUTPUT\"; "
                                 "truncate -s 1G \"$CRONPLUS_OUTPUT\"\n")
    out = _cronplus(tmp_path, crontab, "trigger", "chatty")
    assert out.returncode == 0, out.stderr
    [(_, status, _, outputs, reason)] = _rows(tmp_path / "state")
    assert status == "success"
    assert json.loads(outputs) == {"first": "1", "k": "0123456789abcdef"}
    assert reason == "outputs file cut at 64 KiB (1073741824 bytes written)"
    assert os.listdir(tmp_path / "state" / "outputs") == []


def test_bad_output_keys_are_skipped_and_named_and_values_are_never_executed(tmp_path: Path) -> None:
    crontab = _crontab(tmp_path, "# cronplus: name=w\n"
                                 "0 3 * * 0 printf 'ok=$(touch pwned)\\n2bad=x\\nno equals\\nmy-key=y\\n' > \"$CRONPLUS_OUTPUT\"\n"
                                 "# cronplus: name=r after=w\n0 3 * * 0 echo \"$CRONPLUS_UPSTREAM_W_OK\" > got\n")
    out = _cronplus(tmp_path, crontab, "trigger", "w")
    assert out.returncode == 0, out.stderr
    rows = _rows(tmp_path / "state")
    assert json.loads(rows[0][3]) == {"ok": "$(touch pwned)"}
    assert rows[0][4] == ("outputs skipped: line 2: '2bad' is not a name (letters, digits and _, not starting with a "
                          "digit); line 3: no '='; line 4: 'my-key' is not a name (letters, digits and _, not starting "
                          "with a digit)")
    assert (tmp_path / "got").read_text() == "$(touch pwned)\n"
    assert not (tmp_path / "pwned").exists()


def test_outputs_of_a_supervisors_run_survive_a_restart_and_feed_a_later_downstream(supervisors, tmp_path: Path) -> None:
    text = ("# cronplus: name=train\n0 0 1 1 * echo score=0.93 >> \"$CRONPLUS_OUTPUT\"\n"
            f"# cronplus: name=evaluate after=train\n0 0 1 1 * echo \"$CRONPLUS_UPSTREAM_TRAIN_SCORE\" >> {tmp_path}/got\n")
    sup = start(supervisors, tmp_path, text)
    assert cli(sup.state, sup.crontab, "trigger", "train", "--wait").returncode == 0
    assert sup.stop() == 0
    sup = start(supervisors, tmp_path, text)
    out = cli(sup.state, sup.crontab, "log", "train", "--json")
    assert json.loads(out.stdout)["outputs"] == {"score": "0.93"}
    # evaluate triggered alone after the restart uses train's run of before (dagrun's rule): its outputs too
    assert cli(sup.state, sup.crontab, "trigger", "evaluate", "--wait").returncode == 0
    assert (tmp_path / "got").read_text() == "0.93\n0.93\n"


def test_parse_outputs_last_repeated_key_wins_and_an_unended_heredoc_is_named() -> None:
    parsed = runio.parse_outputs(b"a=1\nb=2\na=3\nc<<END\nx\n")
    assert parsed.pairs == (("b", "2"), ("a", "3"))
    assert parsed.note == "outputs skipped: line 4: c<<END never ended"
    assert runio.upstream_env({"model-v2.train": (("score", "1"),)}) == {"CRONPLUS_UPSTREAM_MODEL_V2_TRAIN_SCORE": "1"}


def test_the_example_pipeline_hands_trains_candidate_to_evaluate_and_deploy_as_outputs(tmp_path: Path) -> None:
    ml = Path(__file__).resolve().parent.parent / "examples" / "ml"
    data = tmp_path / "data"
    crontab = _crontab(tmp_path, f"CRONPLUS_EXAMPLE_DIR={data}\nTRAIN_SEED=1\n"
                                 f"# cronplus: name=train\n0 3 * * 0 {sys.executable} {ml}/train.py\n"
                                 f"# cronplus: name=evaluate after=train skip-exit=99\n0 3 * * 0 {sys.executable} {ml}/evaluate.py\n"
                                 f"# cronplus: name=deploy after=evaluate\n0 3 * * 0 {sys.executable} {ml}/deploy.py\n")
    out = _cronplus(tmp_path, crontab, "trigger", "train", "--wait")
    assert out.returncode == 0, out.stdout + out.stderr
    candidate = json.loads((data / "model.json").read_text())["id"]
    path = str((data / "candidates" / f"{candidate}.json").resolve())
    rows = _rows(tmp_path / "state")
    assert [r[:2] for r in rows] == [("train", "success"), ("evaluate", "success"), ("deploy", "success")]
    assert json.loads(rows[0][3])["candidate"] == path and float(json.loads(rows[0][3])["train_mse"]) > 0
    assert json.loads((data / "evaluation.json").read_text())["candidate_path"] == path  # not guessed: given
    assert json.loads(rows[1][3])["candidate"] == path  # and handed on to deploy


def test_an_outputs_file_the_job_replaced_is_read_and_a_fifo_in_its_place_is_refused(tmp_path: Path) -> None:
    crontab = _crontab(tmp_path, "# cronplus: name=mv\n0 3 * * 0 echo a=1 > new; mv new \"$CRONPLUS_OUTPUT\"\n"
                                 "# cronplus: name=fifo\n0 3 * * 0 rm \"$CRONPLUS_OUTPUT\"; mkfifo \"$CRONPLUS_OUTPUT\"\n")
    assert _cronplus(tmp_path, crontab, "trigger", "mv").returncode == 0
    assert _cronplus(tmp_path, crontab, "trigger", "fifo").returncode == 0  # it ends: no open waits on the FIFO
    rows = _rows(tmp_path / "state")
    assert json.loads(rows[0][3]) == {"a": "1"}
    assert rows[1][1] == "success" and rows[1][4].startswith("outputs lost: not a regular file: ")
    assert os.listdir(tmp_path / "state" / "outputs") == []


def test_a_scheduled_ticks_outputs_reach_its_after_job_under_a_shifted_supervisor(shifted, tmp_path: Path) -> None:  # noqa: F811 - the fixture

    _crontab(tmp_path, "# cronplus: name=extract\n* * * * * echo rows=42 >> \"$CRONPLUS_OUTPUT\"\n"
                       f"# cronplus: name=load after=extract\n* * * * * echo \"$CRONPLUS_UPSTREAM_EXTRACT_ROWS\" >> {tmp_path}/got\n")
    offset, tick = offset_to_next_minute(lead=3.0)
    sup = Shifted(tmp_path, offset)
    shifted.append(sup)
    sup.wait_ready()
    wait_until(lambda: rows(sup.state, "SELECT 1 FROM runs WHERE job = 'load' AND final = 1 AND scheduled_at = ?", tick),
               30, "the tick's load run")
    assert sup.stop() == 0
    assert (tmp_path / "got").read_text().splitlines()[0] == "42"
    assert rows(sup.state, "SELECT outputs FROM runs WHERE job = 'extract' AND scheduled_at = ?", tick) == [('{"rows": "42"}',)]


def test_outputs_files_a_killed_supervisor_left_are_removed_by_the_next_one(supervisors, tmp_path: Path) -> None:
    outputs = tmp_path / "state" / "outputs"
    outputs.mkdir(parents=True)
    (outputs / "7.999999.out").write_text("a=1\n")  # another pid's: a dead supervisor's
    start(supervisors, tmp_path, "# cronplus: name=a\n0 0 1 1 * true\n")
    assert os.listdir(outputs) == []
