"""The audit trail's stage names: one vocabulary for every link that adds a step
(``WorkRecord.trail``), the record link that writes them to ``audit_events``, and
the readers (``rxfleet audit``, ``rxfleet claim``). The docs' stage list is
generated from ``STAGE_MEANINGS`` (``python -m config.doclists``).

Every step carries ids, codes and outcomes only, never a value of the claim.
"""

from __future__ import annotations

from enum import StrEnum


class AuditStage(StrEnum):
    """A step of one claim in one run, in the order a claim usually takes them."""

    INGESTED = "ingested"
    VALIDATED = "validated"
    WAITING = "waiting"
    MAPPED = "mapped"
    ATTEMPT = "attempt"
    SENT = "sent"
    ROUTED = "routed"
    POISON = "POISON"  # as its reason: the step that ends a poison claim
    RECORDED = "recorded"


#: What each stage means and what its row carries (the docs' list is generated from this).
STAGE_MEANINGS: dict[AuditStage, str] = {
    AuditStage.INGESTED: "the producer read the claim (source file and line) and sealed its"
    " PHI; `codes`: the intake findings; a replay's step names the dead letter it replays"
    " (`replay_of` in `detail`)",
    AuditStage.VALIDATED: "the validation rules ran; `outcome`: the severity; `codes`: the"
    " rule codes found",
    AuditStage.WAITING: "the NDC is in neither the crosswalk nor the formulary while a"
    " formulary update waits: `outcome` TRANSIENT, `codes` `FORMULARY_PENDING`; the claim is"
    " re-checked until RXFLEET_FORMULARY_WAIT_SECONDS; `formulary` (version) in `detail`",
    AuditStage.MAPPED: "the crosswalk mapped the NDC to a GPI and the formulary pre-checks"
    " ran; `codes`: their findings; `gpi` and `formulary` (the formulary version checked"
    " against; 0: the crosswalk file alone) in `detail`",
    AuditStage.ATTEMPT: "one request to the gateway; `outcome`: its answer's status, or the"
    " error that will be retried; `attempt`: its number; `gate_at` in `detail`",
    AuditStage.SENT: "the claim's answer: the gateway's, or the fleet's own (`04` routing"
    " miss, `99` when it gave up); `outcome`: the response status; `codes`: the reject codes",
    AuditStage.ROUTED: "the reject-code matrix chose the route; `outcome`: the route;"
    " `matrix`: its version, in `detail`",
    AuditStage.POISON: "the claim's link kept killing its worker and the fleet ended it;"
    " `outcome`: the route; `link` in `detail`",
    AuditStage.RECORDED: "the result was written to the system of record, once; `outcome`:"
    " the status; `codes`: validation and reject codes; `payload_hash`: SHA-256 of the"
    " tokenized claim; route and reason in `detail`",
}
