"""The CDNOW transaction log: real purchase data shipped inside the ``lifetimes`` package.

``CDNOW_master.txt`` holds every CD purchase of the 23,570 customers who first bought
at CDNOW in the first quarter of 1997, up to the end of June 1998. The file is plain
text, one purchase a line: customer id, date (YYYYMMDD), number of CDs and dollar
value, separated by runs of spaces, with CRLF line ends and one header line.

The file is read straight from the installed distribution. ``lifetimes`` itself is
never imported: its ``__init__`` is not needed here and targets older pandas.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

FILE_NAME = "CDNOW_master.txt"
PACKAGE = "lifetimes"

_HEADER = ("customer_id", "date", "number_of_cds", "dollar_value")


def cdnow_path() -> Path:
    """Locate ``CDNOW_master.txt`` inside the installed ``lifetimes`` package.

    The package is found with :func:`importlib.util.find_spec`, which does not run
    its ``__init__``.

    Returns:
        Path to the data file.

    Raises:
        FileNotFoundError: ``lifetimes`` is not installed, or its copy lacks the file.
    """
    spec = importlib.util.find_spec(PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(location) / "datasets" / FILE_NAME
        if candidate.is_file():
            return candidate
    where = "is not installed" if spec is None else "is installed but has no datasets/" + FILE_NAME
    raise FileNotFoundError(
        f"{FILE_NAME} not found: the PyPI package '{PACKAGE}' {where}. It ships the file; "
        f"install it with the project's dev extra (pip install -c constraints.txt -e '.[dev]') "
        f"or on its own (pip install -c constraints.txt {PACKAGE})."
    )


def load_cdnow(path: Path | None = None) -> pd.DataFrame:
    """Read the CDNOW log as a raw ``transactions`` table, before validation.

    CDNOW has no order id, and a customer sometimes made two identical purchases on
    one day; those rows would look like exact duplicates to
    :func:`features.contracts.validate_table`, which drops duplicates. Each row
    therefore gets an ``order_id`` built from its line number in the file (``L000002``
    is line 2, the first data line), so every real purchase survives validation.

    Args:
        path: The file to read; by default the copy in the installed ``lifetimes``
            package (see :func:`cdnow_path`).

    Returns:
        One row per line of purchase data, in file order, with columns ``customer_id``
        (str, as written, e.g. ``"00001"``), ``timestamp`` (datetime64, midnight of the
        purchase date), ``amount`` (float, dollars), ``quantity`` (float, number of CDs)
        and ``order_id`` (str).

    Raises:
        FileNotFoundError: No path was given and ``lifetimes`` is not installed.
        ValueError: A line does not have four fields, or a date or number in it
            cannot be parsed.
    """
    path = cdnow_path() if path is None else Path(path)
    lines: list[int] = []
    fields: list[list[str]] = []
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), start=1):
        parts = line.split()
        if not parts or (number == 1 and tuple(parts) == _HEADER):
            continue
        if len(parts) != len(_HEADER):
            raise ValueError(
                f"{path.name}, line {number}: expected {len(_HEADER)} fields "
                f"({' '.join(_HEADER)}), found {len(parts)}: {line.strip()!r}"
            )
        lines.append(number)
        fields.append(parts)

    ids, dates, quantities, amounts = zip(*fields, strict=True) if fields else ([],) * 4
    return pd.DataFrame(
        {
            "customer_id": pd.Series(ids, dtype="str"),
            "timestamp": pd.to_datetime(pd.Series(dates, dtype="str"), format="%Y%m%d").astype(
                "datetime64[ns]"
            ),
            "amount": pd.to_numeric(pd.Series(amounts, dtype="str")).astype("float64"),
            "quantity": pd.to_numeric(pd.Series(quantities, dtype="str")).astype("float64"),
            "order_id": pd.Series([f"L{number:06d}" for number in lines], dtype="str"),
        }
    )
