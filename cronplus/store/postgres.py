"""The PostgreSQL store (`--db postgresql://...`): the entry points that store/open.py
imports, only when such a URL is given, and the connection they share. The driver is psycopg 3
(the `cluster` extra), imported here and only here, when a store is opened.

Entry points (open.py's factory):
- `open_postgres(url, *, host=None, readonly=False) -> HistoryStore` (postgres_history.
  PostgresHistory): the supervisor's store (one thread), or with `readonly` a reader whose
  transactions are read-only; `host` is stamped on the rows it inserts (default: the host name).
  A writer creates and migrates the schema; a reader raises NoHistoryError when there is none.
- `open_postgres_outbox(url) -> OutboxQueue` (postgres_outbox.PostgresOutbox): the delivery
  side, on a connection of its own (the worker thread's).

The URL is libpq's (`postgresql://[user[:password]@][host][:port][/dbname][?param=value...]`):
credentials come from it, from PGPASSFILE (~/.pgpass) or from a libpq service
(`?service=NAME`, PGSERVICEFILE); `options=-csearch_path=NAME` puts the tables in a schema of
their own. The URL is never printed: messages show redact.redact_db_url (no password, no query
but host/port/dbname/user/service), and libpq's own messages go through redact_urls_in.

Schema: schema.PG_MIGRATIONS (the same description as SQLite's), version in the table
cronplus_schema, applied in one transaction under an advisory lock, so supervisors starting
together migrate once. Text columns are COLLATE "C": order and ranges by code point, as SQLite.

A lost connection (server restart, network): the call that finds it raises DatabaseUnavailable
(a CronplusError naming the redacted URL and saying so; faults.storage_problem counts it, so the
scheduler's Store holds that write and retries it: storeguard.py's "shared store" rules, no run
started without its row), and the next call reconnects. libpq's connect_timeout, TCP keepalives
and tcp_user_timeout are set unless the URL sets them (postgres_conn._defaults), so a network cut
blocks a call for seconds, not TCP's minutes. `shared` is True: a run's log is on the host that
ran it, so each end keeps the log's head and tail in its row (engine/outputexcerpt.py).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from cronplus.store.postgres_conn import SCHEMA_VERSION, SCHEMES, Database, DatabaseUnavailable

if TYPE_CHECKING:
    from cronplus.store.postgres_history import PostgresHistory
    from cronplus.store.postgres_outbox import PostgresOutbox

__all__ = ["SCHEMA_VERSION", "SCHEMES", "DatabaseUnavailable", "is_postgres_url", "open_postgres", "open_postgres_outbox"]


def is_postgres_url(text: str) -> bool:
    return text.partition("://")[0].lower() in SCHEMES and "://" in text


def open_postgres(url: str, *, host: str | None = None, readonly: bool = False) -> PostgresHistory:
    from cronplus.store.postgres_history import PostgresHistory

    return PostgresHistory(Database(url, readonly=readonly), host=host or socket.gethostname())


def open_postgres_outbox(url: str, *, readonly: bool = False) -> PostgresOutbox:
    from cronplus.store.postgres_outbox import PostgresOutbox

    return PostgresOutbox(Database(url, readonly=readonly))
