"""The pure claims domain: claim model, NDC/GPI, PHI tokens and vault cipher, rules,
validation, crosswalk, reject matrix, the per-claim work record.

Layer 1: imports nothing of rxfleet but ``rxfleet.errors``; no Redis, no Celery,
no settings object — every value comes in as an argument.
"""
