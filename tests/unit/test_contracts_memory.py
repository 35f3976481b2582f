"""The memory-lean validation keeps the values, dtypes and messages of the plain one.

Low-cardinality text columns come out as pandas ``category`` (categories: the sorted
distinct cleaned strings), ids stay ``str``; everything else is value-for-value what
the row-by-row cleaning produced, and bad values are reported exactly as before.
"""

import numpy as np
import pandas as pd
import pytest

from features.contracts import (
    LABEL_COLUMNS,
    PAYMENT_STATUSES,
    InputError,
    _duplicated_rows,
    reconcile,
    validate_table,
)
from pipelines.catalog import read_table, read_tables


def _clean(value: object, lower: bool = False) -> object:
    """The pre-change cleaning of one text value: stripped, blank -> missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    text = str(value).strip()
    if text == "":
        return np.nan
    return text.lower() if lower else text


def _messy_transactions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series([" c1", "c2 ", "c2", "c3", "c1", "c3"], dtype="str"),
            "timestamp": pd.Series(
                ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06"]
            ).astype("datetime64[ns]"),
            "amount": [10.0, 20.0, -5.0, 7.5, 3.0, 1.0],
            "order_id": pd.Series(["o1", " o2", "o3", "o4 ", "o5", "o6"], dtype="str"),
            "category": pd.Series(["Tools", " paint", "tools", None, "", "paint "], dtype="str"),
            "channel": pd.Series(["online", "store", "online", "store", "online", "web"]),
            "region": pd.Series(["east", "east", " west", "west", "north", "east"], dtype="str"),
            "payment_status": pd.Series([" OK", "late", None, "Failed", "ok", "LATE"], dtype="str"),
        }
    )


def _messy_interactions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c1"],
            "timestamp": pd.Series(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]).astype(
                "datetime64[ns]"
            ),
            "kind": pd.Series([" Complaint", "call", "CALL", "chat "], dtype="str"),
            "channel": pd.Series(["Phone", None, " Web", "phone"], dtype="str"),
            "resolved": pd.Series(["yes", "no", None, "1"], dtype="str"),
        }
    )


def test_validated_values_equal_the_cleaned_strings_and_labels_are_categorical():
    raw = _messy_transactions()

    frame = validate_table(raw, "transactions", "t.csv").frame

    assert frame["customer_id"].dtype == "str"
    assert frame["order_id"].dtype == "str"
    for column in LABEL_COLUMNS["transactions"]:
        lower = column == "payment_status"
        expected = pd.Series([_clean(v, lower) for v in raw[column]], dtype="str", name=column)
        assert isinstance(frame[column].dtype, pd.CategoricalDtype), column
        categories = frame[column].cat.categories
        assert list(categories) == sorted(expected.dropna().unique()), column
        assert categories.dtype == "str"
        pd.testing.assert_series_equal(frame[column].astype("str"), expected)
    for column in ("customer_id", "order_id"):
        expected = pd.Series([_clean(v) for v in raw[column]], dtype="str", name=column)
        pd.testing.assert_series_equal(frame[column], expected)


def test_interaction_labels_and_text_flags_are_cleaned_per_distinct_value():
    raw = _messy_interactions()

    frame = validate_table(raw, "interactions", "i.csv").frame

    assert list(frame["kind"].astype("str")) == ["complaint", "call", "call", "chat"]
    assert list(frame["kind"].cat.categories) == ["call", "chat", "complaint"]
    pd.testing.assert_series_equal(
        frame["channel"].astype("str"),
        pd.Series(["Phone", np.nan, "Web", "phone"], dtype="str", name="channel"),
    )
    pd.testing.assert_series_equal(
        frame["resolved"],
        pd.Series(pd.array([True, False, None, True], dtype="boolean"), name="resolved"),
    )


def test_object_columns_give_the_same_result_as_string_columns():
    raw = _messy_transactions()
    as_objects = raw.astype({c: object for c in raw.columns if raw[c].dtype == "str"})

    from_strings = validate_table(raw, "transactions", "t.csv").frame
    from_objects = validate_table(as_objects, "transactions", "t.csv").frame

    pd.testing.assert_frame_equal(from_strings, from_objects)


def test_parquet_read_equals_validating_the_plain_read(tmp_path):
    raw = _messy_transactions().assign(note=["x"] * 6)
    path = tmp_path / "transactions.parquet"
    raw.to_parquet(path, index=False)

    read = read_table(path, "transactions").frame
    plain = validate_table(pd.read_parquet(path), "transactions", path.name).frame

    pd.testing.assert_frame_equal(read, plain)
    assert "note" not in read.columns


def _bad_payment_frame() -> pd.DataFrame:
    frame = _messy_transactions()
    frame["payment_status"] = pd.Series(["ok", "bogus", "late", " Nope ", "ok", None], dtype="str")
    return frame


def test_an_unknown_label_is_reported_with_file_column_and_rows(tmp_path):
    path = tmp_path / "orders.parquet"
    _bad_payment_frame().to_parquet(path, index=False)

    with pytest.raises(InputError) as from_file:
        read_table(path, "transactions")
    with pytest.raises(InputError) as from_frame:
        validate_table(_bad_payment_frame(), "transactions", "orders.parquet")

    allowed = ", ".join(PAYMENT_STATUSES)
    expected = (
        "orders.parquet: column 'payment_status' has 2 unknown values, first rows "
        f"2 (value 'bogus'), 4 (value ' Nope '); allowed values are {allowed}"
    )
    for caught in (from_file.value, from_frame.value):
        assert str(caught) == expected
        assert caught.source == "orders.parquet"
        assert caught.column == "payment_status"
        assert caught.rows == [2, 4]


def test_a_missing_required_label_is_reported_with_its_rows(tmp_path):
    frame = _messy_interactions()
    frame["kind"] = pd.Series(["call", "  ", None, "chat"], dtype="str")
    path = tmp_path / "contacts.parquet"
    frame.to_parquet(path, index=False)

    with pytest.raises(InputError) as caught:
        read_table(path, "interactions")

    assert str(caught.value) == (
        "contacts.parquet: column 'kind' has 2 missing values, first rows "
        "2 (value '  '), 3 (missing)"
    )
    assert caught.value.column == "kind"
    assert caught.value.rows == [2, 3]


def test_a_missing_id_among_clean_ones_is_still_reported():
    frame = _messy_transactions()
    frame["order_id"] = pd.Series(["o1", "o2", "", "o4", "o5", "o6"], dtype="str")
    frame["customer_id"] = pd.Series(["c1", "c2", "c2", None, "c1", "c3"], dtype="str")

    with pytest.raises(InputError) as caught:
        validate_table(frame, "transactions", "t.csv")

    assert str(caught.value) == "t.csv: column 'customer_id' has 1 missing value, row 4 (missing)"
    assert caught.value.rows == [4]


def _random_transactions(rng: np.random.Generator, n: int) -> pd.DataFrame:
    ids = rng.integers(0, 40, n)
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series([f"c{i:03d}" for i in ids], dtype="str"),
            "timestamp": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 30, n), unit="D"),
            "amount": rng.choice([-50.0, -5.0, 5.0, 10.0, 0.1, 0.2, 0.3], n),
            "category": pd.Series(rng.choice(["a", "b", " a"], n), dtype="str"),
            "discount": rng.choice([0.0, np.nan, -0.0], n),
        }
    )
    # exact duplicates, some far apart
    return pd.concat([frame, frame.sample(n // 5, random_state=1)], ignore_index=True)


@pytest.mark.parametrize("order", ["as_is", "by_customer_then_time"])
def test_duplicate_rows_match_dataframe_duplicated(order):
    rng = np.random.default_rng(7)
    raw = _random_transactions(rng, 400)
    if order == "by_customer_then_time":
        raw = raw.sort_values(["customer_id", "timestamp"], kind="stable", ignore_index=True)
    validated = validate_table(raw, "transactions", "t.csv")
    # the frame before dropping duplicates: validate a copy with a unique column added
    full = validate_table(
        raw.assign(order_id=[str(i) for i in range(len(raw))]), "transactions", "x"
    )
    undeduplicated = full.frame.drop(columns="order_id")

    expected = undeduplicated.duplicated(keep="first").to_numpy()

    np.testing.assert_array_equal(_duplicated_rows(undeduplicated), expected)
    kept = undeduplicated.loc[~expected].reset_index(drop=True)
    pd.testing.assert_frame_equal(validated.frame, kept, check_categorical=False)
    assert validated.warnings == (f"t.csv: dropped {int(expected.sum())} exact duplicate rows",)


def _reference_capped_amounts(transactions: pd.DataFrame) -> pd.Series:
    """The pre-change refund capping: sort everything by customer and time, then cap."""
    ordered = transactions.sort_values(["customer_id", "timestamp"], kind="stable")
    paid_so_far = ordered["amount"].clip(lower=0).groupby(ordered["customer_id"]).cumsum()
    refund = ordered["amount"] < 0
    too_large = refund & (-ordered["amount"] > paid_so_far)
    capped = ordered["amount"].where(~too_large, -paid_so_far)
    return capped.reindex(transactions.index)


@pytest.mark.parametrize("order", ["as_is", "by_customer_then_time"])
def test_refund_capping_is_bit_for_bit_the_sort_everything_result(order):
    rng = np.random.default_rng(3)
    raw = _random_transactions(rng, 2000).drop_duplicates(ignore_index=True)
    if order == "by_customer_then_time":
        raw = raw.sort_values(["customer_id", "timestamp"], kind="stable", ignore_index=True)
    tx = validate_table(raw, "transactions", "t.csv").frame

    repaired, _, warnings = reconcile(tx, None, ("t.csv", ""))

    expected = _reference_capped_amounts(tx)
    np.testing.assert_array_equal(repaired["amount"].to_numpy(), expected.to_numpy())
    n_capped = int((expected != tx["amount"]).sum())
    assert n_capped > 0
    assert warnings == (
        f"t.csv: capped {n_capped} refunds larger than the customer's purchases up to then "
        "at those purchases",
    )


def test_dropping_orphan_interactions_keeps_only_the_labels_present(tmp_path):
    tx = pd.DataFrame(
        {"customer_id": ["c1", "c2"], "timestamp": ["2024-01-01", "2024-01-02"], "amount": [1, 2]}
    )
    ix = pd.DataFrame(
        {
            "customer_id": ["c1", "orphan", "c2"],
            "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "kind": ["call", "complaint", "call"],
            "channel": ["phone", "chat", "email"],
        }
    )
    tx.to_parquet(tmp_path / "tx.parquet")
    ix.to_csv(tmp_path / "ix.csv", index=False)

    tables = read_tables(tmp_path / "tx.parquet", tmp_path / "ix.csv")

    assert list(tables.interactions["customer_id"]) == ["c1", "c2"]
    assert list(tables.interactions["kind"].cat.categories) == ["call"]
    assert list(tables.interactions["channel"].cat.categories) == ["email", "phone"]
    assert tables.warnings == ("ix.csv: dropped 1 rows of 1 customers who have no transactions",)


def test_label_columns_take_less_memory_than_strings():
    rng = np.random.default_rng(0)
    n = 20_000
    raw = pd.DataFrame(
        {
            "customer_id": pd.Series([f"c{i}" for i in rng.integers(0, 500, n)], dtype="str"),
            "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="s"),
            "amount": rng.random(n),
            "category": pd.Series(rng.choice(["grocery", "electronics", "home"], n), dtype="str"),
        }
    )

    frame = validate_table(raw, "transactions", "t.csv").frame

    as_strings = frame["category"].astype("str").memory_usage(deep=True)
    assert frame["category"].memory_usage(deep=True) * 5 < as_strings
