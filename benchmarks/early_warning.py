"""Prospective early-warning benchmark: the real CLI, run as a new user would run it.

Run from the project root::

    .venv/bin/python -m benchmarks.early_warning           # full run
    .venv/bin/python -m benchmarks.early_warning --quick   # smoke run: 3,000 customers

For each (scenario, customers, seed) the simulator draws a business over 2023-2025, the
tables are cut at a score date (``end - --score-offset-days``, so only rows *before* it
remain), written as Parquet into a throw-away folder, and the installed ``churn`` command
trains and scores on them in that folder (its own MLflow store and Prefect home). The
outputs (``scores.parquet``, ``at_risk.csv``, ``win_back.csv``) are then judged against
the simulator's truth about what happened *after* the score date:

* **gone**: churned before the score date (a retention call comes too late);
* **leaves**: churns in ``[score date, score date + 90 days)`` (the early warnings);
* **recent leaver**: churned in the 182 days before the score date.

CDNOW (the real log in the ``lifetimes`` wheel) is cut at 1998-04-02 the same way;
its truth is "no purchase in [1998-04-02, 1998-07-01)".

Numbers go to stdout, to ``--json`` and to the section of ``--doc`` between
``<!-- early-warning:start -->`` and ``<!-- early-warning:end -->``. After writing, the
script exits 3 when a target in its table is missed (``--no-fail-on-target``: exit 0) and
1 when the CDNOW run failed.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from benchmarks import _docs
from benchmarks._docs import finite, fmt, markdown_table, pct

START_MARKER = "<!-- early-warning:start -->"
END_MARKER = "<!-- early-warning:end -->"

ROOT = Path(__file__).resolve().parents[1]
SIM_START, SIM_END = "2023-01-01", "2025-12-31"
HORIZON_DAYS = 90
RECENT_DAYS = 182
MIN_REASON_COUNT = 20
CONSTANT_REASON = "poor_interaction"
TARGET_SCENARIO, TARGET_CUSTOMERS = "retail", 6000
CDNOW_CUT = "1998-04-02"
CDNOW_TRUTH_END = "1998-07-01"  # exclusive; the log ends 1998-06-30
NO_REASON = "(none)"
MISSING_TEXT = {"", "nan", "none", "<na>", "null", "nat"}

PIPELINE = "pipeline"
BGNBD = "BG/NBD P(no purchase 90d)"
BGNBD_ALIVE = "BG/NBD 1 - P(alive)"
RECENCY = "recency (days since last purchase)"
SCORERS = (PIPELINE, BGNBD, BGNBD_ALIVE, RECENCY)


# --- truth ------------------------------------------------------------------------------


def truth_flags(
    truth: pd.DataFrame,
    score_date: pd.Timestamp,
    horizon_days: int = HORIZON_DAYS,
    recent_days: int = RECENT_DAYS,
) -> pd.DataFrame:
    """Per customer: gone, present, leaves, recent_leaver (bool) and the true reason."""
    t = truth.set_index("customer_id")
    churned = t["churned"].fillna(False).astype(bool)
    date = pd.to_datetime(t["churn_date"])
    upcoming = score_date + pd.Timedelta(days=horizon_days)
    recent = score_date - pd.Timedelta(days=recent_days)
    gone = churned & (date < score_date)
    return pd.DataFrame(
        {
            "gone": gone,
            "present": ~gone,
            "leaves": churned & (date >= score_date) & (date < upcoming),
            "recent_leaver": churned & (date >= recent) & (date < score_date),
            "reason": t["reason"].where(churned),
        },
        index=t.index,
    )


def no_purchase_truth(
    transactions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, ids: pd.Index
) -> pd.Series:
    """True for each of ``ids`` with no purchase (amount > 0) in ``[start, end)``."""
    ts = transactions["timestamp"]
    bought = transactions.loc[(ts >= start) & (ts < end) & (transactions["amount"] > 0)]
    return pd.Series(~ids.isin(bought["customer_id"].unique()), index=ids, name="no_purchase")


# --- measures on frames -----------------------------------------------------------------


def auc_pair(y: pd.Series | np.ndarray, score: pd.Series | np.ndarray) -> dict[str, float]:
    """ROC-AUC and PR-AUC (average precision), NaN for a single class; with n and positives."""
    y = np.asarray(y, dtype=bool)
    score = np.asarray(score, dtype=float)
    both = 0 < y.sum() < len(y)
    return {
        "roc_auc": float(roc_auc_score(y, score)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, score)) if both else math.nan,
        "n": int(len(y)),
        "positives": int(y.sum()),
    }


def status_of(scores: pd.DataFrame) -> pd.Series:
    """The ``status`` column of scores.parquet by customer_id; everybody active if absent."""
    index = pd.Index(scores["customer_id"])
    if "status" not in scores.columns:
        return pd.Series("active", index=index, name="status")
    return pd.Series(scores["status"].astype(str).to_numpy(), index=index, name="status")


TRUTHS = ("gone", "present")


def status_split(status: pd.Series, gone: pd.Series) -> dict[str, Any]:
    """Counts per status, status x truth counts, and how well ``lapsed`` matches gone."""
    gone = gone.reindex(status.index).fillna(False).astype(bool)
    lapsed = status == "lapsed"
    truth = np.where(gone, "gone", "present")
    confusion = pd.crosstab(status.rename("status"), pd.Series(truth, index=status.index))
    return {
        "counts": {k: int(v) for k, v in status.value_counts().sort_index().items()},
        "confusion": {
            s: {t: int(confusion.loc[s, t]) if t in confusion.columns else 0 for t in TRUTHS}
            for s in confusion.index
        },
        "lapsed_truly_gone": _share(gone[lapsed]),
        "gone_marked_lapsed": _share(lapsed[gone]),
    }


def _share(flags: pd.Series) -> float:
    """Mean of a boolean series; NaN when empty."""
    return float(flags.astype(bool).mean()) if len(flags) else math.nan


def share_gone(listed_ids: Iterable[str], gone: pd.Series) -> float:
    """Share of a list's customers who had already churned (NaN for an empty list)."""
    ids = pd.Index(pd.unique(pd.Series(list(listed_ids), dtype=object)))
    return _share(gone.reindex(ids).fillna(False))


