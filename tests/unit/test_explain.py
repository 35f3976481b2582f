import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from models.explain import REASON_COLUMNS, contributions, reason_scores, top_drivers, top_reasons
from models.reasons import ReasonMapError, parse_reason_map

with warnings.catch_warnings():
    # shap's plotting colours trip matplotlib PendingDeprecationWarnings on import
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import shap

REASON_MAP = parse_reason_map(
    {
        "features": {
            "days_idle": {
                "reason": "unidentified",
                "phrase": "no purchase for {days_idle:.0f} days",
            },
            "discount": {
                "reason": "competitor_offer",
                "phrase": "{discount:.0%} of spend discounted",
            },
            "complaints": {"reason": "poor_interaction", "phrase": "{complaints:.0f} complaints"},
            "tickets": {"reason": "poor_interaction", "phrase": "support tickets: {tickets:.0f}"},
        }
    },
    "test map",
)

# Log-odds contributions; powers of two so every sum below is exact.
CONTRIBS = pd.DataFrame(
    {
        "days_idle": [0.5, -0.5, 0.0],
        "discount": [0.25, -0.125, -0.0625],
        "complaints": [-0.25, 0.75, -0.0625],
        "tickets": [0.125, 0.25, -0.5],
    },
    index=pd.Index(["a", "b", "c"], name="customer_id"),
)

FEATURES = pd.DataFrame(
    {
        "days_idle": [40.0, 5.0, 12.0],
        "discount": [np.nan, 0.1, 0.0],
        "complaints": [0.0, 3.0, 0.0],
        "tickets": [2.0, 1.0, 0.0],
    },
    index=CONTRIBS.index,
)


def scores(rows: dict[str, dict[str, float]]) -> pd.DataFrame:
    """A reason-score frame; reasons not named are 0."""
    frame = pd.DataFrame(0.0, index=list(rows), columns=list(REASON_COLUMNS))
    for customer, values in rows.items():
        for reason, value in values.items():
            frame.loc[customer, f"reason_{reason}"] = value
    return frame


# --- reason_scores --------------------------------------------------------------------


def test_reason_scores_sum_only_positive_contributions_per_reason():
    result = reason_scores(CONTRIBS, REASON_MAP)

    expected = pd.DataFrame(
        {
            # complaints + tickets, negatives dropped:
            # a: max(-0.25, 0) + 0.125 = 0.125; b: 0.75 + 0.25 = 1.0; c: 0 + 0 = 0
            "reason_poor_interaction": [0.125, 1.0, 0.0],
            # days_idle: a 0.5; b -0.5 -> 0; c 0
            "reason_unidentified": [0.5, 0.0, 0.0],
            # discount: a 0.25; b -0.125 -> 0; c -0.0625 -> 0
            "reason_competitor_offer": [0.25, 0.0, 0.0],
            # no feature carries these reasons
            "reason_business_change": [0.0, 0.0, 0.0],
            "reason_relocation": [0.0, 0.0, 0.0],
            "reason_financial_distress": [0.0, 0.0, 0.0],
        },
        index=CONTRIBS.index,
    )
    pd.testing.assert_frame_equal(result, expected)


def test_reason_scores_refuse_a_feature_without_a_reason():
    with pytest.raises(ReasonMapError, match="features without a loss reason: refunds"):
        reason_scores(CONTRIBS.assign(refunds=0.5), REASON_MAP)


# --- top_reasons ----------------------------------------------------------------------


def test_top_reasons_the_strongest_cause_wins_and_silence_never_competes():
    result = top_reasons(
        scores(
            {
                # poor 0.5 beats competitor 0.25: margin (0.5 - 0.25) / 0.5 = 0.5
                "clear": {"poor_interaction": 0.5, "unidentified": 0.25, "competitor_offer": 0.25},
                # silence (unidentified 3.0) dwarfs competitor 0.5, but silence is how every
                # departure looks: the cause is named, with no rival cause: margin 1.0
                "beats_decay": {"unidentified": 3.0, "competitor_offer": 0.5},
                # financial 0.5 vs relocation 0.25: margin 0.5
                "finance": {
                    "financial_distress": 0.5,
                    "relocation": 0.25,
                    "business_change": 0.25,
                },
            }
        )
    )

    assert result["top_reason"].tolist() == [
        "poor_interaction",
        "competitor_offer",
        "financial_distress",
    ]
    assert result["reason_confidence"].tolist() == [0.5, 1.0, 0.5]


