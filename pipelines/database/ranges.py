"""The business's PostgreSQL tables split into ranges of ``customer_id``, each read on a
connection of its own, all in one snapshot.

:func:`exported` opens the read-only, repeatable-read transaction of
:func:`pipelines.database.read.snapshot`, exports its snapshot
(``pg_export_snapshot()``), counts each table's rows and picks the ranges' first ids
from the transactions (``percentile_disc``, duplicates dropped). While it stays open,
:func:`read_range` reads one range of one table (or of the user's query, as a subquery)
in a transaction that imports that snapshot (``SET TRANSACTION SNAPSHOT``): every range
sees the rows the client's transaction sees, whatever the business writes meanwhile.
The Dask workers read the ranges this way (:mod:`pipelines.dask_read`).

Ids are compared as text in byte order (``customer_id::text COLLATE "C"``), so every
table and query splits at the same boundaries whatever its id column's type or
collation. Rows without an id are read with the first range: validation must see them,
to say so as it does of the whole read. A range holds the contract's columns only, with
the types a page of :mod:`pipelines.database.pages` holds.

The URL never travels with a range: a :class:`RangeRead` names the environment variable
holding it, which each worker reads from its own environment.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
from psycopg import sql
from psycopg.types.numeric import FloatLoader
from sqlalchemy.engine import Connection

from pipelines.database.connect import EngineOrUrl, _engine, _source, _transaction
from pipelines.database.errors import _database_errors
from pipelines.database.pages import PAGE_ROWS, _columns, _count, _empty, _pages, arrow_schema
from pipelines.database.read import _fetch, snapshot

# Rows of the largest table per range (every table splits at the same ids, so the others
# in proportion): a range is read whole into one worker's memory, ~0.1 GB of Arrow at 1M
# rows, plus one page of psycopg's Python objects while it is fetched.
RANGE_ROWS = 1_000_000

# what pg_export_snapshot() returns (e.g. 00000003-0000001B-1), pasted into SET
# TRANSACTION SNAPSHOT, which takes no parameters
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+(?:-[0-9A-F]+)+")


@dataclass(frozen=True)
class RangeRead:
    """How a worker reads one table's ranges: no URL, the variable that holds it.

    Attributes:
        url_env: the environment variable holding the database URL, on every worker.
        snapshot: the client's exported snapshot.
        kind: which contract applies.
        source: the label messages name (``postgresql:<table>``).
        statement: the whole read's single SELECT (of the table, or the user's query).
        columns: the contract's columns of ``statement``, as it names them.
        customer_id: which of ``columns`` is the id.
        bounds: each range's first id as text, after the first range's (which also
            holds the rows without an id); none: one range, every row.
    """

    url_env: str
    snapshot: str
    kind: str
    source: str
    statement: str
    columns: tuple[str, ...]
    customer_id: str
    bounds: tuple[str, ...]

    @property
    def ranges(self) -> int:
        return len(self.bounds) + 1


@dataclass(frozen=True)
class Plan:
    """One snapshot's tables as ranges (what the client learns, never a row).

    Attributes:
        reads: kind -> its ranges.
        rows: kind -> its rows in the snapshot.
        metas: kind -> a range with no rows (the columns and dtypes a range has).
    """

    reads: dict[str, RangeRead]
    rows: dict[str, int]
    metas: dict[str, pd.DataFrame]


@contextmanager
def exported(
    url: EngineOrUrl,
    url_env: str,
    reads: Mapping[str, tuple[str, str | None]],
    ranges: int,
    range_rows: int | None = None,
) -> Iterator[Plan | None]:
    """The tables' ranges in one exported snapshot, kept while the block runs.

    Args:
        url: the database, for the client's own connection.
        url_env: where the workers find the URL (:attr:`RangeRead.url_env`).
        reads: kind -> (table or label, query or None), as
            :func:`pipelines.database.read.table_reads` gives them.
        ranges: at least this many ranges (more for large tables: ``range_rows`` rows of
            the largest table each).
        range_rows: default :data:`RANGE_ROWS`.

    Yields:
        The plan; None when a table cannot be split this way (no single
        ``customer_id`` column, clashing names): read it whole, whose messages say why.

    Raises:
        ValueError, InputError, DatabaseUnavailable, DatabaseAccessError: as
            :func:`pipelines.database.read_tables_sql` raises while reading.
    """
    with snapshot(url, reads) as (conn, statements, reading):
        exported_id = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
        shapes: dict[str, tuple[list[str], str]] = {}
        rows: dict[str, int] = {}
        metas: dict[str, pd.DataFrame] = {}
        for kind, (table, _) in reads.items():
            reading[0] = _source(table)
            shape = _shape(conn, statements[kind], kind)
            if shape is None:
                yield None
                return
            columns, customer_id, metas[kind] = shape
            shapes[kind] = (columns, customer_id)
            rows[kind] = _count(conn, statements[kind])
        most = max(rows.values())
        count = max(ranges, math.ceil(most / (range_rows or RANGE_ROWS)))
        reading[0] = _source(reads["transactions"][0])
        bounds = _bounds(conn, statements["transactions"], shapes["transactions"][1], count)
        yield Plan(
            {
                kind: RangeRead(
                    url_env,
                    exported_id,
                    kind,
                    _source(table),
                    statements[kind],
                    tuple(shapes[kind][0]),
                    shapes[kind][1],
                    bounds,
                )
                for kind, (table, _) in reads.items()
            },
            rows,
            metas,
        )


def _shape(
    conn: Connection, statement: str, kind: str
) -> tuple[list[str], str, pd.DataFrame] | None:
    """The contract's columns of ``statement``, its id column, and a range with no rows."""
    dbapi = conn.connection.dbapi_connection
    # DECLARE plans the query and describes it; no row is read
    with dbapi.cursor(name=f"churn_shape_{kind}") as cursor:
        cursor.execute(statement)
        columns = _columns(cursor.description or (), kind)
    if columns is None:
        return None
    ids = [column.name for column in columns if column.name.strip().lower() == "customer_id"]
    if len(ids) != 1:
        return None
    meta = _empty(arrow_schema(columns)).to_pandas()
    return [column.name for column in columns], ids[0], meta


