"""The order of a claim id's submissions: a reversal never overtakes its billing.

Each submission that will be sent (a billing, a reversal, a rebill) enters the
order of its claim id when it is ingested, and leaves it when its result is
recorded. A submission with another of its claim id ahead of it (in any run)
waits in the submit link until those ahead have their answer
(``rxfleet.links.submit.order``); nothing else ever waits, so the common claim
(one submission in flight) costs one sorted-set entry and no extra read per window.

Keys: ``{p}:order:clock`` (the ingestion counter that scores the entries),
``{p}:order:claim:{claim_id}`` (sorted set of ``run|seq|transaction`` by
ingestion, expiring ``ttl`` after its last entry: a run that died leaves nothing
for ever) and ``{p}:order:run:{run_id}`` (the seqs of the run that have something
ahead of them: the only ones the planner looks at).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import redis
from redis.commands.core import Script

from rxfleet.claims.fields import DEFAULT_TRANSACTION
from rxfleet.claims.work import WorkRecord
from rxfleet.stores import lua
from rxfleet.stores.connection import Decoder, Pipeline, as_text

SEPARATOR = "|"


class Entry(NamedTuple):
    """One submission in its claim id's order."""

    run_id: str
    seq: int
    claim_id: str
    transaction: str

    @property
    def member(self) -> str:
        return SEPARATOR.join((self.run_id, str(self.seq), self.transaction))


def entry_of(run_id: str, record: WorkRecord) -> Entry | None:
    """The record's place in its claim id's order (None: no claim id, nothing to order)."""
    if not record.claim_id:
        return None
    code = str(record.fields.get("transaction_code") or DEFAULT_TRANSACTION)
    return Entry(run_id, record.seq, record.claim_id, code)


class Place(NamedTuple):
    """A submission ahead of another: where its work record lives."""

    run_id: str
    seq: int
    member: str

    @classmethod
    def of(cls, member: str) -> Place:
        run_id, seq, _ = member.rsplit(SEPARATOR, 2)
        return cls(run_id, int(seq), member)


@dataclass
class ClaimOrder:
    client: redis.Redis
    prefix: str = "rx"
    ttl: int = 7 * 86_400
    _scripts: dict[str, Script] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scripts = lua.register(self.client, "order", ("enter",))

    def _claim(self, claim_id: str) -> str:
        return f"{self.prefix}:order:claim:{claim_id}"

    def _run(self, run_id: str) -> str:
        return f"{self.prefix}:order:run:{run_id}"

    def enter(self, run_id: str, entries: Sequence[Entry]) -> dict[int, int]:
        """Put submissions in their claim ids' order; for those with something ahead,
        how many reversals and rebills are ahead of them (``{seq: count}``)."""
        if not entries:
            return {}
        keys = [f"{self.prefix}:order:clock", self._run(run_id)]
        keys += [self._claim(e.claim_id) for e in entries]
        args: list[str | int] = [self.ttl]
        for entry in entries:
            args += [entry.member, entry.seq]
        reply = self._scripts["enter"](keys=keys, args=args)
        return {e.seq: int(n) for e, n in zip(entries, reply, strict=True) if int(n) >= 0}

    def waiting(self, pipe: Pipeline, run_id: str, seqs: Sequence[int]) -> Decoder[set[int]]:
        """Queue the read of which of ``seqs`` have something ahead of them."""
        at = len(pipe)
        if seqs:
            pipe.smismember(self._run(run_id), [str(s) for s in seqs])
        return lambda replies: (
            {s for s, hit in zip(seqs, replies[at], strict=True) if int(hit)} if seqs else set()
        )

    def ahead(self, entries: Sequence[Entry]) -> dict[int, list[Place]]:
        """The submissions ahead of each entry, in order (``{seq: [place, ...]}``)."""
        pipe = self.client.pipeline(transaction=False)
        for entry in entries:
            pipe.zrange(self._claim(entry.claim_id), 0, -1)
        out: dict[int, list[Place]] = {}
        for entry, members in zip(entries, pipe.execute(), strict=True):
            names = [str(as_text(m)) for m in members]
            mine = names.index(entry.member) if entry.member in names else len(names)
            out[entry.seq] = [Place.of(m) for m in names[:mine]]
        return out

    def leave(self, run_id: str, entries: Sequence[Entry]) -> None:
        """Submissions recorded (or found gone) leave their claim ids' order."""
        if not entries:
            return
        pipe = self.client.pipeline(transaction=False)
        for entry in entries:
            pipe.zrem(self._claim(entry.claim_id), entry.member)
        pipe.srem(self._run(run_id), *[str(e.seq) for e in entries])
        pipe.execute()

    def drop(self, claim_id: str, places: Sequence[Place]) -> None:
        """Forget entries whose run no longer holds them (recorded, or lost with Redis)."""
        if places:
            self.client.zrem(self._claim(claim_id), *[p.member for p in places])
