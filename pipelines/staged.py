"""A run's input files as customer batches staged on local disk, validated once.

:func:`stage` converts each file into its partitioned cache
(:mod:`pipelines.batch_read`; PostgreSQL tables are read page by page into the same
layout, :mod:`pipelines.database.pages`), validates and repairs every batch exactly as
a whole file is (the batches' counted repairs summed into today's sentences; a bad value
anywhere reported with the whole file's message), and keeps each batch's validated
tables in a run folder. A flow then reads one batch at a time
(:meth:`StagedBatches.map`), so peak memory follows the batch, not the tables; the
population steps read the small per-customer results.

The batches are independent, so they are validated and mapped by a pool of processes,
one per core by default (``batch_processes``): each process holds one batch at a time,
and the run's own process only the per-customer results. The results are the same, in
the same order, as one batch after another in one process.
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pandas as pd

from features.batches import split_keywords
from features.contracts import InputError
from features.usage import add_kind_counts, kind_counts
from models.progress import track
from pipelines import batch_read, catalog
from pipelines.processes import batch_pool, batch_processes, stop, submit
from pipelines.settings import CommonSettings, DatabaseInputs, InputPaths

T = TypeVar("T")


@dataclass(frozen=True)
class StagedBatches:
    """Validated customer batches of one run (:class:`models.night_facts.CustomerBatches`).

    Attributes:
        folder: the run folder holding one pickled :class:`pipelines.catalog.Tables`
            per batch (exact dtypes, read back in well under a second each).
        batches: how many.
        schema: the tables with no rows (their columns and dtypes), the summed
            ``rows_read`` and the merged ``warnings``: what the whole read would say.
        kinds: rows per interaction kind over every batch (``features.usage.kind_counts``).
        history_start, last_timestamp: the first and the latest transaction.
        pool: the processes that map the batches; None: this process, a batch at a time.
    """

    folder: Path
    batches: int
    schema: catalog.Tables
    kinds: pd.Series
    history_start: pd.Timestamp | None
    last_timestamp: pd.Timestamp | None
    pool: Executor | None = field(default=None, compare=False, repr=False)

    def tables(self, batch: int) -> catalog.Tables:
        return load_batch(self.folder, batch)

    def map(self, fn: Callable[[catalog.Tables], T], stage: str = "customer batches") -> list[T]:
        """``fn`` of each batch's tables, in batch order; one batch in memory at a time
        per process. Per-customer frames ``fn`` carries as keywords (a
        :func:`functools.partial`) reach each batch as that batch's customers' rows."""
        if self.pool is None:
            return [fn(self.tables(b)) for b in track(range(self.batches), stage, unit="batches")]
        func, split, shared = split_keywords(fn, self.batches)
        futures = []
        for b in range(self.batches):
            mine = {name: pieces[b] for name, pieces in split.items()}
            call = partial(func, **mine, **shared)
            futures.append(submit(self.pool, _apply, self.folder, b, call))
        return _results(futures, stage)


def load_batch(folder: Path, batch: int) -> catalog.Tables:
    with (folder / f"batch-{batch}.pkl").open("rb") as handle:
        return pickle.load(handle)  # noqa: S301 - written by this run, in this run


def _apply(folder: Path, batch: int, fn: Callable[[catalog.Tables], T]) -> T:
    return fn(load_batch(folder, batch))


def _results(futures: list[Future], stage: str) -> list:
    """The futures' results in their order, progress told as they finish; the first
    failure cancels what has not started, waits for what has (so no process still
    writes into a folder the caller then removes), and is raised."""
    try:
        for future in track(as_completed(futures), stage, len(futures), "batches"):
            future.result()
    except BaseException:
        stop(futures)
        raise
    return [future.result() for future in futures]


def batches_for(inputs: object, settings: CommonSettings) -> int | None:
    """How many customer batches this run reads its inputs in; None: whole tables.

    Batches need files or PostgreSQL tables, and the local engine (Dask partitions its
    own inputs).
    """
    if not isinstance(inputs, InputPaths | DatabaseInputs) or settings.engine != "local":
        return None
    return settings.feature_batches


def streamable(inputs: InputPaths) -> dict[str, Path]:
    """The run's input files by table kind."""
    paths = {
        "transactions": inputs.transactions,
        "interactions": inputs.interactions,
        "customers": inputs.customers,
        "subscriptions": inputs.subscriptions,
    }
    return {kind: Path(path) for kind, path in paths.items() if path is not None}