def _key(customer_id: str) -> sql.Composable:
    # byte order: the same for every table whatever its column's type or collation
    return sql.SQL('{}::text COLLATE "C"').format(sql.Identifier(customer_id))


def _bounds(conn: Connection, statement: str, customer_id: str, ranges: int) -> tuple[str, ...]:
    """The first id of each range after the first: ids at even shares of the rows."""
    if ranges < 2:
        return ()
    shares = ", ".join(repr(i / ranges) for i in range(1, ranges))
    dbapi = conn.connection.dbapi_connection
    query = (
        sql.SQL("SELECT unnest(percentile_disc(ARRAY[")
        + sql.SQL(shares)
        + sql.SQL("]::float8[]) WITHIN GROUP (ORDER BY id)) FROM (SELECT ")
        + _key(customer_id)
        # the newlines keep a query's trailing line comment from hiding the parenthesis
        + sql.SQL(" AS id FROM (\n")
        + sql.SQL(statement)
        + sql.SQL("\n) AS ranged) AS ids")
    ).as_string(dbapi)
    with dbapi.cursor() as cursor:
        # stream: the extended protocol, which runs exactly one statement
        found = [row[0] for row in cursor.stream(query)]
    # percentile_disc gives them in order, a frequent id more than once
    return tuple(bound for i, bound in enumerate(found) if i == 0 or bound != found[i - 1])


def range_select(read: RangeRead, number: int) -> sql.Composed:
    """The SELECT of range ``number``: its rows' contract columns."""
    key = _key(read.customer_id)
    where: sql.Composable
    if not read.bounds:
        where = sql.SQL("true")
    elif number == 0:
        where = sql.SQL("{} IS NULL OR {} < {}").format(key, key, sql.Literal(read.bounds[0]))
    elif number == len(read.bounds):
        where = sql.SQL("{} >= {}").format(key, sql.Literal(read.bounds[-1]))
    else:
        low, high = read.bounds[number - 1], read.bounds[number]
        where = sql.SQL("{} >= {} AND {} < {}").format(
            key, sql.Literal(low), key, sql.Literal(high)
        )
    return (
        sql.SQL("SELECT ")
        + sql.SQL(", ").join(map(sql.Identifier, read.columns))
        + sql.SQL(" FROM (\n")
        + sql.SQL(read.statement)  # as is: a query's text is no template
        + sql.SQL("\n) AS ranged WHERE ")
        + where
    )


def read_range(read: RangeRead, number: int) -> pd.DataFrame:
    """Range ``number`` of ``read``'s table, in the client's snapshot (run on a worker).

    Raises:
        LookupError: this process has no URL in ``read.url_env``.
        InputError, DatabaseUnavailable, DatabaseAccessError: as
            :func:`pipelines.database.read_tables_sql` raises while reading.
    """
    url = os.environ.get(read.url_env)
    if not url:
        raise LookupError(
            f"set {read.url_env} to the database URL on every Dask worker "
            "(postgresql+psycopg://...)"
        )
    if not _SNAPSHOT_ID.fullmatch(read.snapshot):
        raise ValueError(f"not an exported snapshot: {read.snapshot!r}")
    with (
        _engine(url) as engine,
        _database_errors(engine.url, [read.source], writing=False),
        _transaction(engine, "REPEATABLE READ") as conn,
    ):
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{read.snapshot}'")
        conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")  # all its rows
        dbapi = conn.connection.dbapi_connection
        statement = range_select(read, number).as_string(dbapi)
        try:
            with dbapi.cursor(name=f"churn_range_{read.kind}_{number}") as cursor:
                # numeric as float, as the whole read's coerce_float makes of its Decimals
                cursor.adapters.register_loader("numeric", FloatLoader)
                cursor.execute(statement)  # DECLARE over the extended protocol
                columns = _columns(cursor.description or (), read.kind)
                assert columns is not None  # the client's columns, which do not clash
                blocks = list(_pages(cursor, columns, PAGE_ROWS))
        except pa.ArrowException:
            # a value Arrow cannot hold as the column's type: as the whole read holds it
            return _fetch(conn, statement)
    return pa.Table.from_batches(blocks).to_pandas()