def leaver_recall(leaver_ids: Iterable[str], listed_ids: Iterable[str]) -> float:
    """Share of the actual leavers that are on the list (NaN when nobody leaves)."""
    leavers = pd.Index(pd.unique(pd.Series(list(leaver_ids), dtype=object)))
    return _share(pd.Series(leavers.isin(list(listed_ids)), index=leavers))


def reason_given(predicted: pd.Series) -> pd.Series:
    """True where a reason is given: not null, not empty, not the text of a null."""
    text = predicted.astype(object).astype(str).str.strip().str.lower()
    return predicted.notna() & ~text.isin(MISSING_TEXT)


def clean_reasons(predicted: pd.Series) -> pd.Series:
    """Predicted reasons with every kind of missing value as ``(none)``."""
    return predicted.astype(object).where(reason_given(predicted), NO_REASON)


def reason_confusion(true: pd.Series, predicted: pd.Series) -> pd.DataFrame:
    """Counts, truth reasons as rows and predicted reasons (or ``(none)``) as columns."""
    pred = clean_reasons(predicted.reindex(true.index))
    table = pd.crosstab(true.rename("truth"), pred.rename("predicted"))
    return table.astype(int)


def reason_measures(
    true: pd.Series,
    predicted: pd.Series,
    min_count: int = MIN_REASON_COUNT,
    constant: str = CONSTANT_REASON,
) -> dict[str, Any]:
    """How well the predicted top reasons name the true ones, on the same rows.

    ``true`` and ``predicted`` are aligned by index (a customer without a prediction
    counts as no reason given). Macro recall averages the per-reason recall over the true
    reasons with at least ``min_count`` customers.
    """
    pred = predicted.reindex(true.index)
    given = reason_given(pred)
    right = given & (pred.astype(object) == true.astype(object))
    per_reason = {}
    for reason, rows in true.groupby(true, sort=True).groups.items():
        per_reason[str(reason)] = {
            "n": int(len(rows)),
            "recall": float(right.loc[rows].mean()),
        }
    eligible = {r: v["recall"] for r, v in per_reason.items() if v["n"] >= min_count}
    return {
        "n": int(len(true)),
        "given_share": _share(given),
        "accuracy": _share(right),
        "constant_accuracy": _share(true == constant),
        "per_reason": per_reason,
        "macro_recall": float(np.mean(list(eligible.values()))) if eligible else math.nan,
        "macro_reasons": sorted(eligible),
        "min_count": int(min_count),
        "confusion": reason_confusion(true, pred),
    }


def list_reason_accuracy(true: pd.Series, listed: pd.DataFrame) -> dict[str, float]:
    """Reason accuracy on the judged customers who are on a list (its own top_reason)."""
    if listed.empty or "top_reason" not in listed.columns:
        return {"n": 0, "accuracy": math.nan}
    pred = listed.drop_duplicates("customer_id").set_index("customer_id")["top_reason"]
    rows = true.loc[true.index.isin(pred.index)]
    if rows.empty:
        return {"n": 0, "accuracy": math.nan}
    p = pred.reindex(rows.index)
    right = reason_given(p) & (p.astype(object) == rows.astype(object))
    return {"n": int(len(rows)), "accuracy": float(right.mean())}


TOP_SHARE = 0.2


