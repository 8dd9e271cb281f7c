"""What the engine tells about runs (alerts/alerting.Alerting is the one today): stated here as a
Protocol so that the engine does not import alerts, the package that depends on it.

The scheduler calls these on its loop thread right after the history write they are about (a
final write's call inside its transaction); they never raise (an alert problem never fails a
job), except a storage error, which the caller's storeguard.Store holds with the write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cronplus.errors import CrontabError
    from cronplus.model import JobOptions, JobSpec, RunRecord


class AlertSink(Protocol):
    def on_start(self, job: JobSpec, record: RunRecord) -> None: ...
    def on_end(self, job: JobSpec, record: RunRecord, *, will_retry: bool) -> None: ...
    def on_not_run(self, job: JobSpec, record: RunRecord) -> None: ...  # missed, upstream_failed
    def on_config_error(self, defaults: JobOptions, error: CrontabError) -> None: ...
