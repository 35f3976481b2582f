"""A lapsed subscriber's own cancellation answer is their reason; the drivers' stays beside it."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from features.subscriptions import subscription_status
from models.reasons import STATED_REASON_WORDS, stated_reasons, stated_words, unknown_stated_words
from models.scoring import stated_reason_kpis, with_stated_reasons
from pipelines.settings import ScoreSettings

CUTOFF = pd.Timestamp("2024-07-01")


def subs(rows: list[tuple]) -> pd.DataFrame:
    """(customer, start, end or None, cancel_reason) in validated dtypes."""
    frame = pd.DataFrame(rows, columns=["customer_id", "start", "end", "cancel_reason"])
    return frame.astype(
        {
            "customer_id": "str",
            "start": "datetime64[ns]",
            "end": "datetime64[ns]",
            "cancel_reason": "category",
        }
    )


# a: cancelled before the cutoff, said why; b: cancels after the cutoff (the future);
# c: changed plan (the first row's answer is not a cancellation) and still runs;
# d: cancelled, no answer; e: cancelled twice, the last answer counts
SUBS = subs(
    [
        ("a", "2024-01-01", "2024-05-01", "Too expensive"),
        ("b", "2024-01-01", "2024-08-01", "moving"),
        ("c", "2024-01-01", "2024-03-01", "missing_features"),
        ("c", "2024-03-01", None, None),
        ("d", "2024-01-01", "2024-06-01", None),
        ("e", "2023-01-01", "2023-06-01", "bad_support"),
        ("e", "2023-09-01", "2024-02-01", "moving"),
    ]
)
IDS = pd.Index(list("abcdef"), name="customer_id")


def recorded_cancel_reasons(subscriptions: pd.DataFrame, customers: pd.Index) -> pd.Series:
    return subscription_status(subscriptions, CUTOFF, customers)["cancel_reason"]


def test_the_last_cancellations_answer_before_the_cutoff_is_read():
    recorded = recorded_cancel_reasons(SUBS, IDS)
    assert recorded.index.equals(IDS)
    assert recorded.tolist()[:1] == ["Too expensive"]
    assert pd.isna(recorded["b"]) and pd.isna(recorded["c"]) and pd.isna(recorded["d"])
    assert recorded["e"] == "moving"
    assert pd.isna(recorded["f"])  # no subscription at all


def test_an_answer_given_after_the_cutoff_is_never_read():
    """b's cancellation (and its answer) comes after the cutoff: nothing of it is seen;
    the check can fail: the same answer a day before the cutoff is."""
    assert pd.isna(recorded_cancel_reasons(SUBS, IDS)["b"])
    earlier = SUBS.copy()
    earlier.loc[1, "end"] = CUTOFF - pd.Timedelta(days=1)
    assert recorded_cancel_reasons(earlier, IDS)["b"] == "moving"


def test_without_a_cancel_reason_column_nobody_has_an_answer():
    recorded = recorded_cancel_reasons(SUBS.drop(columns="cancel_reason"), IDS)
    assert recorded.isna().all() and recorded.index.equals(IDS)


def test_answers_are_read_as_loss_reasons_in_any_spelling():
    answers = pd.Series(["Too expensive", "bad_support", "Moving", "OTHER", "Can't afford", None])
    assert stated_reasons(answers, STATED_REASON_WORDS).tolist()[:5] == [
        "competitor_offer",
        "poor_interaction",
        "relocation",
        "unidentified",
        "financial_distress",
    ]
    assert pd.isna(stated_reasons(answers, STATED_REASON_WORDS).iloc[5])


def test_a_business_maps_its_own_words_and_unknown_ones_are_counted():
    words = stated_words({"Went with rival X": "competitor_offer"})
    answers = pd.Series(["went with rival x", "spaceship", "spaceship", None])
    assert stated_reasons(answers, words).iloc[0] == "competitor_offer"
    assert pd.isna(stated_reasons(answers, words).iloc[1])
    assert unknown_stated_words(answers, words).to_dict() == {"spaceship": 2}


def test_a_mapping_onto_no_loss_reason_is_refused_when_the_settings_load():
    with pytest.raises(ValidationError, match="cancel_reasons: 'spaceship' -> 'aliens'"):
        ScoreSettings(cancel_reasons={"spaceship": "aliens"})
    assert ScoreSettings(cancel_reasons={"spaceship": "relocation"}).cancel_reasons


def explained() -> pd.DataFrame:
    """Four explained customers and one below the threshold (not explained)."""
    return pd.DataFrame(
        {
            "top_reason": pd.array(
                ["poor_interaction", "unidentified", "poor_interaction", "relocation", None],
                dtype="str",
            ),
            "reason_confidence": [0.4, 0.9, 0.3, 0.8, np.nan],
        },
        index=pd.Index(list("vwxyz"), name="customer_id"),
    )


def test_a_lapsed_customers_specific_answer_is_their_reason():
    recorded = pd.Series(["too_expensive", "too_expensive", "other", "Moving", "moving"])
    lapsed = np.array([True, False, True, True, True])
    out = with_stated_reasons(
        explained(), recorded.set_axis(list("vwxyz")), STATED_REASON_WORDS, lapsed
    )
    # v: lapsed, said too expensive; w: active (an answer is about a past subscription);
    # x: said "other" (no cause: the drivers stand); y: lapsed, said moving;
    # z: not explained, so off every list: left as it is
    assert out["top_reason"].tolist()[:4] == [
        "competitor_offer",
        "unidentified",
        "poor_interaction",
        "relocation",
    ]
    assert out["reason_source"].tolist()[:4] == ["stated", "drivers", "drivers", "stated"]
    assert out["drivers_reason"].tolist()[:4] == explained()["top_reason"].tolist()[:4]
    assert out["reason_confidence"].tolist()[:4] == [1.0, 0.9, 0.3, 1.0]
    assert out.iloc[4].isna().all()
    kpis = stated_reason_kpis(out)
    # v's drivers said poor_interaction, not competitor_offer; y's said relocation too
    assert kpis == {"stated_reasons": 2.0, "stated_reason_agreement": 0.5}


def test_without_answers_the_drivers_reason_is_the_reason():
    out = with_stated_reasons(explained(), None, STATED_REASON_WORDS, np.ones(5, dtype=bool))
    pd.testing.assert_series_equal(
        out["drivers_reason"], explained()["top_reason"], check_names=False
    )
    assert out["reason_source"].tolist()[:4] == ["drivers"] * 4
    assert stated_reason_kpis(out) == {}


def test_the_reports_win_back_table_says_whose_reason_is_their_own():
    from models.reporting import win_back_table

    rows = pd.DataFrame(
        {
            "customer_id": ["v", "w"],
            "days_since_last_purchase": [90.0, 120.0],
            "expected_value": [50.0, 40.0],
            "top_reason": ["competitor_offer", "poor_interaction"],
            "reason_source": ["stated", "drivers"],
            "reason_as_of": [pd.Timestamp("2024-05-01"), pd.NaT],
            "top_drivers": ["4 price complaints in 90 days", "2 unresolved tickets"],
            "recommended_action": ["Offer", "Apologise"],
        }
    )
    assert [r["stated"] for r in win_back_table(rows)] == [True, False]
