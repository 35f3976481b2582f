"""Connections: the URL, the engine, real transactions, and table names safe for SQL.

URLs are SQLAlchemy URLs for the psycopg 3 driver, ``postgresql+psycopg://user:pw@host/db``;
a plain ``postgresql://`` URL is read as that.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

# A server that does not answer within this many seconds counts as unavailable.
CONNECT_TIMEOUT_S = 10

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

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
