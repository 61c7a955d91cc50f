"""rxfleet: pharmacy claims through a Celery worker fleet to a PBM gateway, exactly once."""

__version__ = "0.2.0.dev0"
