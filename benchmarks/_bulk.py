"""Bulk mode of the simulator for the benchmarks: large businesses in shards.

``simulation.retail.simulate`` draws every customer independently, so a business of
``n`` customers is generated as shards of at most 100k customers (shard ``i`` uses seed
``i`` and is the same shard in every size, so the 100k business is the first shard of the
300k one). Each shard runs in its own process, two at a time, and gets its own id range
(``C0000001`` ...). Shards are written as Parquet both raw (what a business would hand
over) and validated (what ``features.contracts.validate_table`` makes of it), then
streamed into one file per table without holding the whole business in memory.

The observed period is 2021-07-01 to 2025-12-31 (4.5 years) instead of the simulator's
default three, which gives about 30 transactions per customer, as the issue asks for; the
interactions come along at their simulated rates (about 56 per customer, most of them
monthly marketing outreach).
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

START, END = "2021-07-01", "2025-12-31"
SHARD_CUSTOMERS = 100_000
TABLES = ("transactions", "interactions", "customers")
ID_WIDTH = 7  # C0000001 .. C9999999: text order is customer order


@dataclass(frozen=True)
class Shard:
    index: int
    customers: int
    first_id: int  # number of the shard's first customer (1-based)
    folder: Path

    def path(self, table: str, validated: bool) -> Path:
        kind = "validated" if validated else "raw"
        return self.folder / f"shard{self.index:03d}_{self.customers}_{kind}_{table}.parquet"

    def done(self) -> bool:
        return all(self.path(t, v).exists() for t in TABLES for v in (False, True))


def shards(n_customers: int, folder: Path) -> list[Shard]:
    """The shards making up a business of ``n_customers``."""
    out = []
    for index, first in enumerate(range(0, n_customers, SHARD_CUSTOMERS)):
        size = min(SHARD_CUSTOMERS, n_customers - first)
        out.append(Shard(index, size, first + 1, folder))
    return out


def _renumber(ids, first_id: int):  # noqa: ANN001, ANN202
    """Simulator ids C000001.. -> globally unique fixed-width ids for this shard."""
    import numpy as np
    import pandas as pd

    numbers = ids.str.slice(1).astype(np.int64) + (first_id - 1)
    return pd.Series(
        np.char.add("C", np.char.zfill(numbers.to_numpy().astype(str), ID_WIDTH)),
        index=ids.index,
        dtype="str",
    )


def _make_shard(shard: Shard) -> None:
    from features.contracts import validate_table
    from simulation.retail import simulate

    business = simulate(shard.customers, seed=shard.index, start=START, end=END)
    for table in TABLES:
        frame = getattr(business, table)
        frame = frame.assign(customer_id=_renumber(frame["customer_id"], shard.first_id))
        if table == "transactions":
            # order ids must stay unique across shards, as in one real business
            frame = frame.assign(order_id=f"S{shard.index:03d}-" + frame["order_id"])
        frame.to_parquet(_tmp(shard.path(table, False)), index=False)
        validated = validate_table(frame, table, source=table).frame
        validated.to_parquet(_tmp(shard.path(table, True)), index=False)
    for table in TABLES:
        for validated in (False, True):
            _tmp(shard.path(table, validated)).rename(shard.path(table, validated))


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def make_business(n_customers: int, folder: Path, processes: int = 2) -> dict[str, Path]:
    """Generate (or reuse) the shards and combine them into one Parquet file per table.

    Returns:
        ``{"raw_<table>": path, "validated_<table>": path}`` for the three tables.
    """
    shard_dir = folder.parent / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    parts = shards(n_customers, shard_dir)
    missing = [s for s in parts if not s.done()]
    if missing:
        with mp.get_context("spawn").Pool(min(processes, len(missing)), maxtasksperchild=1) as pool:
            pool.map(_make_shard, missing, chunksize=1)
    paths: dict[str, Path] = {}
    for validated in (False, True):
        for table in TABLES:
            name = f"{'validated' if validated else 'raw'}_{table}"
            target = folder / f"{name}.parquet"
            if not target.exists():
                _concatenate([s.path(table, validated) for s in parts], target)
            paths[name] = target
    return paths


def _concatenate(sources: list[Path], target: Path) -> None:
    """Stream shard files into one Parquet file, row group by row group."""
    temp = _tmp(target)
    schema: pa.Schema | None = None
    writer: pq.ParquetWriter | None = None
    try:
        for source in sources:
            table = pq.read_table(source)
            if schema is None:
                schema = table.schema
                writer = pq.ParquetWriter(temp, schema)
            assert writer is not None
            writer.write_table(table.cast(schema), row_group_size=1_000_000)
    finally:
        if writer is not None:
            writer.close()
    temp.rename(target)
