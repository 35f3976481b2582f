"""Control groups in the nightly lists, and the flow that measures what the calls did.

The logic is in :mod:`models.campaign`; this module wires it to the list history
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
    CONTACT,
    EVALUATION_COLUMNS,
    OVERALL,
    assign_groups,
    campaign_id,
    evaluate_campaigns,
    retention_outcomes,
)
from pipelines import catalog, tracking
from pipelines.settings import CampaignSettings, ScoreSettings


def with_groups(
    listed: pd.DataFrame,
    win_back: pd.DataFrame,
    scored: pd.DataFrame,
    settings: ScoreSettings,
    cutoff: pd.Timestamp,
    out_dir: Path,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Both lists and the scores with ``campaign`` and ``group``, and the call sheet.

    Customers listed earlier in the same campaign (the history before ``cutoff``) keep
    their group. The call sheet is the contact group of both lists.
    """
    campaign = settings.campaign or campaign_id(cutoff, settings.campaign_period)
    earlier = catalog.read_history(out_dir, before=cutoff)
    if len(earlier):
        earlier = earlier.loc[earlier["campaign"].astype(str).eq(campaign)]
    both = assign_groups(
        pd.concat([listed, win_back]),
        campaign,
        settings.holdout_share,
        earlier=earlier if len(earlier) else None,
        bands=settings.holdout_risk_bands,
    )
    listed = both.iloc[: len(listed)]
    win_back = both.iloc[len(listed) :]
    groups = both.set_index(both["customer_id"].astype(str))[["campaign", "group"]]
    ids = scored["customer_id"].astype(str)
    scored = scored.assign(
        campaign=ids.map(groups["campaign"]).fillna(""),
        group=ids.map(groups["group"]).fillna(""),
    )
    call_sheet = both.loc[both["group"].eq(CONTACT)]
    return listed, win_back, scored, call_sheet


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
    transactions: Path, out_dir: Path, settings: CampaignSettings | None = None
) -> CampaignResult:
    """Did the calls help? Contact vs holdout retention of every matured listing.

    Reads the list history under ``out_dir`` and the transactions, writes
    ``out_dir/campaign.csv`` and logs the overall effect to MLflow.
    """
    settings = settings or CampaignSettings()
    logger = get_run_logger()
    out_dir = Path(out_dir)
    with catalog.output_lock(out_dir):
        sales = catalog.read_table(Path(transactions), "transactions").frame
        history = catalog.read_history(out_dir)
        data_end = sales["timestamp"].max().normalize() + pd.Timedelta(days=1)
        outcomes = retention_outcomes(history, sales, settings.horizon_days, data_end)
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
