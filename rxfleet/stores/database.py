"""PostgreSQL, the system of record: runs, results, the audit trail, dead letters.

Redis is the fleet's working memory; what must last is written here, once.
The tables (``rxfleet/stores/migrations/*.sql`` says it column by column):

- ``runs``: one row per run: what went in (description, input hash, options),
  its state, the claim total and the final counts per status;
- ``results``: one row per claim per run, keyed by ``(run_id, seq)``: the
  docs/results.md fields (``reason`` and the payer's money among them), plus
  ``recorded_at``;
- ``submissions``: one row per recorded claim with a claim id, keyed by
  ``(run_id, seq)`` like its result and written with it: the claim's history
  across runs (its Idempotency-Key and digest, transaction, answer, money);
- ``audit_events``: the append-only trail of every stage of every claim (codes,
  hashes, versions: never PHI); UPDATE/DELETE are refused except by retention;
- ``dead_letters``: claims a person must look at or that can be replayed;
- ``portal_claims``: the claims pulled from a payer portal, in its order, and
  whether the portal was told (``rxfleet.stores.portal_record``);
- ``formulary_events``, ``formulary_entries``, ``formulary_state``: the versioned
  formulary the webhook keeps, and ``token_rotations`` (``rxfleet.stores.formulary_db``);
- ``schema_migrations``: which migrations this database has.

``Database`` is the one handle, built in parts: the connections and the psycopg
error translation (``rxfleet.stores.pg``: one connection per process and thread;
a psycopg error that says a value is refused — SQLSTATE class 22, class 23 other
than the unique conflict, 54000 — becomes ``ValueRefused``, a deterministic result
never retried; every other one an ``InfrastructureError``; both name the operation
and the SQLSTATE, never a value, since messages reach logs and Sentry and a value
could be PHI), the ``runs`` table, the reads of results and audit trail, and
here the schema, the exactly-once write, the dead letters and retention.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, LiteralString

from psycopg import sql
from psycopg.types.json import Jsonb

from rxfleet.claims.work import WorkRecord
from rxfleet.errors import ConfigError, InfrastructureError
from rxfleet.stores.audit_chain import AuditChain
from rxfleet.stores.formulary_db import FormularyTables
from rxfleet.stores.pg import MIGRATION_LOCK, Conn, Connections, Row
from rxfleet.stores.portal_record import PortalRecord
from rxfleet.stores.privileges import Privileges

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class ResultRow:
    """A claim's row of the results (``WorkRecord.result()`` plus its seq and reason)."""

    seq: int
    status: str
    claim_id: str | None = None
    severity: str | None = None
    errors: list[str] = dataclasses.field(default_factory=list)
    ndc11: str | None = None
    gpi: str | None = None
    reject_codes: list[str] = dataclasses.field(default_factory=list)
    route: str | None = None
    patient_token: str | None = None
    attempts: int = 0
    reason: str | None = None
    transaction_code: str | None = None
    amount_paid: Decimal | str | None = None
    patient_pay: Decimal | str | None = None
    authorization_number: str | None = None
    source: str | None = None
    #: The submission's Idempotency-Key: not a result field, it goes to ``submissions``.
    key: str | None = None

    @classmethod
    def of(cls, record: WorkRecord) -> ResultRow:
        return cls(seq=record.seq, key=record.key, **record.result())

    def values(self) -> tuple[Any, ...]:
        """The row for COPY (arrays as their text: psycopg's list dumper costs more)."""
        return (self.seq, self.claim_id, self.status, self.severity, array_text(self.errors),
                self.ndc11, self.gpi, array_text(self.reject_codes), self.route,
                self.patient_token, self.attempts, self.reason, self.transaction_code,
                self.amount_paid, self.patient_pay, self.authorization_number, self.source,
                self.key)  # fmt: skip