def caught_in_top(
    leaves: pd.Series, score: pd.Series, ids: pd.Index, share: float = TOP_SHARE
) -> float:
    """Share of the leavers among ``ids`` ranked in the top ``share`` of ``ids`` by score
    (ties by id; a missing score ranks last)."""
    frame = pd.DataFrame(
        {"score": score.reindex(ids).to_numpy(float), "leaves": leaves.reindex(ids).to_numpy()},
        index=ids,
    ).fillna({"score": -np.inf})
    if not frame["leaves"].any():
        return math.nan
    ranked = frame.sort_values("score", ascending=False, kind="stable")
    top = ranked.head(int(math.ceil(share * len(ranked))))
    return float(top["leaves"].sum() / frame["leaves"].sum())


def recency_days(transactions: pd.DataFrame, score_date: pd.Timestamp, ids: pd.Index) -> pd.Series:
    """Days from the last purchase (amount > 0) before the score date; NaN if none."""
    ts = transactions["timestamp"]
    rows = transactions.loc[(ts < score_date) & (transactions["amount"] > 0)]
    last = rows.groupby("customer_id")["timestamp"].max()
    days = (score_date - last).dt.total_seconds() / 86400.0
    return days.reindex(ids).rename("recency_days")


def ranking_block(
    y: pd.Series, scorers: dict[str, pd.Series], rows: pd.Index
) -> dict[str, dict[str, float]]:
    """ROC-AUC / PR-AUC of each scorer on ``rows`` (missing scores rank as riskiest)."""
    out = {}
    target = y.reindex(rows).fillna(False).astype(bool)
    for name, score in scorers.items():
        s = score.reindex(rows).astype(float)
        s = s.fillna(s.max() if s.notna().any() else 0.0)
        out[name] = auc_pair(target, s)
    return out


# --- one run, judged --------------------------------------------------------------------


@dataclass
class Outputs:
    """What ``churn score`` wrote, read back."""

    scores: pd.DataFrame
    at_risk: pd.DataFrame
    win_back: pd.DataFrame
    has_status: bool
    has_win_back: bool


def read_outputs(out_dir: Path) -> Outputs:
    scores = pd.read_parquet(out_dir / "scores.parquet")
    scores["customer_id"] = scores["customer_id"].astype(str)
    at_risk = _read_list(out_dir / "at_risk.csv")
    win_back = _read_list(out_dir / "win_back.csv")
    return Outputs(
        scores=scores,
        at_risk=at_risk,
        win_back=win_back,
        has_status="status" in scores.columns,
        has_win_back=(out_dir / "win_back.csv").exists(),
    )


def _read_list(path: Path) -> pd.DataFrame:
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame({"customer_id": pd.Series([], dtype=object)})
    frame = pd.read_csv(path, dtype={"customer_id": str})
    return frame


def evaluate_simulated(
    out: Outputs,
    flags: pd.DataFrame,
    baselines: dict[str, pd.Series],
    min_reason_count: int = MIN_REASON_COUNT,
) -> dict[str, Any]:
    """Every measure of one simulated run, from the CLI's outputs and the truth flags."""
    scores = out.scores.set_index("customer_id")
    ids = scores.index
    f = flags.reindex(ids)
    if f["gone"].isna().any():
        raise ValueError("scores.parquet holds customers the truth does not know")
    f = f.astype({"gone": bool, "present": bool, "leaves": bool, "recent_leaver": bool})
    status = status_of(out.scores)
    scorers = {PIPELINE: scores["churn_probability"], **baselines}
    present = ids[f["present"].to_numpy()]
    present_active = present[(status.reindex(present) == "active").to_numpy()]

    at_risk_ids = out.at_risk["customer_id"].astype(str)
    win_back_ids = out.win_back["customer_id"].astype(str)
    leavers = ids[f["leaves"].to_numpy()]
    judged = f.loc[f["recent_leaver"] | f["leaves"], "reason"]
    reasons = reason_measures(judged, scores["top_reason"], min_reason_count)
    return {
        "scored": int(len(ids)),
        "has_status": out.has_status,
        "has_win_back": out.has_win_back,
        "overall": ranking_block(f["gone"] | f["leaves"], scorers, ids),
        "early_present": ranking_block(f["leaves"], scorers, present),
        "early_present_active": ranking_block(f["leaves"], scorers, present_active),
        "caught_top20": {
            name: caught_in_top(f["leaves"], score, present, TOP_SHARE)
            for name, score in scorers.items()
        },
        "status": status_split(status, f["gone"]),
        "lists": {
            "at_risk_size": int(len(at_risk_ids)),
            "win_back_size": int(len(win_back_ids)),
            "at_risk_gone": share_gone(at_risk_ids, f["gone"]),
            "win_back_gone": share_gone(win_back_ids, f["gone"]),
            "leavers": int(len(leavers)),
            "leavers_on_at_risk": leaver_recall(leavers, at_risk_ids),
            "leavers_on_either": leaver_recall(leavers, pd.concat([at_risk_ids, win_back_ids])),
        },
        "reasons": reasons,
        "reasons_at_risk": list_reason_accuracy(judged, out.at_risk),
        "reasons_win_back": list_reason_accuracy(judged, out.win_back),
    }


