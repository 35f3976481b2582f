"""The `churn` command line. Every command prints where its outputs went.

Heavy imports (Prefect, MLflow, XGBoost) happen inside commands, after the
environment defaults below are set, so Prefect keeps its state inside the project.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Customer-churn pipeline: simulate, features, train, score, nightly, schedule.",
)

Opt = typer.Option
TxOpt = Annotated[Path, Opt("--transactions", help="transactions table (.csv or .parquet)")]
IxOpt = Annotated[Path | None, Opt("--interactions", help="interactions table (optional)")]
CuOpt = Annotated[Path | None, Opt("--customers", help="customers table (optional)")]
SubOpt = Annotated[
    Path | None,
    Opt(
        "--subscriptions",
        help="subscriptions table (optional): customer_id, start, end (empty while running)",
    ),
]
ConfigOpt = Annotated[Path | None, Opt("--config", help="YAML file of settings for this flow")]
DataOpt = Annotated[
    Path | None, Opt("--data-dir", help="where the MLflow store lives [default: data]")
]


def _environment() -> None:
    """Embedded defaults: Prefect state in the project, no telemetry, quiet MLflow."""
    os.environ.setdefault("PREFECT_HOME", str(Path.cwd() / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the ephemeral API starts in ~5-20 s; a busy nightly box needs more than the 20 s default
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # fail over a down tracking server in seconds, not MLflow's default minutes of retries;
    # the flows retry the whole step with their own backoff
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # XGBoost's OpenMP threads busy-wait by default, which makes training ~10x slower when
    # anything else shares a small machine's cores; must be set before xgboost loads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _tracking_uri() -> str | None:
    """The user's tracking server, if they named one (read before MLflow touches the env)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or None


def _fail(exc: Exception) -> None:
    """The one line a user sees for an expected error (the details are in the run log)."""
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(code=2)


def _expected_errors() -> tuple[type[Exception], ...]:
    from features.contracts import InputError
    from models.playbook import PlaybookError
    from models.reasons import ReasonMapError
    from models.scoring import FeatureMismatchError
    from pipelines.catalog import OutputBusy, OutputNotWritable
    from pipelines.database import DatabaseAccessError, DatabaseUnavailable
    from pipelines.tracking import TrackingUnavailable

    return (
        DatabaseUnavailable,
        DatabaseAccessError,
        TrackingUnavailable,
        OutputBusy,
        OutputNotWritable,
        InputError,
        ReasonMapError,
        PlaybookError,
        FeatureMismatchError,
        LookupError,
        ValueError,
        FileNotFoundError,
    )


_DATABASE: dict[str, bool] = {"on": False}
_VERBOSE: dict[str, bool] = {"on": False}
# Prefect's run logs (progress, retries, failures with tracebacks), under --data-dir
RUN_LOG = Path("logs") / "churn.log"


class _WarningsOnlyOnConsole(logging.Filter):
    """Without --verbose the terminal gets Prefect's warnings and nothing else.

    Progress goes to the run log; a failure is the CLI's one ``error:`` line, so Prefect's
    ERROR lines (and the INFO line saying the run failed) would only repeat it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return _VERBOSE["on"] or logging.WARNING <= record.levelno < logging.ERROR


class _RunLog(logging.FileHandler):
    """The run log's handler (one at a time: the CLI may run several commands in-process)."""


def _route_logs(data_dir: Path | None) -> Path | None:
    """Prefect's logs -> DATA_DIR/logs/churn.log; the console keeps warnings (all: --verbose).

    Returns:
        the log file, or None if it cannot be opened (the console then shows everything).
    """
    import prefect  # noqa: F401  (sets up Prefect's logging, which this adjusts)
    from prefect.logging.formatters import PrefectFormatter
    from prefect.logging.handlers import PrefectConsoleHandler

    runs = logging.getLogger("prefect")
    for old in [h for h in runs.handlers if isinstance(h, _RunLog)]:
        runs.removeHandler(old)
        old.close()
    path = Path(data_dir or "data") / RUN_LOG
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _RunLog(path, encoding="utf-8")
    except OSError:
        path, quiet = None, False
    else:
        handler.setFormatter(
            PrefectFormatter(
                "%(asctime)s | %(levelname)-7s | %(name)s - %(message)s",
                flow_run_fmt="%(asctime)s | %(levelname)-7s | Flow run %(flow_run_name)r - "
                "%(message)s",
                task_run_fmt="%(asctime)s | %(levelname)-7s | Task run %(task_run_name)r - "
                "%(message)s",
            )
        )
        runs.addHandler(handler)
        quiet = True
    for console in logging.getLogger().handlers:
        if isinstance(console, PrefectConsoleHandler):
            for old in [f for f in console.filters if isinstance(f, _WarningsOnlyOnConsole)]:
                console.removeFilter(old)
            if quiet:
                console.addFilter(_WarningsOnlyOnConsole())
    return path


