"""PostgreSQL in and out, against a real server started by the tests (conftest_pg.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from mlflow import MlflowClient

from features.contracts import InputError, validate_table
from models.explain import REASON_COLUMNS
from models.scoring import LIST_COLUMNS
from pipelines import catalog, database, tracking
from pipelines.database import (
    DatabaseAccessError,
    DatabaseUnavailable,
    check_database,
    read_table_sql,
    read_tables_sql,
    validate_identifier,
    write_list_sql,
)

KINDS = ("transactions", "interactions", "customers")


@pytest.fixture(scope="module")
def engine(postgres_url):
    engine = sa.create_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def source_tables(engine, demo_tables) -> dict[str, pd.DataFrame]:
    """The demo business's Parquet tables, also loaded into PostgreSQL with to_sql."""
    frames = {kind: pd.read_parquet(demo_tables[kind]) for kind in KINDS}
    for kind, frame in frames.items():
        frame.to_sql(kind, engine, if_exists="replace", index=False, chunksize=10_000)
    return frames


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a fixed order: SQL tables have none, and no feature may depend on it."""
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


@pytest.fixture(params=["default", "autocommit"])
def any_engine(engine, request):
    """The shared engine, and one in AUTOCOMMIT mode, which must not weaken any guarantee."""
    if request.param == "default":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()


# --- reading -----------------------------------------------------------------------


def test_reading_the_three_tables_gives_the_same_frames_as_reading_parquet(
    postgres_url, source_tables, demo_tables
):
    from_files = catalog.read_tables(
        demo_tables["transactions"], demo_tables["interactions"], demo_tables["customers"]
    )
    from_db = read_tables_sql(postgres_url, "transactions", "interactions", "customers")
    for kind in KINDS:
        pd.testing.assert_frame_equal(
            _sorted(getattr(from_db, kind)), _sorted(getattr(from_files, kind))
        )
    assert from_db.rows_read == from_files.rows_read
    assert len(from_db.warnings) == len(from_files.warnings)


def test_transactions_alone_leave_the_optional_tables_empty(postgres_url, source_tables):
    tables = read_tables_sql(postgres_url, "transactions")
    assert tables.interactions is None and tables.customers is None
    assert tables.rows_read == {"transactions": len(source_tables["transactions"])}


def test_a_query_per_table_reads_exactly_what_it_selects(engine, source_tables):
    # '%' and ':' inside literals must reach the server untouched
    queries = {
        "transactions": (
            "SELECT customer_id, timestamp, amount FROM transactions "
            "WHERE customer_id LIKE 'C00001%' AND timestamp < '2025-01-01 10:30:00'"
        ),
        "interactions": "WITH c AS (SELECT * FROM interactions WHERE kind = 'complaint') "
        "SELECT * FROM c",
        "customers": "/* all of them; really */ SELECT * FROM customers -- done\n;",
    }
    tx, ix, cu = (source_tables[kind] for kind in KINDS)
    selected = tx.loc[
        tx["customer_id"].str.startswith("C00001")
        & (tx["timestamp"] < pd.Timestamp("2025-01-01 10:30:00")),
        ["customer_id", "timestamp", "amount"],
    ]
    buyers = set(selected["customer_id"])
    expected = {
        "transactions": selected,
        # interactions of customers outside the transactions query are dropped (counted)
        "interactions": ix.loc[(ix["kind"] == "complaint") & ix["customer_id"].isin(buyers)],
        "customers": cu,
    }
    tables = read_tables_sql(engine, "transactions", queries=queries)
    for kind in KINDS:
        want = validate_table(expected[kind], kind, source="expected").frame
        assert 0 < len(want) < len(source_tables[kind]) or kind == "customers"
        pd.testing.assert_frame_equal(_sorted(getattr(tables, kind)), _sorted(want))

    assert any("customers who have no transactions" in w for w in tables.warnings)
    one = read_table_sql(engine, "complaints", "interactions", queries["interactions"])
    kept = one.frame.loc[one.frame["customer_id"].isin(buyers)]
    # filtering keeps a categorical's categories; the reconciled table drops unused ones
    pd.testing.assert_frame_equal(
        _sorted(kept), _sorted(tables.interactions), check_categorical=False
    )


def test_a_missing_table_is_a_clear_input_error(postgres_url, source_tables):
    with pytest.raises(InputError, match=r"^postgresql:no_such_table: cannot be read: .*"):
        read_table_sql(postgres_url, "no_such_table", "transactions")


@pytest.mark.parametrize(
    "name", ["x; drop table y", "a-b", "", "1abc", "a.b.c", "a" * 64, "t\n", 'x"y', None]
)
def test_unsafe_table_names_are_rejected_before_any_sql(name, source_tables, engine):
    with pytest.raises(ValueError, match="invalid table name"):
        validate_identifier(name)
    with pytest.raises(ValueError, match="invalid table name"):
        read_table_sql(engine, name, "customers")
    with pytest.raises(ValueError, match="invalid table name"):
        write_list_sql(_list_frame(["C1"], "2025-01-01"), engine, name, "2025-01-01")
    assert _count(engine, "customers") == len(source_tables["customers"])


@pytest.mark.parametrize("name", ["transactions", "crm.churn_list", "_x1", "Mixed_Case", "a" * 63])
def test_safe_table_names_pass_unchanged(name):
    assert validate_identifier(name) == name


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM customers; DROP TABLE customers",
        "SELECT * FROM customers;\nDROP TABLE customers;",
        "SELECT ';' AS x FROM customers; DELETE FROM customers",
        "SELECT * FROM customers WHERE region = 'it''s'; DELETE FROM customers",
        "DELETE FROM customers",
        "/* SELECT */ DROP TABLE customers",
        "",
    ],
)
def test_a_query_must_be_one_select(query, engine, source_tables):
    with pytest.raises(InputError, match="single SELECT statement"):
        read_table_sql(engine, "customers", "customers", query)
    assert _count(engine, "customers") == len(source_tables["customers"])


def test_semicolons_inside_literals_and_comments_are_not_statements(engine, source_tables):
    query = (
        "SELECT customer_id, region FROM customers "
        "WHERE region <> 'a;b' AND region <> $$c;d$$ -- ; not a statement\n;"
    )
    read = read_table_sql(engine, "customers", "customers", query)
    assert len(read.frame) == len(source_tables["customers"])


def test_the_server_refuses_a_second_statement_even_if_the_check_missed_it(engine, monkeypatch):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE victim AS SELECT 1 AS customer_id"))
    monkeypatch.setattr(database.read, "_single_select", lambda query, source: query)
    # COMMIT would end the read-only transaction and let the DROP run, if it ran at all
    with pytest.raises(InputError, match="cannot be read: .*multiple commands"):
        read_table_sql(engine, "customers", "customers", "SELECT 1 AS x; COMMIT; DROP TABLE victim")
    assert _count(engine, "victim") == 1
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE victim"))


def test_queries_run_read_only(any_engine, engine, source_tables):
    query = "WITH gone AS (DELETE FROM customers RETURNING *) SELECT * FROM gone"
    with pytest.raises(InputError, match="read-only transaction"):
        read_table_sql(any_engine, "customers", "customers", query)
    assert _count(engine, "customers") == len(source_tables["customers"])


def test_only_postgresql_with_psycopg_is_accepted(tmp_path):
    with pytest.raises(ValueError, match="expected postgresql"):
        read_table_sql(f"sqlite:///{tmp_path / 'x.db'}", "customers", "customers")
    with pytest.raises(ValueError, match="expected a postgresql\\+psycopg engine"):
        read_table_sql(sa.create_engine("sqlite://"), "customers", "customers")


def test_unknown_table_kinds_are_rejected(postgres_url):
    with pytest.raises(ValueError, match="unknown table kind 'orders'"):
        read_table_sql(postgres_url, "orders", "orders")
    with pytest.raises(ValueError, match="unknown tables 'orders'"):
        read_tables_sql(postgres_url, "transactions", queries={"orders": "SELECT 1"})


# --- writing the list --------------------------------------------------------------


def _list_frame(ids: list[str | None], score_date: str, probability: float = 0.6) -> pd.DataFrame:
    """A scored list shaped like models.scoring output (plus score_date, as the flows add)."""
    n = len(ids)
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series(ids, dtype="str"),
            "list": "at_risk",
            "group": "contact",
            "campaign": "2025-W22",
            "risk_rank": pd.array([*range(1, n), None][:n], dtype="Int64"),
            "status": "active",
            "days_since_last_purchase": np.full(n, 12.5),
            "expected_gap_days": np.full(n, 30.0),
            "plausible_gap_days": np.full(n, 58.1),
            "churn_probability": np.linspace(probability, probability + 0.3, n),
            "expected_value": np.full(n, 120.5),
            "value_at_risk": np.linspace(50.0, 10.0, n),
            "segment": "regular",
            "top_reason": "service",
            "reason_confidence": 0.75,
            "reason_source": "drivers",
            "drivers_reason": "service",
            "reason_as_of": pd.NaT,
            **{column: 0.1 for column in REASON_COLUMNS},
            "top_drivers": "3 unresolved tickets; no reply to outreach",
            "recommended_action": "call",
            "action_rule": "playbook",
            "model_version": "7",
            "scored_at": pd.Timestamp("2025-06-01 03:00:00", tz="UTC"),
        }
    )
    frame.insert(1, "score_date", pd.Timestamp(score_date))
    return frame[["customer_id", "score_date", *LIST_COLUMNS[1:]]]


def _stored(engine: sa.Engine, table: str, score_date: str) -> pd.DataFrame:
    schema, _, name = table.rpartition(".")
    target = sa.table(
        name, sa.column("score_date"), sa.column("customer_id"), schema=schema or None
    )
    query = (
        sa.select(sa.literal_column("*"))
        .select_from(target)
        .where(target.c.score_date == pd.Timestamp(score_date).date())
        .order_by(target.c.customer_id)
    )
    with engine.connect() as conn:
        return pd.read_sql(query, conn)


def _assert_stored_equals(stored: pd.DataFrame, frame: pd.DataFrame) -> None:
    expected = frame.sort_values("customer_id").reset_index(drop=True)
    assert list(stored.columns) == list(expected.columns)
    assert stored["customer_id"].tolist() == expected["customer_id"].tolist()
    assert (pd.to_datetime(stored["score_date"]) == expected["score_date"]).all()
    assert stored["risk_rank"].astype("Int64").tolist() == expected["risk_rank"].tolist()
    for column in ("churn_probability", "value_at_risk", "reason_confidence", *REASON_COLUMNS):
        np.testing.assert_allclose(stored[column].to_numpy(float), expected[column].to_numpy())
    for column in ("segment", "top_reason", "top_drivers", "action_rule", "model_version"):
        assert stored[column].tolist() == expected[column].tolist()
    assert (pd.to_datetime(stored["scored_at"], utc=True) == expected["scored_at"]).all()


@pytest.fixture
def list_table(engine, request) -> str:
    """A fresh list table name per test (dropped afterwards)."""
    name = f"churn_list_{request.node.name.split('[')[0][-30:]}"
    yield name
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))


def test_the_list_table_has_typed_columns_and_a_date_customer_key(engine, list_table):
    assert set(database.LIST_TABLE_TYPES) == {*LIST_COLUMNS, "score_date"}
    assert write_list_sql(_list_frame(["C1", "C2"], "2025-06-01"), engine, list_table, "2025-06-01")
    with engine.connect() as conn:
        types = dict(
            conn.execute(
                sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = :name"
                ),
                {"name": list_table},
            ).all()
        )
    assert types["customer_id"] == "text"
    assert types["score_date"] == "date"
    assert types["risk_rank"] == "integer"
    assert types["churn_probability"] == types[REASON_COLUMNS[0]] == "double precision"
    assert types["scored_at"] == "timestamp with time zone"
    key = sa.inspect(engine).get_pk_constraint(list_table)["constrained_columns"]
    assert key == ["score_date", "customer_id"]


@pytest.mark.parametrize("schema", [None, "crm"])
def test_rewriting_a_date_replaces_its_rows_and_keeps_other_dates(engine, list_table, schema):
    table = list_table
    if schema:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        table = f"{schema}.{list_table}"
    first = _list_frame(["C1", "C2", "C3", "C4", "C5"], "2025-06-01", probability=0.5)
    second = _list_frame(["C3", "C4", "C5", "C6", "C7", "C8"], "2025-06-01", probability=0.6)
    other_day = _list_frame(["C1", "C9"], "2025-06-02", probability=0.7)

    assert write_list_sql(first, engine, table, pd.Timestamp("2025-06-01")) == 5
    assert write_list_sql(second, engine, table, "2025-06-01") == 6
    _assert_stored_equals(_stored(engine, table, "2025-06-01"), second)

    assert write_list_sql(other_day, engine, table, "2025-06-02") == 2
    _assert_stored_equals(_stored(engine, table, "2025-06-01"), second)
    _assert_stored_equals(_stored(engine, table, "2025-06-02"), other_day)

    # re-running the same date with the same list is a no-op in effect, never duplicates
    assert write_list_sql(second, engine, table, "2025-06-01") == 6
    _assert_stored_equals(_stored(engine, table, "2025-06-01"), second)
    if schema:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE "{schema}"."{list_table}"'))


def test_an_empty_list_clears_that_date(engine, list_table):
    write_list_sql(_list_frame(["C1", "C2"], "2025-06-01"), engine, list_table, "2025-06-01")
    assert write_list_sql(_list_frame([], "2025-06-01"), engine, list_table, "2025-06-01") == 0
    assert _stored(engine, list_table, "2025-06-01").empty


def _with_missing_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(customer_id=frame["customer_id"].mask(frame.index == len(frame) - 1))


def _with_text_probability(frame: pd.DataFrame) -> pd.DataFrame:
    probability = frame["churn_probability"].astype(object)
    probability.iloc[-1] = "high"
    return frame.assign(churn_probability=probability)


def _with_repeated_id(frame: pd.DataFrame) -> pd.DataFrame:
    ids = frame["customer_id"].copy()
    ids.iloc[-1] = ids.iloc[0]
    return frame.assign(customer_id=ids)


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (_with_missing_id, "customer_id"),
        (_with_text_probability, "double precision"),
        (_with_repeated_id, "duplicate key"),
    ],
)
def test_a_write_that_fails_midway_keeps_the_previous_rows(
    any_engine, engine, list_table, spoil, problem
):
    good = _list_frame(["C1", "C2", "C3"], "2025-06-01")
    write_list_sql(good, engine, list_table, "2025-06-01")
    write_list_sql(_list_frame(["C1"], "2025-06-02"), engine, list_table, "2025-06-02")
    # the bad row comes last: the delete and most of the copy have run when it fails
    ids = [f"D{i:05d}" for i in range(2_000)]
    bad = spoil(_list_frame(ids, "2025-06-01"))
    with pytest.raises(ValueError, match=f"refused the list, nothing was changed: .*{problem}"):
        write_list_sql(bad, any_engine, list_table, "2025-06-01")
    _assert_stored_equals(_stored(engine, list_table, "2025-06-01"), good)
    assert len(_stored(engine, list_table, "2025-06-02")) == 1


def test_a_list_for_another_date_or_without_its_columns_is_refused(engine, list_table):
    with pytest.raises(ValueError, match="holds 2025-06-02, not 2025-06-01"):
        write_list_sql(_list_frame(["C1"], "2025-06-02"), engine, list_table, "2025-06-01")
    with pytest.raises(ValueError, match="lacks columns top_drivers"):
        write_list_sql(
            _list_frame(["C1"], "2025-06-01").drop(columns="top_drivers"),
            engine,
            list_table,
            "2025-06-01",
        )
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE TABLE "{list_table}" (customer_id text)'))
    with pytest.raises(ValueError, match="is not a churn list"):
        write_list_sql(_list_frame(["C1"], "2025-06-01"), engine, list_table, "2025-06-01")


# the columns newer runs write that a list table from before them lacks
LATER_COLUMNS = ("group", "campaign", "status")


def _make_older(engine: sa.Engine, table: str) -> None:
    """Give the list table the layout of a version that predates ``LATER_COLUMNS``."""
    with engine.begin() as conn:
        drops = ", ".join(f'DROP COLUMN "{name}"' for name in LATER_COLUMNS)
        conn.execute(sa.text(f'ALTER TABLE "{table}" {drops}'))


def _columns(engine: sa.Engine, table: str) -> list[str]:
    return [column["name"] for column in sa.inspect(engine).get_columns(table)]


def test_an_older_list_table_gets_the_new_columns_and_keeps_its_rows(engine, list_table):
    day_one = _list_frame(["C1", "C2"], "2025-06-01")
    write_list_sql(day_one, engine, list_table, "2025-06-01")
    _make_older(engine, list_table)
    assert not set(LATER_COLUMNS) & set(_columns(engine, list_table))

    check_database(engine, list_table)  # the owner may add them: the pre-flight passes
    assert not set(LATER_COLUMNS) & set(_columns(engine, list_table))  # and changes nothing
    day_two = _list_frame(["C2", "C3", "C4"], "2025-06-02")
    assert write_list_sql(day_two, engine, list_table, "2025-06-02") == 3

    assert set(_columns(engine, list_table)) == set(database.LIST_TABLE_COLUMNS)
    old_rows, new_rows = (_stored(engine, list_table, day) for day in ("2025-06-01", "2025-06-02"))
    assert old_rows[list(LATER_COLUMNS)].isna().all().all()  # nothing invented for them
    assert old_rows["churn_probability"].tolist() == day_one["churn_probability"].tolist()
    _assert_stored_equals(new_rows[day_two.columns], day_two)
    assert new_rows[list(LATER_COLUMNS)].drop_duplicates().values.tolist() == [
        ["contact", "2025-W22", "active"]
    ]


def test_a_role_that_may_not_add_the_columns_is_given_the_sql_to_run(
    postgres_server, engine, list_table
):
    write_list_sql(_list_frame(["C1"], "2025-06-01"), engine, list_table, "2025-06-01")
    _make_older(engine, list_table)
    writer = postgres_server.create_role("older_list_writer")
    with engine.begin() as conn:
        grant = f'GRANT SELECT, INSERT, DELETE ON "{list_table}" TO older_list_writer'
        conn.execute(sa.text(grant))
    day_two = _list_frame(["C2"], "2025-06-02")

    attempts = (
        lambda: check_database(writer, list_table),
        lambda: write_list_sql(day_two, writer, list_table, "2025-06-02"),
    )
    for attempt in attempts:
        with pytest.raises(DatabaseAccessError) as refused:
            attempt()
        message = str(refused.value)
        assert message.startswith(
            f"PostgreSQL at 127.0.0.1:{postgres_server.port}/churn: postgresql:{list_table} is "
            "an older churn list without the columns group, campaign, status, and user "
            "older_list_writer may not add them; its owner (churn) can run: ALTER TABLE "
        )
        assert "\n" not in message and postgres_server.password not in message
    assert not set(LATER_COLUMNS) & set(_columns(engine, list_table))
    assert _stored(engine, list_table, "2025-06-02").empty

    # the SQL the message gives is what the owner needs to run
    with engine.begin() as conn:
        conn.exec_driver_sql(message.split(" can run: ")[1])
    assert write_list_sql(day_two, writer, list_table, "2025-06-02") == 1
    # added columns come last in the table; the list's own order is the files'
    _assert_stored_equals(_stored(engine, list_table, "2025-06-02")[day_two.columns], day_two)


# --- the database going away -------------------------------------------------------


def test_a_stopped_server_is_a_clear_retryable_error_and_the_next_run_succeeds(
    disposable_postgres,
):
    url, table = disposable_postgres.url, "churn_list"
    day_one = _list_frame(["C1", "C2"], "2025-06-01")
    write_list_sql(day_one, url, table, "2025-06-01")
    engine = sa.create_engine(url)
    pd.DataFrame({"customer_id": ["C1", "C2"]}).to_sql("customers", engine, index=False)
    engine.dispose()

    disposable_postgres.stop()
    where = f"127.0.0.1:{disposable_postgres.port}/churn"
    with pytest.raises(DatabaseUnavailable) as write_error:
        write_list_sql(_list_frame(["C3"], "2025-06-02"), url, table, "2025-06-02")
    with pytest.raises(DatabaseUnavailable) as read_error:
        read_tables_sql(url, "transactions", customers="customers")
    for error in (write_error, read_error):
        message = str(error.value)
        assert message.startswith(f"PostgreSQL at {where} is unavailable: ")
        assert "\n" not in message and disposable_postgres.password not in message

    disposable_postgres.start()
    engine = sa.create_engine(url)
    _assert_stored_equals(_stored(engine, table, "2025-06-01"), day_one)
    assert write_list_sql(_list_frame(["C3"], "2025-06-02"), url, table, "2025-06-02") == 1
    assert read_table_sql(url, "customers", "customers").frame["customer_id"].tolist() == [
        "C1",
        "C2",
    ]
    engine.dispose()


def test_a_connection_killed_mid_read_is_a_clear_error_and_the_next_read_succeeds(
    engine, source_tables
):
    # the CTE sleeps once, long enough to be caught mid-read and killed from outside
    query = (
        "WITH pause AS MATERIALIZED (SELECT pg_sleep(30)) SELECT customers.* FROM customers, pause"
    )
    outcome: dict[str, BaseException] = {}

    def read() -> None:
        try:
            read_table_sql(engine, "customers", "customers", query)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome["error"] = exc

    reader = threading.Thread(target=read)
    reader.start()
    killed = False
    with psycopg.connect(
        engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    ) as killer:
        deadline = time.monotonic() + 15
        while not killed and time.monotonic() < deadline:
            killed = bool(
                killer.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE %s AND pid <> pg_backend_pid()",
                    ("%pg_sleep(30)%",),
                ).fetchall()
            )
            time.sleep(0.05)
    reader.join(timeout=30)
    assert killed and not reader.is_alive()
    assert isinstance(outcome.get("error"), DatabaseUnavailable), outcome
    assert "terminating connection" in str(outcome["error"])

    # same engine, same pool: the dead connection is not handed out again
    read = read_table_sql(engine, "customers", "customers")
    assert len(read.frame) == len(source_tables["customers"])


# --- MLflow on the same server -----------------------------------------------------


@pytest.fixture
def restore_mlflow_uris():
    tracking_uri, registry_uri = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)


def test_mlflow_tracks_a_run_in_postgresql(
    postgres_server, tmp_path: Path, monkeypatch, restore_mlflow_uris
):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working folder
    url = postgres_server.create_database("mlflow")
    assert url.startswith("postgresql+psycopg://")
    assert tracking.configure(tmp_path, "pg-test", tracking_uri=url) == url
    with mlflow.start_run() as run:
        mlflow.log_param("horizon_days", 90)
        mlflow.log_metric("holdout_pr_auc", 0.42)

    stored = MlflowClient(url).get_run(run.info.run_id)
    assert stored.data.params == {"horizon_days": "90"}
    assert stored.data.metrics == {"holdout_pr_auc": 0.42}
    assert MlflowClient(url).get_experiment_by_name("pg-test").experiment_id == (
        run.info.experiment_id
    )
