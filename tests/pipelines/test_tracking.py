"""Where MLflow keeps runs and artifacts: with the store, never in the folder we run from."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipelines import flows
from pipelines.settings import InputPaths, TrainSettings
from pipelines.tracking import configure, local_store, store_for


def test_the_embedded_store_keeps_its_artifacts_under_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = (tmp_path / "data" / "mlflow").resolve()
    assert store_for(tmp_path / "data") == (
        f"sqlite:///{root / 'mlflow.db'}",
        (root / "artifacts").as_uri(),
    )


def test_a_sqlite_file_elsewhere_keeps_its_artifacts_beside_it(tmp_path, monkeypatch):
    database = tmp_path / "shared" / "runs.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    uri, artifacts = store_for(Path("data"))
    assert uri == f"sqlite:///{database}"
    assert artifacts == (tmp_path / "shared" / "artifacts").resolve().as_uri()


def test_a_database_without_files_keeps_artifacts_under_the_data_dir_a_server_decides(tmp_path):
    url = "postgresql+psycopg://u:p@db.example:5432/mlflow"
    assert store_for(tmp_path, url) == (url, local_store(tmp_path)[1])
    assert store_for(tmp_path, "http://mlflow.example:5000") == (
        "http://mlflow.example:5000",
        None,
    )


def test_configure_gives_a_new_experiment_the_store_s_artifact_location(tmp_path):
    database = tmp_path / "elsewhere" / "mlflow.db"
    database.parent.mkdir()
    uri = configure(Path("data"), "where-artifacts-go", f"sqlite:///{database}")
    experiment = MlflowClient(uri).get_experiment_by_name("where-artifacts-go")
    assert experiment.artifact_location == (database.parent / "artifacts").resolve().as_uri()


@pytest.mark.usefixtures("prefect_harness")
def test_training_against_a_store_elsewhere_writes_nothing_where_it_runs(
    demo_tables, tmp_path, monkeypatch
):
    """The user's MLFLOW_TRACKING_URI names a SQLite file; the default data_dir is
    relative, so a run that wrote there would fill the folder it was started from."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{elsewhere / 'mlflow.db'}")
    inputs = InputPaths(transactions=demo_tables["transactions"])
    trained = flows.train(inputs, TrainSettings(candidates=("logistic_rfm",)))

    assert sorted(p.name for p in here.iterdir()) == []
    run = MlflowClient(trained.tracking_uri).get_run(trained.run_id)
    assert run.info.artifact_uri.startswith((elsewhere / "artifacts").resolve().as_uri())
    assert (elsewhere / "artifacts").is_dir()
    assert any(p.name == "roc.png" for p in (elsewhere / "artifacts").rglob("*"))
