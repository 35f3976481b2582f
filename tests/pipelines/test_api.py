"""The Python API (pipelines.api) gives what the `churn` commands give on the same data,
and its read / features / explain functions start no Prefect server."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines import api
from pipelines.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")
LISTS = ("at_risk", "win_back", "scores")


def _cli(*args: object) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _table_flags(tables: dict[str, Path]) -> list[Path | str]:
    return [
        "--transactions",
        tables["transactions"],
        "--interactions",
        tables["interactions"],
        "--customers",
        tables["customers"],
    ]


def _in_a_fresh_process(code: str, tmp_path: Path) -> dict:
    """Run ``code`` (which sets ``out``) in a new interpreter; ``out`` and whether
    Prefect's API server was loaded (it is imported to start one)."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json, sys
        out["server"] = "prefect.server.api.server" in sys.modules
        print(json.dumps(out, default=str))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("api_store")


@pytest.fixture(scope="module")
def trained(demo_tables, store):
    return api.train(demo_tables["transactions"].parent, api.TrainSettings(data_dir=store))


@pytest.fixture(scope="module")
def scored(trained, demo_tables, store, tmp_path_factory) -> tuple[api.Scored, Path]:
    out = tmp_path_factory.mktemp("api_scores")
    return api.score(
        demo_tables["transactions"].parent, out, api.ScoreSettings(data_dir=store)
    ), out


def test_the_api_names_are_stable():
    assert sorted(api.__all__) == sorted(
        [
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
    )
    for name in api.__all__:
        assert getattr(api, name) is not None


def test_tables_and_features_equal_the_cli_without_a_prefect_server(tmp_path, demo_tables):
    folder = demo_tables["transactions"].parent
    out = _in_a_fresh_process(
        f"""
        from pipelines import api
        tables = api.load_tables({str(folder)!r})
        features = api.build_features(tables, "2025-06-01")
        features.reset_index().to_parquet("api_features.parquet")
        out = {{"rows": tables.rows_read, "warnings": list(tables.warnings)}}
        """,
        tmp_path,
    )
    assert out["server"] is False
    _cli("features", *_table_flags(demo_tables), "--cutoff", "2025-06-01", "--out", tmp_path)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "api_features.parquet"),
        pd.read_parquet(tmp_path / "features.parquet"),
    )
    tables = api.load_tables(folder)
    assert (
        out["rows"]
        == tables.rows_read
        == {
            "transactions": len(pd.read_parquet(demo_tables["transactions"])),
            "interactions": len(pd.read_parquet(demo_tables["interactions"])),
            "customers": len(pd.read_parquet(demo_tables["customers"])),
        }
    )
    assert out["warnings"] == list(tables.warnings)


def test_a_bad_file_is_the_contracts_error(tmp_path):
    bad = tmp_path / "tx.csv"
    bad.write_text("customer_id,timestamp\nA,2024-01-01\n")
    with pytest.raises(api.InputError, match="amount"):
        api.load_tables({"transactions": bad})


def test_train_returns_the_run_its_leaderboard_and_the_registered_version(trained, store):
    assert trained.model_version == "1" and trained.promoted
    assert set(trained.leaderboard) == {"xgboost", "xgboost_btyd", "logistic_rfm", "bgnbd", "blend"}
    mlflow.set_tracking_uri(trained.tracking_uri)
    client = mlflow.MlflowClient(trained.tracking_uri)
    version = client.get_model_version_by_alias("churn", "champion")
    assert (str(version.version), version.run_id) == ("1", trained.run_id)
    assert client.get_run(trained.run_id).data.metrics["holdout_roc_auc"] == pytest.approx(
        trained.metrics["holdout_roc_auc"]
    )


def test_score_equals_churn_score(scored, demo_tables, store, tmp_path):
    result, api_out = scored
    _cli("score", *_table_flags(demo_tables), "--out", tmp_path, "--data-dir", store)
    for name in LISTS:
        from_cli = pd.read_parquet(tmp_path / f"{name}.parquet").drop(columns="scored_at")
        from_api = getattr(result, name).drop(columns="scored_at")
        pd.testing.assert_frame_equal(from_api, from_cli)
    assert len(result.at_risk) == result.result.customers_listed > 0
    assert len(result.win_back) == result.result.customers_win_back > 0
    assert result.result.outputs["at_risk_csv"] == str(api_out / "at_risk.csv")


def test_score_of_loaded_tables_equals_score_of_the_files(scored, demo_tables, store, tmp_path):
    tables = api.load_tables(demo_tables["transactions"].parent)
    again = api.score(tables, tmp_path, api.ScoreSettings(data_dir=store))
    for name in LISTS:
        pd.testing.assert_frame_equal(
            getattr(again, name).drop(columns="scored_at"),
            getattr(scored[0], name).drop(columns="scored_at"),
        )


@pytest.mark.parametrize("which", ["at_risk", "win_back"])
def test_explain_equals_the_customers_scored_row(which, scored, demo_tables, store):
    result = scored[0]
    customer = getattr(result, which)["customer_id"].iloc[0]
    row = result.scores.set_index("customer_id").loc[customer]
    why = api.explain(
        customer,
        demo_tables["transactions"].parent,
        result.result.score_date,
        api.ScoreSettings(data_dir=store),
    )
    assert (why.status, why.top_reason, why.top_drivers, why.reason_source) == (
        row["status"],
        row["top_reason"],
        row["top_drivers"],
        row["reason_source"],
    )
    assert why.reason_confidence == pytest.approx(row["reason_confidence"], abs=1e-9)
    assert why.churn_probability == pytest.approx(row["churn_probability"], abs=1e-9)
    assert why.reason_scores[why.top_reason] == pytest.approx(row[f"reason_{why.top_reason}"])
    assert why.model_version == "1"
    # the contributions are the model's log-odds, largest effect first
    assert why.contributions.abs().is_monotonic_decreasing


def test_explain_starts_no_prefect_server_and_names_an_unknown_customer(
    scored, demo_tables, store, tmp_path
):
    customer = scored[0].at_risk["customer_id"].iloc[0]
    out = _in_a_fresh_process(
        f"""
        from pipelines import api
        settings = api.ScoreSettings(data_dir={str(store)!r})
        folder = {str(demo_tables["transactions"].parent)!r}
        out = {{"reason": api.explain({customer!r}, folder, None, settings).top_reason}}
        try:
            api.explain("nobody", folder, None, settings)
        except LookupError as exc:
            out["unknown"] = str(exc)
        """,
        tmp_path,
    )
    assert out["server"] is False
    assert out["reason"] == scored[0].at_risk["top_reason"].iloc[0]
    assert out["unknown"].startswith("customer nobody bought nothing")
