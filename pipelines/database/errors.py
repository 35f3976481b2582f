"""Driver errors as one line: unavailable (a retry may help) or refused (it cannot).

Messages name the user, host, port, database and table, never the password.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL

from features.contracts import InputError


class DatabaseUnavailable(RuntimeError):
    """The server cannot be reached or dropped the connection; worth retrying later.

    The message is one line naming host, port and database (never the password).
    """


class DatabaseAccessError(RuntimeError):
    """The server answered and refused: wrong password, unknown user or database, or a
    role without the privileges the list needs. A retry cannot fix it.

    The message is one line naming the user, host, port and database (never the password).
    """


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
