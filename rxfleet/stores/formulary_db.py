"""The versioned formulary in the system of record (migration 0007), and token rotations.

``store_and_apply`` is the webhook's one transaction: it stores a batch of events
(once per ``event_id``; a resend is a duplicate, a new id with a used sequence a
clash) and applies every stored event that is next in sequence, each NDC change
kept as a row of ``formulary_entries`` under the event's sequence (the version).
An event after a gap is stored and waits (``applied_at`` null) until the missing
sequence arrives. A transaction-scoped advisory lock makes two webhook processes
apply one after the other, so no event is applied twice or out of order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, LiteralString

from rxfleet.claims.crosswalk import CrosswalkEntry
from rxfleet.claims.formulary import FormularyEvent
from rxfleet.stores.pg import Conn, Connections, Row

#: pg_advisory_xact_lock key held while applying formulary events ("rxform" in ASCII).
FORMULARY_LOCK = 0x7278666F726D

_INSERT_EVENTS: LiteralString = """
INSERT INTO formulary_events (event_id, sequence, published_at, changes)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[], %s::jsonb[])
ON CONFLICT DO NOTHING RETURNING event_id"""
_WAITING: LiteralString = """
SELECT event_id, sequence, published_at, changes FROM formulary_events
WHERE applied_at IS NULL AND sequence > %s ORDER BY sequence"""
_MARK_APPLIED: LiteralString = """
UPDATE formulary_events e SET applied_at = clock_timestamp(),
    applied_rank = (SELECT coalesce(max(applied_rank), 0) FROM formulary_events) + s.rank
FROM unnest(%s::bigint[]) WITH ORDINALITY AS s (sequence, rank) WHERE e.sequence = s.sequence
RETURNING e.sequence, e.applied_at"""
_INSERT_ENTRIES: LiteralString = """
INSERT INTO formulary_entries (ndc11, version, event_id, gpi14, covered, tier, prior_auth,
    step_therapy, quantity_limit)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[], %s::boolean[],
    %s::smallint[], %s::boolean[], %s::boolean[], %s::numeric[])"""
_ENTRY_COLUMNS: LiteralString = (
    "ndc11, gpi14, covered, tier, prior_auth, step_therapy, quantity_limit::text"
)


@dataclass(frozen=True)
class Applied:
    """An event applied now: the version it makes and what it changed."""

    sequence: int
    event_id: str
    published_at: datetime
    applied_at: datetime
    entries: list[CrosswalkEntry]


@dataclass
class Outcome:
    """What one ``store_and_apply`` did with each event id."""

    stored: set[str] = field(default_factory=set)  # new, durable now
    duplicates: set[str] = field(default_factory=set)  # this event id was stored before
    clashes: set[str] = field(default_factory=set)  # a new id with a sequence already used
    applied: list[Applied] = field(default_factory=list)
    version: int = 0  # the formulary's version after this transaction
    waiting: int = 0  # events stored and not applied (behind a gap)


class FormularyTables(Connections):
    """``formulary_events``, ``formulary_entries``, ``formulary_state``, ``token_rotations``."""

    def store_and_apply(self, events: Sequence[FormularyEvent]) -> Outcome:
        def attempt() -> Outcome:
            with self._guard("formulary"):
                conn = self._conn()
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (FORMULARY_LOCK,))
                    out = _store(conn, events)
                    _apply_ready(conn, out)
                    return out

        return self._retrying(attempt)

    def formulary_version(self) -> int:
        row = self._one("formulary_version", "SELECT applied_sequence FROM formulary_state")
        return int(row["applied_sequence"]) if row else 0

    def formulary_entries(self, after: int = 0) -> tuple[int, list[tuple[int, CrosswalkEntry]]]:
        """The version now and each NDC's latest entry changed after version ``after``."""
        with self._guard("formulary_entries"):
            conn = self._conn()
            with conn.transaction():
                version = _version(conn)
                rows = conn.execute(
                    "SELECT DISTINCT ON (ndc11) version, " + _ENTRY_COLUMNS + " FROM"
                    " formulary_entries WHERE version > %s AND version <= %s"
                    " ORDER BY ndc11, version DESC",
                    (after, version),
                ).fetchall()
        return version, [(int(r["version"]), _entry(r)) for r in rows]

    def formulary_waiting(self) -> tuple[int, datetime | None]:
        """Events stored and not applied, and when the oldest of them was received."""
        row = self._one(
            "formulary_waiting",
            "SELECT count(*) AS n, min(received_at) AS oldest FROM formulary_events"
            " WHERE applied_at IS NULL",
        )
        return (int(row["n"]), row["oldest"]) if row else (0, None)

    def formulary_events(self) -> list[Row]:
        """Every event stored: id, sequence, times, rank (the bench's and tests' check)."""
        return self._all(
            "formulary_events",
            "SELECT event_id, sequence, published_at, received_at, applied_at, applied_rank,"
            " jsonb_array_length(changes) AS changes FROM formulary_events ORDER BY sequence",
        )

    def record_rotation(
        self, by: str, reason: str, old_expires: datetime | None, new_expires: datetime
    ) -> None:
        """A token rotation's audit row (never the token)."""
        self._one(
            "record_rotation",
            "INSERT INTO token_rotations (rotated_by, reason, old_expires_at, new_expires_at)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (by, reason, old_expires, new_expires),
        )

    def token_rotations(self, limit: int = 20) -> list[Row]:
        return self._all(
            "token_rotations",
            "SELECT rotated_at, rotated_by, reason, old_expires_at, new_expires_at"
            " FROM token_rotations ORDER BY id DESC LIMIT %s",
            (limit,),
        )