@contextmanager
def stage(
    inputs: InputPaths | DatabaseInputs, settings: CommonSettings, batches: int
) -> Iterator[StagedBatches | None]:
    """The inputs as ``batches`` validated customer batches; None if a file or table
    cannot be streamed (the caller reads it whole, whose messages say why). The run
    folder is removed afterwards, also when the run fails. PostgreSQL tables are read
    page by page into the run folder (:mod:`pipelines.database.pages`).

    Raises:
        InputError: a batch breaks the contract (the whole input's message: file or
            table, column, first offending rows as numbered in the file or the read).
        DatabaseUnavailable: the server stayed unreachable through the retries.
    """
    root = Path(settings.data_dir) / batch_read.CACHE
    processes = batch_processes(batches, settings.batch_processes)
    with batch_pool(processes) as pool:
        if isinstance(inputs, DatabaseInputs):
            with _stage_database(inputs, settings, batches, root, pool) as source:
                yield source
            return
        paths = streamable(inputs)
        folders = file_folders(paths, batches, root, pool, processes)
        if folders is None:
            yield None
            return

        def whole_error(error: InputError) -> None:
            kinds = settings.kinds or None
            batch_read.raise_whole_table_error(
                error, dict(paths), kinds, settings.drop_duplicate_interactions
            )

        root.mkdir(parents=True, exist_ok=True)
        run = Path(tempfile.mkdtemp(prefix="run-", dir=root))
        try:
            yield validate_batches(folders, run, batches, settings, whole_error, pool)
        finally:
            shutil.rmtree(run, ignore_errors=True)


def database_tables(inputs: DatabaseInputs) -> dict[str, Any]:
    """The tables and queries, as :func:`pipelines.database.read_tables_sql` takes them."""
    return {
        "transactions": inputs.transactions,
        "interactions": inputs.interactions,
        "customers": inputs.customers,
        "queries": inputs.queries or None,
        "subscriptions": inputs.subscriptions,
    }


def whole_database_error(
    url: str, inputs: DatabaseInputs, settings: CommonSettings, error: InputError
) -> NoReturn:
    """Raise a part's ``error`` as the whole read reports it: the tables are read whole,
    in a snapshot of their own, so the message is today's exactly."""
    from pipelines.database import read_tables_sql

    read_tables_sql(
        url,
        **database_tables(inputs),
        kinds=settings.kinds or None,
        drop_duplicate_interactions=settings.drop_duplicate_interactions,
    )
    raise error  # the whole read passed: a finding only the part shows


@contextmanager
def _stage_database(
    inputs: DatabaseInputs,
    settings: CommonSettings,
    batches: int,
    root: Path,
    pool: Executor | None,
) -> Iterator[StagedBatches | None]:
    # here, not at the top: `churn features` on files stays free of Prefect and SQLAlchemy
    from pipelines.database.pages import page_tables_sql
    from pipelines.tasks import database_url

    url = database_url(inputs.url_env)
    tables = database_tables(inputs)

    def whole_error(error: InputError) -> None:
        whole_database_error(url, inputs, settings, error)

    root.mkdir(parents=True, exist_ok=True)
    run = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    pages = run / "pages"

    def read_pages() -> dict[str, tuple[Path, Path]] | None:
        shutil.rmtree(pages, ignore_errors=True)  # each try starts afresh
        return page_tables_sql(url, **tables, batches=batches, folder=pages)

    try:
        try:
            folders = read_again(read_pages)
        except InputError as error:
            whole_error(error)
            raise
        if folders is None:
            yield None
            return
        source = validate_batches(folders, run, batches, settings, whole_error, pool)
        shutil.rmtree(pages)  # the validated batches are kept; their pages are not needed
        yield source
    finally:
        shutil.rmtree(run, ignore_errors=True)


