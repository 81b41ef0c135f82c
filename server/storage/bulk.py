"""Statements over many rows at once: key lists matched in one condition, rows inserted together.

The batch store of offers (``offer_batch.py``) writes a few hundred offers per transaction with
these helpers instead of one statement per row. On PostgreSQL a key list is three text arrays
unnested into a derived table, and rows go in with COPY through the driver's connection, which
runs in the same transaction. SQLite gets a row-value IN list and ``executemany``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from sqlalchemy import ColumnElement, Connection, String, Table, bindparam, func, insert, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError

Triple = tuple[str, str, str]


def match_triples(
    connection: Connection,
    columns: tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]],
    triples: Iterable[Triple],
    *,
    name: str,
) -> list[ColumnElement[bool]]:
    """Return conditions that keep the rows whose three ``columns`` equal one of ``triples``.

    ``name`` prefixes the bind parameters, so that two lists can meet in one statement. In a
    DELETE on PostgreSQL the derived table becomes a ``USING`` item.
    """
    unique = sorted(set(triples))
    if connection.dialect.name != "postgresql":
        return [tuple_(*columns).in_(unique)]
    listed = (
        func.unnest(
            *(
                _text_array(f"{name}_{position}", [triple[position] for triple in unique])
                for position in range(3)
            )
        )
        .table_valued("first", "second", "third")
        .render_derived(name=f"{name}_list")
    )
    return [
        columns[0] == listed.c.first,
        columns[1] == listed.c.second,
        columns[2] == listed.c.third,
    ]


def insert_rows(
    connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows``, tuples of the values of ``columns``, into ``table``.

    PostgreSQL takes them with one COPY. A driver error is raised as SQLAlchemy's
    ``DBAPIError``, as one of an ordinary statement would be.
    """
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return

    names = ", ".join(f'"{column}"' for column in columns)
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    driver_connection = connection.connection.driver_connection
    assert isinstance(driver_connection, psycopg.Connection)
    try:
        with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as error:
        raise DBAPIError(statement, None, error) from error


def _text_array(name: str, values: list[str]) -> Any:
    text_array: ARRAY[str] = ARRAY(String)
    return bindparam(name, values, type_=text_array)