@dataclass(slots=True)
class AuditEvent:
    """One stage of one claim, for the audit trail. No PHI in any field.

    Not frozen: a claim has about eight, and a frozen dataclass takes three times as
    long to make; nothing changes one after it is made (``dataclasses.replace``)."""

    seq: int
    stage: str
    claim_id: str | None = None
    outcome: str | None = None
    codes: list[str] = dataclasses.field(default_factory=list)
    attempt: int | None = None
    trace_id: str | None = None
    payload_hash: str | None = None
    schema_version: str | None = None
    matrix_version: str | None = None
    at: datetime | None = None
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def values(self, run_id: str) -> tuple[Any, ...]:
        """The row for COPY (the array and the JSON as their text: a claim has about eight
        events, and psycopg's list and JSON dumpers cost three times the text's)."""
        at = self.at or datetime.now(UTC)
        detail = json.dumps(self.detail, separators=(",", ":")) if self.detail else "{}"
        return (run_id, self.seq, self.claim_id, self.stage, self.outcome,
                array_text(self.codes), self.attempt, self.trace_id, self.payload_hash,
                self.schema_version, self.matrix_version, at, detail)  # fmt: skip


@dataclass(frozen=True)
class DeadLetter:
    """Where a dead-lettered claim is and why (codes and field names, never values)."""

    seq: int
    route: str
    claim_id: str | None = None
    source: str | None = None
    line: int | None = None
    field: str | None = None
    status: str | None = None
    codes: list[str] = dataclasses.field(default_factory=list)
    reason: str | None = None
    record: Mapping[str, Any] | None = None  # the tokenized work record, for a replay
    sealed: str | None = None  # its PHI, sealed with the vault key, for a replay

    def values(self, run_id: str) -> tuple[Any, ...]:
        record = Jsonb(dict(self.record)) if self.record is not None else None
        return (run_id, self.seq, self.claim_id, self.source, self.line, self.field,
                self.status, self.route, self.codes, self.reason, record,
                self.sealed)  # fmt: skip


@dataclass(frozen=True)
class LetterFilter:
    """Which dead letters: each field given must match (none given: every one)."""

    run_id: str | None = None
    claim_id: str | None = None
    code: str | None = None  # one of the letter's codes (reject or validation code)
    reason: str | None = None  # the letter's reason, in any case

    @classmethod
    def of(cls, which: LetterFilter | str | None) -> LetterFilter:
        """``which`` as a filter: a bare run id (or None) filters by run only."""
        return which if isinstance(which, LetterFilter) else cls(run_id=which)

    def params(self) -> dict[str, Any]:
        return {"run": self.run_id, "claim": self.claim_id, "code": self.code,
                "reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """``NNNN_name.sql`` files, in version order."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", path.name)
        if match:
            found.append(Migration(int(match[1]), match[2], path))
    return found


