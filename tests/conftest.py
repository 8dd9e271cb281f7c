"""Fixtures shared by the test modules: a state dir in tmp_path, a History writer on it, and the
real supervisors a test starts (killed at the end)."""

from __future__ import annotations

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
