"""The `churn` command line. Every command prints where its outputs went.

Each command checks its arguments and input files first (exists, readable, required
columns: :mod:`pipelines.preflight_inputs`, about a second), and only then imports
Prefect, MLflow or XGBoost, after the environment defaults are set so Prefect keeps its
state inside the project. `churn features` from files needs no Prefect run at all
(:mod:`pipelines.one_shot` says why and what it saves); the commands that record runs
(train, score, nightly, schedule) start Prefect's API server only once their input
passed. `score`, `nightly` and `schedule` take one shared set of options
(:mod:`pipelines.cli_options`).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from typer.core import TyperGroup

from pipelines.cli_options import (
    VERBOSE_FLAGS,
    AsOfOpt,
    BatchesOpt,
    ConfigOpt,
    CuOpt,
    CustomerCountOpt,
    DaskOpt,
    DataOpt,
    DbOpt,
    EndOpt,
    EngineOpt,
    ForceOpt,
    HistoryOpt,
    IxOpt,
    Opt,
    RetainedDaysOpt,
    ScenarioOpt,
    ScoringOptions,
    SeedOpt,
    SimulateOutOpt,
    StartOpt,
    SubOpt,
    TxOpt,
    VerboseOpt,
    scoring_command,
)
from pipelines.cli_support import (
    DATABASE,
    VERBOSE,
    check_destinations,
    check_inputs,
    expected_errors,
    fail,
    flow_inputs,
    input_errors,
    route_logs,
    say,
    set_environment,
    start_early,
    tracking_uri,
)


class _Commands(TyperGroup):
    """`churn nightly --verbose` as `churn --verbose nightly`: a user puts the flag where
    the command's other flags go (before a ``--``, which ends the options)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        end = args.index("--") if "--" in args else len(args)
        flags = [a for a in args[:end] if a in VERBOSE_FLAGS]
        rest = [a for a in args[:end] if a not in VERBOSE_FLAGS] + args[end:]
        return super().parse_args(ctx, flags[:1] + rest)


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    help="Customer-churn pipeline: simulate, features, train, score, nightly, schedule.",
)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.callback()
def main(
    ctx: typer.Context,
    db: DbOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    set_environment()
    DATABASE["on"] = bool(db)
    VERBOSE["on"] = verbose
    if db:
        source = ctx.get_parameter_source("db")
        if _has_password(db) and getattr(source, "name", "") == "COMMANDLINE":
            typer.secho(
                "warning: --db carries a password, which ps and your shell history show; "
                "set CHURN_DATABASE_URL instead, or leave it out of the URL and put it in "
                "~/.pgpass (or the file PGPASSFILE names)",
                fg="yellow",
                err=True,
            )
        # flows read the URL from the environment, never from (stored) flow parameters
        os.environ["CHURN_DATABASE_URL"] = db


def _has_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:  # unparseable: the connection will say so
        return False


@app.command()
def simulate(
    customers: CustomerCountOpt = 20_000,
    seed: SeedOpt = 0,
    out: SimulateOutOpt = Path("data/raw/demo"),
    start: StartOpt = "2023-01-01",
    end: EndOpt = "2025-12-31",
    as_of: AsOfOpt = None,
    scenario: ScenarioOpt = "retail",
) -> None:
    """Write a simulated business (with ground truth in truth.parquet) to OUT."""
    from pipelines.catalog import write_atomic
    from simulation.retail import SCENARIOS
    from simulation.retail import as_of as cut
    from simulation.retail import simulate as run

    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"expected one of {', '.join(SCENARIOS)}", param_hint="--scenario")
    business = run(n_customers=customers, seed=seed, start=start, end=end, scenario=scenario)
    if as_of:
        business = cut(business, as_of)
    paths = write_atomic(
        {
            "transactions": business.transactions,
            "interactions": business.interactions,
            "customers": business.customers,
            "truth": business.truth,
        }
        | ({} if business.subscriptions is None else {"subscriptions": business.subscriptions}),
        out,
    )
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


def _tables(
    transactions: Path,
    interactions: Path | None,
    customers: Path | None,
    subscriptions: Path | None,
) -> dict[str, Path | None]:
    """Input table -> the file given for it (with --db, the table's name)."""
    return dict(
        transactions=transactions,
        interactions=interactions,
        customers=customers,
        subscriptions=subscriptions,
    )