_RESULT_COLUMNS: LiteralString = (
    "seq, claim_id, status, severity, errors, ndc11, gpi, reject_codes, route, "
    "patient_token, attempts, reason, transaction_code, amount_paid, patient_pay, "
    "authorization_number, source"
)
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS rx_results_in (
    seq integer, claim_id text, status text, severity text, errors text[], ndc11 text,
    gpi text, reject_codes text[], route text, patient_token text, attempts integer,
    reason text, transaction_code text, amount_paid numeric, patient_pay numeric,
    authorization_number text, source text, idempotency_key text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rx_events_in (
    ord bigint GENERATED ALWAYS AS IDENTITY, run_id text, seq integer, claim_id text,
    stage text, outcome text, codes text[], attempt integer, trace_id text, payload_hash text,
    schema_version text, matrix_version text, at timestamptz, detail jsonb
) ON COMMIT DELETE ROWS"""
_COPY_RESULTS_IN = "COPY rx_results_in (" + _RESULT_COLUMNS + ", idempotency_key) FROM STDIN"
_INSERT_RESULTS = (
    "INSERT INTO results (run_id, " + _RESULT_COLUMNS + ") "
    "SELECT DISTINCT ON (seq) %s, " + _RESULT_COLUMNS + " FROM rx_results_in ORDER BY seq "
    "ON CONFLICT (run_id, seq) DO NOTHING RETURNING seq"
)
_SUBMISSION_COLUMNS: LiteralString = (
    "seq, claim_id, idempotency_key, transaction_code, source, status, route, reason, "
    "reject_codes, errors, attempts, amount_paid, patient_pay, authorization_number"
)
_INSERT_SUBMISSIONS = (
    "INSERT INTO submissions (run_id, digest, " + _SUBMISSION_COLUMNS + ") "
    "SELECT DISTINCT ON (seq) %s, nullif(split_part(idempotency_key, '~', 2), ''), "
    + _SUBMISSION_COLUMNS
    + " FROM rx_results_in WHERE claim_id IS NOT NULL AND seq = ANY (%s) ORDER BY seq "
    "ON CONFLICT (run_id, seq) DO NOTHING"
)
#: Events are staged, then chained to their run's trail by rx_append_audit (0008).
_COPY_EVENTS = """COPY rx_events_in (run_id, seq, claim_id, stage, outcome, codes, attempt,
    trace_id, payload_hash, schema_version, matrix_version, at, detail) FROM STDIN"""
_COPY_DEAD = """COPY dead_letters (run_id, seq, claim_id, source, line, field, status, route,
    codes, reason, record, sealed) FROM STDIN"""
_DEAD_FILTER = """WHERE (%(run)s::text IS NULL OR run_id = %(run)s)
    AND (%(claim)s::text IS NULL OR claim_id = %(claim)s)
    AND (%(code)s::text IS NULL OR %(code)s = ANY (codes))
    AND (%(reason)s::text IS NULL OR upper(reason) = upper(%(reason)s))
    AND (%(all)s OR replayed_at IS NULL)"""
_MARK_REPLAYED = """UPDATE dead_letters d SET replayed_at = now(), replay_run_id = %s,
    sealed = NULL FROM unnest(%s::text[], %s::integer[]) AS k(run_id, seq)
    WHERE d.run_id = k.run_id AND d.seq = k.seq AND d.replayed_at IS NULL"""
_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""
_PRUNE: dict[str, LiteralString] = {
    "results": """DELETE FROM results WHERE (run_id, seq) IN (SELECT run_id, seq FROM results
        WHERE recorded_at < %s LIMIT %s)""",
    "submissions": """DELETE FROM submissions WHERE (run_id, seq) IN (SELECT run_id, seq
        FROM submissions WHERE recorded_at < %s LIMIT %s)""",
    "dead_letters": """DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters
        WHERE created_at < %s LIMIT %s)""",
    "runs": """DELETE FROM runs WHERE run_id IN (SELECT run_id FROM runs r WHERE created_at < %s
        AND NOT EXISTS (SELECT 1 FROM results x WHERE x.run_id = r.run_id)
        AND NOT EXISTS (SELECT 1 FROM submissions s WHERE s.run_id = r.run_id) LIMIT %s)""",
    "audit_events": "SELECT rx_prune_audit(%s, %s)",
}


class _Runs(Connections):
    """The ``runs`` table: a run's row from creation to its final counts."""

    def create_run(
        self,
        run_id: str,
        *,
        inputs: str,
        input_hash: str | None = None,
        options: Mapping[str, Any] | None = None,
        state: str = "producing",
        total: int | None = None,
    ) -> bool:
        """Create the run; False if it already exists, or an unfinished run of the same
        input does (one open run per input)."""
        row = self._one(
            "create_run",
            """INSERT INTO runs (run_id, inputs, input_hash, options, state, total)
            VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING run_id""",
            (run_id, inputs, input_hash, Jsonb(dict(options or {})), state, total),
        )
        return row is not None

    def set_run(
        self,
        run_id: str,
        *,
        state: str | None = None,
        total: int | None = None,
        counts: Mapping[str, int] | None = None,
        produced: int | None = None,
        note: str | None = None,
        finished_at: datetime | None = None,
    ) -> bool:
        """Update the given fields (and ``updated_at``); False if there is no such run."""
        values: dict[str, Any] = {"state": state, "total": total, "produced": produced}
        values.update({"note": note, "finished_at": finished_at})
        values["counts"] = Jsonb(dict(counts)) if counts is not None else None
        given = {k: v for k, v in values.items() if v is not None}
        sets = [sql.SQL("{} = %s").format(sql.Identifier(k)) for k in given]
        query = sql.SQL("UPDATE runs SET {}, updated_at = now() WHERE run_id = %s").format(
            sql.SQL(", ").join(sets) if sets else sql.SQL("state = state")
        )
        params = (*given.values(), run_id)
        return self._call("set_run", lambda conn: conn.execute(query, params).rowcount == 1)

    def get_run(self, run_id: str) -> Row | None:
        return self._one("get_run", "SELECT * FROM runs WHERE run_id = %s", (run_id,))

    def list_runs(self, limit: int = 20) -> list[Row]:
        """The newest runs first."""
        return self._all(
            "list_runs",
            "SELECT * FROM runs ORDER BY created_at DESC, run_id DESC LIMIT %s",
            (limit,),
        )

    def find_open_run(self, input_hash: str) -> Row | None:
        """The newest unfinished run of the same input and outcome options, if any."""
        return self._one(
            "find_open_run",
            """SELECT * FROM runs WHERE input_hash = %s AND finished_at IS NULL
            ORDER BY created_at DESC LIMIT 1""",
            (input_hash,),
        )

    def recorded(self, run_id: str, first: int, end: int) -> set[int]:
        """The sequence numbers in ``[first, end)`` whose result is recorded."""
        rows = self._all(
            "recorded",
            "SELECT seq FROM results WHERE run_id = %s AND seq >= %s AND seq < %s",
            (run_id, first, end),
        )
        return {int(row["seq"]) for row in rows}


