"""Input files read one customer batch at a time, through a partitioned cache.

Each input file is converted once, streamed a block at a time, into one Arrow IPC file
(LZ4-compressed: written and read several times faster than Parquet, at about twice its
size) per customer batch (:func:`features.batches.customer_batch`, the Dask engine's hash)
under ``<data_dir>/interim/batches``, keyed by the file's path, size, modification time
and the batch count: a CSV is parsed once, a Parquet file keeps only the contract's
columns. A batch is then validated and repaired like a whole file
(:func:`features.contracts.validate_table`, :func:`pipelines.catalog.assemble_tables`),
and its counted repairs are summed over the batches (:func:`merge_warnings`).

A bad value in any batch is reported with today's message (file, column, count, first
rows as numbered in the file) by validating that file whole: the message is then the
whole-table path's by construction, and memory only grows on the way to an error.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pandas._libs.parsers import STR_NA_VALUES

from features.batches import batch_order, customer_batch
from features.contracts import InputError, validate_table
from features.contracts.converters import _to_identifier
from pipelines import catalog
from pipelines.processes import stop, submit

CACHE = Path("interim") / "batches"  # under the settings' data_dir
_ROW = "_source_row"  # 0-based row of the source file, kept beside the values
_BLOCK_ROWS = 1 << 20
_FORMAT = "v4"  # bump when the cache layout changes
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")


def cache_folder(path: Path, batches: int, root: Path) -> Path:
    """Where ``path``'s batches live: a new folder whenever the file changes."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{batches}|{_FORMAT}"
    return root / f"{path.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _csv_blocks(path: Path) -> Iterable[pa.RecordBatch]:
    """The CSV as text columns, a block at a time; missing as pandas' reader reads it."""
    with path.open(encoding="utf-8", newline="") as handle:
        names = next(csv.reader(handle))
    options = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        null_values=sorted(STR_NA_VALUES),
        strings_can_be_null=True,
    )
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=64 << 20),
        convert_options=options,
    )
    yield from reader


def _blocks(
    path: Path, table: str, row_groups: tuple[int, ...] | None = None
) -> Iterable[pa.RecordBatch] | None:
    if path.suffix.lower() == ".csv":
        return _csv_blocks(path)
    columns, _ = catalog._parquet_selection(path, table)
    if columns is None:
        return None  # a contract problem the whole-file read reports
    groups = None if row_groups is None else list(row_groups)
    return pq.ParquetFile(path).iter_batches(
        batch_size=_BLOCK_ROWS, row_groups=groups, columns=columns
    )


@dataclass(frozen=True)
class Piece:
    """A part of a file converted by one process: a run of Parquet row groups (None: the
    whole file), numbered, and the file's rows before it."""

    number: int
    row_groups: tuple[int, ...] | None
    offset: int