@app.command()
def features(
    transactions: TxOpt,
    cutoff: Annotated[str, Opt("--cutoff", help="YYYY-MM-DD")],
    out: Annotated[Path, Opt("--out")],
    interactions: IxOpt = None,
    customers: CuOpt = None,
    lookback_days: Annotated[int, Opt("--lookback-days")] = 365,
    subscriptions: SubOpt = None,
    engine: EngineOpt = None,
    dask_address: DaskOpt = None,
) -> None:
    """Build the feature table for one cutoff -> OUT/features.parquet."""
    tables = _tables(transactions, interactions, customers, subscriptions)
    check_inputs(tables, cutoff=cutoff)
    if DATABASE["on"]:
        path = _features_flow(tables, cutoff, out, lookback_days, engine)
    else:
        try:
            from pipelines.one_shot import feature_file
            from pipelines.settings import CommonSettings, InputPaths

            compute = CommonSettings(engine=engine or "local", dask_address=dask_address)
            path, _ = feature_file(InputPaths(**tables), cutoff, out, lookback_days, compute, say)
        except input_errors() as exc:
            fail(exc)
    typer.echo(f"features: {path}")


def _features_flow(
    tables: dict[str, Path | None], cutoff: str, out: Path, lookback_days: int, engine: str | None
) -> Path:
    """`churn --db URL features`: the flow, for its retries on the database and its run log."""
    if engine not in (None, "local"):
        fail(ValueError("churn features --db runs locally for now; leave out --engine"))
    try:
        from pipelines.flows import build_features

        route_logs(None)
        return build_features(flow_inputs(**tables), cutoff, out, lookback_days)
    except expected_errors() as exc:
        fail(exc)


