"""All file reads and writes go through here: dataset name -> location and format.

Writes are atomic: each file is written to a temporary name in the same folder and
renamed over the old one only when every file of the set is complete, so a failed
run leaves the previous outputs intact and readable.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contracts import (
    LABEL_COLUMNS,
    OPTIONAL,
    REQUIRED,
    InputError,
    ValidatedTable,
    reconcile,
    validate_table,
)
from features.subscription_checks import check_known_customers
from features.usage import map_kinds

# dataset name -> file name inside an output folder
OUTPUTS = {
    "transactions": "transactions.parquet",
    "interactions": "interactions.parquet",
    "customers": "customers.parquet",
    "truth": "truth.parquet",
    "subscriptions": "subscriptions.parquet",
    "features": "features.parquet",
    "at_risk_csv": "at_risk.csv",
    "at_risk": "at_risk.parquet",
    "win_back_csv": "win_back.csv",
    "win_back": "win_back.parquet",
    "scores": "scores.parquet",
    "report": "report.html",
    "call_sheet": "call_sheet.csv",  # the lists' contact group only: who staff call
    "campaign": "campaign.csv",
}
# every night's lists, one folder per score date: OUT/history/<YYYY-MM-DD>/<list>.parquet
HISTORY = "history"
HISTORY_LISTS = ("at_risk", "win_back")
READABLE = (".csv", ".parquet", ".pq")
LOCK_FILE = ".churn.lock"


class OutputBusy(RuntimeError):
    """Another run holds the output folder."""


class OutputNotWritable(RuntimeError):
    """The output folder cannot be written (read-only, full, permissions)."""


@dataclass(frozen=True)
class Tables:
    transactions: pd.DataFrame
    interactions: pd.DataFrame | None
    customers: pd.DataFrame | None
    warnings: tuple[str, ...]
    rows_read: dict[str, int]
    subscriptions: pd.DataFrame | None = None


def _read_csv(path: Path) -> pd.DataFrame:
    """Strings in, types decided by the contract (no silent float ids).

    Arrow's reader is ~6x faster on big files and gives the same frame; anything it
    rejects goes through pandas' own reader, whose errors the messages are built on.
    """
    options = {"dtype": str, "keep_default_na": True, "encoding": "utf-8"}
    try:
        return pd.read_csv(path, engine="pyarrow", **options)
    except Exception:  # noqa: BLE001 - the C reader below reports the problem
        return pd.read_csv(path, **options)


def read_raw(
    path: Path, columns: list[str] | None = None, categorical: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Read a CSV or Parquet file as given, turning read failures into clear errors.

    Args:
        path: the file.
        columns: Parquet only: read just these columns (None: all).
        categorical: Parquet only: string columns to read as categoricals (values as
            in the file, stored once per distinct value).
    """
    if not path.exists():
        raise InputError(str(path), "file not found")
    source = path.name  # the same label validation uses
    if path.suffix.lower() not in READABLE:
        raise InputError(source, f"unsupported file type {path.suffix!r}; use .csv or .parquet")
    if path.stat().st_size == 0:
        raise InputError(source, "file is empty (0 bytes)")
    try:
        if path.suffix.lower() == ".csv":
            return _read_csv(path)
        if columns is None and not categorical:
            return pd.read_parquet(path)
        return pd.read_parquet(
            path,
            columns=columns,
            read_dictionary=list(categorical) or None,
            # free each Arrow column once converted instead of holding two copies
            to_pandas_kwargs={"self_destruct": True, "split_blocks": True},
        )
    except UnicodeDecodeError as exc:
        raise InputError(source, f"not UTF-8 text (byte {exc.start}); re-save as UTF-8") from exc
    except (pa.ArrowException, OSError, pd.errors.ParserError, ValueError) as exc:
        raise InputError(source, f"cannot be read: {exc}") from exc


def read_table(path: Path, table: str, drop_duplicates: bool | None = None) -> ValidatedTable:
    """Read and validate one input table; events dated after tomorrow are refused.

    ``drop_duplicates``: drop exact duplicate rows (None: the table's contract default).
    """
    not_after = latest_event(table)
    columns, categorical = _parquet_selection(path, table)
    try:
        return validate_table(
            read_raw(path, columns, categorical),
            table,
            source=path.name,
            not_after=not_after,
            drop_duplicates=drop_duplicates,
        )
    finally:
        # Arrow's allocator keeps freed read buffers for reuse; hand them back so the
        # next table (or the feature code) can use that memory.
        pa.default_memory_pool().release_unused()