def test_top_reasons_a_near_tie_is_named_with_low_confidence():
    # poor 0.5 vs competitor 0.375: margin 0.125 / 0.5 = 0.25
    result = top_reasons(scores({"tie": {"poor_interaction": 0.5, "competitor_offer": 0.375}}))

    assert result.loc["tie", "top_reason"] == "poor_interaction"
    assert result.loc["tie", "reason_confidence"] == 0.25


def test_top_reasons_thresholds_are_inclusive():
    # poor 0.25 == min_score; share of the causes 0.25 / (0.25 + 1.0) = 0.2 == min_confidence
    result = top_reasons(
        scores({"edge": {"poor_interaction": 0.25, "competitor_offer": 1.0}}),
        min_score=0.25,
        min_confidence=0.8,
    )
    assert result.loc["edge", "top_reason"] == "competitor_offer"
    result = top_reasons(
        scores({"edge": {"poor_interaction": 0.25, "unidentified": 1.0}}),
        min_score=0.25,
        min_confidence=1.0,
    )
    assert result.loc["edge", "top_reason"] == "poor_interaction"
    assert result.loc["edge", "reason_confidence"] == 1.0


def test_top_reasons_weak_or_spread_signal_is_unidentified():
    result = top_reasons(
        scores(
            {
                # weak: financial 0.125 < min_score 0.25; confidence 1 - 0.125 / 0.25 = 0.5
                "weak": {"financial_distress": 0.125, "unidentified": 0.125},
                # spread: poor 0.5 holds 0.5 / (0.5 + 0.5 + 0.5 + 0.5) = 0.25 < 0.3 of the
                # causes; it clears min_score, so confidence = 1 - 1 = 0
                "spread": {
                    "unidentified": 3.0,
                    "poor_interaction": 0.5,
                    "competitor_offer": 0.5,
                    "business_change": 0.5,
                    "relocation": 0.5,
                },
                # nothing but silence: confidence 1
                "silence": {"unidentified": 2.0},
            }
        ),
        min_score=0.25,
        min_confidence=0.3,
    )

    assert result["top_reason"].tolist() == ["unidentified"] * 3
    assert result["reason_confidence"].tolist() == [0.5, 0.0, 1.0]


def test_top_reasons_default_thresholds_are_0_2():
    # competitor 0.1875 < 0.2 with defaults, kept once the score floor is lowered
    frame = scores({"x": {"competitor_offer": 0.1875, "unidentified": 0.5625}})

    assert top_reasons(frame).loc["x", "top_reason"] == "unidentified"
    assert top_reasons(frame).loc["x", "reason_confidence"] == pytest.approx(1 - 0.1875 / 0.2)
    lowered = top_reasons(frame, min_score=0.125)
    assert lowered.loc["x", "top_reason"] == "competitor_offer"
    assert lowered.loc["x", "reason_confidence"] == 1.0


@pytest.mark.parametrize("min_score", [0.2, 0.0])
@pytest.mark.parametrize("min_confidence", [0.2, 0.0])
def test_top_reasons_no_positive_signal_is_unidentified_with_full_confidence(
    min_score, min_confidence
):
    # no cause adds any risk: "no cause shows" is as clear as it gets
    result = top_reasons(scores({"flat": {}}), min_score, min_confidence)

    assert result.loc["flat", "top_reason"] == "unidentified"
    assert result.loc["flat", "reason_confidence"] == 1.0


