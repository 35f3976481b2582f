"""Evaluation metrics for churn scores.

Conventions: ``y_true`` is 1 for a customer who churned and 0 otherwise; a higher
``y_score`` means more likely to churn. Ranking metrics order customers by descending
score with a stable sort, so tied scores keep their input order; the top fraction is
``ceil(n * fraction)`` customers, which makes the first decile of :func:`lift_curve`
the same customers as :func:`top_decile_lift`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

ArrayLike = npt.ArrayLike


def top_decile_lift(y_true: ArrayLike, y_score: ArrayLike, fraction: float = 0.1) -> float:
    """Churn rate among the highest-scored customers divided by the overall churn rate.

    Args:
        y_true: 1 = churned, 0 = stayed.
        y_score: Churn scores; higher means riskier.
        fraction: Share of customers counted as the top, in (0, 1].

    Returns:
        The lift; 1.0 means the top is no better than random. NaN when nobody churned,
        since the ratio is then undefined.

    Raises:
        ValueError: Inputs are empty, of different lengths, non-finite, ``y_true`` is
            not 0/1, or ``fraction`` is outside (0, 1].
    """
    labels = _labels(y_true)
    scores = _scores(y_score, len(labels))
    top = _top_positions(scores, fraction)
    overall_rate = labels.mean()
    if overall_rate == 0:
        return math.nan
    return float(labels[top].mean() / overall_rate)


def captured_share(y_true_weight: ArrayLike, y_score: ArrayLike, fraction: float = 0.1) -> float:
    """Share of the total weight that sits in the top ``fraction`` of customers by score.

    With 0/1 labels as weights this is the recall of the top fraction; with the revenue
    each customer takes with them it is the share of lost revenue a campaign reaching
    only the top fraction could address.

    Args:
        y_true_weight: Non-negative weight per customer, e.g. next-period revenue lost
            (0 for customers who stay).
        y_score: Churn scores; higher means riskier.
        fraction: Share of customers counted as the top, in (0, 1].

    Returns:
        The captured share in [0, 1]; NaN when the total weight is 0.

    Raises:
        ValueError: Inputs are empty, of different lengths, non-finite, weights are
            negative, or ``fraction`` is outside (0, 1].
    """
    weights = _finite_1d(y_true_weight, "y_true_weight")
    if (weights < 0).any():
        raise ValueError("y_true_weight must not be negative")
    scores = _scores(y_score, len(weights))
    top = _top_positions(scores, fraction)
    total = weights.sum()
    if total == 0:
        return math.nan
    return float(weights[top].sum() / total)


def evaluate(y_true: ArrayLike, y_score: ArrayLike) -> dict[str, float]:
    """The standard metric set for a churn model on one evaluation sample.

    Args:
        y_true: 1 = churned, 0 = stayed.
        y_score: Churn probabilities in [0, 1].

    Returns:
        ``roc_auc``, ``pr_auc`` (average precision), ``top_decile_lift``, ``brier``,
        ``churn_rate`` and ``n`` (as a float). ``roc_auc`` and ``pr_auc`` are NaN when
        ``y_true`` holds a single class, where they are undefined; ``top_decile_lift``
        is NaN when nobody churned.

    Raises:
        ValueError: Invalid inputs (see :func:`top_decile_lift`) or scores outside [0, 1].
    """
    labels = _labels(y_true)
    scores = _scores(y_score, len(labels))
    if ((scores < 0) | (scores > 1)).any():
        # The Brier score only means something for probabilities.
        raise ValueError("y_score must be probabilities in [0, 1] for evaluate()")

    both_classes = 0 < labels.sum() < len(labels)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else math.nan,
        "pr_auc": float(average_precision_score(labels, scores)) if both_classes else math.nan,
        "top_decile_lift": top_decile_lift(labels, scores),
        "brier": float(brier_score_loss(labels, scores, pos_label=1)),
        "churn_rate": float(labels.mean()),
        "n": float(len(labels)),
    }


def lift_curve(y_true: ArrayLike, y_score: ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Churn rate and lift per score band, highest scores first.

    Customers are sorted by descending score and split into ``bins`` bands whose sizes
    differ by at most one, larger bands first (``numpy.array_split``).

    Args:
        y_true: 1 = churned, 0 = stayed.
        y_score: Churn scores; higher means riskier.
        bins: Number of bands; at least 1 and at most the number of customers.

    Returns:
        One row per band with ``decile`` (1 = highest scores), ``n``, ``churners``,
        ``churn_rate``, ``lift`` (band churn rate / overall churn rate) and
        ``cumulative_capture`` (share of all churners in this band and those above).
        ``lift`` and ``cumulative_capture`` are NaN when nobody churned.

    Raises:
        ValueError: Invalid inputs (see :func:`top_decile_lift`) or ``bins`` outside
            1..n.
    """
    labels = _labels(y_true)
    scores = _scores(y_score, len(labels))
    if not 1 <= bins <= len(labels):
        raise ValueError(f"bins must be between 1 and the number of rows ({len(labels)})")

    order = np.argsort(-scores, kind="stable")
    bands = np.array_split(labels[order], bins)
    sizes = np.array([len(band) for band in bands])
    churners = np.array([band.sum() for band in bands])
    total_churners = labels.sum()
    churn_rate = churners / sizes
    overall_rate = total_churners / len(labels)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = churn_rate / overall_rate if total_churners else np.full(bins, np.nan)
        capture = np.cumsum(churners) / total_churners if total_churners else np.full(bins, np.nan)
    return pd.DataFrame(
        {
            "decile": np.arange(1, bins + 1),
            "n": sizes,
            "churners": churners.astype("int64"),
            "churn_rate": churn_rate.astype("float64"),
            "lift": lift.astype("float64"),
            "cumulative_capture": capture.astype("float64"),
        }
    )