def read_again(read: Callable[[], T]) -> T:
    """``read()``, again after the delays of the I/O tasks while the server is away.

    The whole read is a task with those retries (``pipelines.tasks.IO_RETRIES``);
    staging runs in the flow itself, so it retries here. Each try starts afresh.
    """
    from prefect.logging import get_logger

    from pipelines.database import DatabaseUnavailable
    from pipelines.tasks import IO_RETRIES

    delays = list(IO_RETRIES["retry_delay_seconds"])
    while True:
        try:
            return read()
        except DatabaseUnavailable as error:
            if not delays:
                raise
            delay = delays.pop(0)
            get_logger("churn").warning("%s; reading again in %s s", error, delay)
            time.sleep(delay)


def file_folders(
    paths: dict[str, Path],
    batches: int,
    root: Path,
    pool: Executor | None = None,
    processes: int = 1,
) -> dict[str, tuple[Path, Path]] | None:
    """Each file's partitioned cache (converted once, a file's pieces side by side in
    ``pool``); None if one cannot be streamed."""
    folders = {}
    for kind, path in paths.items():
        if not path.is_file():
            return None
        folder = batch_read.build_cache(path, kind, batches, root, pool, processes)
        if folder is None:
            return None
        folders[kind] = (path, folder)
    return folders


@dataclass(frozen=True)
class _Checked:
    """What one validated batch tells the run (its tables stay in the run folder)."""

    warnings: tuple[str, ...]
    rows_read: dict[str, int]
    kinds: pd.Series
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    empty: catalog.Tables


def check_batch(
    folders: dict[str, tuple[Path, Path]],
    run: Path,
    batch: int,
    kinds: dict[str, str] | None,
    drop: bool,
) -> _Checked:
    """Validate and repair one batch, keep its tables in ``run``, say what it found."""
    tables = batch_read.batch_tables(folders, batch, kinds, drop)
    with (run / f"batch-{batch}.pkl").open("wb") as handle:
        pickle.dump(tables, handle, protocol=pickle.HIGHEST_PROTOCOL)
    tx = tables.transactions
    return _Checked(
        tables.warnings,
        tables.rows_read,
        kind_counts(tables.interactions),
        tx["timestamp"].min() if len(tx) else None,
        tx["timestamp"].max() if len(tx) else None,
        _empty(tables),
    )


def validate_batches(
    folders: dict[str, tuple[Path, Path]],
    run: Path,
    batches: int,
    settings: CommonSettings,
    whole_error: Callable[[InputError], None],
    pool: Executor | None = None,
) -> StagedBatches:
    """Validate every batch (in ``pool``, if given), keep it in ``run``, and sum what the
    batches say.

    Args:
        folders: table kind -> (the source, as messages name it; its cache folder).
        whole_error: re-raises a batch's error as the whole input reports it (true
            row numbers); called with the batch's error, it must raise.
    """
    check = partial(
        check_batch,
        folders,
        run,
        kinds=settings.kinds or None,
        drop=settings.drop_duplicate_interactions,
    )
    stage = "reading and checking inputs"
    try:
        if pool is None:
            checked = [check(b) for b in track(range(batches), stage, unit="batches")]
        else:
            checked = _results([submit(pool, check, b) for b in range(batches)], stage)
        rows: Counter[str] = Counter()
        for part in checked:
            rows.update(part.rows_read)
        for kind, (source, _) in folders.items():
            if not rows.get(kind):  # every batch empty: the table is (a batch may be)
                raise InputError(source.name, f"the {kind} table is empty (no data rows)")
    except InputError as error:
        whole_error(error)
        raise  # whole_error always raises; this keeps the batch's error if it does not
    schema = checked[0].empty  # batches >= 1
    firsts = [part.first for part in checked if part.first is not None]
    lasts = [part.last for part in checked if part.last is not None]
    summary = catalog.Tables(
        schema.transactions,
        schema.interactions,
        schema.customers,
        batch_read.merge_warnings([part.warnings for part in checked]),
        dict(rows),
        schema.subscriptions,
    )
    return StagedBatches(
        run,
        batches,
        summary,
        add_kind_counts([part.kinds for part in checked]),
        min(firsts) if firsts else None,
        max(lasts) if lasts else None,
        pool,
    )


def _empty(tables: catalog.Tables) -> catalog.Tables:
    def none(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if frame is None else frame.iloc[:0]

    return catalog.Tables(
        tables.transactions.iloc[:0],
        none(tables.interactions),
        none(tables.customers),
        (),
        {},
        none(tables.subscriptions),
    )
