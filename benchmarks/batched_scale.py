"""Whole tables or customer batches at 300k and 1M customers: `churn train` and `churn
nightly` as whole processes, time and peak memory (issue 15's targets).

Usage, from the project root::

    .venv/bin/python -m benchmarks.batched_scale --sizes 300000,1000000 --batches 8 \\
        --work data/bench

For each size, the bulk business (``benchmarks._bulk``: shards of 100k simulated
customers over 4.5 years, ~29 transactions and ~56 interactions each, raw Parquet) is
generated or reused. ``churn train`` runs whole and with ``--batches`` (the xgboost
candidate only, default cutoffs: 4 training cutoffs, validation, holdout), and the two
runs' metrics are checked equal. ``churn nightly`` then runs ``--runs`` times whole and
with ``--batches`` on the batched run's champion, every run a fresh process, and the
scores, both lists and the features are checked equal value for value. Wall time is the
process's; peak memory is each process's kernel high-water mark (``VmHWM``, polled every
0.2 s): the ``churn`` process, and with ``--batches`` its batch processes (and their
forkserver), whose peaks are added up (an upper bound: they peak at different stages),
and the most they held at once (the largest sum of their resident sizes at one poll, no
less than the largest single peak), which the targets read. The Prefect server's process
is not counted.

Every run starts without the batch cache (``DATA_DIR/interim/batches``), so the batched
runs convert their files each time, as a night on the day's new files does.

The medians go to ``docs/benchmarks.md`` between ``<!-- batched-scale:start -->`` and
``<!-- batched-scale:end -->``, with the targets; the script exits 3 when one is missed
(``--no-fail-on-target``: 0).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import time
from datetime import datetime
from pathlib import Path

import pandas as pd

from benchmarks import _bulk, _docs
from benchmarks._process import Run, measure_churn
from pipelines import batch_read

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("scores.parquet", "at_risk.parquet", "win_back.parquet", "features.parquet")
START, END = "<!-- batched-scale:start -->", "<!-- batched-scale:end -->"
STAGES_START, STAGES_END = "<!-- batched-stages:start -->", "<!-- batched-stages:end -->"
# a batched night's stages, each ending at the first run-log line matching its pattern
# after the flow began (the data stages, whose time grows with the customers, first)
STAGES = (
    ("reading and checking the inputs", r"rows read: "),
    ("night facts: features, status, due-day features", r"Task run 'night_facts-\w+' - Fini"),
    ("the list: scores, SHAP, reasons, ranks, groups", r"Task run 'score_night-\w+' - Fini"),
    ("the report and the files", r"Task run 'write_outputs\w*-\w+' - Fini"),
)
DATA_STAGES = len(STAGES)
STAGES += (
    ("the history, drift and the MLflow run", r"Task run 'log_scoring_run-\w+' - Fini"),
    ("the flow (Prefect's run, from its first to its last line)", r"Flow run '.*' - Finished in"),
)
EXPONENT = 1.1  # issue 15: growth exponent of every data stage at most this
_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \| \w+ +\| (.*)$")
# (size, command, limit on peak GB, limit on wall s) for the batched run
TARGETS = (
    (300_000, "nightly", 2.0, 60.0),
    (1_000_000, "nightly", 6.0, 120.0),
    (1_000_000, "train", 8.0, None),
)


def _equal_outputs(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        whole = pd.read_parquet(a / name).drop(columns="scored_at", errors="ignore")
        batched = pd.read_parquet(b / name).drop(columns="scored_at", errors="ignore")
        pd.testing.assert_frame_equal(batched, whole, check_exact=True)


def _cold(store: Path) -> None:
    """No batch cache from an earlier run: every run converts its files, as a night on
    the day's new files does."""
    shutil.rmtree(store / batch_read.CACHE, ignore_errors=True)


def _metrics(store: Path) -> dict:
    """The holdout metrics of the newest run in a store (read through MLflow)."""
    import mlflow

    from pipelines.tracking import local_store

    mlflow.set_tracking_uri(local_store(store)[0])
    runs = mlflow.search_runs(search_all_experiments=True, order_by=["start_time DESC"])
    row = runs.iloc[0]
    return {k[8:]: row[k] for k in runs.columns if k.startswith("metrics.holdout_")}


