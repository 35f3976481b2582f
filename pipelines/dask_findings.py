"""The Dask partitions' findings told as the whole files tell them.

Each partition's validation reports its error (rows numbered by their place in the
file: read block and position, :mod:`pipelines.dask_parts`) and its time zone counts;
:func:`told` makes the whole file's error of them
(:func:`features.contracts.partitions.whole_table_error`) and numbers its rows as the
file does, from the read blocks' lengths (the file is read again for those, on the error
path only). A file the workers cannot read is reported as the whole read reports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
from distributed import Client, Future

from features.contracts import InputError, ValidatedTable
from features.contracts.columnar import _without_unused_categories
from features.contracts.messages import ZoneCounts, bad_values_error
from features.contracts.partitions import whole_table_error
from pipelines import dask_parts, engines


def checked(
    client: Client,
    table: str,
    parts: list[Future],
    source: str,
    told: Callable[[list[InputError], list[dict[str, ZoneCounts]]], InputError | None],
) -> ValidatedTable:
    """The table's error as the whole read raises it, if any; else its empty form.

    Args:
        told: the whole input's error of the partitions' errors and zone counts, or
            None (:func:`told` for a file; a database is read whole to say it).

    Returns:
        The validated columns and dtypes with no rows (what a partition without rows
        of this table assembles with).
    """
    found = reports(client, parts, source)
    errors = [r.error for r in found if r.error is not None]
    error = told(errors, [r.zones for r in found])
    if error is not None:
        raise error
    schema = next((r for r in found if r.schema is not None), None)
    if schema is None:
        raise InputError(source, f"the {table} table is empty (no data rows)")
    return ValidatedTable(_without_unused_categories(schema.schema), (), schema.present_optional)


def reports(client: Client, futures: list[Future], source: str) -> list[dask_parts.Report]:
    """Each partition's findings; a file the workers cannot read as the whole read says."""
    try:
        return client.gather(client.map(dask_parts.report, futures, pure=False))
    except Exception as exc:
        error = read_error(exc, source)
        if error is None:
            raise
        raise error from exc


def read_error(exc: BaseException, source: str) -> InputError | None:
    """What the whole read says of a file ``exc`` says cannot be read; None: not that.

    Dask wraps the reader's error (in a shuffle, or with a note of its own): the
    innermost reading error of the chain is the reader's.
    """
    found: InputError | None = None
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, UnicodeDecodeError):
            # sent back from a worker, only its args keep the position
            start = seen.args[2] if len(seen.args) == 5 else seen.start
            found = InputError(source, f"not UTF-8 text (byte {start}); re-save as UTF-8")
        elif isinstance(seen, pa.ArrowException | pd.errors.ParserError | OSError):
            found = InputError(source, f"cannot be read: {seen}")
        seen = seen.__cause__ or seen.__context__
    return found


def told(
    table: str,
    source: str,
    errors: list[InputError],
    zones: list[dict[str, ZoneCounts]],
    frame: dd.DataFrame,
    client: Client,
) -> InputError | None:
    """The whole file's error from its partitions', with rows numbered as in the file."""
    error = whole_table_error(table, source, errors, zones)
    if error is None or not error.rows:
        return error
    # the read blocks' lengths (the file is read again: on the error path only)
    with dask.config.set(engines.DASK_CONFIG):
        lengths = client.compute(frame.map_partitions(len)).result()
    offsets = np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))])
    return whole_table_error(
        table,
        source,
        [_renumbered(e, offsets) for e in errors],
        [{column: _zones_in_file(c, offsets) for column, c in part.items()} for part in zones],
    )


def _renumbered(error: InputError, offsets: np.ndarray) -> InputError:
    if error.finding is None:
        return error
    rows = tuple(dask_parts.file_row(row, offsets) for row in error.finding.rows)
    return bad_values_error(error.source, replace(error.finding, rows=rows))


def _zones_in_file(counts: ZoneCounts, offsets: np.ndarray) -> ZoneCounts:
    def shown(pairs: tuple[tuple[int, str], ...]) -> tuple[tuple[int, str], ...]:
        return tuple((dask_parts.file_row(row, offsets), text) for row, text in pairs)

    return replace(
        counts, first_with=shown(counts.first_with), first_without=shown(counts.first_without)
    )
