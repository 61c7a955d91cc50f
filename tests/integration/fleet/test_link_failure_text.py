"""Exception text never crosses Celery: a link that fails with a raw PHI value in
its message leaves no trace of it in the Sentry event, the result backend or the
worker's log; what crosses is ``LinkFailed``: a code and the batch's ids."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import sentry_sdk
from pydantic import SecretStr
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from rxfleet import context, logs
from rxfleet.lifecycle import open_run
from rxfleet.observability import init_sentry
from tests.integration.fleet.fleet_support import SAMPLE, Fleet
from tests.integration.fleet.sample_facts import distinctive_phi, read_sample
from tests.phi_scan import dump_values, leaks

pytestmark = pytest.mark.integration


class Capture(Transport):
    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.envelopes: list[str] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope.serialize().decode("utf-8", "replace"))


def _failures(fleet: Fleet, run_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """The run's failed tasks in the result backend (another test's may be there too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metas = [
            json.loads(str(fleet.client.get(k))) for k in fleet.client.keys("celery-task-meta-*")
        ]
        failed = [
            m for m in metas if m.get("status") == "FAILURE" and run_id in json.dumps(m["result"])
        ]
        if failed:
            return failed
        time.sleep(0.2)
    raise AssertionError("no task failure reached the result backend")


def _retrace(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Rebuild a task's tracer as a worker started after Sentry's init would have it.

    The session's worker built its tracers before this test started Sentry, whose
    Celery integration wraps tracers as they are built.
    """
    from celery.app import trace

    from workers.app import app

    task = app.tasks[name]
    tracer = trace.build_tracer(name, task, app.loader, "failing@rxfleet", app=app)
    monkeypatch.setattr(task, "__trace__", tracer)


def test_a_link_failure_quoting_phi_leaks_nowhere(
    clean_fleet: Fleet, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    phi = distinctive_phi(read_sample(SAMPLE))
    raw = sorted(phi)[0]

    def broken(*_: Any, **__: Any) -> Any:
        raise ValueError(f"bad cardholder {raw}")

    monkeypatch.setattr("tasks.crosswalk.crosswalk_batch", broken)
    transport = Capture()
    settings = clean_fleet.settings.model_copy(
        update={"sentry_dsn": SecretStr("https://public@sentry.invalid/1")}
    )
    logs.install(caplog.handler)  # what the worker installs on the root logger's handlers
    assert init_sentry(settings, transport=transport)
    _retrace(monkeypatch, "tasks.crosswalk.crosswalk")
    try:
        with caplog.at_level(logging.DEBUG):
            plan = open_run(clean_fleet.runs, clean_fleet.db, context.crosswalk(), settings,
                            [str(SAMPLE)], 1000, new=True)  # fmt: skip
            run_id = plan.run_id
            clean_fleet.producer(run_id, 1000).produce([str(SAMPLE)])
            failed = _failures(clean_fleet, run_id)
            time.sleep(0.5)  # the worker's log line and Sentry event follow the state
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close()
        for key in clean_fleet.client.keys("celery-task-meta-*"):
            clean_fleet.client.delete(key)

    meta = failed[0]
    assert meta["result"]["exc_type"] == "LinkFailed"
    assert meta["result"]["exc_message"][:2] == ["ValueError", run_id]
    sent = "\n".join(transport.envelopes)
    assert transport.envelopes, "no Sentry event: the scan below would prove nothing"
    assert "LinkFailed" in sent and "__call__" in sent  # the task's exception, its frames
    assert any(
        "link tasks.crosswalk.crosswalk failed: ValueError" in r.getMessage()
        for r in caplog.records
    )
    assert leaks([sent], {raw}) == set()
    assert leaks(dump_values(clean_fleet.client), {raw}) == set()
    assert leaks([caplog.text, *(r.getMessage() for r in caplog.records)], {raw}) == set()
