"""cronplus: a crontab-compatible job supervisor with retries, dependencies, history and alerts."""

__version__ = "0.1.0"
