"""Celery wiring and nothing else: the app, the base task, queues, routes, beat, signals."""
