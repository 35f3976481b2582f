import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.metrics import (
    bootstrap_auc_difference,
    calibrate,
    captured_share,
    evaluate,
    lift_curve,
    ranking_metrics,
    top_decile_lift,
)

# Ten customers, scores strictly descending; churners at ranks 1 and 3.
Y = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]
SCORES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]


def test_top_decile_lift_is_top_rate_over_overall_rate():
    # Top 1 of 10 is a churner: rate 1.0 against an overall 0.2.
    assert top_decile_lift(Y, SCORES) == pytest.approx(5.0)


def test_top_fraction_size_is_ceiling_of_n_times_fraction():
    # n = 15 -> ceil(1.5) = 2 rows in the top: one churner of two, overall 3/15.
    y = [1, 0] + [1, 1] + [0] * 11
    scores = list(range(15, 0, -1))

    assert top_decile_lift(y, scores) == pytest.approx(0.5 / 0.2)


def test_top_fraction_size_ignores_float_noise():
    # 25 * 0.28 is 7.000000000000001 in floating point; the top must still be 7 rows.
    y = [1] * 7 + [0] * 18
    scores = list(range(25, 0, -1))

    assert top_decile_lift(y, scores, fraction=0.28) == pytest.approx(1.0 / (7 / 25))


def test_ties_keep_input_order():
    flat = [0.5] * 10

    assert top_decile_lift([1] + [0] * 9, flat) == pytest.approx(10.0)
    assert top_decile_lift([0, 1] + [0] * 8, flat) == 0.0


def test_ties_keep_input_order_beyond_small_arrays():
    # 81 rows (numpy's default sort reorders ties at this size): one clear top score,
    # then 80 tied. The top ceil(8.1) = 9 rows are row 41 and the first 8 tied rows in
    # input order, so the churner in row 8 is inside and the one in row 81 is not.
    scores = [0.5] * 40 + [0.9] + [0.5] * 40
    y = [0] * 81
    y[7] = 1
    y[80] = 1

    assert captured_share(y, scores) == pytest.approx(0.5)
    assert lift_curve(y, scores, bins=9)["churners"].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1]


def test_top_decile_lift_without_churners_is_nan():
    assert math.isnan(top_decile_lift([0] * 5, [0.1, 0.2, 0.3, 0.4, 0.5]))


def test_captured_share_of_weight_in_the_top_fraction():
    lost_revenue = [100.0, 0.0, 50.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]

    assert captured_share(lost_revenue, SCORES, fraction=0.2) == pytest.approx(100 / 150)
    assert captured_share(lost_revenue, SCORES, fraction=0.3) == pytest.approx(1.0)


def test_captured_share_with_no_weight_is_nan():
    assert math.isnan(captured_share([0.0, 0.0], [0.3, 0.1]))


def test_captured_share_rejects_negative_weights():
    with pytest.raises(ValueError, match="negative"):
        captured_share([1.0, -1.0], [0.3, 0.1])


def test_evaluate_matches_hand_computed_values():
    result = evaluate(Y, SCORES)

    # ROC AUC: the two churners outrank 8 and 7 of the 8 stayers -> 15/16.
    # Average precision: precision 1/1 at recall 0.5, 2/3 at recall 1.0.
    # Brier: squared errors 0.01+0.64+0.09+0.36+0.25+0.16+0.09+0.04+0.01+0 = 1.65 over 10.
    assert result == pytest.approx(
        {
            "roc_auc": 15 / 16,
            "pr_auc": 0.5 * 1.0 + 0.5 * 2 / 3,
            "top_decile_lift": 5.0,
            "brier": 0.165,
            "churn_rate": 0.2,
            "n": 10.0,
        }
    )


@pytest.mark.parametrize("label", [0, 1])
def test_evaluate_single_class_gives_nan_aucs(label):
    result = evaluate([label] * 4, [0.1, 0.2, 0.3, 0.4])

    assert math.isnan(result["roc_auc"])
    assert math.isnan(result["pr_auc"])
    assert result["churn_rate"] == label
    assert result["n"] == 4.0
    assert result["brier"] == pytest.approx(np.mean((np.array([0.1, 0.2, 0.3, 0.4]) - label) ** 2))