def _finite_1d(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    try:
        array = array.astype("float64")
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric") from error
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _labels(y_true: ArrayLike) -> np.ndarray:
    labels = _finite_1d(y_true, "y_true")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("y_true must contain only 0 and 1 (1 = churned)")
    return labels.astype("int64")


def _scores(y_score: ArrayLike, n: int) -> np.ndarray:
    scores = _finite_1d(y_score, "y_score")
    if len(scores) != n:
        raise ValueError(f"y_score has {len(scores)} values but the labels have {n}")
    return scores


def _top_positions(scores: np.ndarray, fraction: float) -> np.ndarray:
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    # Rounding first keeps float noise from adding a row: 25 * 0.28 is 7.000000000000001.
    k = max(1, math.ceil(round(len(scores) * fraction, 9)))
    return np.argsort(-scores, kind="stable")[:k]


def ranking_metrics(y_true: ArrayLike, y_score: ArrayLike) -> dict[str, float]:
    """ROC-AUC, PR-AUC and top-decile lift for any score, probability or not.

    Use this for scores that only rank (days since the last purchase, say), where
    :func:`evaluate` would refuse to compute a Brier score.

    Returns:
        ``roc_auc``, ``pr_auc`` (average precision) and ``top_decile_lift``; the AUCs are
        NaN when ``y_true`` holds a single class.

    Raises:
        ValueError: Invalid inputs (see :func:`top_decile_lift`).
    """
    labels = _labels(y_true)
    scores = _scores(y_score, len(labels))
    both_classes = 0 < labels.sum() < len(labels)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else math.nan,
        "pr_auc": float(average_precision_score(labels, scores)) if both_classes else math.nan,
        "top_decile_lift": top_decile_lift(labels, scores),
    }


