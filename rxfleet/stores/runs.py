"""Runs in Redis: the fleet's working memory of what is in flight.

Redis holds a claim only from the moment the producer enqueues it until the
record link has written its result to the database; then its record and its
vault blob are deleted. So Redis stays the size of the in-flight window
(``RXFLEET_MAX_INFLIGHT``) however large the input.

Keys, per run (expiring ``ttl`` seconds after the run is finished):

* ``{p}:run:{id}``: meta hash (crosswalk and matrix versions the run is pinned to, total);
* ``{p}:run:{id}:work``: claim records (``WorkRecord`` JSON: the per-claim ledger
  and the claim's audit trail so far) by sequence number;
* ``{p}:vault:{id}``: sealed PHI by sequence number;
* ``{p}:run:{id}:ids``: claim id → the first sequence number that carried it
  (duplicate detection; the one structure that grows with the run);
* ``{p}:run:{id}:leases``: sequence number → ``owner|until_ms``: who is sending it;
* ``{p}:run:{id}:batches``: first sequence number → ``count|last progress``
  (what the sweeper watches);
* ``{p}:run:{id}:done``: claims recorded and gone from Redis;
* ``{p}:run:{id}:deliveries``: how often each link message was delivered
  (``task id:retries`` → count; a message that keeps killing its worker is poison);
* ``{p}:run:{id}:slices``: first sequence number → a sealed slice of the input (raw
  lines, PHI and all, AES-GCM under the vault key) shipped for the intake link;
  ``{p}:run:{id}:slicing``: the claims of those slices; ``{p}:run:{id}:intake``: the
  producing pass (``current``) and, per pass, the last batch it enqueued or admitted;
* ``{p}:run:{id}:producer``: the producer's lease; ``{p}:run:{id}:abort``: the stop flag;
* fleet-wide ``{p}:runs``: the active runs by creation time.

``RunStore`` is put together from its parts, one concern each, over the same keys:
``_Batches`` (the sweeper's heartbeats), ``_Ledger`` (work records and vault),
``_Producing`` (the claim ids seen, the producer's lease), ``_Slicing`` (shipped
slices and their admission in order), ``_Sending`` (send
leases, the stop flag, deliveries); the run itself (meta, lifetime, done count)
is ``RunStore``'s own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import redis
from redis.commands.core import Script

from rxfleet.claims.work import WorkRecord
from rxfleet.stores import clock, lua
from rxfleet.stores.connection import Decoder, Pipeline, as_dict, as_text, fields

#: Its Lua scripts, ``rxfleet/stores/lua/runs_{name}.lua``.
_SCRIPTS = (
    "add_missing",
    "admit",
    "passed",
    "existing",
    "lease",
    "release",
    "retire",
    "save",
    "holds_producer",
    "release_producer",
)


@dataclass
class _RunKeys:
    """The keys of a run, the client they live on and the store's scripts: what the
    parts of ``RunStore`` below share."""

    client: redis.Redis
    prefix: str = "rx"
    ttl: int = 3600
    _scripts: dict[str, Script] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scripts = lua.register(self.client, "runs", _SCRIPTS)

    def _run(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}"

    def _part(self, run_id: str, part: str) -> str:
        return f"{self.prefix}:run:{run_id}:{part}"

    def _vault(self, run_id: str) -> str:
        return f"{self.prefix}:vault:{run_id}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}:runs"

    def pipeline(self) -> Pipeline:
        """A non-transactional pipeline, for reads that several stores queue together."""
        return self.client.pipeline(transaction=False)


class _Batches(_RunKeys):
    """The open batches and their heartbeats (what the sweeper watches)."""

    def register_batch(self, run_id: str, first: int, count: int) -> None:
        self.client.hset(self._part(run_id, "batches"), str(first), f"{count}|{clock.now():.3f}")

    def touch_batch(self, pipe: Pipeline, run_id: str, first: int, count: int) -> None:
        """Queue a batch's heartbeat on ``pipe``: a link made progress on it."""
        pipe.hset(self._part(run_id, "batches"), str(first), f"{count}|{clock.now():.3f}")

    def batches(self, run_id: str) -> dict[int, tuple[int, float]]:
        """Open batches: first seq → (count, time of last progress)."""
        raw = as_dict(self.client.hgetall(self._part(run_id, "batches")))
        out = {}
        for first, value in raw.items():
            count, at = value.split("|")
            out[int(first)] = (int(count), float(at))
        return out


