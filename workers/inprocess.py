"""An in-process worker and beat, for the embedded mode: the same tasks, broker
and code paths as ``celery -A workers.app worker|beat``, in threads."""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celery import Celery
from celery.beat import Service
from celery.worker import WorkController
from celery.worker import state as worker_state


class _Controller(WorkController):
    """A WorkController that says when its consumer is ready."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer: Any) -> None:
        self.ready.set()


@contextlib.contextmanager
def worker_thread(
    app: Celery, queues: list[str], concurrency: int = 4, loglevel: str = "WARNING"
) -> Iterator[WorkController]:
    worker = _Controller(
        app=app,
        pool_cls="threads",
        concurrency=concurrency,
        queues=queues,
        loglevel=loglevel,
        hostname=f"embedded-{threading.get_ident()}@rxfleet",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
    )
    thread = threading.Thread(target=worker.start, name="rxfleet-worker", daemon=True)
    thread.start()
    if not worker.ready.wait(30):
        raise RuntimeError("the embedded worker did not start within 30 s")
    try:
        yield worker
    finally:
        worker_state.should_terminate = 0  # type: ignore[assignment]
        thread.join(3)  # a daemon thread: what it still holds is redelivered (late acks)
        worker_state.should_terminate = None


@contextlib.contextmanager
def beat_thread(app: Celery) -> Iterator[Service]:
    with tempfile.TemporaryDirectory(prefix="rxfleet-beat-") as tmp:
        service = Service(app, max_interval=1, schedule_filename=str(Path(tmp) / "schedule"))
        thread = threading.Thread(target=service.start, name="rxfleet-beat", daemon=True)
        thread.start()
        try:
            yield service
        finally:
            service.stop()
            thread.join(2)


__all__ = ["beat_thread", "worker_thread"]
