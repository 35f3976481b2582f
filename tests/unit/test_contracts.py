import pickle

import numpy as np
import pandas as pd
import pytest

from features.contracts import (
    CONTRACT_TABLES,
    INPUT_TABLES,
    OPTIONAL,
    REQUIRED,
    TABLES,
    InputError,
    validate_table,
)


def _str(values: list[object]) -> pd.Series:
    return pd.Series(values, dtype="str")


def _category(values: list[object]) -> pd.Series:
    """Low-cardinality labels come out categorical; categories are the sorted strings."""
    return pd.Series(values, dtype="str").astype("category")


def _times(values: list[str]) -> pd.Series:
    return pd.Series([pd.Timestamp(value) for value in values], dtype="datetime64[ns]")


def _transactions(**columns: list[object]) -> pd.DataFrame:
    """Three valid transactions; keyword arguments replace or add columns."""
    base: dict[str, list[object]] = {
        "customer_id": ["a", "b", "c"],
        "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03"],
        "amount": [10.0, 20.0, 30.0],
    }
    return pd.DataFrame({**base, **columns})


def _interactions(**columns: list[object]) -> pd.DataFrame:
    base: dict[str, list[object]] = {
        "customer_id": ["a", "b", "c"],
        "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03"],
        "kind": ["complaint", "call", "email"],
    }
    return pd.DataFrame({**base, **columns})


def _error(frame: pd.DataFrame, table: str = "transactions") -> InputError:
    source = f"{table}.csv"
    with pytest.raises(InputError) as caught:
        validate_table(frame, table, source)
    assert caught.value.source == source
    return caught.value


# --- contract tables ------------------------------------------------------------------


def test_contract_tables_cover_every_table():
    assert set(REQUIRED) == set(OPTIONAL) == set(CONTRACT_TABLES) == {*INPUT_TABLES, "contacts"}
    assert INPUT_TABLES == (*TABLES, "subscriptions")  # the optional table comes last


# --- normalisation --------------------------------------------------------------------


def test_transactions_are_normalised_to_fixed_columns_order_and_dtypes():
    frame = pd.DataFrame(
        {
            "note": ["x", "y", "z"],  # unknown: dropped
            "payment_status": [" OK", None, "Late"],
            "amount": ["12.5", " -3 ", "7"],
            "timestamp": ["2024-01-01", "2024-01-02T10:30:00", "2024-01-03 23:59:59"],
            " Customer_ID": [" c1 ", "c2", "c3"],
            "discount": [0.1, None, 0.0],
            "order_id": [101.0, np.nan, 103.0],
        }
    )

    result = validate_table(frame, "transactions", "transactions.csv")

    expected = pd.DataFrame(
        {
            "customer_id": _str(["c1", "c2", "c3"]),
            "timestamp": _times(["2024-01-01", "2024-01-02 10:30:00", "2024-01-03 23:59:59"]),
            "amount": [12.5, -3.0, 7.0],
            "order_id": _str(["101", None, "103"]),
            "discount": [0.1, np.nan, 0.0],
            "payment_status": _category(["ok", None, "late"]),
        }
    )
    pd.testing.assert_frame_equal(result.frame, expected)
    assert result.present_optional == ("order_id", "discount", "payment_status")
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ([12345, 7, 8], ["12345", "7", "8"]),
        ([12345.0, 7.0, 8.0], ["12345", "7", "8"]),
        ([12345.0, "  x7 ", 8], ["12345", "x7", "8"]),
    ],
)
def test_customer_ids_become_stripped_strings(ids, expected):
    result = validate_table(_transactions(customer_id=ids), "transactions", "t.csv")

    pd.testing.assert_series_equal(result.frame["customer_id"], _str(expected), check_names=False)


def test_offset_timestamps_are_converted_to_naive_utc():
    frame = _transactions(
        timestamp=["2024-01-01T02:00:00+02:00", "2024-01-01T00:00:00Z", "2023-12-31T19:00-05:00"]
    )

    result = validate_table(frame, "transactions", "t.csv")

    expected = _times(["2024-01-01 00:00:00"] * 3)
    pd.testing.assert_series_equal(result.frame["timestamp"], expected, check_names=False)


