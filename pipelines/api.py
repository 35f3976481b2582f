"""The pipeline from Python: read, build features, train, score, explain one customer.

Every function here calls the code the ``churn`` commands and the Prefect flows call;
none is a second implementation. :func:`train` and :func:`score` *are* the flows (they
record runs in Prefect and MLflow, so without ``PREFECT_API_URL`` Prefect starts its
temporary API server for them, as the CLI does). :func:`load_tables`,
:func:`build_features` and :func:`explain` run the same task bodies in this process and
start nothing: reading a file or one customer's drivers records no run.

Example::

    from pipelines import api

    tables = api.load_tables("data/raw/demo")
    trained = api.train(tables, api.TrainSettings(data_dir="data"))
    scored = api.score(tables, "data/outputs/demo", api.ScoreSettings(data_dir="data"))
    scored.at_risk.head()
    api.explain(scored.at_risk["customer_id"].iloc[0], tables, scored.result.score_date)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from features.contracts import InputError
from pipelines.catalog import Tables
from pipelines.settings import (
    CommonSettings,
    DatabaseInputs,
    InputPaths,
    ScoreSettings,
    TrainSettings,
)

if TYPE_CHECKING:
    from pipelines.score_flow import ScoreResult
    from pipelines.train_flow import TrainResult

__all__ = [
    "DatabaseInputs",
    "Explanation",
    "InputError",
    "InputPaths",
    "Scored",
    "ScoreSettings",
    "Tables",
    "TrainSettings",
    "build_features",
    "explain",
    "inputs_from",
    "load_tables",
    "score",
    "train",
]

# what a function may be given for the business's tables
TablesLike = Tables | InputPaths | DatabaseInputs | Mapping[str, Any] | str | Path
_TABLES = ("transactions", "interactions", "customers", "subscriptions")


def inputs_from(source: InputPaths | DatabaseInputs | Mapping[str, Any] | str | Path) -> Any:
    """The flows' input description for ``source``.

    Args:
        source: ``InputPaths`` or ``DatabaseInputs`` (returned as they are); a mapping of
            table kind -> file (``{"transactions": "tx.csv"}``); or a folder holding
            ``transactions.parquet`` and any of ``interactions``, ``customers`` and
            ``subscriptions`` (what ``churn simulate`` writes).

    Raises:
        FileNotFoundError: a folder without ``transactions.parquet``.
    """
    if isinstance(source, InputPaths | DatabaseInputs):
        return source
    if isinstance(source, Mapping):
        return InputPaths(**{k: v for k, v in source.items() if k in _TABLES and v})
    folder = Path(source)
    files = {name: folder / f"{name}.parquet" for name in _TABLES}
    if not files["transactions"].is_file():
        raise FileNotFoundError(f"{files['transactions']}: file not found")
    return InputPaths(**{k: p for k, p in files.items() if p.is_file()})


def _environment() -> None:
    """The CLI's environment defaults (Prefect state in the project, no telemetry, the
    server's start-up timeout, XGBoost threads that yield): before Prefect or XGBoost is
    imported, since both read them then; a variable already set is never overridden."""
    from pipelines.cli_support import set_environment

    set_environment()


@contextmanager
def _without_a_run() -> Iterator[None]:
    """Run a task's body here: its run-logger lines are dropped (warnings stay on the
    returned objects, e.g. ``Tables.warnings``) and no Prefect API is needed."""
    from prefect.logging import disable_run_logger

    with disable_run_logger():
        yield


def load_tables(source: TablesLike, settings: CommonSettings | None = None) -> Tables:
    """The business's tables, read and validated as every flow reads them.

    Args:
        source: files, a folder, database tables (see :func:`inputs_from`), or tables
            already loaded (returned as they are).
        settings: the ``kinds:`` mapping and duplicate rule to read with (None: defaults).

    Returns:
        The validated frames; ``warnings`` holds every repair the contract made.

    Raises:
        InputError: a table breaks the input contract (the message says which and why).
    """
    if isinstance(source, Tables):
        return source
    _environment()
    from pipelines import tasks

    with _without_a_run():
        return tasks.load_tables.fn(inputs_from(source), settings)


def build_features(
    tables: TablesLike,
    cutoff: str | pd.Timestamp,
    lookback_days: int = 365,
    usage_kinds: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """One row per customer who bought in the ``lookback_days`` before ``cutoff``.

    The same table ``churn features`` writes (``usage_kinds`` None: the interaction kinds
    it chooses); rows before ``cutoff`` only, so a cutoff in the past never sees the
    future.
    """
    _environment()
    from features.usage import choose_usage_kinds
    from pipelines import tasks

    tables = load_tables(tables)
    kinds = choose_usage_kinds(tables.interactions) if usage_kinds is None else usage_kinds
    with _without_a_run():
        return tasks.build_feature_table_at.fn(tables, cutoff, lookback_days, kinds)


@contextmanager
def _flow_inputs(source: TablesLike) -> Iterator[Any]:
    """Inputs a flow can take: loaded tables are written to a temporary folder first, so
    the flow reads and checks them like any file (and its run records the same rows)."""
    if not isinstance(source, Tables):
        yield inputs_from(source)
        return
    from pipelines.catalog import write_atomic

    frames = {k: getattr(source, k) for k in _TABLES if getattr(source, k) is not None}
    with tempfile.TemporaryDirectory(prefix="churn-api-") as folder:
        yield InputPaths(**write_atomic(frames, Path(folder)))


def _prepare_run(settings: CommonSettings) -> None:
    """What the CLI sets before a flow: Prefect state in the project, quiet console,
    Prefect's run log under ``data_dir/logs`` (environment defaults never override)."""
    from pipelines.cli_support import drop_expected_tracebacks, route_logs

    route_logs(settings.data_dir)
    drop_expected_tracebacks()


