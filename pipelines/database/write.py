"""The scored list written to a PostgreSQL table, and the pre-flight that checks it can be.

The table is keyed by ``(score_date, customer_id)``: one transaction replaces that date's
rows, so re-running a date never duplicates and a failed write leaves every date's
previous rows in place. A table written by an older version, before some of the list's
columns existed, gets them added (nullable) when the role may alter it; otherwise the
error names the missing columns and the SQL its owner can run.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection
from sqlalchemy.schema import CreateTable

from models.explain import REASON_COLUMNS
from models.scoring import LIST_COLUMNS
from pipelines.database.connect import (
    EngineOrUrl,
    _engine,
    _source,
    _split,
    _transaction,
    validate_identifier,
)
from pipelines.database.errors import DatabaseAccessError, _database_errors, _where

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
    "reason_source": sa.Text(),
    "drivers_reason": sa.Text(),
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
# Every layout of the list table since the first has held these: a table with them is a
# churn list (perhaps an older one, whose later columns can be added), one without is not.
_LIST_IDENTITY = ("customer_id", "score_date", "churn_probability", "model_version", "scored_at")


def write_list_sql(frame: pd.DataFrame, url: EngineOrUrl, table: str, score_date: object) -> int:
    """Replace one score date's rows of the list table with ``frame``; return rows written.

    The table is created if missing (primary key ``(score_date, customer_id)``); an older
    list table gets the columns it lacks added, nullable, so its earlier rows read as
    empty there. In one transaction the date's old rows are deleted and the new ones
    copied in, so a re-run of a date leaves exactly the new rows, and a failure anywhere
    leaves every date's previous rows (and the table's layout) intact. Concurrent writers
    to the table wait for each other.

    Args:
        frame: the scored list, with every column of ``models.scoring.LIST_COLUMNS``
            (a ``score_date`` column, if present, must hold ``score_date`` only).
        url: an Engine or a URL (psycopg 3 driver).
        table: table name (see :func:`validate_identifier`).
        score_date: the date the rows are for (date, Timestamp or ISO string).

    Raises:
        ValueError: bad table name, missing columns, a score date that does not match,
            an existing table that is not a churn list, or values the database refuses
            (e.g. a missing customer_id or a non-numeric probability); nothing is changed.
        DatabaseAccessError: the login is refused, the role may not write the table, or
            the table lacks columns the role may not add (the message gives the SQL).
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
            _update_list_layout(conn, target, source, engine.url, add=True)
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
    Nothing is written (an older list table's missing columns are added by the write).

    Args:
        engine_or_url: an Engine or a URL.
        list_table: the table the list will go to (see :func:`validate_identifier`).

    Raises:
        ValueError: bad table name or URL, an existing table that is not a churn list, or
            a schema that does not exist.
        DatabaseAccessError: the login is refused; the server is read-only; the role
            lacks SELECT, INSERT or DELETE on the existing table (or CREATE on the schema
            of a new one); or the table lacks columns the role may not add.
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
        missing = _missing_privileges(conn, target, source[0], engine.url)
        if missing:
            raise DatabaseAccessError(f"{where}: user {user} may not write {source[0]} ({missing})")


def _missing_privileges(conn: Connection, target: sa.Table, source: str, url: URL) -> str:
    """What the role lacks to replace a date's rows of ``target`` (or create it); "" if none."""
    quoted = conn.dialect.identifier_preparer.format_table(target)
    # one privilege per call: has_table_privilege('a, b') is true if *any* is held
    privilege = sa.text("SELECT has_table_privilege(:table, :privilege)")
    if conn.execute(sa.text("SELECT to_regclass(:table) IS NOT NULL"), {"table": quoted}).scalar():
        _update_list_layout(conn, target, source, url, add=False)
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


# --- the list table's layout -------------------------------------------------------


def _list_table(table: str) -> sa.Table:
    schema, name = _split(table)
    return sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(column, LIST_TABLE_TYPES[column]) for column in LIST_TABLE_COLUMNS),
        sa.PrimaryKeyConstraint("score_date", "customer_id"),
        schema=schema,
    )


def _update_list_layout(
    conn: Connection, target: sa.Table, source: str, url: URL, add: bool
) -> None:
    """Refuse a table that is not a churn list; give an older one the columns it lacks.

    Only the table's owner (or a member of the owning role) may add columns. With
    ``add=False`` (the pre-flight) nothing changes: it only checks that the role could.

    Raises:
        ValueError: the table lacks a column every churn list has.
        DatabaseAccessError: columns are missing and the role may not add them; the
            message names them and gives the ``ALTER TABLE`` the owner can run.
    """
    existing = {
        column["name"] for column in sa.inspect(conn).get_columns(target.name, schema=target.schema)
    }
    missing = [name for name in LIST_TABLE_COLUMNS if name not in existing]
    if not missing:
        return
    if any(name in missing for name in _LIST_IDENTITY):
        raise ValueError(
            f"{source}: the existing table is not a churn list (lacks {', '.join(missing)}); "
            "write to a new table name or migrate it"
        )
    preparer = conn.dialect.identifier_preparer
    statement = f"ALTER TABLE {preparer.format_table(target)} " + ", ".join(
        f"ADD COLUMN IF NOT EXISTS {preparer.quote(name)} "
        f"{LIST_TABLE_TYPES[name].compile(dialect=conn.dialect)}"
        for name in missing
    )
    user, owner, may_alter = conn.execute(
        sa.text(
            "SELECT current_user, pg_get_userbyid(relowner), pg_has_role(relowner, 'USAGE') "
            "FROM pg_class WHERE oid = to_regclass(:table)"
        ),
        {"table": preparer.format_table(target)},
    ).one()
    if not may_alter:
        raise DatabaseAccessError(
            f"PostgreSQL at {_where(url)}: {source} is an older churn list without the "
            f"columns {', '.join(missing)}, and user {user} may not add them; its owner "
            f"({owner}) can run: {statement};"
        )
    if add:
        # IF NOT EXISTS: a concurrent writer may have added them while this one waited
        conn.exec_driver_sql(statement)


# --- the rows ----------------------------------------------------------------------


def _as_date(value: object) -> dt.date:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"score_date {value!r} is not a date") from exc
    if pd.isna(stamp):
        raise ValueError(f"score_date {value!r} is not a date")
    return stamp.date()


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
