"""The column table: every input column once, and the per-purpose views read from it.

A column is declared by one :class:`Column` row (its table, name, kind, whether it is
required, whether its values may be missing, its numeric bounds); a table by one
:class:`Table` row. ``REQUIRED``, ``OPTIONAL``, ``NULLABLE_REQUIRED``, ``LABEL_COLUMNS``
and ``DROP_DUPLICATES`` are derived from those rows, so adding a column is one line here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

# how a column's values are converted (see features.contracts.converters)
ColumnKind = Literal["id", "time", "number", "flag", "label", "payment_status", "billing_period"]

# kinds whose validated values are pandas ``category`` (low-cardinality text)
_CATEGORICAL_KINDS = frozenset({"label", "payment_status", "billing_period"})

PAYMENT_STATUSES = ("ok", "failed", "late")


class Bounds(NamedTuple):
    """The allowed range of a numeric column and how a value outside it is described.

    Attributes:
        low: Lowest allowed value.
        high: Highest allowed value.
        problem: The word the error message uses for a value outside the range.
        hint: What the message adds to help fix the data, if anything.
    """

    low: float
    high: float
    problem: str
    hint: str | None = None


@dataclass(frozen=True)
class Table:
    """One input table.

    Attributes:
        name: The table's name.
        optional: The pipeline runs without it (subscriptions, see features.subscriptions).
        drop_duplicates: Exact duplicate rows are dropped by default.
        business: One of the business's own tables the features are built from; the
            contacts table is staff's record of the calls, read by campaign evaluation only.
    """

    name: str
    optional: bool
    drop_duplicates: bool
    business: bool = True


@dataclass(frozen=True)
class Column:
    """One column of one input table.

    Attributes:
        table: The table the column belongs to.
        name: The canonical (stripped, lower-case) column name.
        kind: How its values are converted and checked.
        required: The table is refused without it.
        nullable: A required column whose values may be missing (optional columns
            always may be).
        bounds: Allowed range of a numeric column, None for no check.
    """

    table: str
    name: str
    kind: ColumnKind
    required: bool = False
    nullable: bool = False
    bounds: Bounds | None = None

    @property
    def categorical(self) -> bool:
        """Validated values are pandas ``category`` (categories: sorted distinct strings)."""
        return self.kind in _CATEGORICAL_KINDS


# Exact duplicate rows are dropped by default where a row is an entity or carries an id
# (an order, a customer, a subscription period); interactions are events, and two likes
# in the same second are two likes, so theirs are kept unless the user asks otherwise.
TABLE_SPECS: tuple[Table, ...] = (
    Table("transactions", optional=False, drop_duplicates=True),
    Table("interactions", optional=False, drop_duplicates=False),
    Table("customers", optional=False, drop_duplicates=True),
    Table("subscriptions", optional=True, drop_duplicates=True),
    # exported from the CRM: who was actually reached, to tell "assigned" from "called"
    Table("contacts", optional=True, drop_duplicates=True, business=False),
)

_NOT_NEGATIVE = Bounds(0.0, math.inf, "negative")

# Per table, required columns first, then optional ones: validated frames keep this order.
COLUMNS: tuple[Column, ...] = (
    Column("transactions", "customer_id", "id", required=True),
    Column("transactions", "timestamp", "time", required=True),
    Column("transactions", "amount", "number", required=True),
    Column("transactions", "order_id", "id"),
    Column(
        "transactions",
        "quantity",
        "number",
        bounds=Bounds(
            0.0,
            math.inf,
            "negative",
            "record a return as a negative amount with a positive quantity",
        ),
    ),
    Column("transactions", "category", "label"),
    Column("transactions", "discount", "number", bounds=_NOT_NEGATIVE),
    Column("transactions", "channel", "label"),
    Column("transactions", "region", "label"),
    Column("transactions", "payment_status", "payment_status"),
    Column("interactions", "customer_id", "id", required=True),
    Column("interactions", "timestamp", "time", required=True),
    # kinds are lower-cased: they are matched against fixed keys ("complaint", ...)
    Column("interactions", "kind", "label", required=True),
    Column("interactions", "channel", "label"),
    Column(
        "interactions",
        "satisfaction",
        "number",
        bounds=Bounds(1.0, 5.0, "out-of-range", "satisfaction scores run from 1 to 5"),
    ),
    Column("interactions", "resolved", "flag"),
    Column("interactions", "resolution_hours", "number", bounds=_NOT_NEGATIVE),
    Column("interactions", "responded", "flag"),
    Column("customers", "customer_id", "id", required=True),
    Column("customers", "signup_date", "time"),
    Column("customers", "region", "label"),
    Column("subscriptions", "customer_id", "id", required=True),
    Column("subscriptions", "start", "time", required=True),
    # a missing end is a running subscription
    Column("subscriptions", "end", "time", required=True, nullable=True),
    Column("subscriptions", "plan", "label"),
    Column("subscriptions", "amount", "number"),
    Column("subscriptions", "billing_period", "billing_period"),
    Column("subscriptions", "cancel_reason", "label"),
    Column("subscriptions", "status", "label"),
    Column("contacts", "customer_id", "id", required=True),
    Column("contacts", "timestamp", "time", required=True),
    Column("contacts", "action", "label"),
    Column("contacts", "reached", "flag"),
    Column("contacts", "outcome", "label"),
)


def _names(table: str, keep: Callable[[Column], bool]) -> tuple[str, ...]:
    """Names of the table's columns for which ``keep(column)`` holds, in table order."""
    return tuple(c.name for c in COLUMNS if c.table == table and keep(c))


