"""The store contract (tests/store_contract.py) run against the PostgreSQL backend: the stores
of cronplus.store.postgres on the session's throw-away server (tests/pgserver.py), each test in
an empty schema of its own, logged in with a password from the URL. A second connection serves
the outbox's delivery side, as the worker's does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cronplus.store.api import HistoryStore, OutboxQueue
from cronplus.store.postgres import open_postgres, open_postgres_outbox
from tests.store_contract import StoreContract


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, pg_url: str) -> Iterator[HistoryStore]:
        store = open_postgres(pg_url, host="host-a")
        yield store
        store.close()

    @pytest.fixture
    def queue(self, store: HistoryStore, pg_url: str) -> Iterator[OutboxQueue]:
        queue = open_postgres_outbox(pg_url)  # a connection of its own, as the worker's
        yield queue
        queue.close()
