"""The options of the `churn` commands, each declared once.

``score``, ``nightly`` and ``schedule`` take their scoring options from one definition,
:class:`ScoringOptions`, through :func:`scoring_command`: a flag added there is a flag of
all three, with the same name, type, default and help (a test compares the commands).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer

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
ScoreDateOpt = Annotated[
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
BatchesOpt = Annotated[
    int | None,
    Opt(
        "--batches",
        help="read the inputs in N customer batches: memory follows one batch, the "
        "results are the same [default: whole tables]",
    ),
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


# --- the other commands' own flags ---------------------------------------------------------
DbOpt = Annotated[
    str | None,
    Opt(
        "--db",
        envvar="CHURN_DATABASE_URL",
        help="PostgreSQL URL (postgresql+psycopg://user@host/db): --transactions, "
        "--interactions and --customers then name tables, and --out-table works. Keep "
        "the password out of it: in CHURN_DATABASE_URL, or in ~/.pgpass / PGPASSFILE",
        show_envvar=True,
    ),
]
VerboseOpt = Annotated[
    bool,
    Opt(
        "--verbose",
        "-v",
        help="show Prefect's run logs and tracebacks on the terminal (they always go to "
        "DATA_DIR/logs/churn.log); before or after the command",
    ),
]
VERBOSE_FLAGS = ("--verbose", "-v")
CustomerCountOpt = Annotated[int, Opt("--customers", help="number of customers")]
SeedOpt = Annotated[int, Opt("--seed")]
SimulateOutOpt = Annotated[Path, Opt("--out", help="output folder")]
StartOpt = Annotated[str, Opt("--start")]
EndOpt = Annotated[str, Opt("--end")]
AsOfOpt = Annotated[
    str | None,
    Opt("--as-of", help="write only what was known before this date (day-by-day feeds)"),
]
ScenarioOpt = Annotated[
    str,
    Opt(
        "--scenario",
        help="causal structure of departures: retail (decline windows), hazard "
        "(competing hazards on latent customer states) or subscription (plans, usage "
        "events, cancellations; also writes subscriptions.parquet)",
    ),
]

ForceOpt = Annotated[bool, Opt("--force", help="promote to @champion even if not better (logged)")]
RetainedDaysOpt = Annotated[
    int | None, Opt("--horizon-days", help="retained = bought within this many days")
]
HistoryOpt = Annotated[Path, Opt("--out", help="the nightly output folder (its history/)")]


@dataclass(frozen=True)
class ScoringOptions:
    """What ``score``, ``nightly`` and ``schedule`` are told on the command line."""

    transactions: Path
    out: Path
    interactions: Path | None = None
    customers: Path | None = None
    subscriptions: Path | None = None
    score_date: str | None = None
    top: int | None = None
    budget: float | None = None
    out_table: str | None = None
    engine: str | None = None
    dask_address: str | None = None
    explain_all: bool = False
    batches: int | None = None
    config: Path | None = None
    data_dir: Path | None = None

    def tables(self) -> dict[str, Path | None]:
        """Input table -> the file (or, with --db, the table name) given for it."""
        return {
            "transactions": self.transactions,
            "interactions": self.interactions,
            "customers": self.customers,
            "subscriptions": self.subscriptions,
        }

    def settings_overrides(self) -> dict[str, Any]:
        """The ``ScoreSettings`` fields these flags set (None: the file's or the default)."""
        return {
            "top": self.top,
            "budget": self.budget,
            "data_dir": self.data_dir,
            "output_table": self.out_table,
            "engine": self.engine,
            "dask_address": self.dask_address,
            "explain_all": self.explain_all or None,
            "feature_batches": self.batches,
        }


# each field's flag, in the order --help lists them
_SCORING_FLAGS: dict[str, Any] = {
    "transactions": TxOpt,
    "out": OutOpt,
    "interactions": IxOpt,
    "customers": CuOpt,
    "subscriptions": SubOpt,
    "score_date": ScoreDateOpt,
    "top": TopOpt,
    "budget": BudgetOpt,
    "out_table": OutTableOpt,
    "engine": EngineOpt,
    "dask_address": DaskOpt,
    "explain_all": ExplainAllOpt,
    "batches": BatchesOpt,
    "config": ConfigOpt,
    "data_dir": DataOpt,
}


def scoring_command(command: Callable[..., None]) -> Callable[..., None]:
    """Turn ``command(options: ScoringOptions, **own)`` into a typer command.

    The command's parameters become the scoring flags of :class:`ScoringOptions`,
    followed by its own (``schedule``'s ``--cron``); it is called with the scoring
    flags gathered into one :class:`ScoringOptions`.

    Args:
        command: a function whose first parameter takes the :class:`ScoringOptions`.

    Returns:
        The function to register with ``app.command()``.
    """
    own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]
    shared = [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if field.default is MISSING else field.default,
            annotation=_SCORING_FLAGS[field.name],
        )
        for field in fields(ScoringOptions)
    ]
    parameters = [*shared, *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own)]

    @functools.wraps(command)
    def run(**values: Any) -> None:
        options = ScoringOptions(**{f.name: values.pop(f.name) for f in fields(ScoringOptions)})
        command(options, **values)

    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return run
