"""`cronplus edit` with real editors (small scripts run through `sh -c`), real files, a real pty.
The command runs in-process (tests/incli.py) with an environment of its own, except where its
stdin must be a terminal; its $TMPDIR is the test's (edits it keeps stay in tmp_path)."""

from __future__ import annotations

import os
import pty
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests import incli

GOOD = "# cronplus: name=hello\n*/5 * * * * echo hello\n"
BAD = "# my jobs\n*/5 * * * * echo ok\n0 25 * * * echo bad hour\n"

# An editor that replaces the file with the next text from a list, one per invocation.
SEQUENCE_EDITOR = """\
import json, pathlib, sys
state = pathlib.Path(sys.argv[1])
texts = json.loads(state.read_text())
pathlib.Path(sys.argv[-1]).write_text(texts.pop(0))
state.write_text(json.dumps(texts))
with open(str(state) + ".calls", "a") as log:
    log.write(sys.argv[-1] + "\\n")
"""


def env_for(tmp_path: Path, editor: str, **extra: str) -> dict[str, str]:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = incli.base_env(
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        # explicit: under root the default would be the system crontab in /etc
        CRONPLUS_CRONTAB=str(tmp_path / "config" / "cronplus" / "crontab"),
        CRONPLUS_STATE_DIR=str(tmp_path / "state"),
        EDITOR=editor,
        TMPDIR=str(tmp_path / "tmp"),
    )
    env.update(extra)
    return env


def sequence_editor(tmp_path: Path, *texts: str) -> tuple[str, Path]:
    import json

    script = tmp_path / "ed.py"
    script.write_text(SEQUENCE_EDITOR)
    state = tmp_path / "ed.json"
    state.write_text(json.dumps(list(texts)))
    return f"{sys.executable} {script} {state}", state


def edit(tmp_path: Path, env: dict[str, str], *, tty: int | None = None) -> incli.Completed[str] | subprocess.CompletedProcess[str]:
    """`cronplus edit`; in-process with no terminal, the real command with `tty` as its stdin."""
    if tty is None:
        return incli.run(["edit"], env=env)
    return subprocess.run(
        [sys.executable, "-m", "cronplus", "edit"], capture_output=True, text=True, env=env, timeout=60, stdin=tty,
    )


def crontab(tmp_path: Path) -> Path:
    return tmp_path / "config" / "cronplus" / "crontab"


def test_a_valid_edit_is_installed_0600_with_a_summary(tmp_path: Path) -> None:
    editor, _ = sequence_editor(tmp_path, GOOD)
    proc = edit(tmp_path, env_for(tmp_path, editor))
    assert proc.returncode == 0, proc.stderr
    assert crontab(tmp_path).read_text() == GOOD
    assert stat.S_IMODE(crontab(tmp_path).stat().st_mode) == 0o600
    assert "+ added   hello" in proc.stdout


