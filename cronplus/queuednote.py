"""What a `queue=` attempt that waits in the broker is called wherever a run is shown (docs/workers.md):
its row is `running` (its attempt was decided and sent: no new status) with `queue` set and
no `host` yet (store/remoteruns.py: `host IS NULL` means nobody has taken it). `cronplus log`
(its reason column), `cronplus jobs` (LAST STATUS), the run JSON's `reason` (the API, `log
--json`) and the web pages say "queued on NAME (no worker has taken it yet)" instead of a
bare `running` with no host.

- `queued_note(record) -> str | None`: that phrase, or None for any other run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronplus.model import RunRecord


def queued_note(record: RunRecord) -> str | None:
    if record.status != "running" or record.queue is None or record.host is not None:
        return None
    return f"queued on {record.queue} (no worker has taken it yet)"
