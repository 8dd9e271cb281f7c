"""Fixtures shared by the test modules: a state dir in tmp_path and a History writer on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.history import History


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def history(state: Path) -> Iterator[History]:
    h = History(state / "history.db")
    yield h
    h.close()
