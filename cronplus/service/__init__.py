"""cronplus.service."""
