"""PostgreSQL tables read by pages into customer batches equal the whole read: the
tables, the night's facts, the counted repairs, and bad input's message (conftest_pg.py)."""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa

from features.contracts import InputError
from features.usage import choose_usage_kinds
from models.night_facts import WholeTables, night_facts
from pipelines import staged
from pipelines.catalog import Tables
from pipelines.database import pages, read, read_tables_sql
from pipelines.settings import CommonSettings, DatabaseInputs

KINDS = ("transactions", "interactions", "customers")
BATCHES = 7  # odd, and uneven over 1500 customers
PAGE_ROWS = 7_000  # several pages per table: 30k transactions, 57k interactions


@pytest.fixture(scope="module")
def shop(postgres_server, demo_tables) -> str:
    """The demo business in a database of its own, with repairs to count: two repeated
    interactions and a refund above everything its customer bought."""
    url = postgres_server.create_database("paged_shop")
    frames = {kind: pd.read_parquet(demo_tables[kind]) for kind in KINDS}
    ix = frames["interactions"]
    frames["interactions"] = pd.concat([ix, ix.iloc[[5, 900]]], ignore_index=True)
    tx = frames["transactions"]
    refund = tx.iloc[[10]].assign(amount=-100_000.0, order_id="refund-1")
    frames["transactions"] = pd.concat([tx, refund], ignore_index=True)
    engine = sa.create_engine(url)
    for kind, frame in frames.items():
        frame.to_sql(kind, engine, index=False, chunksize=10_000)
    engine.dispose()
    return url


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(pages, "PAGE_ROWS", PAGE_ROWS)


def _settings(tmp_path) -> CommonSettings:
    return CommonSettings(data_dir=tmp_path / "data", feature_batches=BATCHES)


def _whole(url: str, inputs: DatabaseInputs) -> Tables:
    return read_tables_sql(
        url,
        inputs.transactions,
        inputs.interactions,
        inputs.customers,
        inputs.queries or None,
        subscriptions=inputs.subscriptions,
    )


