"""`cronplus edit`'s private copy: in $TMPDIR of the command's environment, removed when the
session ends, kept (and named) only when it holds edits that were not installed."""

from __future__ import annotations

import stat
from pathlib import Path

from tests import incli
from tests.test_edit import BAD, GOOD, env_for, sequence_editor


def edit(tmp_path: Path, editor: str) -> incli.Completed[str]:
    return incli.run(["edit"], env=env_for(tmp_path, editor))


def test_the_copy_is_made_in_the_environments_tmpdir(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    proc = edit(tmp_path, f"sh -c 'dirname \"$(dirname \"$1\")\" > {seen}' sh")
    assert proc.returncode == 0, proc.stderr
    assert seen.read_text().strip() == str(tmp_path / "tmp")


def test_nothing_is_left_behind_when_the_edit_is_installed_unchanged_or_abandoned(tmp_path: Path) -> None:
    editor, _ = sequence_editor(tmp_path, GOOD)
    assert edit(tmp_path, editor).returncode == 0  # installed
    assert edit(tmp_path, "true").returncode == 0  # no change
    assert edit(tmp_path, "false").returncode == 1  # the editor failed, nothing was typed
    assert list((tmp_path / "tmp").iterdir()) == []


def test_edits_that_were_not_installed_are_kept_in_a_private_dir_that_is_named(tmp_path: Path) -> None:
    editor, _ = sequence_editor(tmp_path, BAD)
    proc = edit(tmp_path, editor)
    assert proc.returncode == 1
    saved = Path(proc.stderr.split("your edits are saved in ")[1].split()[0])
    [kept] = (tmp_path / "tmp").iterdir()
    assert saved.parent == kept and kept.name.startswith("cronplus-edit-")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700 and saved.read_text() == BAD