def test_the_editor_works_on_a_private_copy_and_gets_a_template_when_there_is_no_crontab(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    editor = f"sh -c 'cp \"$1\" {seen}; ls -ld \"$(dirname \"$1\")\" > {seen}.dir' sh"
    proc = edit(tmp_path, env_for(tmp_path, editor))
    assert proc.returncode == 0, proc.stderr
    assert "no changes made to crontab" in proc.stdout
    assert seen.read_text().startswith("# Your crontab for cronplus")
    assert (tmp_path / "seen.dir").read_text().startswith("drwx------")
    assert not crontab(tmp_path).exists()  # an untouched template installs nothing


def test_saving_without_changing_the_content_is_no_change_even_if_mtime_moves(tmp_path: Path) -> None:
    crontab(tmp_path).parent.mkdir(parents=True)
    crontab(tmp_path).write_text(GOOD)
    before = crontab(tmp_path).stat()
    proc = edit(tmp_path, env_for(tmp_path, "touch"))
    assert proc.returncode == 0
    assert proc.stdout.strip() == "no changes made to crontab"
    after = crontab(tmp_path).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_visual_wins_over_editor_and_editor_arguments_survive_the_shell(tmp_path: Path) -> None:
    editor, state = sequence_editor(tmp_path, GOOD)
    proc = edit(tmp_path, env_for(tmp_path, "false", VISUAL=editor + " --wait"))
    assert proc.returncode == 0, proc.stderr
    assert crontab(tmp_path).read_text() == GOOD
    assert Path(str(state) + ".calls").read_text().strip().endswith("/crontab")


def test_without_a_terminal_an_invalid_edit_exits_1_and_names_the_saved_file(tmp_path: Path) -> None:
    crontab(tmp_path).parent.mkdir(parents=True)
    crontab(tmp_path).write_text(GOOD)
    editor, _ = sequence_editor(tmp_path, BAD)
    proc = edit(tmp_path, env_for(tmp_path, editor))
    assert proc.returncode == 1
    assert f"{crontab(tmp_path)}:3:" in proc.stderr
    assert "retry" not in proc.stderr  # never prompts without a terminal
    saved = proc.stderr.split("your edits are saved in ")[1].split()[0]
    assert Path(saved).read_text() == BAD
    assert crontab(tmp_path).read_text() == GOOD  # nothing installed


def test_a_failing_editor_installs_nothing(tmp_path: Path) -> None:
    proc = edit(tmp_path, env_for(tmp_path, "false"))
    assert proc.returncode == 1
    assert "exited with status 1" in proc.stderr
    assert not crontab(tmp_path).exists()


def run_on_pty(tmp_path: Path, env: dict[str, str], answers: bytes) -> tuple[incli.Completed[str] | subprocess.CompletedProcess[str], bytes]:
    """Run `cronplus edit` with a real terminal as stdin; the answers are typed ahead."""
    master, slave = pty.openpty()
    try:
        os.write(master, answers)
        proc = edit(tmp_path, env, tty=slave)
        os.set_blocking(master, False)
        try:
            echoed = os.read(master, 65536)
        except (BlockingIOError, OSError):
            echoed = b""
        return proc, echoed
    finally:
        os.close(slave)
        os.close(master)


@pytest.mark.e2e
def test_on_a_terminal_an_invalid_edit_can_be_retried_on_the_same_text(tmp_path: Path) -> None:
    editor, state = sequence_editor(tmp_path, BAD, GOOD)
    proc, _ = run_on_pty(tmp_path, env_for(tmp_path, editor), b"y\n")
    assert proc.returncode == 0, proc.stderr
    assert "Do you want to retry the same edit? (y/n)" in proc.stderr
    assert crontab(tmp_path).read_text() == GOOD
    calls = Path(str(state) + ".calls").read_text().split()
    assert len(calls) == 2 and calls[0] == calls[1]  # the same file, re-opened


@pytest.mark.e2e
def test_answering_no_keeps_the_edits_and_exits_1(tmp_path: Path) -> None:
    editor, _ = sequence_editor(tmp_path, BAD)
    proc, _ = run_on_pty(tmp_path, env_for(tmp_path, editor), b"maybe\nn\n")
    assert proc.returncode == 1
    assert "Please answer y or n." in proc.stderr
    saved = proc.stderr.split("your edits are saved in ")[1].split()[0]
    assert Path(saved).read_text() == BAD
    assert not crontab(tmp_path).exists()


def test_find_editor_falls_back_to_the_first_known_editor_on_path(tmp_path: Path) -> None:
    from cronplus.service.editor import find_editor

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("editor", "vi"):
        (bindir / name).write_text("#!/bin/sh\n")
        (bindir / name).chmod(0o755)
    assert find_editor({"PATH": str(bindir)}) == "editor"
    assert find_editor({"PATH": str(bindir), "EDITOR": "nano", "VISUAL": " "}) == "nano"


def test_a_change_made_on_disk_during_the_edit_is_reported_and_kept_as_bak(tmp_path: Path) -> None:
    crontab(tmp_path).parent.mkdir(parents=True)
    crontab(tmp_path).write_text(GOOD)
    other = "# cronplus: name=other\n0 1 * * * echo other\n"
    script = tmp_path / "racing-editor.sh"
    script.write_text(f"#!/bin/sh\nprintf '%s' '{other}' > '{crontab(tmp_path)}'\necho '0 2 * * * echo mine' > \"$1\"\n")
    script.chmod(0o755)
    proc = edit(tmp_path, env_for(tmp_path, str(script)))
    assert proc.returncode == 0, proc.stderr
    assert "changed while you were editing" in proc.stderr
    assert crontab(tmp_path).read_text() == "0 2 * * * echo mine\n"
    assert crontab(tmp_path).with_name("crontab.bak").read_text() == other


def test_the_templates_are_valid_and_so_are_their_examples_once_uncommented() -> None:
    from cronplus.crontab.parser import parse_crontab
    from cronplus.service.editor import SYSTEM_TEMPLATE, USER_TEMPLATE

    for template, system in ((USER_TEMPLATE, False), (SYSTEM_TEMPLATE, True)):
        assert parse_crontab(template, path="t", system=system).jobs == ()
        uncommented = "".join(line[3:] if line.startswith("## ") else line for line in template.splitlines(True))
        crontab = parse_crontab(uncommented, path="u", system=system)
        assert [(j.name, j.options.retries, j.options.after) for j in crontab.jobs] == [
            ("backup", 1, ()), ("report", 1, ("backup",))]


def test_a_crontab_that_cannot_be_written_keeps_the_edits(tmp_path: Path) -> None:
    editor, _ = sequence_editor(tmp_path, GOOD)
    # Nobody, root included, can create a directory under /proc/self: reading finds no crontab,
    # installing fails.
    proc = edit(tmp_path, env_for(tmp_path, editor, CRONPLUS_CRONTAB="/proc/self/cronplus-test/crontab"))
    assert proc.returncode == 1
    assert "cannot install /proc/self/cronplus-test/crontab" in proc.stderr
    saved = proc.stderr.split("your edits are saved in ")[1].split()[0]
    assert Path(saved).read_text() == GOOD


def test_an_unreadable_crontab_path_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("a file where a directory should be")
    proc = edit(tmp_path, env_for(tmp_path, "true"))
    assert proc.returncode == 1
    assert "cannot read" in proc.stderr and "Traceback" not in proc.stderr
