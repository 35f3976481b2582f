"""The business's PostgreSQL tables read page by page into customer-batch files.

:func:`page_tables_sql` reads every table (or the user's query for it) in pages of
``page_rows`` rows, inside one read-only, repeatable-read transaction for all tables
(the one consistent snapshot :func:`pipelines.database.read_tables_sql` reads), and
writes each page's rows into one Parquet file per customer batch with
:func:`pipelines.batch_read.write_batches`, the writer that files go through. Memory then
holds one page, not the tables; :func:`pipelines.staged.validate_batches` validates the
batches as it does a file's.

Pages come from a server-side cursor (``DECLARE ... CURSOR`` and ``FETCH n``), not from
``WHERE key > last ORDER BY key LIMIT n``: a cursor reads tables, views, partitioned
tables and the user's queries alike, with the plan and row order of the whole read,
where keyset pages need a unique key that event tables and queries seldom have and walk
an index (random reads) instead of scanning the table. Keyset pages could resume after
a lost connection, but only in a new transaction, which is no longer the same snapshot;
so a lost read starts again, as the whole read does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import psycopg
import pyarrow as pa
from psycopg.types.numeric import FloatLoader
from sqlalchemy.engine import Connection

from features.contracts import OPTIONAL, REQUIRED
from models.progress import track
from pipelines import batch_read
from pipelines.database.connect import EngineOrUrl, _source
from pipelines.database.read import snapshot, table_reads

# Rows per page. A row as psycopg's Python objects takes ~2 KB (10 columns), so a page
# is most of the read's peak: at 100k customers (2M transactions, 3.8M interactions)
# 50k-row pages peaked at 0.5 GB, 200k at 0.77 GB, the whole read at 2.5 GB; larger
# pages read no faster.
PAGE_ROWS = 50_000

# PostgreSQL type -> the Arrow type holding what the whole read's frame holds. Values
# arrive as psycopg loads them, so Arrow stores the same Python values; numeric arrives
# as float (the whole read turns Decimal into float: coerce_float). Types not listed are
# read as text when psycopg gives text (enums, citext, domains); else the table is read
# whole (None from page_tables_sql).
_ARROW_TYPES: dict[str, pa.DataType] = {
    "int2": pa.int64(),
    "int4": pa.int64(),
    "int8": pa.int64(),
    "float4": pa.float64(),
    "float8": pa.float64(),
    "numeric": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "name": pa.string(),
    "uuid": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    # aware values, stored as their UTC instant: validation converts to UTC anyway
    "timestamptz": pa.timestamp("us", tz="UTC"),
}
_AS_TEXT: dict[str, Callable[[object], object]] = {"uuid": str}


@dataclass(frozen=True)
class _Column:
    position: int  # in the SELECT's row
    name: str  # as the whole read names it
    arrow_type: pa.DataType
    convert: Callable[[object], object] | None


def page_tables_sql(
    url: EngineOrUrl,
    transactions: str,
    interactions: str | None = None,
    customers: str | None = None,
    queries: dict[str, str] | None = None,
    *,
    subscriptions: str | None = None,
    batches: int,
    folder: Path,
    page_rows: int | None = None,
) -> dict[str, tuple[Path, Path]] | None:
    """Read the tables page by page into ``batches`` Parquet files per table.

    Takes the tables and queries of :func:`pipelines.database.read_tables_sql`. Each
    table's files hold the columns of its contract as the whole read names them, and
    ``_source_row``, the row's position in the read. Pages read show as progress
    (``models.progress.track``), against a ``count(*)`` taken in the same snapshot.

    Args:
        batches: how many customer batches.
        folder: where to write, one subfolder per table kind (the caller removes it).
        page_rows: rows fetched per page (default :data:`PAGE_ROWS`).

    Returns:
        kind -> (the source as messages name it, ``postgresql:<table>``; its folder), for
        :func:`pipelines.staged.validate_batches`; None when a table cannot be split this
        way (no single ``customer_id`` column, clashing names, a column psycopg does not
        give as one of the types above): read it whole, whose messages say why.

    Raises:
        ValueError, InputError, DatabaseUnavailable, DatabaseAccessError: as
            :func:`pipelines.database.read_tables_sql` raises while reading.
    """
    names = {
        "transactions": transactions,
        "interactions": interactions,
        "customers": customers,
        "subscriptions": subscriptions,
    }
    reads = table_reads(names, queries)
    page_rows = page_rows or PAGE_ROWS
    folders: dict[str, tuple[Path, Path]] = {}
    with snapshot(url, reads) as (conn, statements, reading):
        # plan each cursor for all its rows, as the whole read's SELECT is planned, not
        # for the first 10% (PostgreSQL's default for cursors)
        conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
        for kind, (table, _) in reads.items():
            reading[0] = source = _source(table)
            out = folder / kind
            out.mkdir(parents=True, exist_ok=True)
            if not _write_pages(conn, statements[kind], kind, source, batches, out, page_rows):
                return None
            # a label, not a file: batch_read takes its .name, which is the label itself
            folders[kind] = (Path(source), out)
    return folders


def _write_pages(
    conn: Connection,
    statement: str,
    kind: str,
    source: str,
    batches: int,
    out: Path,
    page_rows: int,
) -> bool:
    rows = _count(conn, statement)
    dbapi = conn.connection.dbapi_connection
    with dbapi.cursor(name=f"churn_pages_{kind}") as cursor:
        # numeric as float, as the whole read's coerce_float makes of its Decimals
        cursor.adapters.register_loader("numeric", FloatLoader)
        cursor.execute(statement)  # DECLARE over the extended protocol: one statement
        columns = _columns(cursor.description or (), kind)
        if columns is None:
            return False
        pages = track(
            _pages(cursor, columns, page_rows),
            f"reading {source} ({rows:,} rows)",
            total=max(1, math.ceil(rows / page_rows)),
            unit="pages",
        )
        try:
            return batch_read.write_batches(pages, batches, out)
        except pa.ArrowException:
            return False  # a value Arrow cannot hold as the column's type


def _count(conn: Connection, statement: str) -> int:
    # the newlines keep a query's trailing line comment from hiding the parenthesis
    counting = f"SELECT count(*) FROM (\n{statement}\n) AS counted"
    with conn.connection.dbapi_connection.cursor() as cursor:
        # stream: the extended protocol, which runs exactly one statement
        return int(next(iter(cursor.stream(counting)))[0])


def _columns(description: Sequence[psycopg.Column], kind: str) -> list[_Column] | None:
    """The contract's columns of a SELECT (the others are dropped by validation)."""
    wanted = set(REQUIRED[kind]) | set(OPTIONAL[kind])
    canonical = [column.name.strip().lower() for column in description]
    if len(set(canonical)) < len(canonical):
        return None  # clashing names: the whole read says which
    columns = []
    for position, (column, name) in enumerate(zip(description, canonical, strict=True)):
        if name not in wanted:
            continue
        info = psycopg.postgres.types.get(column.type_code)
        type_name = info.name if info is not None else ""
        arrow_type = _ARROW_TYPES.get(type_name, pa.string())
        columns.append(_Column(position, column.name, arrow_type, _AS_TEXT.get(type_name)))
    return columns


def _pages(
    cursor: psycopg.ServerCursor, columns: list[_Column], page_rows: int
) -> Iterator[pa.RecordBatch]:
    """Pages of rows as Arrow blocks of ``columns``; one empty block for no rows."""
    schema = arrow_schema(columns)
    read = 0
    while rows := cursor.fetchmany(page_rows):
        read += len(rows)
        yield _block(rows, columns, schema)
    if not read:
        # an empty table still gets its (empty) batch files: validation then reports it
        yield _empty(schema)


def arrow_schema(columns: list[_Column]) -> pa.Schema:
    """The Arrow columns a page of ``columns`` is held in."""
    return pa.schema([(column.name, column.arrow_type) for column in columns])


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array([], type=field.type) for field in schema], schema=schema
    )


def _block(rows: list[tuple], columns: list[_Column], schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for column in columns:
        # one column at a time (3x faster than zip(*rows), and only the kept ones)
        values = list(map(itemgetter(column.position), rows))
        if column.convert is not None:
            convert = column.convert
            values = [None if value is None else convert(value) for value in values]
        arrays.append(pa.array(values, type=column.arrow_type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
