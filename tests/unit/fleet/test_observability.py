"""No PHI in Sentry events: a real sentry-sdk client, a capturing transport, an
exception raised where PHI sits in local variables, extras and tags."""

from __future__ import annotations

import json
import logging
from typing import Any

import sentry_sdk
from pydantic import SecretStr
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from config import Settings
from rxfleet.observability import init_sentry

PHI = {
    "cardholder_id": "ZH987654321",
    "patient_last_name": "QUACKENBUSH",
    "date_of_birth": "1961-07-04",
}


class Capture(Transport):
    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.envelopes: list[str] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope.serialize().decode("utf-8", "replace"))


def _fail_with_phi_in_locals(claim: dict[str, str]) -> None:
    member = claim["cardholder_id"]  # a local Sentry would otherwise capture
    raise RuntimeError(f"gateway refused the request for {member}")  # text quotes PHI


def test_sentry_events_carry_no_phi() -> None:
    transport = Capture()
    settings = Settings(sentry_dsn=SecretStr("https://public@sentry.invalid/1"))
    assert init_sentry(settings, transport=transport)
    try:
        with sentry_sdk.new_scope() as scope:
            scope.set_extra("claim", json.dumps(PHI))
            scope.set_tag("cardholder_id", PHI["cardholder_id"])
            scope.set_context("claim", PHI)
            sentry_sdk.add_breadcrumb(message="sending", data=PHI)
            sentry_sdk.add_breadcrumb(message=f"sending {PHI['patient_last_name']}")
            logging.getLogger("rxfleet.test").warning("claim of %s", PHI["date_of_birth"])
            try:
                _fail_with_phi_in_locals(dict(PHI))
            except RuntimeError:
                sentry_sdk.capture_exception()
                logging.getLogger("rxfleet.test").exception("failed %s", PHI["cardholder_id"])
            sentry_sdk.capture_message(f"odd claim {PHI['cardholder_id']}")
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close()
    sent = "\n".join(transport.envelopes)
    # The events did go out, with what groups them: type names and frames.
    assert "RuntimeError" in sent and "_fail_with_phi_in_locals" in sent
    assert sent.count('"type":"event"') >= 2  # the exception (deduped) and the message
    assert "gateway refused the request" not in sent  # exception text is never sent
    leaked = {value for value in PHI.values() if value in sent}
    assert leaked == set()
