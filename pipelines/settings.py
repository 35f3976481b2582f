"""Settings per flow: defaults embedded, overridable from a YAML file and CLI flags.

Nothing here touches the environment or the disk at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from models.thresholds import (
    HOLDOUT_SHARE,
    MIN_GROUP,
    MIN_REASON_CONFIDENCE,
    MIN_REASON_SCORE,
    RISK_THRESHOLD,
)


class InputPaths(BaseModel):
    """Where the business's tables are (CSV or Parquet, by extension)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["files"] = "files"
    transactions: Path
    interactions: Path | None = None
    customers: Path | None = None
    subscriptions: Path | None = None


class DatabaseInputs(BaseModel):
    """The business's tables in PostgreSQL: table names, or a SELECT per table.

    The connection URL is not a field: it holds a password, and flow parameters are
    stored by Prefect. It is read from the environment variable named by ``url_env``.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["database"] = "database"
    transactions: str
    interactions: str | None = None
    customers: str | None = None
    subscriptions: str | None = None
    # kind (transactions, interactions, customers, subscriptions) -> SELECT
    queries: dict[str, str] = Field(default_factory=dict)
    url_env: str = "CHURN_DATABASE_URL"


# what a flow reads: files, or tables in PostgreSQL (told apart by `kind`, so parameters
# from a deployment never turn file paths into table names)
def _input_kind(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "files"))  # files when unsaid, as in older deployments
    return str(getattr(value, "kind", "files"))


Inputs = Annotated[
    Annotated[InputPaths, Tag("files")] | Annotated[DatabaseInputs, Tag("database")],
    Discriminator(_input_kind),
]


class CommonSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Path("data")
    experiment: str = "churn"
    model_name: str = "churn"
    # None = embedded SQLite store under data_dir; the CLI fills it from MLFLOW_TRACKING_URI
    tracking_uri: str | None = None
    horizon_days: int = Field(90, ge=7)
    lookback_days: int = Field(365, ge=30)
    reason_map: Path | None = None  # None = the packaged models/config/reason_map.yaml
    # where features (and training) run: in this process, or on a Dask cluster
    # (dask_address = an existing scheduler, tcp://host:8786; None = a local cluster)
    engine: Literal["local", "dask"] = "local"
    dask_address: str | None = None
    # the local engine builds features this many customer batches at a time (a hash of
    # customer_id, the Dask engine's partitioning): peak memory follows one batch, the
    # table is the same value for value; None = all customers in one call
    feature_batches: int | None = Field(None, ge=1, le=256)  # one open file each when cached
    # processes that validate and map those batches, each holding one batch at a time;
    # None = one per core (at most one per batch)
    batch_processes: int | None = Field(None, ge=1, le=64)
    # a customer is lapsed (gone, a win-back) once their silence is longer than all but
    # this share of the gaps their rhythm makes plausible (features.status)
    status_tail: float = Field(0.05, gt=0.0, lt=0.5)
    # the business's interaction kinds -> the contract's (ticket: support_ticket,
    # nps: survey), applied when the tables are read
    kinds: dict[str, str] = Field(default_factory=dict)
    # the most frequent interaction kinds the contract does not read get usage features
    # (features.usage); chosen when training, the model's own at scoring
    usage_top_kinds: int = Field(5, ge=0, le=50)
    # exact duplicate interactions (every column equal) are events, kept unless this says
    drop_duplicate_interactions: bool = False


class TrainSettings(CommonSettings):
    n_train_cutoffs: int = Field(4, ge=1)
    cutoff_step_days: int = Field(30, ge=1)
    min_history_days: int = Field(180, ge=0)
    xgb_params: dict[str, Any] = Field(default_factory=dict)
    # model families that compete on the validation rows (models.champion.CANDIDATES);
    # the winner is refit on the latest labelled windows and serves
    candidates: tuple[Literal["xgboost", "xgboost_btyd", "logistic_rfm", "bgnbd"], ...] = (
        "xgboost",
        "xgboost_btyd",
        "logistic_rfm",
        "bgnbd",
    )
    # champion / challenger: promote only if better on this holdout metric...
    promotion_metric: str = "pr_auc"
    # ...and not worse on Brier score by more than this
    brier_tolerance: float = Field(0.002, ge=0.0)
    force: bool = False  # promote regardless (logged)
    # a departure within the horizon is confirmed by no purchase in this many days after it
    confirm_days: int = Field(90, ge=1)


class ScoreSettings(CommonSettings):
    # the at-risk list holds active customers at or above this departure probability
    risk_threshold: float = Field(RISK_THRESHOLD, ge=0.0, le=1.0)
    top: int | None = Field(None, ge=1)
    # capacity by money: each contact costs `contact_cost`; the list holds what the budget buys
    budget: float | None = Field(None, gt=0)
    contact_cost: float = Field(10.0, gt=0)
    drift_threshold: float = Field(0.25, gt=0)  # PSI above which a feature counts as drifting
    business_name: str = ""
    # also write the call list to this PostgreSQL table (replacing the score date's rows);
    # the connection comes from the environment variable `output_url_env`
    output_table: str | None = None
    output_url_env: str = "CHURN_DATABASE_URL"
    # a specific reason must add this much risk (log-odds) and hold this share of it,
    # else the top reason is `unidentified` (see models.explain.top_reasons)
    min_reason_score: float = Field(MIN_REASON_SCORE, ge=0.0)
    min_reason_confidence: float = Field(MIN_REASON_CONFIDENCE, ge=0.0, le=1.0)
    playbook: Path | None = None  # None = the packaged models/config/playbook.yaml
    # SHAP for everyone in scores.parquet (a reason for every leaver, listed or not) when
    # at most `explain_everyone_up_to` customers are scored; above that, only customers
    # who can reach a list, unless `explain_all` (SHAP costs ~1,000x a prediction: ~0.26 ms
    # a customer on 2 cores, so 200k customers take under a minute)
    explain_all: bool = False
    explain_everyone_up_to: int = Field(200_000, ge=0)
    # the win-back list holds lapsed customers who used to bring more than a contact costs
    # over a horizon, most valuable first, at most this many (None: all of them)
    win_back_top: int | None = Field(None, ge=1)
    # control groups (models.campaign): this share of each list x action x risk band is
    # not contacted; a customer keeps their group for the campaign (None: the score
    # date's ISO week or month, by campaign_period)
    holdout_share: float = Field(HOLDOUT_SHARE, ge=0.0, lt=1.0)
    campaign: str | None = None
    campaign_period: Literal["week", "month"] = "week"
    holdout_risk_bands: tuple[float, ...] = (0.5, 0.7)
    # the business's answers to "why are you cancelling?" (a subscription's
    # cancel_reason) -> loss reasons, on top of the common ones models.reasons knows
    # (too_expensive: competitor_offer); a lapsed customer's own answer is their reason
    cancel_reasons: dict[str, str] = Field(default_factory=dict)

    @field_validator("cancel_reasons")
    @classmethod
    def _cancel_reasons_are_loss_reasons(cls, value: dict[str, str]) -> dict[str, str]:
        if value:  # models.reasons loads pandas: only for a business that maps its words
            from models.reasons import stated_words

            stated_words(value)
        return value

    def check_list_table_url(self) -> None:
        """A list table needs a database URL in ``output_url_env``.

        Raises:
            LookupError: naming the table and the variable to set.
        """
        if self.output_table and not os.environ.get(self.output_url_env):
            raise LookupError(
                f"the list table {self.output_table!r} needs a database: pass --db or set "
                f"{self.output_url_env} to its URL (postgresql+psycopg://...)"
            )

    def list_capacity(self) -> int | None:
        """How many customers the call list may hold (--top and --budget, the smaller)."""
        caps = [self.top] if self.top else []
        if self.budget is not None:
            caps.append(int(self.budget // self.contact_cost))
        return min(caps) if caps else None


class CampaignSettings(CommonSettings):
    # a contact vs holdout comparison needs at least this many customers in each group
    min_group_size: int = Field(MIN_GROUP, ge=1)


def load_settings(cls: type[BaseModel], path: Path | None, **overrides: Any) -> Any:
    """Settings from an optional YAML file, with non-None overrides (CLI flags) on top."""
    values: dict[str, Any] = {}
    if path is not None:
        values = yaml.safe_load(Path(path).read_text()) or {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)