def latest_event(table: str) -> pd.Timestamp | None:
    """The latest time an input table's events may carry: the end of tomorrow (UTC).

    Files and database reads refuse later events alike; None for customers (no events).
    """
    if table == "customers":
        return None
    return pd.Timestamp.now(tz="UTC").tz_localize(None).normalize() + pd.Timedelta(days=2)


def _parquet_selection(path: Path, table: str) -> tuple[list[str] | None, tuple[str, ...]]:
    """The Parquet columns validation keeps, and the label columns among them.

    Reading only those saves memory and time; labels are read as categoricals. When the
    file has a contract problem (a missing required column, clashing names) or stores a
    pandas index, everything is read so that validation reports exactly as before.
    """
    if path.suffix.lower() not in (".parquet", ".pq") or not path.is_file():
        return None, ()
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError, ValueError):
        return None, ()  # read_raw reports the problem
    index_columns = (schema.pandas_metadata or {}).get("index_columns", [])
    if any(isinstance(column, str) for column in index_columns):
        return None, ()
    names = [str(name).strip().lower() for name in schema.names]
    if len(set(names)) < len(names) or not set(REQUIRED[table]) <= set(names):
        return None, ()
    known = set(REQUIRED[table]) | set(OPTIONAL[table])
    columns = [field for field, name in zip(schema.names, names, strict=True) if name in known]
    categorical = tuple(
        field
        for field, name in zip(schema.names, names, strict=True)
        if name in LABEL_COLUMNS[table]
        and (
            pa.types.is_string(schema.field(field).type)
            or pa.types.is_large_string(schema.field(field).type)
        )
    )
    return columns, categorical


def read_tables(
    transactions: Path,
    interactions: Path | None = None,
    customers: Path | None = None,
    subscriptions: Path | None = None,
    kinds: Mapping[str, str] | None = None,
    drop_duplicate_interactions: bool = False,
) -> Tables:
    """Read and validate the business's tables (all but transactions optional).

    ``kinds`` renames interaction kinds (the business's vocabulary -> the contract's);
    exact duplicate interactions are kept unless ``drop_duplicate_interactions``.
    """
    tables = assemble_tables(
        {
            "transactions": (transactions.name, read_table(transactions, "transactions")),
            "interactions": (
                interactions.name,
                read_table(interactions, "interactions", drop_duplicate_interactions),
            )
            if interactions
            else None,
            "customers": (customers.name, read_table(customers, "customers"))
            if customers
            else None,
            "subscriptions": (subscriptions.name, read_table(subscriptions, "subscriptions"))
            if subscriptions
            else None,
        },
        kinds,
    )
    pa.default_memory_pool().release_unused()  # the pre-repair frames are gone now
    return tables


def assemble_tables(
    read: dict[str, tuple[str, ValidatedTable] | None], kinds: Mapping[str, str] | None = None
) -> Tables:
    """Tables from validated parts (files or database), after the cross-table repairs.

    Args:
        read: table kind -> (source label, validated table), or None when absent.
        kinds: interaction kind renames (``ticket: support_ticket``), applied first.

    Raises:
        InputError: subscriptions of customers no other table knows.
    """
    tx_source, tx = read["transactions"]  # type: ignore[misc]
    ix_part, cu_part = read.get("interactions"), read.get("customers")
    sources = (tx_source, ix_part[0] if ix_part else "")
    tx_frame, ix_frame, repairs = reconcile(
        tx.frame, ix_part[1].frame if ix_part else None, sources
    )
    renames: tuple[str, ...] = ()
    if ix_frame is not None and kinds:
        ix_frame, renamed = map_kinds(ix_frame, kinds)
        renames = (f"{sources[1]}: {renamed} rows renamed by the `kinds:` mapping",)
    sub_part = read.get("subscriptions")
    if sub_part:
        known = tx_frame["customer_id"].astype(str)
        if cu_part:
            known = pd.concat([known, cu_part[1].frame["customer_id"].astype(str)])
        check_known_customers(sub_part[1].frame, known, sub_part[0])
    parts = [part[1] for part in read.values() if part]
    return Tables(
        transactions=tx_frame,
        interactions=ix_frame,
        customers=cu_part[1].frame if cu_part else None,
        warnings=tuple(w for t in parts for w in t.warnings) + repairs + renames,
        rows_read={kind: len(part[1].frame) for kind, part in read.items() if part},
        subscriptions=sub_part[1].frame if sub_part else None,
    )