class _ResultReads(Connections):
    """What the results and the audit trail say, read back (streamed or counted)."""

    def results(self, run_id: str, chunk: int = 2000) -> Iterator[Row]:
        """The run's results in seq order, streamed (server-side cursor, constant memory)."""
        query: LiteralString = "SELECT " + _RESULT_COLUMNS + " FROM results WHERE run_id = %s"
        query += " AND seq > %s ORDER BY seq"
        yield from self._stream(
            "results", query, (run_id, -1), chunk, after=lambda last: (run_id, last["seq"])
        )

    def result_count(self, run_id: str) -> int:
        row = self._one(
            "result_count", "SELECT count(*) AS n FROM results WHERE run_id = %s", (run_id,)
        )
        return int(row["n"]) if row else 0

    def counts(self, run_id: str) -> dict[str, int]:
        """Results per status, computed."""
        rows = self._all(
            "counts",
            "SELECT status, count(*) AS n FROM results WHERE run_id = %s GROUP BY status",
            (run_id,),
        )
        return {r["status"]: int(r["n"]) for r in rows}

    def tallies(self, run_id: str) -> dict[str, Any]:
        """The run's recorded claims by (status, route) and by reject code, computed."""
        claims = self._all(
            "tallies",
            "SELECT status, route, count(*) AS n FROM results WHERE run_id = %s "
            "GROUP BY status, route ORDER BY status, route",
            (run_id,),
        )
        codes = self._all(
            "tallies",
            "SELECT code, count(*) AS n FROM results, unnest(reject_codes) AS code "
            "WHERE run_id = %s GROUP BY code ORDER BY code",
            (run_id,),
        )
        return {
            "claims": [
                {"status": r["status"], "route": r["route"], "count": int(r["n"])} for r in claims
            ],
            "reject_codes": {str(r["code"]): int(r["n"]) for r in codes},
        }

    def audit(self, run_id: str, claim_id: str | None = None, chunk: int = 2000) -> Iterator[Row]:
        """The run's audit trail (or one claim's), by seq then time, streamed."""
        query: LiteralString = """SELECT * FROM audit_events WHERE run_id = %(run)s
            AND (%(claim)s::text IS NULL OR claim_id = %(claim)s) ORDER BY seq, at, id"""
        yield from self._stream("audit", query, {"run": run_id, "claim": claim_id}, chunk)

    def claim_submissions(self, claim_id: str) -> list[Row]:
        """Every submission of ``claim_id`` across runs, by ``recorded_at``, then run and
        seq; each with its run's ``inputs`` and ``created_at`` (as ``run_inputs``,
        ``run_created_at``)."""
        return self._all(
            "claim_submissions",
            """SELECT s.*, runs.inputs AS run_inputs, runs.created_at AS run_created_at
            FROM submissions s LEFT JOIN runs USING (run_id) WHERE s.claim_id = %s
            ORDER BY s.recorded_at, s.run_id, s.seq""",
            (claim_id,),
        )

    def claim_audit(self, claim_id: str) -> list[Row]:
        """Every audit event of ``claim_id`` across runs, by run and seq, then time."""
        return self._all(
            "claim_audit",
            "SELECT * FROM audit_events WHERE claim_id = %s ORDER BY run_id, seq, at, id",
            (claim_id,),
        )