def test_evaluate_rejects_scores_that_are_not_probabilities():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluate([0, 1], [0.2, 1.5])


def test_lift_curve_per_band():
    result = lift_curve(Y, SCORES, bins=5)

    expected = pd.DataFrame(
        {
            "decile": [1, 2, 3, 4, 5],
            "n": [2, 2, 2, 2, 2],
            "churners": [1, 1, 0, 0, 0],
            "churn_rate": [0.5, 0.5, 0.0, 0.0, 0.0],
            "lift": [2.5, 2.5, 0.0, 0.0, 0.0],
            "cumulative_capture": [0.5, 1.0, 1.0, 1.0, 1.0],
        }
    )
    pd.testing.assert_frame_equal(result, expected, check_dtype=False)


def test_lift_curve_uneven_bands_put_larger_ones_first():
    # 7 rows in 3 bands -> sizes 3, 2, 2; overall churn 3/7.
    y = [1, 1, 0, 0, 1, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]

    result = lift_curve(y, scores, bins=3)

    assert result["n"].tolist() == [3, 2, 2]
    assert result["churners"].tolist() == [2, 1, 0]
    assert result["lift"].tolist() == pytest.approx([(2 / 3) / (3 / 7), 0.5 / (3 / 7), 0.0])
    assert result["cumulative_capture"].tolist() == pytest.approx([2 / 3, 1.0, 1.0])


def test_first_band_of_lift_curve_is_the_top_decile():
    # n = 25: both take ceil(2.5) = 3 rows.
    y = [0, 1, 1] + [1, 0, 0, 0, 0] * 4 + [0, 0]
    scores = list(range(25, 0, -1))

    first_band = lift_curve(y, scores).iloc[0]

    assert first_band["n"] == 3
    assert first_band["lift"] == pytest.approx((2 / 3) / (6 / 25))
    assert first_band["lift"] == pytest.approx(top_decile_lift(y, scores))


def test_lift_curve_without_churners_has_nan_lift_and_capture():
    result = lift_curve([0, 0, 0], [0.3, 0.2, 0.1], bins=3)

    assert result["churn_rate"].tolist() == [0.0, 0.0, 0.0]
    assert result["lift"].isna().all()
    assert result["cumulative_capture"].isna().all()


@pytest.mark.parametrize(
    ("y_true", "y_score", "message"),
    [
        ([1, 0, 1], [0.1, 0.2], "3"),
        ([], [], "empty"),
        ([1, 2], [0.1, 0.2], "only 0 and 1"),
        ([1, np.nan], [0.1, 0.2], "NaN"),
        ([1, 0], [0.1, np.nan], "NaN"),
        ([[1, 0]], [[0.1, 0.2]], "one-dimensional"),
    ],
)
def test_invalid_inputs_are_rejected(y_true, y_score, message):
    with pytest.raises(ValueError, match=message):
        top_decile_lift(y_true, y_score)
    with pytest.raises(ValueError, match=message):
        evaluate(y_true, y_score)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_fraction_must_be_in_zero_one(fraction):
    with pytest.raises(ValueError, match="fraction"):
        top_decile_lift(Y, SCORES, fraction=fraction)


def test_lift_curve_needs_at_least_one_row_per_band():
    with pytest.raises(ValueError, match="bins"):
        lift_curve([1, 0, 0], [0.3, 0.2, 0.1], bins=4)


def test_ranking_metrics_match_evaluate_without_brier():
    result = ranking_metrics(Y, SCORES)

    assert result == pytest.approx(
        {"roc_auc": 15 / 16, "pr_auc": 0.5 * 1.0 + 0.5 * 2 / 3, "top_decile_lift": 5.0}
    )


def test_ranking_metrics_accept_scores_that_are_not_probabilities():
    days_since_last_purchase = [300, 250, 200, 120, 90, 60, 30, 20, 10, 0]

    assert ranking_metrics(Y, days_since_last_purchase) == pytest.approx(ranking_metrics(Y, SCORES))


