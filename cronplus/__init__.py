"""cronplus: a crontab-compatible job supervisor with retries, dependencies, history and alerts.

The packages, each importing only those before it (tests/test_layout.py holds them to it):

- foundation, the modules here: status (the vocabulary), errors, model (the frozen crontab
  model), clock, paths, filechecks, humanize, timeparse, redact.
- crontab/: the crontab language, text -> model.
- store/: the run history and the alert outbox (SQLite).
- engine/: scheduling and running jobs (crontab, store).
- alerts/: alerts and their delivery (crontab, store, engine).
- service/: the supervisor process, systemd, installing and editing crontabs (all the above).
- cli/: the `cronplus` command (all the above).

Each package's __init__ states its contract and what it may import, and imports nothing itself:
`cronplus --help` loads only cronplus.cli.

The foundation modules: May import: nothing of cronplus but each other.
"""

__version__ = "0.1.0"