def measure_size(
    n: int, work: Path, batches: int, runs: int, env: dict
) -> tuple[list[dict], list[dict[str, float]]]:
    """The size's rows (each command and mode) and its batched nights' stages."""
    paths = _bulk.make_business(n, work / f"n{n}")
    files = [f"--{t}={paths[f'raw_{t}']}" for t in _bulk.TABLES]
    config = work / "train.yaml"
    config.write_text("candidates: [xgboost]\n")
    rows = []
    stores = {}
    for mode in ("whole", "batches"):
        store = _store(work, n, mode)
        extra = ["--batches", str(batches)] if mode == "batches" else []
        _cold(store)
        trained = measure_churn(
            ["train", *files, "--data-dir", str(store), "--config", str(config), "--force", *extra],
            env,
        )
        stores[mode] = store
        measured = dict(seconds=trained.seconds, **_peaks(trained))
        rows.append(dict(size=n, command="train", mode=mode, **measured))
        print(json.dumps(rows[-1]), flush=True)
    same_model = _metrics(stores["whole"]) == _metrics(stores["batches"])
    nights: dict[str, list[tuple[float, dict]]] = {"whole": [], "batches": []}
    log = _run_log(stores["batches"])
    stages = []
    for run in range(runs):
        for mode in nights:
            extra = ["--batches", str(batches)] if mode == "batches" else []
            out = ["--out", str(work / f"out-{n}-{mode}-{run}")]
            store = ["--data-dir", str(stores["batches"])]
            _cold(stores["batches"])
            logged = log.stat().st_size if log.is_file() else 0
            night = measure_churn(["nightly", *files, *store, *out, *extra], env)
            if mode == "batches":
                stages += night_stages(log.read_bytes()[logged:].decode())[-1:]
            nights[mode].append((night.seconds, _peaks(night)))
            print(
                json.dumps(
                    dict(size=n, mode=mode, run=run, seconds=night.seconds, **_peaks(night))
                ),
                flush=True,
            )
    _equal_outputs(work / f"out-{n}-whole-0", work / f"out-{n}-batches-0")
    for mode, measured in nights.items():
        seconds = statistics.median(s for s, _ in measured)
        peaks = {k: statistics.median(p[k] for _, p in measured) for k in measured[0][1]}
        rows.append(dict(size=n, command="nightly", mode=mode, seconds=seconds, **peaks))
    for row in rows:
        row["same"] = same_model if row["command"] == "train" else True
    return rows, stages


def _run_log(store: Path) -> Path:
    return store / "logs" / "churn.log"


def _store(work: Path, n: int, mode: str = "batches") -> Path:
    return work / f"store-{n}-{mode}"


def night_stages(
    log: str, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, float]]:
    """Seconds per stage (:data:`STAGES`) of every batched ``nightly`` flow in ``log`` (a
    run log, ``DATA_DIR/logs/churn.log``) that began at or after ``since`` and ended
    before ``until``."""
    runs: list[dict[str, float]] = []
    begun: datetime | None = None
    batched, ends = False, {}
    for line in log.splitlines():
        found = _LINE.match(line)
        if not found:
            continue
        at = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f")
        text = found[2]
        if "Beginning flow run" in text and "for flow 'nightly'" in text:
            begun, batched, ends = at, False, {}
            continue
        if begun is None:
            continue
        batched |= "reading and checking inputs:" in text
        for name, pattern in STAGES:
            if name not in ends and re.search(pattern, text):
                ends[name] = at
        if len(ends) == len(STAGES):
            ended = ends[STAGES[-1][0]]
            if batched and (since is None or begun >= since) and (until is None or ended < until):
                marks = [begun, *(ends[name] for name, _ in STAGES[:-1])]
                runs.append(
                    {
                        name: (ends[name] - start).total_seconds()
                        for (name, _), start in zip(STAGES[:-1], marks, strict=False)
                    }
                    | {STAGES[-1][0]: (ends[STAGES[-1][0]] - begun).total_seconds()}
                )
            begun = None
    return runs


def _median_stages(runs: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(run[name] for run in runs) for name, _ in STAGES}


