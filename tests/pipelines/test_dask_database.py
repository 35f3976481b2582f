"""PostgreSQL tables read by key ranges on the Dask workers (``pipelines.dask_read.
stage_database``), on a real PostgreSQL server (conftest_pg.py) and a real two-process
LocalCluster: every range reads the client's exported snapshot, the ranges cover every
row once (NULL ids and ids of any type included), the night and the training equal the
local engine's on the same tables, a bad value is the whole read's message (exit 2,
nothing written), and the client receives only small things.

The cluster starts after the URL is in the environment: its workers inherit it, as a
LocalCluster's do (the URL never travels with a task)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from distributed import Future
from typer.testing import CliRunner

from features.contracts import InputError
from pipelines import catalog, dask_read, flows
from pipelines.cli import app
from pipelines.database import read_tables_sql
from pipelines.database.ranges import exported, read_range
from pipelines.database.read import _fetch, snapshot, table_reads
from pipelines.engines import get_client
from pipelines.settings import CommonSettings, DatabaseInputs, ScoreSettings, TrainSettings

KINDS = ("transactions", "interactions", "customers")
URL_ENV = "CHURN_DATABASE_URL"


@pytest.fixture(scope="module")
def shop(postgres_server) -> Iterator[str]:
    """300 simulated customers in a database of their own, with repairs to count: two
    repeated interactions and a refund above everything its customer bought; the URL in
    the environment for the module (the cluster's workers inherit it)."""
    from simulation.retail import simulate

    url = postgres_server.create_database("dask_shop")
    business = simulate(n_customers=300, seed=5)
    frames = {kind: getattr(business, kind) for kind in KINDS}
    ix = frames["interactions"]
    frames["interactions"] = pd.concat([ix, ix.iloc[[5, 900]]], ignore_index=True)
    tx = frames["transactions"]
    refund = tx.iloc[[10]].assign(amount=-100_000.0, order_id="refund-1")
    frames["transactions"] = pd.concat([tx, refund], ignore_index=True)
    engine = sa.create_engine(url)
    for kind, frame in frames.items():
        frame.to_sql(kind, engine, index=False, chunksize=10_000)
    engine.dispose()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(URL_ENV, url)
        yield url


@pytest.fixture(scope="module")
def client(shop):
    client = get_client(None)
    yield client
    client.close()


@pytest.fixture(scope="module")
def trained(shop, tmp_path_factory, prefect_harness) -> tuple[Path, flows.TrainResult]:
    """A champion trained locally on the shop's tables, and its result."""
    store = tmp_path_factory.mktemp("store")
    result = flows.train(_inputs(), TrainSettings(data_dir=store, n_train_cutoffs=2))
    return store, result


@pytest.fixture
def progress() -> Iterator[list[str]]:
    """The ``churn.progress`` lines (held here: the CLI stops them propagating)."""
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("churn.progress")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def _inputs(**changes: object) -> DatabaseInputs:
    return DatabaseInputs(**{kind: kind for kind in KINDS}, **changes)  # type: ignore[arg-type]


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a fixed order, as text: the same rows whatever the dtypes say."""
    text = frame.astype(object).where(frame.notna(), None).astype(str)
    return text.sort_values(list(text.columns), kind="stable").reset_index(drop=True)


def _read_whole(url: str, statement: str) -> pd.DataFrame:
    with snapshot(url, {"transactions": ("whole", statement)}) as (conn, statements, _):
        return _fetch(conn, statements["transactions"])


def test_the_ranges_cover_every_row_once_whatever_the_ids(shop, client):
    """Integer ids, padded and NULL ids in one query, split at the same text bounds:
    each row in exactly one range, and the rows without an id in the first."""
    engine = sa.create_engine(shop)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE mixed_ids AS SELECT (row_number() OVER ())::bigint % 97 AS "
                "customer_id, timestamp, amount FROM transactions"
            )
        )
        conn.execute(sa.text("UPDATE mixed_ids SET customer_id = NULL WHERE amount < 5"))
    engine.dispose()
    queries = {
        "transactions": "SELECT customer_id, timestamp, amount FROM mixed_ids",
        # text ids, some blank-padded, some NULL: the same customers as text as above
        "interactions": "SELECT CASE WHEN customer_id % 10 = 0 THEN ' ' || customer_id "
        "ELSE customer_id::text END AS customer_id, timestamp, 'email' AS kind, "
        "'x' AS not_in_the_contract FROM mixed_ids -- a trailing comment\n;",
    }
    reads = table_reads({"transactions": "mixed_ids"}, queries)
    with exported(shop, URL_ENV, reads, ranges=5) as plan:
        assert plan is not None
        assert len(plan.reads["transactions"].bounds) == 4  # 97 ids: 5 distinct shares
        for kind in ("transactions", "interactions"):
            read = plan.reads[kind]
            assert read.bounds == plan.reads["transactions"].bounds
            parts = client.gather(client.map(read_range, [read] * read.ranges, range(5)))
            whole = _read_whole(shop, queries[kind])
            assert sum(map(len, parts)) == len(whole) == plan.rows[kind]
            assert all(len(part) for part in parts)
            assert list(parts[0].columns) == list(plan.metas[kind].columns)
            assert "not_in_the_contract" not in parts[0].columns
            pd.testing.assert_frame_equal(
                _rows(pd.concat(parts, ignore_index=True)),
                _rows(whole.drop(columns="not_in_the_contract", errors="ignore")),
            )
            missing = [int(part["customer_id"].isna().sum()) for part in parts]
            assert missing[0] == whole["customer_id"].isna().sum() > 0 == sum(missing[1:])
            texts = [set(part["customer_id"].dropna().astype(str)) for part in parts]
            assert sum(map(len, texts)) == len(set().union(*texts))  # an id in one range


def test_the_ranges_read_the_exported_snapshot(shop, client):
    """Rows another connection commits once the client has exported its snapshot are
    not seen by any range; a read after the client's transaction sees them."""
    engine = sa.create_engine(shop)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE growing AS SELECT * FROM customers"))
        before = conn.execute(sa.text("SELECT count(*) FROM growing")).scalar_one()
    reads = table_reads({"transactions": "transactions", "customers": "growing"}, None)
    try:
        with exported(shop, URL_ENV, reads, ranges=3) as plan:
            assert plan is not None and plan.reads["customers"].ranges == 3
            with engine.begin() as conn:  # the business keeps writing
                conn.execute(
                    sa.text(
                        "DELETE FROM growing WHERE ctid IN (SELECT ctid FROM growing LIMIT 100)"
                    )
                )
                conn.execute(
                    sa.text(
                        "INSERT INTO growing (customer_id) "
                        "SELECT 'late-' || i FROM generate_series(1, 50) AS i"
                    )
                )
            frame = dask_read._read_ranges(plan, "customers")
            seen = client.compute(frame).result()
        assert len(seen) == plan.rows["customers"] == before > 100
        assert not seen["customer_id"].str.startswith("late-").any()
        with engine.connect() as conn:
            after = conn.execute(sa.text("SELECT count(*) FROM growing")).scalar_one()
        assert after == before - 50
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE growing"))
        engine.dispose()


def test_nightly_on_dask_from_postgresql_gives_the_local_outputs(
    shop, trained, client, tmp_path, progress, caplog
):
    store, _ = trained
    inputs = _inputs()
    local = flows.nightly(inputs, tmp_path / "local", ScoreSettings(data_dir=store))
    dask = ScoreSettings(data_dir=store, engine="dask", dask_address=client.scheduler.address)
    on_workers = flows.nightly(inputs, tmp_path / "dask", dask)

    assert (
        "reading postgresql:transactions, postgresql:interactions, postgresql:customers on "
        "the Dask workers in 2 key ranges, 4 customer partitions" in progress
    )
    assert sa.make_url(shop).password not in "\n".join(progress) + caplog.text
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


def test_staged_partitions_from_queries_and_subscriptions_equal_the_whole_read(shop, client):
    """Queries (numeric amounts, zoned times, padded ids in one table only), and a
    subscriptions table: the counted repairs, rows read and first/last transaction."""
    from simulation.subscription import simulate_subscription

    sim = simulate_subscription(n_customers=200, seed=11, start="2024-01-01", end="2025-06-30")
    engine = sa.create_engine(shop)
    for kind in ("transactions", "customers", "subscriptions"):
        getattr(sim, kind).to_sql(f"sub_{kind}", engine, index=False, if_exists="replace")
    engine.dispose()
    queries = {
        "transactions": "SELECT customer_id, timestamp AT TIME ZONE 'Europe/Berlin' AS "
        "timestamp, amount::numeric(14, 4) AS amount FROM sub_transactions",
        "customers": "SELECT customer_id::char(12) AS customer_id, signup_date::date AS "
        "signup_date FROM sub_customers",
    }
    inputs = DatabaseInputs(
        transactions="sub_transactions", subscriptions="sub_subscriptions", queries=queries
    )
    whole = read_tables_sql(
        shop, "sub_transactions", queries=queries, subscriptions="sub_subscriptions"
    )
    with dask_read.stage_database(inputs, CommonSettings(), client, 5, ranges=3) as source:
        assert source is not None and source.npartitions == 5
        assert source.schema.warnings == whole.warnings
        assert source.schema.rows_read == whole.rows_read
        assert source.history_start == whole.transactions["timestamp"].min()
        assert source.last_timestamp == whole.transactions["timestamp"].max()
        for kind in ("transactions", "customers", "subscriptions"):
            parts = source.map(lambda part, kind=kind: getattr(part, kind))
            pd.testing.assert_frame_equal(
                _rows(pd.concat(parts, ignore_index=True)), _rows(getattr(whole, kind))
            )


def _bad(url: str, problem: str) -> str:
    """A copy of the transactions with two word amounts, a row without an id, or none."""
    engine = sa.create_engine(url)
    tx = pd.read_sql("SELECT * FROM transactions", engine)
    rows = [700, len(tx) - 9]  # in the first and the last range
    if problem == "empty_table":
        tx = tx.iloc[:0]
    elif problem == "bad_amounts":
        tx = tx.astype({"amount": "str"})
        tx.loc[rows, "amount"] = "twelve"
    else:
        tx.loc[rows[1:], "customer_id"] = None
    table = f"transactions_{problem}"
    tx.to_sql(table, engine, index=False, if_exists="replace", chunksize=10_000)
    engine.dispose()
    return table


@pytest.mark.parametrize("problem", ["bad_amounts", "missing_ids", "empty_table"])
def test_a_bad_value_exits_2_with_the_whole_reads_message(shop, trained, client, tmp_path, problem):
    store, _ = trained
    table = _bad(shop, problem)
    with pytest.raises(InputError) as whole:
        read_tables_sql(shop, table, "interactions")
    if problem == "bad_amounts":
        assert str(whole.value).startswith(
            f"postgresql:{table}: column 'amount' has 2 non-numeric values, first rows 701 "
        )
    elif problem == "missing_ids":  # the row reached validation, in the first range
        assert str(whole.value).startswith(f"postgresql:{table}: column 'customer_id' ")
    else:  # one range, all of it
        assert str(whole.value) == (
            f"postgresql:{table}: the transactions table is empty (no data rows)"
        )
    out = tmp_path / "out"
    catalog.write_atomic({"at_risk": pd.DataFrame({"customer_id": ["kept"]})}, out)

    result = CliRunner().invoke(
        app,
        [
            "--db",
            shop,
            "nightly",
            "--engine",
            "dask",
            "--dask-address",
            client.scheduler.address,
            "--transactions",
            table,
            "--interactions",
            "interactions",
            "--out",
            str(out),
            "--data-dir",
            str(store),
        ],
        catch_exceptions=False,
    )

    assert result.exit_code == 2, result.output
    assert str(whole.value) in result.output
    run_log = (store / "logs" / "churn.log").read_text()
    assert f"reading postgresql:{table}, postgresql:interactions on the Dask workers" in run_log
    assert pd.read_parquet(out / catalog.OUTPUTS["at_risk"])["customer_id"].tolist() == ["kept"]
    assert not (out / catalog.OUTPUTS["scores"]).exists()


def _sent_to_client(client) -> list[int]:  # noqa: ANN001
    """Bytes of each transfer out of the cluster since the workers' logs were cleared."""
    workers = set(client.scheduler_info()["workers"])

    def sent(dask_worker) -> list[int]:  # noqa: ANN001
        return [t["total"] for t in dask_worker.transfer_outgoing_log if t["who"] not in workers]

    return [n for per_worker in client.run(sent).values() for n in per_worker]


def test_the_client_receives_only_small_things_and_never_the_url(shop, client, demo_tables):
    # the demo business (1500 customers) in a schema of the shop's database: the workers
    # know its URL
    engine = sa.create_engine(shop)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA demo"))
    for kind in KINDS:
        frame = pd.read_parquet(demo_tables[kind])
        frame.to_sql(kind, engine, schema="demo", index=False, chunksize=10_000)
    engine.dispose()
    inputs = DatabaseInputs(**{kind: f"demo.{kind}" for kind in KINDS})  # type: ignore[arg-type]
    tables = read_tables_sql(shop, *(f"demo.{kind}" for kind in KINDS))
    table_bytes = [int(getattr(tables, kind).memory_usage(deep=True).sum()) for kind in KINDS]
    clear = lambda dask_worker: dask_worker.transfer_outgoing_log.clear()  # noqa: E731
    client.run(clear)
    keys: list[str] = []

    def remember(dask_scheduler) -> list[str]:  # noqa: ANN001
        return [str(transition[0]) for transition in dask_scheduler.transition_log]

    with dask_read.stage_database(inputs, CommonSettings(), client, 4) as source:
        assert source is not None
        staged = _sent_to_client(client)
        keys += client.run_on_scheduler(remember)
        client.run(clear)
        rows = source.map(lambda part: len(part.transactions))
        mapped = _sent_to_client(client)
        assert all(isinstance(part, Future) for part in source.parts)

    # findings, dtypes and counts, under a tenth of the tables; one of the four
    # partitions of the transactions alone is more than that
    assert table_bytes[0] / 4 > sum(table_bytes) / 10
    assert sum(staged) < sum(table_bytes) / 10
    assert sum(rows) == len(tables.transactions) and np.all(np.asarray(rows) > 0)
    assert max(mapped) < 1_000  # map: fn's results only
    password = sa.make_url(shop).password
    assert keys and password and not [key for key in keys if password in key]


def test_train_on_dask_from_postgresql_reads_on_the_workers(
    shop, trained, client, tmp_path, progress
):
    _, local = trained
    dask = TrainSettings(
        data_dir=tmp_path, n_train_cutoffs=2, engine="dask", dask_address=client.scheduler.address
    )
    on_workers = flows.train(_inputs(), dask)
    assert on_workers.cutoffs == local.cutoffs
    assert any("on the Dask workers in 2 key ranges" in line for line in progress)
    # the same rows; XGBoost on the cluster builds its trees a little differently
    for metric in ("holdout_roc_auc", "holdout_pr_auc"):
        assert on_workers.metrics[metric] == pytest.approx(local.metrics[metric], abs=0.03)


def test_a_worker_without_the_url_names_the_variable_not_the_url(shop, client, monkeypatch):
    monkeypatch.setenv("CHURN_OTHER_URL", shop)  # the client's only: the workers started before
    with pytest.raises(LookupError) as missing:
        with dask_read.stage_database(_inputs(url_env="CHURN_OTHER_URL"), CommonSettings(), client):
            pytest.fail("staging should have failed")
    assert str(missing.value) == (
        "set CHURN_OTHER_URL to the database URL on every Dask worker (postgresql+psycopg://...)"
    )


def test_a_table_that_cannot_be_split_is_left_to_the_whole_read(shop, client):
    # two columns that are one name to the contract: the whole read says which
    query = 'SELECT customer_id, timestamp, amount, amount AS "Amount " FROM transactions'
    inputs = DatabaseInputs(transactions="transactions", queries={"transactions": query})
    with dask_read.stage_database(inputs, CommonSettings(), client) as source:
        assert source is None
    with pytest.raises(InputError, match="column 'amount' appears more than once"):
        read_tables_sql(shop, "transactions", queries={"transactions": query})


def test_a_range_arrow_cannot_hold_is_read_as_the_whole_read_holds_it(shop, client):
    # json arrives as dicts, which no Arrow text column holds
    query = "SELECT customer_id, timestamp, amount, json_build_object('n', quantity) AS quantity "
    query += "FROM transactions"
    reads = table_reads({"transactions": "transactions"}, {"transactions": query})
    with exported(shop, URL_ENV, reads, ranges=2) as plan:
        assert plan is not None
        read = plan.reads["transactions"]
        parts = client.gather(client.map(read_range, [read, read], [0, 1]))
    assert all(isinstance(part["quantity"].iloc[0], dict) for part in parts)
    pd.testing.assert_frame_equal(
        _rows(pd.concat(parts, ignore_index=True)), _rows(_read_whole(shop, query))
    )
