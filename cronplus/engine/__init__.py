"""cronplus.engine."""
