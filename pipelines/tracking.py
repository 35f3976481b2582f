"""MLflow wiring: the embedded SQLite store by default, any server via MLFLOW_TRACKING_URI."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

CHAMPION = "champion"


def local_store(data_dir: Path) -> tuple[str, str]:
    """Tracking URI and artifact location of the embedded store under ``data_dir``."""
    root = (data_dir / "mlflow").resolve()
    return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()


def configure(data_dir: Path, experiment: str) -> str:
    """Point MLflow at the configured store and experiment; return the tracking URI."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    artifacts = None
    if not uri:
        uri, artifacts = local_store(data_dir)
        (data_dir / "mlflow").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
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


def ui_command(data_dir: Path) -> str:
    """How a person opens the MLflow UI on the store we used."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or local_store(data_dir)[0]
    return f"mlflow ui --backend-store-uri {uri}"