def render_stages(
    stages: dict[int, dict[str, float]], runs: dict[int, int], meta: dict, how: str
) -> tuple[str, list]:
    """The batched nights' stages per size and each stage's growth exponent between the
    smallest and the largest size (time ~ customers ** exponent)."""
    sizes = sorted(stages)
    small, large = sizes[0], sizes[-1]
    table, missed = [], []
    for i, (name, _) in enumerate(STAGES):
        cells = [f"{stages[n][name]:.1f}" for n in sizes]
        exponent = math.log(stages[large][name] / stages[small][name]) / math.log(large / small)
        data = i < DATA_STAGES
        ok = exponent <= EXPONENT
        if data and not ok:
            missed.append(f"{name}: growth exponent {exponent:.2f} (target <= {EXPONENT})")
        verdict = _docs.verdict(ok, (_docs.MET, _docs.NOT_MET)) if data else "-"
        table.append([name, *cells, f"{exponent:.2f}", verdict])
    header = ["stage", *(f"{n:,} s" for n in sizes), "growth exponent", f"<= {EXPONENT}"]
    section = "\n".join(
        [
            STAGES_START,
            "## Where a batched night's time goes, and how it grows (issue 15)",
            "",
            _docs.produced_line(meta, how),
            "",
            "The `churn nightly --batches` runs above, stage by stage, from the timestamps "
            "of their run log (`DATA_DIR/logs/churn.log`): each stage ends at its task's "
            "last line, the first begins with the flow. Medians of "
            + ", ".join(f"{runs[n]} runs at {n:,}" for n in sizes)
            + ". Growth exponent: log(time ratio) / log(customer ratio) between "
            f"{small:,} and {large:,} customers; the data stages (the first "
            f"{DATA_STAGES}) are held to <= {EXPONENT}. Outside the flow, each run spent "
            "the rest of its wall time starting (imports, Prefect's API, beside each other) "
            "and stopping.",
            "",
            _docs.markdown_table(header, table, cell=str),
            STAGES_END,
            "",
        ]
    )
    return section, missed


def _peaks(run: Run) -> dict[str, float]:
    """The churn process's peak, its batch processes' largest, all their peaks added up,
    and the most they held at once (which the targets read)."""
    workers = [gb for name, gb in run.peaks.items() if name != "client"]
    return dict(
        client=run.peaks["client"],
        worker=max(workers, default=0.0),
        added=sum(run.peaks.values()),
        # no less than one process's exact peak: the polls can miss a short spike
        peak=max(run.at_once, *run.peaks.values()),
    )