class _Ledger(_Batches):
    """The claims in flight: their work records and sealed vault blobs."""

    def add(
        self,
        run_id: str,
        records: Sequence[WorkRecord],
        sealed: dict[int, str],
        *,
        only_missing: bool = False,
    ) -> int:
        """Write records (and vault blobs); with ``only_missing``, only where absent
        (a resumed producer never overwrites a record a link has moved on). Records added."""
        if not records:
            return 0
        if not only_missing:
            pipe = self.client.pipeline(transaction=False)
            docs = {str(r.seq): r.model_dump_json() for r in records}
            pipe.hset(self._part(run_id, "work"), mapping=fields(docs))
            if sealed:
                pipe.hset(
                    self._vault(run_id), mapping=fields({str(k): v for k, v in sealed.items()})
                )
            pipe.execute()
            return len(records)
        args: list[Any] = [len(records)]
        for record in records:
            args += [record.seq, record.model_dump_json()]
        for seq, blob in sealed.items():
            args += [seq, blob]
        keys = [self._part(run_id, "work"), self._vault(run_id)]
        return int(self._scripts["add_missing"](keys=keys, args=args))

    def existing(self, run_id: str, seqs: Sequence[int]) -> set[int]:
        """The sequence numbers that have a record in Redis (in flight)."""
        if not seqs:
            return set()
        reply = self._scripts["existing"](keys=[self._part(run_id, "work")], args=list(seqs))
        return {seq for seq, hit in zip(seqs, reply, strict=True) if int(hit)}

    def load(self, run_id: str, seqs: Sequence[int]) -> list[WorkRecord]:
        if not seqs:
            return []
        raw = self.client.hmget(self._part(run_id, "work"), [str(s) for s in seqs])
        return [WorkRecord.model_validate_json(doc) for doc in raw if doc is not None]

    def save(self, run_id: str, records: Sequence[WorkRecord], batch: range | None = None) -> None:
        """Write records still in flight (their ledger stage and trail) and the batch's
        heartbeat: one trip. A record no longer in Redis stays gone."""
        pipe = self.client.pipeline(transaction=False)
        if records:
            args = [part for r in records for part in (str(r.seq), r.model_dump_json())]
            self._scripts["save"](keys=[self._part(run_id, "work")], args=args, client=pipe)
        if batch is not None:
            self.touch_batch(pipe, run_id, batch.start, len(batch))
        pipe.execute()

    def read_sealed(
        self, pipe: Pipeline, run_id: str, seqs: Sequence[int]
    ) -> Decoder[list[str | None]]:
        """Queue the read of records' vault blobs on ``pipe``; the decoder gives them
        in the order of ``seqs`` (None: no blob)."""
        at = len(pipe)
        pipe.hmget(self._vault(run_id), [str(s) for s in seqs])
        return lambda replies: [as_text(blob) for blob in replies[at]]

    def in_flight(self, run_id: str) -> int:
        """Claims held in Redis right now: records, and claims of slices not yet ingested."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hlen(self._part(run_id, "work"))
        pipe.get(self._part(run_id, "slicing"))
        records, shipped = pipe.execute()
        return int(records) + max(0, int(shipped or 0))


class _Producing(_RunKeys):
    """What the producer keeps: the claim ids seen and its lease."""

    def first_seen(self, run_id: str, claims: Sequence[tuple[str, int]]) -> list[int]:
        """For each (claim id, seq), the first seq that carried that claim id.

        Two commands a batch: the run has one producer at a time (its lease), and
        a producer reads the input in order, so a resumed one gets the same answers.
        """
        if not claims:
            return []
        key = self._part(run_id, "ids")
        ids = list(dict.fromkeys(claim_id for claim_id, _ in claims))
        known = dict(zip(ids, self.client.hmget(key, ids), strict=True))
        first = {c: int(s) for c, s in known.items() if s is not None}
        fresh: dict[str, int] = {}
        for claim_id, seq in claims:
            if claim_id not in first:
                first[claim_id] = fresh[claim_id] = seq
        if fresh:
            self.client.hset(key, mapping=fields(fresh))
        return [first[claim_id] for claim_id, _ in claims]

    def claim_producer(self, run_id: str, holder: str, seconds: float) -> bool:
        """Take (or renew) the run's producer lease; False when another holds it."""
        key = self._part(run_id, "producer")
        if self.client.set(key, holder, nx=True, px=int(seconds * 1000)):
            return True
        if int(self._scripts["holds_producer"](keys=[key], args=[holder])):
            self.client.pexpire(key, int(seconds * 1000))
            return True
        return False

    def release_producer(self, run_id: str, holder: str) -> None:
        self._scripts["release_producer"](keys=[self._part(run_id, "producer")], args=[holder])

    def producing(self, run_id: str) -> bool:
        """Whether a live producer holds the run."""
        return bool(self.client.exists(self._part(run_id, "producer")))


