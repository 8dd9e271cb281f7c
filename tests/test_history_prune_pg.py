"""Retention (store/retention.py) on PostgreSQL: tests/test_history_prune.py's tests, unchanged,
with the `history` fixture giving the PostgreSQL store (on the session's throw-away server, in a
schema of this test's own) instead of SQLite's History."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cronplus.store.postgres import open_postgres
from cronplus.store.postgres_history import PostgresHistory
from tests.test_history_prune import (  # the tests themselves, collected here again
    test_a_running_run_is_never_pruned_however_old,
    test_each_job_keeps_at_most_n_runs_the_newest,
    test_log_eviction_resumes_where_it_stopped_and_still_finds_older_logs,
    test_one_call_does_a_bounded_amount_of_work_and_later_calls_finish_it,
    test_prune_deletes_in_batches_beyond_one_transaction,
    test_prune_never_deletes_a_file_outside_the_log_dir,
    test_rows_older_than_the_max_age_go_with_their_logs,
    test_the_log_budget_counts_only_logs_of_rows_still_in_history,
    test_the_log_budget_evicts_the_oldest_logs_and_keeps_their_rows,
    test_the_log_budget_ignores_logs_still_being_written,
)

__all__ = [
    "test_a_running_run_is_never_pruned_however_old",
    "test_each_job_keeps_at_most_n_runs_the_newest",
    "test_log_eviction_resumes_where_it_stopped_and_still_finds_older_logs",
    "test_one_call_does_a_bounded_amount_of_work_and_later_calls_finish_it",
    "test_prune_deletes_in_batches_beyond_one_transaction",
    "test_prune_never_deletes_a_file_outside_the_log_dir",
    "test_rows_older_than_the_max_age_go_with_their_logs",
    "test_the_log_budget_counts_only_logs_of_rows_still_in_history",
    "test_the_log_budget_evicts_the_oldest_logs_and_keeps_their_rows",
    "test_the_log_budget_ignores_logs_still_being_written",
]


@pytest.fixture
def history(pg_url: str) -> Iterator[PostgresHistory]:
    store = open_postgres(pg_url, host="host-a")
    yield store
    store.close()
