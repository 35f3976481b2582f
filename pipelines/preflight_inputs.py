"""The CLI's first look at its input files, before Prefect, MLflow or XGBoost load.

A missing file, an unreadable one or one without a required column is answered in about
a second, instead of after the 15-20 s the Prefect API server takes to start. Only the
CSV header (the first 64 KiB) or the Parquet footer is read.

The check is a subset of the flow's validation (:func:`features.contracts.validate_table`
via :func:`pipelines.catalog.read_table`), never stricter: whatever it cannot judge from
the header (a Parquet dataset folder, a header longer than 64 KiB, clashing column
names, the values themselves) it leaves to the flow, which validates everything again.
Its messages are the flow's (a missing column is reported by ``validate_table``
itself), so a user sees the same line either way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contracts import REQUIRED, InputError, validate_table
from pipelines.catalog import READABLE

# enough for any real header line and the first data rows
_HEAD_BYTES = 1 << 16


def check_input_files(tables: Mapping[str, Path | None]) -> None:
    """Check each given input file against its table's contract, as far as its header goes.

    Args:
        tables: table name (a key of ``features.contracts.REQUIRED``) -> file, or None
            for a table not given.

    Raises:
        InputError: a file that is missing, of an unknown type, empty, not UTF-8 text,
            not readable Parquet, or without a required column.
    """
    for table, path in tables.items():
        if path is not None:
            check_input_file(Path(path), table)


def check_input_file(path: Path, table: str) -> None:
    """Check one input file; see :func:`check_input_files`."""
    if not path.exists():
        raise InputError(str(path), "file not found")
    source = path.name  # the label the flow's messages use
    suffix = path.suffix.lower()
    if suffix not in READABLE:
        raise InputError(source, f"unsupported file type {path.suffix!r}; use .csv or .parquet")
    if not path.is_file():
        return  # a Parquet dataset folder: the flow reads it
    if path.stat().st_size == 0:
        raise InputError(source, "file is empty (0 bytes)")
    header = _csv_header(path, source) if suffix == ".csv" else _parquet_header(path, source)
    if header is None:
        return
    names, has_rows = header
    if not has_rows:
        raise InputError(source, f"the {table} table is empty (no data rows)")
    canonical = [name.strip().lower() for name in names]
    if len(set(canonical)) < len(canonical):
        return  # clashing names: the flow says which (CSV readers rename exact repeats)
    if not set(REQUIRED[table]) <= set(canonical):
        # the contract's own message: validation stops at a missing column before it
        # reads any value, so one row of nothing is enough to have it said
        validate_table(pd.DataFrame([[None] * len(names)], columns=names), table, source)


def _csv_header(path: Path, source: str) -> tuple[list[str], bool] | None:
    """The header's names and whether a data row follows; None if 64 KiB do not tell."""
    with path.open("rb") as file:
        head = file.read(_HEAD_BYTES)
        whole = not file.read(1)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if whole or exc.reason != "unexpected end of data":
            raise InputError(
                source, f"not UTF-8 text (byte {exc.start}); re-save as UTF-8"
            ) from exc
        text = head[: exc.start].decode("utf-8")  # a character cut at the 64 KiB mark
    text = text.removeprefix("\ufeff")
    if not whole:
        text = text[: text.rfind("\n") + 1]  # the last line is cut at the 64 KiB mark
    try:
        # the flow's readers skip blank lines too
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error:
        return None
    if not rows or (not whole and len(rows) < 2):
        return None
    return rows[0], len(rows) > 1


def _parquet_header(path: Path, source: str) -> tuple[list[str], bool] | None:
    """The columns pandas will read (a stored index is not one) and whether any row is."""
    try:
        metadata = pq.read_metadata(path)
        schema = metadata.schema.to_arrow_schema()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(source, f"cannot be read: {exc}") from exc
    index = {
        c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)
    }
    return [name for name in schema.names if name not in index], metadata.num_rows > 0


def check_date(value: str | None, option: str) -> None:
    """Refuse a date the flow could not read (it parses dates with ``pd.Timestamp``).

    Args:
        value: the flag's value; None or empty means the flag's default.
        option: the flag, for the message (``--cutoff``).

    Raises:
        ValueError: ``value`` is not a date or datetime.
    """
    if not value:
        return
    try:
        pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{option} {value!r} is not a date; expected YYYY-MM-DD") from exc
