"""Fixtures shared by the test modules: a state dir in tmp_path, a History writer on it, the
real supervisors a test starts (killed at the end), and the session's own temp dir.

Temp files: for the whole session $TMPDIR (which every child inherits, and tempfile follows)
is a directory of the session's own, so nothing a test or a command under test makes lands in
the real /tmp. Everything a test puts there must be gone when the session ends: what is left is
a leak (a command that does not clean up, or a test that should have used tmp_path), and fails
the session.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cronplus.history import History

if TYPE_CHECKING:
    from tests.test_daemon import Supervisor


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def history(state: Path) -> Iterator[History]:
    h = History(state / "history.db")
    yield h
    h.close()


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    """Real `cronplus run` processes a test started; any still alive at the end is killed."""
    started: list[Supervisor] = []
    yield started
    for sup in started:
        if sup.proc.poll() is None:
            sup.proc.kill()
            sup.proc.wait()


@pytest.fixture(scope="session", autouse=True)
def session_tmpdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """$TMPDIR for the session: children inherit it, and this process's tempfile uses it."""
    tmpdir = tmp_path_factory.mktemp("TMPDIR")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(tmpdir))
        mp.setattr(tempfile, "tempdir", str(tmpdir))
        yield tmpdir
        left = sorted(p.name for p in tmpdir.iterdir())
    if left:
        pytest.fail(f"the tests left {left} in $TMPDIR ({tmpdir}): each would have stayed in /tmp", pytrace=False)



def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The random order's seed even under -q (pytest-randomly prints it only in the header), so
    an order-dependent failure can be replayed with --randomly-seed=SEED."""
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int) and config.pluginmanager.has_plugin("randomly"):
        terminalreporter.write_line(f"test order: --randomly-seed={seed}")
