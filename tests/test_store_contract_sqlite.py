"""The store contract (tests/store_contract.py) run against the SQLite backend: History on a
real file in tmp_path. A second backend gets a module like this one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.store.api import HistoryStore, OutboxQueue
from cronplus.store.history import History, connect
from cronplus.store.outbox import Outbox
from tests.store_contract import StoreContract


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[HistoryStore]:
        history = History(tmp_path / "state" / "history.db", host="host-a")
        yield history
        history.close()

    @pytest.fixture
    def queue(self, store: HistoryStore, tmp_path: Path) -> Iterator[OutboxQueue]:
        conn = connect(tmp_path / "state" / "history.db")  # a connection of its own, as the worker's
        yield Outbox(conn)
        conn.close()
