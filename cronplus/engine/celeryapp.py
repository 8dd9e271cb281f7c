"""The Celery application both sides use (imported only when a job has `queue=` or a worker
starts: the `celery` extra). Redis is the broker; there is no result backend: the run row in the
shared store is where results go (engine/remote.py), fenced, so nothing depends on Celery's
delivery guarantees beyond "a message is not lost".

Settings and why:
* `task_acks_late` + `task_reject_on_worker_lost`: the message is acknowledged when the attempt
  is over, so a worker killed before it claimed the run leaves the message to another worker
  (nothing lost); a redelivery of a claimed run is dropped by the claim (nothing doubled).
* `worker_prefetch_multiplier=1`: a worker reserves one message per free slot, so an idle worker
  of the queue gets the next attempt instead of a busy one holding it.
* Redis `visibility_timeout` (VISIBILITY_TIMEOUT_S, 1 day): Redis re-delivers a message not
  acknowledged within it (Celery issues 2599/3270); a long job's redelivery would only meet its
  claim, but there is no need to spin on it.
* JSON only: no pickle from the broker.
"""

from __future__ import annotations

from typing import Any

from cronplus.engine.remote import TASK_NAME

VISIBILITY_TIMEOUT_S = 24 * 3600
BROKER_SCHEMES = ("redis", "rediss", "redis+socket")


def make_app(broker: str) -> Any:
    from celery import Celery  # type: ignore[import-untyped]  # the `celery` extra

    app = Celery("cronplus", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        enable_utc=True,
    )
    return app


def register(app: Any, run: Any) -> None:
    """The worker's one task: `run(payload)` (remote.WorkerRuns.run)."""

    @app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def attempt(payload: dict[str, Any]) -> str:
        return str(run(payload))
