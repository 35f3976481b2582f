"""The column table is the one declaration of each input column; the views follow it."""

import ast
from pathlib import Path

import pandas as pd
import pytest

from features.contracts import (
    COLUMNS,
    LABEL_COLUMNS,
    NULLABLE_REQUIRED,
    OPTIONAL,
    REQUIRED,
    Column,
    validate_table,
)
from features.contracts.columnar import is_in
from features.contracts.columns import _one_per_name

# one valid value per column kind, and the dtype validation gives it
_VALID = {
    "id": ("c1", "str"),
    "time": ("2024-01-01", "datetime64[ns]"),
    "number": (2.0, "float64"),
    "flag": ("yes", "boolean"),
    "label": ("web", "category"),
    "payment_status": ("ok", "category"),
    "billing_period": ("monthly", "category"),
}


def test_views_are_read_from_the_column_table():
    assert REQUIRED["subscriptions"] == ("customer_id", "start", "end")
    assert OPTIONAL["customers"] == ("signup_date", "region")
    assert NULLABLE_REQUIRED == {"subscriptions": ("end",)}
    assert LABEL_COLUMNS["interactions"] == ("kind", "channel")


@pytest.mark.parametrize("table", sorted({column.table for column in COLUMNS}))
def test_each_column_comes_out_in_the_dtype_of_its_kind(table: str):
    columns = [column for column in COLUMNS if column.table == table]
    frame = pd.DataFrame({column.name: [_VALID[column.kind][0]] * 2 for column in columns})
    frame["customer_id"] = ["c1", "c2"]  # two customers: no duplicate rows

    validated = validate_table(frame, table, f"{table}.csv").frame

    assert list(validated.columns) == [column.name for column in columns]
    assert {name: str(dtype) for name, dtype in validated.dtypes.items()} == {
        column.name: _VALID[column.kind][1] for column in columns
    }


def test_a_name_declared_two_ways_is_refused():
    clash = (
        Column("transactions", "channel", "label"),
        Column("interactions", "channel", "number"),
    )
    with pytest.raises(ValueError, match="'channel' is declared differently"):
        _one_per_name(clash)


def test_only_the_columnar_module_imports_pyarrow():
    features = Path(__file__).resolve().parents[2] / "features"
    importers = set()
    for path in features.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            if any(name.split(".")[0] == "pyarrow" for name in names):
                importers.add(path.relative_to(features).as_posix())
    assert importers == {"contracts/columnar.py"}


@pytest.mark.parametrize(
    ("values", "candidates"),
    [
        (pd.Series(["C1", "C2", None, "C3"], dtype="str"), ["C3", "C1"]),
        (pd.Series(["C1", None], dtype="str"), {"C1", None}),
        (pd.Index(["C1", "C2"], dtype="object"), pd.Index(["C2"], dtype="str")),
        (pd.Series([1, 2, 3]), [3, 4]),
        (pd.Series(["1", "2"], dtype="str"), [1, 2]),  # text against numbers: no match
        (pd.Series(["C1"], dtype="str"), []),
    ],
)
def test_is_in_answers_as_pandas_isin_does(values, candidates):
    expected = pd.Index(values).isin(list(candidates))
    assert is_in(values, candidates).tolist() == expected.tolist()
