"""The `slow` alert (alert-on=slow): `events.RunSlow` -> one outbox row, in the transaction of
the run's `slow_at` mark (engine/slowness.py writes both; a full disk holds both), so the alert
is never lost nor sent for a mark that was not written. Alerting.subscribe makes `on_slow` a
transactional subscriber. Once per run (slowness.py publishes once per run), none for a backfill's
run (`event.backfill`: alerting.py); never raises but for a storage error (an alert problem never
fails a job).

The payload is the run's (alerting._data: still `running`, no end) with `duration_s` how long
it has run so far, `threshold_s`, `learned` ("p95 of last 50 successful runs 12.3s x 3" or
"expected-duration=90s") and a `message` saying both, for the chat formats (payloads.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from cronplus.alerts import payloads
from cronplus.status import AlertEvent

if TYPE_CHECKING:
    from cronplus.clock import Clock
    from cronplus.engine.events import RunSlow
    from cronplus.model import JobSpec, RunRecord
    from cronplus.store.api import AlertStore

log = logging.getLogger("cronplus.alerts")


class _Alerting(Protocol):
    """What on_slow uses of alerting.Alerting (which calls it: this module cannot import it)."""

    history: AlertStore
    clock: Clock

    def _data(self, job: JobSpec, record: RunRecord, event: AlertEvent, tail: str, cut: bool) -> dict[str, Any]: ...
    def _notify(self) -> None: ...


Enqueue = Callable[..., int | None]  # alerting.enqueue_alert(store, options, data, now=, run_id=)


def on_slow(alerting: _Alerting, event: RunSlow, enqueue: Enqueue) -> None:
    from cronplus.store.faults import is_storage_error

    job, record = event.job, event.record
    if event.backfill or not job.options.alert or AlertEvent.SLOW not in job.options.alert_on:
        return
    try:
        with alerting.history.transaction():  # a savepoint: its failure undoes only the alert
            data = alerting._data(job, record, AlertEvent.SLOW, "", False)
            data.update(duration_s=round(event.running_s, 3), threshold_s=round(event.threshold_s, 3),
                        learned=event.learned, slow_at=payloads.iso(record.slow_at),
                        message=f"still running after {_human(event.running_s)}, past its threshold "
                                f"{_human(event.threshold_s)} ({event.learned})")
            enqueue(alerting.history, job.options, data, now=alerting.clock.time(), run_id=record.run_id)
        alerting._notify()
    except Exception as exc:  # noqa: BLE001 - alerts never fail a job
        if is_storage_error(exc):  # the Store holds the mark with this alert, and writes both later
            raise
        log.exception("alerting: on_slow for %s failed", job.name)


def _human(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 120 else payloads._human_duration(seconds)
