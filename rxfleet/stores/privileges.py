"""Least privilege in the system of record: the owner's role and the fleet's.

The owner (``RXFLEET_DATABASE_OWNER_URL``) applies the migrations, so it owns
every table and function; the fleet (``RXFLEET_DATABASE_URL``: workers, beat,
the CLI's reads) gets what it needs and, on the audit trail, no more than
appending: ``SELECT, INSERT`` on ``audit_events``, ``SELECT`` on
``audit_checkpoints``, ``audit_retention`` and ``schema_migrations``, EXECUTE on
``rx_append_audit`` and ``rx_prune_audit`` (retention, ``SECURITY DEFINER``);
``SELECT, INSERT, UPDATE, DELETE`` on every other table of the schema (runs,
results, submissions, dead letters, and the tables later migrations add) and
``USAGE`` on its sequences. It must not own a table, be a superuser, or inherit
the owner's rights. ``Privileges.secure`` (run by ``rxfleet db upgrade``, and
by the embedded mode) creates the fleet's role when it does not exist, grants,
checks, and says what the fleet's role may do, table by table.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from typing import LiteralString

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from rxfleet.errors import ConfigError
from rxfleet.stores.pg import MIGRATION_LOCK, Conn, Connections

#: Tables the fleet's role may read but never change (the trail is appended through
#: INSERT on audit_events only).
READ_ONLY = ("audit_events", "audit_checkpoints", "audit_retention", "schema_migrations")
FLEET_FUNCTIONS = ("rx_append_audit(text)", "rx_prune_audit(timestamptz, integer)")
_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER")
_GRANTS = tuple(sql.SQL(s) for s in (
    "GRANT USAGE ON SCHEMA {schema} TO {who}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {who}",
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {who}",
    "REVOKE ALL ON {read_only} FROM {who}",
    "GRANT SELECT ON {read_only} TO {who}",
    "GRANT INSERT ON audit_events TO {who}",
    "GRANT EXECUTE ON FUNCTION {functions} TO {who}",
))  # fmt: skip
_TABLES: LiteralString = """SELECT c.relname AS name FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
    ORDER BY c.relname"""


def fleet_role(url: str) -> str:
    """The role a ``postgresql://`` URL connects as (libpq's default: the OS user)."""
    return str(conninfo_to_dict(url).get("user") or getpass.getuser())


@dataclass
class Secured:
    """What ``secure`` did: the lines to show the operator, warnings apart."""

    role: str
    done: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Privileges(Connections):
    """Roles and grants, run as the owner (the ``Database`` has them)."""

    def secure(self, fleet_url: str | None, audit_retention_days: int) -> Secured:
        """Set the audit trail's retention floor; create or check the fleet's role of
        ``fleet_url`` and grant it least privilege (nothing to grant when it is this
        role: a warning says the trail is then editable by the fleet)."""
        with self._guard("secure"):
            conn = self._conn()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                return _secure(conn, fleet_url, audit_retention_days)


def _secure(conn: Conn, fleet_url: str | None, days: int) -> Secured:
    conn.execute("UPDATE audit_retention SET days = %s", (days,))
    owner = str(_scalar(conn, "SELECT current_user"))
    role = fleet_role(fleet_url) if fleet_url else owner
    secured = Secured(role, [f"audit trail retention floor: {days} days"])
    if role == owner:
        secured.warnings.append(
            f"one role ({owner}) both owns the tables and runs the fleet: it can edit or drop "
            "the audit trail's guard; set RXFLEET_DATABASE_OWNER_URL to an owner role and "
            "RXFLEET_DATABASE_URL to a role of the fleet's own (docs/security.md)"
        )
        return secured
    password = conninfo_to_dict(fleet_url or "").get("password")
    _ensure_role(conn, role, str(password) if password else None, secured)
    _check_role(conn, role, owner)
    _take_ownership(conn, role, owner)
    _grant(conn, role)
    secured.done += _granted(conn, role)
    return secured


def _scalar(conn: Conn, query: LiteralString, params: tuple[object, ...] = ()) -> object:
    row = conn.execute(query, params).fetchone()
    return next(iter(row.values())) if row else None


def _ensure_role(conn: Conn, role: str, password: str | None, secured: Secured) -> None:
    if _scalar(conn, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)):
        secured.done.append(f"role {role}: exists")
        return
    statement = sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role))
    if password:
        statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
    conn.execute(statement)
    secured.done.append(f"role {role}: created (LOGIN{', with its password' if password else ''})")


def _check_role(conn: Conn, role: str, owner: str) -> None:
    """Refuse a fleet role that would hold the owner's power anyway."""
    row = conn.execute(
        "SELECT rolsuper, pg_has_role(%s, %s, 'USAGE') AS inherits FROM pg_roles "
        "WHERE rolname = %s",
        (role, owner, role),
    ).fetchone()
    if row and row["rolsuper"]:
        raise ConfigError(f"database: the fleet's role {role} is a superuser: it could edit the "
                          "audit trail; give the fleet an ordinary role")  # fmt: skip
    if row and row["inherits"]:
        raise ConfigError(f"database: the fleet's role {role} inherits the owner {owner}'s "
                          f"rights: REVOKE {owner} FROM {role}")  # fmt: skip


def _take_ownership(conn: Conn, role: str, owner: str) -> None:
    """Tables the fleet's role owns (a single-URL set-up, migrated as the fleet) pass to
    the owner; a ConfigError says what to run when this role may not take them."""
    owned = conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relkind IN ('r', 'p') AND pg_get_userbyid(relowner) = %s",
        (role,),
    ).fetchall()
    if not owned:
        return
    if not _scalar(conn, "SELECT pg_has_role(current_user, %s, 'USAGE')", (role,)):
        raise ConfigError(
            f"database: the fleet's role {role} owns {owned[0]['relname']} and "
            f"{len(owned) - 1} more; as a superuser run `REASSIGN OWNED BY {role} TO {owner}` "
            "in this database, then `rxfleet db upgrade` again"
        )
    conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(role)))


def _grant(conn: Conn, role: str) -> None:
    who = sql.Identifier(role)
    read_only = sql.SQL(", ").join(sql.Identifier(t) for t in READ_ONLY)
    functions = sql.SQL(", ").join(sql.SQL(f) for f in FLEET_FUNCTIONS)
    schema = sql.Identifier(str(_scalar(conn, "SELECT current_schema()")))
    for statement in _GRANTS:
        conn.execute(statement.format(schema=schema, who=who, read_only=read_only,
                                      functions=functions))  # fmt: skip


def _granted(conn: Conn, role: str) -> list[str]:
    """What ``role`` may do, table by table (read back from the catalog)."""
    lines = []
    for table in (r["name"] for r in conn.execute(_TABLES).fetchall()):
        may = [p for p in _PRIVILEGES if _scalar(conn, "SELECT has_table_privilege(%s, %s, %s)",
                                                  (role, table, p))]  # fmt: skip
        lines.append(f"{role} on {table}: {', '.join(may) or 'nothing'}")
    return lines
