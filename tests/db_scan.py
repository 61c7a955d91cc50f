"""Read everything a PostgreSQL database holds, to scan it for raw PHI."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from psycopg import sql

_TABLES = """SELECT table_schema, table_name FROM information_schema.tables
WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2"""
_COLUMNS = """SELECT column_name FROM information_schema.columns
WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position"""


def dump_database(conn: psycopg.Connection[Any]) -> Iterator[str]:
    """Every column of every row of every table (information_schema), as text."""
    for schema, table in conn.execute(_TABLES).fetchall():
        columns = [row[0] for row in conn.execute(_COLUMNS, (schema, table))]
        yield f"{schema}.{table}"
        yield from _cells(conn, schema, table, columns)


def _cells(
    conn: psycopg.Connection[Any], schema: str, table: str, columns: list[str]
) -> Iterator[str]:
    cells = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns)
    query = sql.SQL("SELECT {} FROM {}").format(cells, sql.Identifier(schema, table))
    for row in conn.execute(query):
        yield from (value for value in row if value is not None)


def leaks(haystack: Iterable[str], needles: Iterable[str]) -> set[str]:
    """The needles found anywhere in the haystack."""
    text = "\n".join(haystack)
    return {needle for needle in needles if needle in text}


def phi_in_database(url: str, needles: Iterable[str]) -> set[str]:
    """The raw values (needles) that appear anywhere in the database at ``url``."""
    with psycopg.connect(url) as conn:
        return leaks(dump_database(conn), needles)
