"""The ``portal_claims`` table: where each claim pulled from a payer portal sits, in the
portal's order and in its run, and whether the portal has been told (acknowledged).

A part of ``rxfleet.stores.database.Database`` (the one handle on the system of
record); the table is ``migrations/0010_portal_claims.sql``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rxfleet.stores.pg import Connections, Row

#: The ``runs.input_hash`` of a portal's run for a UTC day: one open run per portal and day.
PORTAL_RUN_KEY = "portal:{portal}:{day}"


@dataclass(frozen=True)
class Pulled:
    """One claim pulled: its place in the portal's order and in its run."""

    pos: int
    cursor: str
    ack_cursor: str | None
    run_id: str
    seq: int
    batch_first: int
    batch_count: int

    def values(self, portal: str) -> tuple[object, ...]:
        return (portal, self.pos, self.cursor, self.ack_cursor, self.run_id, self.seq,
                self.batch_first, self.batch_count)  # fmt: skip


_TAKE = """INSERT INTO portal_claims (portal, pos, cursor, ack_cursor, run_id, seq, batch_first,
    batch_count) SELECT %s, * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[],
    %s::integer[], %s::integer[], %s::integer[]) ON CONFLICT DO NOTHING RETURNING pos"""
_UNACKED = """SELECT p.pos, p.cursor, p.ack_cursor, p.run_id, p.seq, p.batch_first,
    p.batch_count, p.pulled_at, (r.seq IS NOT NULL) AS recorded
    FROM portal_claims p LEFT JOIN results r ON r.run_id = p.run_id AND r.seq = p.seq
    WHERE p.portal = %s AND p.acked_at IS NULL ORDER BY p.pos LIMIT %s"""


class PortalRecord(Connections):
    """The portal claims: taken (pulled) once, acknowledged in order."""

    def portal_take(self, portal: str, rows: Sequence[Pulled], produced: int) -> set[int]:
        """Write the pulled claims (and the run's ``produced``) in one transaction; the
        positions written. A position or cursor already taken (another sync pulled it)
        is left as it is and not returned: its claim is not this caller's to enqueue."""
        if not rows:
            return set()
        columns = list(zip(*(row.values(portal)[1:] for row in rows), strict=True))
        with self._guard("portal_take"), self._conn().transaction():
            conn = self._conn()
            cur = conn.execute(_TAKE, (portal, *(list(c) for c in columns)))
            taken = {int(r["pos"]) for r in cur.fetchall()}
            conn.execute(
                "UPDATE runs SET produced = greatest(coalesce(produced, 0), %s), "
                "updated_at = now() WHERE run_id = %s",
                (produced, rows[0].run_id),
            )
        return taken

    def portal_last(self, portal: str) -> Row | None:
        """The last claim pulled from ``portal`` (its pos and cursor), or None."""
        return self._one(
            "portal_last",
            "SELECT pos, cursor FROM portal_claims WHERE portal = %s ORDER BY pos DESC LIMIT 1",
            (portal,),
        )

    def portal_next_seq(self, run_id: str) -> int:
        """The next sequence number of a portal run."""
        row = self._one(
            "portal_next_seq",
            "SELECT coalesce(max(seq) + 1, 0) AS n FROM portal_claims WHERE run_id = %s",
            (run_id,),
        )
        return int(row["n"]) if row else 0

    def portal_unacked(self, portal: str, limit: int = 5000) -> list[Row]:
        """The oldest claims not yet acknowledged, in the portal's order, each with
        ``recorded`` (whether its result is in the database)."""
        return self._all("portal_unacked", _UNACKED, (portal, limit))

    def portal_acked(self, portal: str, through: int) -> int:
        """Mark every claim up to position ``through`` acknowledged; how many were not."""
        with self._guard("portal_acked"):
            cursor = self._conn().execute(
                "UPDATE portal_claims SET acked_at = now() WHERE portal = %s AND pos <= %s "
                "AND acked_at IS NULL",
                (portal, through),
            )
            return cursor.rowcount

    def portal_known(self, portal: str, cursors: Sequence[str]) -> dict[str, Row]:
        """The rows of the claims ``cursors`` name (those pulled before), by cursor."""
        rows = self._all(
            "portal_known",
            """SELECT p.pos, p.cursor, p.ack_cursor, p.run_id, p.seq, p.batch_first,
            p.batch_count, (r.seq IS NOT NULL) AS recorded FROM portal_claims p
            LEFT JOIN results r ON r.run_id = p.run_id AND r.seq = p.seq
            WHERE p.portal = %s AND p.cursor = ANY (%s)""",
            (portal, list(cursors)),
        )
        return {str(row["cursor"]): row for row in rows}

    def portal_open_runs(self, portal: str) -> list[Row]:
        """The portal's unfinished runs (one per UTC day it pulled claims on), oldest first."""
        prefix = PORTAL_RUN_KEY.format(portal=portal, day="")
        return self._all(
            "portal_open_runs",
            """SELECT * FROM runs WHERE finished_at IS NULL AND starts_with(input_hash, %s)
            ORDER BY created_at""",
            (prefix,),
        )