def pieces(path: Path, most: int) -> list[Piece]:
    """The file in at most ``most`` pieces of whole row groups; a CSV (whose rows
    cannot be found without reading it) or an unreadable file in one."""
    whole = [Piece(0, None, 0)]
    if most <= 1 or path.suffix.lower() == ".csv":
        return whole
    try:
        meta = pq.ParquetFile(path).metadata
    except (pa.ArrowException, OSError):
        return whole  # the conversion fails the same way, and the whole read says why
    if meta.num_row_groups < 2:
        return whole
    rows = np.cumsum([0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
    runs = np.array_split(np.arange(meta.num_row_groups), min(most, meta.num_row_groups))
    return [Piece(i, tuple(map(int, run)), int(rows[run[0]])) for i, run in enumerate(runs)]


def convert_piece(path: Path, table: str, batches: int, staging: Path, piece: Piece) -> bool:
    """Write one piece of ``path`` into ``staging``; False if it cannot be streamed."""
    try:
        blocks = _blocks(path, table, piece.row_groups) or ()
        return write_batches(blocks, batches, staging, piece.number, piece.offset)
    except (pa.ArrowException, OSError, ValueError, UnicodeDecodeError, StopIteration):
        return False


def build_cache(
    path: Path,
    table: str,
    batches: int,
    root: Path,
    pool: Executor | None = None,
    processes: int = 1,
) -> Path | None:
    """Convert ``path`` once into ``batches`` Arrow files (a Parquet file's row groups in
    ``processes`` pieces, side by side in ``pool``); None if it cannot be streamed.

    None (an unreadable file, no ``customer_id`` column, clashing names) sends the caller
    to the whole-file read, whose messages say what is wrong.
    """
    folder = cache_folder(path, batches, root)
    if (folder / "done").is_file():
        return folder
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    complete = False
    try:
        staging.mkdir(parents=True)
        convert = partial(convert_piece, path, table, batches, staging)
        if pool is None:
            done = [convert(piece) for piece in pieces(path, 1)]
        else:
            futures = [submit(pool, convert, p) for p in pieces(path, processes)]
            try:
                done = [f.result() for f in futures]
            except BaseException:
                stop(futures)
                raise
        complete = all(done)
    finally:
        if not complete:
            shutil.rmtree(staging, ignore_errors=True)
    if not complete:
        return None
    (staging / "done").touch()
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def write_batches(
    blocks: Iterable[pa.RecordBatch], batches: int, folder: Path, piece: int = 0, offset: int = 0
) -> bool:
    """Split ``blocks`` by customer batch into ``folder/part-{b}-{piece}.arrow``.

    Each row keeps its position in the source as ``_source_row`` (``offset``: the rows
    before this piece). Used for files and for database pages alike.

    Returns:
        False when the blocks cannot be split (no single ``customer_id`` column,
        clashing names) or there are none; the caller then reads its source whole,
        whose messages say what is wrong, and removes ``folder``.
    """
    writers: list[pa.ipc.RecordBatchFileWriter] = []
    try:
        for block in blocks:
            names = [name.strip().lower() for name in block.schema.names]
            if names.count("customer_id") != 1 or len(set(names)) < len(names):
                return False
            ids = block.column(names.index("customer_id")).to_pandas()
            number = customer_batch(_as_validated_ids(ids), batches)
            keyed = block.append_column(_ROW, pa.array(np.arange(offset, offset + len(block))))
            offset += len(block)
            if not writers:
                writers = [
                    pa.ipc.new_file(part_path(folder, b, piece), keyed.schema, options=_IPC)
                    for b in range(batches)
                ]
            order, bounds = batch_order(number, batches)
            for b, writer in enumerate(writers):
                writer.write_batch(keyed.take(order[bounds[b] : bounds[b + 1]]))
        return bool(writers)  # no block at all: an empty file
    finally:
        for writer in writers:
            writer.close()


def part_path(folder: Path, batch: int, piece: int) -> Path:
    return folder / f"part-{batch}-{piece}.arrow"


def _as_validated_ids(ids: pd.Series) -> pd.Series:
    # hash the id as validation will read it (" C1" and "C1", 12.0 and 12 are one
    # customer), or one customer's rows in two tables could land in different batches;
    # integers already hash as their text
    if pd.api.types.is_integer_dtype(ids.dtype):
        return ids
    return _to_identifier(ids, "customer_id", "", nullable=True)


def read_batch(folder: Path, batch: int) -> pd.DataFrame:
    """One batch's rows as read from the source (source row order, all its columns)."""
    parts, piece = [], 0
    while part_path(folder, batch, piece).is_file():
        with pa.OSFile(str(part_path(folder, batch, piece))) as source:
            parts.append(pa.ipc.open_file(source).read_all())
        piece += 1
    # in Arrow, then one conversion: pandas' concat and sort each copied the whole batch
    table = pa.concat_tables(parts)
    rows = table.column(_ROW).to_numpy()
    if len(rows) > 1 and not (rows[1:] > rows[:-1]).all():  # pieces written out of order
        table = table.take(np.argsort(rows, kind="stable"))
    return table.drop_columns([_ROW]).to_pandas()


def batch_tables(
    folders: dict[str, tuple[Path, Path]],
    batch: int,
    kinds: dict[str, str] | None = None,
    drop_duplicate_interactions: bool = False,
) -> catalog.Tables:
    """One batch's validated, repaired tables.

    Args:
        folders: table kind -> (source file, its cache folder).
        batch: which batch.
        kinds, drop_duplicate_interactions: as for :func:`pipelines.catalog.read_tables`.

    Raises:
        InputError: the batch breaks the contract (row numbers count within the batch).
    """
    read: dict[str, tuple[str, object] | None] = {}
    for kind in catalog.Tables.__dataclass_fields__:
        if kind not in folders:
            continue
        source, folder = folders[kind]
        drop = drop_duplicate_interactions if kind == "interactions" else None
        validated = validate_table(
            read_batch(folder, batch),
            kind,
            source=source.name,
            not_after=catalog.latest_event(kind),
            drop_duplicates=drop,
            allow_empty=True,  # build_cache kept no empty file: this batch has no rows
        )
        read[kind] = (source.name, validated)
    read.setdefault("transactions", None)
    return catalog.assemble_tables(read, kinds)  # type: ignore[arg-type]


_NUMBER = re.compile(r"\d+")
# the two counts whose noun follows the number (validation's duplicate findings)
_PLURAL = re.compile(r"(?P<n>\d+|#) (?P<noun>exact duplicate row|row)s?(?= equal|$)")


def merge_warnings(per_batch: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    """Counted repairs of every batch as one: the same sentences, their counts summed.

    Sentences that differ only in their numbers are one finding; a finding seen in only
    some batches keeps its place among the others (each batch lists them in the order
    the whole-table path does).
    """
    order: list[tuple[str, str]] = []  # (source, sentence with its counts as #)
    totals: dict[tuple[str, str], list[int]] = {}
    for warnings in per_batch:
        previous = -1
        for warning in warnings:
            source, _, finding = warning.partition(": ")  # a file name may hold digits
            key = (source, _NUMBER.sub("#", _PLURAL.sub(r"\g<n> \g<noun>s", finding)))
            counts = [int(n) for n in _NUMBER.findall(finding)]
            if key not in totals:
                order.insert(previous + 1, key)
                totals[key] = [0] * len(counts)
            totals[key] = [a + b for a, b in zip(totals[key], counts, strict=True)]
            previous = order.index(key)
    merged = []
    for source, finding in order:
        pieces = finding.split("#")
        counts = [str(n) for n in totals[source, finding]] + [""]
        text = "".join(piece + count for piece, count in zip(pieces, counts, strict=True))
        singular = _PLURAL.sub(
            lambda m: f"{m['n']} {m['noun']}{'' if m['n'] == '1' else 's'}", text
        )
        merged.append(f"{source}: {singular}")
    return tuple(merged)


def first_error(paths: dict[str, Path | None], kinds: dict[str, str] | None, drop: bool) -> None:
    """Validate the files whole, raising today's message for the first bad input."""
    catalog.read_tables(
        paths["transactions"],  # type: ignore[arg-type]
        paths.get("interactions"),
        paths.get("customers"),
        paths.get("subscriptions"),
        kinds,
        drop,
    )


def raise_whole_table_error(
    error: InputError, paths: dict[str, Path | None], kinds: dict[str, str] | None, drop: bool
) -> None:
    """Re-raise a batch's ``error`` as the whole files report it (true row numbers)."""
    first_error(paths, kinds, drop)
    raise error  # the whole files passed: a finding only the batch shows