def test_isotonic_calibration_pools_adjacent_violators():
    # 0 | 1 0 (violators, pooled to 0.5) | 1; outside the fitted range: the end values
    result = calibrate([0, 1, 2, 3], [0, 1, 0, 1], [0, 1, 2, 3, 5, -1])

    assert result.tolist() == pytest.approx([0.0, 0.5, 0.5, 1.0, 1.0, 0.0])


def test_platt_calibration_fits_group_rates():
    # two score values with churn rates 1/4 and 3/4: the unpenalised logistic fit is exact
    scores = [0, 0, 0, 0, 1, 1, 1, 1]
    labels = [0, 0, 0, 1, 0, 1, 1, 1]

    result = calibrate(scores, labels, [0, 1, 0.5], method="platt")

    assert result.tolist() == pytest.approx([0.25, 0.75, 0.5], abs=1e-6)


def test_calibration_needs_both_classes_and_a_known_method():
    with pytest.raises(ValueError, match="both"):
        calibrate([0.1, 0.2], [1, 1], [0.3])
    with pytest.raises(ValueError, match="method"):
        calibrate([0.1, 0.2], [0, 1], [0.3], method="beta")


BOOT_Y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0])
BOOT_A = np.array([0.9, 0.1, 0.8, 0.3, 0.2, 0.7, 0.4, 0.3, 0.6, 0.5, 0.1, 0.2])
BOOT_B = np.array([0.5, 0.6, 0.4, 0.2, 0.5, 0.3, 0.7, 0.1, 0.5, 0.4, 0.3, 0.6])


def test_auc_difference_point_estimate_is_the_full_sample_difference():
    result = bootstrap_auc_difference(BOOT_Y, BOOT_A, BOOT_B, n_resamples=50, seed=1)

    expected = roc_auc_score(BOOT_Y, BOOT_A) - roc_auc_score(BOOT_Y, BOOT_B)
    assert result["difference"] == pytest.approx(expected)
    assert result["low"] <= result["high"]
    assert result["n_resamples"] == 50.0


def test_one_resample_is_the_auc_difference_on_the_drawn_customers():
    # with one resample the interval collapses onto that resample's difference, which
    # must equal sklearn's AUCs on the drawn customers (ties included: the 0.5s and 0.3s)
    seed = 3
    drawn = np.random.default_rng(seed).integers(0, len(BOOT_Y), len(BOOT_Y))
    assert 0 < BOOT_Y[drawn].sum() < len(drawn)  # both classes, so no redraw happens
    expected = roc_auc_score(BOOT_Y[drawn], BOOT_A[drawn]) - roc_auc_score(
        BOOT_Y[drawn], BOOT_B[drawn]
    )

    result = bootstrap_auc_difference(BOOT_Y, BOOT_A, BOOT_B, n_resamples=1, seed=seed)

    assert result["low"] == pytest.approx(expected)
    assert result["high"] == pytest.approx(expected)


def test_identical_scores_differ_by_exactly_zero():
    result = bootstrap_auc_difference(BOOT_Y, BOOT_A, BOOT_A, n_resamples=20)

    assert (result["difference"], result["low"], result["high"]) == (0.0, 0.0, 0.0)
    assert result["share_not_positive"] == 1.0


def test_auc_difference_is_reproducible_and_detects_a_clear_winner():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    perfect = y + rng.uniform(0, 0.5, 300)
    noise = rng.uniform(0, 1, 300)

    first = bootstrap_auc_difference(y, perfect, noise, n_resamples=200, seed=5)
    again = bootstrap_auc_difference(y, perfect, noise, n_resamples=200, seed=5)

    assert first == again
    assert first["low"] > 0.3
    assert first["share_not_positive"] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n_resamples": 0}, "n_resamples"), ({"level": 1.0}, "level")],
)
def test_auc_difference_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_auc_difference(BOOT_Y, BOOT_A, BOOT_B, **kwargs)


def test_auc_difference_needs_both_classes():
    with pytest.raises(ValueError, match="both"):
        bootstrap_auc_difference([0, 0, 0], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1])