@pytest.mark.parametrize("dtype", ["str", object])
def test_offsets_are_found_the_same_in_arrow_text_and_python_objects(dtype):
    # Arrow-backed text is matched by RE2, object values by Python's re: same answers
    text = [
        "2024-01-01T02:00:00+02:00",
        "2024-01-01 00:00:00Z",
        "2024-01-01T00:00:00.123 Z",
        "2023-12-31 19:00-0500",
        "2024-01-01T05:30:00+05:30",
        "2024-01-01T00:00Z",
    ]
    frame = pd.DataFrame(
        {
            "customer_id": list("abcdef"),
            "timestamp": pd.Series(text, dtype=dtype),
            "amount": [10.0] * 6,
        }
    )

    result = validate_table(frame, "transactions", "t.csv")

    expected = ["2024-01-01 00:00:00", "2024-01-01 00:00:00", "2024-01-01 00:00:00.123"]
    expected += ["2024-01-01 00:00:00", "2024-01-01 00:00:00", "2024-01-01 00:00:00"]
    pd.testing.assert_series_equal(result.frame["timestamp"], _times(expected), check_names=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1997-01-01", "1997-01-01 00:00:00"),
        ("1997-01-01T10:00:00+02:00", "1997-01-01 08:00:00"),
        ("19970101", "1997-01-01 00:00:00"),
    ],
)
def test_iso_dates_and_datetimes_parse(text, expected):
    result = validate_table(_transactions(timestamp=[text] * 3), "transactions", "t.csv")

    assert (result.frame["timestamp"] == pd.Timestamp(expected)).all()
    assert result.frame["timestamp"].dtype == "datetime64[ns]"


def test_timezone_aware_datetime_column_is_converted_to_naive_utc():
    aware = pd.Series(pd.to_datetime(["2024-01-01 02:00"] * 3)).dt.tz_localize("Europe/Athens")

    result = validate_table(_transactions(timestamp=aware), "transactions", "t.csv")

    expected = _times(["2024-01-01 00:00:00"] * 3)
    pd.testing.assert_series_equal(result.frame["timestamp"], expected, check_names=False)


