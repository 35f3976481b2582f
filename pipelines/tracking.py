"""MLflow wiring: the embedded SQLite store by default, any server via MLFLOW_TRACKING_URI."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

CHAMPION = "champion"
CHALLENGER = "challenger"
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


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


def configure(data_dir: Path, experiment: str, tracking_uri: str | None = None) -> str:
    """Point MLflow at the store and experiment; return the tracking URI.

    Args:
        data_dir: the project's data folder (holds the embedded store).
        experiment: MLflow experiment name.
        tracking_uri: a tracking server or database URI; None = ``MLFLOW_TRACKING_URI``
            if set, else the embedded SQLite store.
    """
    # the environment names the user's server; configure() never leaves its own choice there
    uri, artifacts = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"), None
    if not uri:
        uri, artifacts = local_store(data_dir)
        (data_dir / "mlflow").mkdir(parents=True, exist_ok=True)
    elif uri.split(":", 1)[0].split("+", 1)[0] in DATABASE_SCHEMES:
        # a database store keeps no files: artifacts go under data_dir, not ./mlruns of
        # whatever folder the run happens to start from (a tracking server has its own)
        artifacts = local_store(data_dir)[1]
    user_env = os.environ.get("MLFLOW_TRACKING_URI")
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
        # artifacts beside the database, not in ./mlruns of whatever folder we run from
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


def ui_command(data_dir: Path, tracking_uri: str | None = None) -> str:
    """How a person opens the MLflow UI on the store we used."""
    uri = tracking_uri or local_store(data_dir)[0]
    return f"mlflow ui --backend-store-uri {uri}"