def render(rows: list[dict], batches: int, runs: int, meta: dict, wall: float) -> tuple[str, list]:
    frame = pd.DataFrame(rows)
    table = []
    for (size, command), group in frame.groupby(["size", "command"], sort=False):
        whole = group[group["mode"] == "whole"].iloc[0]
        batched = group[group["mode"] == "batches"].iloc[0]
        table.append(
            [
                f"{size:,}",
                f"`churn {command}`",
                f"{whole['seconds']:.0f}",
                f"{whole['peak']:.2f}",
                f"{batched['seconds']:.0f}",
                f"{batched['client']:.2f}",
                f"{batched['worker']:.2f}",
                f"{batched['added']:.2f}",
                f"{batched['peak']:.2f}",
                f"{batched['seconds'] / whole['seconds']:.2f}",
                f"{batched['peak'] / whole['peak']:.2f}",
                "yes" if bool(batched["same"]) else "**no**",
            ]
        )
    header = [
        "customers",
        "command",
        "whole s",
        "whole peak GB",
        f"--batches {batches} s",
        "its process GB",
        "largest batch process GB",
        "their peaks added GB",
        "at once GB",
        "time ratio",
        "peak ratio",
        "same results",
    ]
    targets, missed = [], []
    for size, command, gb, seconds in TARGETS:
        got = frame[(frame["size"] == size) & (frame["command"] == command)]
        got = got[got["mode"] == "batches"]
        if got.empty:
            continue
        row = got.iloc[0]
        ok_gb = row["peak"] <= gb
        ok_s = seconds is None or row["seconds"] <= seconds
        wanted = f"<= {gb} GB" + (f", <= {seconds:.0f} s" if seconds else "")
        measured = f"{row['peak']:.2f} GB, {row['seconds']:.0f} s"
        targets.append(
            [
                f"{size:,}",
                f"`churn {command} --batches`",
                wanted,
                measured,
                _docs.verdict(ok_gb and ok_s, (_docs.MET, _docs.NOT_MET)),
            ]
        )
        if not (ok_gb and ok_s):
            missed.append(f"{size:,} churn {command} --batches: {measured} (target {wanted})")
    section = "\n".join(
        [
            START,
            "## Whole tables or customer batches at scale (issue 15)",
            "",
            _docs.produced_line(meta, f"wall time {wall / 60:.0f} min"),
            "",
            f"Whole processes on the bulk business's raw Parquet files; `churn train` once "
            f"per mode (xgboost candidate, 6 cutoffs), `churn nightly` median of {runs}; "
            "every batched run converts its files into the batch cache (none is kept "
            "between runs, as on a night with new files). "
            "Peaks are each process's `VmHWM`; with `--batches`, the `churn` process, the "
            "largest of its batch processes (one per core, each holding one batch at a "
            "time; and their forkserver) and all of their peaks added up, though they peak "
            "at different stages. At once: the most the run's processes held together, the "
            "largest sum of their resident sizes over the 0.2 s polls (shared pages counted "
            "in each process); the targets and the ratio read it (a single process's "
            "`VmHWM` for whole tables). The Prefect server's process is not counted. "
            "Same results: the two trainings' holdout "
            "metrics are equal, and the two nights' scores, lists and features are equal "
            "value for value.",
            "",
            _docs.markdown_table(header, table, cell=str),
            "",
            _docs.markdown_table(["customers", "run", "target", "measured", ""], targets, cell=str),
            END,
            "",
        ]
    )
    return section, missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="300000,1000000")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--stages-since",
        metavar="'YYYY-MM-DD HH:MM'",
        help="run nothing: the stage section from the batched nights the run logs under "
        "--work hold since then (a run of this script that began then)",
    )
    parser.add_argument(
        "--stages-until",
        metavar="'YYYY-MM-DD HH:MM'",
        help="with --stages-since: only the nights that ended before then",
    )
    _docs.add_target_flag(parser)
    options = parser.parse_args(argv)
    meta = _docs.run_meta(_docs.command_line("batched_scale", argv))
    work = options.work
    sizes = [int(s) for s in options.sizes.split(",")]
    if options.stages_since:
        since, until = (
            datetime.strptime(moment, "%Y-%m-%d %H:%M") if moment else None
            for moment in (options.stages_since, options.stages_until)
        )
        found = {
            n: night_stages(_run_log(_store(work, n)).read_text(), since, until) for n in sizes
        }
        section, missed = render_stages(
            {n: _median_stages(r) for n, r in found.items()},
            {n: len(r) for n, r in found.items()},
            meta,
            f"from the run logs of the runs from {options.stages_since}"
            + (f" to {options.stages_until}" if options.stages_until else ""),
        )
        print(section)
        _docs.write_section(options.doc, section, STAGES_START, STAGES_END)
        return _docs.target_status(missed, options.fail_on_target)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(work / ".prefect"), "OMP_WAIT_POLICY": "PASSIVE"}
    started = time.perf_counter()
    rows, stages = [], {}
    for size in sizes:
        measured, stages[size] = measure_size(size, work, options.batches, options.runs, env)
        rows += measured
    (work / "batched-scale.json").write_text(json.dumps(rows, indent=1))
    wall = time.perf_counter() - started
    section, missed = render(rows, options.batches, options.runs, meta, wall)
    print(section)
    _docs.write_section(options.doc, section, START, END)
    if len(sizes) > 1 and all(stages.values()):
        medians = {n: _median_stages(r) for n, r in stages.items()}
        counts = {n: len(r) for n, r in stages.items()}
        section, slow = render_stages(medians, counts, meta, "the same run as above")
        print(section)
        _docs.write_section(options.doc, section, STAGES_START, STAGES_END)
        missed += slow
    return _docs.target_status(missed, options.fail_on_target)


if __name__ == "__main__":
    raise SystemExit(main())
