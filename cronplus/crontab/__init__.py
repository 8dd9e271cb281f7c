"""cronplus.crontab.parser."""