@app.command()
def train(
    transactions: TxOpt,
    interactions: IxOpt = None,
    customers: CuOpt = None,
    subscriptions: SubOpt = None,
    horizon_days: Annotated[int | None, Opt("--horizon-days")] = None,
    force: ForceOpt = False,
    engine: EngineOpt = None,
    dask_address: DaskOpt = None,
    batches: BatchesOpt = None,
    config: ConfigOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Train, log to MLflow, register as @challenger; promote to @champion if it is better."""
    tables = _tables(transactions, interactions, customers, subscriptions)
    check_inputs(tables)
    try:
        from pipelines.processes import TRAINING
        from pipelines.settings import TrainSettings, load_settings

        settings = load_settings(
            TrainSettings,
            config,
            horizon_days=horizon_days,
            data_dir=data_dir,
            tracking_uri=tracking_uri(),
            force=force or None,
            engine=engine,
            dask_address=dask_address,
            feature_batches=batches,
        )
        api_started = start_early(settings, TRAINING)
        from pipelines.flows import result_json
        from pipelines.flows import train as run
        from pipelines.tracking import ui_command

        route_logs(settings.data_dir)
        api_started()
        result = run(flow_inputs(**tables), settings)
    except expected_errors() as exc:
        fail(exc)
    typer.echo(result_json(result))
    typer.echo(f"model: models:/{result.model_name}@challenger (version {result.model_version})")
    verdict = "promoted" if result.promoted else "not promoted"
    typer.echo(f"{verdict}: {result.promotion_reason}")
    typer.echo(
        f"champion: models:/{result.model_name}@champion (version {result.champion_version})"
    )
    typer.echo(f"MLflow store: {result.tracking_uri}")
    typer.echo(f"open it with: {ui_command(settings.data_dir, settings.tracking_uri)}")


def _scoring_settings(options: ScoringOptions):  # noqa: ANN202
    """The run's ScoreSettings, once the flags and input files passed their checks."""
    try:
        from pipelines.settings import ScoreSettings, load_settings

        settings = load_settings(
            ScoreSettings,
            options.config,
            tracking_uri=tracking_uri(),
            **options.settings_overrides(),
        )
        settings.check_list_table_url()  # a flag that cannot work, before the files
    except input_errors() as exc:
        fail(exc)
    check_inputs(options.tables(), score_date=options.score_date)
    return settings


def _run_scoring(flow_name: str, options: ScoringOptions) -> None:
    """Run the `score` or `nightly` flow on these options and print where it all went."""
    settings = _scoring_settings(options)
    try:
        inputs = flow_inputs(**options.tables())
        check_destinations(inputs, options.out, settings)
        api_started = start_early(settings)  # every check passed: nothing starts before
        from pipelines import flows

        run = getattr(flows, flow_name)
        route_logs(settings.data_dir)
        api_started()
        result = run(inputs, options.out, settings, options.score_date)
    except expected_errors() as exc:
        fail(exc)
    typer.echo(flows.result_json(result))
    if result.drifting_features:
        typer.secho(
            "warning: drift against the training data in " + ", ".join(result.drifting_features),
            fg="yellow",
        )
    for name, path in result.outputs.items():
        typer.echo(f"{name}: {path}")


@app.command()
@scoring_command
def score(options: ScoringOptions) -> None:
    """Score active customers with the champion -> OUT/at_risk.{csv,parquet}, scores.parquet."""
    _run_scoring("score", options)


@app.command()
@scoring_command
def nightly(options: ScoringOptions) -> None:
    """The nightly job: features for the day and the scored list, all written to OUT."""
    _run_scoring("nightly", options)


@app.command()
def campaign(
    transactions: TxOpt,
    out: HistoryOpt,
    horizon_days: RetainedDaysOpt = None,
    contacts: Annotated[
        Path | None,
        Opt(
            "--contacts",
            help="the CRM's contacts export (customer_id, timestamp; action, reached, "
            "outcome): tells assigned from actually reached",
        ),
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Did the calls help? Contacted vs held-out retention -> OUT/campaign.csv."""
    if DATABASE["on"]:
        fail(ValueError("churn campaign reads a transactions file; --db is not supported yet"))
    check_inputs({"transactions": transactions, "contacts": contacts})
    try:
        from pipelines import campaigns
        from pipelines.settings import CampaignSettings, load_settings

        settings = load_settings(
            CampaignSettings,
            config,
            tracking_uri=tracking_uri(),
            horizon_days=horizon_days,
            data_dir=data_dir,
        )
        route_logs(settings.data_dir)
        result = campaigns.campaign(transactions, out, settings, contacts)
    except expected_errors() as exc:
        fail(exc)
    typer.echo(
        f"{result.listings_measured} listings measured, data to {result.data_end}: {result.status}"
    )
    if result.difference is not None:
        typer.echo(
            f"retention difference contact - holdout: {result.difference:+.3f} "
            f"(95% CI {result.ci_low:+.3f} to {result.ci_high:+.3f}); "
            f"value saved {result.value_saved:,.0f}"
        )
    for name, path in result.outputs.items():
        typer.echo(f"{name}: {path}")


@app.command()
@scoring_command
def schedule(
    options: ScoringOptions,
    cron: Annotated[str, Opt("--cron")] = "0 2 * * *",
    timezone: Annotated[str, Opt("--timezone")] = "UTC",
) -> None:
    """Serve the nightly flow through Prefect on a cron schedule (runs until stopped)."""
    settings = _scoring_settings(options)
    try:
        from prefect.schedules import Cron

        from pipelines.flows import nightly as nightly_flow

        inputs = flow_inputs(**options.tables())
        check_destinations(inputs, options.out, settings, serving=True)
    except expected_errors() as exc:
        fail(exc)
    out = options.out
    typer.echo(f"serving 'nightly' on cron '{cron}' ({timezone}); outputs -> {out}; Ctrl-C stops")
    # a service manager stops us with SIGTERM: leave like Ctrl-C, so that exit handlers
    # also stop Prefect's local API server instead of orphaning it
    signal.signal(signal.SIGTERM, _interrupt)
    nightly_flow.serve(
        name="nightly",
        schedules=[Cron(cron, timezone=timezone)],
        global_limit=1,
        parameters={
            "inputs": inputs.model_dump(mode="json"),
            "out_dir": str(out),
            # no URL in stored parameters (it may hold a password): the served process
            # reads MLFLOW_TRACKING_URI / CHURN_DATABASE_URL from its environment
            "settings": settings.model_dump(mode="json", exclude={"tracking_uri"}),
            "score_date": options.score_date,
        },
    )


@app.command()
def demo(
    customers: Annotated[int, Opt("--customers")] = 20_000,
    seed: Annotated[int, Opt("--seed")] = 0,
    data_dir: Annotated[Path, Opt("--data-dir")] = Path("data"),
) -> None:
    """Everything on demo data: simulate, train, run the nightly flow, say where it all is."""
    from pipelines.tracking import ui_command

    raw, out = data_dir / "raw" / "demo", data_dir / "outputs" / "demo"
    if not (raw / "transactions.parquet").exists():
        simulate(customers=customers, seed=seed, out=raw, start="2023-01-01", end="2025-12-31")
    tables = dict(
        transactions=raw / "transactions.parquet",
        interactions=raw / "interactions.parquet",
        customers=raw / "customers.parquet",
    )
    train(
        **tables,
        horizon_days=None,
        force=False,
        engine=None,
        dask_address=None,
        config=None,
        data_dir=data_dir,
    )
    _run_scoring("nightly", ScoringOptions(**tables, out=out, data_dir=data_dir))
    typer.echo(
        f"\nat-risk list: {out / 'at_risk.csv'}\n"
        f"report:       {out / 'report.html'} (open it in any browser)\n"
        f"MLflow UI:    .venv/bin/{ui_command(data_dir, tracking_uri())}\n"
        f"Prefect UI:   PREFECT_HOME={os.environ['PREFECT_HOME']} .venv/bin/prefect server start"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
