"""The business's tables read from PostgreSQL, through the same contracts as files.

Every table of a read comes from one read-only, repeatable-read transaction. A user-given
query must be a single SELECT: it runs in that read-only transaction over the extended
protocol, which refuses a second statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pandas as pd
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.contracts import INPUT_TABLES, InputError, ValidatedTable, validate_table
from pipelines.catalog import Tables, assemble_tables, latest_event
from pipelines.database.connect import (
    EngineOrUrl,
    _engine,
    _source,
    _split,
    _transaction,
    validate_identifier,
)
from pipelines.database.errors import _database_errors

# Rows fetched per round trip when reading.
_FETCH_ROWS = 10_000


def read_table_sql(
    engine_or_url: EngineOrUrl, table: str, kind: str, query: str | None = None
) -> ValidatedTable:
    """Read and validate one input table from PostgreSQL, like ``catalog.read_table``.

    Args:
        engine_or_url: an Engine, or a URL (an engine is made and disposed of here).
        table: table name (see :func:`validate_identifier`); with ``query``, the label
            that error messages use.
        kind: which contract applies, one of ``features.contracts.INPUT_TABLES``.
        query: a single SELECT (or WITH ... SELECT) to read instead of the whole table.

    Raises:
        ValueError: bad table name or kind.
        InputError: the query is not a single SELECT, the table or query cannot be read,
            or the data breaks the contract (events dated after tomorrow included); the
            source is ``postgresql:<table>``.
        DatabaseUnavailable: the server cannot be reached or went away mid-read.
    """
    return _read_validated(engine_or_url, {kind: (table, query)})[kind]


def read_tables_sql(
    url: EngineOrUrl,
    transactions: str,
    interactions: str | None = None,
    customers: str | None = None,
    queries: dict[str, str] | None = None,
    *,
    subscriptions: str | None = None,
    kinds: Mapping[str, str] | None = None,
    drop_duplicate_interactions: bool = False,
) -> Tables:
    """Read and validate the business's tables from PostgreSQL, like ``catalog.read_tables``.

    All tables are read in one read-only, repeatable-read transaction, so they come from
    one consistent snapshot even while the business keeps writing. The same data read
    from files gives equal tables: the same contracts, repairs, kind renames and
    duplicate rule, and the same subscription checks.

    Args:
        url: an Engine or a URL.
        transactions, interactions, customers, subscriptions: table names; all but
            transactions are optional.
        queries: table kind -> SELECT to read instead of that table. A query for an
            optional table reads it even without a name (the kind is then the label in
            messages).
        kinds: interaction kind renames (the business's vocabulary -> the contract's).
        drop_duplicate_interactions: drop exact duplicate interactions (kept otherwise).

    Raises:
        ValueError: bad table name, or a query for an unknown kind.
        InputError: as :func:`read_table_sql`, or subscriptions of customers no other
            table knows.
        DatabaseUnavailable: as :func:`read_table_sql`.
    """
    names = {
        "transactions": transactions,
        "interactions": interactions,
        "customers": customers,
        "subscriptions": subscriptions,
    }
    reads = table_reads(names, queries)
    read = _read_validated(
        url, reads, drop_duplicates={"interactions": drop_duplicate_interactions}
    )
    return assemble_tables(
        {
            kind: (_source(reads[kind][0]), read[kind]) if kind in read else None
            for kind in INPUT_TABLES
        },
        kinds,
    )


def table_reads(
    names: Mapping[str, str | None], queries: Mapping[str, str] | None
) -> dict[str, tuple[str, str | None]]:
    """kind -> (table name or label, query or None) for each table a read covers.

    Args:
        names: kind -> table name or None, as :func:`read_tables_sql` takes them.
        queries: kind -> SELECT; a query for a table without a name reads it too.

    Raises:
        ValueError: a query for an unknown kind.
    """
    queries = dict(queries or {})
    unknown = sorted(set(queries) - set(INPUT_TABLES))
    if unknown:
        raise ValueError(
            f"queries given for unknown tables {', '.join(map(repr, unknown))}; "
            f"expected {', '.join(INPUT_TABLES)}"
        )
    return {
        kind: (names.get(kind) or kind, queries.get(kind))
        for kind in INPUT_TABLES
        if names.get(kind) is not None or kind in queries
    }


@contextmanager
def snapshot(
    engine_or_url: EngineOrUrl, reads: Mapping[str, tuple[str, str | None]]
) -> Iterator[tuple[Connection, dict[str, str], list[str]]]:
    """One read-only, repeatable-read transaction to read ``reads`` in.

    Yields the connection, each kind's single SELECT, and a one-item list holding the
    label that error messages name: set it to the table being read. Driver errors in the
    block become :class:`InputError`, ``DatabaseUnavailable`` or ``DatabaseAccessError``.

    Raises:
        ValueError: a bad table name or kind.
        InputError: a query that is not a single SELECT.
    """
    for kind, (table, _) in reads.items():
        if kind not in INPUT_TABLES:
            raise ValueError(
                f"unknown table kind {kind!r}; expected one of {', '.join(INPUT_TABLES)}"
            )
        validate_identifier(table)
    queries = {
        kind: _single_select(query, _source(table))
        for kind, (table, query) in reads.items()
        if query is not None
    }
    with _engine(engine_or_url) as engine:
        statements = {
            kind: queries[kind] if kind in queries else _table_select(engine, table)
            for kind, (table, _) in reads.items()
        }
        # what error messages name: the table being read when it happened
        reading = [_source(next(iter(reads.values()))[0])]
        with (
            _database_errors(engine.url, reading, writing=False),
            _transaction(engine, "REPEATABLE READ") as conn,
        ):
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield conn, statements, reading


def _read_validated(
    engine_or_url: EngineOrUrl,
    reads: Mapping[str, tuple[str, str | None]],
    drop_duplicates: Mapping[str, bool] | None = None,
) -> dict[str, ValidatedTable]:
    """kind -> (table or label, query or None) read in one transaction, then validated.

    ``drop_duplicates``: kind -> drop exact duplicate rows (absent: the contract's rule).
    """
    frames: dict[str, pd.DataFrame] = {}
    with snapshot(engine_or_url, reads) as (conn, statements, reading):
        for kind, (table, _) in reads.items():
            reading[0] = _source(table)
            frames[kind] = _fetch(conn, statements[kind])
    drop = drop_duplicates or {}
    return {
        kind: validate_table(
            frames.pop(kind),  # validation frees each raw column once converted
            kind,
            source=_source(table),
            not_after=latest_event(kind),
            drop_duplicates=drop.get(kind),
        )
        for kind, (table, _) in reads.items()
    }


def _table_select(engine: Engine, table: str) -> str:
    schema, name = _split(table)
    statement = sa.select(sa.literal_column("*")).select_from(sa.table(name, schema=schema))
    return str(statement.compile(dialect=engine.dialect))


def _fetch(conn: Connection, statement: str) -> pd.DataFrame:
    # psycopg's stream always uses the extended protocol, which runs exactly one
    # statement (a plain execute without parameters would run "a; b" as two)
    with conn.connection.dbapi_connection.cursor() as cursor:
        # fetching in chunks needs libpq 17+ (the psycopg[binary] wheel ships it)
        size = _FETCH_ROWS if psycopg.capabilities.has_stream_chunked() else 1
        rows = list(cursor.stream(statement, size=size))
        names = [column.name for column in cursor.description or ()]
    if not rows:
        return pd.DataFrame(columns=names)
    # coerce_float: numeric columns arrive as Decimal; pandas.read_sql does the same
    return pd.DataFrame.from_records(rows, columns=names, coerce_float=True)


# Pieces of SQL text a semicolon can hide in, matched whole so that only semicolons
# outside them are seen. An unterminated quote does not match, so its ";" counts.
_SQL_TOKEN = re.compile(
    r"""
      --[^\n]*                                  # line comment
    | /\*.*?\*/                                 # block comment
    | [Ee]'(?:[^'\\]|\\.|'')*'                  # escape string
    | '(?:[^']|'')*'                            # string
    | "(?:[^"]|"")*"                            # quoted identifier
    | \$(?P<tag>(?:[A-Za-z_][A-Za-z0-9_]*)?)\$.*?\$(?P=tag)\$   # dollar-quoted string
    | (?P<semicolon>;)
    """,
    re.DOTALL | re.VERBOSE,
)
_COMMENTS = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.DOTALL)
_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/|\()*", re.DOTALL)


def _single_select(query: str, source: str) -> str:
    """The query without a trailing semicolon, if it is one SELECT; else InputError."""
    text = query.strip() if isinstance(query, str) else ""
    end = len(text)
    for token in _SQL_TOKEN.finditer(text):
        if token.group("semicolon"):
            if not _COMMENTS.fullmatch(text, token.end()):
                raise InputError(
                    source, "the query must be a single SELECT statement; found more than one"
                )
            end = token.start()
            break
    statement = text[:end].rstrip()
    start = _LEADING_NOISE.match(statement).end()
    first_word = re.match(r"\w*", statement[start:]).group(0)
    if first_word.lower() not in ("select", "with"):
        raise InputError(source, "the query must be a single SELECT statement (SELECT or WITH)")
    return statement
