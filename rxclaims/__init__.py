"""Pure pharmacy-claims domain code: models, NDC/GPI, PHI, validation, readers.

Nothing here imports Celery or Redis.
"""