def calibrate(
    fit_scores: ArrayLike,
    fit_labels: ArrayLike,
    scores: ArrayLike,
    method: str = "isotonic",
) -> np.ndarray:
    """Map scores to churn probabilities learned on a separate (earlier) sample.

    Args:
        fit_scores: Scores on the calibration sample (e.g. the validation cutoff).
        fit_labels: Its outcomes, 1 = churned.
        scores: Scores to turn into probabilities (e.g. the holdout cutoff).
        method: ``"isotonic"`` (monotone step function, pool-adjacent-violators; scores
            outside the fitted range get the end values) or ``"platt"`` (logistic
            regression on the raw score, unpenalised).

    Returns:
        Probabilities in [0, 1], one per entry of ``scores``.

    Raises:
        ValueError: Invalid inputs, a single class in ``fit_labels``, or an unknown
            ``method``.
    """
    labels = _labels(fit_labels)
    fitted_on = _scores(fit_scores, len(labels))
    to_map = _finite_1d(scores, "scores")
    if not 0 < labels.sum() < len(labels):
        raise ValueError("calibration needs both churners and stayers in fit_labels")
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        return iso.fit(fitted_on, labels).predict(to_map)
    if method == "platt":
        # standardise for the solver only; the fitted map is the same logistic in the score
        centre, spread = fitted_on.mean(), fitted_on.std() or 1.0
        platt = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000)
        platt.fit(((fitted_on - centre) / spread).reshape(-1, 1), labels)
        return platt.predict_proba(((to_map - centre) / spread).reshape(-1, 1))[:, 1]
    raise ValueError(f"method must be 'isotonic' or 'platt', got {method!r}")


def bootstrap_auc_difference(
    y_true: ArrayLike,
    score_a: ArrayLike,
    score_b: ArrayLike,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """ROC-AUC of ``score_a`` minus that of ``score_b``, with a paired bootstrap interval.

    Customers are resampled with replacement (the same draw for both scores, so the
    interval reflects the paired difference); resamples that happen to hold a single
    class are drawn again. The interval is the percentile interval of the resampled
    differences.

    Args:
        y_true: 1 = churned, 0 = stayed; both classes must be present.
        score_a: Scores of the first model (e.g. the pipeline).
        score_b: Scores of the second model (e.g. BG/NBD), same customers and order.
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the resampling generator.
        level: Coverage of the interval, in (0, 1).

    Returns:
        ``difference`` (on the full sample), ``low`` and ``high`` (interval bounds),
        ``share_not_positive`` (share of resamples with a difference <= 0) and
        ``n_resamples``.

    Raises:
        ValueError: Invalid inputs, a single class, ``n_resamples < 1`` or ``level``
            outside (0, 1).
    """
    labels = _labels(y_true)
    a = _scores(score_a, len(labels))
    b = _scores(score_b, len(labels))
    if not 0 < labels.sum() < len(labels):
        raise ValueError("the AUC difference needs both churners and stayers")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")

    groups_a, groups_b = _score_groups(a), _score_groups(b)
    rng = np.random.default_rng(seed)
    n = len(labels)
    differences = np.empty(n_resamples)
    done = 0
    while done < n_resamples:
        counts = np.bincount(rng.integers(0, n, n), minlength=n).astype("float64")
        positives = counts @ labels
        if positives == 0 or positives == counts.sum():
            continue
        differences[done] = _weighted_auc(labels, counts, groups_a) - _weighted_auc(
            labels, counts, groups_b
        )
        done += 1
    tail = (1 - level) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    point = _weighted_auc(labels, np.ones(n), groups_a) - _weighted_auc(
        labels, np.ones(n), groups_b
    )
    return {
        "difference": float(point),
        "low": float(low),
        "high": float(high),
        "share_not_positive": float((differences <= 0).mean()),
        "n_resamples": float(n_resamples),
    }


def _score_groups(scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Rank of each score among the distinct scores (ascending) and how many there are."""
    distinct, group = np.unique(scores, return_inverse=True)
    return group, len(distinct)


def _weighted_auc(labels: np.ndarray, weights: np.ndarray, groups: tuple[np.ndarray, int]) -> float:
    """ROC-AUC with integer case weights (ties count one half): Mann-Whitney by groups."""
    group, n_groups = groups
    positive = np.bincount(group, weights * labels, minlength=n_groups)
    negative = np.bincount(group, weights * (1 - labels), minlength=n_groups)
    negatives_below = np.cumsum(negative) - negative
    wins = positive @ (negatives_below + 0.5 * negative)
    return float(wins / (positive.sum() * negative.sum()))
