"""Prefect flows: build_features, train, score, nightly. Thin wiring around the pure
functions in ``features/`` and ``models/``; I/O goes through ``pipelines.catalog``.

Where each lives: ``train`` in :mod:`pipelines.train_flow`, ``score`` and ``nightly``
(the same flow, with the feature table) in :mod:`pipelines.score_flow`, the tasks they
share in :mod:`pipelines.tasks`, their MLflow steps in :mod:`pipelines.registry`. This
module is the one to import them from.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from prefect import flow, get_run_logger

from features.usage import choose_usage_kinds
from models.reasons import load_reason_map
from pipelines.score_flow import ScoreResult, default_score_date, nightly, score
from pipelines.settings import Inputs
from pipelines.tasks import (
    build_feature_table_at,
    check_destinations,
    database_url,
    load_tables,
    preflight,
    report_observability,
    write_outputs,
)
from pipelines.train_flow import TrainResult, train

__all__ = [
    "ScoreResult",
    "TrainResult",
    "build_features",
    "check_destinations",
    "database_url",
    "default_score_date",
    "load_tables",
    "nightly",
    "preflight",
    "result_json",
    "score",
    "train",
]


@flow(name="build_features")
def build_features(inputs: Inputs, cutoff: str, out_dir: Path, lookback_days: int = 365) -> Path:
    """Feature table for one cutoff -> ``out_dir/features.parquet``."""
    # load_tables is looked up here, in this module, so a test may swap it for a faster one
    tables = load_tables(inputs)
    report_observability(tables, load_reason_map())
    usage_kinds = choose_usage_kinds(tables.interactions)
    features = build_feature_table_at(tables, cutoff, lookback_days, usage_kinds)
    paths = write_outputs({"features": features.reset_index()}, Path(out_dir))
    get_run_logger().info("%d customers -> %s", len(features), paths["features"])
    return paths["features"]


def result_json(result: TrainResult | ScoreResult) -> str:
    """A flow's result as indented JSON (what the CLI prints)."""
    return json.dumps(asdict(result), indent=2, default=str)
