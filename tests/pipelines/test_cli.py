"""The `churn` command line, in-process, against the real flows and a real MLflow store."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")
runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result


def test_help_lists_the_command_contract():
    result = invoke("--help")
    for command in ("simulate", "features", "train", "score", "nightly", "schedule"):
        assert command in result.output


def test_simulate_features_train_score(tmp_path):
    raw, store, out = tmp_path / "raw", tmp_path / "store", tmp_path / "out"
    result = invoke("simulate", "--customers", 800, "--seed", 5, "--out", raw)
    assert result.exit_code == 0, result.output
    for name in ("transactions", "interactions", "customers", "truth"):
        assert f"{raw / name}.parquet" in result.output
    truth = pd.read_parquet(raw / "truth.parquet")
    assert list(truth.columns)[:4] == ["customer_id", "churned", "churn_date", "reason"]

    tables = [
        "--transactions",
        raw / "transactions.parquet",
        "--interactions",
        raw / "interactions.parquet",
        "--customers",
        raw / "customers.parquet",
    ]
    result = invoke("features", *tables, "--cutoff", "2025-06-01", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"features: {out / 'features.parquet'}" in result.output

    result = invoke("train", *tables, "--horizon-days", 90, "--data-dir", store)
    assert result.exit_code == 0, result.output
    assert "models:/churn@champion (version 1)" in result.output
    assert "promoted: no champion that can be evaluated" in result.output
    assert f"sqlite:///{(store / 'mlflow' / 'mlflow.db').resolve()}" in result.output

    result = invoke("score", *tables, "--top", 5, "--out", out, "--data-dir", store)
    assert result.exit_code == 0, result.output
    assert f"at_risk_csv: {out / 'at_risk.csv'}" in result.output
    assert len(pd.read_csv(out / "at_risk.csv")) == 5
    assert (out / "scores.parquet").exists()


def test_bad_input_exits_2_with_a_clear_message(tmp_path):
    bad = tmp_path / "transactions.csv"
    bad.write_text("customer_id,timestamp,amount\nA,2024-01-01,10\nB,not a date,5\n")
    result = invoke("features", "--transactions", bad, "--cutoff", "2024-02-01", "--out", tmp_path)
    assert result.exit_code == 2
    assert "transactions.csv" in result.output and "'timestamp'" in result.output
    assert "row 2" in result.output
    assert not (tmp_path / "features.parquet").exists()


def test_missing_column_is_named(tmp_path):
    bad = tmp_path / "tx.csv"
    bad.write_text("customer_id,date,amount\nA,2024-01-01,10\n")
    result = invoke("features", "--transactions", bad, "--cutoff", "2024-02-01", "--out", tmp_path)
    assert result.exit_code == 2
    assert "tx.csv" in result.output and "timestamp" in result.output


def test_mlflow_tracking_uri_overrides_the_embedded_store(tmp_path, monkeypatch, demo_tables):
    server_db = tmp_path / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{server_db}")
    monkeypatch.chdir(tmp_path)  # artifacts of a foreign store land relative to cwd
    result = invoke(
        "train", "--transactions", demo_tables["transactions"], "--data-dir", tmp_path / "data"
    )
    assert result.exit_code == 0, result.output
    assert f"MLflow store: sqlite:///{server_db}" in result.output
    assert server_db.exists()
    assert not (tmp_path / "data" / "mlflow" / "mlflow.db").exists()


def test_an_unreachable_tracking_server_is_one_clear_line(tmp_path, monkeypatch, demo_tables):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    result = invoke("train", "--transactions", demo_tables["transactions"])
    assert result.exit_code == 2
    assert "error: MLflow tracking store http://127.0.0.1:9 is unavailable" in result.output