def _check_destinations(inputs, out: Path, settings, *, serving: bool = False) -> None:  # noqa: ANN001
    """Pre-flight before Prefect starts: a bad destination or login fails in a second.

    A server that does not answer is left to the flow, which retries it with backoff (a
    schedule only warns: the server may be back by the first run).
    """
    from pipelines.database import DatabaseUnavailable
    from pipelines.flows import preflight

    try:
        preflight(inputs, out, settings)
    except DatabaseUnavailable as exc:
        if serving:
            typer.secho(f"warning: {exc}; the runs will retry it", fg="yellow", err=True)


class _NoTracebackForExpected(logging.Filter):
    """Bad input or an unreachable server is one clear line, not a traceback wall.

    Prefect logs every failed task with its traceback; for the errors this CLI explains
    itself (see _expected_errors) the traceback helps nobody, so it is dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], _expected_errors()):
            record.exc_info, record.exc_text = None, None
        return True


def _inputs(  # noqa: ANN202
    transactions: Path,
    interactions: Path | None,
    customers: Path | None,
    subscriptions: Path | None = None,
):
    """File paths, or with --db the same options name PostgreSQL tables."""
    import prefect  # noqa: F401  (sets up Prefect's console handler, which we filter)

    from pipelines.settings import DatabaseInputs, InputPaths

    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _NoTracebackForExpected) for f in handler.filters):
            handler.addFilter(_NoTracebackForExpected())

    if _DATABASE["on"]:
        if subscriptions:
            raise typer.BadParameter(
                "subscriptions are read from files only for now", param_hint="--subscriptions"
            )
        return DatabaseInputs(
            transactions=str(transactions),
            interactions=str(interactions) if interactions else None,
            customers=str(customers) if customers else None,
        )
    return InputPaths(
        transactions=transactions,
        interactions=interactions,
        customers=customers,
        subscriptions=subscriptions,
    )


@app.callback()
def main(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        Opt(
            "--db",
            envvar="CHURN_DATABASE_URL",
            help="PostgreSQL URL (postgresql+psycopg://user@host/db): --transactions, "
            "--interactions and --customers then name tables, and --out-table works. Keep "
            "the password out of it: in CHURN_DATABASE_URL, or in ~/.pgpass / PGPASSFILE",
            show_envvar=True,
        ),
    ] = None,
    verbose: Annotated[
        bool,
        Opt(
            "--verbose",
            help="show Prefect's run logs and tracebacks on the terminal (they always go to "
            "DATA_DIR/logs/churn.log)",
        ),
    ] = False,
) -> None:
    _environment()
    _DATABASE["on"] = bool(db)
    _VERBOSE["on"] = verbose
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
    customers: Annotated[int, Opt("--customers", help="number of customers")] = 20_000,
    seed: Annotated[int, Opt("--seed")] = 0,
    out: Annotated[Path, Opt("--out", help="output folder")] = Path("data/raw/demo"),
    start: Annotated[str, Opt("--start")] = "2023-01-01",
    end: Annotated[str, Opt("--end")] = "2025-12-31",
    as_of: Annotated[
        str | None,
        Opt("--as-of", help="write only what was known before this date (day-by-day feeds)"),
    ] = None,
    scenario: Annotated[
        str,
        Opt(
            "--scenario",
            help="causal structure of departures: retail (decline windows), hazard "
            "(competing hazards on latent customer states) or subscription (plans, usage "
            "events, cancellations; also writes subscriptions.parquet)",
        ),
    ] = "retail",
) -> None:
    """Write a simulated business (with ground truth in truth.parquet) to OUT."""
    from pipelines.catalog import write_atomic
    from pipelines.simulate import SCENARIOS
    from pipelines.simulate import as_of as cut
    from pipelines.simulate import simulate as run

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


@app.command()
def features(
    transactions: TxOpt,
    cutoff: Annotated[str, Opt("--cutoff", help="YYYY-MM-DD")],
    out: Annotated[Path, Opt("--out")],
    interactions: IxOpt = None,
    customers: CuOpt = None,
    lookback_days: Annotated[int, Opt("--lookback-days")] = 365,
    subscriptions: SubOpt = None,
) -> None:
    """Build the feature table for one cutoff -> OUT/features.parquet."""
    try:
        from pipelines.flows import build_features

        _route_logs(None)
        path = build_features(
            _inputs(transactions, interactions, customers, subscriptions),
            cutoff,
            out,
            lookback_days,
        )
    except _expected_errors() as exc:
        _fail(exc)
    typer.echo(f"features: {path}")


@app.command()
def train(
    transactions: TxOpt,
    interactions: IxOpt = None,
    customers: CuOpt = None,
    subscriptions: SubOpt = None,
    horizon_days: Annotated[int | None, Opt("--horizon-days")] = None,
    force: Annotated[
        bool, Opt("--force", help="promote to @champion even if not better (logged)")
    ] = False,
    engine: EngineOpt = None,
    dask_address: DaskOpt = None,
    config: ConfigOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Train, log to MLflow, register as @challenger; promote to @champion if it is better."""
    try:
        from pipelines.flows import result_json
        from pipelines.flows import train as run
        from pipelines.settings import TrainSettings, load_settings
        from pipelines.tracking import ui_command

        settings = load_settings(
            TrainSettings,
            config,
            horizon_days=horizon_days,
            data_dir=data_dir,
            tracking_uri=_tracking_uri(),
            force=force or None,
            engine=engine,
            dask_address=dask_address,
        )
        _route_logs(settings.data_dir)
        result = run(_inputs(transactions, interactions, customers, subscriptions), settings)
    except _expected_errors() as exc:
        _fail(exc)
    typer.echo(result_json(result))
    typer.echo(f"model: models:/{result.model_name}@challenger (version {result.model_version})")
    verdict = "promoted" if result.promoted else "not promoted"
    typer.echo(f"{verdict}: {result.promotion_reason}")
    typer.echo(
        f"champion: models:/{result.model_name}@champion (version {result.champion_version})"
    )
    typer.echo(f"MLflow store: {result.tracking_uri}")
    typer.echo(f"open it with: {ui_command(settings.data_dir, settings.tracking_uri)}")


