"""Where `$CRONPLUS_OUTPUT` files are made (cronplus/rundir.py): $RUNTIME_DIRECTORY, then the
state directory (never $XDG_RUNTIME_DIR: it goes at logout); a directory of each state dir's own there; a
runtime directory we must not trust is one warning line and the next choice. Real directories in
tmp_path, real jobs through the in-process CLI and real supervisors."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cronplus import paths
from cronplus.rundir import outputs_dir, outputs_dir_of, state_key
from cronplus.service.units import render_unit
from cronplus.service.workerunit import render_worker_unit
from tests import incli
from tests.test_daemon import Supervisor, cli
from tests.waiting import wait_until

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
WHAT = "$CRONPLUS_OUTPUT files"


def _private(path: Path) -> Path:
    path.mkdir(parents=True)
    path.chmod(0o700)
    return path


def _mode(path: Path) -> int:
    return path.lstat().st_mode & 0o7777


# ---- the choice ------------------------------------------------------------------------------


def test_runtime_directory_comes_first_then_the_state_dir_never_the_login_sessions(tmp_path: Path, lines) -> None:
    state, runtime, xdg = tmp_path / "state", _private(tmp_path / "rt"), _private(tmp_path / "xdg")
    key = state_key(state)
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    both = {"RUNTIME_DIRECTORY": f"{runtime}:{tmp_path}/second", "XDG_RUNTIME_DIR": str(xdg)}
    assert outputs_dir(state, both) == runtime / "outputs" / key  # a colon list: its first entry
    # $XDG_RUNTIME_DIR goes when the user logs out; a supervisor started by hand may outlive that
    assert outputs_dir(state, {"XDG_RUNTIME_DIR": str(xdg)}) == state / "outputs"
    assert outputs_dir(state, {"RUNTIME_DIRECTORY": ""}) == state / "outputs"
    assert outputs_dir(state, {"RUNTIME_DIRECTORY": "relative"}) == state / "outputs"
    assert outputs_dir(state, {}) == state / "outputs"
    for made in (runtime / "outputs", runtime / "outputs" / key):
        assert _mode(made) == 0o700, made
    assert os.listdir(xdg) == []
    assert not (tmp_path / "second").exists() and not state.exists()  # the state dir's is made at the first run
    assert lines.lines == []


def test_each_state_dir_has_its_own_directory_and_two_spellings_of_one_share_it(tmp_path: Path) -> None:
    runtime = _private(tmp_path / "rt")
    env = {"RUNTIME_DIRECTORY": str(runtime)}
    first, second = _private(tmp_path / "one" / "state"), _private(tmp_path / "two" / "state")
    (tmp_path / "alias").symlink_to(first)
    assert outputs_dir(first, env) != outputs_dir(second, env)
    assert outputs_dir(tmp_path / "alias", env) == outputs_dir(first, env)
    assert outputs_dir(tmp_path / "one" / "x" / ".." / "state", env) == outputs_dir(first, env)


def test_a_directory_of_ours_others_may_list_is_made_private_and_the_base_keeps_its_makers_mode(
        tmp_path: Path, lines) -> None:
    state, runtime = tmp_path / "state", tmp_path / "rt"
    (runtime / "outputs").mkdir(parents=True)
    for made in (runtime, runtime / "outputs"):
        made.chmod(0o755)  # RuntimeDirectoryMode=0755, say
    assert outputs_dir(state, {"RUNTIME_DIRECTORY": str(runtime)}) == runtime / "outputs" / state_key(state)
    assert (_mode(runtime), _mode(runtime / "outputs")) == (0o755, 0o700)
    assert lines.lines == []


# ---- refusals: one line, the next choice ---------------------------------------------------


def test_a_symlink_in_the_runtime_directory_is_refused_in_one_line_and_the_state_dir_used(tmp_path: Path,
                                                                                          lines) -> None:
    state, runtime, elsewhere = tmp_path / "state", _private(tmp_path / "rt"), _private(tmp_path / "elsewhere")
    (runtime / "outputs").symlink_to(elsewhere)
    assert outputs_dir(state, {"RUNTIME_DIRECTORY": str(runtime)}) == state / "outputs"
    assert lines.lines == [f"not using {runtime}/outputs for {WHAT}: it is a symbolic link (remove it);"
                           f" they go to {state}/outputs instead"]
    assert os.listdir(elsewhere) == []  # nothing made through the link


def test_a_directory_others_may_write_is_refused_in_one_line_and_the_state_dir_used(tmp_path: Path, lines) -> None:
    state, runtime = tmp_path / "state", _private(tmp_path / "rt")
    open_dir = runtime / "outputs" / state_key(state)
    open_dir.mkdir(parents=True)
    open_dir.chmod(0o777)
    chosen = outputs_dir(state, {"RUNTIME_DIRECTORY": str(runtime)})
    assert chosen == state / "outputs"
    assert lines.lines == [f"not using {open_dir} for {WHAT}: another user may write in it (mode 0777; chmod 700 it);"
                           f" they go to {chosen} instead"]


def test_a_runtime_directory_that_is_missing_or_a_file_is_one_line_each(tmp_path: Path, lines) -> None:
    state = tmp_path / "state"
    (tmp_path / "file").write_text("")
    assert outputs_dir(state, {"RUNTIME_DIRECTORY": str(tmp_path / "gone")}) == state / "outputs"
    assert outputs_dir(state, {"RUNTIME_DIRECTORY": str(tmp_path / "file")}) == state / "outputs"
    assert lines.lines == [
        f"not using {tmp_path}/gone for {WHAT}: No such file or directory; they go to {state}/outputs instead",
        f"not using {tmp_path}/file for {WHAT}: it is not a directory (remove it); they go to {state}/outputs instead",
    ]


@ROOT_ONLY
def test_a_runtime_directory_of_another_user_is_refused(tmp_path: Path, lines) -> None:
    state, runtime = tmp_path / "state", _private(tmp_path / "rt")
    theirs = _private(runtime / "outputs")
    os.chown(theirs, 65534, 65534)
    assert outputs_dir(state, {"RUNTIME_DIRECTORY": str(runtime)}) == state / "outputs"
    assert lines.lines == [f"not using {theirs} for {WHAT}: it is owned by uid 65534, not by us (uid 0)"
                           f" (remove it, or chown it); they go to {state}/outputs instead"]
    assert os.listdir(theirs) == []


def test_paths_carry_the_runtime_variables_of_the_environment_they_were_resolved_from(tmp_path: Path) -> None:
    runtime = _private(tmp_path / "rt")
    resolved = paths.resolve(state_dir=tmp_path / "state", env={"HOME": str(tmp_path), "RUNTIME_DIRECTORY": str(runtime),
                                                                "PATH": "/bin"})
    assert resolved.runtime_env == (("RUNTIME_DIRECTORY", str(runtime)),)
    assert outputs_dir_of(resolved) == runtime / "outputs" / state_key(tmp_path / "state")
    assert paths.resolve(state_dir=tmp_path / "state", env={"HOME": str(tmp_path)}).runtime_env == ()


# ---- real jobs ---------------------------------------------------------------------------------


OUTPUTS_JOB = """\
HOME={dir}
# cronplus: name=train
0 3 * * 0 stat -c '\\%a \\%s \\%U \\%F' "$CRONPLUS_OUTPUT" > at-start; echo "$CRONPLUS_OUTPUT" > where; echo score=0.93 >> "$CRONPLUS_OUTPUT"
"""


def test_a_jobs_outputs_file_is_made_in_the_runtime_directory_read_into_history_and_removed(tmp_path: Path) -> None:
    runtime = _private(tmp_path / "rt")
    crontab = tmp_path / "crontab"
    crontab.write_text(OUTPUTS_JOB.format(dir=tmp_path))
    env = incli.base_env(HOME=str(tmp_path), RUNTIME_DIRECTORY=str(runtime))
    argv = ["--crontab", str(crontab), "--state-dir", str(tmp_path / "state")]
    out = incli.run([*argv, "trigger", "train", "--wait"], env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    where = Path((tmp_path / "where").read_text().strip())
    directory = runtime / "outputs" / state_key(tmp_path / "state")
    assert where.parent == directory and re.fullmatch(r"1\.\d+\.out", where.name)
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert (tmp_path / "at-start").read_text() == f"600 0 {me} regular empty file\n"  # fresh, empty, 0600
    assert not where.exists() and os.listdir(directory) == []
    assert not (tmp_path / "state" / "outputs").exists()
    log = incli.run([*argv, "log", "train", "--json"], env=env)
    assert json.loads(log.stdout)["outputs"] == {"score": "0.93"}


@pytest.mark.e2e
def test_a_refused_runtime_directory_is_one_line_on_stderr_and_the_run_keeps_its_outputs(tmp_path: Path) -> None:
    runtime, elsewhere = _private(tmp_path / "rt"), _private(tmp_path / "elsewhere")
    (runtime / "outputs").symlink_to(elsewhere)
    crontab = tmp_path / "crontab"
    crontab.write_text(OUTPUTS_JOB.format(dir=tmp_path))
    env = incli.base_env(HOME=str(tmp_path), RUNTIME_DIRECTORY=str(runtime))
    argv = [sys.executable, "-m", "cronplus", "--crontab", str(crontab), "--state-dir", str(tmp_path / "state")]
    done = subprocess.run([*argv, "trigger", "train", "--wait"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.splitlines() == [f"not using {runtime}/outputs for {WHAT}: it is a symbolic link (remove it);"
                                        f" they go to {tmp_path}/state/outputs instead"]
    assert Path((tmp_path / "where").read_text().strip()).parent == tmp_path / "state" / "outputs"
    log = subprocess.run([*argv, "log", "train", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(log.stdout)["outputs"] == {"score": "0.93"}
    assert os.listdir(elsewhere) == []


@pytest.mark.e2e
def test_a_second_supervisor_on_the_same_runtime_directory_does_not_sweep_the_firsts_live_file(
        supervisors, tmp_path: Path) -> None:
    # Each supervisor's start removes other pids' files in its outputs directory (runio.sweep):
    # in a runtime directory both see, each must have its own.
    runtime = _private(tmp_path / "rt")
    env = {"RUNTIME_DIRECTORY": str(runtime)}
    go = tmp_path / "go"
    first = Supervisor(_private(tmp_path / "a"), "# cronplus: name=slow\n"
                       f"0 0 1 1 * echo k=v >> \"$CRONPLUS_OUTPUT\"; while [ ! -e {go} ]; do sleep 0.05; done\n", env=env)
    supervisors.append(first)
    first.wait_ready()
    assert cli(first.state, first.crontab, "trigger", "slow").returncode == 0
    mine = runtime / "outputs" / state_key(first.state)
    wait_until(lambda: os.listdir(mine), 20, "the slow run's outputs file")
    second = Supervisor(_private(tmp_path / "b"), "# cronplus: name=other\n0 0 1 1 * true\n", env=env)
    supervisors.append(second)
    second.wait_ready()  # its leftovers sweep is done
    go.touch()
    wait_until(lambda: json.loads(cli(first.state, first.crontab, "log", "slow", "--json").stdout or "{}").get("ended_at"),
               20, "the slow run's end")
    record = json.loads(cli(first.state, first.crontab, "log", "slow", "--json").stdout)
    assert (record["status"], record["outputs"], record["reason"]) == ("success", {"k": "v"}, None)
    assert first.stop() == 0 and second.stop() == 0
    assert os.listdir(mine) == []


# ---- the units ---------------------------------------------------------------------------------


def test_every_unit_asks_systemd_for_a_private_runtime_directory_of_its_own() -> None:
    supervisor = render_unit(user=False, exec_start=["/x", "run"])
    worker = render_worker_unit(user=False, exec_start=["/x", "worker", "--system"], env_file="/etc/default/w")
    # 0711: a system crontab's jobs of other users reach their own (0600, chowned) file by its path
    assert "\nRuntimeDirectory=cronplus\nRuntimeDirectoryMode=0711\n" in supervisor
    # not the supervisor's: systemd removes a unit's runtime directory when that unit stops
    assert "\nRuntimeDirectory=cronplus-worker\nRuntimeDirectoryMode=0711\n" in worker
    # the user unit's own ($XDG_RUNTIME_DIR/cronplus): it lives as long as the unit, not as one login
    assert "\nRuntimeDirectory=cronplus\nRuntimeDirectoryMode=0700\n" in render_unit(user=True, exec_start=["/x", "run"])


@pytest.mark.e2e
@ROOT_ONLY
def test_a_system_crontab_job_of_another_user_writes_its_outputs_under_the_system_units_runtime_directory(
        tmp_path: Path) -> None:
    """Regression: the outputs directory was 0700 root, so a job run as its line's user could not
    open its own (chowned) $CRONPLUS_OUTPUT: `Permission denied`, the run a success with no outputs."""
    if not os.path.isdir("/dev/shm"):
        pytest.skip("needs /dev/shm: a runtime base the job's user can reach (tmp_path's parents are 0700)")
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="cronplus-test-") as base:
        os.chmod(base, 0o755)  # /run, say
        _system_job_outputs(tmp_path, Path(base) / "rt")


def _system_job_outputs(tmp_path: Path, runtime: Path) -> None:
    runtime.mkdir(mode=0o755)  # RuntimeDirectory= as systemd makes it unless told a mode
    (tmp_path / "sys.crontab").write_text("HOME=/\n# cronplus: name=train\n"
                                          '0 0 * * * nobody echo score=0.93 >> "$CRONPLUS_OUTPUT"\n')
    argv = [sys.executable, "-m", "cronplus", "--system", "--crontab", str(tmp_path / "sys.crontab"),
            "--state-dir", str(tmp_path / "state")]
    env = incli.base_env(HOME=str(tmp_path), RUNTIME_DIRECTORY=str(runtime))
    done = subprocess.run([*argv, "trigger", "train", "--wait"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    log = subprocess.run([*argv, "log", "train", "--json"], env=env, capture_output=True, text=True, timeout=60)
    record = json.loads(log.stdout)
    assert (record["status"], record["outputs"]) == ("success", {"score": "0.93"}), record
    directory = runtime / "outputs" / state_key(tmp_path / "state")
    assert [_mode(d) for d in (runtime, runtime / "outputs", directory)] == [0o755, 0o711, 0o711]
    assert os.listdir(directory) == []
