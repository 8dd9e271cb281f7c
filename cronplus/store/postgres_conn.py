"""The PostgreSQL store's connection (postgres.py's docstring has the contract): `Database`,
one psycopg connection that migrates the schema when a writer opens it and reconnects after it
was lost; DatabaseUnavailable (faults.py) for a server that cannot be reached."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from cronplus.errors import CronplusError
from cronplus.store.faults import DatabaseUnavailable
from cronplus.store.readhistory import NoHistoryError
from cronplus.store.schema import PG_MIGRATIONS

if TYPE_CHECKING:
    import psycopg

__all__ = ["SCHEMA_VERSION", "SCHEMES", "Database", "DatabaseUnavailable"]

SCHEMES = ("postgresql", "postgres")
SCHEMA_VERSION = len(PG_MIGRATIONS)
_MIGRATION_LOCK = 0x63726F6E  # pg_advisory_xact_lock key ("cron"): one migrator at a time
CONNECT_TIMEOUT_S = 10


class Database:
    """One psycopg connection (autocommit: each statement its own transaction unless inside
    `conn.transaction()`), opened now, reopened by `conn()` after it was lost."""

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        from cronplus.redact import redact_db_url

        self._url = url
        self.readonly = readonly
        self.shown = redact_db_url(url)  # for messages: never the URL itself
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._conn = self._connect(migrate=not readonly)

    def __repr__(self) -> str:
        return f"Database({self.shown!r}, readonly={self.readonly})"

    def conn(self, *, reconnect: bool = True) -> psycopg.Connection[dict[str, Any]]:
        """The live connection; a lost one is replaced, but not inside a transaction
        (`reconnect=False`): what the transaction wrote is gone with it, so its later
        statements must fail too rather than run on their own on a new connection."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            if not reconnect:
                raise DatabaseUnavailable(f"history database {self.shown}: connection lost in a transaction;"
                                          " reconnecting on the next call")
            self.close()
            self._conn = self._connect(migrate=False)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn a lost connection into DatabaseUnavailable (the next call reconnects)."""
        import psycopg

        try:
            yield
        except psycopg.OperationalError as exc:
            if self._conn is None or self._conn.closed or self._conn.broken:
                raise DatabaseUnavailable(f"history database {self.shown}: connection lost ({_why(exc, self._url)});"
                                          " reconnecting on the next call") from None
            raise

    def _connect(self, *, migrate: bool) -> psycopg.Connection[dict[str, Any]]:
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError:
            raise CronplusError("PostgreSQL needs cronplus[cluster]: pip install 'cronplus[cluster]'") from None
        try:
            conn = psycopg.connect(self._url, autocommit=True, row_factory=dict_row, application_name="cronplus",
                                   **_defaults(self._url))
        except psycopg.Error as exc:  # ProgrammingError too: a malformed URL
            raise DatabaseUnavailable(f"history database {self.shown}: cannot connect ({_why(exc, self._url)})") from None
        try:
            if self.readonly:
                conn.execute("SET default_transaction_read_only = on")
            version = _version(conn, create=migrate)
            if version is None:
                raise NoHistoryError(f"no history yet in {self.shown} (no cronplus tables there)")
            if version > SCHEMA_VERSION:
                raise CronplusError(f"history database {self.shown}: schema {version} is newer than this"
                                    f" cronplus ({SCHEMA_VERSION})")
            if migrate and version < SCHEMA_VERSION:
                _migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn


def _defaults(url: str) -> dict[str, Any]:
    """libpq settings that bound how long a lost server (a network cut: no RST, packets dropped)
    can block a call, unless the URL sets them: connect_timeout; TCP keepalives, so an idle
    connection to a vanished server is known dead within ~20 s (tcp(7)); tcp_user_timeout, so a
    statement sent into the void fails within 15 s instead of TCP's ~15 minutes of retransmits."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        given = conninfo_to_dict(url)
    except psycopg.Error:  # a malformed URL: connect() says so
        given = {}
    wanted: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S, "keepalives": 1, "keepalives_idle": 10,
                              "keepalives_interval": 5, "keepalives_count": 2, "tcp_user_timeout": 15_000}
    return {key: value for key, value in wanted.items() if key not in given}


def _version(conn: psycopg.Connection[dict[str, Any]], *, create: bool) -> int | None:
    row = conn.execute("SELECT to_regclass('cronplus_schema') IS NOT NULL AS present").fetchone()
    if not (row and row["present"]):
        return 0 if create else None
    row = conn.execute("SELECT version FROM cronplus_schema").fetchone()
    return int(row["version"]) if row else 0


def _migrate(conn: psycopg.Connection[dict[str, Any]]) -> None:
    """Apply the missing versions, all in one transaction, under an advisory lock: another
    supervisor starting at the same moment waits, then finds nothing left to do."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS cronplus_schema (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM cronplus_schema FOR UPDATE").fetchone()
        if row is None:
            conn.execute("INSERT INTO cronplus_schema (version) VALUES (0)")
        version = int(row["version"]) if row else 0
        for index in range(version, SCHEMA_VERSION):
            conn.execute(PG_MIGRATIONS[index])  # several statements: allowed without parameters
        conn.execute("UPDATE cronplus_schema SET version = %s", (max(version, SCHEMA_VERSION),))


def _why(exc: BaseException, url: str) -> str:
    """libpq's message, first line, with any URL in it cut to its host and the URL's secrets
    taken out: libpq quotes the bad part of a malformed URL, which may be the password
    (`invalid percent-encoded token: "..."`), so a quoted part of such a message goes whole."""
    import psycopg

    from cronplus.redact import redact_urls_in

    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    if isinstance(exc, psycopg.ProgrammingError):  # the URL itself is wrong
        text = re.sub(r'"[^"]*"', '"…"', text)
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return redact_urls_in(text)


def _secrets(url: str) -> list[str]:
    """The password of a URL and its secret parameters, as written and percent-decoded."""
    rest = url.partition("://")[2].partition("#")[0]
    userinfo = rest.rpartition("@")[0]
    found = [userinfo.partition(":")[2]] if ":" in userinfo else []
    for part in rest.partition("?")[2].split("&"):
        key, _, value = part.partition("=")
        if key in ("password", "sslpassword"):
            found.append(value)
    return [s for s in {*found, *(unquote(f) for f in found)} if len(s) >= 4]  # shorter: would eat words


class QmarkConnection:
    """The connection as retention.py speaks to it (retention.Connection): `?` placeholders,
    rows by column name; lost connections raise DatabaseUnavailable."""

    def __init__(self, db: Database, *, in_transaction: Callable[[], bool]) -> None:
        self._db = db
        self._in_transaction = in_transaction

    @staticmethod
    def _sql(sql: str) -> bytes:
        return sql.replace("%", "%%").replace("?", "%s").encode()

    def execute(self, sql: str, parameters: Any = (), /) -> psycopg.Cursor[dict[str, Any]]:
        with self._db.guard():
            return self._db.conn(reconnect=not self._in_transaction()).execute(self._sql(sql), parameters)

    def executemany(self, sql: str, parameters: Any, /) -> None:
        with self._db.guard(), self._db.conn(reconnect=not self._in_transaction()).cursor() as cur:
            cur.executemany(self._sql(sql), parameters)