def test_top_reasons_never_names_a_specific_reason_without_evidence():
    # Only recency decay adds risk; even with both thresholds at 0 (which the score
    # settings allow) no specific reason has any evidence
    result = top_reasons(
        scores({"decay": {"unidentified": 0.75}}), min_score=0.0, min_confidence=0.0
    )

    assert result.loc["decay", "top_reason"] == "unidentified"
    assert result.loc["decay", "reason_confidence"] == 1.0


def test_top_reasons_keeps_the_index():
    frame = scores({"z": {}, "y": {"poor_interaction": 1.0}})

    assert top_reasons(frame).index.tolist() == ["z", "y"]


# --- top_drivers ----------------------------------------------------------------------


def test_top_drivers_lists_the_largest_positive_contributions_in_order():
    result = top_drivers(CONTRIBS, FEATURES, REASON_MAP, k=3)

    assert result.name == "top_drivers"
    assert result.index.equals(CONTRIBS.index)
    assert result.tolist() == [
        # a: days_idle 0.5 > discount 0.25 > tickets 0.125 (complaints -0.25 is 4th);
        # discount is NaN for a: "unknown" is no use to staff, so it is skipped
        "no purchase for 40 days; support tickets: 2",
        # b: complaints 0.75 > tickets 0.25; the third largest, discount -0.125, lowers risk
        "3 complaints; support tickets: 1",
        # c: nothing raises risk (days_idle is exactly 0)
        "",
    ]


def test_top_drivers_skip_what_a_stronger_driver_already_said():
    reason_map = parse_reason_map(
        {
            "features": {
                "idle": {"reason": "unidentified", "phrase": "no purchase for {idle:.0f} days"},
                "overdue": {
                    "reason": "unidentified",
                    "phrase": "no purchase for {idle:.0f} days, {overdue:.0f}x longer than usual",
                },
                "tickets": {"reason": "poor_interaction", "phrase": "{tickets:.0f} tickets"},
            }
        },
        "test map",
    )
    contribs = pd.DataFrame({"idle": [0.9], "overdue": [0.5], "tickets": [0.2]}, index=["a"])
    features = pd.DataFrame({"idle": [120.0], "overdue": [3.0], "tickets": [2.0]}, index=["a"])

    result = top_drivers(contribs, features, reason_map, k=3)

    # the weaker "overdue" phrase contains the stronger one and replaces it in place
    assert result.tolist() == ["no purchase for 120 days, 3x longer than usual; 2 tickets"]


def test_top_drivers_k_limits_the_count():
    result = top_drivers(CONTRIBS, FEATURES, REASON_MAP, k=1)

    assert result.tolist() == ["no purchase for 40 days", "3 complaints", ""]


# --- contributions from a real model ---------------------------------------------------


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(7)
    x = pd.DataFrame(
        rng.normal(size=(300, 5)),
        columns=["days_idle", "discount", "complaints", "tickets", "spend"],
        index=pd.Index([f"c{i:03d}" for i in range(300)], name="customer_id"),
    )
    logit = 1.5 * x["days_idle"] + x["complaints"] - 0.5 * x["spend"]
    y = (logit + rng.normal(size=300) > 0).astype(int)
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(x, y)
    return model, x


def exact_tree_shapley(booster: xgb.Booster, row: pd.Series) -> tuple[pd.Series, float, float]:
    """Path-dependent Shapley values by brute force over every feature subset.

    The TreeSHAP definition without its fast algorithm: v(S) is the sum over trees of
    the expected leaf value when the features in S are fixed to the row's values and
    the others are averaged out by node cover. Read from the model's own tree dump.

    Returns:
        The Shapley value per feature, v(empty set), and v(all features).
    """
    dump = booster.trees_to_dataframe()
    nodes = {node.ID: node for node in dump.itertuples()}
    roots = [f"{tree}-0" for tree in dump["Tree"].unique()]

    def expected(node_id: str, known: set[str]) -> float:
        node = nodes[node_id]
        if node.Feature == "Leaf":
            return node.Gain
        if node.Feature in known:
            # XGBoost compares float32 inputs: x < split goes to "Yes"
            below = np.float32(row[node.Feature]) < node.Split
            return expected(node.Yes if below else node.No, known)
        yes, no = nodes[node.Yes], nodes[node.No]
        return (
            yes.Cover * expected(node.Yes, known) + no.Cover * expected(node.No, known)
        ) / node.Cover

    names = list(row.index)
    m = len(names)
    value = {
        frozenset(subset): sum(expected(root, set(subset)) for root in roots)
        for k in range(m + 1)
        for subset in itertools.combinations(names, k)
    }
    phi = {}
    for feature in names:
        others = [n for n in names if n != feature]
        phi[feature] = sum(
            math.factorial(k)
            * math.factorial(m - k - 1)
            / math.factorial(m)
            * (value[frozenset(subset) | {feature}] - value[frozenset(subset)])
            for k in range(m)
            for subset in itertools.combinations(others, k)
        )
    return pd.Series(phi), value[frozenset()], value[frozenset(names)]


