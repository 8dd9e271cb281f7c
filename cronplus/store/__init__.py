"""The store: the run history and the alert outbox in one SQLite file (WAL) in the state dir.
The only package that imports sqlite3; others name its types as schema.Connection and
schema.StoreError.

- open: the one way to open a store (writer, reader, outbox queue) from a path or a URL
  (`--db`; postgresql:// is cronplus.store.postgres, imported then);
- api: the store as Protocols (what engine and alerts may use; tests/store_contract.py is
  the behaviour every backend must show); checkpoint: the supervisor writer's WAL checkpoints
  on a thread of their own; schema: migrations and `connect` (CorruptHistory, db_problem); readhistory: the read side
  (ReadHistory, the queries of log/jobs/output); history: the writer (History, one thread);
  retention: prune by age, count and log bytes; outbox: the alert outbox's rows; storeguard:
  the scheduler's writes, held while the disk refuses them; faults: which errors mean the
  storage refused a write.
- ddl: the words of the schema's one description (schema.VERSIONS) and its SQLite and PostgreSQL
  renderings; postgres (entry points), postgres_conn, postgres_history, postgres_outbox: the
  same Protocols on PostgreSQL (`--db postgresql://...`; psycopg, imported only there).

May import: foundation.
"""
