"""Alerts: which run ends deserve one, the message in each format, and its delivery through the
outbox (at least once, across restarts).

- alerting: incident semantics, enqueue in the outbox (a transactional subscriber of the
  engine's run events); payloads: the body and headers per
  format; signing: Standard Webhooks signatures; mail: cron's mail message and mailer;
  delivery: the outbox's worker; webhook: one HTTP attempt; maildelivery: one mail row through
  the mailer or SMTP; outcome: what an attempt came to, and the retry policy.

May import: foundation, crontab, store, engine.
"""
