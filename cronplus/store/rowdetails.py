"""SQLite History's writes of schema 4's per-run details that are not a run's state, apart from
history.py (its line budget): the capped head and tail of a run's output (engine/outputexcerpt.py;
a single host keeps none, so SQLite is written only when asked). History mixes it in; the
statement runs in History's unit of work (`_update`: its own transaction or the caller's)."""

from __future__ import annotations


class RowDetails:
    def _update(self, sql: str, params: tuple[object, ...]) -> None:
        raise NotImplementedError  # History's

    def set_output_excerpt(self, run_id: int, head: str, tail: str) -> None:  # before finish_run, in its transaction
        self._update("UPDATE runs SET output_head = ?, output_tail = ? WHERE run_id = ?", (head, tail, run_id))
