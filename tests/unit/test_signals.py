import math

import pandas as pd
import pytest

from features.signals import SIGNAL_FEATURES, observable, signal_features

CUTOFF = pd.Timestamp("2024-07-01")
DTYPES = {
    "customer_id": "str",
    "timestamp": "datetime64[ns]",
    "amount": float,
    "quantity": float,
    "category": "str",
    "discount": float,
    "channel": "str",
    "region": "str",
    "payment_status": "str",
}


def ago(days: float, seconds: int = 0) -> pd.Timestamp:
    return CUTOFF - pd.Timedelta(days=days, seconds=seconds)


def transactions(rows: list[tuple], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows of (customer_id, timestamp, amount, *extra) in validated dtypes."""
    columns = ["customer_id", "timestamp", "amount", *extra]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({name: DTYPES[name] for name in columns})


def customers(*ids: str) -> pd.Index:
    return pd.Index(list(ids), name="customer_id")


def test_discount_share_and_its_change():
    rows = [
        ("a", ago(200), 90.0, 10.0),
        ("a", ago(150), 80.0, 20.0),
        ("a", ago(60), 60.0, 40.0),
        ("a", ago(30), 50.0, 50.0),
        ("a", ago(20), -30.0, 0.0),  # refund: not a purchase, not in list price
        ("b", ago(10), 40.0, 0.0),
        ("c", ago(100), 10.0, 10.0),
    ]
    result = signal_features(transactions(rows, ("discount",)), CUTOFF, customers("a", "b", "c"))

    # a recent: 90 off / (110 paid + 90 off) = 0.45; prior: 30 / (170 + 30) = 0.15
    assert result.loc["a", "discount_share_90d"] == 0.45
    assert result.loc["a", "discount_share_change_90d"] == pytest.approx(0.30)
    # b: no discount -> 0; nothing earlier -> no change
    assert result.loc["b", "discount_share_90d"] == 0.0
    assert math.isnan(result.loc["b", "discount_share_change_90d"])
    # c: nothing recent -> neither
    assert result.loc["c", ["discount_share_90d", "discount_share_change_90d"]].isna().all()
    assert list(result.columns) == [
        "discount_share_90d",
        "discount_share_change_90d",
        "refunds_180d",
    ]


def test_category_shift_is_total_variation_distance_and_new_category_share():
    rows = [
        ("a", ago(200), 1.0, "tools"),
        ("a", ago(150), 1.0, "tools"),
        ("a", ago(120), 1.0, "paint"),
        ("a", ago(90), 1.0, "tools"),  # exactly cutoff - 90d: recent
        ("a", ago(30), 1.0, "garden"),
        ("b", ago(100), 1.0, "tools"),
        ("b", ago(10), 1.0, "tools"),
        ("c", ago(100), 1.0, "paint"),
        ("c", ago(10), 1.0, "garden"),
        ("d", ago(10), 1.0, "tools"),
    ]
    result = signal_features(
        transactions(rows, ("category",)), CUTOFF, customers("a", "b", "c", "d")
    )

    # a: recent {tools 1/2, garden 1/2}, prior {tools 2/3, paint 1/3}
    #    0.5 * (|1/2 - 2/3| + |1/2 - 0| + |0 - 1/3|) = 0.5 * (1/6 + 1/2 + 1/3) = 0.5
    # b: same mix -> 0; c: nothing in common -> 1; d: no prior -> NaN
    shift = result["category_shift_90d"]
    assert shift["a"] == pytest.approx(0.5)
    assert shift[["b", "c"]].tolist() == [0.0, 1.0]
    assert math.isnan(shift["d"])
    # share of recent purchases in categories not bought before:
    # a: garden new, tools not -> 1/2; b: 0; c: 1; d: no prior -> NaN
    new = result["new_category_share_90d"]
    assert new[["a", "b", "c"]].tolist() == [0.5, 0.0, 1.0]
    assert math.isnan(new["d"])


def test_quantity_change_is_a_log_ratio_of_mean_basket_size():
    rows = [
        ("a", ago(200), 10.0, 2.0),
        ("a", ago(150), 10.0, 2.0),
        ("a", ago(60), 10.0, 4.0),
        ("a", ago(30), 10.0, 8.0),
        ("a", ago(20), -10.0, 100.0),  # refund: ignored
        ("b", ago(100), 10.0, 4.0),
        ("b", ago(10), 10.0, 2.0),
        ("c", ago(10), 10.0, 3.0),
        ("d", ago(100), 10.0, 0.0),
        ("d", ago(10), 10.0, 3.0),
    ]
    result = signal_features(
        transactions(rows, ("quantity",)), CUTOFF, customers("a", "b", "c", "d")
    )

    change = result["quantity_change_90d"]
    assert change["a"] == pytest.approx(math.log(3))  # mean 6 now vs 2 before
    assert change["b"] == pytest.approx(-math.log(2))  # 2 vs 4: halved
    assert math.isnan(change["c"])  # no earlier basket
    assert math.isnan(change["d"])  # earlier basket of 0: ratio is infinite -> unknown


REGION_ROWS = [
    ("a", ago(200), 1.0, "north"),
    ("a", ago(150), 1.0, "north"),
    ("a", ago(120), 1.0, "south"),
    ("a", ago(30), 1.0, "south"),  # latest purchase
    ("b", ago(100), 1.0, "east"),
    ("b", ago(10), 1.0, "east"),
    ("b", ago(5), -1.0, "north"),  # a refund is not where they buy now
    ("c", ago(120), 1.0, "west"),
    ("c", ago(110), 1.0, "east"),  # tie with west: alphabetically first (east) is home
    ("c", ago(10), 1.0, "west"),
]


def test_region_changed_against_the_most_frequent_earlier_region():
    result = signal_features(
        transactions(REGION_ROWS + [("d", ago(10), 1.0, "east")], ("region",)),
        CUTOFF,
        customers("a", "b", "c", "d", "z"),
    )

    # a: home north (2 of 3 earlier), latest south -> 1; b: east, east -> 0
    # c: home east (tie), latest west -> 1; d: no earlier purchase, no home -> 0
    changed = result["region_changed"]
    assert changed[["a", "b", "c", "d"]].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert math.isnan(changed["z"])  # not a buyer


def test_region_changed_prefers_the_customers_table_home_region():
    home = pd.Series({"a": "south", "b": "north", "c": None, "d": "west"}, dtype="str")
    result = signal_features(
        transactions(REGION_ROWS + [("d", ago(10), 1.0, "east")], ("region",)),
        CUTOFF,
        customers("a", "b", "c", "d"),
        home_regions=home,
    )

    # a: home south = latest -> 0; b: home north, latest east -> 1
    # c: table has no region -> falls back to east (tie), latest west -> 1
    # d: home west, latest east -> 1 (a home is known now, though no earlier purchase)
    assert result["region_changed"].tolist() == [0.0, 1.0, 1.0, 1.0]


def test_online_share_change():
    rows = [
        ("a", ago(200), 1.0, "store"),
        ("a", ago(150), 1.0, "store"),
        ("a", ago(120), 1.0, "online"),
        ("a", ago(60), 1.0, "online"),
        ("a", ago(30), 1.0, "online"),
        ("a", ago(20), 1.0, "store"),
        ("b", ago(100), 1.0, "online"),
        ("b", ago(10), 1.0, "phone"),
        ("c", ago(10), 1.0, "online"),
    ]
    result = signal_features(transactions(rows, ("channel",)), CUTOFF, customers("a", "b", "c"))

    change = result["online_share_change_90d"]
    assert change["a"] == pytest.approx(1 / 3)  # 2/3 online now vs 1/3 before
    assert change["b"] == -1.0  # 0 now vs 1 before
    assert math.isnan(change["c"])  # nothing before


def test_failed_and_late_payments_in_180_days():
    rows = [
        ("a", ago(180), 10.0, "failed"),  # on the 180d edge: inside
        ("a", ago(180, seconds=1), 10.0, "failed"),  # outside
        ("a", ago(20), -5.0, "late"),  # refunds count: every payment row does
        ("a", ago(10), 10.0, "late"),
        ("a", ago(5), 10.0, "ok"),
        ("b", ago(5), 10.0, "ok"),
    ]
    result = signal_features(
        transactions(rows, ("payment_status",)), CUTOFF, customers("a", "b", "c")
    )

    assert result["failed_payments_180d"].tolist() == [1.0, 0.0, 0.0]
    assert result["late_payments_180d"].tolist() == [2.0, 0.0, 0.0]


def test_refunds_in_180_days_need_no_optional_column():
    rows = [
        ("a", ago(10), -5.0),
        ("a", ago(180), -5.0),  # on the edge: inside
        ("a", ago(181), -5.0),  # outside
        ("a", ago(3), 0.0),  # zero is no refund
        ("a", ago(2), 20.0),
        ("b", ago(2), 20.0),
    ]
    result = signal_features(transactions(rows), CUTOFF, customers("a", "b", "c"))

    assert list(result.columns) == ["refunds_180d"]
    assert result["refunds_180d"].tolist() == [2.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("column", "value", "features"),
    [
        ("discount", 1.0, ["discount_share_90d", "discount_share_change_90d"]),
        ("category", "tools", ["category_shift_90d", "new_category_share_90d"]),
        ("quantity", 1.0, ["quantity_change_90d"]),
        ("region", "north", ["region_changed"]),
        ("channel", "online", ["online_share_change_90d"]),
        ("payment_status", "ok", ["failed_payments_180d", "late_payments_180d"]),
    ],
)
def test_each_optional_column_adds_only_its_features(column, value, features):
    rows = [("a", ago(100), 10.0, value), ("a", ago(10), 10.0, value)]
    result = signal_features(transactions(rows, (column,)), CUTOFF, customers("a"))

    assert list(result.columns) == features + ["refunds_180d"]
    assert observable({"customer_id", "timestamp", "amount", column}) == features + ["refunds_180d"]


def test_observable_needs_every_column_for_every_feature():
    every = {"quantity", "category", "discount", "channel", "region", "payment_status"}
    assert observable(every) == list(SIGNAL_FEATURES)
    assert observable(set()) == ["refunds_180d"]