def _version(conn: Conn) -> int:
    row = conn.execute("SELECT applied_sequence FROM formulary_state").fetchone()
    return int(row["applied_sequence"]) if row else 0


def _store(conn: Conn, events: Sequence[FormularyEvent]) -> Outcome:
    docs = [json.dumps([c.model_dump(mode="json") for c in e.changes]) for e in events]
    inserted = conn.execute(
        _INSERT_EVENTS,
        ([e.event_id for e in events], [e.sequence for e in events],
         [e.published_at for e in events], docs),
    ).fetchall()  # fmt: skip
    out = Outcome(stored={r["event_id"] for r in inserted})
    others = [e.event_id for e in events if e.event_id not in out.stored]
    if others:
        known = conn.execute(
            "SELECT event_id FROM formulary_events WHERE event_id = ANY (%s)", (others,)
        ).fetchall()
        out.duplicates = {r["event_id"] for r in known}
        out.clashes = set(others) - out.duplicates
    return out


def _apply_ready(conn: Conn, out: Outcome) -> None:
    """Apply the stored events that are next in sequence; the rest wait."""
    version = _version(conn)
    waiting = conn.execute(_WAITING, (version,)).fetchall()
    ready = []
    for row in waiting:
        if row["sequence"] != version + 1:
            break
        ready.append(row)
        version += 1
    out.version, out.waiting = version, len(waiting) - len(ready)
    if not ready:
        return
    _insert_entries(conn, ready)
    marked = conn.execute(_MARK_APPLIED, ([r["sequence"] for r in ready],)).fetchall()
    applied_at = {r["sequence"]: r["applied_at"] for r in marked}
    conn.execute("UPDATE formulary_state SET applied_sequence = %s, updated_at = now()", (version,))
    out.applied = [_applied(r, applied_at[r["sequence"]]) for r in ready]


def _insert_entries(conn: Conn, ready: list[Row]) -> None:
    rows = [(r["sequence"], r["event_id"], c) for r in ready for c in r["changes"]]
    columns: list[list[Any]] = [[c["ndc11"] for _, _, c in rows], [s for s, _, _ in rows],
                                [e for _, e, _ in rows]]  # fmt: skip
    for name in ("gpi14", "covered", "tier", "prior_auth", "step_therapy", "quantity_limit"):
        columns.append([c.get(name) for _, _, c in rows])
    conn.execute(_INSERT_ENTRIES, tuple(columns))


def _applied(row: Row, applied_at: datetime) -> Applied:
    entries = [_entry(change) for change in row["changes"]]
    return Applied(row["sequence"], row["event_id"], row["published_at"], applied_at, entries)


def _entry(data: Row) -> CrosswalkEntry:
    limit = data.get("quantity_limit")
    tier = data.get("tier")
    return CrosswalkEntry(
        ndc11=data["ndc11"],
        gpi14=data["gpi14"],
        covered=bool(data["covered"]),
        tier=int(tier) if tier is not None else None,
        prior_auth=bool(data.get("prior_auth")),
        step_therapy=bool(data.get("step_therapy")),
        quantity_limit=str(limit) if limit is not None else None,
    )