def test_interactions_normalise_labels_numbers_and_flags():
    frame = _interactions(
        kind=[" Complaint", "CALL ", "chat"],
        channel=[" Phone ", "", "Web"],
        satisfaction=["2", None, 5],
        resolution_hours=[1.5, None, "0"],
        resolved=["Yes", 0, None],
        responded=["FALSE", "1", True],
    )

    result = validate_table(frame, "interactions", "interactions.csv")

    expected = pd.DataFrame(
        {
            "customer_id": _str(["a", "b", "c"]),
            "timestamp": _times(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "kind": _category(["complaint", "call", "chat"]),
            "channel": _category(["Phone", None, "Web"]),
            "satisfaction": [2.0, np.nan, 5.0],
            "resolved": pd.array([True, False, None], dtype="boolean"),
            "resolution_hours": [1.5, np.nan, 0.0],
            "responded": pd.array([False, True, True], dtype="boolean"),
        }
    )
    pd.testing.assert_frame_equal(result.frame, expected)


def test_flags_from_float_column_with_gaps():
    result = validate_table(_interactions(resolved=[1.0, np.nan, 0.0]), "interactions", "i.csv")

    expected = pd.Series(pd.array([True, None, False], dtype="boolean"), name="resolved")
    pd.testing.assert_series_equal(result.frame["resolved"], expected)


def test_customers_allow_missing_optional_signup_date():
    frame = pd.DataFrame(
        {"customer_id": [1, 2, 3], "signup_date": ["2020-05-01", None, "2021-01-31"]}
    )

    result = validate_table(frame, "customers", "customers.csv")

    expected = pd.DataFrame(
        {
            "customer_id": _str(["1", "2", "3"]),
            "signup_date": _times(["2020-05-01", "NaT", "2021-01-31"]),
        }
    )
    pd.testing.assert_frame_equal(result.frame, expected)
    assert result.present_optional == ("signup_date",)


# --- duplicates -------------------------------------------------------------------------


def test_exact_duplicates_after_normalisation_are_dropped_with_a_count():
    frame = pd.DataFrame(
        {
            "customer_id": ["a", " a", "a", "b", "b"],
            "timestamp": [
                "2024-01-01",
                "2024-01-01T00:00:00",
                "2024-01-01",
                "2024-01-02",
                "2024-01-03",
            ],
            "amount": ["5", "5.0", 5, 1, 1],
        }
    )

    result = validate_table(frame, "transactions", "transactions.csv")

    assert result.warnings == ("transactions.csv: dropped 2 exact duplicate rows",)
    expected = pd.DataFrame(
        {
            "customer_id": _str(["a", "b", "b"]),
            "timestamp": _times(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "amount": [5.0, 1.0, 1.0],
        }
    )
    pd.testing.assert_frame_equal(result.frame, expected)


def test_customers_with_conflicting_rows_for_one_id_are_rejected():
    frame = pd.DataFrame(
        {"customer_id": ["a", "b", "a", "a"], "region": ["north", "south", "north", "east"]}
    )

    error = _error(frame, "customers")

    assert error.column == "customer_id"
    assert error.rows == [1, 4]
    assert str(error) == (
        "customers.csv: column 'customer_id' has 2 repeated values, first rows "
        "1 (value 'a'), 4 (value 'a'); 1 customer id appears on more than one differing "
        "row; keep one row per customer"
    )


# --- errors -----------------------------------------------------------------------------


def test_unknown_table_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown table 'orders'") as caught:
        validate_table(_transactions(), "orders", "orders.csv")
    assert not isinstance(caught.value, InputError)


def test_empty_table():
    error = _error(_transactions().iloc[0:0])

    assert str(error) == "transactions.csv: the transactions table is empty (no data rows)"


def test_missing_required_columns_are_all_named_with_the_columns_found():
    frame = pd.DataFrame({"cust": ["a"], "amount": [1.0], "date": ["2024-01-01"]})

    error = _error(frame)

    assert str(error) == (
        "transactions.csv: missing required columns 'customer_id', 'timestamp'; "
        "found columns 'cust', 'amount', 'date'"
    )


def test_non_numeric_amount_names_rows_and_values():
    frame = pd.DataFrame(
        {
            "customer_id": list("abcdefg"),
            "timestamp": ["2024-01-01"] * 7,
            "amount": ["1", "2", "abc", "4", "5", "6", "x"],
        }
    )

    error = _error(frame)

    assert str(error) == (
        "transactions.csv: column 'amount' has 2 non-numeric values, "
        "first rows 3 (value 'abc'), 7 (value 'x')"
    )
    assert (error.column, error.rows) == ("amount", [3, 7])


def test_missing_and_non_numeric_amounts_are_reported_together():
    error = _error(_transactions(amount=[None, "1.0", "1,5"]))

    assert str(error) == (
        "transactions.csv: column 'amount' has 2 missing or non-numeric values, "
        "first rows 1 (missing), 3 (value '1,5')"
    )
    assert error.rows == [1, 3]


def test_rows_are_positions_in_the_input_not_its_index():
    frame = _transactions(amount=[1.0, "oops", 3.0]).set_axis([100, 7, 42])

    error = _error(frame)

    assert error.rows == [2]
    assert (
        str(error)
        == "transactions.csv: column 'amount' has 1 non-numeric value, row 2 (value 'oops')"
    )


def test_blank_or_missing_customer_ids():
    error = _error(_transactions(customer_id=["a", "  ", None]))

    assert str(error) == (
        "transactions.csv: column 'customer_id' has 2 missing values, "
        "first rows 2 (value '  '), 3 (missing)"
    )
    assert (error.column, error.rows) == ("customer_id", [2, 3])


def test_unparseable_timestamps_list_at_most_five_rows_but_count_all():
    frame = pd.DataFrame(
        {
            "customer_id": list("abcdefg"),
            "timestamp": ["2024-01-01", "yesterday", "01/02/2024", "2024-13-01", "", "x", "y"],
            "amount": [1.0] * 7,
        }
    )

    error = _error(frame)

    assert error.column == "timestamp"
    assert error.rows == [2, 3, 4, 5, 6]
    assert str(error).startswith(
        "transactions.csv: column 'timestamp' has 6 missing or unparseable values, first rows "
        "2 (value 'yesterday'), 3 (value '01/02/2024'), 4 (value '2024-13-01'), "
        "5 (value ''), 6 (value 'x'); expected ISO 8601"
    )


def test_mixed_offset_and_naive_timestamps_are_rejected():
    frame = _transactions(
        timestamp=["2024-01-01T10:00:00", "2024-01-01T02:00:00+02:00", "2024-01-02"]
    )

    error = _error(frame)

    assert (error.column, error.rows) == ("timestamp", [2])
    assert "mixed time zones" in str(error)
    assert str(error) == (
        "transactions.csv: column 'timestamp' has mixed time zones (1 value with a UTC "
        "offset, 2 without), so their times cannot be compared; row with an offset "
        "2 (value '2024-01-01T02:00:00+02:00')"
    )


def test_negative_discount():
    error = _error(_transactions(discount=[0.1, -0.2, None]))

    assert (
        str(error) == "transactions.csv: column 'discount' has 1 negative value, row 2 (value -0.2)"
    )


def test_non_numeric_optional_number():
    error = _error(_transactions(quantity=["2", None, "two"]))

    assert (error.column, error.rows) == ("quantity", [3])
    assert (
        str(error)
        == "transactions.csv: column 'quantity' has 1 non-numeric value, row 3 (value 'two')"
    )


def test_satisfaction_outside_one_to_five():
    error = _error(_interactions(satisfaction=[0, 3, 6]), "interactions")

    assert (error.column, error.rows) == ("satisfaction", [1, 3])
    assert str(error) == (
        "interactions.csv: column 'satisfaction' has 2 out-of-range values, first rows "
        "1 (value 0), 3 (value 6); satisfaction scores run from 1 to 5"
    )


def test_unrecognised_flags():
    error = _error(_interactions(resolved=["yes", "maybe", 2]), "interactions")

    assert (error.column, error.rows) == ("resolved", [2, 3])
    assert str(error) == (
        "interactions.csv: column 'resolved' has 2 unrecognised values, first rows "
        "2 (value 'maybe'), 3 (value 2); expected true/false, yes/no or 1/0"
    )


def test_unknown_payment_status():
    error = _error(_transactions(payment_status=["ok", "pending", None]))

    assert str(error) == (
        "transactions.csv: column 'payment_status' has 1 unknown value, row 2 "
        "(value 'pending'); allowed values are ok, failed, late"
    )


def test_missing_interaction_kind():
    error = _error(_interactions(kind=["call", None, "email"]), "interactions")

    assert (error.column, error.rows) == ("kind", [2])


def test_input_error_survives_pickling():
    error = InputError("t.csv", "column 'amount' is bad", column="amount", rows=[3])

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.source, copy.message, copy.column, copy.rows) == (
        "t.csv",
        "column 'amount' is bad",
        "amount",
        [3],
    )
    assert str(copy) == "t.csv: column 'amount' is bad"


# --- purity -----------------------------------------------------------------------------


def test_input_frame_is_not_mutated():
    frame = pd.DataFrame(
        {
            " Customer_ID ": [" a ", "a", "b"],
            "timestamp": ["2024-01-01T02:00:00+02:00", "2024-01-01T00:00:00Z", "2024-01-02"],
            "amount": ["1", "1", "2"],
            "payment_status": ["OK", "ok", None],
            "extra": [1, 2, 3],
        },
        index=[5, 6, 7],
    )
    # Offsets on some rows and not others would be an error; make row 3 aware too.
    frame.loc[7, "timestamp"] = "2024-01-02T00:00:00Z"
    before = frame.copy(deep=True)

    result = validate_table(frame, "transactions", "t.csv")

    pd.testing.assert_frame_equal(frame, before)
    assert result.warnings == ("t.csv: dropped 1 exact duplicate row",)
