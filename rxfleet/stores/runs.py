"""Runs in Redis: work records (the per-claim ledger), the vault, results exactly
once, the audit trail.

Keys, per run (they expire ``ttl`` after the run is produced): ``{p}:run:{id}``
(meta hash), ``:work`` (claim records by sequence number), ``:results`` (terminal
results by sequence number), ``:counts`` (by status), ``:ids`` (claim ids seen),
``:audit`` (the audit stream), and ``{p}:vault:{id}`` (sealed PHI by sequence
number); fleet-wide ``{p}:runs`` (the run index by creation time).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from rxfleet.claims.work import WorkRecord
from rxfleet.stores.connection import as_dict, as_text, fields
from rxfleet.stores.deadletters import DeadLetters

SCHEMA_VERSION = "1"

# Exactly once: the first writer of a sequence number wins; only it counts and audits.
_RECORD_ONCE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
  redis.call('XADD', KEYS[3], '*', 'event', ARGV[4])
  if ARGV[5] ~= '' then
    redis.call('XADD', KEYS[4], '*', 'entry', ARGV[5])
  end
  return 1
end
return 0
"""


def new_run_id() -> str:
    """Sortable by time, unique: ``20261126T031500-3f9a1c``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def payload_hash(record: WorkRecord) -> str:
    """SHA-256 of the claim as the fleet saw it (tokenized: no PHI goes in)."""
    body = json.dumps(
        {"claim": record.claim or record.fields, "patient": record.patient_token},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class RunStore:
    """The Redis side of runs. Every method is one or two round trips."""

    client: redis.Redis
    prefix: str = "rx"
    ttl: int = 7 * 24 * 3600
    _record_once: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._record_once = self.client.register_script(_RECORD_ONCE)
        self._dead_letters = DeadLetters(self.client, self.prefix)

    def _run(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}"

    def _part(self, run_id: str, part: str) -> str:
        return f"{self.prefix}:run:{run_id}:{part}"

    def _vault(self, run_id: str) -> str:
        return f"{self.prefix}:vault:{run_id}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}:runs"

    def _run_keys(self, run_id: str) -> list[str]:
        parts = ("work", "results", "counts", "ids", "audit")
        return [self._run(run_id), *(self._part(run_id, p) for p in parts), self._vault(run_id)]

    def create(self, run_id: str, meta: dict[str, str]) -> None:
        pipe = self.client.pipeline()
        pipe.hset(self._run(run_id), mapping=fields({**meta, "created_at": time.time()}))
        pipe.zadd(self._index, {run_id: time.time()})
        pipe.execute()

    def meta(self, run_id: str) -> dict[str, str]:
        return as_dict(self.client.hgetall(self._run(run_id)))

    def set_meta(self, run_id: str, **values: str | int) -> None:
        self.client.hset(self._run(run_id), mapping=fields(values))

    def first_sightings(self, run_id: str, claim_ids: Sequence[str | None]) -> list[bool]:
        """For each claim id, whether this is its first appearance in the run."""
        pipe = self.client.pipeline()
        for claim_id in claim_ids:
            pipe.sadd(self._part(run_id, "ids"), claim_id or "")
        return [
            bool(added) or not cid for added, cid in zip(pipe.execute(), claim_ids, strict=True)
        ]

    def add(self, run_id: str, records: Sequence[WorkRecord], sealed: dict[int, str]) -> None:
        pipe = self.client.pipeline()
        pipe.hset(
            self._part(run_id, "work"),
            mapping=fields({str(r.seq): r.model_dump_json() for r in records}),
        )
        if sealed:
            pipe.hset(self._vault(run_id), mapping=fields({str(k): v for k, v in sealed.items()}))
        pipe.execute()

    def load(self, run_id: str, seqs: Sequence[int]) -> list[WorkRecord]:
        if not seqs:
            return []
        raw = self.client.hmget(self._part(run_id, "work"), [str(s) for s in seqs])
        return [WorkRecord.model_validate_json(doc) for doc in raw if doc is not None]

    def save(
        self,
        run_id: str,
        records: Sequence[WorkRecord],
        audit: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Write records (and their audit events) in one round trip."""
        pipe = self.client.pipeline()
        if records:
            mapping = {str(r.seq): r.model_dump_json() for r in records}
            pipe.hset(self._part(run_id, "work"), mapping=fields(mapping))
        for event in audit:
            pipe.xadd(self._part(run_id, "audit"), {"event": json.dumps(event, default=str)})
        pipe.execute()

    def pipeline(self) -> Any:
        """A non-transactional pipeline, for reads that several stores queue together."""
        return self.client.pipeline(transaction=False)

    def read_sealed(self, pipe: Any, run_id: str, seq: int) -> None:
        """Queue the read of a record's vault blob on ``pipe``; ``sealed_of`` reads it."""
        pipe.hget(self._vault(run_id), str(seq))

    @staticmethod
    def sealed_of(reply: object) -> str | None:
        return as_text(reply)

    def sealed_phi(self, run_id: str, seq: int) -> str | None:
        return as_text(self.client.hget(self._vault(run_id), str(seq)))

    def audit(self, run_id: str, events: Sequence[dict[str, Any]]) -> None:
        pipe = self.client.pipeline()
        for event in events:
            pipe.xadd(self._part(run_id, "audit"), {"event": json.dumps(event, default=str)})
        pipe.execute()

    def record(
        self,
        run_id: str,
        records: Sequence[WorkRecord],
        trace: str,
        dead_letter: Callable[[WorkRecord], dict[str, Any] | None],
    ) -> int:
        """Write each record's result once (and its dead-letter entry, if any).

        Atomic per claim: the result, the count, the audit event and the
        dead-letter entry are written together by the first writer or not at all.
        Returns the number newly recorded.
        """
        keys = [
            self._part(run_id, "results"),
            self._part(run_id, "counts"),
            self._part(run_id, "audit"),
            self._dead_letters.key,
        ]
        pipe = self.client.pipeline()
        for record in records:
            result = record.result()
            event = json.dumps(_recorded_event(run_id, record, result, trace))
            entry = dead_letter(record)
            dlq = json.dumps(entry) if entry is not None else ""
            args = [record.seq, json.dumps(result), result["status"], event, dlq]
            self._record_once(keys=keys, args=args, client=pipe)
        return sum(int(x) for x in pipe.execute())

    def progress(self, run_id: str) -> tuple[int, int | None]:
        """(claims recorded, total claims or None while the producer still reads)."""
        pipe = self.client.pipeline()
        pipe.hlen(self._part(run_id, "results"))
        pipe.hget(self._run(run_id), "total")
        done, total = pipe.execute()
        return int(done), (int(total) if total is not None else None)

    def audit_events(self, run_id: str) -> list[dict[str, Any]]:
        """The run's audit stream, oldest first."""
        reply: Any = self.client.xrange(self._part(run_id, "audit"))
        return [json.loads(data["event"]) for _, data in reply or []]

    def counts(self, run_id: str) -> dict[str, int]:
        raw = as_dict(self.client.hgetall(self._part(run_id, "counts")))
        return {k: int(v) for k, v in raw.items()}

    def results(self, run_id: str, total: int, chunk: int = 1000) -> Iterator[dict[str, Any]]:
        """Results in input order."""
        for start in range(0, total, chunk):
            seqs = [str(s) for s in range(start, min(start + chunk, total))]
            for doc in self.client.hmget(self._part(run_id, "results"), seqs):
                if doc is not None:
                    yield json.loads(doc)

    def expire(self, run_id: str) -> None:
        pipe = self.client.pipeline()
        for key in self._run_keys(run_id):
            pipe.expire(key, self.ttl)
        pipe.execute()

    def exists(self, run_id: str) -> bool:
        return bool(self.client.exists(self._run(run_id)))


def _recorded_event(
    run_id: str, record: WorkRecord, result: dict[str, Any], trace: str
) -> dict[str, Any]:
    return {
        "stage": "recorded",
        "run_id": run_id,
        "trace_id": trace,
        "seq": record.seq,
        "claim_id": record.claim_id,
        "status": result["status"],
        "route": result["route"],
        "errors": result["errors"],
        "reject_codes": result["reject_codes"],
        "attempts": result["attempts"],
        "payload_hash": payload_hash(record),
        "schema_version": SCHEMA_VERSION,
        "at": time.time(),
    }
