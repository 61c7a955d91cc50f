"""Claim ids as ingestion makes them: X12 ids are keyed tokens (``Record.keyed_id``)."""

from __future__ import annotations

from rxfleet.claims.phi import PhiTokenizer
from rxfleet.formats.base import Record

TOKENIZER = PhiTokenizer(bytes(range(32)))


def claim_id_of(record: Record) -> str:
    """The claim id ingestion gives ``record`` (under the test key)."""
    keyed = record.keyed_id
    if keyed is not None:
        return TOKENIZER.claim_id(keyed.prefix, keyed.parts)
    return str(record.fields["claim_id"])


def has_claim_id(record: Record) -> bool:
    return record.keyed_id is not None or "claim_id" in record.fields
