"""Speed benchmark of the churn pipeline at 100k, 300k and 1M customers (issue 6).

Usage, from the project root::

    .venv/bin/python -m benchmarks.speed                      # 100k, 300k, 1M; 3 runs each
    .venv/bin/python -m benchmarks.speed --runs 3,1,1         # runs per size
    .venv/bin/python -m benchmarks.speed --quick              # 20k, 50k smoke run
    .venv/bin/python -m benchmarks.speed --sizes 100000,300000 --runs 5

Data comes from the simulator in bulk mode (``benchmarks/_bulk.py``: shards of 100k
customers, ~30 transactions and ~56 interactions each), cached under ``--data-dir``.
Every stage runs in a fresh ``spawn`` child process that loads its inputs (not timed),
then runs the timed section; the child reports wall time and the peak resident memory of
the timed section (Linux ``VmHWM``, reset at its start) and the memory its inputs already
held. The parent stops a child whose memory crosses ``--memory-cap-gb`` (or leaves the
machine with under 1 GB), and reports that instead of a time.

Stages: reading + validation (``pipelines.catalog.read_tables`` on Parquet), feature
building (``features.build.build_features`` at one cutoff), training
(``models.training.fit_classifier``, ``hist``, early stopping), scoring
(``predict_proba``), the list (``models.scoring.score_customers`` as the nightly flow
runs it: every customer scored, those at or above the risk threshold explained, streamed
in chunks), explaining everyone (``explain_all=True``, timed on ``--explain-rows`` rows and
scaled), writing the list (``catalog.write_atomic``).
References in the same run: the RFM core features in hand-written DuckDB SQL and in a
plain pandas ``groupby().apply()`` (``tests/reference/rfm.py``, which the unit tests check
against the pipeline); XGBoost's TreeSHAP against ``shap.TreeExplainer``.

Results go to ``--data-dir/results-*.json`` and into ``docs/benchmarks.md`` between the
``<!-- speed:start -->`` and ``<!-- speed:end -->`` markers (the rest of the file is kept).
After writing, the script exits 3 when a target in its table is not met
(``--no-fail-on-target``: exit 0).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import multiprocessing as mp
import os
import re
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import _docs
from tests.reference.rfm import RFM_CORE, customer_rfm

ROOT = Path(__file__).resolve().parents[1]
FULL_SIZES = (100_000, 300_000, 1_000_000)
QUICK_SIZES = (20_000, 50_000)
GB = 1e9
DAY = pd.Timedelta(days=1)
MARK_START, MARK_END = "<!-- speed:start -->", "<!-- speed:end -->"

# --- references: the RFM core (tests.reference.rfm.RFM_CORE) by DuckDB -----------------

DUCKDB_RFM = """
WITH tx AS (
    SELECT customer_id, "timestamp" AS ts, amount
    FROM transactions WHERE "timestamp" < $cutoff
),
active AS (
    SELECT DISTINCT customer_id FROM tx
    WHERE amount > 0 AND ts >= $cutoff - INTERVAL 365 DAY
),
tx_active AS (SELECT * FROM tx SEMI JOIN active USING (customer_id)),
purchases AS (
    SELECT customer_id,
        (epoch($cutoff) - epoch(max(ts))) / 86400.0 AS days_since_last_purchase,
        (epoch($cutoff) - epoch(min(ts))) / 86400.0 AS tenure_days,
        count(*)::DOUBLE AS lifetime_purchases,
        count(*) FILTER (WHERE ts >= $cutoff - INTERVAL 30 DAY)::DOUBLE AS purchases_30d,
        count(*) FILTER (WHERE ts >= $cutoff - INTERVAL 90 DAY)::DOUBLE AS purchases_90d,
        count(*) FILTER (WHERE ts >= $cutoff - INTERVAL 365 DAY)::DOUBLE AS purchases_365d,
        avg(amount) AS avg_order_value
    FROM tx_active WHERE amount > 0 GROUP BY customer_id
),
spend AS (  -- spend keeps refunds, as the pipeline does
    SELECT customer_id,
        coalesce(sum(amount) FILTER (WHERE ts >= $cutoff - INTERVAL 90 DAY), 0) AS spend_90d,
        coalesce(sum(amount) FILTER (WHERE ts >= $cutoff - INTERVAL 365 DAY), 0) AS spend_365d
    FROM tx_active GROUP BY customer_id
),
days AS (SELECT DISTINCT customer_id, date_trunc('day', ts) AS day FROM tx_active WHERE amount > 0),
gaps AS (
    SELECT customer_id,
        date_diff('day', lag(day) OVER (PARTITION BY customer_id ORDER BY day), day) AS gap
    FROM days
),
cadence AS (
    SELECT customer_id,
        avg(gap) AS mean_gap_days,
        CASE WHEN count(gap) = 1 THEN 0.0 ELSE stddev_samp(gap) END AS gap_std_days,
        max(gap)::DOUBLE AS max_gap_days
    FROM gaps GROUP BY customer_id
)
SELECT p.customer_id, days_since_last_purchase, tenure_days, lifetime_purchases,
    purchases_30d, purchases_90d, purchases_365d, spend_90d, spend_365d, avg_order_value,
    mean_gap_days, gap_std_days, max_gap_days
