"""The workers read and validate the input files (``pipelines.dask_read``), on a real
two-process LocalCluster: the night's facts, files, KPIs and drift equal the local
engine's; a bad row deep in a CSV is reported with its row in the file, the run exits 2
and nothing is written; the client receives only small things. One cluster serves the
module; the flows reach it by its address."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Future
from typer.testing import CliRunner

from features.contracts import InputError
from features.usage import choose_usage_kinds, kind_counts
from models.night_facts import WholeTables, night_facts
from pipelines import catalog, dask_read, flows
from pipelines.cli import app
from pipelines.engines import get_client
from pipelines.settings import CommonSettings, InputPaths, ScoreSettings, TrainSettings


@pytest.fixture(scope="module")
def client():
    client = get_client(None)
    yield client
    client.close()


@pytest.fixture(scope="module")
def business(tmp_path_factory) -> dict[str, Path]:
    """300 simulated customers as Parquet; their transactions as CSV with two exact
    duplicates and a refund above every purchase (repairs to count over partitions)."""
    from simulation.retail import simulate

    out = tmp_path_factory.mktemp("business")
    tables = simulate(n_customers=300, seed=5)
    paths = catalog.write_atomic(
        {
            "transactions": tables.transactions,
            "interactions": tables.interactions,
            "customers": tables.customers,
        },
        out,
    )
    tx = tables.transactions.astype(str)
    refund = tx.iloc[[10]].assign(amount="-100000")
    tx = pd.concat([tx, tx.iloc[[3, 4000]], refund], ignore_index=True)
    paths["transactions_csv"] = out / "transactions.csv"
    tx.to_csv(paths["transactions_csv"], index=False)
    return paths


def _inputs(business: dict[str, Path], transactions: Path | None = None) -> InputPaths:
    return InputPaths(
        transactions=transactions or business["transactions_csv"],
        interactions=business["interactions"],
        customers=business["customers"],
    )


@pytest.mark.parametrize("npartitions", [3, 7])
def test_night_facts_on_the_workers_equal_the_whole_tables(tmp_path, client, npartitions):
    """Features, status, due-day features, KPI counts and matured outcomes, with
    subscriptions, a list history and the transactions as CSV."""
    from simulation.subscription import simulate_subscription

    sim = simulate_subscription(n_customers=400, seed=11, start="2024-01-01", end="2025-06-30")
    paths = catalog.write_atomic(
        {
            "interactions": sim.interactions,
            "customers": sim.customers,
            "subscriptions": sim.subscriptions,
        },
        tmp_path,
    )
    paths["transactions"] = tmp_path / "transactions.csv"
    sim.transactions.to_csv(paths["transactions"], index=False)
    inputs = InputPaths(**paths)
    tables = catalog.read_tables(
        paths["transactions"], paths["interactions"], paths["customers"], paths["subscriptions"]
    )
    cutoff = pd.Timestamp("2025-07-01")
    kinds = choose_usage_kinds(tables.interactions)
    # listings of 150 and 30 days ago: the first has matured, the second has not
    ids = tables.transactions["customer_id"].drop_duplicates().iloc[:120].astype(str)
    history = pd.DataFrame(
        {
            "campaign": "c",
            "customer_id": ids.to_numpy(),
            "score_date": [str((cutoff - pd.Timedelta(days=d)).date()) for d in [150, 30] * 60],
            "list": "at_risk",
            "action_rule": "apology",
            "group": ["contact", "holdout"] * 60,
            "expected_value": 10.0,
        }
    )
    args = (cutoff, 365, 90, 0.05, kinds, history)
    whole = night_facts(WholeTables(tables), *args)
    with dask_read.stage(inputs, CommonSettings(), client, npartitions) as source:
        assert source.batches == npartitions
        assert source.schema.warnings == tables.warnings
        assert source.schema.rows_read == tables.rows_read
        assert source.history_start == tables.transactions["timestamp"].min()
        assert source.last_timestamp == tables.transactions["timestamp"].max()
        pd.testing.assert_series_equal(source.kinds, kind_counts(tables.interactions))
        on_workers = night_facts(source, *args)
    assert whole.status["status"].eq("lapsed").sum() > 10 and len(whole.due_features) > 10
    for name in ("features", "status", "due_features", "outcomes"):
        pd.testing.assert_frame_equal(getattr(on_workers, name), getattr(whole, name))
    assert whole.outcomes is not None and len(whole.outcomes) == 60
    assert on_workers.retention == pytest.approx(whole.retention, rel=1e-12)


@pytest.fixture(scope="module")
def store(business, tmp_path_factory, prefect_harness) -> Path:
    """A champion trained (locally) on the business."""
    store = tmp_path_factory.mktemp("store")
    flows.train(_inputs(business), TrainSettings(data_dir=store, n_train_cutoffs=2))
    return store


def test_nightly_on_dask_gives_the_local_files_kpis_and_drift(business, store, client, tmp_path):
    inputs = _inputs(business)
    local = flows.nightly(inputs, tmp_path / "local", ScoreSettings(data_dir=store))
    dask = ScoreSettings(data_dir=store, engine="dask", dask_address=client.scheduler.address)
    on_workers = flows.nightly(inputs, tmp_path / "dask", dask)

    assert on_workers.kpis == local.kpis
    assert on_workers.reason_mix == local.reason_mix
    assert on_workers.drifting_features == local.drifting_features
    assert on_workers.customers_listed == local.customers_listed > 0
    assert on_workers.customers_win_back == local.customers_win_back
    for name in ("features", "scores", "at_risk", "win_back"):
        file = catalog.OUTPUTS[name]
        # the clock time of each run is the one column allowed to differ
        a = pd.read_parquet(tmp_path / "local" / file).drop(columns="scored_at", errors="ignore")
        b = pd.read_parquet(tmp_path / "dask" / file).drop(columns="scored_at", errors="ignore")
        pd.testing.assert_frame_equal(b, a, check_exact=True)


def test_a_bad_row_in_the_second_block_of_a_csv_exits_2_with_its_row_in_the_file(
    business, store, client, tmp_path
):
    def block_rows(path: Path) -> list[int]:
        blocks = dask_read.read_file(path, "transactions", client)
        return blocks.map_partitions(len).compute().tolist()

    tx = pd.read_csv(business["transactions_csv"], dtype=str)
    bad = block_rows(business["transactions_csv"])[0] + 37  # 0-based
    tx.loc[bad, "amount"] = "twelve"
    path = tmp_path / "transactions.csv"
    tx.to_csv(path, index=False)
    lengths = block_rows(path)
    assert lengths[0] <= bad < lengths[0] + lengths[1]  # in the second read block
    with pytest.raises(InputError) as whole:
        catalog.read_tables(path)
    assert whole.value.rows == [bad + 1]  # 1-based data rows
    out = tmp_path / "out"
    catalog.write_atomic({"at_risk": pd.DataFrame({"customer_id": ["kept"]})}, out)

    result = CliRunner().invoke(
        app,
        [
            "nightly",
            "--engine",
            "dask",
            "--dask-address",
            client.scheduler.address,
            "--transactions",
            str(path),
            "--interactions",
            str(business["interactions"]),
            "--out",
            str(out),
            "--data-dir",
            str(store),
        ],  # fmt: skip
        catch_exceptions=False,
    )

    assert result.exit_code == 2
    assert str(whole.value) == (
        f"transactions.csv: column 'amount' has 1 non-numeric value, row {bad + 1} (value 'twelve')"
    )
    assert str(whole.value) in result.output
    run_log = (store / "logs" / "churn.log").read_text()
    assert "reading transactions.csv, interactions.parquet on the Dask workers" in run_log
    assert pd.read_parquet(out / catalog.OUTPUTS["at_risk"])["customer_id"].tolist() == ["kept"]
    assert not (out / catalog.OUTPUTS["scores"]).exists()


def _sent_to_client(client) -> list[int]:  # noqa: ANN001
    """Bytes of each transfer out of the cluster since the workers' logs were cleared."""
    workers = set(client.scheduler_info()["workers"])

    def sent(dask_worker) -> list[int]:  # noqa: ANN001
        return [t["total"] for t in dask_worker.transfer_outgoing_log if t["who"] not in workers]

    return [n for per_worker in client.run(sent).values() for n in per_worker]