@dataclass(frozen=True)
class CsvRows:
    """A CSV file made of rows of other CSV files of the same write: ``parts`` are
    (dataset name, one bool per row) in order. Each row is copied as it was written
    there, not formatted again (formatting is most of a CSV's cost; the call sheet's
    rows are the lists' own), so a customer's row reads the same in both files."""

    parts: tuple[tuple[str, np.ndarray], ...]


def _copy_rows(sources: list[tuple[Path, np.ndarray]], path: Path) -> None:
    """Write the kept rows of the CSV files ``sources`` (one header, the first's) to
    ``path``; a quoted field may span lines."""
    header = None
    with path.open("w", encoding="utf-8", newline="") as out:
        for source, keep in sources:
            with source.open(encoding="utf-8", newline="") as text:
                lines = iter(text)
                top = _record(lines)
                if header is None:
                    header = top
                    out.write(header)
                elif top != header:
                    raise ValueError(f"{source.name}: other columns than the first part's")
                for kept in keep:
                    row = _record(lines)
                    if kept:
                        out.write(row)
                if next(lines, None) is not None:
                    raise ValueError(f"{source.name}: more rows than the {len(keep)} given")


def _record(lines: Iterator[str]) -> str:
    record = next(lines)
    while record.count('"') % 2:  # an open quoted field: its line break is in the value
        record += next(lines)
    return record


def _write(frame: pd.DataFrame | str, path: Path) -> None:
    if isinstance(frame, str):
        path.write_text(frame, encoding="utf-8")
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


# CSV rows of one write from which its CSV files are written by processes of their own,
# side by side (pandas formats a CSV at ~150k rows per core-second: a night's lists of
# 1M customers' business took ~20 s one after another)
PARALLEL_CSV_ROWS = 50_000


def _hand_over(frame: pd.DataFrame | str, path: Path) -> Path | None:
    """``frame`` as an uncompressed Arrow file at ``path``, for another process to write
    as CSV; None when Arrow cannot hold it as it is (it is then written here).

    A pickled frame sent to a pool costs several times its size in this process while
    it waits in the queue (0.8 GB for a 1M-customer night's three CSVs); Arrow strings
    are written as they are, and the numbers once.
    """
    if isinstance(frame, str) or frame.columns.has_duplicates:
        return None
    if not all(isinstance(c, str) for c in frame.columns):
        return None
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        return None  # e.g. a column of mixed Python types
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return path


def _csv_from_arrow(arrow: Path, path: Path) -> None:
    """The CSV of the frame :func:`_hand_over` wrote at ``arrow`` (the same bytes)."""
    try:
        with pa.memory_map(str(arrow)) as source:
            frame = pa.ipc.open_file(source).read_pandas()
        _write(frame, path)
    finally:
        arrow.unlink(missing_ok=True)


