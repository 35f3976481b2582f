"""The real flows under Prefect's test harness, with a real MLflow SQLite store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from features.contracts import InputError
from models.reasons import REASONS
from models.scoring import LIST_COLUMNS, FeatureMismatchError
from pipelines import flows
from pipelines.settings import InputPaths, ScoreSettings, TrainSettings

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _inputs(tables: dict[str, Path], with_interactions: bool = True) -> InputPaths:
    return InputPaths(
        transactions=tables["transactions"],
        interactions=tables["interactions"] if with_interactions else None,
        customers=tables["customers"] if with_interactions else None,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def trained(demo_tables, store) -> flows.TrainResult:
    return flows.train(_inputs(demo_tables), TrainSettings(data_dir=store))


@pytest.fixture(scope="module")
def nightly_out(trained, demo_tables, store, tmp_path_factory) -> tuple[Path, flows.ScoreResult]:
    out = tmp_path_factory.mktemp("nightly")
    return out, flows.nightly(_inputs(demo_tables), out, ScoreSettings(data_dir=store))


def test_train_registers_a_champion_with_metrics_plots_and_reason_map(trained):
    client = MlflowClient(trained.tracking_uri)
    version = client.get_model_version_by_alias("churn", "champion")
    assert str(version.version) == trained.model_version == "1"
    run = client.get_run(trained.run_id)
    for metric in ("holdout_roc_auc", "holdout_pr_auc", "holdout_top_decile_lift", "holdout_brier"):
        assert metric in run.data.metrics
    assert run.data.metrics["holdout_roc_auc"] > 0.75
    for param in ("train_cutoffs", "validation_cutoff", "holdout_cutoff", "horizon_days"):
        assert param in run.data.params
    # time-based: every training cutoff is before validation, which is before holdout
    train_cutoffs = run.data.params["train_cutoffs"].split(",")
    assert (
        max(train_cutoffs)
        < run.data.params["validation_cutoff"]
        < run.data.params["holdout_cutoff"]
    )
    artifacts = {a.path for a in client.list_artifacts(trained.run_id, "plots")}
    assert artifacts == {
        f"plots/{n}.png" for n in ("roc", "lift", "calibration", "calibration_raw", "shap_summary")
    }
    # the leaderboard: every candidate's validation and holdout scores, and which serves
    board = mlflow.artifacts.load_dict(f"runs:/{trained.run_id}/leaderboard.json")
    assert [row["candidate"] for row in board] == [*TrainSettings().candidates, "blend"]
    assert sum(row["serves"] for row in board) == 1
    assert all(row["validation_roc_auc"] > 0.5 and row["holdout_roc_auc"] > 0.5 for row in board)
    serving = next(row["candidate"] for row in board if row["serves"])
    assert run.data.params["serving_candidate"] == trained.serving_candidate == serving
    # refit on every labelled window: trained through the holdout's label window
    label_days = int(run.data.params["horizon_days"]) + int(run.data.params["confirm_days"])
    assert run.data.params["trained_through"] == str(
        (pd.Timestamp(run.data.params["holdout_cutoff"]) + pd.Timedelta(days=label_days)).date()
    )
    assert run.data.metrics["refit_rows"] > run.data.metrics["train_rows"]
    reason_map = mlflow.artifacts.load_dict(f"runs:/{trained.run_id}/reason_map.json")
    features = mlflow.artifacts.load_dict(f"runs:/{trained.run_id}/features.json")["features"]
    assert set(features) <= set(reason_map["features"])
    model_info = mlflow.models.get_model_info("models:/churn@champion")
    assert model_info.signature is not None and model_info.saved_input_example_info is not None


def test_nightly_writes_a_ranked_explained_list(nightly_out, trained):
    out, result = nightly_out
    listed = pd.read_csv(out / "at_risk.csv")
    scores = pd.read_parquet(out / "scores.parquet")
    features = pd.read_parquet(out / "features.parquet")
    assert list(pd.read_parquet(out / "at_risk.parquet").columns) == list(listed.columns)
    assert set(LIST_COLUMNS) <= set(listed.columns)
    assert len(scores) == len(features) == result.customers_scored > 0
    assert len(listed) == result.customers_listed > 0
    assert listed["value_at_risk"].is_monotonic_decreasing
    # staff call in rank order 1, 2, 3, ... with no gaps
    assert listed["risk_rank"].tolist() == list(range(1, len(listed) + 1))
    assert (listed["churn_probability"] >= ScoreSettings().risk_threshold).all()
    # the retention list holds customers who are still here, nobody lapsed
    assert set(listed["status"]) == {"active"} and set(listed["list"]) == {"at_risk"}
    assert set(listed["top_reason"]) <= set(REASONS)
    assert listed["top_drivers"].str.len().gt(0).all()
    assert listed["recommended_action"].notna().all()
    assert (listed["model_version"].astype(str) == trained.model_version).all()
    assert set(listed["customer_id"]) <= set(scores["customer_id"])
    assert sum(result.reason_mix.values()) == pytest.approx(1.0, abs=1e-3)


def test_nightly_writes_the_win_back_list_of_lapsed_customers(nightly_out):
    out, result = nightly_out
    win_back = pd.read_csv(out / "win_back.csv")
    scores = pd.read_parquet(out / "scores.parquet")

    assert list(pd.read_parquet(out / "win_back.parquet").columns) == list(win_back.columns)
    assert len(win_back) == result.customers_win_back > 0
    assert result.customers_active + result.customers_lapsed == result.customers_scored
    assert set(scores["status"]) == {"active", "lapsed"}
    assert set(win_back["status"]) == {"lapsed"} and set(win_back["list"]) == {"win_back"}
    # silence past the plausible gap is what makes them lapsed
    assert (win_back["days_since_last_purchase"] > win_back["plausible_gap_days"]).all()
    # ranked by the value they used to bring, every one with a reason read before the silence
    assert win_back["risk_rank"].tolist() == list(range(1, len(win_back) + 1))
    assert win_back["expected_value"].is_monotonic_decreasing
    assert set(win_back["top_reason"]) <= set(REASONS)
    assert (pd.to_datetime(win_back["reason_as_of"]) <= pd.Timestamp(result.score_date)).all()
    assert win_back["recommended_action"].notna().all()
    assert "win-back" in (out / "report.html").read_text().lower()


def test_score_with_top_n_caps_the_list(trained, demo_tables, store, tmp_path):
    result = flows.score(_inputs(demo_tables), tmp_path, ScoreSettings(data_dir=store, top=7))
    listed = pd.read_parquet(tmp_path / "at_risk.parquet")
    assert len(listed) == result.customers_listed == 7
    assert listed["risk_rank"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert not (tmp_path / "features.parquet").exists()  # only nightly writes features


def test_bad_input_fails_clearly_and_keeps_yesterdays_list(
    nightly_out, demo_tables, store, tmp_path
):
    out, _ = nightly_out
    before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    broken = pd.read_parquet(demo_tables["transactions"]).astype({"amount": object})
    broken.loc[[4, 9], "amount"] = "n/a"
    bad = tmp_path / "transactions.csv"
    broken.to_csv(bad, index=False)
    inputs = InputPaths(transactions=bad, interactions=demo_tables["interactions"])
    with pytest.raises(InputError) as err:
        flows.nightly(inputs, out, ScoreSettings(data_dir=store))
    assert "transactions.csv" in str(err.value) and "'amount'" in str(err.value)
    assert err.value.rows[:2] == [5, 10]
    after = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # same files, same bytes, no temp files left behind


@pytest.mark.parametrize("feature_batches", [None, 3])
def test_without_a_champion_the_inputs_errors_come_first_then_the_registrys(
    demo_tables, tmp_path, feature_batches
):
    """The champion loads while the inputs are read, but bad input is still the error a
    user sees first; good input then meets the missing champion, and nothing is written."""
    settings = ScoreSettings(data_dir=tmp_path / "empty-store", feature_batches=feature_batches)
    broken = pd.read_parquet(demo_tables["transactions"]).astype({"amount": object})
    broken.loc[[6], "amount"] = "n/a"
    bad = tmp_path / "transactions.csv"
    broken.to_csv(bad, index=False)
    out = tmp_path / "out"
    with pytest.raises(InputError, match="transactions.csv"):
        flows.nightly(InputPaths(transactions=bad), out, settings)
    with pytest.raises(LookupError, match="run `churn train` first"):
        flows.nightly(_inputs(demo_tables), out, settings)
    written = [p.name for p in out.rglob("*") if p.is_file()]
    assert written == [".churn.lock"], written  # the output lock only


def test_failed_run_is_a_failed_prefect_state(demo_tables, store, tmp_path):
    missing = InputPaths(transactions=tmp_path / "nope.parquet")
    state = flows.nightly(missing, tmp_path, ScoreSettings(data_dir=store), return_state=True)
    assert state.is_failed()
    assert "nope.parquet: file not found" in state.message or "file not found" in str(
        state.result(raise_on_failure=False)
    )


def test_model_needing_interactions_is_refused_on_transactions_only(
    trained, demo_tables, store, tmp_path
):
    with pytest.raises(FeatureMismatchError, match="tickets_90d"):
        flows.score(
            _inputs(demo_tables, with_interactions=False), tmp_path, ScoreSettings(data_dir=store)
        )


def test_transactions_only_business_trains_and_scores(demo_tables, tmp_path):
    store = tmp_path / "store"
    inputs = _inputs(demo_tables, with_interactions=False)
    trained = flows.train(inputs, TrainSettings(data_dir=store))
    features = mlflow.artifacts.load_dict(f"runs:/{trained.run_id}/features.json")
    assert "tickets_90d" in features["unobservable_features"]
    assert not any(f.startswith(("tickets", "satisfaction")) for f in features["features"])
    result = flows.score(inputs, tmp_path / "out", ScoreSettings(data_dir=store))
    assert result.customers_scored > 0


def test_build_features_flow_writes_one_row_per_active_customer(demo_tables, tmp_path):
    path = flows.build_features(_inputs(demo_tables), "2025-01-01", tmp_path)
    features = pd.read_parquet(path)
    assert path == tmp_path / "features.parquet"
    assert features["customer_id"].is_unique and len(features) > 100
    tx = pd.read_parquet(demo_tables["transactions"])
    active = tx.loc[
        (tx.timestamp >= "2024-01-02") & (tx.timestamp < "2025-01-01") & (tx.amount > 0)
    ]
    assert set(features["customer_id"]) == set(active["customer_id"])


def test_challenger_must_beat_the_champion_unless_forced(demo_tables, tmp_path):
    store = tmp_path / "store"
    inputs = _inputs(demo_tables)
    first = flows.train(inputs, TrainSettings(data_dir=store))
    assert first.promoted and first.champion_version == "1"
    # the same data and seed give the same model: equal PR-AUC is not better
    second = flows.train(inputs, TrainSettings(data_dir=store))
    assert not second.promoted and "does not beat" in second.promotion_reason
    client = MlflowClient(second.tracking_uri)
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("churn", "challenger").version) == "2"
    run = client.get_run(second.run_id)
    assert run.data.tags["promoted"] == "false"
    assert run.data.metrics["champion_holdout_pr_auc"] == pytest.approx(
        run.data.metrics["holdout_pr_auc"]
    )
    forced = flows.train(inputs, TrainSettings(data_dir=store, force=True))
    assert forced.promoted and forced.promotion_reason == "forced promotion (--force)"
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "3"
    assert client.get_run(forced.run_id).data.tags["promoted"] == "true"


def test_nightly_logs_monitoring_and_writes_the_report(nightly_out, trained):
    out, result = nightly_out
    html = (out / "report.html").read_text()
    assert 'id="top-customers"' in html and result.score_date in html
    client = MlflowClient(trained.tracking_uri)
    runs = client.search_runs(
        [client.get_run(trained.run_id).info.experiment_id], "tags.kind = 'score'"
    )
    metrics = runs[0].data.metrics
    assert metrics["customers_scored"] == result.customers_scored
    assert metrics["rows_read_transactions"] > 0
    assert "psi_days_since_last_purchase" in metrics and "psi_score" in metrics
    for kpi in ("retention_rate", "churn_rate", "repeat_purchase_rate", "revenue_at_risk"):
        assert kpi in metrics
    assert runs[0].data.tags["model_version"] == trained.model_version
    # the demo business is stable: spend and service do not drift. Counts since the start
    # of the data (lifetime_purchases) do grow past the training cutoffs: real drift.
    assert not {"spend_365d", "tickets_90d", "churn_probability", "score"} & set(
        result.drifting_features
    )


def test_drift_ends_in_a_warning_state_and_still_writes_the_list(
    trained, demo_tables, store, tmp_path
):
    tx = pd.read_parquet(demo_tables["transactions"])
    inflated = tmp_path / "transactions.parquet"
    tx.assign(amount=tx["amount"] * 25).to_parquet(inflated)  # prices x25 overnight
    inputs = InputPaths(
        transactions=inflated,
        interactions=demo_tables["interactions"],
        customers=demo_tables["customers"],
    )
    state = flows.nightly(
        inputs, tmp_path / "out", ScoreSettings(data_dir=store), return_state=True
    )
    assert state.is_completed() and state.name == "Drifted"
    assert "spend_365d" in state.message
    assert (tmp_path / "out" / "at_risk.csv").exists()


def test_budget_caps_the_list(trained, demo_tables, store, tmp_path):
    settings = ScoreSettings(data_dir=store, budget=55.0, contact_cost=10.0)  # buys 5 calls
    result = flows.score(_inputs(demo_tables), tmp_path, settings)
    assert result.customers_listed == 5


def test_dask_engine_nightly_gives_the_local_list(trained, demo_tables, store, tmp_path):
    """--engine dask: features per customer partition on a LocalCluster, same list."""
    local = flows.score(_inputs(demo_tables), tmp_path / "local", ScoreSettings(data_dir=store))
    dask = flows.score(
        _inputs(demo_tables), tmp_path / "dask", ScoreSettings(data_dir=store, engine="dask")
    )
    a = pd.read_parquet(tmp_path / "local" / "scores.parquet")
    b = pd.read_parquet(tmp_path / "dask" / "scores.parquet")
    assert local.customers_scored == dask.customers_scored
    assert a["customer_id"].tolist() == b["customer_id"].tolist()
    assert (a["churn_probability"] - b["churn_probability"]).abs().max() <= 1e-6
    assert a["top_reason"].tolist() == b["top_reason"].tolist()