def test_the_client_receives_only_small_things(demo_tables, client):
    inputs = InputPaths(
        transactions=demo_tables["transactions"],
        interactions=demo_tables["interactions"],
        customers=demo_tables["customers"],
    )
    tables = catalog.read_tables(inputs.transactions, inputs.interactions, inputs.customers)
    table_bytes = [
        int(frame.memory_usage(deep=True).sum())
        for frame in (tables.transactions, tables.interactions, tables.customers)
    ]
    clear = lambda dask_worker: dask_worker.transfer_outgoing_log.clear()  # noqa: E731
    client.run(clear)

    with dask_read.stage(inputs, CommonSettings(), client, npartitions=4) as source:
        staged = _sent_to_client(client)
        client.run(clear)
        rows = source.map(lambda part: len(part.transactions))
        mapped = _sent_to_client(client)
        assert all(isinstance(part, Future) for part in source.parts)

    # findings, dtypes and counts: tens of kB (a column's dtype is counted at ~2 kB), all
    # of it under a tenth of the tables; one of the four partitions of the transactions
    # alone is more than that
    assert table_bytes[0] / 4 > sum(table_bytes) / 10
    assert sum(staged) < sum(table_bytes) / 10
    assert sum(rows) == len(tables.transactions) and np.all(np.asarray(rows) > 0)
    assert max(mapped) < 1_000  # map: fn's results only


