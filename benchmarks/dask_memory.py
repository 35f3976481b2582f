"""`churn nightly --engine dask` on the local 2-worker cluster: peak memory per process.

Usage::

    .venv/bin/python -m benchmarks.dask_memory --customers 300000,1000000 --work data/bench

For each size, generates (or reuses) the bulk business (``benchmarks._bulk``: raw
Parquet files, 4.5 years), trains once on its first shard (100k customers, the xgboost
candidate only: the model is not what is measured), then runs ``churn nightly`` on the
whole business's files with the local engine (whole tables) and with ``--engine dask``
(no address: the 2-worker LocalCluster the command starts itself), each a fresh process
with its own output folder, and checks that both runs wrote the same scores, lists and
features. The process tree is polled every 0.2 s; each process's peak is its kernel
high-water mark (``VmHWM``), so a short spike between two polls still counts.

Writes wall time and the peaks of the client (the ``churn`` process) and of each Dask
worker to ``docs/benchmarks.md`` between ``<!-- dask-memory:start -->`` and
``<!-- dask-memory:end -->``, with issue 18's targets: at 300k customers the largest
process of the Dask run at or under 1.5 GB; at 1M the client under 2 GB. Exits 3 when
one is missed (``--no-fail-on-target``: 0).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd

from benchmarks import _bulk, _docs
from benchmarks._process import run_churn

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("scores.parquet", "at_risk.parquet", "win_back.parquet", "features.parquet")
START, END = "<!-- dask-memory:start -->", "<!-- dask-memory:end -->"
# size -> (which processes of the Dask run, limit GB)
TARGETS = {300_000: ("largest process", 1.5), 1_000_000: ("client", 2.0)}


def measure(n: int, work: Path, env: dict[str, str]) -> dict[str, tuple[float, dict]]:
    """Both engines' wall time and peaks on the ``n``-customer business."""
    paths = _bulk.make_business(n, work / f"n{n}")
    files = [f"--{t}={paths[f'raw_{t}']}" for t in _bulk.TABLES]
    store = ["--data-dir", str(work / "store")]
    if not (work / "store" / "mlflow").exists():
        first = _bulk.shards(n, work / "shards")[0]
        config = work / "dask-train.yaml"
        config.write_text("candidates: [xgboost]\nn_train_cutoffs: 2\n")
        shard = [f"--{t}={first.path(t, validated=False)}" for t in _bulk.TABLES]
        run_churn(["train", *shard, *store, "--config", str(config)], env)
    runs = {}
    for mode, extra in (("local", []), ("dask", ["--engine", "dask"])):
        out = ["--out", str(work / f"out-dask-memory-{n}-{mode}")]
        runs[mode] = run_churn(["nightly", *files, *store, *out, *extra], env)
        print(mode, n, runs[mode], flush=True)
    for name in OUTPUTS:
        local, dask = (
            pd.read_parquet(work / f"out-dask-memory-{n}-{mode}" / name).drop(
                columns="scored_at", errors="ignore"
            )
            for mode in ("local", "dask")
        )
        pd.testing.assert_frame_equal(dask, local, check_exact=True)
    return runs


def render(results: dict[int, dict], meta: dict, wall: float) -> tuple[str, list[str]]:
    rows, targets, missed = [], [], []
    for n, runs in results.items():
        for mode, (seconds, peaks) in runs.items():
            workers = ", ".join(f"{v:.2f}" for k, v in peaks.items() if k != "client") or "-"
            rows.append(
                [f"{n:,}", mode, f"{seconds:.0f}", f"{peaks['client']:.2f}", workers,
                 f"{max(peaks.values()):.2f}"]
            )  # fmt: skip
        if n in TARGETS:
            which, gb = TARGETS[n]
            peaks = runs["dask"][1]
            got = peaks["client"] if which == "client" else max(peaks.values())
            ok = got <= gb
            targets.append(
                [f"{n:,}", f"`--engine dask`, {which}", f"<= {gb} GB", f"{got:.2f} GB",
                 _docs.verdict(ok, (_docs.MET, _docs.NOT_MET))]
            )  # fmt: skip
            if not ok:
                missed.append(f"{n:,} dask {which}: {got:.2f} GB (target <= {gb} GB)")
    header = ["customers", "engine", "wall s", "client peak GB", "worker peaks GB", "largest GB"]
    section = "\n".join(
        [
            START,
            "## The Dask engine's memory per process (issue 18)",
            "",
            _docs.produced_line(meta, f"wall time {wall / 60:.0f} min"),
            "",
            "`churn nightly` as a whole process on the bulk business's raw Parquet files, "
            "the local engine on whole tables and `--engine dask` on the local 2-worker "
            "cluster (the workers read, validate and keep the tables; the client plans the "
            "reads and holds the per-customer results). Peaks are each process's `VmHWM`. "
            "Both runs wrote the same scores, lists and features, value for value.",
            "",
            _docs.markdown_table(header, rows, cell=str),
            "",
            _docs.markdown_table(["customers", "run", "target", "measured", ""], targets, cell=str),
            END,
            "",
        ]
    )
    return section, missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="300000")
    parser.add_argument("--work", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    _docs.add_target_flag(parser)
    options = parser.parse_args(argv)
    meta = _docs.run_meta(_docs.command_line("dask_memory", argv))
    work = options.work
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(work / ".prefect"), "OMP_WAIT_POLICY": "PASSIVE"}
    started = time.perf_counter()
    results = {int(n): measure(int(n), work, env) for n in options.customers.split(",")}
    section, missed = render(results, meta, time.perf_counter() - started)
    print(section)
    _docs.write_section(options.doc, section, START, END)
    return _docs.target_status(missed, options.fail_on_target)


if __name__ == "__main__":
    raise SystemExit(main())
