"""Run ends held for a shared store's database, kept on disk when the supervisor stops before it
is back (issue 14 item 3: nothing lost), and written by the next supervisor at its start.

- `save(path, entries)`: the held ends (JSON objects, one a line: `{"kind": "end", "run_id",
  "status", "ended_at", "exit_code", "signal", "reason", "final", "outputs", "usage",
  "excerpt"}` or `{"kind": "final", "run_id", "reason"}`: a retry abandoned), added to those of
  the file already there (a start that could not write them leaves them), written to a temporary
  file, fsynced and renamed: the file is whole or not there. 0600 in the state directory.
- `replay(history, path, on_final) -> int`: each entry whose row is still what it was when it
  was held (`running` for an end, not final for a retry abandoned) is written in a transaction
  of its own, with `on_final(record)` in it (the engine publishes RunEnded: its alert decision
  commits with it); a row another host settled meanwhile (its lease taken over) is left alone.
  The file is removed once every entry is written; a failure leaves it for the next start, and
  entries already written are skipped then (their rows are no longer as held).
Only run ends (and retries abandoned) are kept: a held pid, slow mark, queued time or start
event of a run is not (the end says how it went; those are details of its row); Store.close()
logs each one not written.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cronplus.model import RunRecord
from cronplus.status import RunStatus
from cronplus.store.api import HistoryStore

log = logging.getLogger("cronplus")

HELD_FILE = "held-writes.jsonl"


def load(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            entry = json.loads(line)
        except ValueError:
            log.error("%s:%d: not a held write (skipped)", path, number)
            continue
        if isinstance(entry, dict) and isinstance(entry.get("run_id"), int):
            entries.append(entry)
    return entries


def save(path: Path, entries: Sequence[dict[str, Any]]) -> None:
    lines = [json.dumps(entry, ensure_ascii=False) for entry in [*load(path), *entries]]
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def replay(history: HistoryStore, path: Path, on_final: Callable[[RunRecord, bool], None]) -> int:
    """Write the ends kept in `path` (see the module docstring); how many were written.
    `on_final(record, will_retry)` runs in each one's transaction."""
    entries = load(path)
    written = 0
    for entry in entries:
        run_id = int(entry["run_id"])
        record = history.get_run(run_id)
        if record is None:
            continue
        if entry.get("kind") == "final":
            if record.status is RunStatus.RUNNING or not _pending_retry(history, record):
                continue
            with history.transaction():
                on_final(history.mark_final(run_id, str(entry.get("reason") or "retry abandoned")), False)
        else:
            if record.status is not RunStatus.RUNNING:
                continue
            with history.transaction():
                on_final(_finish(history, run_id, entry), not entry.get("final", True))
        written += 1
    if entries:
        path.unlink(missing_ok=True)
        log.warning("%d run end(s) held while the history database was away written from %s", written, path)
    return written


def _pending_retry(history: HistoryStore, record: RunRecord) -> bool:
    """The ended attempt is not final yet (the row of a retry that will not happen)."""
    last = history.last_final_run(record.job, at_or_before=record.scheduled_at.timestamp()) if record.scheduled_at else None
    return last is None or last.run_id != record.run_id


def _finish(history: HistoryStore, run_id: int, entry: dict[str, Any]) -> RunRecord:
    if entry.get("outputs"):
        history.set_outputs(run_id, [(str(k), str(v)) for k, v in entry["outputs"]])
    usage = entry.get("usage")
    if usage:
        history.set_usage(run_id, peak_memory_bytes=usage[0], cpu_s=usage[1])
    excerpt = entry.get("excerpt")
    if excerpt:
        history.set_output_excerpt(run_id, str(excerpt[0]), str(excerpt[1]))
    return history.finish_run(run_id, status=RunStatus(entry["status"]), ended_at=float(entry["ended_at"]),
                              exit_code=entry.get("exit_code"), reason=entry.get("reason"),
                              final=bool(entry.get("final", True)), signal=entry.get("signal"))
