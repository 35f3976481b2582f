"""PostgreSQL in and out: the business's tables in, the scored list out.

Reads go through the same contracts as files (:func:`features.contracts.validate_table`),
inside one read-only transaction. The list is written to a table keyed by
``(score_date, customer_id)``: one transaction replaces that date's rows, so re-running a
date never duplicates and a failed write leaves every date's previous rows in place.

Nothing from configuration is pasted into SQL except table names that passed
:func:`validate_identifier`, and those are quoted by SQLAlchemy; values are always bound
parameters or COPY data. A user-given query must be a single SELECT: it runs in a
read-only transaction over the extended protocol, which refuses a second statement.

URLs are SQLAlchemy URLs for the psycopg 3 driver, ``postgresql+psycopg://user:pw@host/db``;
a plain ``postgresql://`` URL is read as that. MLflow accepts the same URL as its
tracking store (``MLFLOW_TRACKING_URI=postgresql+psycopg://...``).
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pandas as pd
import psycopg
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.schema import CreateTable

from features.contracts import TABLES, InputError, ValidatedTable, validate_table
from models.explain import REASON_COLUMNS
from models.scoring import LIST_COLUMNS
from pipelines.catalog import Tables, assemble_tables

# A server that does not answer within this many seconds counts as unavailable.
CONNECT_TIMEOUT_S = 10
# Rows fetched per round trip when reading.
_FETCH_ROWS = 10_000

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

# Column types of the list table; every column of models.scoring.LIST_COLUMNS needs one.
LIST_TABLE_TYPES: dict[str, sa.types.TypeEngine] = {
    "customer_id": sa.Text(),
    "score_date": sa.Date(),
    "list": sa.Text(),
    "group": sa.Text(),
    "campaign": sa.Text(),
    "risk_rank": sa.Integer(),
    "status": sa.Text(),
    "days_since_last_purchase": sa.Double(),
    "expected_gap_days": sa.Double(),
    "plausible_gap_days": sa.Double(),
    "churn_probability": sa.Double(),
    "expected_value": sa.Double(),
    "value_at_risk": sa.Double(),
    "segment": sa.Text(),
    "top_reason": sa.Text(),
    "reason_confidence": sa.Double(),
    "reason_as_of": sa.DateTime(),
    **{name: sa.Double() for name in REASON_COLUMNS},
    "top_drivers": sa.Text(),
    "recommended_action": sa.Text(),
    "action_rule": sa.Text(),
    "model_version": sa.Text(),
    "scored_at": sa.DateTime(timezone=True),
}
# Stored order: the files' order (customer_id, score_date, then the rest of the list).
LIST_TABLE_COLUMNS = ("customer_id", "score_date", *LIST_COLUMNS[1:])


class DatabaseUnavailable(RuntimeError):
    """The server cannot be reached or dropped the connection; worth retrying later.

    The message is one line naming host, port and database (never the password).
    """


class DatabaseAccessError(RuntimeError):
    """The server answered and refused: wrong password, unknown user or database, or a
    role without the privileges the list needs. A retry cannot fix it.

    The message is one line naming the user, host, port and database (never the password).
    """


EngineOrUrl = str | URL | Engine


def validate_identifier(name: str) -> str:
    """Return ``name`` if it is a safe table name, ``table`` or ``schema.table``.

    Each part must be a letter or underscore followed by at most 62 letters, digits or
    underscores. Names are quoted when used, so they are case-sensitive as written;
    lower-case names match tables created without quotes.

    Raises:
        ValueError: naming the rejected value.
    """
    parts = name.split(".") if isinstance(name, str) else []
    if not 1 <= len(parts) <= 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise ValueError(
            f"invalid table name {name!r}: use letters, digits and underscores (not starting "
            "with a digit, at most 63 characters), optionally as schema.table"
        )
    return name


def read_table_sql(
    engine_or_url: EngineOrUrl, table: str, kind: str, query: str | None = None
) -> ValidatedTable:
    """Read and validate one input table from PostgreSQL.

    Args:
        engine_or_url: an Engine, or a URL (an engine is made and disposed of here).
        table: table name (see :func:`validate_identifier`); with ``query``, the label
            that error messages use.
        kind: which contract applies, one of ``features.contracts.TABLES``.
        query: a single SELECT (or WITH ... SELECT) to read instead of the whole table.

    Raises:
        ValueError: bad table name or kind.
        InputError: the query is not a single SELECT, the table or query cannot be read,
            or the data breaks the contract; the source is ``postgresql:<table>``.
        DatabaseUnavailable: the server cannot be reached or went away mid-read.
    """
    return _read_validated(engine_or_url, {kind: (table, query)})[kind]


def read_tables_sql(
    url: EngineOrUrl,
    transactions: str,
    interactions: str | None = None,
    customers: str | None = None,
    queries: dict[str, str] | None = None,
) -> Tables:
    """Read and validate the business's tables from PostgreSQL, like ``catalog.read_tables``.

    All tables are read in one read-only, repeatable-read transaction, so they come from
    one consistent snapshot even while the business keeps writing.

    Args:
        url: an Engine or a URL.
        transactions, interactions, customers: table names; interactions and customers
            are optional.
        queries: table kind -> SELECT to read instead of that table. A query for
            interactions or customers reads that table even without a name (the kind is
            then the label in messages).

    Raises:
        ValueError: bad table name, or a query for an unknown kind.
        InputError: as :func:`read_table_sql`.
        DatabaseUnavailable: as :func:`read_table_sql`.
    """
    queries = dict(queries or {})
    unknown = sorted(set(queries) - set(TABLES))
    if unknown:
        raise ValueError(
            f"queries given for unknown tables {', '.join(map(repr, unknown))}; "
            f"expected {', '.join(TABLES)}"
        )
    names = {"transactions": transactions, "interactions": interactions, "customers": customers}
    reads = {
        kind: (names[kind] or kind, queries.get(kind))
        for kind in TABLES
        if names[kind] is not None or kind in queries
    }
    read = _read_validated(url, reads)
    return assemble_tables(
        {
            kind: (f"postgresql:{reads[kind][0]}", read[kind]) if kind in read else None
            for kind in TABLES
        }
    )


def write_list_sql(frame: pd.DataFrame, url: EngineOrUrl, table: str, score_date: object) -> int:
    """Replace one score date's rows of the list table with ``frame``; return rows written.

    The table is created if missing (primary key ``(score_date, customer_id)``). In one
    transaction the date's old rows are deleted and the new ones copied in, so a re-run
    of a date leaves exactly the new rows, and a failure anywhere leaves every date's
    previous rows intact. Concurrent writers to the table wait for each other.

    Args:
        frame: the scored list, with every column of ``models.scoring.LIST_COLUMNS``
            (a ``score_date`` column, if present, must hold ``score_date`` only).
        url: an Engine or a URL (psycopg 3 driver).
        table: table name (see :func:`validate_identifier`).
        score_date: the date the rows are for (date, Timestamp or ISO string).

    Raises:
        ValueError: bad table name, missing columns, a score date that does not match,
            an existing table without the list's columns, or values the database refuses
            (e.g. a missing customer_id or a non-numeric probability); nothing is changed.
        DatabaseAccessError: the login is refused or the role may not write the table.
        DatabaseUnavailable: the server cannot be reached or went away; nothing is changed.
    """
    validate_identifier(table)
    date = _as_date(score_date)
    rows = _list_rows(frame, date)
    target = _list_table(table)
    source = _source(table)
    with _engine(url) as engine, _database_errors(engine.url, [source], writing=True):
        preparer = engine.dialect.identifier_preparer
        quoted_table = preparer.format_table(target)
        quoted_columns = ", ".join(preparer.quote(name) for name in LIST_TABLE_COLUMNS)
        with _transaction(engine, "READ COMMITTED") as conn:
            # CREATE ... IF NOT EXISTS needs CREATE on the schema even when the table
            # exists; a role granted only the table's privileges must still write
            if not sa.inspect(conn).has_table(target.name, schema=target.schema):
                conn.execute(CreateTable(target, if_not_exists=True))
            _check_list_layout(conn, target, source)
            # one writer at a time per table; readers (the CRM) are not blocked
            conn.exec_driver_sql(f"LOCK TABLE {quoted_table} IN SHARE ROW EXCLUSIVE MODE")
            conn.execute(sa.delete(target).where(target.c.score_date == date))
            cursor = conn.connection.dbapi_connection.cursor()
            with cursor, cursor.copy(f"COPY {quoted_table} ({quoted_columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    return len(rows)


def check_database(engine_or_url: EngineOrUrl, list_table: str | None = None) -> None:
    """Connect now and, given ``list_table``, check that the list can be written there.

    The pre-flight of a run: a wrong password, a missing database or a role that may not
    write fails here in a second, before any table is read or any customer scored.
    Nothing is written.

    Args:
        engine_or_url: an Engine or a URL.
        list_table: the table the list will go to (see :func:`validate_identifier`).

    Raises:
        ValueError: bad table name or URL, an existing table that is not a churn list, or
            a schema that does not exist.
        DatabaseAccessError: the login is refused; the server is read-only; or the role
            lacks SELECT, INSERT or DELETE on the existing table (or CREATE on the schema
            of a new one).
        DatabaseUnavailable: the server cannot be reached.
    """
    if list_table is not None:
        validate_identifier(list_table)
    source = [_source(list_table) if list_table else "PostgreSQL"]
    with (
        _engine(engine_or_url) as engine,
        _database_errors(engine.url, source, writing=True),
        _transaction(engine, "READ COMMITTED") as conn,
    ):
        user, read_only = conn.execute(
            sa.text("SELECT current_user, current_setting('transaction_read_only')")
        ).one()
        if list_table is None:
            return
        where = f"PostgreSQL at {_where(engine.url)}"
        if read_only == "on":
            raise DatabaseAccessError(
                f"{where} is read-only (a standby?): user {user} cannot write {source[0]}"
            )
        target = _list_table(list_table)
        missing = _missing_privileges(conn, target, source[0])
        if missing:
            raise DatabaseAccessError(f"{where}: user {user} may not write {source[0]} ({missing})")


def _missing_privileges(conn: Connection, target: sa.Table, source: str) -> str:
    """What the role lacks to replace a date's rows of ``target`` (or create it); "" if none."""
    quoted = conn.dialect.identifier_preparer.format_table(target)
    # one privilege per call: has_table_privilege('a, b') is true if *any* is held
    privilege = sa.text("SELECT has_table_privilege(:table, :privilege)")
    if conn.execute(sa.text("SELECT to_regclass(:table) IS NOT NULL"), {"table": quoted}).scalar():
        _check_list_layout(conn, target, source)
        lacks = [
            name
            for name in ("SELECT", "INSERT", "DELETE")
            if not conn.execute(privilege, {"table": quoted, "privilege": name}).scalar()
        ]
        return f"lacks {', '.join(lacks)} on the table" if lacks else ""
    schema = target.schema or conn.execute(sa.text("SELECT current_schema()")).scalar()
    if schema is None:
        return "no schema on its search_path to create the table in"
    found = conn.execute(
        sa.text("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = :schema)"),
        {"schema": schema},
    )
    if not found.scalar():
        raise ValueError(f"{source}: schema {schema} does not exist; create it first")
    may_create = conn.execute(
        sa.text("SELECT has_schema_privilege(:schema, 'CREATE')"), {"schema": schema}
    ).scalar()
    return "" if may_create else f"the table is new and it lacks CREATE on schema {schema}"


