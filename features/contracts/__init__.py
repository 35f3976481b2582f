"""Input contracts: validate and normalise the raw tables.

Every table the pipeline reads passes through :func:`validate_table` first, so that
feature code can rely on fixed column names, dtypes and value sets, and so that a bad
file fails early with a message a person can act on (file, column, row numbers, values).

Where each part lives:

* :mod:`~features.contracts.columns`: the column table, every input column once, and
  the views read from it (``REQUIRED``, ``OPTIONAL``, ``LABEL_COLUMNS``, ...);
* :mod:`~features.contracts.converters`: one converter per column kind;
* :mod:`~features.contracts.messages`: :class:`InputError` and its messages;
* :mod:`~features.contracts.columnar`: memory-lean column helpers (the only pyarrow user
  under ``features/``);
* :mod:`~features.contracts.validation`: :func:`validate_table`;
* :mod:`~features.contracts.repairs`: cross-table repairs (:func:`reconcile`).
"""

from features.contracts.columnar import _duplicated_rows as _duplicated_rows
from features.contracts.columns import (
    COLUMNS,
    CONTRACT_TABLES,
    DROP_DUPLICATES,
    INPUT_TABLES,
    LABEL_COLUMNS,
    NULLABLE_REQUIRED,
    OPTIONAL,
    PAYMENT_STATUSES,
    REQUIRED,
    TABLE_SPECS,
    TABLES,
    Bounds,
    Column,
    Table,
)
from features.contracts.messages import InputError
from features.contracts.messages import _bad_values_error as _bad_values_error
from features.contracts.repairs import reconcile
from features.contracts.validation import ValidatedTable, validate_table

__all__ = [
    "COLUMNS",
    "DROP_DUPLICATES",
    "CONTRACT_TABLES",
    "INPUT_TABLES",
    "LABEL_COLUMNS",
    "NULLABLE_REQUIRED",
    "OPTIONAL",
    "PAYMENT_STATUSES",
    "REQUIRED",
    "TABLES",
    "TABLE_SPECS",
    "Bounds",
    "Column",
    "InputError",
    "Table",
    "ValidatedTable",
    "reconcile",
    "validate_table",
]