class _Slicing(_Batches):
    """Slices of an input a producer shipped for the intake link to ingest, and how far
    each producer's pass got (the intake link admits a pass's slices in input order)."""

    def ship(self, run_id: str, first: int, count: int, sealed: str) -> None:
        """Hold a sealed slice of ``count`` claims (the batch at ``first``) for the intake."""
        pipe = self.client.pipeline()  # MULTI: the slice and its count, or neither
        pipe.hset(self._part(run_id, "slices"), str(first), sealed)
        pipe.incrby(self._part(run_id, "slicing"), count)
        pipe.execute()

    def shipped(self, run_id: str, first: int) -> str | None:
        """The sealed slice of the batch at ``first``; None when none waits (ingested
        already, or the producer ingested the batch itself)."""
        return as_text(self.client.hget(self._part(run_id, "slices"), str(first)))

    def waits_behind(self, run_id: str, first: int) -> bool:
        """Whether the slice at ``first`` still waits and a slice shipped before it does
        too: it waits on input order (its turn), whatever becomes of its own intake."""
        keys = self.client.hkeys(self._part(run_id, "slices"))
        waiting = {int(str(as_text(k))) for k in keys} if isinstance(keys, list) else set()
        return first in waiting and any(other < first for other in waiting)

    def start_pass(self, run_id: str, holder: str) -> None:
        """``holder`` now produces the run: slices of an earlier pass stop waiting for
        their own pass and wait for this one instead (``turn``)."""
        self.client.hset(self._part(run_id, "intake"), "current", holder)

    def passed(self, run_id: str, holder: str, first: int) -> None:
        """``holder``'s pass has enqueued (or admitted) the batch at ``first``."""
        self._scripts["passed"](keys=[self._part(run_id, "intake")], args=[holder, first])

    def turn(self, run_id: str, holder: str, after: int | None, first: int) -> bool:
        """Whether the slice at ``first`` of ``holder``'s pass may be admitted: the slice
        shipped before it (``after``) is no longer waiting (admitted, or given up as
        poison: a pass ships in order, so a slice gone is one done), or, once another
        pass took the run over, that pass got to ``first`` (it has seen every claim id
        before this slice's)."""
        key = self._part(run_id, "intake")
        current = as_text(self.client.hget(key, "current"))
        if current is None or current == holder:
            return after is None or not self.client.hexists(
                self._part(run_id, "slices"), str(after)
            )
        theirs = as_text(self.client.hget(key, current))
        return theirs is not None and int(theirs) >= first

    def beat(self, run_id: str, first: int, count: int) -> None:
        """The batch at ``first`` is alive though it waits (its turn, a vault key): the
        sweeper leaves it be."""
        pipe = self.client.pipeline(transaction=False)
        self.touch_batch(pipe, run_id, first, count)
        pipe.execute()

    def admit(
        self,
        run_id: str,
        holder: str,
        first: int,
        records: Sequence[WorkRecord],
        sealed: dict[int, str],
    ) -> int:
        """Write the ingested slice's records (where absent) and drop the slice, in one
        script: records added, or -1 when another intake admitted it before."""
        keys = [
            self._part(run_id, part) for part in ("work", "vault", "slices", "slicing", "intake")
        ]
        keys[1] = self._vault(run_id)
        args: list[Any] = [first, len(records), holder, len(records)]
        for record in records:
            args += [record.seq, record.model_dump_json()]
        for seq, blob in sealed.items():
            args += [seq, blob]
        return int(self._scripts["admit"](keys=keys, args=args))


class _Sending(_RunKeys):
    """What the links keep while they send: the send leases, the stop flag, deliveries."""

    def lease(
        self, pipe: Pipeline, run_id: str, seqs: Sequence[int], owner: str, ms: int
    ) -> Decoder[list[Lease]]:
        """Queue taking the send leases of ``seqs`` for ``ms`` milliseconds on ``pipe``;
        the decoder says what became of each (``Lease``)."""
        at = len(pipe)
        args: list[str | int] = [int(clock.now() * 1000), owner, ms, *seqs]
        keys = [self._part(run_id, "leases"), self._part(run_id, "work")]
        self._scripts["lease"](keys=keys, args=args, client=pipe)
        return lambda replies: [Lease(int(granted)) for granted in replies[at]]

    def release(self, run_id: str, seqs: Sequence[int], owner: str) -> None:
        """Give back the leases ``owner`` holds on ``seqs`` (claims it did not send)."""
        if seqs:
            args: list[str | int] = [owner, *seqs]
            self._scripts["release"](keys=[self._part(run_id, "leases")], args=args)

    def aborted_flag(self, pipe: Pipeline, run_id: str) -> Decoder[bool]:
        """Queue the read of the run's stop flag on ``pipe``; the decoder says if it is set."""
        at = len(pipe)
        pipe.exists(self._part(run_id, "abort"))
        return lambda replies: bool(replies[at])

    def abort(self, run_id: str) -> None:
        self.client.set(self._part(run_id, "abort"), "1")

    def aborted(self, run_id: str) -> bool:
        return bool(self.client.exists(self._part(run_id, "abort")))

    def delivered(self, run_id: str, message: str) -> int:
        """Count one more delivery of a link's ``message``; how many so far."""
        return int(self.client.hincrby(self._part(run_id, "deliveries"), message, 1))

    def redriven(self, run_id: str, first: int) -> int:
        """Count one more re-drive of the batch at ``first`` by the sweeper; how many so far
        (a new chain is a new message: ``delivered`` cannot see a batch re-driven anew)."""
        return self.delivered(run_id, f"redrive:{first}")