def _score_command(
    flow_name: str,
    transactions: Path,
    interactions: Path | None,
    customers: Path | None,
    score_date: str | None,
    out: Path,
    config: Path | None,
    subscriptions: Path | None = None,
    **overrides: object,
) -> None:
    try:
        from pipelines import flows
        from pipelines.settings import ScoreSettings, load_settings

        settings = load_settings(ScoreSettings, config, tracking_uri=_tracking_uri(), **overrides)
        run = getattr(flows, flow_name)
        _route_logs(settings.data_dir)
        inputs = _inputs(transactions, interactions, customers, subscriptions)
        _check_destinations(inputs, out, settings)
        result = run(inputs, out, settings, score_date)
    except _expected_errors() as exc:
        _fail(exc)
    typer.echo(flows.result_json(result))
    if result.drifting_features:
        typer.secho(
            "warning: drift against the training data in " + ", ".join(result.drifting_features),
            fg="yellow",
        )
    for name, path in result.outputs.items():
        typer.echo(f"{name}: {path}")


ScoreDate = Annotated[
    str | None, Opt("--score-date", help="YYYY-MM-DD [default: day after the data]")
]
TopOpt = Annotated[int | None, Opt("--top", help="cap the list at N customers")]
EngineOpt = Annotated[
    str | None, Opt("--engine", help="local (default) or dask: where features and training run")
]
DaskOpt = Annotated[
    str | None,
    Opt("--dask-address", help="existing Dask scheduler, tcp://host:8786 (else a local cluster)"),
]
OutTableOpt = Annotated[
    str | None, Opt("--out-table", help="also write the list to this PostgreSQL table (--db)")
]
BudgetOpt = Annotated[
    float | None,
    Opt("--budget", help="cap the list at what this budget buys (contact_cost each, default 10)"),
]
OutOpt = Annotated[Path, Opt("--out", help="output folder")]
ExplainAllOpt = Annotated[
    bool,
    Opt(
        "--explain-all",
        help="explain every customer in scores.parquet, not only those at or above the "
        "risk threshold (slower: SHAP costs ~1,000x a prediction)",
    ),
]


