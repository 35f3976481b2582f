"""The scoring flow: ``score`` writes the night's lists and report; ``nightly`` is the
same flow with the night's feature table written too (what ``churn schedule`` serves).

The night itself is :func:`models.nightly.score_night`; this module reads its inputs,
runs it as a task and publishes what it returns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture
from prefect.states import Completed, State

from features.windows import as_cutoff
from models.campaign import evaluate_campaigns
from models.night_facts import CustomerBatches, WholeTables, night_facts
from models.nightly import Champion, Night, NightOptions, report_drivers, score_drift, score_night
from models.playbook import load_playbook
from models.reasons import ReasonMap, load_reason_map
from models.uplift import choose_ranking
from pipelines import campaigns, catalog, processes, registry, staged
from pipelines.memory import give_back
from pipelines.report import DRIVER_CUSTOMERS, render_report
from pipelines.settings import DatabaseInputs, InputPaths, Inputs, ScoreSettings

if TYPE_CHECKING:
    from pipelines.dask_read import DaskBatches
from pipelines.tasks import (
    check_destinations,
    compute_engine,
    load_tables,
    report_observability,
    report_read,
    write_outputs,
    write_outputs_and_table,
)

# SHAP for every customer who can reach a list: the night's costliest step
score_night_task = task(score_night, name="score_night", cache_policy=NONE)
# features, status, due-day features and KPI counts: batch by batch when staged
night_facts_task = task(night_facts, name="night_facts", cache_policy=NONE)


@dataclass(frozen=True)
class ScoreResult:
    score_date: str
    model_version: str
    customers_scored: int
    customers_listed: int
    customers_active: int
    customers_lapsed: int
    customers_win_back: int
    value_at_risk_listed: float
    reason_mix: dict[str, float]
    kpis: dict[str, float]
    drifting_features: list[str]
    outputs: dict[str, str]
    ranking: str = "risk"  # or "uplift", once it beat risk ranking on matured campaigns


def default_score_date(last_transaction: pd.Timestamp | None) -> pd.Timestamp:
    """The day after the last transaction: every row in the data is then usable."""
    if last_transaction is None or pd.isna(last_transaction):
        raise ValueError("the transactions table has no rows: there is nothing to score")
    return last_transaction.normalize() + pd.Timedelta(days=1)


def night_options(settings: ScoreSettings) -> NightOptions:
    """The settings values a night reads, by name (every field is a setting)."""
    names = [f.name for f in dataclasses.fields(NightOptions) if f.name != "list_capacity"]
    values = {name: getattr(settings, name) for name in names}
    return NightOptions(**values, list_capacity=settings.list_capacity())


def night_report(
    night: Night,
    champion: Champion,
    reason_map: ReasonMap,
    settings: ScoreSettings,
    ranking: str = "",
    campaign: pd.DataFrame | None = None,
) -> str:
    """The HTML report of the night (the first listed customers' drivers included)."""
    top_features, drivers = report_drivers(night, champion.model, DRIVER_CUSTOMERS)
    meta = {
        "score_date": str(night.cutoff.date()),
        "model_name": settings.model_name,
        "model_version": str(champion.version),
        "generated_at": str(pd.Timestamp.now(tz="UTC").floor("s")),
        "business": settings.business_name,
        "horizon_days": str(settings.horizon_days),
        "ranking": ranking,
    }
    return render_report(
        night.scored,
        night.at_risk,
        night.kpis,
        drivers,
        meta,
        features=top_features,
        reason_map=reason_map,
        win_back=night.win_back,
        campaign=campaign,
    )


def publish(
    night: Night,
    html: str,
    settings: ScoreSettings,
    out_dir: Path,
    write_features: bool,
    campaign: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Every file (and the list table, if set) as one outcome, then the dated history;
    ``campaign`` (the earlier lists' evaluation, when there is a history) too."""
    frames: dict[str, pd.DataFrame | str | catalog.CsvRows] = {
        "at_risk_csv": night.at_risk,
        "at_risk": night.at_risk,
        "win_back_csv": night.win_back,
        "win_back": night.win_back,
        "scores": night.scored,
        "report": html,
        # the lists' contact rows as the lists' files hold them, not formatted again
        "call_sheet": catalog.CsvRows(
            tuple(zip(("at_risk_csv", "win_back_csv"), night.called, strict=True))
        ),
    }
    if write_features:
        frames["features"] = night.features.reset_index()
    if campaign is not None:
        frames["campaign"] = campaign
    if settings.output_table:
        both = pd.concat([night.at_risk, night.win_back])
        paths = write_outputs_and_table(frames, out_dir, both, settings, night.cutoff)
    else:
        paths = write_outputs(frames, out_dir)
    # kept once published: a night that failed above leaves no record of a list never used
    paths["history"] = campaigns.write_history(night.at_risk, night.win_back, out_dir, night.cutoff)
    return paths


def score_tables(
    tables: catalog.Tables,
    settings: ScoreSettings,
    score_date: str | None,
    out_dir: Path,
    write_features: bool,
    loading: PrefectFuture[Champion] | None = None,
) -> ScoreResult:
    """Score the validated ``tables`` with the champion, publish, log the night to MLflow."""
    return score_batches(
        WholeTables(tables), tables, tables.interactions, settings, score_date, out_dir,
        write_features, loading,
    )  # fmt: skip


def score_batches(
    batches: CustomerBatches,
    summary: catalog.Tables,
    kinds: pd.DataFrame | pd.Series | None,
    settings: ScoreSettings,
    score_date: str | None,
    out_dir: Path,
    write_features: bool,
    loading: PrefectFuture[Champion] | None = None,
) -> ScoreResult:
    """Score the customer ``batches`` (``summary``: their columns, rows read and warnings;
    ``kinds``: the interactions or their rows per kind) and publish the night.

    ``loading``: the champion as :func:`champion_soon` loads it (``None``: loaded here).
    """
    logger = get_run_logger()
    reason_map = load_reason_map(settings.reason_map)
    playbook = load_playbook(settings.playbook)
    report_observability(summary, reason_map)
    cutoff = as_cutoff(score_date) if score_date else default_score_date(batches.last_timestamp)
    champion = (loading or champion_soon(settings)).result()
    history = catalog.read_history(out_dir, before=cutoff)
    facts = night_facts_task(
        batches,
        cutoff,
        settings.lookback_days,
        settings.horizon_days,
        settings.status_tail,
        champion.usage_kinds(kinds),
        history if len(history) else None,
    )
    give_back()  # what the batches' passes freed, before the night's largest stage
    # what the earlier lists did, as far as this night can know: shown in the report
    evaluation = None if facts.outcomes is None else evaluate_campaigns(facts.outcomes)
    ranking, uplift = choose_ranking(facts.outcomes)
    logger.info("list order: %s", ranking.reason)
    night = score_night_task(
        facts,
        champion,
        reason_map,
        playbook,
        cutoff,
        pd.Timestamp.now(tz="UTC").floor("s"),
        night_options(settings),
        history,
        uplift,
        processes.open_map(),  # the explanations in the run's batch processes, if it has any
    )
    give_back()
    html = night_report(night, champion, reason_map, settings, ranking.reason, evaluation)
    paths = publish(night, html, settings, out_dir, write_features, evaluation)
    drift = score_drift(night, champion.profile, settings.drift_threshold)
    registry.log_scoring_run(night, drift, champion.version, summary.rows_read, paths["report"])
    if drift.drifting:
        logger.warning(
            "drift above PSI %.2f against the training data: %s",
            settings.drift_threshold,
            ", ".join(f"{f} ({drift.psi[f]:.2f})" for f in drift.drifting),
        )
    lapsed, active = int(night.lapsed.sum()), int((~night.lapsed).sum())
    logger.info(
        "scored %d customers at %s (%d active, %d lapsed); %d on the at-risk list -> %s; "
        "%d on the win-back list -> %s; report -> %s",
        len(night.scored),
        cutoff.date(),
        active,
        lapsed,
        len(night.at_risk),
        paths["at_risk_csv"],
        len(night.win_back),
        paths["win_back_csv"],
        paths["report"],
    )
    return ScoreResult(
        score_date=str(cutoff.date()),
        model_version=str(champion.version),
        customers_scored=len(night.scored),
        customers_listed=len(night.at_risk),
        customers_active=active,
        customers_lapsed=lapsed,
        customers_win_back=len(night.win_back),
        value_at_risk_listed=float(night.at_risk["value_at_risk"].sum()),
        reason_mix={k: round(float(v), 4) for k, v in night.reason_mix.items()},
        kpis={k: round(float(v), 4) for k, v in night.kpis.items()},
        drifting_features=drift.drifting,
        ranking=ranking.ranking,
        outputs={k: str(v) for k, v in paths.items()},
    )


def _finish(result: ScoreResult) -> ScoreResult | State:
    """A drifting night still delivers its list, but ends in a visible warning state."""
    if result.drifting_features:
        return Completed(
            name="Drifted",
            data=result,
            message="drift against training data: " + ", ".join(result.drifting_features),
        )
    return result


def _score_read(
    source: staged.StagedBatches | DaskBatches,
    settings: ScoreSettings,
    score_date: str | None,
    out_dir: Path,
    write_features: bool,
    loading: PrefectFuture[Champion] | None = None,
) -> ScoreResult | State:
    """Score inputs read as customer batches (staged here, or kept by Dask workers)."""
    report_read(source.schema)
    return _finish(
        score_batches(
            source, source.schema, source.kinds, settings, score_date, out_dir, write_features,
            loading,
        )
    )  # fmt: skip


@task(name="champion", cache_policy=NONE)
def _load_champion(settings: ScoreSettings) -> Champion:
    registry.connect(settings)
    return registry.load_champion(settings.model_name)


def champion_soon(settings: ScoreSettings) -> PrefectFuture[Champion]:
    """The champion, loaded from MLflow in a thread of the flow: while the inputs are read
    (~3 s at 1M customers that the batch processes' reading would otherwise wait).

    Its error, if any, is raised where the result is asked for: after the inputs' own.
    """
    return _load_champion.submit(settings)


@flow(name="score")
def score(
    inputs: Inputs,
    out_dir: Path,
    settings: ScoreSettings | None = None,
    score_date: str | None = None,
    write_features: bool = False,
) -> ScoreResult:
    """Score every customer with the champion model and write both ranked lists and the
    report; ``write_features`` also writes the night's feature table."""
    settings = settings or ScoreSettings()
    out_dir = Path(out_dir)
    with catalog.output_lock(out_dir):
        check_destinations(inputs, out_dir, settings)
        champion = champion_soon(settings)  # from MLflow while the inputs are read
        batches = staged.batches_for(inputs, settings)
        if batches is not None:
            with staged.stage(inputs, settings, batches) as source:  # type: ignore[arg-type]
                if source is not None:
                    return _score_read(
                        source, settings, score_date, out_dir, write_features, champion
                    )
        if settings.engine == "dask" and isinstance(inputs, InputPaths | DatabaseInputs):
            from pipelines import dask_read  # the workers read and validate the tables

            with (
                compute_engine(settings) as client,
                dask_read.stage_inputs(inputs, settings, client) as on_workers,
            ):
                if on_workers is not None:
                    return _score_read(
                        on_workers, settings, score_date, out_dir, write_features, champion
                    )
        tables = load_tables(inputs, settings)
        return _finish(
            score_tables(tables, settings, score_date, out_dir, write_features, champion)
        )


@flow(name="nightly")
def nightly(
    inputs: Inputs,
    out_dir: Path,
    settings: ScoreSettings | None = None,
    score_date: str | None = None,
) -> ScoreResult:
    """The night's job: :func:`score` with the features for the day written too."""
    return score.fn(inputs, out_dir, settings, score_date, write_features=True)