class RunStore(_Ledger, _Producing, _Slicing, _Sending):
    """A run in Redis: its meta and lifetime, its done count, and (from its parts) its
    ledger, its producer's keys and its send leases."""

    def open(self, run_id: str, meta: dict[str, str]) -> None:
        """Make the run known to the fleet (idempotent: a resume calls it again)."""
        pipe = self.client.pipeline()
        pipe.hset(self._run(run_id), mapping=fields(meta))
        pipe.persist(self._run(run_id))
        pipe.zadd(self._index, {run_id: clock.now()}, nx=True)
        pipe.execute()

    def knows(self, run_id: str) -> bool:
        """Whether Redis holds the run (False after it restarted empty, or once a
        finished run's meta expired)."""
        return bool(self.client.exists(self._run(run_id)))

    def meta(self, run_id: str) -> dict[str, str]:
        return as_dict(self.client.hgetall(self._run(run_id)))

    def set_meta(self, run_id: str, **values: str | int) -> None:
        self.client.hset(self._run(run_id), mapping=fields(values))

    def exists(self, run_id: str) -> bool:
        return bool(self.client.exists(self._run(run_id)))

    def active(self) -> list[str]:
        """Runs not yet finished, oldest first."""
        return [str(as_text(r)) for r in self.client.zrange(self._index, 0, -1)]

    def finish(self, run_id: str) -> None:
        """The run is over: its working memory goes at once (the claim ids seen, leases,
        batches: what grows with the run); its meta and done count, which a late
        ``wait`` reads, expire after ``ttl``; the sweeper forgets it."""
        pipe = self.client.pipeline()
        working = ("work", "ids", "leases", "batches", "producer", "abort", "deliveries",
                   "slices", "slicing", "intake")  # fmt: skip
        pipe.delete(self._vault(run_id), *(self._part(run_id, part) for part in working))
        pipe.expire(self._run(run_id), self.ttl)
        pipe.expire(self._part(run_id, "done"), self.ttl)
        pipe.zrem(self._index, run_id)
        pipe.execute()

    def retire(
        self,
        run_id: str,
        first: int,
        seqs: Sequence[int],
        tallies: Sequence[Sequence[str]] | None = None,
        tally_key: str | None = None,
    ) -> tuple[int, int]:
        """Drop recorded claims from Redis; (claims removed now, claims done in all).

        With ``tallies`` (one list of counter fields per seq) and ``tally_key``, the
        claims removed by this call add one to each of their fields in that hash,
        in the same script: a claim is counted when, and only when, it is retired.
        """
        keys = [
            self._part(run_id, "work"),
            self._vault(run_id),
            self._part(run_id, "leases"),
            self._part(run_id, "batches"),
            self._part(run_id, "done"),
            tally_key or self._part(run_id, "tally"),
        ]
        if not seqs:
            self.client.hdel(keys[3], str(first))
            return 0, self.done(run_id) or 0
        extra = ["\t".join(t) for t in tallies] if tallies is not None and tally_key else []
        args: list[str | int] = [first, len(seqs), *seqs, *extra]
        removed, done = self._scripts["retire"](keys=keys, args=args)
        return int(removed), int(done)

    def done(self, run_id: str) -> int | None:
        """Claims recorded (None when Redis does not know the run: ask the database)."""
        value = as_text(self.client.get(self._part(run_id, "done")))
        return int(value) if value is not None else None

    def progress(self, run_id: str) -> tuple[int | None, int | None]:
        """(claims done, total or None while producing) from Redis, one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self._part(run_id, "done"))
        pipe.hget(self._run(run_id), "total")
        done, total = pipe.execute()
        return (
            int(done) if done is not None else None,
            int(total) if total is not None else None,
        )

    def seed_done(self, run_id: str, done: int) -> None:
        """Set the done count where Redis lost it (from the database, on resume)."""
        self.client.set(self._part(run_id, "done"), done, nx=True)


class Lease(IntEnum):
    """What ``RunStore.lease`` says of each sequence number (the lease script's answer)."""

    HELD = 0  # another holder is sending it
    GRANTED = 1
    GONE = 2  # recorded meanwhile: nothing left to send
