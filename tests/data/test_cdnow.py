"""The real CDNOW log (shipped in the ``lifetimes`` package) through contract, features, labels.

The numbers asserted here were counted from ``CDNOW_master.txt`` in Lifetimes 0.11.3.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from features.build import build_features, observable_features
from features.contracts import validate_table
from features.interactions import INTERACTION_FEATURES
from features.labels import churn_labels
from simulation import cdnow

CUTOFF = "1998-01-01"
HORIZON_DAYS = 90

N_ROWS = 69_659  # data lines; the file has 69,660 lines including its header
N_CUSTOMERS = 23_570
N_ZERO_AMOUNT = 80  # $0.00 rows, one CD each, 80 distinct customers
N_IDENTICAL_SAME_DAY = 255  # rows repeating an earlier row exactly (same day, CDs, $)
# Customers with a paid purchase in 1997. All 23,570 bought first in 1997-Q1, but 68 of
# them have a single $0.00 row and nothing else, so they are never "active".
N_ACTIVE_1997 = 23_502
N_LAST_SEEN_JAN_1 = 104  # active customers whose last paid purchase was 1997-01-01
CHURN_RATE_1998_90D = 19_685 / 23_502  # 0.8376

# Features that need more history than one purchase, or a column CDNOW lacks data for.
MAY_BE_NAN = {
    "mean_gap_days",  # single purchase day
    "gap_std_days",
    "max_gap_days",
    "overdue_ratio",
    "peak_month_share",  # under three purchases
    "quantity_change_90d",  # no purchase in both the last 90 days and before
}


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return cdnow.load_cdnow()


@pytest.fixture(scope="module")
def validated(raw: pd.DataFrame) -> pd.DataFrame:
    result = validate_table(raw, "transactions", source=cdnow.FILE_NAME)
    assert result.warnings == ()
    return result.frame


@pytest.fixture(scope="module")
def features(validated: pd.DataFrame) -> pd.DataFrame:
    return build_features(validated, CUTOFF)


def test_file_is_found_in_the_installed_package() -> None:
    path = cdnow.cdnow_path()
    assert path.name == "CDNOW_master.txt"
    assert path.parent.name == "datasets" and path.parent.parent.name == "lifetimes"
    with path.open("rb") as handle:
        header = handle.readline()
    # The file does have a header line, and CRLF line ends.
    assert header.split() == [b"customer_id", b"date", b"number_of_cds", b"dollar_value"]
    assert header.endswith(b"\r\n")


def test_lifetimes_is_never_imported() -> None:
    code = (
        "import sys\n"
        "from simulation.cdnow import load_cdnow\n"
        "load_cdnow()\n"
        "assert 'lifetimes' not in sys.modules, 'lifetimes was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_package_explains_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"lifetimes.*not installed.*pip install"):
        cdnow.cdnow_path()


def test_raw_table_matches_the_transactions_contract(raw: pd.DataFrame) -> None:
    assert list(raw.columns) == ["customer_id", "timestamp", "amount", "quantity", "order_id"]
    assert isinstance(raw["customer_id"].dtype, pd.StringDtype)
    assert isinstance(raw["order_id"].dtype, pd.StringDtype)
    assert pd.api.types.is_datetime64_dtype(raw["timestamp"])
    assert raw["amount"].dtype == "float64" and raw["quantity"].dtype == "float64"
    assert (raw["timestamp"] == raw["timestamp"].dt.normalize()).all()  # dates, no times
    assert raw["order_id"].is_unique

    first, last = raw.iloc[0], raw.iloc[-1]
    assert (first["customer_id"], first["timestamp"], first["amount"], first["quantity"]) == (
        "00001",
        pd.Timestamp("1997-01-01"),
        11.77,
        1.0,
    )
    assert first["order_id"] == "L000002"  # line 1 is the header
    assert (last["customer_id"], last["timestamp"], last["amount"]) == (
        "23570",
        pd.Timestamp("1997-03-26"),
        42.96,
    )
    assert last["order_id"] == "L069660"


def test_known_facts(raw: pd.DataFrame) -> None:
    assert len(raw) == N_ROWS
    assert raw["customer_id"].nunique() == N_CUSTOMERS
    assert raw["timestamp"].min() == pd.Timestamp("1997-01-01")
    assert raw["timestamp"].max() == pd.Timestamp("1998-06-30")
    # every customer's first purchase falls in the 1997-Q1 cohort
    assert raw.groupby("customer_id")["timestamp"].min().max() == pd.Timestamp("1997-03-25")

    assert np.isfinite(raw["amount"]).all()
    assert (raw["amount"] >= 0).all()
    zero = raw["amount"] == 0
    assert zero.sum() == N_ZERO_AMOUNT
    assert (raw.loc[zero, "quantity"] == 1).all()
    assert (raw["quantity"] >= 1).all() and (raw["quantity"] % 1 == 0).all()


def test_validation_keeps_every_purchase(raw: pd.DataFrame, validated: pd.DataFrame) -> None:
    assert len(validated) == N_ROWS
    assert validated["customer_id"].nunique() == N_CUSTOMERS
    assert list(validated.columns) == ["customer_id", "timestamp", "amount", "order_id", "quantity"]
    # Without the line-number order id, identical same-day purchases would be dropped.
    without_id = validate_table(raw.drop(columns="order_id"), "transactions", source="x")
    assert len(without_id.frame) == N_ROWS - N_IDENTICAL_SAME_DAY
    assert without_id.warnings == (f"x: dropped {N_IDENTICAL_SAME_DAY} exact duplicate rows",)


def test_features_one_row_per_customer_active_in_1997(
    validated: pd.DataFrame, features: pd.DataFrame
) -> None:
    expected = observable_features(set(validated.columns))
    assert list(features.columns) == expected
    assert "quantity_change_90d" in expected
    assert not set(features.columns) & set(INTERACTION_FEATURES)

    in_1997 = validated.loc[
        (validated["timestamp"].dt.year == 1997) & (validated["amount"] > 0), "customer_id"
    ]
    assert len(features) == N_ACTIVE_1997
    assert features.index.is_unique
    assert features.index.equals(pd.Index(sorted(in_1997.unique()), name="customer_id"))


def test_feature_values_are_finite_where_expected(features: pd.DataFrame) -> None:
    values = features.to_numpy()
    assert not np.isinf(values).any()
    always = [name for name in features.columns if name not in MAY_BE_NAN]
    assert not features[always].isna().any().any()

    one_day = features["mean_gap_days"].isna()
    assert one_day.any() and (features.loc[one_day, "lifetime_purchases"] >= 1).all()
    for name in ("gap_std_days", "max_gap_days", "overdue_ratio"):
        assert features[name].isna().equals(one_day), name

    recency = features["days_since_last_purchase"]
    assert (recency >= 0).all()
    # The lookback window is [cutoff - 365 days, cutoff), so 1997-01-01 itself is in it:
    # customers last seen that day are exactly 365 days out.
    assert recency.max() == 365
    assert (recency == 365).sum() == N_LAST_SEEN_JAN_1
    assert (features["tenure_days"] >= recency).all()
    assert (features["lifetime_purchases"] >= 1).all()
    assert (features["avg_order_value"] > 0).all()
    assert (features["refunds_180d"] == 0).all()  # no negative amounts in CDNOW


def test_churn_labels_1998_90_days(validated: pd.DataFrame, features: pd.DataFrame) -> None:
    labels = churn_labels(validated, CUTOFF, HORIZON_DAYS)
    assert set(labels.unique()) == {0, 1}
    assert labels.index.equals(features.index)
    assert labels.mean() == pytest.approx(CHURN_RATE_1998_90D, abs=0.005)


def test_one_year_of_cdnow_trains_on_the_short_history_scheme(validated: pd.DataFrame) -> None:
    """A business with 12 months of data gets a model (with a reduced scheme), not a refusal."""
    from models.champion import CANDIDATES
    from models.selection import refit, select_champion
    from models.training import LabelScheme, fit_label_to_data, labelled_features, stack_cutoffs

    year = validated.loc[validated["timestamp"] < pd.Timestamp("1997-12-31")]
    cutoffs, label = fit_label_to_data(
        year["timestamp"].min(), year["timestamp"].max(), LabelScheme()
    )
    # too short for 90 + 90 days of labels: a shorter confirmation, validation as holdout
    assert (cutoffs.scheme, label.confirm_days) == ("validation_is_holdout", 45)
    assert cutoffs.holdout + pd.Timedelta(days=135) <= pd.Timestamp("1997-12-31")
    args = (None, None, 90, 365, build_features, label)
    x_train, y_train = stack_cutoffs(year, cutoffs.train, *args)
    x_valid, y_valid = labelled_features(year, cutoffs.validation, *args)
    x_hold, y_hold = labelled_features(year, cutoffs.holdout, *args)

    selection = select_champion(
        x_train, y_train, x_valid, y_valid, x_hold, y_hold, CANDIDATES, label_days=135
    )
    served = refit(selection, pd.concat([x_train, x_valid]), pd.concat([y_train, y_valid]))

    assert selection.leaderboard["holdout_roc_auc"].gt(0.6).all()
    scored = served.predict_proba(build_features(year, "1997-12-31")[x_train.columns])[:, 1]
    assert ((scored >= 0) & (scored <= 1)).all() and scored.std() > 0


def test_too_little_cdnow_history_is_refused_clearly(validated: pd.DataFrame) -> None:
    from models.training import LabelScheme, fit_label_to_data

    months = validated.loc[validated["timestamp"] < pd.Timestamp("1997-08-01")]
    # 90 days of history + 2 x (90 + 30) days of labels, the shortest scheme there is
    with pytest.raises(ValueError, match="212 days .* needs at least 330"):
        fit_label_to_data(months["timestamp"].min(), months["timestamp"].max(), LabelScheme())