# --- reading -----------------------------------------------------------------------


def _read_validated(
    engine_or_url: EngineOrUrl, reads: Mapping[str, tuple[str, str | None]]
) -> dict[str, ValidatedTable]:
    """kind -> (table or label, query or None) read in one transaction, then validated."""
    for kind, (table, _) in reads.items():
        if kind not in TABLES:
            raise ValueError(f"unknown table kind {kind!r}; expected one of {', '.join(TABLES)}")
        validate_identifier(table)
    queries = {
        kind: _single_select(query, _source(table))
        for kind, (table, query) in reads.items()
        if query is not None
    }
    frames: dict[str, pd.DataFrame] = {}
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
            for kind, (table, _) in reads.items():
                reading[0] = _source(table)
                frames[kind] = _fetch(conn, statements[kind])
    return {
        kind: validate_table(frames[kind], kind, source=_source(table))
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


# --- writing -----------------------------------------------------------------------


def _as_date(value: object) -> dt.date:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"score_date {value!r} is not a date") from exc
    if pd.isna(stamp):
        raise ValueError(f"score_date {value!r} is not a date")
    return stamp.date()


def _list_table(table: str) -> sa.Table:
    schema, name = _split(table)
    return sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(column, LIST_TABLE_TYPES[column]) for column in LIST_TABLE_COLUMNS),
        sa.PrimaryKeyConstraint("score_date", "customer_id"),
        schema=schema,
    )