class Database(_Runs, _ResultReads, PortalRecord, FormularyTables, AuditChain, Privileges):
    """The system of record at ``url``: its schema, results written exactly once, the
    dead letters and retention (the runs, the reads and the portal claims are its
    bases'; the audit chain's check and the roles' grants, theirs in ``audit_chain``
    and ``privileges``)."""

    # Schema.

    def upgrade(self) -> list[int]:
        """Apply the pending migrations, in order, under an advisory lock; versions applied.

        Nothing pending: nothing is written (the fleet's role, which may not create
        tables, gets here on every start). Pending, and this role may not apply them:
        a ``ConfigError`` that says who can."""
        if not self.pending():
            return []
        try:
            return self._call("upgrade", self._upgrade)
        except InfrastructureError as exc:
            if "(42501)" not in str(exc):
                raise
            raise ConfigError(
                f"database: migrations {self.pending()} are pending and this role may not "
                "apply them; run `rxfleet db upgrade` with RXFLEET_DATABASE_OWNER_URL set"
            ) from None

    def _upgrade(self, conn: Conn) -> list[int]:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(_MIGRATIONS_TABLE)
            done = {r["version"] for r in conn.execute("SELECT version FROM schema_migrations")}
            pending = [m for m in migrations() if m.version not in done]
            for migration in pending:
                self._apply(conn, migration)
        return [m.version for m in pending]

    def pending(self) -> list[int]:
        """The versions of the migrations this database has not applied (reads only)."""
        applied: set[int] = set()
        if self.schema_version():
            rows = self._all("pending", "SELECT version FROM schema_migrations")
            applied = {int(r["version"]) for r in rows}
        return [m.version for m in migrations() if m.version not in applied]

    @staticmethod
    def _apply(conn: Conn, migration: Migration) -> None:
        conn.execute(migration.path.read_bytes())  # plain SQL from the package, no values
        conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
            (migration.version, migration.name),
        )

    def schema_version(self) -> int:
        """The highest migration applied; 0 for an empty database."""
        found = self._one("schema_version", "SELECT to_regclass('schema_migrations') AS t")
        if found is None or found["t"] is None:
            return 0
        row = self._one("schema_version", "SELECT max(version) AS v FROM schema_migrations")
        return int(row["v"] or 0) if row else 0

    # Results, exactly once.

    def record(
        self,
        run_id: str,
        results: Sequence[ResultRow],
        events: Iterable[AuditEvent] = (),
        dead_letters: Iterable[DeadLetter] = (),
    ) -> int:
        """Record a batch in one transaction; the number of results newly recorded.

        Results go through COPY into a staging table, then INSERT ... ON CONFLICT
        DO NOTHING: the first writer of a (run_id, seq) wins, and only the
        submissions, events and dead letters of the seqs this call inserted are
        written (each result with a claim id is a submission, from the same rows). A redelivered
        batch, or two workers recording it at once, writes nothing twice.
        """
        if not results:
            return 0
        events, dead_letters = list(events), list(dead_letters)
        new = self._call(
            "record",
            lambda conn: self._retrying(
                lambda: self._record(conn, run_id, results, events, dead_letters)
            ),
        )
        return len(new)

    def _record(
        self,
        conn: Conn,
        run_id: str,
        results: Sequence[ResultRow],
        events: list[AuditEvent],
        dead_letters: list[DeadLetter],
    ) -> set[int]:
        if not self._local.staging:
            conn.execute(_STAGING)
            self._local.staging = True
        with conn.transaction():
            _copy(conn, _COPY_RESULTS_IN, (r.values() for r in results))
            new = {row["seq"] for row in conn.execute(_INSERT_RESULTS, (run_id,))}
            conn.execute(_INSERT_SUBMISSIONS, (run_id, sorted(new)))
            _append_events(conn, run_id, [e for e in events if e.seq in new])
            _copy(conn, _COPY_DEAD, (d.values(run_id) for d in dead_letters if d.seq in new))
        return new

    # Dead letters.

    def dead_letters(
        self,
        which: LetterFilter | str | None = None,
        limit: int = 100,
        offset: int = 0,
        include_replayed: bool = False,
    ) -> tuple[list[Row], int]:
        """A page of dead letters (newest first) and how many there are in all; ``which``:
        a :class:`LetterFilter`, or a run id."""
        params = LetterFilter.of(which).params()
        params |= {"all": include_replayed, "limit": limit, "offset": offset}
        return self._call("dead_letters", lambda conn: _letter_page(conn, params))

    def first_quarantined(self, run_id: str, limit: int = 10) -> list[Row]:
        """A run's first quarantined claims, in input order (the oldest, not the newest)."""
        with self._guard("first_quarantined"):
            return (
                self._conn()
                .execute(
                    "SELECT * FROM dead_letters WHERE run_id = %s AND status = 'QUARANTINED' "
                    "ORDER BY seq LIMIT %s",
                    (run_id, limit),
                )
                .fetchall()
            )

    def waiting_letters(self) -> dict[str, int]:
        """Dead letters not yet replayed, by reason (``""``: none given)."""
        with self._guard("waiting_letters"):
            rows = (
                self._conn()
                .execute(
                    "SELECT coalesce(reason, '') AS reason, count(*) AS n FROM dead_letters "
                    "WHERE replayed_at IS NULL GROUP BY 1"
                )
                .fetchall()
            )
            return {str(r["reason"]): int(r["n"]) for r in rows}

    def mark_replayed(self, keys: Sequence[tuple[str, int]], replay_run_id: str) -> int:
        """Mark (run_id, seq) dead letters as replayed into ``replay_run_id``; how many were
        not marked already (so a replay happens once)."""
        # Not repeated after an outage: a lost reply would read as "already replayed".
        params = (replay_run_id, [k[0] for k in keys], [k[1] for k in keys])
        return self._call(
            "mark_replayed",
            lambda conn: conn.execute(_MARK_REPLAYED, params).rowcount,
            repeat=False,
        )

    # Retention.

    def prune(
        self, older_than_days_results: int, older_than_days_audit: int, batch: int = 5000
    ) -> dict[str, int]:
        """Delete what is past retention, in batches (one short transaction each).

        Results, submissions and dead letters older than ``older_than_days_results``,
        then runs of that age with no result or submission left; audit events older than
        ``older_than_days_audit``. Returns the rows deleted per table.
        """
        now = datetime.now(UTC)
        cutoff = now - timedelta(days=older_than_days_results)
        audit_cutoff = now - timedelta(days=older_than_days_audit)
        deleted = {
            t: self._drain(t, cutoff, batch)
            for t in ("results", "submissions", "dead_letters", "runs")
        }
        deleted["audit_events"] = self._drain("audit_events", audit_cutoff, batch)
        return deleted

    def _drain(self, table: str, cutoff: datetime, batch: int) -> int:
        total = 0
        while True:
            cursor = self._call("prune", lambda conn: conn.execute(_PRUNE[table], (cutoff, batch)))
            row = cursor.fetchone() if table == "audit_events" else None
            count = int(row["rx_prune_audit"]) if row else cursor.rowcount
            total += count
            if count < batch:
                return total


def _letter_page(conn: Conn, params: dict[str, Any]) -> tuple[list[Row], int]:
    with conn.transaction():
        page = conn.execute(
            "SELECT * FROM dead_letters "
            + _DEAD_FILTER
            + " ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
            params,
        ).fetchall()
        total = conn.execute("SELECT count(*) AS n FROM dead_letters " + _DEAD_FILTER, params)
        return page, int(total.fetchone()["n"])  # type: ignore[index]


def array_text(items: Sequence[str]) -> str:
    """A text array's literal: each element double-quoted, ``"`` and ``\\`` escaped."""
    if not items:
        return "{}"
    quoted = ('"' + str(i).replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items)
    return "{" + ",".join(quoted) + "}"


def _append_events(conn: Conn, run_id: str, events: list[AuditEvent]) -> None:
    """Stage the events, then chain them to the run's trail (under the run's lock)."""
    if events:
        _copy(conn, _COPY_EVENTS, (e.values(run_id) for e in events))
        conn.execute("SELECT rx_append_audit(%s)", (run_id,))


def _copy(conn: Conn, statement: LiteralString, rows: Iterable[tuple[Any, ...]]) -> None:
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
