"""Subscriptions (and the other tables) from PostgreSQL give what the same files give.

A real server (conftest_pg.py); the business is a few rows built inline, so each case
states exactly what it feeds both paths.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from features.contracts import InputError
from pipelines import catalog
from pipelines.database import read_tables_sql

KINDS = ("transactions", "interactions", "customers", "subscriptions")
# the business's words for two kinds, as a `kinds:` setting would map them
RENAMES = {"Ticket": "support_ticket", "nps": "survey"}


def _business() -> dict[str, pd.DataFrame]:
    """Four customers; a duplicated interaction and a duplicated subscription row."""
    stamp = pd.to_datetime
    transactions = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c", "c", "d"],
            "timestamp": stamp(
                [
                    "2024-01-03 10:00",
                    "2024-02-03 10:00",
                    "2024-01-10 09:30",
                    "2024-01-05 12:00",
                    "2024-03-05 12:00",
                    "2024-02-20 08:00",
                ]
            ),
            "amount": [20.0, 20.0, 99.5, 15.0, 15.0, 42.0],
            "category": ["plan", "plan", "annual", "plan", "plan", "addon"],
        }
    )
    interactions = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c", "c", "d"],
            "timestamp": stamp(
                [
                    "2024-01-20 11:00",
                    "2024-01-20 11:00",
                    "2024-02-01 15:00",
                    "2024-02-11 16:00",
                    "2024-02-12 09:00",
                    "2024-03-01 10:00",
                ]
            ),
            "kind": ["Ticket", "Ticket", "nps", "complaint", "login", "login"],
        }
    )
    customers = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d", "e"], "region": ["north", "south", None, "n", "s"]}
    )
    subscriptions = pd.DataFrame(
        {
            # c changes plan on 2024-02-05 (one row ends where the next begins); e has no
            # transactions but is a known customer
            "customer_id": ["a", "b", "c", "c", "c", "e"],
            "start": stamp(
                ["2024-01-03", "2024-01-10", "2024-01-05", "2024-02-05", "2024-02-05", "2024-03-01"]
            ),
            "end": stamp(["2024-03-03", None, "2024-02-05", None, None, None]),
            "plan": ["basic", "Plus", "basic", "Plus", "Plus", "basic"],
            "billing_period": ["monthly", "annual", "monthly", "Monthly", "Monthly", "monthly"],
        }
    )
    return {
        "transactions": transactions,
        "interactions": interactions,
        "customers": customers,
        "subscriptions": subscriptions,
    }


@pytest.fixture(scope="module")
def shop(postgres_server) -> sa.Engine:
    """A database of its own: these tables must not meet test_database.py's."""
    engine = sa.create_engine(postgres_server.create_database("subscription_shop"))
    yield engine
    engine.dispose()


def _store(
    frames: dict[str, pd.DataFrame], engine: sa.Engine, folder: Path, prefix: str = ""
) -> dict[str, Path]:
    """Each frame as a PostgreSQL table ``prefix + kind`` and as ``folder/kind.parquet``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, frame in frames.items():
        frame.to_sql(prefix + kind, engine, if_exists="replace", index=False)
        paths[kind] = folder / f"{kind}.parquet"
        frame.to_parquet(paths[kind], index=False)
    return paths


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a fixed order: SQL tables have none."""
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


