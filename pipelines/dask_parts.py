"""What the Dask workers run on each customer partition of a run's input files.

:func:`add_keys` numbers each read block's rows by their place in the file and picks
their customer partition; :func:`validate_part` validates one table's partition with the
contract's code (rows numbered as in the file); :func:`assemble_part` makes the
partition's :class:`pipelines.catalog.Tables` (the cross-table repairs). :func:`report`
and :func:`summarise` are the small things the client learns of them
(:mod:`pipelines.dask_read`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd
import pyarrow as pa
from dask.sizeof import sizeof

from features.batches import customer_batch
from features.contracts import (
    LABEL_COLUMNS,
    InputError,
    ValidatedTable,
    _duplicated_rows,
    validate_table,
)
from features.contracts.converters import _to_identifier
from features.contracts.messages import RowNumbering, ZoneCounts, numbered_rows
from features.usage import kind_counts
from pipelines import catalog

ROW = "_source_row"  # the row's place in the file: read block << BLOCK_BITS | position
PART = "_customer_partition"
BLOCK_BITS = 40


def file_row(number: int, offsets: np.ndarray) -> int:
    """The 1-based row in the file of a message's row ``number`` (its place + 1).

    Args:
        offsets: the file's rows before each read block.
    """
    place = number - 1
    return int(offsets[place >> BLOCK_BITS]) + (place & ((1 << BLOCK_BITS) - 1)) + 1


@dataclass
class Part:
    """One table's partition, validated on its worker (kept there)."""

    table: ValidatedTable | None  # None: no rows, or an error
    error: InputError | None = None
    zones: dict[str, ZoneCounts] = field(default_factory=dict)
    rows: np.ndarray | None = None  # subscriptions: each kept row's place in the file


@dataclass(frozen=True)
class Report:
    """What the client learns of a validated partition: small things only."""

    error: InputError | None
    zones: dict[str, ZoneCounts]
    schema: pd.DataFrame | None  # the validated columns and dtypes, no rows
    present_optional: tuple[str, ...]


@dataclass(frozen=True)
class Summary:
    """What the client learns of an assembled partition."""

    error: InputError | None
    empty: catalog.Tables | None = None  # the tables' columns and dtypes, no rows
    warnings: tuple[str, ...] = ()
    rows_read: dict[str, int] = field(default_factory=dict)
    kinds: pd.Series | None = None
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None


def add_keys(
    part: pd.DataFrame, npartitions: int, table: str, partition_info: dict | None = None
) -> pd.DataFrame:
    """Each row's place in the file and its customer partition; labels as categoricals.

    Text labels are moved as categoricals (a small code a row), as the whole-file read
    reads them from Parquet; validation gives the same table from either.
    """
    block = partition_info["number"] if partition_info else 0
    names = [str(name).strip().lower() for name in part.columns]
    labels = {
        column: part[column].astype("category")
        for column, name in zip(part.columns, names, strict=True)
        if name in LABEL_COLUMNS[table] and isinstance(part[column].dtype, pd.StringDtype)
    }
    part = part.assign(**labels) if labels and len(set(names)) == len(names) else part
    if names.count("customer_id") == 1:
        # hash the id as validation will read it (" C1" and "C1" are one customer)
        ids = _to_identifier(part.iloc[:, names.index("customer_id")], "customer_id", "", True)
        key = customer_batch(ids, npartitions)
    else:
        key = np.zeros(len(part), dtype=np.int64)  # validation of partition 0 says why
    rows = (block << BLOCK_BITS) + np.arange(len(part), dtype=np.int64)
    return part.assign(**{ROW: rows, PART: key})


def validate_part(
    part: pd.DataFrame, table: str, source: str, not_after: pd.Timestamp | None, drop: bool | None
) -> Part:
    """Validate one customer partition as the file's rows, numbered as in the file."""
    part = part.sort_values(ROW, kind="stable")  # the file's order: sums and ties as locally
    rows = part[ROW].to_numpy()
    part = part.drop(columns=ROW).reset_index(drop=True)
    if part.empty:
        return Part(None)
    numbering = RowNumbering(rows)
    try:
        with numbered_rows(numbering):
            validated = validate_table(part, table, source, not_after, drop)
    except InputError as error:
        return Part(None, error, numbering.zones)
    finally:
        # Arrow keeps freed buffers for reuse; hand them back for the partitions to come
        pa.default_memory_pool().release_unused()
    kept = None
    if table == "subscriptions":  # checked again once assembled: keep the rows' places
        kept = rows
        if len(validated.frame) < len(rows):
            every = validate_table(part, table, source, drop_duplicates=False).frame
            kept = rows[~_duplicated_rows(every)]
    return Part(validated, None, numbering.zones, kept)


def report(part: Part) -> Report:
    """The partition's findings and empty form, without its rows."""
    if part.table is None:
        return Report(part.error, part.zones, None, ())
    return Report(None, part.zones, part.table.frame.iloc[:0], part.table.present_optional)


def assemble_part(
    parts: dict[str, Part],
    sources: dict[str, str],
    empties: dict[str, ValidatedTable],
    kinds: dict[str, str] | None,
) -> catalog.Tables | InputError:
    """One partition's tables after the cross-table repairs (an error is returned)."""
    read: dict[str, tuple[str, ValidatedTable] | None] = {
        kind: (sources[kind], part.table if part.table is not None else empties[kind])
        for kind, part in parts.items()
    }
    subscriptions = parts.get("subscriptions")
    try:
        if subscriptions is None or subscriptions.rows is None:
            return catalog.assemble_tables(read, kinds)
        with numbered_rows(RowNumbering(subscriptions.rows)):
            return catalog.assemble_tables(read, kinds)
    except InputError as error:
        return error


def summarise(tables: catalog.Tables | InputError) -> Summary:
    if isinstance(tables, InputError):
        return Summary(tables)
    tx = tables.transactions
    first, last = (tx["timestamp"].min(), tx["timestamp"].max()) if len(tx) else (None, None)
    return Summary(
        None, _empty(tables), tables.warnings, tables.rows_read,
        kind_counts(tables.interactions), first, last,
    )  # fmt: skip


def _empty(tables: catalog.Tables) -> catalog.Tables:
    """The tables with no rows, no warnings and no counts (their columns and dtypes)."""
    frames = ("transactions", "interactions", "customers", "subscriptions")
    empty = {name: getattr(tables, name) for name in frames if getattr(tables, name) is not None}
    return replace(tables, warnings=(), rows_read={}, **{k: v.iloc[:0] for k, v in empty.items()})


@sizeof.register(catalog.Tables)
@sizeof.register(ValidatedTable)
@sizeof.register(Part)
@sizeof.register(Report)
@sizeof.register(Summary)
def _sizeof_fields(value: object) -> int:
    # the frames inside: what the workers' memory manager spills by and what a transfer
    # to the client weighs (an object's own size is some 50 bytes, whatever it holds)
    return 64 + sum(sizeof(getattr(value, f.name)) for f in fields(value))  # type: ignore[arg-type]
