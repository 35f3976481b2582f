"""A table validated in parts (rows numbered as in the whole) is reported as the whole table
is: features.contracts.partitions.whole_table_error against validate_table itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contracts import InputError, validate_table
from features.contracts.messages import RowNumbering, numbered_rows
from features.contracts.partitions import whole_table_error


def _in_parts(frame: pd.DataFrame, table: str, parts: list[list[int]]) -> InputError | None:
    errors, zones = [], []
    for rows in parts:
        numbering = RowNumbering(np.asarray(rows))
        try:
            with numbered_rows(numbering):
                validate_table(frame.iloc[rows], table, source="t.csv")
        except InputError as error:
            errors.append(error)
        zones.append(numbering.zones)
    return whole_table_error(table, "t.csv", errors, zones)


def _whole(frame: pd.DataFrame, table: str) -> InputError:
    with pytest.raises(InputError) as whole:
        validate_table(frame, table, source="t.csv")
    return whole.value


def _transactions(amount: list[str], timestamp: list[str] | None = None) -> pd.DataFrame:
    n = len(amount)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "timestamp": timestamp or ["2024-01-01"] * n,
            "amount": amount,
        }
    )


def test_missing_in_one_part_and_invalid_in_another_are_one_message():
    frame = _transactions(["1", "x", "", "3", "y", "2"])

    told = _in_parts(frame, "transactions", [[0, 2, 4], [1, 3, 5]])

    assert str(told) == (
        "t.csv: column 'amount' has 3 missing or non-numeric values, first rows 2 (value 'x'), "
        "3 (value ''), 5 (value 'y')"
    )
    assert str(told) == str(_whole(frame, "transactions"))
    assert told is not None and told.rows == [2, 3, 5]


def test_the_check_the_whole_table_fails_first_is_the_one_told():
    # part one fails on amount, part two on the timestamp (checked before amount)
    frame = _transactions(["1", "x", "2", "3"], ["2024-01-01", "2024-01-02", "soon", "2024-01-04"])

    told = _in_parts(frame, "transactions", [[0, 1], [2, 3]])

    assert str(told) == str(_whole(frame, "transactions"))
    assert told is not None and told.column == "timestamp" and told.rows == [3]


def test_time_zones_mixed_only_across_parts_are_refused():
    timestamp = ["2024-01-01T10:00:00+01:00", "2024-01-02", "2024-01-03T09:00:00+01:00"]
    frame = _transactions(["1", "2", "3"], timestamp)

    told = _in_parts(frame, "transactions", [[0, 2], [1]])  # neither part mixes

    assert str(told) == str(_whole(frame, "transactions"))
    assert told is not None and told.rows == [2]


def test_repeated_customers_of_two_parts_are_counted_together():
    frame = pd.DataFrame({"customer_id": ["A", "B", "A", "B"], "region": ["n", "s", "e", "w"]})

    told = _in_parts(frame, "customers", [[0, 2], [1, 3]])

    assert str(told) == str(_whole(frame, "customers"))
    assert "2 customer ids appear on more than one differing row" in str(told)


def test_parts_that_pass_are_no_error():
    assert _in_parts(_transactions(["1", "2", "3"]), "transactions", [[0], [1, 2]]) is None