def write_atomic(
    frames: dict[str, pd.DataFrame | str | CsvRows],
    out_dir: Path,
    before_replace: Callable[[], object] | None = None,
    parallel_csv_rows: int = PARALLEL_CSV_ROWS,
) -> dict[str, Path]:
    """Write named datasets into ``out_dir``; all or nothing replaces the old files.

    Args:
        frames: dataset name (a key of ``OUTPUTS``) -> frame, text for HTML, or
            :class:`CsvRows` of other CSV datasets of ``frames``.
        out_dir: the folder, created if missing.
        before_replace: called once every file is staged and before any is renamed into
            place (e.g. the database write of the same list); if it raises, the old files
            stay as they were.
        parallel_csv_rows: from this many CSV rows, the CSV files are written by
            processes beside this one (the same bytes).

    Returns:
        dataset name -> final path.
    """
    from pipelines.memory import give_back
    from pipelines.processes import cores, joined_pool, stop, submit

    out_dir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    temps = {name: _temp_path(out_dir / OUTPUTS[name], token) for name in frames}
    copied = {n: f for n, f in frames.items() if isinstance(f, CsvRows)}
    frames = {n: f for n, f in frames.items() if n not in copied}
    csvs = [n for n in frames if OUTPUTS[n].endswith(".csv")]
    rows = sum(len(frames[name]) for name in csvs)
    aside = csvs if rows >= parallel_csv_rows and cores() > 1 else []
    handed = {n: _temp_path(out_dir / OUTPUTS[n], token).with_suffix(".arrow") for n in aside}
    futures: list[Future] = []
    try:
        with joined_pool(min(len(aside), cores())) as pool:
            for name in aside if pool else []:
                if _hand_over(frames[name], handed[name]):
                    futures.append(submit(pool, _csv_from_arrow, handed[name], temps[name]))
                else:
                    _write(frames[name], temps[name])
            for name, frame in frames.items():
                if pool is None or name not in aside:
                    _write(frame, temps[name])
                    give_back()  # a Parquet file's Arrow copy, before the next file's
            for future in futures:
                future.result()
        for name, rows_of in copied.items():
            _copy_rows([(temps[part], keep) for part, keep in rows_of.parts], temps[name])
        if before_replace is not None:
            before_replace()
    except BaseException as exc:
        stop(futures)  # the run's pool outlives this write
        with suppress(OSError):  # best effort: the next run's lock clears leftovers too
            for temp in [*temps.values(), *handed.values()]:
                temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputNotWritable(
                f"{out_dir}: cannot write the outputs ({exc.strerror}); the previous files are "
                "untouched"
            ) from exc
        raise
    for name, temp in temps.items():
        os.replace(temp, out_dir / OUTPUTS[name])
    return {name: out_dir / OUTPUTS[name] for name in temps}


def _temp_path(final: Path, token: str) -> Path:
    return final.with_name(f".{final.name}.{token}.tmp{final.suffix}")


def history_dir(out_dir: Path, score_date: pd.Timestamp) -> Path:
    return out_dir / HISTORY / str(pd.Timestamp(score_date).date())


def write_history(lists: dict[str, pd.DataFrame], out_dir: Path, score_date: pd.Timestamp) -> Path:
    """Keep one night's lists; a re-run of the date replaces exactly that date's files."""
    folder = history_dir(out_dir, score_date)
    write_atomic({name: lists[name] for name in HISTORY_LISTS}, folder)
    return folder


def read_history(out_dir: Path, before: pd.Timestamp | None = None) -> pd.DataFrame:
    """Every kept night's lists (score dates before ``before`` if given), oldest first."""
    parts = []
    for folder in sorted((out_dir / HISTORY).glob("????-??-??")):
        if before is not None and pd.Timestamp(folder.name) >= pd.Timestamp(before):
            continue
        for name in HISTORY_LISTS:
            path = folder / OUTPUTS[name]
            if path.is_file():
                parts.append(read_raw(path))
    parts = [part for part in parts if len(part)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def check_writable(out_dir: Path) -> None:
    """Fail now, before any work, if files cannot be created in ``out_dir`` (made if missing).

    Raises:
        OutputNotWritable: naming the folder and why.
    """
    probe = out_dir / f".write-check.{uuid.uuid4().hex[:8]}.tmp"  # a stale one: see output_lock
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink(missing_ok=True)  # a run's lock may have cleared it
    except OSError as exc:
        raise OutputNotWritable(f"{out_dir}: cannot write here ({exc.strerror})") from exc


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold the output folder for one run; a second run exits at once with OutputBusy.

    While the lock is held no other run can be writing, so temporary files left by a
    run that was killed mid-write are stale and are removed here.
    """
    path = out_dir / LOCK_FILE
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 (closed below, after the lock is released)
    except OSError as exc:
        raise OutputNotWritable(f"{out_dir}: cannot write here ({exc.strerror})") from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise OutputBusy(
                f"{out_dir}: another run is writing this folder (lock {path}); not starting a "
                "second one"
            ) from exc
        for stale in out_dir.glob(".*.tmp*"):
            stale.unlink(missing_ok=True)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
