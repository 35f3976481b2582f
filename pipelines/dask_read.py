"""A run's input files or PostgreSQL tables read, validated and kept by the Dask workers,
as customer partitions.

The client only plans the reads: it looks at each file's header or Parquet footer, or
at a table's row count and the key ranges of its ids (:mod:`pipelines.database.ranges`),
never at its rows. The workers read the files in blocks (``dask.dataframe.read_csv`` /
``read_parquet``), or each table in ranges of ``customer_id`` in one exported snapshot
(``dask.dataframe.from_map``), the contract's columns only; then the same path for both
(:func:`_stage_tables`): they number every row by its read block and place there, move
each row to its customer's partition (:func:`features.batches.customer_batch` of the id
as validation reads it, the local batches' hash; a table at a time, a large one in
rounds of partitions, so that only one round's raw rows are on the workers at once) and
validate and repair each partition with the contract's own code
(:func:`features.contracts.validate_table`, :func:`pipelines.catalog.assemble_tables`,
run by :mod:`pipelines.dask_parts`). The validated partitions stay on the workers
(futures) and :meth:`DaskBatches.map` runs the night's pass functions there; only their
per-customer results and the partitions' small findings reach the client.

Findings are told as the whole input tells them: counted repairs summed
(:func:`pipelines.batch_read.merge_warnings`), a bad value reported with the whole
input's message (:func:`features.contracts.partitions.whole_table_error`): the same
count and first rows. A file's rows are numbered as in the file, which the client works
out from each read block's length (read again on the workers, on the error path only;
:mod:`pipelines.dask_findings`); a database's as in the whole read, by reading it whole
in the client (on the error path only, as the local batches do).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from distributed import Client, Future, wait

from features.batches import split_keywords
from features.contracts import (
    INPUT_TABLES,
    OPTIONAL,
    REQUIRED,
    InputError,
)
from features.contracts.messages import ZoneCounts
from features.contracts.partitions import whole_table_error
from features.usage import add_kind_counts
from models.progress import announce, track
from pipelines import batch_read, catalog, dask_findings, dask_parts, engines, staged
from pipelines.settings import CommonSettings, DatabaseInputs, InputPaths

if TYPE_CHECKING:
    from pipelines.database import ranges as ranges_plan

T = TypeVar("T")

# read blocks: at most this much CSV text (~2-3x that in memory as pandas text), or of
# Parquet's encoded values (dictionaries and run lengths: ~6x that in memory), so a
# block is some 100-150 MB in memory; smaller files are read in a block per worker thread
_BLOCK_BYTES = {".csv": 64 << 20, ".parquet": 16 << 20}
_MIN_BLOCK_BYTES = 1 << 16
_ROWS_PER_PARTITION = 1_000_000  # of all tables together: a partition's working set
_CSV_BYTES_PER_ROW = 50  # to size the partitions of a CSV without reading it
_ROUND_ROWS = 2_000_000  # a table's rows one worker thread moves at once (~0.15 GB)
_ORDER = ("transactions", "interactions", "customers", "subscriptions")  # read_tables' order


@dataclass(frozen=True)
class DaskBatches:
    """Validated customer partitions on Dask workers (:class:`models.night_facts.CustomerBatches`).

    Attributes:
        client: the cluster holding them.
        parts: one future per partition with transactions, each a
            :class:`pipelines.catalog.Tables` on a worker (partitions without a
            transaction hold no customer a night scores, and are not kept).
        numbers: each part's customer partition (:func:`features.batches.customer_batch`).
        npartitions: how many customer partitions the tables were split into.
        schema, kinds, history_start, last_timestamp: as for
            :class:`pipelines.staged.StagedBatches`.
    """

    client: Client
    parts: tuple[Future, ...]
    numbers: tuple[int, ...]
    npartitions: int
    schema: catalog.Tables
    kinds: pd.Series
    history_start: pd.Timestamp | None
    last_timestamp: pd.Timestamp | None

    @property
    def batches(self) -> int:
        return len(self.parts)

    def map(self, fn: Callable[[catalog.Tables], T], stage: str = "customer partitions") -> list[T]:
        """``fn`` of each partition's tables, run on the worker holding it, in partition order.

        Per-customer frames ``fn`` carries as keywords (a :func:`functools.partial` of the
        night's features, status, list history: indexed by ``customer_id`` or with such a
        column) reach each partition's task as that partition's customers' rows, which
        are all a pass reads of them (``models.night_facts``); other frames are sent to
        each worker once.
        """
        func, split, shared = _arguments(self.client, fn, self.npartitions)
        futures = []
        for number, part in zip(self.numbers, self.parts, strict=True):
            mine = {name: pieces[number] for name, pieces in split.items()}
            futures.append(self.client.submit(func, part, pure=False, **mine, **shared))
        done = {f.key: f for f in track(_completed(futures), stage, len(futures), "partitions")}
        return self.client.gather([done[f.key] for f in futures])


def _completed(futures: list[Future]) -> Iterator[Future]:
    from distributed import as_completed

    yield from as_completed(futures)


def _arguments(
    client: Client, fn: Callable[..., T], npartitions: int
) -> tuple[Callable[..., T], dict[str, list[Future]], dict[str, Future]]:
    """``fn`` without its pandas keywords; those split by customer partition (scattered
    a piece per partition) and the others scattered to every worker."""
    func, split, shared = split_keywords(fn, npartitions)
    pieces = {name: client.scatter(parts, hash=False) for name, parts in split.items()}
    whole = {name: client.scatter(f, broadcast=True, hash=False) for name, f in shared.items()}
    return func, pieces, whole


def stage_inputs(
    inputs: InputPaths | DatabaseInputs, settings: CommonSettings, client: Client
) -> AbstractContextManager[DaskBatches | None]:
    """The run's inputs on the workers: files (:func:`stage`) or PostgreSQL tables
    (:func:`stage_database`; None: read them whole)."""
    if isinstance(inputs, DatabaseInputs):
        return stage_database(inputs, settings, client)
    return stage(inputs, settings, client)


@contextmanager
def stage(
    inputs: InputPaths,
    settings: CommonSettings,
    client: Client,
    npartitions: int | None = None,
) -> Iterator[DaskBatches]:
    """The input files read and validated on the workers, as customer partitions.

    The partitions are dropped from the cluster when the context ends, also on error.

    Args:
        inputs: the files; every worker must reach them at these paths.
        settings: ``kinds``, ``drop_duplicate_interactions`` and ``feature_batches``
            (the partition count, when set).
        client: the cluster.
        npartitions: customer partitions (default: ``feature_batches``, else one per
            million rows of all tables and at least two per worker thread).

    Raises:
        InputError: a file breaks the contract, with the whole file's message (file,
            column, count, first offending rows as numbered in the file).
    """
    paths = staged.streamable(inputs)
    for path in paths.values():
        _check_file(path)
    rows = {kind: _rows_estimate(path) for kind, path in paths.items()}
    n = npartitions or settings.feature_batches or _partitions(rows, client)
    sources = {kind: path.name for kind, path in paths.items()}
    announce(f"reading {', '.join(sources.values())} on the Dask workers, {n} customer partitions")

    def told(
        kind: str, errors: list[InputError], zones: list[dict[str, ZoneCounts]]
    ) -> InputError | None:
        raw = read_file(paths[kind], kind, client)
        return dask_findings.told(kind, sources[kind], errors, zones, raw, client)

    reads = _Reads({k: partial(read_file, p, k, client) for k, p in paths.items()}, sources, rows)
    batches = _stage_tables(client, reads, told, n, settings)
    try:
        yield batches
    finally:
        client.cancel(list(batches.parts))


@contextmanager
def stage_database(
    inputs: DatabaseInputs,
    settings: CommonSettings,
    client: Client,
    npartitions: int | None = None,
    ranges: int | None = None,
) -> Iterator[DaskBatches | None]:
    """The PostgreSQL tables read by key ranges and validated on the workers, as
    customer partitions.

    The client opens one read-only, repeatable-read transaction, exports its snapshot
    and splits ``customer_id`` into ranges (:func:`pipelines.database.ranges.exported`);
    while it stays open, the workers read each range of each table in that snapshot
    (:func:`pipelines.database.ranges.read_range`), and the ranges then go the files'
    way: keyed, moved into customer partitions, validated there. The client holds the
    rows' counts and the ranges' first ids, never a row. Each worker reads the URL from
    its own environment, in the variable ``inputs.url_env`` names (the URL itself is
    never sent, logged or part of a task's key); the transaction ends once the tables
    are validated. While the server is away the staging starts again, after the delays
    of the I/O tasks (:func:`pipelines.staged.read_again`).

    Counted repairs are summed as for files. A bad value anywhere is reported with the
    whole read's message (table, column, count, first rows numbered as in the read) by
    reading the tables whole, in the client and a snapshot of their own, as the local
    batches do (:func:`pipelines.staged.whole_database_error`): memory only grows on the
    way to an error.

    Args:
        inputs: the tables or queries, and where the URL is.
        settings, client, npartitions: as for :func:`stage`.
        ranges: at least this many key ranges (default: one per worker thread; more
            for tables of over :data:`pipelines.database.ranges.RANGE_ROWS` rows).

    Yields:
        The partitions; None when a table cannot be split by ranges (no single
        ``customer_id`` column, clashing names): read it whole, whose messages say why.

    Raises:
        InputError: a table or query breaks the contract, with the whole read's message.
        DatabaseUnavailable, DatabaseAccessError: as the whole read raises them.
        LookupError: no URL in ``inputs.url_env`` (here, or on a worker).
    """
    from pipelines.tasks import database_url

    url = database_url(inputs.url_env)
    batches = staged.read_again(
        lambda: _stage_ranges(url, inputs, settings, client, npartitions, ranges)
    )
    try:
        yield batches
    finally:
        if batches is not None:
            client.cancel(list(batches.parts))


def _stage_ranges(
    url: str,
    inputs: DatabaseInputs,
    settings: CommonSettings,
    client: Client,
    npartitions: int | None,
    ranges: int | None,
) -> DaskBatches | None:
    """One try of :func:`stage_database`: the snapshot held while the workers read."""
    from pipelines.database.ranges import exported
    from pipelines.database.read import table_reads

    names = {kind: getattr(inputs, kind) for kind in INPUT_TABLES}
    reads = table_reads(names, inputs.queries)
    with exported(url, inputs.url_env, reads, ranges or engines._threads(client)) as plan:
        if plan is None:
            return None
        n = npartitions or settings.feature_batches or _partitions(plan.rows, client)
        sources = {kind: read.source for kind, read in plan.reads.items()}
        count = plan.reads["transactions"].ranges  # every table's: the same bounds
        announce(
            f"reading {', '.join(sources.values())} on the Dask workers in {count} key "
            f"ranges, {n} customer partitions"
        )

        def told(
            kind: str, errors: list[InputError], zones: list[dict[str, ZoneCounts]]
        ) -> InputError | None:
            error = whole_table_error(kind, sources[kind], errors, zones)
            if error is not None:
                staged.whole_database_error(url, inputs, settings, error)
            return None

        frames = {kind: partial(_read_ranges, plan, kind) for kind in plan.reads}
        return _stage_tables(client, _Reads(frames, sources, plan.rows), told, n, settings)


def _read_ranges(plan: ranges_plan.Plan, kind: str) -> dd.DataFrame:
    """The table as the workers read it: one partition per key range."""
    from pipelines.database.ranges import read_range

    read = plan.reads[kind]
    return dd.from_map(
        read_range,
        [read] * read.ranges,
        range(read.ranges),
        meta=plan.metas[kind],
        label=f"read-{kind}",
        enforce_metadata=True,
    )


@dataclass(frozen=True)
class _Reads:
    """A run's tables as the workers read them.

    Attributes:
        frames: kind -> the table's read (a fresh graph each call; its partitions are
            the read blocks rows are numbered by).
        sources: kind -> the label messages name.
        rows: kind -> its rows, or an estimate (0: unknown).
    """

    frames: dict[str, Callable[[], dd.DataFrame]]
    sources: dict[str, str]
    rows: dict[str, int]


# the whole input's error of one table's partitions' (errors, zone counts); None: none
Told = Callable[[str, list[InputError], list[dict[str, ZoneCounts]]], InputError | None]


def _stage_tables(
    client: Client, reads: _Reads, told: Told, n: int, settings: CommonSettings
) -> DaskBatches:
    """Each table read, keyed, moved into ``n`` customer partitions and validated on
    the workers; the partitions' tables assembled there (cancelled on error)."""
    drop = settings.drop_duplicate_interactions
    parts: dict[str, list[Future]] = {}
    tables: list[Future] = []
    try:
        empties = {}
        # a table at a time, in the whole read's order: a bad one stops the read there,
        # and only one table's raw rows are in the workers' memory at once
        for kind in (kind for kind in _ORDER if kind in reads.frames):
            source = reads.sources[kind]
            with dask.config.set(engines.DASK_CONFIG):
                frame = reads.frames[kind]()
                parts[kind] = _validated_parts(
                    client, frame, kind, source, reads.rows[kind], n, drop
                )
            empties[kind] = dask_findings.checked(
                client, kind, parts[kind], source, partial(told, kind)
            )
        tables = [
            client.submit(
                dask_parts.assemble_part,
                {kind: futures[i] for kind, futures in parts.items()},
                reads.sources,
                empties,
                settings.kinds or None,
                pure=False,
            )
            for i in range(n)
        ]
        parts.clear()  # each partition's validated parts go once its tables are assembled
        summaries = client.gather(client.map(dask_parts.summarise, tables))
        errors = [s.error for s in summaries if s.error is not None]
        if errors:  # subscriptions of customers no other table knows
            kind = next(k for k, source in reads.sources.items() if source == errors[0].source)
            raise told(kind, errors, []) or errors[0]
        return _batches(client, tables, summaries)
    except BaseException:
        client.cancel(tables)
        raise
    finally:
        parts.clear()