FROM purchases p JOIN spend USING (customer_id) JOIN cadence USING (customer_id)
ORDER BY p.customer_id
"""


def _active_rows(tx: pd.DataFrame, cutoff: pd.Timestamp) -> tuple[pd.DataFrame, pd.Index]:
    from features.labels import active_customers
    from features.windows import before_cutoff

    cut = before_cutoff(tx, cutoff)
    active = active_customers(cut, cutoff)
    return cut.loc[cut["customer_id"].isin(active)], active


def _max_abs_diff(a: pd.DataFrame, b: pd.DataFrame) -> float:
    a, b = a.align(b, join="outer")
    both_nan = a.isna() & b.isna()
    diff = (a - b).abs().where(~both_nan, 0.0)
    return float(diff.fillna(np.inf).to_numpy().max()) if len(diff) else 0.0


# --- measurement in child processes --------------------------------------------------


def _status_kb(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


class Clock:
    """Times one section and its peak RSS (VmHWM is reset at the start)."""

    def __init__(self) -> None:
        self.seconds = math.nan
        self.peak_gb = math.nan
        self.inputs_gb = math.nan
        self._start = 0.0

    def __enter__(self) -> Clock:
        gc.collect()
        self.inputs_gb = _status_kb("VmRSS") * 1024 / GB
        try:  # "5" resets the peak-RSS high-water mark (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
        except OSError:
            pass
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self.peak_gb = _status_kb("VmHWM") * 1024 / GB


@dataclass(frozen=True)
class Context:
    """What a stage needs to find its inputs; pickled into the child."""

    customers: int
    paths: dict[str, str]
    work: str
    score_cutoff: str
    first_run: bool
    chunk_rows: int
    shap_rows: int
    apply_customers: int
    explain_rows: int

    def path(self, name: str) -> Path:
        return Path(self.paths[name]) if name in self.paths else Path(self.work) / name


def _validated(ctx: Context, *tables: str) -> list[pd.DataFrame]:
    return [pd.read_parquet(ctx.path(f"validated_{t}")) for t in tables]


def _model(ctx: Context) -> Any:
    from xgboost import XGBClassifier

    model = XGBClassifier()
    model.load_model(ctx.path("model.json"))
    return model


def stage_read(ctx: Context, clock: Clock) -> dict:
    from pipelines.catalog import read_tables

    paths = [ctx.path(f"raw_{t}") for t in ("transactions", "interactions", "customers")]
    with clock:
        tables = read_tables(*paths)
    return {"rows": sum(tables.rows_read.values()), "unit": "rows of 3 tables"}


def stage_features(ctx: Context, clock: Clock) -> dict:
    from features.build import build_features

    tx, ix, cu = _validated(ctx, "transactions", "interactions", "customers")
    with clock:
        features = build_features(tx, ctx.score_cutoff, ix, cu)
    if ctx.first_run:
        _write_score_set(ctx, features)
    return {
        "rows": len(tx) + len(ix),
        "unit": "tx + interactions",
        "note": f"{len(tx):,} tx, {len(ix):,} interactions -> {len(features):,} x "
        f"{features.shape[1]} features",
    }


def _write_score_set(ctx: Context, features: pd.DataFrame) -> None:
    """Customers active at the score date, topped up to one row per customer (see prepare)."""
    meta = json.loads(ctx.path("meta.json").read_text())
    valid = pd.read_parquet(ctx.path("valid.parquet")).drop(columns="churned")
    extra = valid.iloc[: max(0, ctx.customers - len(features))]
    extra.index = extra.index + "@" + meta["cutoffs"]["validation_cutoff"]
    pd.concat([features, extra]).to_parquet(ctx.path("score_set.parquet"))
    meta["active_at_score_date"] = len(features)
    ctx.path("meta.json").write_text(json.dumps(meta))


def stage_rfm_ours(ctx: Context, clock: Clock) -> dict:
    from features.rfm import rfm_features

    (tx,) = _validated(ctx, "transactions")
    cutoff = pd.Timestamp(ctx.score_cutoff)
    with clock:
        rows, active = _active_rows(tx, cutoff)
        rfm = rfm_features(rows, cutoff).reindex(active)
    if ctx.first_run:
        rfm[list(RFM_CORE)].to_parquet(ctx.path("rfm_ours.parquet"))
    return {"rows": len(tx), "unit": "transactions", "note": f"{rfm.shape[1]} RFM features"}


def stage_rfm_duckdb(ctx: Context, clock: Clock) -> dict:
    import duckdb

    (tx,) = _validated(ctx, "transactions")
    con = duckdb.connect()
    con.register("transactions", tx)
    cutoff = pd.Timestamp(ctx.score_cutoff).to_pydatetime()
    with clock:
        rfm = con.execute(DUCKDB_RFM, {"cutoff": cutoff}).df().set_index("customer_id")
    note = f"{con.execute('SELECT current_setting(?)', ['threads']).fetchone()[0]} threads"
    ours_path = ctx.path("rfm_ours.parquet")
    if ours_path.exists():
        ours = pd.read_parquet(ours_path)
        rfm.index = rfm.index.astype(ours.index.dtype)
        same = rfm.index.equals(ours.index)
        note += f"; same customers as ours: {same}; max |diff| {_max_abs_diff(rfm, ours):.1e}"
    return {"rows": len(tx), "unit": "transactions", "note": note}


def stage_rfm_pandas_apply(ctx: Context, clock: Clock) -> dict:
    (tx,) = _validated(ctx, "transactions")
    cutoff = pd.Timestamp(ctx.score_cutoff)
    with clock:
        start = time.perf_counter()
        rows, active = _active_rows(tx, cutoff)
        shared = time.perf_counter() - start
        sample = active
        if len(active) > ctx.apply_customers:
            picked = np.random.default_rng(0).choice(len(active), ctx.apply_customers, False)
            sample = active[np.sort(picked)]
            rows = rows.loc[rows["customer_id"].isin(sample)]
        start = time.perf_counter()
        rfm = rows.groupby("customer_id")[["timestamp", "amount"]].apply(customer_rfm, cutoff)
        applied = time.perf_counter() - start
    scale = len(active) / len(sample)
    result = {"rows": len(tx), "unit": "transactions"}
    note = f"apply on {len(sample):,} of {len(active):,} customers"
    if scale > 1:
        # groupby().apply() costs one Python call per customer: time grows linearly
        result["seconds"] = shared + applied * scale
        note += f", extrapolated x{scale:.1f} (measured {clock.seconds:.1f} s)"
    ours_path = ctx.path("rfm_ours.parquet")
    if ours_path.exists():
        ours = pd.read_parquet(ours_path).reindex(sample)
        note += f"; max |diff| vs ours {_max_abs_diff(rfm[list(RFM_CORE)], ours):.1e}"
    result["note"] = note
    return result


def stage_train(ctx: Context, clock: Clock) -> dict:
    from models.training import fit_classifier

    train = pd.read_parquet(ctx.path("train.parquet"))
    valid = pd.read_parquet(ctx.path("valid.parquet"))
    x, y = train.drop(columns="churned"), train["churned"]
    xv, yv = valid.drop(columns="churned"), valid["churned"]
    with clock:
        model = fit_classifier(x, y, xv, yv)
    if ctx.first_run:
        model.save_model(ctx.path("model.json"))
    trees = model.get_booster().num_boosted_rounds()
    return {
        "rows": len(x),
        "unit": "training rows",
        "note": f"{x.shape[1]} features, {trees} trees (best {model.best_iteration}), "
        f"{len(xv):,} validation rows",
    }


def stage_score(ctx: Context, clock: Clock) -> dict:
    from models.scoring import align_features

    model = _model(ctx)
    x = align_features(pd.read_parquet(ctx.path("score_set.parquet")), model)
    with clock:
        model.predict_proba(x)
    return {"rows": len(x), "unit": "customers"}


def _score_args(ctx: Context, features: pd.DataFrame) -> tuple:
    from models.playbook import load_playbook
    from models.reasons import load_reason_map

    scored_at = pd.Timestamp("2026-01-01 02:00", tz="UTC")
    return (_model(ctx), features, load_reason_map(), load_playbook(), 90, "bench", scored_at)


def stage_score_explain_chunked(ctx: Context, clock: Clock) -> dict:
    """The nightly list: models.scoring.score_customers on every customer, as shipped."""
    from models.scoring import score_customers
    from models.thresholds import RISK_THRESHOLD

    everyone = pd.read_parquet(ctx.path("score_set.parquet"))
    args = _score_args(ctx, everyone)
    with clock:
        scored = score_customers(*args, chunk_rows=ctx.chunk_rows)
    output_gb = scored.memory_usage(deep=True).sum() / GB
    explained = int(scored["top_reason"].notna().sum())
    note = (
        f"chunks of {ctx.chunk_rows:,}, output {output_gb:.2f} GB; SHAP for the "
        f"{explained:,} customers at or above the {RISK_THRESHOLD} risk threshold "
        f"({explained / len(scored):.0%}), {int(scored['risk_rank'].notna().sum()):,} ranked"
    )
    if ctx.first_run:
        scored.to_parquet(ctx.path("scored.parquet"), index=False)
        sample = _score_args(ctx, everyone.iloc[:20_000])
        same = score_customers(*sample).equals(score_customers(*sample, chunk_rows=3_000))
        note += f"; 3k-row chunks equal one chunk on {len(sample[1]):,} rows: {same}"
    return {"rows": len(everyone), "unit": "customers", "output_gb": output_gb, "note": note}


def stage_explain_everyone(ctx: Context, clock: Clock) -> dict:
    """``--explain-all``: SHAP, reasons and drivers for every customer, timed on a sample."""
    from models.scoring import score_customers

    everyone = pd.read_parquet(ctx.path("score_set.parquet"))
    features = everyone.iloc[: ctx.explain_rows] if ctx.explain_rows else everyone
    with clock:
        score_customers(*_score_args(ctx, features), explain_all=True, chunk_rows=ctx.chunk_rows)
    result: dict[str, Any] = {"rows": len(everyone), "unit": "customers"}
    scale = len(everyone) / len(features)
    if scale > 1:
        # every row costs the same (row-wise SHAP dominates)
        result["seconds"] = clock.seconds * scale
        result["note"] = (
            f"score_customers(explain_all=True) timed on the first {len(features):,} of "
            f"{len(everyone):,} rows, scaled x{scale:.1f} (measured {clock.seconds:.0f} s); "
            "peak RSS is for those rows"
        )
    return result


def stage_write(ctx: Context, clock: Clock) -> dict:
    from models.scoring import at_risk_list
    from pipelines.catalog import write_atomic

    scored = pd.read_parquet(ctx.path("scored.parquet"))
    listed = at_risk_list(scored)
    out = ctx.path("list")
    with clock:
        write_atomic({"at_risk_csv": listed, "at_risk": listed, "scores": scored}, out)
    return {
        "rows": len(scored),
        "unit": "customers",
        "note": f"scores.parquet ({len(scored):,}) + at_risk csv/parquet ({len(listed):,})",
    }


def _shap_rows(ctx: Context) -> tuple[Any, pd.DataFrame]:
    from models.scoring import align_features

    model = _model(ctx)
    x = align_features(pd.read_parquet(ctx.path("score_set.parquet")), model)
    return model, x.iloc[: ctx.shap_rows]


def stage_shap_xgboost(ctx: Context, clock: Clock) -> dict:
    from models.explain import contributions

    model, x = _shap_rows(ctx)
    with clock:
        contributions(model.get_booster(), x)
    return {"rows": len(x), "unit": "customers", "note": "pred_contribs"}


def stage_shap_package(ctx: Context, clock: Clock) -> dict:
    import shap
    import xgboost as xgb

    from models.explain import contributions

    model, x = _shap_rows(ctx)
    with clock:
        values = np.asarray(shap.TreeExplainer(model).shap_values(x))
    booster = model.get_booster()
    ours = contributions(booster, x).to_numpy()
    diff = float(np.abs(values - ours).max())
    # shap, predict_proba and models.explain all stop at the early-stopping iteration;
    # the raw pred_contribs on those trees is the second reference
    kept = (0, model.best_iteration + 1)
    same_trees = booster.predict(xgb.DMatrix(x), pred_contribs=True, iteration_range=kept)
    diff_same = float(np.abs(values - same_trees[:, :-1]).max())
    return {
        "rows": len(x),
        "unit": "customers",
        "note": f"shap {shap.__version__}; max |diff| vs models.explain.contributions {diff:.1e}, "
        f"vs pred_contribs on the {kept[1]} trees predict_proba uses {diff_same:.1e} "
        f"(booster has {booster.num_boosted_rounds()})",
        "max_abs_diff": diff,
        "max_abs_diff_same_trees": diff_same,
    }


def _shard_tables(ctx: Context) -> Iterator[tuple[pd.DataFrame, ...]]:
    """The validated tables shard by shard (each shard holds whole customers)."""
    from benchmarks import _bulk

    for shard in _bulk.shards(ctx.customers, Path(ctx.work).parent / "shards"):
        yield tuple(pd.read_parquet(shard.path(table, validated=True)) for table in _bulk.TABLES)


def stage_features_by_shard(ctx: Context, clock: Clock) -> dict:
    """``build_features`` shard by shard (100k customers each), reading each shard's files.

    Every feature depends on one customer's rows only (the dask engine relies on the
    same property), so the concatenation is the whole-table result; memory holds one
    shard's tables at a time plus the growing feature table.
    """
    from features.build import build_features

    rows = 0
    with clock:
        parts = []
        for tx, ix, cu in _shard_tables(ctx):
            rows += len(tx) + len(ix)
            parts.append(build_features(tx, ctx.score_cutoff, ix, cu))
            del tx, ix, cu
        features = pd.concat(parts).sort_index()
    if ctx.first_run and not ctx.path("score_set.parquet").exists():
        _write_score_set(ctx, features)
    return {
        "rows": rows,
        "unit": "tx + interactions",
        "note": f"{len(parts)} shard(s), Parquet reads included -> {len(features):,} x "
        f"{features.shape[1]} features",
    }


def prepare_model_inputs(ctx: Context, clock: Clock) -> dict:
    """Training, validation and scoring sets for the model stages (not a timed stage).

    Training rows: features + labels at the two latest training cutoffs (stacked, as the
    train flow does), sampled down to one row per simulated customer. Scoring rows: every
    customer active at the score date, topped up to one row per simulated customer with
    rows from the validation cutoff (ids suffixed), so "1M" means 1M rows scored. Built
    shard by shard, which gives the whole-table result (see stage_features_by_shard)
    in a fraction of the memory.
    """
    from features.build import build_features
    from models.training import choose_cutoffs, labelled_features, stack_cutoffs

    n = ctx.customers
    trains, valids, scores = [], [], []
    counts = {"transactions": 0, "interactions": 0, "customers": 0}
    with clock:
        for tx, ix, cu in _shard_tables(ctx):
            counts["transactions"] += len(tx)
            counts["interactions"] += len(ix)
            counts["customers"] += len(cu)
            # every shard covers the same period, so the cutoffs are the same in each
            cutoffs = choose_cutoffs(
                pd.Timestamp("2021-07-01"), _last_day(tx), n_train=2, label_days=180
            )
            # the production label (active customers, confirmed departures) reads 180 days
            args = (ix, cu, 90, 365)
            x, y = stack_cutoffs(tx, cutoffs.train, *args)
            train = x.assign(churned=y).reset_index()
            trains.append(train.sample(min(len(cu), len(train)), random_state=0))
            xv, yv = labelled_features(tx, cutoffs.validation, *args)
            valids.append(xv.assign(churned=yv))
            scores.append(build_features(tx, ctx.score_cutoff, ix, cu))
            del tx, ix, cu, x, y
        pd.concat(trains).set_index("customer_id").to_parquet(ctx.path("train.parquet"))
        pd.concat(valids).sort_index().to_parquet(ctx.path("valid.parquet"))
    meta = {"cutoffs": {k: str(v) for k, v in cutoffs.as_params().items()}, **counts}
    ctx.path("meta.json").write_text(json.dumps(meta))
    _write_score_set(ctx, pd.concat(scores).sort_index())
    return {"rows": n, "unit": "customers", **meta}


def _last_day(tx: pd.DataFrame) -> pd.Timestamp:
    # the business's last day, not the shard's: every shard runs to the same end
    from benchmarks import _bulk

    return max(tx["timestamp"].max(), pd.Timestamp(_bulk.END) - DAY)


STAGES = {
    "prepare": prepare_model_inputs,
    "read": stage_read,
    "features": stage_features,
    "features_by_shard": stage_features_by_shard,
    "rfm_ours": stage_rfm_ours,
    "rfm_duckdb": stage_rfm_duckdb,
    "rfm_pandas_apply": stage_rfm_pandas_apply,
    "train": stage_train,
    "score": stage_score,
    "score_explain_chunked": stage_score_explain_chunked,
    "explain_everyone": stage_explain_everyone,
    "write": stage_write,
    "shap_xgboost": stage_shap_xgboost,
    "shap_package": stage_shap_package,
}
PER_SIZE = [name for name in STAGES if name not in ("prepare", "shap_xgboost", "shap_package")]
REPORTED = PER_SIZE
LABELS = {
    "read": "reading + validation",
    "features": "feature building (all features)",
    "features_by_shard": "feature building, shard by shard (100k customers each)",
    "rfm_ours": "ref: ours, RFM family only",
    "rfm_duckdb": "ref: DuckDB SQL, RFM core",
    "rfm_pandas_apply": "ref: pandas groupby().apply(), RFM core",
    "train": "training (hist, early stopping)",
    "score": "scoring (predict_proba)",
    "score_explain_chunked": "the list: score_customers (all scored, at-risk explained), chunked",
    "explain_everyone": "explaining everyone (--explain-all): SHAP, reasons, drivers, ranking",
    "write": "writing the list",
    "shap_xgboost": "TreeSHAP: XGBoost pred_contribs",
    "shap_package": "TreeSHAP: shap.TreeExplainer",
}


def _child(name: str, ctx: Context, conn: Any) -> None:
    try:
        clock = Clock()
        info = STAGES[name](ctx, clock)
        result = {
            "ok": True,
            "seconds": clock.seconds,
            "peak_gb": clock.peak_gb,
            "inputs_gb": clock.inputs_gb,
            "load_average": os.getloadavg()[0],
            **info,
        }
    except BaseException as exc:  # noqa: BLE001 - reported, not hidden
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:400]}
    conn.send(result)
    conn.close()


def run_stage(name: str, ctx: Context, cap_gb: float) -> dict:
    """Run one stage in a fresh spawn process; stop it if memory runs out."""
    import psutil

    spawn = mp.get_context("spawn")
    receive, send = spawn.Pipe(duplex=False)
    process = spawn.Process(target=_child, args=(name, ctx, send), daemon=True)
    process.start()
    send.close()
    watched = psutil.Process(process.pid)
    polled_peak = 0.0
    result: dict | None = None
    while result is None:
        if receive.poll(0.2):
            result = receive.recv()
            break
        if not process.is_alive():
            result = {"ok": False, "error": f"child exited with code {process.exitcode}"}
            break
        try:
            rss = watched.memory_info().rss / GB
        except psutil.NoSuchProcess:
            continue
        polled_peak = max(polled_peak, rss)
        low = psutil.virtual_memory().available / GB < 1.0
        if rss > cap_gb or low:
            process.kill()
            why = f"memory cap {cap_gb:.0f} GB" if rss > cap_gb else "machine memory low"
            result = {"ok": False, "error": f"stopped at {rss:.1f} GB RSS ({why})"}
    process.join()
    result["process_peak_gb"] = polled_peak
    return result


# --- orchestration ---------------------------------------------------------------------


@dataclass
class Plan:
    sizes: list[int]
    runs: list[int]  # per size, in the order of ``sizes``
    data_dir: Path
    chunk_rows: int
    shap_rows: int
    apply_customers: int
    explain_rows: int
    memory_cap_gb: float
    command: str
    prepare_only: bool = False
    note: str = ""
    stages: list[str] | None = None
    resume: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)


def _log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def run(plan: Plan) -> dict:
    from benchmarks import _bulk

    results: dict[str, Any] = {
        "sizes": {},
        "started": datetime.now(UTC).isoformat(),
        "machine": machine_info(),
    }
    if plan.resume:
        # add this invocation's measurements to an earlier results file
        results = json.loads(plan.resume.read_text())
        results.setdefault("commands", [results["plan"]["command"]]).append(plan.command)
    largest = max(plan.sizes)
    runs_of = dict(zip(plan.sizes, plan.runs, strict=True))
    for n in sorted(plan.sizes):
        folder = plan.data_dir / f"n{n}"
        start = time.perf_counter()
        paths = _bulk.make_business(n, folder)
        generated = time.perf_counter() - start
        _log(f"{n:,} customers: data ready in {generated:.0f} s")
        base = dict(
            customers=n,
            paths={k: str(v) for k, v in paths.items()},
            work=str(folder),
            score_cutoff="",
            first_run=True,
            chunk_rows=plan.chunk_rows,
            shap_rows=plan.shap_rows,
            apply_customers=plan.apply_customers,
            explain_rows=plan.explain_rows,
        )
        meta_path = folder / "meta.json"
        if plan.prepare_only and meta_path.exists():
            continue
        score_cutoff = _score_cutoff(paths)
        base["score_cutoff"] = score_cutoff
        if not meta_path.exists():
            prep = run_stage("prepare", Context(**base), plan.memory_cap_gb)
            if not prep["ok"]:
                raise RuntimeError(f"preparing {n:,}: {prep['error']}")
            _log(f"{n:,}: training/scoring sets prepared in {prep['seconds']:.0f} s")
        if plan.prepare_only:
            continue
        runs = runs_of[n]
        size = results["sizes"].get(str(n)) or {
            "runs": runs,
            "generate_seconds": generated,
            "stages": {},
        }
        for run_number in range(runs):
            ctx = Context(**{**base, "first_run": run_number == 0})
            stages = PER_SIZE + (["shap_xgboost", "shap_package"] if n == largest else [])
            if plan.stages:
                stages = [name for name in plan.stages if name in STAGES]
            for name in stages:
                result = run_stage(name, ctx, plan.memory_cap_gb)
                size["stages"].setdefault(name, []).append(result)
                shown = f"{result['seconds']:.1f} s" if result["ok"] else result["error"]
                _log(f"{n:,} run {run_number + 1}/{runs} {name}: {shown}")
            size["meta"] = json.loads(meta_path.read_text())
            results["sizes"][str(n)] = size
            _save(plan, results)
    results["finished"] = datetime.now(UTC).isoformat()
    _save(plan, results)
    return results


def _score_cutoff(paths: dict[str, Path]) -> str:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ts = pq.read_table(paths["validated_transactions"], columns=["timestamp"])["timestamp"]
    last = pd.Timestamp(pc.max(ts).as_py()).normalize()
    return str((last + DAY).date())


def _save(plan: Plan, results: dict) -> None:
    if not plan.resume:
        results["plan"] = {k: str(v) for k, v in asdict(plan).items() if k != "results"}
        results["plan"]["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "(default)")
    path = plan.data_dir / f"results-{results['started'][:19].replace(':', '')}.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    plan.results = results


# --- the report ------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def _summary(results: list[dict]) -> dict:
    ok = [r for r in results if r["ok"]]
    if not ok:
        return {"ok": False, "error": results[0]["error"] if results else "not run"}
    seconds = [r["seconds"] for r in ok]
    return {
        "ok": True,
        "seconds": _median(seconds),
        "min": min(seconds),
        "max": max(seconds),
        "runs": len(ok),
        "rows": ok[0]["rows"],
        "unit": ok[0]["unit"],
        "peak_gb": _median([r["peak_gb"] for r in ok]),
        "inputs_gb": _median([r["inputs_gb"] for r in ok]),
        "note": ok[0].get("note", ""),
        "raw": ok,
    }


def _size_summary(size: dict) -> dict:
    out = {name: _summary(rs) for name, rs in size["stages"].items()}
    return {name: out[name] for name in [*REPORTED, *STAGES] if name in out}


def _fmt_gb(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def _fmt_s(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return (
        f"{seconds:.2f}"
        if seconds < 10
        else f"{seconds:.1f}"
        if seconds < 100
        else f"{seconds:.0f}"
    )


def _fmt_rate(rows: float, seconds: float) -> str:
    if not seconds or math.isnan(seconds):
        return "-"
    rate = rows / seconds
    if rate >= 1e6:
        return f"{rate / 1e6:.2f} M"
    return f"{rate / 1e3:.0f} k" if rate >= 1e4 else f"{rate:,.0f}"


def _size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def _features_stage(size: dict) -> str:
    """The whole-table feature stage where it ran, else the shard-by-shard one."""
    if any(r["ok"] for r in size["stages"].get("features", [])):
        return "features"
    return "features_by_shard"


def _load(size: dict) -> float:
    return _median([r.get("load_average", math.nan) for rs in size["stages"].values() for r in rs])


def _ratio_per_run(size: dict, top: str, bottom: str) -> float:
    """Median over runs of top/bottom, each ratio from one run (same conditions)."""
    pairs = zip(size["stages"].get(top, []), size["stages"].get(bottom, []), strict=False)
    ratios = [a["seconds"] / b["seconds"] for a, b in pairs if a["ok"] and b["ok"]]
    return _median(ratios)


def _growth_exponent(points: list[tuple[int, float]]) -> float:
    """Slope of log(time) against log(customers): 1.0 is linear."""
    points = [(n, t) for n, t in points if t and not math.isnan(t)]
    if len(points) < 2:
        return math.nan
    x = np.log([n for n, _ in points])
    y = np.log([t for _, t in points])
    return float(np.polyfit(x, y, 1)[0])


def render(results: dict) -> str:
    sizes = sorted(int(n) for n in results["sizes"])
    largest = sizes[-1]
    summary = {n: _size_summary(results["sizes"][str(n)]) for n in sizes}
    machine = results["machine"]
    lines = [
        MARK_START,
        "## Speed (issue 6)",
        "",
        f"Produced by `{'` then `'.join(results.get('commands', [results['plan']['command']]))}` "
        f"on {results['started'][:10]} "
        f"({results['started'][11:16]} UTC start, {results.get('finished', '?')[11:16]} end). "
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['ram_gb']:.0f} GB RAM, "
        f"Python {machine['python']}, {machine['versions']}. The machine is shared: other "
        "jobs ran at the same time (load averages below), so times are medians and each "
        "ratio is taken within one run. XGBoost ran with "
        f"`OMP_WAIT_POLICY={results['plan'].get('omp_wait_policy', '?')}` (see notes).",
        "",
        *([results["plan"]["note"], ""] if results["plan"].get("note") else []),
        "Data: the simulator in bulk mode (`benchmarks/_bulk.py`, shards of 100k customers, "
        "2021-07-01 to 2025-12-31). Every stage runs in a fresh process that loads its inputs "
        "untimed; *peak RSS* is the process's high-water mark during the timed section (its "
        "inputs included), *inputs* what was resident when it began. Rows/s counts the "
        "*rows* column. Training rows: two stacked training cutoffs sampled to one row per "
        "customer; scoring rows: every customer active at the score date topped up to one "
        "row per customer with rows from the validation cutoff.",
        "",
    ]
    for n in sizes:
        size = results["sizes"][str(n)]
        meta = size["meta"]
        lines += [
            f"### {_size_label(n)} customers: {meta['transactions']:,} transactions, "
            f"{meta['interactions']:,} interactions, {meta['active_at_score_date']:,} active "
            f"at the score date ({size['runs']} run{'s' if size['runs'] > 1 else ''}, "
            f"median 1-min load average {_load(size):.1f} on {machine['cores']} cores)",
            "",
            _docs.markdown_table(STAGE_HEADER, _stage_rows(summary[n]), cell=str, align="lrrrrrl"),
            "",
        ]
    growth = []
    for name in REPORTED:
        points = [(n, summary[n].get(name, {}).get("seconds", math.nan)) for n in sizes]
        exponent = f"{_growth_exponent(points):.2f}"
        growth.append([LABELS[name], *(_fmt_s(t) for _, t in points), exponent])
    ratios = []
    for n in sizes:
        size = results["sizes"][str(n)]
        name = _features_stage(size)
        cells = [
            _ratio_per_run(size, "rfm_ours", "rfm_duckdb"),
            _ratio_per_run(size, name, "rfm_duckdb"),
            _ratio_per_run(size, "rfm_ours", "rfm_pandas_apply"),
            _ratio_per_run(size, name, "rfm_pandas_apply"),
        ]
        ratios.append([_size_label(n), *(f"{c:.2f}" for c in cells)])
    lines += [
        "### Growth: median seconds against customers",
        "",
        _docs.markdown_table(
            ["stage", *(_size_label(n) for n in sizes), "exponent"],
            growth,
            cell=str,
            align="l" + "r" * (len(sizes) + 1),
        ),
        "",
        "Exponent: slope of log(time) on log(customers) through the points; 1.00 is "
        "linear, 0.5 would mean 10x the customers costs ~3x the time.",
        "",
        "### Ratios within the same run (median over runs)",
        "",
        _docs.markdown_table(RATIO_HEADER, ratios, cell=str, align="lrrrr"),
        "",
        "The three RFM implementations compute the same core set, checked for equality "
        "(max |diff| in the notes): " + ", ".join(f"`{c}`" for c in RFM_CORE) + ". "
        "*Ours RFM* is the pipeline's own path for that family (cut at the cutoff, active "
        "customers, `features.rfm.rfm_features`, which also computes the 7 other RFM "
        "features); *ours all features* is the full `build_features` (RFM, signals, "
        "interactions: the 44 features the model uses). DuckDB runs the SQL in "
        "`benchmarks/speed.py` over the same in-memory frame on all cores; the pandas "
        "`groupby().apply()` calls one Python function per customer and is timed on a sample "
        "of customers where noted, then scaled linearly (its cost is per customer).",
        "",
    ]
    lines += _shap_lines(results, summary[largest], largest)
    lines += _target_lines(results)
    lines.append(MARK_END)
    return "\n".join(lines) + "\n"


STAGE_HEADER = (
    "stage",
    "rows",
    "median s (min-max)",
    "rows/s",
    "peak RSS GB",
    "inputs GB",
    "notes",
)
RATIO_HEADER = (
    "size",
    "ours RFM / DuckDB",
    "ours all features / DuckDB",
    "ours RFM / pandas apply",
    "ours all features / pandas apply",
)


def _stage_rows(summary: dict) -> list[list[str]]:
    """One row per stage of one size: time, spread, rate, memory and notes."""
    rows = []
    for name, s in summary.items():
        if not s["ok"]:
            rows.append([LABELS[name], "", "**failed**", "", "", "", s["error"]])
            continue
        spread = f"{_fmt_s(s['min'])}-{_fmt_s(s['max'])}" if s["runs"] > 1 else "1 run"
        rows.append(
            [
                LABELS[name],
                f"{s['rows']:,} {s['unit']}",
                f"{_fmt_s(s['seconds'])} ({spread})",
                _fmt_rate(s["rows"], s["seconds"]),
                _fmt_gb(s["peak_gb"]),
                _fmt_gb(s["inputs_gb"]),
                s["note"],
            ]
        )
    return rows


def _early_stopping_text(results: dict) -> str:
    parts = []
    for n in sorted(int(k) for k in results["sizes"]):
        for r in results["sizes"][str(n)]["stages"].get("train", [])[:1]:
            found = re.search(r"(\d+) trees \(best (\d+)\)", r.get("note", ""))
            if found and r["ok"]:
                trees, best = int(found.group(1)), int(found.group(2))
                parts.append(f"{_size_label(n)}: best iteration {best + 1} of {trees} rounds")
    return "Trained models here: " + "; ".join(parts) + "." if parts else ""


def _shap_lines(results: dict, summary: dict, n: int) -> list[str]:
    xgb_s, shap_s = summary.get("shap_xgboost"), summary.get("shap_package")
    if not xgb_s or not shap_s or not xgb_s["ok"] or not shap_s["ok"]:
        return ["### TreeSHAP", "", "not measured", ""]
    diff = max(r["max_abs_diff"] for r in shap_s["raw"])
    same = max(r["max_abs_diff_same_trees"] for r in shap_s["raw"])
    rows = [
        (label, _fmt_s(s["seconds"]), _fmt_rate(s["rows"], s["seconds"]))
        for label, s in (
            ("XGBoost `pred_contribs` (what `models.explain` uses)", xgb_s),
            ("`shap.TreeExplainer(model).shap_values`", shap_s),
        )
    ]
    return [
        f"### TreeSHAP on {xgb_s['rows']:,} rows of the {_size_label(n)} scoring set, same model",
        "",
        _docs.markdown_table(("implementation", "median s", "rows/s"), rows, cell=str, align="lrr"),
        "",
        f"shap / XGBoost time: {shap_s['seconds'] / xgb_s['seconds']:.2f}. Largest absolute "
        f"difference between shap and `models.explain.contributions`: {diff:.1e} "
        f"({'within' if diff <= 1e-4 else 'NOT within'} 1e-4); between shap and XGBoost's "
        f"`pred_contribs` limited to the trees `predict_proba` uses (up to the early-stopping "
        f"iteration): {same:.1e} ({'within' if same <= 1e-4 else 'NOT within'} 1e-4).",
        "",
        "`models.explain.contributions` limits `pred_contribs` to the rounds up to the "
        "early-stopping iteration, the trees `predict_proba` and shap use, so it explains the "
        "model that predicts. " + _early_stopping_text(results),
        "",
    ]


def _target_lines(results: dict) -> list[str]:
    n = max(int(k) for k in results["sizes"])
    caveat = "" if n == 1_000_000 else f" (measured at {_size_label(n)}, not 1M: not a verdict)"
    return [
        f"### Targets{caveat}",
        "",
        _docs.markdown_table(("target", "verdict", "measured"), target_rows(results), cell=str),
        "",
    ]


def target_rows(results: dict) -> list[tuple[str, str, str]]:
    """The targets at the largest size: (target, verdict, measured), verdict ``**met**``,
    ``**not met**`` or a word for a target that is only reported or not measured."""
    sizes = sorted(int(k) for k in results["sizes"])
    summary = {k: _size_summary(results["sizes"][str(k)]) for k in sizes}
    n = sizes[-1]
    at = summary[n]
    label = _size_label(n)
    rows: list[tuple[str, str, str]] = []

    def verdict(ok: bool) -> str:
        return _docs.verdict(ok, (_docs.MET, _docs.NOT_MET))

    def seconds(name: str) -> float:
        s = at.get(name, {})
        return s["seconds"] if s.get("ok") else math.nan

    size = results["sizes"][str(n)]
    whole = at.get("features", {})
    name = _features_stage(size)
    t = seconds(name)
    peak = at.get(name, {}).get("peak_gb", math.nan)
    how = "whole tables" if name == "features" else "shard by shard"
    failed = "" if whole.get("ok") else f"whole tables: {whole.get('error', 'not run')}; "
    rows.append(
        (
            f"features for {label} customers under 60 s",
            verdict(t < 60),
            f"{failed}{how}: {_fmt_s(t)} s ({t / 60:.1f}x the target, {t - 60:+.0f} s)",
        )
    )
    rows.append(
        (
            "... and under 6 GB peak memory",
            verdict(bool(whole.get("ok")) and whole["peak_gb"] < 6),
            f"{failed}{how}: {peak:.1f} GB peak RSS ({peak - 6:+.1f} GB)",
        )
    )
    like = _ratio_per_run(size, "rfm_ours", "rfm_duckdb")
    full = _ratio_per_run(size, name, "rfm_duckdb")
    rows.append(
        (
            "... within 2x of DuckDB on the same RFM features",
            verdict(like <= 2),
            f"ours RFM / DuckDB = {like:.1f}x (all 44 features / DuckDB RFM core = {full:.1f}x)",
        )
    )
    apply_ratio = _ratio_per_run(size, name, "rfm_pandas_apply")
    rows.append(
        (
            "ratio against pandas groupby().apply() (report only)",
            "reported",
            f"ours all features / apply = {apply_ratio:.2f}, ours RFM / apply = "
            f"{_ratio_per_run(size, 'rfm_ours', 'rfm_pandas_apply'):.3f}",
        )
    )
    t = seconds("score_explain_chunked")
    rows.append(
        (
            f"scoring + explaining {label} under 60 s",
            verdict(t < 60),
            f"{_fmt_s(t)} s for the whole list, chunked, explaining the at-risk; "
            f"explaining everyone: {_fmt_s(seconds('explain_everyone'))} s; "
            f"predict_proba alone: {_fmt_s(seconds('score'))} s",
        )
    )
    rows.append(_streaming_row(summary, sizes))
    shap_s = at.get("shap_package", {})
    if shap_s.get("ok"):
        diff = max(r["max_abs_diff"] for r in shap_s["raw"])
        same = max(r["max_abs_diff_same_trees"] for r in shap_s["raw"])
        rows.append(
            (
                "TreeSHAP: XGBoost and shap agree to 1e-4",
                verdict(diff <= 1e-4),
                f"models.explain vs shap: max |diff| {diff:.1e}; on the same trees: {same:.1e}; "
                "shap takes "
                f"{shap_s['seconds'] / seconds('shap_xgboost'):.2f}x XGBoost's time",
            )
        )
    t = seconds("train")
    train_rows = at.get("train", {}).get("rows", 0)
    rows.append(
        (
            f"training on {train_rows:,} rows x all features under 5 minutes (hist)",
            verdict(t < 300),
            f"{_fmt_s(t)} s ({at.get('train', {}).get('note', '')})",
        )
    )
    rows.append(_growth_row(summary, sizes))
    return rows


def _streaming_row(summary: dict, sizes: list[int]) -> tuple[str, str, str]:
    """Chunked scoring: memory above inputs minus the output should stay flat."""
    overheads = []
    for n in sizes:
        s = summary[n].get("score_explain_chunked", {})
        if s.get("ok"):
            output = _median([r["output_gb"] for r in s["raw"]])
            overheads.append((n, s["peak_gb"] - s["inputs_gb"], output))
    if len(overheads) < 2:
        return ("streaming: memory does not grow beyond the output", "not measured", "")
    capped = all(
        "timed on the first" in summary[n].get("score_explain_chunked", {}).get("note", "")
        for n in sizes
    )
    text = "; ".join(
        f"{_size_label(n)}: +{grow:.2f} GB over inputs, output {out:.2f} GB"
        for n, grow, out in overheads
    )
    first, last = overheads[0], overheads[-1]
    beyond_first, beyond_last = first[1] - first[2], last[1] - last[2]
    # flat = what remains after the output grows by less than 1 chunk's worth (0.5 GB)
    ok = beyond_last - beyond_first < 0.5
    verdict = _docs.verdict(ok, (_docs.MET, _docs.NOT_MET))
    if capped:
        # every size explained the same number of rows: flat memory proves nothing yet
        verdict = "**not shown**"
        text += "; the pass was timed on the same number of rows at every size, so this does "
        text += "not yet show memory staying flat as customers grow (by design it holds one "
        text += "chunk's contributions and driver dicts at a time)"
    return (
        "streaming: peak memory grows no more than the output",
        verdict,
        text + f" (beyond output: {beyond_first:.2f} -> {beyond_last:.2f} GB)",
    )


def _growth_row(summary: dict, sizes: list[int]) -> tuple[str, str, str]:
    exponents = {}
    names = ("read", "features", "features_by_shard", "train", "score", "explain_everyone")
    for name in (*names, "score_explain_chunked"):
        points = [(n, summary[n].get(name, {}).get("seconds", math.nan)) for n in sizes]
        exponents[name] = _growth_exponent(points)
    known = [e for e in exponents.values() if not math.isnan(e)]
    ok = bool(known) and all(e <= 1.2 for e in known)
    text = ", ".join(f"{k} {v:.2f}" for k, v in exponents.items())
    verdict = _docs.verdict(ok, (_docs.MET, _docs.NOT_MET))
    return ("growth close to linear (exponent <= 1.2)", verdict, text)


def write_doc(results: dict, doc: Path, fail_on_target: bool) -> int:
    """Render ``results`` into the speed section of ``doc``; the exit status its targets
    call for (see ``_docs.target_status``)."""
    _docs.write_section(doc, render(results), MARK_START, MARK_END)
    _log(f"wrote {doc}")
    missed = [f"{a}: {c}" for a, b, c in target_rows(results) if b == _docs.NOT_MET]
    return _docs.target_status(missed, fail_on_target)


def machine_info() -> dict:
    import dask
    import duckdb
    import psutil
    import shap
    import xgboost

    versions = (
        f"pandas {pd.__version__}, numpy {np.__version__}, xgboost {xgboost.__version__}, "
        f"duckdb {duckdb.__version__}, shap {shap.__version__}, dask {dask.__version__}"
    )
    here = _docs.machine()
    return {
        "cores": here["cores"],
        "cpu": here["cpu"],
        "ram_gb": psutil.virtual_memory().total / GB,
        "python": here["python"],
        "versions": versions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="comma-separated customer counts (default 100k,300k,1M)")
    parser.add_argument("--quick", action="store_true", help="20k and 50k customers, smoke run")
    parser.add_argument(
        "--runs",
        default="3",
        help="runs per size, one number or one per size (e.g. 3,1,1); medians are reported",
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--shap-rows", type=int, default=10_000)
    parser.add_argument(
        "--explain-rows",
        type=int,
        default=50_000,
        help="rows the explain-everyone pass is timed on (scaled up beyond; 0 = all)",
    )
    parser.add_argument("--prepare-only", action="store_true", help="data and sets, no stages")
    parser.add_argument("--note", default="", help="a remark printed in the report")
    parser.add_argument("--stages", help="comma-separated stage names (default: all)")
    parser.add_argument("--resume", type=Path, help="add to this results file and re-render")
    parser.add_argument(
        "--apply-customers",
        type=int,
        default=2_000,
        help="customers the pandas apply() reference is timed on (scaled up beyond)",
    )
    parser.add_argument("--memory-cap-gb", type=float, default=18.0)
    parser.add_argument("--report-only", type=Path, help="re-render the doc from a results file")
    _docs.add_target_flag(parser)
    args = parser.parse_args(argv)

    if args.report_only:
        return write_doc(json.loads(args.report_only.read_text()), args.doc, args.fail_on_target)
    if args.sizes:
        sizes = [int(float(s)) for s in args.sizes.split(",")]
    else:
        sizes = list(QUICK_SIZES if args.quick else FULL_SIZES)
    sizes = sorted(sizes)
    runs = [int(r) for r in str(args.runs).split(",")]
    runs = runs * len(sizes) if len(runs) == 1 else runs
    if len(runs) != len(sizes):
        parser.error(f"--runs has {len(runs)} numbers for {len(sizes)} sizes")
    # libgomp's default busy-waiting makes XGBoost's 2 threads ~10x slower when other
    # processes share the 2 cores (measured: 50 trees on 20k rows 1.1 s vs 11-13 s at load
    # 7); passive waiting measures the code rather than the neighbours. Override freely.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    plan = Plan(
        sizes=sizes,
        runs=runs,
        data_dir=args.data_dir,
        chunk_rows=args.chunk_rows,
        shap_rows=args.shap_rows,
        apply_customers=args.apply_customers,
        explain_rows=args.explain_rows,
        memory_cap_gb=args.memory_cap_gb,
        command=_docs.command_line("speed", argv),
        prepare_only=args.prepare_only,
        note=args.note,
        stages=args.stages.split(",") if args.stages else None,
        resume=args.resume,
    )
    args.data_dir.mkdir(parents=True, exist_ok=True)
    results = run(plan)
    if plan.prepare_only:
        return 0
    return write_doc(results, args.doc, args.fail_on_target)


if __name__ == "__main__":
    raise SystemExit(main())