def _list_rows(frame: pd.DataFrame, date: dt.date) -> list[tuple[object, ...]]:
    """The frame as COPY rows in ``LIST_TABLE_COLUMNS`` order, missing values as None."""
    missing = [column for column in LIST_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"the list to write lacks columns {', '.join(missing)}")
    if "score_date" in frame.columns and len(frame):
        days = pd.to_datetime(frame["score_date"]).dt.normalize()
        other = sorted(str(day.date()) for day in days[days != pd.Timestamp(date)].unique())
        if other:
            raise ValueError(
                f"the list's score_date column holds {', '.join(other[:3])}, not {date}"
            )
    columns: list[list[object]] = []
    for name in LIST_TABLE_COLUMNS:
        if name == "score_date":
            columns.append([date] * len(frame))
            continue
        values = frame[name]
        if name == "scored_at":
            # naive times are UTC, as everywhere in the pipeline
            values = pd.to_datetime(values, utc=True)
            as_objects = pd.Series(values.dt.to_pydatetime(), index=values.index, dtype=object)
        else:
            as_objects = values.astype(object)
        # NaN/NA/NaT -> NULL; psycopg would store a NaN id as the text 'NaN'
        columns.append(as_objects.where(values.notna(), None).tolist())
    return list(zip(*columns, strict=True))


