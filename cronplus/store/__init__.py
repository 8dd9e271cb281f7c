"""cronplus.store."""