def test_contributions_add_up_to_the_margin(fitted):
    model, x = fitted
    booster = model.get_booster()

    result = contributions(booster, x)
    bias = booster.predict(xgb.DMatrix(x), pred_contribs=True)[:, -1]  # the dropped column
    margin = booster.predict(xgb.DMatrix(x), output_margin=True)

    assert list(result.columns) == list(x.columns)
    assert result.index.equals(x.index)
    assert np.ptp(bias) == 0.0  # one expected value for everybody
    np.testing.assert_allclose(result.sum(axis=1).to_numpy() + bias, margin, atol=1e-4)
    # the model did learn from the features, so the check is not 0 == 0
    assert result["days_idle"].abs().max() > 0.1


def test_contributions_agree_with_shap_tree_explainer(fitted):
    # For XGBoost models shap's TreeExplainer hands over to XGBoost's own
    # pred_contribs, so this guards the wiring (columns, bias column dropped, order);
    # the brute-force test below is the independent check of the values.
    model, x = fitted

    result = contributions(model.get_booster(), x)
    expected = shap.TreeExplainer(model).shap_values(x)

    np.testing.assert_allclose(result.to_numpy(), expected, atol=1e-4)


def test_contributions_are_the_exact_shapley_values(fitted):
    model, x = fitted
    booster = model.get_booster()
    rows = x.iloc[:5]

    result = contributions(booster, rows)
    bias = booster.predict(xgb.DMatrix(rows), pred_contribs=True)[:, -1]
    margin = booster.predict(xgb.DMatrix(rows), output_margin=True)

    for i, (customer, row) in enumerate(rows.iterrows()):
        phi, nothing_known, everything_known = exact_tree_shapley(booster, row)
        np.testing.assert_allclose(result.loc[customer].to_numpy(), phi.to_numpy(), atol=1e-4)
        # margin = base margin + the trees' leaves; bias = base margin + E[trees]
        base_margin = margin[i] - everything_known
        assert bias[i] == pytest.approx(base_margin + nothing_known, abs=1e-4)


def test_contributions_follow_the_models_column_names(fitted):
    model, x = fitted

    with pytest.raises(ValueError, match="feature_names mismatch"):
        contributions(model.get_booster(), x[list(reversed(x.columns))])


def test_contributions_explain_the_early_stopped_model_that_predicts():
    """After early stopping predict_proba uses the best rounds only; so must SHAP."""
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(400, 4)), columns=["a", "b", "c", "d"])
    y = (x["a"] + rng.normal(scale=2.0, size=400) > 0).astype(int)
    model = xgb.XGBClassifier(
        n_estimators=300, learning_rate=0.3, max_depth=4, early_stopping_rounds=5
    )
    model.fit(x[:300], y[:300], eval_set=[(x[300:], y[300:])], verbose=False)
    assert model.best_iteration < 299  # it did stop early
    margin = model.predict(x, output_margin=True)
    contribs = contributions(model.get_booster(), x)
    bias = model.get_booster().predict(
        xgb.DMatrix(x),
        pred_contribs=True,
        iteration_range=(0, model.best_iteration + 1),
    )[:, -1]
    np.testing.assert_allclose(contribs.sum(axis=1) + bias, margin, atol=1e-4)
