"""MLflow wiring: the embedded SQLite store by default, any server via MLFLOW_TRACKING_URI.

Plain functions, no Prefect: ``pipelines.registry`` holds the flows' MLflow tasks (each
flow connects once, at its start, and its tasks use the store configured here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

CHAMPION = "champion"
CHALLENGER = "challenger"
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
_SQLITE_PREFIX = "sqlite:///"


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking store cannot be reached (worth retrying later)."""


def _without_password(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def local_store(data_dir: Path) -> tuple[str, str]:
    """Tracking URI and artifact location of the embedded store under ``data_dir``."""
    root = (data_dir / "mlflow").resolve()
    return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None: in memory, or not a file URI)."""
    if not uri.startswith(_SQLITE_PREFIX):
        return None
    path = uri.removeprefix(_SQLITE_PREFIX).split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def store_for(data_dir: Path, tracking_uri: str | None = None) -> tuple[str, str | None]:
    """The tracking URI and where a new experiment keeps its artifacts.

    Artifacts follow the store, never the folder a command runs from: the embedded
    store keeps them under ``data_dir``; a SQLite file elsewhere keeps them in
    ``artifacts`` beside it; another database (which holds no files) keeps them under
    ``data_dir``; a tracking server decides for itself (None).

    Args:
        data_dir: the project's data folder (holds the embedded store).
        tracking_uri: a tracking server or database URI; None = ``MLFLOW_TRACKING_URI``
            if set, else the embedded SQLite store.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return local_store(data_dir)
    if uri.split(":", 1)[0].split("+", 1)[0] not in DATABASE_SCHEMES:
        return uri, None
    database = _sqlite_file(uri)
    if database is not None:
        return uri, (database.resolve().parent / "artifacts").as_uri()
    # MLflow's default for a database store is ./mlruns of whatever folder we run from
    return uri, local_store(data_dir)[1]


def configure(data_dir: Path, experiment: str, tracking_uri: str | None = None) -> str:
    """Point MLflow at the store and experiment; return the tracking URI.

    Args:
        data_dir: the project's data folder (holds the embedded store).
        experiment: MLflow experiment name.
        tracking_uri: a tracking server or database URI; None = ``MLFLOW_TRACKING_URI``
            if set, else the embedded SQLite store.

    Raises:
        TrackingUnavailable: the store cannot be reached.
    """
    # the environment names the user's server; configure() never leaves its own choice there
    user_env = os.environ.get("MLFLOW_TRACKING_URI")
    uri, artifacts = store_for(data_dir, tracking_uri)
    if not (tracking_uri or user_env):
        (data_dir / "mlflow").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # set_tracking_uri also exports MLFLOW_TRACKING_URI; undo that so one run's store never
    # becomes the next run's "user choice" in the same process
    if user_env is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = user_env
    try:
        existing = mlflow.get_experiment_by_name(experiment)
    except (MlflowException, OSError) as exc:
        raise TrackingUnavailable(
            f"MLflow tracking store {_without_password(uri)} is unavailable: "
            f"{str(exc).splitlines()[0][:300]}"
        ) from exc
    if existing is None:
        mlflow.create_experiment(experiment, artifact_location=artifacts)
    mlflow.set_experiment(experiment)
    return uri


def champion_version(model_name: str) -> str:
    """Version number holding the champion alias, with a clear error if there is none."""
    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, CHAMPION).version)
    except MlflowException as exc:
        raise LookupError(
            f"no '{model_name}@{CHAMPION}' model in the registry at {mlflow.get_tracking_uri()}; "
            "run `churn train` first"
        ) from exc


def load_served_model(uri: str) -> Any:
    """A registered model: a ChurnModel (scikit-learn flavour) or an older XGBoost one."""
    flavors = mlflow.models.get_model_info(uri).flavors
    if "sklearn" in flavors:
        return mlflow.sklearn.load_model(uri)
    return mlflow.xgboost.load_model(uri)


def ui_command(data_dir: Path, tracking_uri: str | None = None) -> str:
    """How a person opens the MLflow UI on the store we used."""
    uri = tracking_uri or local_store(data_dir)[0]
    return f"mlflow ui --backend-store-uri {uri}"
