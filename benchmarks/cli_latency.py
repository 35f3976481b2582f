"""How fast the `churn` command line answers (issue 13, "The CLI must answer at once").

Usage::

    .venv/bin/python -m benchmarks.cli_latency                 # 300 and 200k customers, 3 runs
    .venv/bin/python -m benchmarks.cli_latency --large 50000   # a quicker large business
    .venv/bin/python -m benchmarks.cli_latency --print-only    # leave docs/benchmarks.md alone

Every number is the wall time of a whole `churn` process (``subprocess``, from start to
exit, interpreter start-up and imports included), the median of ``--runs`` runs, each in
a fresh working folder with its own ``PREFECT_HOME``. The businesses come from
``churn simulate`` (cached under ``--data-dir``). The reference is the RFM core of
``benchmarks.speed`` in DuckDB SQL, straight on the same transactions Parquet file,
timed in this process (the query alone, median of the same number of runs) in the same
run, so the ratio compares like with like on a machine whatever its load.

The section goes between ``<!-- cli-latency:start -->`` and ``<!-- cli-latency:end -->``
of ``docs/benchmarks.md`` (printed too); a missed target makes the exit status 3.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import _docs

ROOT = Path(__file__).resolve().parents[1]
MARK_START, MARK_END = "<!-- cli-latency:start -->", "<!-- cli-latency:end -->"
CHURN = Path(sys.executable).with_name("churn")
CUTOFF = "2025-06-01"
# the bars: seconds, or a ratio to the DuckDB query
BAD_INPUT_S, SMALL_FEATURES_S, LARGE_RATIO = 3.0, 8.0, 10.0


def business(data_dir: Path, customers: int, seed: int) -> Path:
    """A simulated business written by `churn simulate` (reused when already there)."""
    folder = data_dir / f"n{customers}-seed{seed}"
    if not (folder / "transactions.parquet").exists():
        command = ["simulate", "--customers", str(customers), "--seed", str(seed)]
        subprocess.run([str(CHURN), *command, "--out", str(folder)], check=True)
    return folder


def timed_command(args: Sequence[str], expect: int, runs: int) -> tuple[float, str]:
    """Median wall time of ``churn ARGS`` over ``runs`` fresh processes, and the last
    stderr line; fails unless every run exits with ``expect``."""
    times, last = [], ""
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="cli-latency-") as work:
            env = {**os.environ, "PREFECT_HOME": str(Path(work) / ".prefect")}
            start = time.perf_counter()
            done = subprocess.run(
                [str(CHURN), *args], cwd=work, env=env, capture_output=True, text=True
            )
            times.append(time.perf_counter() - start)
        if done.returncode != expect:
            raise RuntimeError(f"churn {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        last = (done.stderr.strip().splitlines() or [""])[-1]
    return statistics.median(times), last


def duckdb_rfm_seconds(transactions: Path, runs: int) -> float:
    """Median time of the plain-RFM DuckDB query on the Parquet file (query only)."""
    import duckdb
    import pandas as pd

    from benchmarks.speed import DUCKDB_RFM

    con = duckdb.connect()
    con.execute(f"CREATE VIEW transactions AS SELECT * FROM read_parquet('{transactions}')")
    cutoff = pd.Timestamp(CUTOFF).to_pydatetime()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        con.execute(DUCKDB_RFM, {"cutoff": cutoff}).df()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(args: argparse.Namespace) -> dict[str, object]:
    """Every bar's number, in one run."""
    small = business(args.data_dir, args.small, seed=1)
    large = business(args.data_dir, args.large, seed=2)
    with tempfile.TemporaryDirectory(prefix="cli-latency-inputs-") as folder:
        rows = _measure_in(Path(folder), small, large, args)
    return rows


