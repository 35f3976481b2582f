"""The checks of a scoring run's destinations, before any table is read or server starts.

Kept apart from the tasks so that the CLI can run them before it imports the flows'
stack (xgboost, scikit-learn, MLflow; ~3 s): Prefect's temporary API and the batch
processes start as soon as they pass, while that import goes on beside them. The
database client loads only when a database is to be checked.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipelines import catalog
from pipelines.settings import DatabaseInputs, Inputs, ScoreSettings


def database_url(env_var: str) -> str:
    """The connection URL from the environment (never a flow parameter: it has a password)."""
    url = os.environ.get(env_var)
    if not url:
        raise LookupError(f"set {env_var} to the database URL (postgresql+psycopg://...)")
    return url


def preflight(inputs: Inputs, out_dir: Path, settings: ScoreSettings) -> None:
    """Check every destination of a scoring run before any table is read.

    In order: the list table's name, that it has a database URL, that ``out_dir`` is
    writable, then (for database inputs or a list table) that the server takes this login
    and the role may write the list. Nothing is written.

    Raises:
        ValueError: a bad table name, or an existing table that is not a churn list.
        LookupError: a list table but no database URL.
        OutputNotWritable: ``out_dir`` cannot be written.
        DatabaseAccessError: the login is refused, or the role may not write the list.
        DatabaseUnavailable: the server cannot be reached (worth retrying).
    """
    table = settings.output_table
    if table:
        from pipelines.database import validate_identifier

        validate_identifier(table)
        settings.check_list_table_url()
    catalog.check_writable(Path(out_dir))
    # each database once: the list table's (login and privileges), the inputs' (login)
    databases = {settings.output_url_env: table} if table else {}
    if isinstance(inputs, DatabaseInputs):
        databases.setdefault(inputs.url_env, None)
    if not databases:
        return
    from pipelines.database import check_database  # loads the flows' stack (~3 s)

    for url_env, list_table in databases.items():
        check_database(database_url(url_env), list_table)