def test_subscriptions_from_postgresql_equal_the_same_data_from_parquet(shop, tmp_path):
    paths = _store(_business(), shop, tmp_path)
    from_files = catalog.read_tables(
        paths["transactions"],
        paths["interactions"],
        paths["customers"],
        paths["subscriptions"],
        kinds=RENAMES,
        drop_duplicate_interactions=True,
    )
    from_db = read_tables_sql(
        shop,
        "transactions",
        "interactions",
        "customers",
        subscriptions="subscriptions",
        kinds=RENAMES,
        drop_duplicate_interactions=True,
    )
    for kind in KINDS:
        pd.testing.assert_frame_equal(
            _sorted(getattr(from_db, kind)), _sorted(getattr(from_files, kind))
        )
    assert (
        from_db.rows_read
        == from_files.rows_read
        == {
            "transactions": 6,
            "interactions": 5,
            "customers": 5,
            "subscriptions": 5,
        }
    )
    # the same warnings, each naming its table instead of its file
    renamed = list(from_db.warnings)
    for kind in KINDS:
        renamed = [w.replace(f"postgresql:{kind}:", f"{kind}.parquet:") for w in renamed]
    assert renamed == list(from_files.warnings)
    assert "subscriptions.parquet: dropped 1 exact duplicate row" in from_files.warnings
    assert "interactions.parquet: dropped 1 exact duplicate row" in from_files.warnings
    assert set(from_db.interactions["kind"]) == {"support_ticket", "survey", "complaint", "login"}
    assert from_db.subscriptions["billing_period"].astype(str).tolist().count("monthly") == 4


def test_a_subscriptions_query_reads_them_without_a_table_name(shop, tmp_path):
    _store(_business(), shop, tmp_path)
    queries = {"subscriptions": "SELECT * FROM subscriptions WHERE customer_id <> 'c'"}
    tables = read_tables_sql(shop, "transactions", customers="customers", queries=queries)
    assert sorted(tables.subscriptions["customer_id"]) == ["a", "b", "e"]
    assert tables.rows_read == {"transactions": 6, "customers": 5, "subscriptions": 3}
    assert tables.interactions is None
    # without the customers table, e (no transactions) is unknown: the label names the kind
    with pytest.raises(InputError, match="^postgresql:subscriptions: column 'customer_id'"):
        read_tables_sql(shop, "transactions", queries=queries)


def _overlapping(frames: dict[str, pd.DataFrame]) -> None:
    # c's third period starts while the second still runs
    frames["subscriptions"].loc[4, "start"] = pd.Timestamp("2024-02-20")


def _backwards(frames: dict[str, pd.DataFrame]) -> None:
    frames["subscriptions"].loc[1, "end"] = pd.Timestamp("2023-12-31")


def _unknown_customer(frames: dict[str, pd.DataFrame]) -> None:
    frames["subscriptions"].loc[1, "customer_id"] = "zz"


def _starts_in_the_future(frames: dict[str, pd.DataFrame]) -> None:
    frames["subscriptions"].loc[5, "start"] = pd.Timestamp.now().normalize() + pd.Timedelta(days=30)


def _bought_in_the_future(frames: dict[str, pd.DataFrame]) -> None:
    frames["transactions"].loc[2, "timestamp"] = pd.Timestamp("2099-01-01")


@pytest.mark.parametrize(
    ("spoil", "kind", "column", "rows", "words"),
    [
        (_overlapping, "subscriptions", "start", [5], "overlapping"),
        (_backwards, "subscriptions", "end", [2], "before-start"),
        (_unknown_customer, "subscriptions", "customer_id", [2], "unknown"),
        (_starts_in_the_future, "subscriptions", "start", [6], "future"),
        (_bought_in_the_future, "transactions", "timestamp", [3], "future"),
    ],
)
def test_a_bad_row_in_postgresql_is_named_like_the_same_row_in_a_file(
    shop, tmp_path, spoil, kind, column, rows, words
):
    frames = _business()
    spoil(frames)
    paths = _store(frames, shop, tmp_path, prefix="bad_")
    with pytest.raises(InputError) as from_file:
        catalog.read_tables(
            paths["transactions"],
            customers=paths["customers"],
            subscriptions=paths["subscriptions"],
        )
    with pytest.raises(InputError) as from_db:
        read_tables_sql(
            shop, "bad_transactions", customers="bad_customers", subscriptions="bad_subscriptions"
        )
    file_error, db_error = from_file.value, from_db.value
    assert (file_error.source, db_error.source) == (f"{kind}.parquet", f"postgresql:bad_{kind}")
    assert (db_error.column, db_error.rows) == (file_error.column, file_error.rows)
    assert (db_error.column, db_error.rows) == (column, rows)
    assert words in db_error.message
    assert db_error.message == file_error.message
