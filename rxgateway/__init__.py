"""The PBM gateway: rxfleet's client for it (CONTRACT section 5) and the sandbox to test against.

- ``rxgateway.client``: ``GatewayClient``, ``TokenGrant``, ``Adjudication``,
  ``parse_retry_after`` (Celery-free, Redis-free; failures as ``rxfleet.errors``).
- ``rxgateway.sandbox``: ``SandboxGateway`` and ``run_gateway`` (the
  ``rxfleet gateway`` command), over real HTTP.
- ``rxgateway.adjudicator``: the sandbox's plans, formulary and NCPDP decisions.
- ``rxgateway.scenario``: the sandbox's fault knobs.
"""

from rxgateway.client import Adjudication, GatewayClient, TokenGrant, parse_retry_after
from rxgateway.sandbox import SandboxGateway, run_gateway
from rxgateway.scenario import Drop, Scenario, Storm, Throttle

__all__ = [
    "Adjudication",
    "Drop",
    "GatewayClient",
    "SandboxGateway",
    "Scenario",
    "Storm",
    "Throttle",
    "TokenGrant",
    "parse_retry_after",
    "run_gateway",
]