def _measure_in(work: Path, small: Path, large: Path, args: argparse.Namespace) -> dict:
    no_amount = work / "no_amount.csv"
    no_amount.write_text("customer_id,timestamp\nA,2024-01-01\n")
    out = ["--out", str(work / "out")]
    rows: dict[str, object] = {}
    rows["missing"] = timed_command(
        ["score", "--transactions", str(work / "missing.csv"), *out], 2, args.runs
    )
    rows["no_amount"] = timed_command(
        ["score", "--transactions", str(no_amount), *out], 2, args.runs
    )
    tables = [f"--{t}={small / t}.parquet" for t in ("transactions", "interactions", "customers")]
    rows["small"] = timed_command(["features", *tables, "--cutoff", CUTOFF, *out], 0, args.runs)
    large_tx = ["--transactions", str(large / "transactions.parquet")]
    rows["large"] = timed_command(["features", *large_tx, "--cutoff", CUTOFF, *out], 0, args.runs)
    rows["duckdb"] = duckdb_rfm_seconds(large / "transactions.parquet", args.runs)
    # the messages name a temporary folder; show them without it
    return {
        k: (v[0], v[1].replace(f"{work}/", "")) if isinstance(v, tuple) else v
        for k, v in rows.items()
    }


def render(args: argparse.Namespace, rows: dict[str, object], meta: dict) -> tuple[str, list]:
    """The Markdown section and the targets missed."""
    missing, no_amount, small, large = (
        rows[k][0] for k in ("missing", "no_amount", "small", "large")
    )  # type: ignore[index]
    duck = float(rows["duckdb"])  # type: ignore[arg-type]
    ratio = large / duck
    measured = [
        ("`churn score` on a missing file (exit 2)", missing, rows["missing"][1]),  # type: ignore[index]
        ("`churn score` on a CSV without `amount` (exit 2)", no_amount, rows["no_amount"][1]),  # type: ignore[index]
        (f"`churn features` on {args.small:,} customers (3 tables)", small, ""),
        (f"`churn features` on {args.large:,} customers (transactions)", large, ""),
        (f"DuckDB plain-RFM query on the same {args.large:,}-customer file", duck, "query only"),
    ]
    targets = [
        (
            "a bad input is answered within 3 s",
            max(missing, no_amount) <= BAD_INPUT_S,
            f"{max(missing, no_amount):.2f} s",
        ),
        (
            f"`churn features` on {args.small:,} customers within 8 s",
            small <= SMALL_FEATURES_S,
            f"{small:.2f} s",
        ),
        (
            f"`churn features` on {args.large:,} customers within 10x DuckDB",
            ratio <= LARGE_RATIO,
            f"{ratio:.1f}x",
        ),
    ]
    table = _docs.markdown_table(
        ["whole process", "median s", "its message"],
        [
            (name, f"{s:.2f}", f"`{line}`" if line.startswith("error") else line)
            for name, s, line in measured
        ],
        cell=str,
        align="lrl",
    )
    goals = _docs.markdown_table(
        ["target", "measured", "status"],
        [
            (goal, value, _docs.verdict(ok, (_docs.MET, _docs.NOT_MET)))
            for goal, ok, value in targets
        ],
        cell=str,
    )
    section = "\n\n".join(
        [
            MARK_START + "\n## CLI latency",
            _docs.produced_line(meta, f"median of {args.runs} runs each"),
            "Before (issue 13, every command starting Prefect's server first): 20 s for a "
            "missing file, 18 s for a file without `amount`, 18-23 s for `churn features` on "
            "300 customers, 21 s on 200k against 0.4 s for the DuckDB query. Now bad input is "
            "checked before Prefect, MLflow or XGBoost load, and `churn features` on files "
            "runs without a Prefect server (`pipelines/one_shot.py`).",
            table,
            goals,
            MARK_END + "\n",
        ]
    )
    return section, [f"{goal}: {value}" for goal, ok, value in targets if not ok]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench" / "cli")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--print-only", action="store_true", help="do not write --doc")
    _docs.add_target_flag(parser)
    args = parser.parse_args(argv)
    meta = _docs.run_meta(_docs.command_line("cli_latency", argv))
    rows = measure(args)
    section, missed = render(args, rows, meta)
    print(section)
    if not args.print_only:
        _docs.write_section(args.doc, section, MARK_START, MARK_END)
    return _docs.target_status(missed, args.fail_on_target)


if __name__ == "__main__":
    sys.exit(main())