def train(tables: TablesLike, settings: TrainSettings | None = None) -> TrainResult:
    """Train, log to MLflow, register as ``@challenger`` and promote if it is better.

    The ``train`` flow itself (what ``churn train`` runs), recorded in Prefect and MLflow.

    Args:
        tables: files, a folder, database tables or loaded tables (see :func:`load_tables`).
        settings: training settings (None: defaults, the store under ``data/``).

    Returns:
        The run: ``run_id``, ``model_version`` (registered), ``leaderboard`` (candidate ->
        validation and holdout metrics), ``metrics``, ``promoted`` and why.
    """
    _environment()
    from pipelines.flows import train as train_flow

    settings = settings or TrainSettings()
    _prepare_run(settings)
    with _flow_inputs(tables) as inputs:
        return train_flow(inputs, settings)


@dataclass(frozen=True)
class Scored:
    """One scoring run: its summary and the lists and scores it wrote."""

    result: ScoreResult  # what ``churn score`` prints
    at_risk: pd.DataFrame  # active customers to call, in order
    win_back: pd.DataFrame  # lapsed customers worth a win-back contact, in order
    scores: pd.DataFrame = field(repr=False)  # every customer


def score(
    tables: TablesLike,
    out_dir: str | Path,
    settings: ScoreSettings | None = None,
    score_date: str | None = None,
    write_features: bool = False,
) -> Scored:
    """Score every customer with the champion; write both lists, the scores and the report.

    The ``score`` flow (``nightly`` with ``write_features``), as ``churn score`` runs it:
    destinations are checked first, then the run is recorded in Prefect and MLflow.

    Args:
        tables: files, a folder, database tables or loaded tables (see :func:`load_tables`).
        out_dir: where the lists, ``scores.parquet``, the report and the history go.
        settings: scoring settings (None: defaults, the store under ``data/``).
        score_date: YYYY-MM-DD (None: the day after the last transaction).
        write_features: also write the night's feature table.

    Returns:
        The run's summary and the lists and scores as written.
    """
    _environment()
    from pipelines import flows

    settings = settings or ScoreSettings()
    out_dir = Path(out_dir)
    _prepare_run(settings)
    with _flow_inputs(tables) as inputs:
        flows.preflight(inputs, out_dir, settings)  # a bad destination fails before a run
        run = flows.nightly if write_features else flows.score
        result = run(inputs, out_dir, settings, score_date)
    outputs = {k: Path(v) for k, v in result.outputs.items()}
    return Scored(
        result=result,
        at_risk=pd.read_parquet(outputs["at_risk"]),
        win_back=pd.read_parquet(outputs["win_back"]),
        scores=pd.read_parquet(outputs["scores"]),
    )


@dataclass(frozen=True)
class Explanation:
    """Why one customer scored as they did, as a scoring run explains them."""

    customer_id: str
    score_date: pd.Timestamp
    status: str
    reason_as_of: pd.Timestamp  # the score date, or the day a lapsed customer was due back
    churn_probability: float
    top_reason: str
    reason_confidence: float
    reason_source: str  # drivers, or stated: their own answer when they cancelled
    drivers_reason: str  # what the drivers say (top_reason unless they said otherwise)
    top_drivers: str  # in plain words, as on the lists
    reason_scores: pd.Series  # reason -> risk it adds (log-odds)
    contributions: pd.Series  # feature -> log-odds contribution, largest effect first
    features: pd.Series  # the feature values explained
    base_log_odds: float  # the model's raw log-odds = this + contributions.sum()
    model_version: str


