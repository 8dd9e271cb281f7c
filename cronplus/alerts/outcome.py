"""What one delivery attempt of an outbox row came to (Outcome: delivered, to retry, or failed),
and the Policy that retries and times attempts. The webhook sender (webhook.py) and the mail
sender (maildelivery.py) both answer with an Outcome; delivery.py records it on the row."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to. `error` is already redacted."""

    kind: str  # 'delivered' | 'retry' | 'failed'
    http_status: int | None = None
    error: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """Retry policy and HTTP timeouts; tests shrink the delays."""

    backoff_base: float = 5.0
    backoff_max: float = 1800.0
    max_age_s: float = 24 * 3600.0
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    mail_timeout: float = 60.0  # the mailer command's whole run

    def delay(self, attempts: int) -> float:
        """Exponential backoff with up to +25% jitter, so retries of many rows spread out."""
        base = min(self.backoff_max, self.backoff_base * (2.0 ** max(0, attempts - 1)))
        return min(self.backoff_max, base * (1.0 + random.uniform(0.0, 0.25)))
