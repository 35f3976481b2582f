"""PostgreSQL in and out: the business's tables in, the scored list out.

Reads go through the same contracts as files (:func:`features.contracts.validate_table`),
inside one read-only transaction (:mod:`.read`); the local batches read it page by page
(:mod:`.pages`), the Dask workers by ranges of ``customer_id``, each range on a connection
of its own in the client's exported snapshot (:mod:`.ranges`). The list is written to a
table keyed by ``(score_date, customer_id)``: one transaction replaces that date's rows, so
re-running a date never duplicates and a failed write leaves every date's previous rows in
place (:mod:`.write`). Driver errors become one line, retryable or not (:mod:`.errors`);
URLs, engines and table names are in :mod:`.connect`.

Nothing from configuration is pasted into SQL except table names that passed
:func:`validate_identifier`, and those are quoted by SQLAlchemy; values are bound
parameters, COPY data, or literals psycopg quotes (the ranges' bounds), and a snapshot's
id must look like one. A user-given query must be a single SELECT: it runs in a read-only
transaction over the extended protocol, which refuses a second statement.

URLs are SQLAlchemy URLs for the psycopg 3 driver, ``postgresql+psycopg://user:pw@host/db``;
a plain ``postgresql://`` URL is read as that. MLflow accepts the same URL as its
tracking store (``MLFLOW_TRACKING_URI=postgresql+psycopg://...``).
"""

from pipelines.database.connect import CONNECT_TIMEOUT_S, EngineOrUrl, validate_identifier
from pipelines.database.errors import DatabaseAccessError, DatabaseUnavailable
from pipelines.database.read import read_table_sql, read_tables_sql
from pipelines.database.write import (
    LIST_TABLE_COLUMNS,
    LIST_TABLE_TYPES,
    check_database,
    write_list_sql,
)

__all__ = [
    "CONNECT_TIMEOUT_S",
    "LIST_TABLE_COLUMNS",
    "LIST_TABLE_TYPES",
    "DatabaseAccessError",
    "DatabaseUnavailable",
    "EngineOrUrl",
    "check_database",
    "read_table_sql",
    "read_tables_sql",
    "validate_identifier",
    "write_list_sql",
]
