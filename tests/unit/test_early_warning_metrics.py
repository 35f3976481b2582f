"""The early-warning benchmark's measures on tiny frames with hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmarks import early_warning as ew

SCORE_DATE = pd.Timestamp("2025-09-02")


def _truth() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f"],
            "churned": [True, True, True, True, False, True],
            "churn_date": pd.to_datetime(
                [
                    "2025-08-01",  # gone, recent leaver
                    "2025-09-02",  # leaves (on the score date)
                    "2025-11-30",  # leaves (last day of the window)
                    "2025-12-01",  # beyond the 90 days: present, not a leaver
                    None,
                    "2024-01-01",  # gone long ago: not recent
                ]
            ),
            "reason": [
                "relocation",
                "poor_interaction",
                "competitor_offer",
                "unidentified",
                None,
                "x",
            ],
        }
    )


def test_truth_flags_windows():
    f = ew.truth_flags(_truth(), SCORE_DATE)
    assert f["gone"].tolist() == [True, False, False, False, False, True]
    assert f["present"].tolist() == [False, True, True, True, True, False]
    assert f["leaves"].tolist() == [False, True, True, False, False, False]
    assert f["recent_leaver"].tolist() == [True, False, False, False, False, False]
    assert f.loc["a", "reason"] == "relocation"
    assert pd.isna(f.loc["e", "reason"])


def test_share_gone_and_leaver_recall():
    gone = pd.Series([True, False, False, True], index=["a", "b", "c", "d"])
    assert ew.share_gone(["a", "b", "c", "b"], gone) == pytest.approx(1 / 3)  # duplicates once
    assert ew.share_gone(["a", "zz"], gone) == pytest.approx(0.5)  # unknown = not gone
    assert math.isnan(ew.share_gone([], gone))
    assert ew.leaver_recall(["b", "c", "e", "f"], ["c", "x"]) == pytest.approx(0.25)
    assert ew.leaver_recall(["b", "c"], ["b", "c", "x"]) == 1.0
    assert math.isnan(ew.leaver_recall([], ["a"]))


def test_reason_given_treats_every_null_as_missing():
    predicted = pd.Series(["poor_interaction", None, "", "nan", np.nan, "unidentified", "None"])
    assert ew.reason_given(predicted).tolist() == [True, False, False, False, False, True, False]


def test_reason_measures_exact():
    true = pd.Series(["p", "p", "p", "p", "c", "c", "r"], index=list("abcdefg"))
    predicted = pd.Series(
        {"a": "p", "b": "p", "c": "c", "d": None, "e": "c", "f": "p", "g": "r", "zz": "p"}
    )
    m = ew.reason_measures(true, predicted, min_count=2, constant="p")
    assert m["n"] == 7
    assert m["given_share"] == pytest.approx(6 / 7)
    assert m["accuracy"] == pytest.approx(4 / 7)  # a, b, e, g
    assert m["constant_accuracy"] == pytest.approx(4 / 7)
    assert m["per_reason"] == {
        "c": {"n": 2, "recall": 0.5},
        "p": {"n": 4, "recall": 0.5},
        "r": {"n": 1, "recall": 1.0},
    }
    # r has 1 customer < min_count 2: left out of the macro average
    assert m["macro_reasons"] == ["c", "p"]
    assert m["macro_recall"] == pytest.approx(0.5)
    assert ew.reason_measures(true, predicted, min_count=1)["macro_recall"] == pytest.approx(2 / 3)
    assert math.isnan(ew.reason_measures(true, predicted, min_count=5)["macro_recall"])


def test_reason_confusion_truth_rows_predicted_columns():
    true = pd.Series(["p", "p", "c"], index=["a", "b", "c"])
    predicted = pd.Series({"a": "p", "b": "c"})  # c has no prediction
    table = ew.reason_confusion(true, predicted)
    expected = pd.DataFrame(
        {"(none)": [1, 0], "c": [0, 1], "p": [0, 1]}, index=pd.Index(["c", "p"], name="truth")
    )
    expected.columns.name = "predicted"
    pd.testing.assert_frame_equal(table, expected)


def test_list_reason_accuracy_uses_the_lists_rows():
    true = pd.Series(["p", "c", "r"], index=["a", "b", "c"])
    listed = pd.DataFrame({"customer_id": ["a", "b", "x"], "top_reason": ["p", "p", "r"]})
    assert ew.list_reason_accuracy(true, listed) == {"n": 2, "accuracy": 0.5}
    assert ew.list_reason_accuracy(true, pd.DataFrame({"customer_id": []}))["n"] == 0


def test_status_split_counts_and_shares():
    status = pd.Series(["active", "lapsed", "lapsed", "active", "lapsed"], index=list("abcde"))
    gone = pd.Series([False, True, False, True, True], index=list("abcde"))
    s = ew.status_split(status, gone)
    assert s["counts"] == {"active": 2, "lapsed": 3}
    assert s["confusion"] == {
        "active": {"gone": 1, "present": 1},
        "lapsed": {"gone": 2, "present": 1},
    }
    assert s["lapsed_truly_gone"] == pytest.approx(2 / 3)
    assert s["gone_marked_lapsed"] == pytest.approx(2 / 3)


def test_status_absent_means_everybody_active():
    scores = pd.DataFrame({"customer_id": ["a", "b"], "churn_probability": [0.1, 0.9]})
    assert ew.status_of(scores).tolist() == ["active", "active"]


def test_auc_pair_and_single_class():
    m = ew.auc_pair([False, False, True, True], [0.1, 0.4, 0.35, 0.8])
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    assert (m["n"], m["positives"]) == (4, 2)
    assert math.isnan(ew.auc_pair([True, True], [0.1, 0.2])["roc_auc"])


def test_recency_days_counts_purchases_before_the_date_only():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b"],
            "timestamp": pd.to_datetime(["2025-08-01", "2025-09-05", "2025-08-23", "2025-08-30"]),
            "amount": [10.0, 5.0, 3.0, -3.0],  # b's last row is a refund
        }
    )
    days = ew.recency_days(tx, SCORE_DATE, pd.Index(["a", "b", "c"]))
    assert days["a"] == 32.0
    assert days["b"] == 10.0
    assert math.isnan(days["c"])


def test_no_purchase_truth_window():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "timestamp": pd.to_datetime(["1998-04-02", "1998-07-01", "1998-05-01"]),
            "amount": [10.0, 10.0, 0.0],
        }
    )
    truth = ew.no_purchase_truth(
        tx, pd.Timestamp("1998-04-02"), pd.Timestamp("1998-07-01"), pd.Index(["a", "b", "c", "d"])
    )
    assert truth.tolist() == [False, True, True, True]


def test_targets_pass_and_fail():
    run = {
        "overall": {ew.PIPELINE: {"roc_auc": 0.91}},
        "early_present": {ew.PIPELINE: {"roc_auc": 0.80}},
        "lists": {"at_risk_gone": 0.10},
        "reasons": {
            "given_share": 0.7,
            "accuracy": 0.75,
            "constant_accuracy": 0.66,
            "macro_recall": math.nan,
            "min_count": 20,
        },
    }
    assert [t["pass"] for t in ew.targets(run)] == [True, False, True, True, False, False]