def test_training_sets_on_the_workers_equal_the_whole_tables(business, client):
    from features.build import build_features
    from models.train_stage import plan_training, training_sets, training_sets_by_batch
    from models.training import LabelScheme

    inputs = _inputs(business)
    tables = catalog.read_tables(inputs.transactions, inputs.interactions, inputs.customers)
    tx = tables.transactions
    plan = plan_training(
        tx["timestamp"].min(), tx["timestamp"].max(), LabelScheme(), 90, 2, 30, 180
    )
    kinds = choose_usage_kinds(tables.interactions)
    whole = training_sets(tables, plan, 365, lambda *a: build_features(*a, usage_kinds=kinds))
    with dask_read.stage(inputs, CommonSettings(), client, 5) as source:
        on_workers = training_sets_by_batch(source, plan, 365, kinds)
    assert len(whole.y_train) > 200
    for name in ("x_train", "x_valid", "x_hold"):
        pd.testing.assert_frame_equal(getattr(on_workers, name), getattr(whole, name))
    for name in ("y_train", "y_valid", "y_hold"):
        pd.testing.assert_series_equal(getattr(on_workers, name), getattr(whole, name))
    np.testing.assert_array_equal(on_workers.lapsed_bands, whole.lapsed_bands)


def test_train_on_dask_reads_on_the_workers_and_scores_like_local(business, client, tmp_path):
    inputs = _inputs(business)
    local = flows.train(inputs, TrainSettings(data_dir=tmp_path / "local", n_train_cutoffs=2))
    dask = TrainSettings(
        data_dir=tmp_path / "dask",
        n_train_cutoffs=2,
        engine="dask",
        dask_address=client.scheduler.address,
    )
    on_workers = flows.train(inputs, dask)
    assert on_workers.cutoffs == local.cutoffs
    assert on_workers.model_version == "1" and on_workers.promoted
    # the same rows; XGBoost on the cluster builds its trees a little differently
    for metric in ("holdout_roc_auc", "holdout_pr_auc"):
        assert on_workers.metrics[metric] == pytest.approx(local.metrics[metric], abs=0.03)