def _check_list_layout(conn: Connection, target: sa.Table, source: str) -> None:
    existing = {
        column["name"] for column in sa.inspect(conn).get_columns(target.name, schema=target.schema)
    }
    missing = [name for name in LIST_TABLE_COLUMNS if name not in existing]
    if missing:
        raise ValueError(
            f"{source}: the existing table is not a churn list (lacks {', '.join(missing)}); "
            "write to a new table name or migrate it"
        )


# --- connections and errors --------------------------------------------------------


def _split(table: str) -> tuple[str | None, str]:
    schema, _, name = validate_identifier(table).rpartition(".")
    return schema or None, name


def _source(table: str) -> str:
    return f"postgresql:{table}"


def _postgres_url(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as exc:
        raise ValueError(
            "cannot parse the database URL; expected postgresql+psycopg://user:password@host"
            ":port/database"
        ) from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise ValueError(
            f"unsupported database URL {parsed.render_as_string(hide_password=True)}; "
            "expected postgresql+psycopg://user:password@host:port/database"
        )
    return parsed


@contextmanager
def _engine(engine_or_url: EngineOrUrl) -> Iterator[Engine]:
    """The caller's engine as is, or one made from a URL and disposed of afterwards."""
    if isinstance(engine_or_url, Engine):
        dialect = engine_or_url.dialect
        if (dialect.name, dialect.driver) != ("postgresql", "psycopg"):
            raise ValueError(
                f"expected a postgresql+psycopg engine, got {dialect.name}+{dialect.driver}"
            )
        yield engine_or_url
        return
    engine = sa.create_engine(
        _postgres_url(engine_or_url), connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
    )
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _transaction(engine: Engine, isolation_level: str) -> Iterator[Connection]:
    """A real transaction, committed at the end, even on an AUTOCOMMIT engine."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level=isolation_level)
        with conn.begin():
            yield conn


def _where(url: URL) -> str:
    host = url.host or "local socket"
    return f"{host}:{url.port or 5432}/{url.database or ''}"


def _user(url: URL) -> str:
    # libpq's default when the URL names no user
    return url.username or os.environ.get("PGUSER") or getpass.getuser()


def _refusal(url: URL, reason: str, source: str | None = None) -> str:
    """One line for a refusal: who was refused where (and on what), and why."""
    # libpq: 'connection failed: connection to server at "h", port 5432 failed: FATAL:  why'
    why = re.split(r"FATAL:\s*|failed: (?:fe_sendauth: )?", reason)[-1].strip()
    on = f" on {source}" if source and source != "PostgreSQL" else ""
    return (
        f"PostgreSQL at {_where(url)} refused user {_user(url)}{on}: {why} "
        "(a retry cannot fix this)"
    )


def _first_line(exc: BaseException, url: URL) -> str:
    # the first database error of the chain: closing a connection that just died raises
    # again ("the connection is lost"), with the error that says why as its context
    while isinstance(exc.__context__, _DRIVER_ERRORS):
        exc = exc.__context__
    detail = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig else exc
    lines = [line.strip() for line in str(detail).splitlines() if line.strip()]
    line = lines[0] if lines else type(detail).__name__
    if url.password:
        line = line.replace(str(url.password), "***")
    return line


_LOST = (sa_exc.OperationalError, sa_exc.InterfaceError, psycopg.OperationalError)
_DRIVER_ERRORS = (sa_exc.DBAPIError, psycopg.Error)
# Refusals a retry cannot fix. libpq reports a refused login without an SQLSTATE, so its
# (English) text is all there is: a server with translated messages falls back to retries.
_REFUSED_SQLSTATE = (
    psycopg.errors.InvalidAuthorizationSpecification,  # 28000, incl. no pg_hba.conf entry
    psycopg.errors.InvalidPassword,  # 28P01
    psycopg.errors.InvalidCatalogName,  # 3D000: database does not exist
    psycopg.errors.InsufficientPrivilege,  # 42501: permission denied
)
_REFUSED_LOGIN = re.compile(
    r"authentication failed|no password supplied|does not exist|permission denied"
    r"|not permitted to log in|pg_hba\.conf"
)


@contextmanager
def _database_errors(url: URL, source: list[str], writing: bool) -> Iterator[None]:
    """Turn driver errors into one-line errors: unavailable (retry) or refused (don't).

    ``source`` holds the label of the table being worked on; it may change meanwhile.
    """
    try:
        yield
    except _DRIVER_ERRORS as exc:
        lost = isinstance(exc, _LOST) or (
            isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
        )
        reason = _first_line(exc, url)
        if lost and _REFUSED_LOGIN.search(reason):
            raise DatabaseAccessError(_refusal(url, reason)) from exc
        driver_error = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
        if isinstance(driver_error, _REFUSED_SQLSTATE):
            raise DatabaseAccessError(_refusal(url, reason, source[0])) from exc
        if lost:
            raise DatabaseUnavailable(
                f"PostgreSQL at {_where(url)} is unavailable: {reason}"
            ) from exc
        if writing:
            raise ValueError(
                f"{source[0]}: the database refused the list, nothing was changed: {reason}"
            ) from exc
        raise InputError(source[0], f"cannot be read: {reason}") from exc
