"""The store contract (tests/store_contract.py) run against the SQLite backend: History on a
real file in tmp_path. A second backend gets a module like this one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.store.api import HistoryStore
from cronplus.store.history import History
from tests.store_contract import StoreContract


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[HistoryStore]:
        history = History(tmp_path / "state" / "history.db", host="host-a")
        yield history
        history.close()
