"""Whole tables or customer batches: a whole `churn nightly` process, time and peak memory.

Usage::

    .venv/bin/python -m benchmarks.batched_night --customers 60000 --batches 8 --runs 2

Simulates a business (``churn simulate``), trains once, then runs ``churn nightly`` on
its Parquet files alternately whole and with ``--batches``, ``--runs`` times each, every
run a fresh process with its own output folder. Wall time is the process's; peak memory
is the largest resident set of the process and its children (``os.wait4``). The medians
and the same-run ratio are printed as a Markdown table, and the outputs (scores, both
lists, features) of the two modes are checked equal value for value.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

CHURN = Path(sys.executable).with_name("churn")
OUTPUTS = ("scores.parquet", "at_risk.parquet", "win_back.parquet", "features.parquet")


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of one whole ``churn`` process."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [str(CHURN), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"churn {' '.join(args)} failed: {process.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024**2  # kB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=60_000)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--runs", type=int, default=2)
    options = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="batched-night-"))
    env = {**os.environ, "PREFECT_HOME": str(work / ".prefect"), "OMP_WAIT_POLICY": "PASSIVE"}
    raw = work / "raw"
    _run(["simulate", "--customers", str(options.customers), "--out", str(raw)], env)
    files = [
        f"--{kind}={raw / f'{kind}.parquet'}"
        for kind in ("transactions", "interactions", "customers")
    ]
    store = ["--data-dir", str(work / "store")]
    _run(["train", *files, *store], env)
    measured: dict[str, list[tuple[float, float]]] = {"whole": [], "batches": []}
    for run in range(options.runs):
        for mode in measured:
            extra = ["--batches", str(options.batches)] if mode == "batches" else []
            out = ["--out", str(work / f"{mode}-{run}")]
            measured[mode].append(_run(["nightly", *files, *store, *out, *extra], env))
    for name in OUTPUTS:
        whole = pd.read_parquet(work / "whole-0" / name).drop(columns="scored_at", errors="ignore")
        batched = pd.read_parquet(work / "batches-0" / name)
        batched = batched.drop(columns="scored_at", errors="ignore")
        pd.testing.assert_frame_equal(batched, whole, check_exact=True)
    median = {
        mode: [statistics.median(v) for v in zip(*runs, strict=True)]
        for mode, runs in measured.items()
    }
    print(f"`churn nightly`, {options.customers:,} customers, median of {options.runs}")
    print("| mode | wall s | peak RSS GB |\n|---|---|---|")
    for mode, (seconds, peak) in median.items():
        label = f"--batches {options.batches}" if mode == "batches" else "whole tables"
        print(f"| {label} | {seconds:.1f} | {peak:.2f} |")
    print(
        f"batches / whole: time {median['batches'][0] / median['whole'][0]:.2f}, "
        f"peak {median['batches'][1] / median['whole'][1]:.2f}; outputs equal: True"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