def evaluate_cdnow(
    out: Outputs, no_purchase: pd.Series, baselines: dict[str, pd.Series]
) -> dict[str, Any]:
    """Status split and early warning among active customers, truth = no purchase."""
    scores = out.scores.set_index("customer_id")
    status = status_of(out.scores)
    truth = no_purchase.reindex(scores.index).fillna(True).astype(bool)
    active = scores.index[(status == "active").to_numpy()]
    scorers = {PIPELINE: scores["churn_probability"], **baselines}
    return {
        "scored": int(len(scores)),
        "has_status": out.has_status,
        "has_win_back": out.has_win_back,
        "status_counts": {k: int(v) for k, v in status.value_counts().sort_index().items()},
        "no_purchase_share_active": _share(truth.reindex(active)),
        "early_active": ranking_block(truth, scorers, active),
        "overall": ranking_block(truth, scorers, scores.index),
        "at_risk_size": int(len(out.at_risk)),
        "win_back_size": int(len(out.win_back)),
    }


# --- targets ----------------------------------------------------------------------------


def targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The benchmark's targets for one run: value, threshold, pass."""
    r = run["reasons"]
    checks = [
        ("overall ROC-AUC >= 0.90", run["overall"][PIPELINE]["roc_auc"], 0.90, ">="),
        (
            "early-warning ROC-AUC (present) >= 0.85",
            run["early_present"][PIPELINE]["roc_auc"],
            0.85,
            ">=",
        ),
        ("share of at_risk.csv already gone <= 0.10", run["lists"]["at_risk_gone"], 0.10, "<="),
        ("share of recent + upcoming leavers with a reason >= 0.70", r["given_share"], 0.70, ">="),
        (
            "reason accuracy >= constant guess + 0.10",
            r["accuracy"],
            r["constant_accuracy"] + 0.10,
            ">=",
        ),
        (
            f"macro recall >= 0.6 (reasons with >= {r['min_count']} leavers)",
            r["macro_recall"],
            0.6,
            ">=",
        ),
    ]
    out = []
    for name, value, threshold, op in checks:
        ok = (value >= threshold if op == ">=" else value <= threshold) if finite(value) else False
        out.append({"target": name, "value": value, "threshold": threshold, "pass": bool(ok)})
    return out


# --- running the CLI --------------------------------------------------------------------


class CliError(RuntimeError):
    """A ``churn`` command failed; the message holds its output."""


def churn_executable() -> Path:
    beside = Path(sys.executable).with_name("churn")
    return beside if beside.exists() else ROOT / ".venv" / "bin" / "churn"


def isolated_env(tmp: Path) -> dict[str, str]:
    """The user's environment with the pipeline's state pointed into ``tmp``."""
    env = dict(os.environ)
    env.pop("CHURN_DATABASE_URL", None)  # would turn the file paths into table names
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}",
        PREFECT_HOME=str(tmp / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        OMP_WAIT_POLICY="PASSIVE",
    )
    return env


def run_cli(args: Sequence[str], tmp: Path) -> tuple[float, str]:
    """Run ``churn ARGS`` in ``tmp``; return wall seconds and stdout, raise on failure."""
    command = [str(churn_executable()), *map(str, args)]
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=tmp, env=isolated_env(tmp), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(
            f"$ {' '.join(command)}\n--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
        )
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        why = errors[-1] if errors else done.stderr.strip()[-2000:]
        raise CliError(f"`churn {args[0]}` exited {done.returncode}: {why}")
    return seconds, done.stdout


