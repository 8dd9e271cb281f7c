"""What one delivery attempt of an outbox row came to: delivered, to retry, or failed. The
webhook sender (delivery.py) and the mail sender (maildelivery.py) both answer with it, and
delivery.py records it on the row."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to. `error` is already redacted."""

    kind: str  # 'delivered' | 'retry' | 'failed'
    http_status: int | None = None
    error: str | None = None
    retry_after: float | None = None
