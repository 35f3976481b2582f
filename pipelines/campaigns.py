"""The nightly lists' history, and the flow that measures what the calls did.

The logic is in :mod:`models.campaign` (control groups are assigned with the lists, in
:func:`models.nightly.score_night`); this module wires it to the list history
(:func:`pipelines.catalog.read_history`), the output files and MLflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from models.campaign import (
    EVALUATION_COLUMNS,
    OVERALL,
    evaluate_campaigns,
    retention_outcomes,
    with_reach,
)
from pipelines import catalog, tracking
from pipelines.settings import CampaignSettings


@task(retries=2, retry_delay_seconds=[1, 5], cache_policy=NONE)
def write_history(
    listed: pd.DataFrame, win_back: pd.DataFrame, out_dir: Path, cutoff: pd.Timestamp
) -> Path:
    return catalog.write_history({"at_risk": listed, "win_back": win_back}, out_dir, cutoff)


@dataclass(frozen=True)
class CampaignResult:
    listings_measured: int
    data_end: str
    status: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    value_saved: float | None
    outputs: dict[str, str]


def _number(value: object) -> float | None:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return None if missing else float(value)  # type: ignore[arg-type]


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NONE)
def log_campaign_run(
    settings: CampaignSettings, evaluation: pd.DataFrame, measured: int, data_end: str, path: Path
) -> None:
    """One MLflow run per evaluation: the overall effect, and the table as an artifact."""
    tracking.configure(settings.data_dir, settings.experiment, settings.tracking_uri)
    overall = evaluation.iloc[0]
    with mlflow.start_run(run_name=f"campaign {data_end}"):
        mlflow.set_tags({"kind": "campaign", "data_end": data_end, "status": overall["status"]})
        mlflow.log_params(
            {"horizon_days": settings.horizon_days, "min_group_size": settings.min_group_size}
        )
        metrics = {"listings_measured": float(measured)} | {
            column: float(overall[column])
            for column in EVALUATION_COLUMNS[2:-1]
            if pd.notna(overall[column])
        }
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(path))


@flow(name="campaign")
def campaign(
    transactions: Path,
    out_dir: Path,
    settings: CampaignSettings | None = None,
    contacts: Path | None = None,
) -> CampaignResult:
    """Did the calls help? Contact vs holdout retention of every matured listing.

    Reads the list history under ``out_dir`` and the transactions (and the CRM's
    ``contacts`` export, if given: who was actually reached), writes
    ``out_dir/campaign.csv`` and logs the overall effect to MLflow.
    """
    settings = settings or CampaignSettings()
    logger = get_run_logger()
    out_dir = Path(out_dir)
    with catalog.output_lock(out_dir):
        sales = catalog.read_table(Path(transactions), "transactions").frame
        made = catalog.read_table(Path(contacts), "contacts").frame if contacts else None
        history = catalog.read_history(out_dir)
        data_end = sales["timestamp"].max().normalize() + pd.Timedelta(days=1)
        outcomes = retention_outcomes(history, sales, settings.horizon_days, data_end)
        if made is not None:
            outcomes = with_reach(outcomes, made, settings.horizon_days)
        evaluation = evaluate_campaigns(outcomes, settings.min_group_size)
        paths = catalog.write_atomic({"campaign": evaluation}, out_dir)
    day = str(data_end.date())
    log_campaign_run(settings, evaluation, len(outcomes), day, paths["campaign"])
    overall = evaluation.loc[evaluation["list"].eq(OVERALL)].iloc[0]
    logger.info(
        "%d listings measured (horizon %d days, data to %s): %s -> %s",
        len(outcomes),
        settings.horizon_days,
        day,
        overall["status"],
        paths["campaign"],
    )
    return CampaignResult(
        listings_measured=len(outcomes),
        data_end=day,
        status=str(overall["status"]),
        difference=_number(overall["difference"]),
        ci_low=_number(overall["ci_low"]),
        ci_high=_number(overall["ci_high"]),
        value_saved=_number(overall["value_saved"]),
        outputs={name: str(path) for name, path in paths.items()},
    )