def write_tables(tables: dict[str, pd.DataFrame | None], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in tables.items():
        if frame is not None:
            paths[name] = folder / f"{name}.parquet"
            frame.to_parquet(paths[name], index=False)
    return paths


@contextmanager
def run_folder(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A fresh temporary folder, removed afterwards unless ``keep``."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        if keep:
            print(f"kept {folder}", flush=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def train_and_score(
    tables: dict[str, pd.DataFrame | None], score_date: pd.Timestamp, tmp: Path
) -> tuple[Outputs, dict[str, float]]:
    """``churn train`` then ``churn score`` on ``tables`` in ``tmp``; outputs and timings."""
    paths = write_tables(tables, tmp / "input")
    inputs: list[str] = []
    for name in ("transactions", "interactions", "customers", "subscriptions"):
        if name in paths:
            inputs += [f"--{name}", str(paths[name])]
    out_dir = tmp / "out"
    train_s, _ = run_cli(["train", *inputs], tmp)
    score_s, _ = run_cli(
        ["score", *inputs, "--score-date", f"{score_date:%Y-%m-%d}", "--out", str(out_dir)], tmp
    )
    return read_outputs(out_dir), {"train_seconds": train_s, "score_seconds": score_s}


# --- baselines --------------------------------------------------------------------------


def baseline_scores(
    transactions: pd.DataFrame, score_date: pd.Timestamp, ids: pd.Index
) -> dict[str, pd.Series]:
    """BG/NBD (as ``benchmarks/quality.py`` fits it) and recency for ``ids``."""
    from benchmarks import quality  # heavy (models, matplotlib): only when scoring
    from models import btyd

    known = btyd.summarise_rfm(transactions, score_date, quality.TIME_UNIT_DAYS).index
    with_purchase = ids[ids.isin(known)]
    no_purchase, dead, _ = quality.bgnbd_scores(
        transactions, score_date, with_purchase, HORIZON_DAYS
    )
    return {
        BGNBD: no_purchase.reindex(ids),
        BGNBD_ALIVE: dead.reindex(ids),
        RECENCY: recency_days(transactions, score_date, ids),
    }


# --- the runs ---------------------------------------------------------------------------


def scenario_supported() -> bool:
    from simulation.retail import simulate

    return "scenario" in inspect.signature(simulate).parameters


def score_date_for(end: str, offset_days: int) -> pd.Timestamp:
    return (pd.Timestamp(end) - pd.Timedelta(days=offset_days)).normalize()


def run_simulated(
    scenario: str, n_customers: int, seed: int, offset_days: int, keep: bool = False
) -> dict[str, Any]:
    from simulation.retail import as_of, simulate

    started = time.perf_counter()
    kwargs = {"scenario": scenario} if scenario_supported() else {}
    business = simulate(n_customers=n_customers, seed=seed, start=SIM_START, end=SIM_END, **kwargs)
    score_date = score_date_for(SIM_END, offset_days)
    cut = as_of(business, score_date)
    tables = {
        "transactions": cut.transactions,
        "interactions": cut.interactions,
        "customers": cut.customers,
        # a business that records subscriptions hands them over (the subscription scenario)
        "subscriptions": getattr(cut, "subscriptions", None),
    }
    with run_folder("early_warning_", keep) as folder:
        out, timing = train_and_score(tables, score_date, folder)
    ids = pd.Index(out.scores["customer_id"])
    flags = truth_flags(business.truth, score_date)
    result = evaluate_simulated(out, flags, baseline_scores(cut.transactions, score_date, ids))
    return {
        "data": "simulator",
        "scenario": scenario,
        "customers": n_customers,
        "seed": seed,
        "score_date": f"{score_date:%Y-%m-%d}",
        **timing,
        **result,
        "seconds": time.perf_counter() - started,
    }


def run_cdnow(keep: bool = False) -> dict[str, Any]:
    from simulation import cdnow

    started = time.perf_counter()
    tx = cdnow.load_cdnow()
    cut_date = pd.Timestamp(CDNOW_CUT)
    before = tx.loc[tx["timestamp"] < cut_date].reset_index(drop=True)
    with run_folder("early_warning_cdnow_", keep) as folder:
        out, timing = train_and_score({"transactions": before}, cut_date, folder)
    ids = pd.Index(out.scores["customer_id"])
    truth = no_purchase_truth(tx, cut_date, pd.Timestamp(CDNOW_TRUTH_END), ids)
    result = evaluate_cdnow(out, truth, baseline_scores(before, cut_date, ids))
    return {
        "data": "cdnow",
        "score_date": CDNOW_CUT,
        **timing,
        **result,
        "seconds": time.perf_counter() - started,
    }


def run_key(run: dict[str, Any]) -> str:
    if run["data"] == "cdnow":
        return "CDNOW"
    return f"{run['scenario']}, {run['customers']:,}, seed {run['seed']}"


# --- rendering --------------------------------------------------------------------------


def ranking_rows(runs: Sequence[dict[str, Any]], block: str) -> list[list[object]]:
    rows = []
    for run in runs:
        for name, m in run[block].items():
            rows.append([run_key(run), name, m["n"], m["positives"], m["roc_auc"], m["pr_auc"]])
    return rows


RANK_HEADER = ("run", "score", "customers", "positives", "ROC-AUC", "PR-AUC")


def target_runs(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Retail runs at 6,000 customers; failing that, the smallest retail size run."""
    retail = [r for r in runs if r["data"] == "simulator" and r["scenario"] == TARGET_SCENARIO]
    chosen = [r for r in retail if r["customers"] == TARGET_CUSTOMERS]
    if not chosen and retail:
        smallest = min(r["customers"] for r in retail)
        chosen = [r for r in retail if r["customers"] == smallest]
    return chosen


def render(
    sim: Sequence[dict[str, Any]],
    cdnow_run: dict[str, Any] | None,
    meta: dict[str, Any],
) -> str:
    notes = "\n".join(f"- {n}" for n in meta["notes"]) or "- none"
    parts = [
        START_MARKER,
        "## Prospective early warning (the CLI as a new user runs it)",
        _docs.produced_line(meta, f"wall time {meta['wall_minutes']:.1f} min"),
        "Each run: the simulator draws a business over "
        f"{SIM_START}..{SIM_END}; every table is cut to rows before the score date "
        f"(end - {meta['offset_days']} days); the installed `churn train` and `churn score "
        "--score-date` run on the cut tables as Parquet in a fresh folder (own MLflow store "
        "and Prefect home); their outputs are judged against the simulator's truth. "
        "*Gone*: churned before the score date. *Present*: not gone. *Leaves*: churns in "
        f"[score date, score date + {HORIZON_DAYS} days). *Recent leaver*: churned in the "
        f"{RECENT_DAYS} days before the score date. *Overall*: churn_probability against "
        "gone-or-leaves over everybody scored. *Early warning*: churn_probability against "
        "leaves among present customers (and among present customers with status "
        "`active`). *Status*: the `status` column of scores.parquet. *Reasons*: top_reason "
        "against the true reason over scored recent and upcoming leavers; a missing reason "
        f"counts as wrong; the constant guess is `{CONSTANT_REASON}`; macro recall averages "
        f"the recall of true reasons with >= {MIN_REASON_COUNT} such customers. *Baselines* "
        "on the same rows: BG/NBD fitted on every purchase before the score date "
        "(`benchmarks/quality.py`'s `bgnbd_scores`, weeks), and days since the last purchase. "
        f"CDNOW: cut at {CDNOW_CUT}, truth = no purchase in [{CDNOW_CUT}, {CDNOW_TRUTH_END}).",
        f"Notes:\n{notes}",
    ]
    if sim:
        parts += _render_sim(sim)
    if cdnow_run is not None:
        parts += _render_cdnow(cdnow_run)
    parts.append(END_MARKER)
    return "\n\n".join(parts) + "\n"


Column = tuple[str, Callable[[dict[str, Any]], object]]


def _status(key: str, truth: str | None = None) -> Callable[[dict[str, Any]], object]:
    """A count of the status split: customers with status ``key`` (and ``truth``)."""
    if truth is None:
        return lambda r: r["status"]["counts"].get(key, 0)
    return lambda r: r["status"]["confusion"].get(key, {}).get(truth, 0)


def _list_accuracy(key: str) -> Callable[[dict[str, Any]], object]:
    return lambda r: f"{pct(r[key]['accuracy'])} of {r[key]['n']:,}"


# one row per run in each table: (column title, the cell of a run)
RUN_COLUMNS: tuple[Column, ...] = (
    ("run", run_key),
    ("score date", lambda r: r["score_date"]),
    ("scored", lambda r: r["scored"]),
    ("train s", lambda r: round(r["train_seconds"])),
    ("score s", lambda r: round(r["score_seconds"])),
    ("run s", lambda r: round(r["seconds"])),
)
STATUS_COLUMNS: tuple[Column, ...] = (
    ("run", run_key),
    ("status column", lambda r: "yes" if r["has_status"] else "absent: all active"),
    ("active", _status("active")),
    ("lapsed", _status("lapsed")),
    ("active & gone", _status("active", "gone")),
    ("lapsed & gone", _status("lapsed", "gone")),
    ("lapsed & present", _status("lapsed", "present")),
    ("lapsed truly gone", lambda r: pct(r["status"]["lapsed_truly_gone"])),
    ("gone marked lapsed", lambda r: pct(r["status"]["gone_marked_lapsed"])),
)
LIST_COLUMNS: tuple[Column, ...] = (
    ("run", run_key),
    ("at_risk size", lambda r: r["lists"]["at_risk_size"]),
    ("at_risk already gone", lambda r: pct(r["lists"]["at_risk_gone"])),
    (
        "win_back size",
        lambda r: r["lists"]["win_back_size"] if r["has_win_back"] else "absent",
    ),
    ("win_back already gone", lambda r: pct(r["lists"]["win_back_gone"])),
    ("leavers", lambda r: r["lists"]["leavers"]),
    ("leavers on at_risk", lambda r: pct(r["lists"]["leavers_on_at_risk"])),
    ("leavers on at_risk or win_back", lambda r: pct(r["lists"]["leavers_on_either"])),
)
REASON_COLUMNS: tuple[Column, ...] = (
    ("run", run_key),
    ("judged", lambda r: r["reasons"]["n"]),
    ("reason given", lambda r: pct(r["reasons"]["given_share"])),
    ("accuracy", lambda r: pct(r["reasons"]["accuracy"])),
    (f"constant `{CONSTANT_REASON}`", lambda r: pct(r["reasons"]["constant_accuracy"])),
    ("macro recall", lambda r: fmt(r["reasons"]["macro_recall"])),
    ("reasons in macro", lambda r: ", ".join(r["reasons"]["macro_reasons"]) or "none"),
    ("accuracy on at_risk", _list_accuracy("reasons_at_risk")),
    ("accuracy on win_back", _list_accuracy("reasons_win_back")),
)


def runs_table(runs: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """A table with one row per run and one column per ``(title, cell)`` in ``columns``."""
    return markdown_table([t for t, _ in columns], [[cell(r) for _, cell in columns] for r in runs])


def _render_sim(sim: Sequence[dict[str, Any]]) -> list[str]:
    parts = ["### Targets"]
    rows = []
    for run in target_runs(sim):
        for t in targets(run):
            shown = fmt(t["value"])
            status = _docs.verdict(t["pass"])
            rows.append([run_key(run), t["target"], shown, fmt(t["threshold"]), status])
    parts.append(markdown_table(("run", "target", "value", "threshold", "status"), rows))
    caught = [r for r in sim if "caught_top20" in r]
    if caught:
        parts.append("### Leavers caught in the top 20% (present customers, by each score)")
        names = list(caught[0]["caught_top20"])
        parts.append(
            markdown_table(
                ("run", *names),
                [[run_key(r), *(pct(r["caught_top20"][n]) for n in names)] for r in caught],
            )
        )
    parts += ["### Runs", runs_table(sim, RUN_COLUMNS)]
    for title, block in (
        ("Overall (gone or leaves, everybody scored)", "overall"),
        ("Early warning (leaves, among present customers)", "early_present"),
        (
            "Early warning (leaves, among present customers with status active)",
            "early_present_active",
        ),
    ):
        parts += [f"### {title}", markdown_table(RANK_HEADER, ranking_rows(sim, block))]
    parts += ["### Status split (status x truth)", runs_table(sim, STATUS_COLUMNS)]
    parts += ["### Lists", runs_table(sim, LIST_COLUMNS)]
    parts += ["### Reasons (recent and upcoming leavers)", runs_table(sim, REASON_COLUMNS)]
    reasons = sorted({k for r in sim for k in r["reasons"]["per_reason"]})
    rows = []
    for r in sim:
        per = r["reasons"]["per_reason"]
        cells = [f"{pct(per[k]['recall'])} ({per[k]['n']:,})" if k in per else "-" for k in reasons]
        rows.append([run_key(r), *cells])
    parts += ["Recall per true reason (customers):", markdown_table(("run", *reasons), rows)]
    for r in target_runs(sim)[:1]:
        confusion = r["reasons"]["confusion"]
        parts.append(f"Confusion, {run_key(r)} (truth rows, predicted columns):")
        parts.append(
            markdown_table(
                ("truth", *confusion.columns),
                [[i, *map(int, row)] for i, row in confusion.iterrows()],
            )
        )
    return parts


def _render_cdnow(run: dict[str, Any]) -> list[str]:
    if "error" in run:
        return ["### CDNOW", f"**failed**: {run['error']}"]
    counts = ", ".join(f"{k}: {v:,}" for k, v in run["status_counts"].items())
    return [
        "### CDNOW",
        f"Scored {run['scored']:,} customers (status column "
        f"{'present' if run['has_status'] else 'absent: all active'}; {counts}); "
        f"at_risk.csv {run['at_risk_size']:,}, win_back.csv "
        f"{run['win_back_size']:,}{'' if run['has_win_back'] else ' (absent)'}; "
        f"no purchase in the window: {pct(run['no_purchase_share_active'])} of the active; "
        f"train {run['train_seconds']:.0f} s, score {run['score_seconds']:.0f} s.",
        "Early warning (no purchase, among active customers):",
        markdown_table(RANK_HEADER, ranking_rows([run], "early_active")),
    ]


def summary_lines(run: dict[str, Any]) -> list[str]:
    if run["data"] == "cdnow":
        if "error" in run:
            return [f"CDNOW: FAILED: {run['error']}"]
        e = run["early_active"]
        return [
            f"CDNOW: scored {run['scored']:,} status {run['status_counts']}, "
            f"train {run['train_seconds']:.0f} s, score {run['score_seconds']:.0f} s",
            *(
                f"  early (active) {n}: ROC {fmt(m['roc_auc'])} PR {fmt(m['pr_auc'])}"
                for n, m in e.items()
            ),
        ]
    li, m, s = run["lists"], run["reasons"], run["status"]
    lines = [
        f"{run_key(run)} (score date {run['score_date']}): scored {run['scored']:,}, "
        f"train {run['train_seconds']:.0f} s, score {run['score_seconds']:.0f} s, "
        f"run {run['seconds']:.0f} s",
        f"  status: {s['counts']} (column {'present' if run['has_status'] else 'ABSENT'}); "
        f"lapsed truly gone {pct(s['lapsed_truly_gone'])}, "
        f"gone marked lapsed {pct(s['gone_marked_lapsed'])}",
    ]
    for label, block in (
        ("overall", "overall"),
        ("early (present)", "early_present"),
        ("early (present, active)", "early_present_active"),
    ):
        for name, v in run[block].items():
            lines.append(
                f"  {label:24s} {name:36s} ROC {fmt(v['roc_auc'])} PR {fmt(v['pr_auc'])} "
                f"(n {v['n']:,}, pos {v['positives']:,})"
            )
    if "caught_top20" in run:
        lines.append(
            "  leavers (present) caught in the top 20%: "
            + ", ".join(f"{k} {pct(v)}" for k, v in run["caught_top20"].items())
        )
    lines += [
        f"  at_risk {li['at_risk_size']:,} ({pct(li['at_risk_gone'])} gone); win_back "
        f"{li['win_back_size']:,} ({pct(li['win_back_gone'])} gone; file "
        f"{'present' if run['has_win_back'] else 'ABSENT'}); leavers {li['leavers']:,}: "
        f"{pct(li['leavers_on_at_risk'])} on at_risk, {pct(li['leavers_on_either'])} on either",
        f"  reasons ({m['n']:,} judged): given {pct(m['given_share'])}, accuracy "
        f"{pct(m['accuracy'])} vs constant {pct(m['constant_accuracy'])}, macro recall "
        f"{fmt(m['macro_recall'])} over {m['macro_reasons']}; on at_risk "
        f"{pct(run['reasons_at_risk']['accuracy'])} of {run['reasons_at_risk']['n']}, "
        f"on win_back {pct(run['reasons_win_back']['accuracy'])} of "
        f"{run['reasons_win_back']['n']}",
        "  recall per reason: "
        + ", ".join(f"{k} {pct(v['recall'])} ({v['n']})" for k, v in m["per_reason"].items()),
    ]
    return lines


# --- files ------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """Results as plain JSON: frames as nested dicts, NaN as null."""
    if isinstance(value, pd.DataFrame):
        return {str(i): {str(c): int(v) for c, v in row.items()} for i, row in value.iterrows()}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# --- main -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[6000, 20000, 5000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12])
    parser.add_argument("--scenarios", nargs="+", default=["retail", "hazard"])
    parser.add_argument("--score-offset-days", type=int, default=120)
    parser.add_argument("--quick", action="store_true", help="3,000 customers, 1 seed, retail")
    parser.add_argument("--doc", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--json", type=Path, default=Path("data/bench/early_warning.json"))
    parser.add_argument("--no-cdnow", action="store_true")
    parser.add_argument("--keep-tmp", action="store_true", help="keep each run's folder")
    _docs.add_target_flag(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.seeds, args.scenarios = [3000], args.seeds[:1], ["retail"]
        args.no_cdnow = True
    return args


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    command = _docs.command_line("early_warning", argv)
    notes: list[str] = []
    scenarios = list(args.scenarios)
    if not scenario_supported():
        dropped = [s for s in scenarios if s != "retail"]
        scenarios = ["retail"]
        notes.append(
            "`simulation.retail.simulate` takes no `scenario` argument yet: ran its only "
            "(retail) business" + (f"; skipped {', '.join(dropped)}" if dropped else "")
        )
        print(f"note: {notes[-1]}", flush=True)
    printed = len(notes)

    sim = []
    for scenario in scenarios:
        for n in args.customers:
            for seed in args.seeds:
                run = run_simulated(scenario, n, seed, args.score_offset_days, args.keep_tmp)
                print("\n".join(summary_lines(run)), flush=True)
                sim.append(run)
    cdnow_run = None
    if not args.no_cdnow:
        try:
            cdnow_run = run_cdnow(args.keep_tmp)
        except CliError as exc:  # keep the simulator's numbers; exit non-zero below
            cdnow_run = {"data": "cdnow", "error": str(exc).splitlines()[0]}
        print("\n".join(summary_lines(cdnow_run)), flush=True)

    runs = [*sim, *([cdnow_run] if cdnow_run else [])]
    if any(not r.get("has_status", True) for r in runs):
        notes.append("scores.parquet has no `status` column: everybody counted as active")
    if any(not r.get("has_win_back", True) for r in runs):
        notes.append("no win_back.csv was written: counted as an empty list")
    if args.quick:
        notes.append(
            "--quick smoke run: targets are judged on the smallest retail run, "
            f"not on {TARGET_CUSTOMERS:,} customers"
        )
    for note in notes[printed:]:
        print(f"note: {note}")

    rows = [(run_key(r), t) for r in target_runs(sim) for t in targets(r)]
    for key, t in rows:
        print(f"{'PASS' if t['pass'] else 'FAIL'}  {key}: {t['target']}: {fmt(t['value'])}")
    wall = time.perf_counter() - started
    meta = {
        **_docs.run_meta(command),
        "wall_minutes": wall / 60,
        "offset_days": args.score_offset_days,
        "notes": notes,
    }
    _docs.write_section(args.doc, render(sim, cdnow_run, meta), START_MARKER, END_MARKER)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": meta,
        "runs": runs,
        "targets": [{"run": k, **t} for k, t in rows],
    }
    args.json.write_text(json.dumps(to_json(payload), indent=2) + "\n")
    print(f"wrote {args.doc} and {args.json} in {wall / 60:.1f} min")
    missed = [f"{key}: {t['target']}: {fmt(t['value'])}" for key, t in rows if not t["pass"]]
    status = _docs.target_status(missed, args.fail_on_target)
    return 1 if cdnow_run is not None and "error" in cdnow_run else status


if __name__ == "__main__":
    raise SystemExit(main())