def explain(
    customer_id: str,
    tables: TablesLike,
    score_date: str | None = None,
    settings: ScoreSettings | None = None,
) -> Explanation:
    """One customer's drivers, reason and probability from the ``@champion`` model.

    The same steps a scoring run takes for this customer (features at the score date,
    their status, a lapsed customer's reasons read as of the day they were due back,
    SHAP contributions folded onto the reasons), so the answer equals their row in
    ``scores.parquet``. It reads the MLflow store and starts no Prefect server.

    Args:
        customer_id: as in the tables.
        tables: files, a folder, database tables or loaded tables (see :func:`load_tables`).
        score_date: YYYY-MM-DD (None: the day after the last transaction).
        settings: the scoring settings (store, thresholds, reason map).

    Raises:
        LookupError: no champion model, or the customer bought nothing in the lookback.
    """
    _environment()
    import numpy as np
    from scipy.special import logit

    from features.status import LAPSED
    from features.windows import as_cutoff
    from models.champion import model_contributions
    from models.explain import reason_scores, top_drivers, top_reasons
    from models.night_facts import WholeTables, night_facts
    from models.reasons import load_reason_map, stated_words
    from models.scoring import align_features, with_stated_reasons
    from pipelines import registry, tracking
    from pipelines.score_flow import default_score_date

    settings = settings or ScoreSettings()
    tables = load_tables(tables, settings)
    whole = WholeTables(tables)
    cutoff = as_cutoff(score_date) if score_date else default_score_date(whole.last_timestamp)
    tracking.configure(settings.data_dir, settings.experiment, settings.tracking_uri)
    reason_map = load_reason_map(settings.reason_map)
    with _without_a_run():
        champion = registry.load_champion.fn(settings.model_name)
    # the night's own facts (features, status, due-day features): the same code
    facts = night_facts(
        whole,
        cutoff,
        settings.lookback_days,
        settings.horizon_days,
        settings.status_tail,
        champion.usage_kinds(tables.interactions),
    )
    features = facts.features
    key = str(customer_id)
    if key not in features.index.astype(str):
        raise LookupError(
            f"customer {key} bought nothing in the {settings.lookback_days} days before "
            f"{cutoff.date()}: no score to explain"
        )
    mine = features.index.astype(str) == key
    row = features.loc[mine]
    status = facts.status.loc[mine]
    basis, as_of, probability = row, cutoff, None
    if status["status"].eq(LAPSED).iloc[0]:
        from models.win_back import lapsed_churn_probability

        as_of = status["due_date"].iloc[0]
        basis = facts.due_features.reindex(row.index)
        silence = row["days_since_last_purchase"]
        probability = lapsed_churn_probability(status, silence, champion.return_rates).iloc[0]
    model = champion.model
    if probability is None:
        probability = model.predict_proba(align_features(row, model))[0, 1]
    x = align_features(basis, model)
    contribs = model_contributions(model, x)
    reasons = reason_scores(contribs, reason_map)
    top = with_stated_reasons(
        top_reasons(reasons, settings.min_reason_score, settings.min_reason_confidence),
        status["cancel_reason"] if "cancel_reason" in status else None,
        stated_words(settings.cancel_reasons),
        status["status"].eq(LAPSED).to_numpy(),
    )
    raw = model.raw_probability(x) if hasattr(model, "raw_probability") else None
    raw = model.predict_proba(x)[:, 1] if raw is None else raw
    drivers = contribs.iloc[0]
    return Explanation(
        customer_id=key,
        score_date=cutoff,
        status=str(status["status"].iloc[0]),
        reason_as_of=pd.Timestamp(as_of),
        churn_probability=float(probability),
        top_reason=str(top["top_reason"].iloc[0]),
        reason_confidence=float(top["reason_confidence"].iloc[0]),
        reason_source=str(top["reason_source"].iloc[0]),
        drivers_reason=str(top["drivers_reason"].iloc[0]),
        top_drivers=str(top_drivers(contribs, basis, reason_map).iloc[0]),
        reason_scores=reasons.iloc[0].rename(lambda c: c.removeprefix("reason_")),
        contributions=drivers.reindex(drivers.abs().sort_values(ascending=False).index),
        features=x.iloc[0],
        base_log_odds=float(logit(np.clip(raw[0], 1e-12, 1 - 1e-12)) - drivers.sum()),
        model_version=str(champion.version),
    )
