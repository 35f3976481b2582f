"""`churn nightly --engine dask` on the local 2-worker cluster: peak memory per process.

Usage::

    .venv/bin/python -m benchmarks.dask_memory --customers 300000 --work /tmp/dask-memory

Generates (or reuses) the bulk business of ``--customers`` (``benchmarks._bulk``: raw
Parquet files, 4.5 years), trains once on its first shard (100k customers, the xgboost
candidate only: the model is not what is measured), then runs ``churn nightly`` on the
whole business's files with the local engine and with ``--engine dask`` (no address: the
2-worker LocalCluster the command starts itself), each a fresh process with its own
output folder. The process tree is polled every 0.2 s; each process's peak is its
kernel high-water mark (``VmHWM``), so a short spike between two polls still counts.
Prints a Markdown table of wall time and the peaks of the client (the ``churn`` process)
and of each Dask worker, and checks that both runs wrote the same scores, lists and
features. Target (issue 18): the largest process of the Dask run at or under 1.5 GB.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks import _bulk
from benchmarks._process import run_churn

OUTPUTS = ("scores.parquet", "at_risk.parquet", "win_back.parquet", "features.parquet")
TARGET_GB = 1.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--work", type=Path, default=None)
    options = parser.parse_args(argv)
    work = options.work or Path(tempfile.mkdtemp(prefix="dask-memory-"))
    env = {**os.environ, "PREFECT_HOME": str(work / ".prefect"), "OMP_WAIT_POLICY": "PASSIVE"}
    paths = _bulk.make_business(options.customers, work / f"n{options.customers}")
    files = [f"--{t}={paths[f'raw_{t}']}" for t in _bulk.TABLES]
    first = _bulk.shards(options.customers, work / "shards")[0]
    store = ["--data-dir", str(work / "store")]
    if not (work / "store" / "mlflow").exists():
        config = work / "train.yaml"
        config.write_text("candidates: [xgboost]\nn_train_cutoffs: 2\n")
        shard = [f"--{t}={first.path(t, validated=False)}" for t in _bulk.TABLES]
        run_churn(["train", *shard, *store, "--config", str(config)], env)
    runs = {}
    for mode, extra in (("local", []), ("dask", ["--engine", "dask"])):
        out = ["--out", str(work / f"out-{mode}")]
        runs[mode] = run_churn(["nightly", *files, *store, *out, *extra], env)
    for name in OUTPUTS:
        local = pd.read_parquet(work / "out-local" / name).drop(
            columns="scored_at", errors="ignore"
        )
        dask = pd.read_parquet(work / "out-dask" / name).drop(columns="scored_at", errors="ignore")
        pd.testing.assert_frame_equal(dask, local, check_exact=True)
    print(f"`churn nightly`, {options.customers:,} customers' Parquet files ({work})")
    print("| engine | wall s | client peak GB | worker peaks GB | largest process GB |")
    print("|---|---|---|---|---|")
    for mode, (seconds, peaks) in runs.items():
        workers = ", ".join(f"{v:.2f}" for k, v in peaks.items() if k != "client") or "-"
        print(
            f"| {mode} | {seconds:.0f} | {peaks['client']:.2f} | {workers} | "
            f"{max(peaks.values()):.2f} |"
        )
    largest = max(runs["dask"][1].values())
    met = "met" if largest <= TARGET_GB else "MISSED"
    print(f"outputs (scores, both lists, features) equal; target <= {TARGET_GB} GB: {met}")
    return 0 if largest <= TARGET_GB else 3


if __name__ == "__main__":
    raise SystemExit(main())