def _one_per_name(columns: tuple[Column, ...]) -> dict[str, Column]:
    """Each column name's declaration; a name shared by tables must convert the same way.

    Conversion is looked up by name alone, so ``channel`` in transactions and in
    interactions must agree on kind and bounds.

    Raises:
        ValueError: Two tables declare one name with different kinds or bounds.
    """
    by_name: dict[str, Column] = {}
    for column in columns:
        first = by_name.setdefault(column.name, column)
        if (first.kind, first.bounds) != (column.kind, column.bounds):
            raise ValueError(
                f"column {column.name!r} is declared differently in {first.table} and "
                f"{column.table}"
            )
    return by_name


# every table the contract knows (validated alike), and the business's own ones the
# features read; subscriptions are optional (see features.subscriptions)
CONTRACT_TABLES: tuple[str, ...] = tuple(t.name for t in TABLE_SPECS)
INPUT_TABLES: tuple[str, ...] = tuple(t.name for t in TABLE_SPECS if t.business)
TABLES: tuple[str, ...] = tuple(t.name for t in TABLE_SPECS if not t.optional)

REQUIRED: dict[str, tuple[str, ...]] = {t: _names(t, lambda c: c.required) for t in CONTRACT_TABLES}
OPTIONAL: dict[str, tuple[str, ...]] = {
    t: _names(t, lambda c: not c.required) for t in CONTRACT_TABLES
}
# required columns whose values may be missing
NULLABLE_REQUIRED: dict[str, tuple[str, ...]] = {
    t: names for t in CONTRACT_TABLES if (names := _names(t, lambda c: c.required and c.nullable))
}
# Low-cardinality text columns: validated frames hold them as pandas ``category``
# (categories: the distinct cleaned strings, sorted), one small code per row.
LABEL_COLUMNS: dict[str, tuple[str, ...]] = {
    t: _names(t, lambda c: c.categorical) for t in CONTRACT_TABLES
}
DROP_DUPLICATES: dict[str, bool] = {t.name: t.drop_duplicates for t in TABLE_SPECS}

COLUMN_BY_NAME: dict[str, Column] = _one_per_name(COLUMNS)
