"""A real, throw-away PostgreSQL server for the database tests.

Each server is a fresh cluster (``initdb``) in its own temporary folder, listening on a
free loopback port with its socket in that folder, and owned by the ``postgres`` user
when the tests run as root (PostgreSQL refuses to run as root; CI is root). The server
binaries come from Debian's ``postgresql`` package: ``.ci/install-postgres`` installs it.
A server that cannot be found or started fails the tests that need it, never skips them.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL

DATABASE = "churn"
USER = "churn"
_SUPERUSER = "postgres"
_START_TIMEOUT_S = 60
_INSTALL_HINT = "run .ci/install-postgres (as root: apt-get install postgresql)"


def _server_binaries() -> Path:
    """Folder holding initdb and pg_ctl: Debian's newest version, else the PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {_INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One cluster: ``start()`` creates it on first use, ``stop()`` keeps its data."""

    def __init__(self) -> None:
        self.bin = _server_binaries()
        self.root = Path(tempfile.mkdtemp(prefix="churn-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.password = secrets.token_urlsafe(16)
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(f"running as root but there is no 'postgres' user; {_INSTALL_HINT}")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        self._initdb()

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the test database, as the password user."""
        return URL.create(
            "postgresql+psycopg",
            username=USER,
            password=self.password,
            host="127.0.0.1",
            port=self.port,
            database=DATABASE,
        ).render_as_string(hide_password=False)

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [*self._as_postgres, *command], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            pytest.fail(
                f"PostgreSQL test server: `{' '.join(command)}` exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()[-20:]
        except OSError:
            return ""
        return "\nserver log:\n" + "\n".join(lines)

    def _initdb(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            _SUPERUSER,
            "-E",
            "UTF8",
            "--no-locale",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        )
        self.start()
        with self._superuser() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(USER), sql.Literal(self.password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(DATABASE), sql.Identifier(USER)
                )
            )

    def create_database(self, name: str) -> str:
        """A further database owned by the test user; returns its SQLAlchemy URL."""
        with self._superuser() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(USER)
                )
            )
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def create_role(self, name: str, *settings: str) -> str:
        """A further login role with no privileges but PUBLIC's; returns its SQLAlchemy URL.

        ``settings`` are ``ALTER ROLE ... SET`` assignments, e.g.
        ``"default_transaction_read_only = on"``.
        """
        password = secrets.token_urlsafe(16)
        with self._superuser() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )
            for setting in settings:
                conn.execute(
                    sql.SQL("ALTER ROLE {} SET ").format(sql.Identifier(name)) + sql.SQL(setting)
                )
        return URL.create(
            "postgresql+psycopg",
            username=name,
            password=password,
            host="127.0.0.1",
            port=self.port,
            database=DATABASE,
        ).render_as_string(hide_password=False)

    def _superuser(self) -> psycopg.Connection:
        # over the socket in our folder (trust), not TCP: no password needed for setup
        return psycopg.connect(
            host=str(self.root), port=self.port, user=_SUPERUSER, dbname="postgres", autocommit=True
        )

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {shlex.quote(str(self.root))}",
                "-c listen_addresses=127.0.0.1",
                # no fsync: faster, and commits still survive the server being killed
                # (only an OS crash would lose them), which is what the fault tests do
                "-c fsync=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            str(_START_TIMEOUT_S),
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def is_running(self) -> bool:
        status = subprocess.run(
            [*self._as_postgres, str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            check=False,
        )
        return status.returncode == 0

    def destroy(self) -> None:
        try:
            if self.data.exists() and self.is_running():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (starting one costs a few seconds)."""
    yield from _server()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql+psycopg://churn:...@127.0.0.1:PORT/churn`` on the session server."""
    return postgres_server.url


@pytest.fixture
def disposable_postgres() -> Iterator[PostgresServer]:
    """A server of the test's own, for tests that stop and restart it."""
    yield from _server()