def _check_file(path: Path) -> None:
    """What the whole read refuses before reading a row (pipelines.catalog.read_raw)."""
    if not path.exists():
        raise InputError(str(path), "file not found")
    if path.suffix.lower() not in catalog.READABLE:
        raise InputError(path.name, f"unsupported file type {path.suffix!r}; use .csv or .parquet")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(path.name, "file is empty (0 bytes)")


def _partitions(rows: dict[str, int], client: Client) -> int:
    return max(2 * engines._threads(client), math.ceil(sum(rows.values()) / _ROWS_PER_PARTITION))


def _rows_estimate(path: Path) -> int:
    """Rows of a file from its footer (Parquet) or its size (CSV); 0 if unknown."""
    if not path.is_file():
        return 0
    if path.suffix.lower() == ".csv":
        return path.stat().st_size // _CSV_BYTES_PER_ROW
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError):
        return 0


def _blocksize(path: Path, client: Client | None) -> int:
    """Read blocks of a bounded size, and at least one per worker thread to read with."""
    most = _BLOCK_BYTES[".csv" if path.suffix.lower() == ".csv" else ".parquet"]
    if not path.is_file():
        return most
    share = math.ceil(path.stat().st_size / engines._threads(client))
    return max(_MIN_BLOCK_BYTES, min(most, share))


