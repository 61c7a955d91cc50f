"""Settings and versioned data (reject-code matrix, payer routes, sandbox plans)."""

from config.settings import Settings, configure, get_settings

__all__ = ["Settings", "configure", "get_settings"]
