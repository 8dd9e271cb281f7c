"""cronplus.alerts."""
