"""The broken-input corpus (tests/corpus/): each case gets a clear error naming the file,
column and rows, or a documented repair that is counted in a warning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.contracts import InputError
from pipelines.catalog import read_table, read_tables

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

ERRORS = [
    # file, table, words the message must hold, rows it must name
    ("missing_column.csv", "transactions", ["missing required column 'timestamp'"], []),
    (
        "non_numeric_amount.csv",
        "transactions",
        ["'amount'", "2 missing or non-numeric values"],
        [2, 4],
    ),
    ("unparseable_timestamp.csv", "transactions", ["'timestamp'", "'yesterday'"], [2, 3]),
    ("mixed_time_zones.csv", "transactions", ["'timestamp'", "mixed time zones"], None),
    ("future_timestamp.csv", "transactions", ["'timestamp'", "future"], [2]),
    ("negative_quantity.csv", "transactions", ["'quantity'", "negative"], [2]),
    ("satisfaction_out_of_range.csv", "interactions", ["'satisfaction'", "1 to 5"], [1]),
    ("empty_table.csv", "transactions", ["is empty"], []),
    ("zero_bytes.csv", "transactions", ["empty (0 bytes)"], []),
    ("not_utf8.csv", "transactions", ["not UTF-8"], []),
    ("truncated.parquet", "transactions", ["cannot be read"], []),
]


@pytest.mark.parametrize(("name", "table", "words", "rows"), ERRORS, ids=[e[0] for e in ERRORS])
def test_broken_input_gets_a_clear_error(name, table, words, rows):
    with pytest.raises(InputError) as err:
        read_table(CORPUS / name, table)
    message = str(err.value)
    assert message.startswith(f"{name}: ")  # names the file
    for word in words:
        assert word in message
    if rows is not None:
        assert err.value.rows == rows


def test_duplicate_rows_are_dropped_and_counted():
    table = read_table(CORPUS / "duplicate_rows.csv", "transactions")
    assert len(table.frame) == 2
    assert table.warnings == ("duplicate_rows.csv: dropped 1 exact duplicate row",)


def test_refund_larger_than_the_purchases_is_capped_and_counted():
    tables = read_tables(CORPUS / "refund_larger_than_purchase.csv")
    assert tables.transactions["amount"].tolist() == [10.0, -10.0, 5.0]  # -25 capped at -10
    assert tables.warnings == (
        "refund_larger_than_purchase.csv: capped 1 refunds larger than the customer's "
        "purchases up to then at those purchases",
    )


def test_interactions_of_unknown_customers_are_dropped_and_counted(tmp_path):
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,timestamp,amount\nA,2024-01-01,10\n")
    tables = read_tables(tx, CORPUS / "interactions_unknown_customer.csv")
    assert tables.interactions["customer_id"].tolist() == ["A"]
    assert tables.warnings == (
        "interactions_unknown_customer.csv: dropped 1 rows of 1 customers who have no transactions",
    )


def test_wrong_types_in_parquet_are_named(tmp_path):
    path = tmp_path / "tx.parquet"
    pd.DataFrame(
        {"customer_id": ["a", "b"], "timestamp": ["2024-01-01", "2024-01-02"], "amount": ["1", "x"]}
    ).to_parquet(path)
    with pytest.raises(
        InputError, match=r"tx.parquet: column 'amount' has 1 non-numeric value, row 2"
    ):
        read_table(path, "transactions")


def test_a_huge_single_customer_is_one_row_and_fast_enough(tmp_path):
    n = 300_000  # one wholesale account with 300k orders over three years
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2022-01-01")
    tx = pd.DataFrame(
        {
            "customer_id": "WHALE",
            "timestamp": start + pd.to_timedelta(np.sort(rng.integers(0, 3 * 365 * 86400, n)), "s"),
            "amount": rng.gamma(2.0, 50.0, n),
        }
    )
    path = tmp_path / "tx.parquet"
    tx.to_parquet(path)
    tables = read_tables(path)
    features = build_features(tables.transactions, "2025-01-01")
    assert features.index.tolist() == ["WHALE"]
    assert features.loc["WHALE", "lifetime_purchases"] == n