def _values(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a fixed order, labels as text: each batch has its own categories."""
    frame = frame.astype(
        {name: "str" for name, dtype in frame.dtypes.items() if dtype == "category"}
    )
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


def _assert_batches_equal_whole(source: staged.StagedBatches, whole: Tables) -> None:
    """Every batch's tables, concatenated, are the whole read's rows; no customer twice."""
    seen: set[str] = set()
    for kind in ("transactions", "interactions", "customers"):
        parts = [getattr(source.tables(b), kind) for b in range(BATCHES)]
        assert all(len(part) for part in parts)
        ids = [set(part["customer_id"]) for part in parts]
        assert sum(map(len, ids)) == len(set().union(*ids))  # a customer in one batch
        seen |= set().union(*ids)
        pd.testing.assert_frame_equal(
            _values(pd.concat(parts, ignore_index=True)), _values(getattr(whole, kind))
        )
    assert seen == set(whole.customers["customer_id"]) | set(whole.transactions["customer_id"])


@pytest.fixture
def progress() -> Iterator[list[logging.LogRecord]]:
    """The ``churn.progress`` lines (held here: the CLI stops them propagating)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("churn.progress")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def _pages_read(records: list[logging.LogRecord]) -> dict[str, int]:
    """Pages per source from the progress summaries (``reading ...: 5 pages done``)."""
    done = re.compile(r"reading (postgresql:\S+) \(([\d,]+) rows\): (\d+) pages done")
    found = {}
    for record in records:
        match = done.match(record.getMessage())
        if match:
            rows, read = int(match[2].replace(",", "")), int(match[3])
            found[match[1]] = read
            assert read == max(1, math.ceil(rows / PAGE_ROWS))
    return found


@pytest.mark.usefixtures("small_pages")
def test_batched_tables_and_night_from_postgresql_equal_the_whole_read(
    shop, tmp_path, monkeypatch, progress
):
    monkeypatch.setenv("CHURN_DATABASE_URL", shop)
    inputs = DatabaseInputs(
        transactions="transactions", interactions="interactions", customers="customers"
    )
    settings = _settings(tmp_path)
    assert staged.batches_for(inputs, settings) == BATCHES
    whole = _whole(shop, inputs)
    cutoff = whole.transactions["timestamp"].max().normalize() + pd.Timedelta(days=1)
    args = (cutoff, 365, 90, 0.05, choose_usage_kinds(whole.interactions))

    with staged.stage(inputs, settings, BATCHES) as source:
        assert source is not None
        assert source.schema.warnings == whole.warnings
        assert any("capped 1 refund" in w for w in whole.warnings)
        assert any("kept 2 rows" in w for w in whole.warnings)
        assert source.schema.rows_read == whole.rows_read
        assert source.history_start == whole.transactions["timestamp"].min()
        assert source.last_timestamp == whole.transactions["timestamp"].max()
        _assert_batches_equal_whole(source, whole)
        by_batch = night_facts(source, *args)
    assert not list((tmp_path / "data" / "interim" / "batches").glob("run-*"))  # cleaned up

    read = _pages_read(progress)
    assert read["postgresql:transactions"] == 5 and read["postgresql:interactions"] == 9
    once = night_facts(WholeTables(whole), *args)
    assert len(once.features) > 1000
    for name in ("features", "status", "due_features"):
        pd.testing.assert_frame_equal(getattr(by_batch, name), getattr(once, name))


@pytest.mark.usefixtures("small_pages")
def test_query_inputs_by_batch_equal_the_whole_read(shop, tmp_path, monkeypatch):
    # numeric amounts, zoned times, blank-padded ids in one table only (the same
    # customers: their rows must meet in one batch), and a trailing line comment
    queries = {
        "transactions": "SELECT customer_id, timestamp AT TIME ZONE 'Europe/Berlin' AS "
        "timestamp, amount::numeric(14, 4) AS amount, quantity FROM transactions "
        "WHERE amount > 20 AND customer_id LIKE 'C%' -- the larger orders\n;",
        "interactions": "SELECT customer_id::char(12) AS customer_id, timestamp, kind, "
        "resolved FROM interactions WHERE kind <> 'email_open'",
        "customers": "SELECT customer_id, signup_date::date AS signup_date FROM customers",
    }
    monkeypatch.setenv("CHURN_DATABASE_URL", shop)
    inputs = DatabaseInputs(transactions="transactions", queries=queries)
    whole = _whole(shop, inputs)
    assert 0 < len(whole.transactions) < 30_000 and len(whole.interactions) > 20_000
    with staged.stage(inputs, _settings(tmp_path), BATCHES) as source:
        assert source is not None
        assert source.schema.warnings == whole.warnings
        assert source.schema.rows_read == whole.rows_read
        _assert_batches_equal_whole(source, whole)


def _bad_amounts(url: str) -> tuple[str, list[int]]:
    """A copy of the transactions with text amounts, two of them words, in batch 2."""
    from features.batches import customer_batch

    engine = sa.create_engine(url)
    tx = pd.read_sql("SELECT * FROM transactions", engine)
    third = customer_batch(tx["customer_id"], BATCHES) == 2
    bad = tx.index[third][[5, 17]]
    tx = tx.astype({"amount": "str"})
    tx.loc[bad, "amount"] = "twelve"
    tx.to_sql("transactions_text", engine, index=False, if_exists="replace", chunksize=10_000)
    engine.dispose()
    return "transactions_text", [int(row) + 1 for row in bad]


@pytest.mark.usefixtures("small_pages")
@pytest.mark.parametrize("problem", ["bad_amounts", "empty_query", "missing_table"])
def test_bad_input_is_reported_with_the_whole_reads_message(shop, tmp_path, monkeypatch, problem):
    monkeypatch.setenv("CHURN_DATABASE_URL", shop)
    queries, rows = {}, None
    table = "transactions"
    if problem == "bad_amounts":
        table, rows = _bad_amounts(shop)
    elif problem == "empty_query":
        queries = {"customers": "SELECT * FROM customers WHERE false"}
    else:
        table = "no_such_table"
    inputs = DatabaseInputs(transactions=table, interactions="interactions", queries=queries)
    with pytest.raises(InputError) as whole:
        _whole(shop, inputs)
    with pytest.raises(InputError) as batched:
        with staged.stage(inputs, _settings(tmp_path), BATCHES):
            pytest.fail("staging should have failed")

    assert str(batched.value) == str(whole.value)
    assert not list((tmp_path / "data" / "interim" / "batches").glob("run-*"))
    if problem == "bad_amounts":
        first, second = rows
        assert batched.value.rows == rows  # positions in the table's read, 1-based
        assert str(batched.value) == (
            f"postgresql:transactions_text: column 'amount' has 2 non-numeric values, "
            f"first rows {first} (value 'twelve'), {second} (value 'twelve')"
        )
    elif problem == "empty_query":
        empty = "postgresql:customers: the customers table is empty (no data rows)"
        assert str(batched.value) == empty


def test_a_table_that_cannot_be_split_is_left_to_the_whole_read(shop, tmp_path, monkeypatch):
    # two columns that are one name to the contract: the whole read says which
    monkeypatch.setenv("CHURN_DATABASE_URL", shop)
    query = 'SELECT customer_id, timestamp, amount, amount AS "Amount " FROM transactions'
    inputs = DatabaseInputs(transactions="transactions", queries={"transactions": query})
    with staged.stage(inputs, _settings(tmp_path), BATCHES) as source:
        assert source is None
    with pytest.raises(InputError, match="column 'amount' appears more than once"):
        _whole(shop, inputs)


@pytest.mark.parametrize("guard", ["count", "cursor"])
def test_a_second_statement_or_a_write_never_runs(shop, tmp_path, monkeypatch, guard):
    engine = sa.create_engine(shop)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE victim AS SELECT 'C1' AS customer_id"))
        conn.execute(sa.text("CREATE SEQUENCE victim_seq"))
    monkeypatch.setattr(read, "_single_select", lambda query, source: query)
    if guard == "cursor":  # the cursor's DECLARE refuses them too, without the count first
        monkeypatch.setattr(pages, "_count", lambda conn, statement: 0)
    attacks = [
        # COMMIT would end the read-only transaction and let the DROP run, if it ran
        # (inside the count's parentheses it is not even SQL)
        (
            "SELECT 'C1' AS customer_id; COMMIT; DROP TABLE victim",
            'multiple commands|syntax error at or near ";"',
        ),
        ("WITH gone AS (DELETE FROM victim RETURNING *) SELECT * FROM gone", "data-modifying"),
        ("SELECT 'C1' AS customer_id, nextval('victim_seq') AS n", "read-only transaction"),
    ]
    for query, refusal in attacks:
        with pytest.raises(
            InputError, match=f"^postgresql:customers: cannot be read: .*({refusal})"
        ):
            pages.page_tables_sql(
                shop, "transactions", queries={"customers": query}, batches=3, folder=tmp_path
            )
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM victim")).scalar_one() == 1
        assert not conn.execute(sa.text("SELECT is_called FROM victim_seq")).scalar_one()
        conn.execute(sa.text("DROP TABLE victim; DROP SEQUENCE victim_seq"))
    engine.dispose()


def test_a_server_that_comes_back_is_read_again(
    disposable_postgres, demo_tables, tmp_path, monkeypatch
):
    url = disposable_postgres.url
    engine = sa.create_engine(url)
    pd.read_parquet(demo_tables["transactions"]).to_sql("transactions", engine, index=False)
    engine.dispose()
    monkeypatch.setenv("CHURN_DATABASE_URL", url)
    whole = read_tables_sql(url, "transactions")
    disposable_postgres.stop()
    # back within the first retry's delay (2 s): the staging reads it then
    restart = threading.Timer(0.5, disposable_postgres.start)
    restart.start()
    try:
        with staged.stage(
            DatabaseInputs(transactions="transactions"), _settings(tmp_path), 3
        ) as source:
            assert source is not None and source.schema.rows_read == whole.rows_read
            parts = [source.tables(b).transactions for b in range(3)]
            pd.testing.assert_frame_equal(
                _values(pd.concat(parts, ignore_index=True)), _values(whole.transactions)
            )
            assert source.tables(0).interactions is None
    finally:
        restart.join()


@pytest.mark.usefixtures("prefect_harness", "small_pages")
def test_nightly_from_postgresql_by_batch_gives_the_whole_reads_outputs(
    postgres_server, tmp_path, monkeypatch, progress
):
    from pipelines import catalog, flows
    from pipelines.settings import ScoreSettings, TrainSettings
    from simulation.retail import simulate

    business = simulate(n_customers=300, seed=5)
    frames = {kind: getattr(business, kind) for kind in KINDS}
    url = postgres_server.create_database("paged_night")
    engine = sa.create_engine(url)
    for kind, frame in frames.items():
        frame.to_sql(kind, engine, index=False, chunksize=10_000)
    engine.dispose()
    monkeypatch.setenv("CHURN_DATABASE_URL", url)
    inputs = DatabaseInputs(**{kind: kind for kind in KINDS})
    store = tmp_path / "store"
    flows.train(inputs, TrainSettings(data_dir=store, n_train_cutoffs=2))

    whole = flows.nightly(inputs, tmp_path / "whole", ScoreSettings(data_dir=store))
    assert not _pages_read(progress)  # the whole read reads no pages
    batched = flows.nightly(
        inputs, tmp_path / "batches", ScoreSettings(data_dir=store, feature_batches=BATCHES)
    )
    assert set(_pages_read(progress)) == {f"postgresql:{kind}" for kind in KINDS}
    assert batched.kpis == whole.kpis
    assert batched.reason_mix == whole.reason_mix
    assert batched.customers_listed == whole.customers_listed > 0
    for name in ("features", "scores", "at_risk", "win_back"):
        file = catalog.OUTPUTS[name]
        # the clock time of each run is the one column allowed to differ
        a = pd.read_parquet(tmp_path / "whole" / file).drop(columns="scored_at", errors="ignore")
        b = pd.read_parquet(tmp_path / "batches" / file).drop(columns="scored_at", errors="ignore")
        pd.testing.assert_frame_equal(b, a, check_exact=True)
    assert not list((store / "interim" / "batches").glob("run-*"))
