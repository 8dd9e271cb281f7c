"""Claims in SQL (runs.claim, schema 4; engine/claims.py decides what a row claims): a tick's row
is inserted only if no row holds its claim yet, `(job, scheduled_at, attempt, claim)` being
unique where claim is not NULL (index runs_claim). Both backends insert with `ON_CLAIMED`, which
SQLite (3.24+, a partial index's WHERE in the conflict target) and PostgreSQL read alike: the
insert that finds the claim taken does nothing, so the loser learns it lost from the row that
is not there, and the winner's row (committed first: PostgreSQL makes a conflicting insert wait
for the other transaction's end) is the only one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

ON_CLAIMED = " ON CONFLICT (job, scheduled_at, attempt, claim) WHERE claim IS NOT NULL DO NOTHING"


class _Conn(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...


def inserted(conn: _Conn, run_ids: Sequence[int | None]) -> list[int | None]:
    """The run_ids of an executemany that inserted fewer rows than given (SQLite: ids known
    before the insert): those whose row is there, None for the others (their claims lost)."""
    marks = ", ".join("?" * len(run_ids))
    have = {row[0] for row in conn.execute(f"SELECT run_id FROM runs WHERE run_id IN ({marks})", list(run_ids))}
    return [run_id if run_id in have else None for run_id in run_ids]


def unfinished_sql(columns: str, *, mark: str, same: str) -> str:
    """RunReader.unfinished's query (`mark`: the placeholder, `same`: SQLite's `IS`, PostgreSQL's
    `IS NOT DISTINCT FROM`): the `running` rows (index runs_by_status), then the ended attempts
    not final since `since` (index runs_by_time) that no later attempt of theirs follows."""
    return (f"SELECT {columns} FROM runs WHERE status = 'running' UNION ALL"
            f" SELECT {columns} FROM runs AS r WHERE coalesce(started_at, ended_at) >= {mark} AND final = 0"
            " AND status != 'running' AND NOT EXISTS (SELECT 1 FROM runs AS n WHERE n.job = r.job"
            f" AND n.scheduled_at {same} r.scheduled_at AND n.attempt > r.attempt) ORDER BY run_id")