@app.command()
def score(
    transactions: TxOpt,
    out: OutOpt,
    interactions: IxOpt = None,
    customers: CuOpt = None,
    subscriptions: SubOpt = None,
    score_date: ScoreDate = None,
    top: TopOpt = None,
    budget: BudgetOpt = None,
    out_table: OutTableOpt = None,
    engine: EngineOpt = None,
    dask_address: DaskOpt = None,
    explain_all: ExplainAllOpt = False,
    config: ConfigOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Score active customers with the champion -> OUT/at_risk.{csv,parquet}, scores.parquet."""
    _score_command(
        "score",
        transactions,
        interactions,
        customers,
        score_date,
        out,
        config,
        subscriptions,
        top=top,
        budget=budget,
        data_dir=data_dir,
        output_table=out_table,
        engine=engine,
        dask_address=dask_address,
        explain_all=explain_all or None,
    )


@app.command()
def nightly(
    transactions: TxOpt,
    out: OutOpt,
    interactions: IxOpt = None,
    customers: CuOpt = None,
    subscriptions: SubOpt = None,
    score_date: ScoreDate = None,
    top: TopOpt = None,
    budget: BudgetOpt = None,
    out_table: OutTableOpt = None,
    engine: EngineOpt = None,
    dask_address: DaskOpt = None,
    explain_all: ExplainAllOpt = False,
    config: ConfigOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """The nightly job: features for the day and the scored list, all written to OUT."""
    _score_command(
        "nightly",
        transactions,
        interactions,
        customers,
        score_date,
        out,
        config,
        subscriptions,
        top=top,
        budget=budget,
        data_dir=data_dir,
        output_table=out_table,
        engine=engine,
        dask_address=dask_address,
        explain_all=explain_all or None,
    )


@app.command()
def campaign(
    transactions: TxOpt,
    out: Annotated[Path, Opt("--out", help="the nightly output folder (its history/)")],
    horizon_days: Annotated[
        int | None, Opt("--horizon-days", help="retained = bought within this many days")
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Did the calls help? Contacted vs held-out retention -> OUT/campaign.csv."""
    if _DATABASE["on"]:
        _fail(ValueError("churn campaign reads a transactions file; --db is not supported yet"))
    try:
        from pipelines import campaigns
        from pipelines.settings import CampaignSettings, load_settings

        settings = load_settings(
            CampaignSettings,
            config,
            tracking_uri=_tracking_uri(),
            horizon_days=horizon_days,
            data_dir=data_dir,
        )
        _route_logs(settings.data_dir)
        result = campaigns.campaign(transactions, out, settings)
    except _expected_errors() as exc:
        _fail(exc)
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
def schedule(
    transactions: TxOpt,
    out: OutOpt,
    interactions: IxOpt = None,
    customers: CuOpt = None,
    subscriptions: SubOpt = None,
    cron: Annotated[str, Opt("--cron")] = "0 2 * * *",
    timezone: Annotated[str, Opt("--timezone")] = "UTC",
    top: TopOpt = None,
    out_table: OutTableOpt = None,
    engine: EngineOpt = None,
    dask_address: DaskOpt = None,
    config: ConfigOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Serve the nightly flow through Prefect on a cron schedule (runs until stopped)."""
    from prefect.schedules import Cron

    from pipelines.flows import nightly as nightly_flow
    from pipelines.settings import ScoreSettings, load_settings

    settings = load_settings(
        ScoreSettings,
        config,
        top=top,
        data_dir=data_dir,
        tracking_uri=_tracking_uri(),
        output_table=out_table,
        engine=engine,
        dask_address=dask_address,
    )
    inputs = _inputs(transactions, interactions, customers, subscriptions)
    try:
        _check_destinations(inputs, out, settings, serving=True)
    except _expected_errors() as exc:
        _fail(exc)
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
    nightly(
        **tables, out=out, score_date=None, top=None, budget=None, config=None, data_dir=data_dir
    )
    typer.echo(
        f"\nat-risk list: {out / 'at_risk.csv'}\n"
        f"report:       {out / 'report.html'} (open it in any browser)\n"
        f"MLflow UI:    .venv/bin/{ui_command(data_dir, _tracking_uri())}\n"
        f"Prefect UI:   PREFECT_HOME={os.environ['PREFECT_HOME']} .venv/bin/prefect server start"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