def read_file(path: Path, table: str, client: Client | None = None) -> dd.DataFrame:
    """The file as the workers read it: blocks of text (CSV) or of values (Parquet).

    Only the contract's columns, unless the file has a contract problem (a missing
    required column, clashing names): then every column, so that validation says so
    exactly as for the whole file. The client reads the CSV header and a sample of the
    first block (dask infers the columns from it), or the Parquet footer.

    Raises:
        InputError: the file cannot be read (as the whole read says it).
    """
    location = str(path.resolve())  # what a worker opens: the same path on shared storage
    blocksize = _blocksize(path, client)
    try:
        with dask.config.set(engines.DASK_CONFIG):
            if path.suffix.lower() == ".csv":
                return dd.read_csv(
                    location,
                    dtype=str,
                    keep_default_na=True,
                    encoding="utf-8",
                    blocksize=blocksize,
                    usecols=_csv_columns(path, table),
                )
            columns, _ = catalog._parquet_selection(path, table)
            return dd.read_parquet(location, columns=columns, blocksize=blocksize)
    except Exception as exc:
        error = dask_findings.read_error(exc, path.name)
        if error is None:
            raise
        raise error from exc


def _csv_columns(path: Path, table: str) -> list[str] | None:
    """The header's names the contract reads (pipelines.catalog._parquet_selection's rule)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            names = next(csv.reader(handle))
    except (StopIteration, UnicodeDecodeError, csv.Error):
        return None  # the read reports it
    canonical = [name.strip().lower() for name in names]
    if len(set(canonical)) < len(canonical) or not set(REQUIRED[table]) <= set(canonical):
        return None
    known = set(REQUIRED[table]) | set(OPTIONAL[table])
    return [name for name, low in zip(names, canonical, strict=True) if low in known]


def _validated_parts(
    client: Client,
    frame: dd.DataFrame,
    table: str,
    source: str,
    rows: int,
    npartitions: int,
    drop_interactions: bool,
) -> list[Future]:
    """The table's customer partitions, validated and kept on the workers (futures).

    Args:
        frame: the table as read (a file's blocks, a database table's key ranges).
        source: the label messages name.
        rows: the table's rows, or an estimate.

    A large table is moved in rounds, each a range of partitions (the table read again
    each round): only one round's raw rows are on the workers at once.
    """
    drop = drop_interactions if table == "interactions" else None
    meta = dask_parts.add_keys(frame._meta, npartitions, table)
    keyed = frame.map_partitions(
        dask_parts.add_keys, npartitions, table, partition_info=True, meta=meta
    )
    # moving the pieces as tasks peaks lower than p2p on these tables (2 workers, 300k
    # customers: 1.2 GB against 1.6-2.0 GB per worker); dask's config may choose
    method = dask.config.get("dataframe.shuffle.method", None) or "tasks"
    # a fresh key each run: a file changed since the last run is read again, never reused
    validate = dask.delayed(dask_parts.validate_part, pure=False)
    not_after = catalog.latest_event(table)
    per_thread = rows / engines._threads(client)
    rounds = min(npartitions, max(1, math.ceil(per_thread / _ROUND_ROWS)))
    futures: list[Future] = []
    for keys in (range(k[0], k[-1] + 1) for k in np.array_split(range(npartitions), rounds)):
        key = keyed[dask_parts.PART]
        mine = keyed if rounds == 1 else keyed[(key >= keys.start) & (key < keys.stop)]
        by_customer = engines.partition_by_key(mine, npartitions, dask_parts.PART, method, keys)
        parts = [
            validate(part, table, source, not_after, drop) for part in by_customer.to_delayed()
        ]
        futures += client.compute(parts)
        wait(futures)  # this round's raw rows leave the workers before the next round's
    return futures


def _batches(
    client: Client, tables: list[Future], summaries: Sequence[dask_parts.Summary]
) -> DaskBatches:
    rows: Counter[str] = Counter()
    for summary in summaries:
        rows.update(summary.rows_read)
    assert summaries[0].empty is not None  # no partition failed
    schema = replace(
        summaries[0].empty,
        warnings=batch_read.merge_warnings([s.warnings for s in summaries]),
        rows_read=dict(rows),
    )
    firsts = [s.first for s in summaries if s.first is not None]
    lasts = [s.last for s in summaries if s.last is not None]
    kept = [i for i, s in enumerate(summaries) if s.rows_read.get("transactions")]
    return DaskBatches(
        client,
        tuple(tables[i] for i in kept),
        tuple(kept),
        len(tables),
        schema,
        add_kind_counts([s.kinds for s in summaries if s.kinds is not None]),
        min(firsts) if firsts else None,
        max(lasts) if lasts else None,
    )
