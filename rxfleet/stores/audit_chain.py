"""The audit trail's hash chain, checked (migration 0008 writes it).

Each run's events form one chain, in the order the record link appended them
(``chain_seq`` 1, 2, 3...): ``hash = sha256(prev_hash + canonical)``, where
``canonical`` is ``rx_audit_canonical`` of the event's columns and ``prev_hash``
is the hash of the event before it (``''`` for a run's first event, the
checkpoint's hash after retention pruned the chain's start). ``verify`` reads a
run's events back, recomputes every hash here (not in the database) and names
the first event that does not fit: one whose content was edited, whose
``prev_hash`` is not its predecessor's hash, or that follows a gap (events
deleted). An event written without the chain among chained ones is named too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import LiteralString

from rxfleet.stores.pg import Connections, Row

_EVENTS: LiteralString = """SELECT id, seq, claim_id, stage, chain_seq, prev_hash, hash,
    rx_audit_canonical(run_id, chain_seq, seq, claim_id, stage, outcome, codes, attempt,
        trace_id, payload_hash, schema_version, matrix_version, at, detail) AS canonical
    FROM audit_events WHERE run_id = %s AND chain_seq IS NOT NULL ORDER BY chain_seq"""
_UNCHAINED: LiteralString = """SELECT count(*) AS n, min(id) FILTER (WHERE id > (
        SELECT min(id) FROM audit_events WHERE run_id = %(run)s AND chain_seq IS NOT NULL))
        AS stray
    FROM audit_events WHERE run_id = %(run)s AND chain_seq IS NULL"""


@dataclass(frozen=True)
class Misfit:
    """The first event of a run that does not fit its chain, and why."""

    event_id: int
    chain_seq: int | None
    seq: int
    stage: str
    claim_id: str | None
    why: str

    def line(self) -> str:
        place = f", chain position {self.chain_seq}" if self.chain_seq is not None else ""
        claim = self.claim_id if self.claim_id is not None else "?"
        return (f"event {self.event_id} (claim {claim}, seq {self.seq}, stage {self.stage}"
                f"{place}) does not fit: {self.why}")  # fmt: skip


@dataclass
class ChainCheck:
    """What ``verify`` found for one run."""

    run_id: str
    checked: int = 0
    pruned: int = 0
    unchained: int = 0
    head: str = ""
    misfit: Misfit | None = None

    @property
    def intact(self) -> bool:
        return self.misfit is None

    def line(self) -> str:
        if self.misfit is not None:
            return f"run {self.run_id}: BROKEN: {self.misfit.line()}"
        notes = [f"{self.pruned} pruned before it (checkpoint)"] if self.pruned else []
        notes += [f"{self.unchained} written before the chain"] if self.unchained else []
        extra = f"; {', '.join(notes)}" if notes else ""
        return f"run {self.run_id}: {self.checked} events intact, head {self.head[:16]}{extra}"


def link(prev_hash: str, canonical: str) -> str:
    """An event's hash: SHA-256 (hex) of its predecessor's hash and its canonical text."""
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _misfit(row: Row, why: str) -> Misfit:
    return Misfit(int(row["id"]), row.get("chain_seq"), int(row["seq"]), str(row["stage"]),
                  row.get("claim_id"), why)  # fmt: skip


def walk(check: ChainCheck, rows: Iterable[Row], position: int, prev: str) -> None:
    """Recompute the chain from ``position`` (after ``prev``); the first misfit stops it."""
    for row in rows:
        why = None
        if row["chain_seq"] != position:
            why = f"chain positions {position} to {row['chain_seq'] - 1} are missing (deleted)"
        elif row["prev_hash"] != prev:
            why = "its prev_hash is not the hash of the event before it (that one was changed)"
        elif link(prev, str(row["canonical"])) != row["hash"]:
            why = "its content does not match its hash (edited)"
        if why is not None:
            check.misfit = _misfit(row, why)
            return
        check.checked, position, prev = check.checked + 1, position + 1, str(row["hash"])
    check.head = prev


class AuditChain(Connections):
    """Reads of the chain (the ``Database`` has them)."""

    def chained_runs(self) -> list[str]:
        """Every run with audit events or a checkpoint, by run id."""
        rows = self._all(
            "chained_runs",
            """SELECT run_id FROM audit_events UNION SELECT run_id FROM audit_checkpoints
            ORDER BY run_id""",
        )
        return [str(r["run_id"]) for r in rows]

    def verify(self, run_id: str, chunk: int = 5000) -> ChainCheck:
        """Recompute ``run_id``'s chain; the first event that does not fit, if any."""
        check = ChainCheck(run_id)
        start = self._one(
            "verify", "SELECT chain_seq, hash, pruned FROM audit_checkpoints WHERE run_id = %s",
            (run_id,),
        )  # fmt: skip
        position, prev = (int(start["chain_seq"]) + 1, str(start["hash"])) if start else (1, "")
        check.pruned = int(start["pruned"]) if start else 0
        walk(check, self._stream("verify", _EVENTS, (run_id,), chunk), position, prev)
        stray = self._one("verify", _UNCHAINED, {"run": run_id})
        check.unchained = int(stray["n"]) if stray else 0
        if check.misfit is None and stray is not None and stray["stray"] is not None:
            row = self._one("verify", "SELECT * FROM audit_events WHERE id = %s", (stray["stray"],))
            if row is not None:
                check.misfit = _misfit(row, "written without the chain, among chained events")
        return check
