"""The effect of a call per customer, learned from matured campaigns (a T-learner).

High-risk customers are often the ones a call cannot save (Ascarza 2018, "Retention
futility"), so a list ranked by risk can spend its budget on lost causes. Once enough
campaigns have matured, the held-out customers say what happens without a call: one
classifier learns retention among the contacted, one among the held out, and their
difference is the call's uplift for a customer. It replaces risk ranking only when it
ranks better on campaigns it was not fitted on (Qini coefficient and uplift at k).

Everything here reads the list columns kept in the list history (churn probability,
value, recency, reason scores, reason and action), so the uplift model needs nothing the
nightly list does not already store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from xgboost import XGBClassifier

from models.campaign import CONTACT, HOLDOUT

NUMERIC = (
    "churn_probability",
    "expected_value",
    "days_since_last_purchase",
    "expected_gap_days",
    "reason_confidence",
)
CATEGORICAL = ("list", "top_reason", "action_rule", "segment")
# below these, the held-out arm is too small for a per-customer effect to mean anything
MIN_CAMPAIGNS = 3
MIN_PER_ARM = 200
RISK = "risk"
UPLIFT = "uplift"


def uplift_design(rows: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Numeric design matrix from list rows: numeric columns plus one-hot categories.

    Args:
        rows: list rows (from the list history), one per listed customer.
        columns: the fitted column order; new categories are dropped, missing ones zero.
    """
    numeric = [c for c in NUMERIC if c in rows]
    design = rows[numeric].apply(pd.to_numeric, errors="coerce").astype(float)
    for column in (c for c in CATEGORICAL if c in rows):
        dummies = pd.get_dummies(rows[column].astype(str), prefix=column, dtype=float)
        design = pd.concat([design, dummies], axis=1)
    if columns is not None:
        design = design.reindex(columns=list(columns), fill_value=0.0)
    return design.reset_index(drop=True)


def _arm_classifier(seed: int) -> XGBClassifier:
    # shallow and strongly regularised: the held-out arm is a tenth of the list
    return XGBClassifier(
        n_estimators=150,
        max_depth=3,
        learning_rate=0.05,
        min_child_weight=10,
        subsample=0.8,
        reg_lambda=5.0,
        random_state=seed,
        n_jobs=1,
        eval_metric="logloss",
    )


@dataclass
class UpliftModel:
    """T-learner: P(retained | contacted) - P(retained | held out), per customer."""

    seed: int = 0

    def fit(self, rows: pd.DataFrame, retained: pd.Series) -> UpliftModel:
        """Fit both arms on list rows with a ``group`` column and their outcomes."""
        design = uplift_design(rows)
        self.columns_ = list(design.columns)
        group = rows["group"].to_numpy()
        outcome = np.asarray(retained, dtype=int)
        self.arms_: dict[str, XGBClassifier] = {}
        for arm in (CONTACT, HOLDOUT):
            mask = group == arm
            if len(np.unique(outcome[mask])) < 2:
                raise ValueError(f"the {arm} arm has one outcome only: no uplift to learn")
            self.arms_[arm] = _arm_classifier(self.seed).fit(design[mask], outcome[mask])
        return self

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """The uplift of a call on each row's horizon retention (may be negative)."""
        design = uplift_design(rows, self.columns_)
        treated = self.arms_[CONTACT].predict_proba(design)[:, 1]
        control = self.arms_[HOLDOUT].predict_proba(design)[:, 1]
        return treated - control


def qini_curve(score: np.ndarray, treated: np.ndarray, retained: np.ndarray) -> pd.DataFrame:
    """Incremental customers retained when contacting the top share by ``score``.

    At each depth, Qini = retained contacted - retained held-out x (contacted / held-out
    so far): the extra customers the calls kept, if the held out stand for the rest.
    """
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    t = np.asarray(treated, dtype=bool)[order]
    y = np.asarray(retained, dtype=bool)[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(y & t), np.cumsum(y & ~t)
    with np.errstate(divide="ignore", invalid="ignore"):
        qini = np.where(n_c > 0, y_t - y_c * n_t / np.maximum(n_c, 1), y_t)
    share = np.arange(1, len(order) + 1) / max(len(order), 1)
    return pd.DataFrame({"share": np.r_[0.0, share], "qini": np.r_[0.0, qini]})


def qini_coefficient(score: np.ndarray, treated: np.ndarray, retained: np.ndarray) -> float:
    """Area between the Qini curve and random targeting, per customer (0 = random)."""
    curve = qini_curve(score, treated, retained)
    random = curve["share"] * curve["qini"].iloc[-1]
    gap = (curve["qini"] - random).to_numpy()
    return float(np.trapezoid(gap, curve["share"].to_numpy()) / max(len(curve) - 1, 1))


def uplift_at_k(
    score: np.ndarray, treated: np.ndarray, retained: np.ndarray, k: float = 0.3
) -> float:
    """Retention of contacted minus held out among the top ``k`` share by ``score``."""
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    top = order[: max(int(round(k * len(order))), 1)]
    t = np.asarray(treated, dtype=bool)[top]
    y = np.asarray(retained, dtype=float)[top]
    if t.all() or not t.any():
        return float("nan")
    return float(y[t].mean() - y[~t].mean())


def expected_saved_value(uplift: np.ndarray, value: np.ndarray, contact_cost: float) -> np.ndarray:
    """What a call is worth: uplift x the customer's value over the horizon - its cost."""
    return np.asarray(uplift, dtype=float) * np.asarray(value, dtype=float) - contact_cost


def order_by_saved_value(
    listed: pd.DataFrame, model: UpliftModel, contact_cost: float
) -> pd.DataFrame:
    """The list with the customers a call can change most first, not the likeliest to go.

    Order: expected saved value (uplift x expected value - contact cost), highest first;
    ties keep the list's order. The columns stay the list's own.
    """
    uplift = model.predict(listed) if len(listed) else np.zeros(0)
    worth = expected_saved_value(uplift, listed["expected_value"].to_numpy(), contact_cost)
    return listed.iloc[np.argsort(-worth, kind="stable")]


@dataclass(frozen=True)
class RankingComparison:
    """Uplift ranking against risk ranking on campaigns the uplift model never saw."""

    ranking: str  # the one the list should use: UPLIFT or RISK
    reason: str
    qini_uplift: float = float("nan")
    qini_risk: float = float("nan")
    uplift_at_k_uplift: float = float("nan")
    uplift_at_k_risk: float = float("nan")
    test_campaigns: int = 0


def _qini_gain_lower_bound(
    by_uplift: np.ndarray,
    by_risk: np.ndarray,
    treated: np.ndarray,
    retained: np.ndarray,
    seed: int,
    resamples: int = 200,
) -> float:
    """One-sided 95% bootstrap lower bound of Qini(uplift) - Qini(risk), same rows."""
    rng = np.random.default_rng(seed)
    n = len(by_uplift)
    gains = np.empty(resamples)
    for i in range(resamples):
        pick = rng.integers(0, n, n)
        gains[i] = qini_coefficient(by_uplift[pick], treated[pick], retained[pick]) - (
            qini_coefficient(by_risk[pick], treated[pick], retained[pick])
        )
    return float(np.quantile(gains, 0.05))


def choose_ranking(
    outcomes: pd.DataFrame | None, seed: int = 0
) -> tuple[RankingComparison, UpliftModel | None]:
    """Tonight's ranking from the matured listings (:func:`models.campaign.matured_outcomes`,
    None without a list history): uplift if it beat risk on the matured campaigns.

    Only listings whose horizon ended by the night's cutoff are outcomes, read from
    transactions before it: a night scored in the past never learns from what came after.
    """
    if outcomes is None:
        return RankingComparison(RISK, "no list history yet: ranked by value at risk"), None
    return compare_rankings(outcomes, seed=seed)


def compare_rankings(
    outcomes: pd.DataFrame, k: float = 0.3, seed: int = 0
) -> tuple[RankingComparison, UpliftModel | None]:
    """Fit on the earlier matured campaigns, test on the latest one(s), and choose.

    Args:
        outcomes: matured listings (``models.campaign.retention_outcomes``) with the
            list columns, ``campaign``, ``group`` and ``retained``.
        k: the depth of the list compared (the share a budget typically buys).

    Returns:
        The comparison, and the model refitted on every matured campaign when uplift
        wins (else None). Risk ranking stays unless uplift's Qini gain holds across
        bootstrap resamples (95% lower bound above 0) and it keeps more at depth ``k``.
    """
    campaigns = sorted(outcomes["campaign"].astype(str).unique()) if len(outcomes) else []
    arms = outcomes["group"].value_counts() if len(outcomes) else pd.Series(dtype=int)
    if len(campaigns) < MIN_CAMPAIGNS or arms.get(HOLDOUT, 0) < MIN_PER_ARM:
        return RankingComparison(
            RISK,
            f"not enough matured campaigns yet for an uplift model ({len(campaigns)} "
            f"campaigns, {int(arms.get(HOLDOUT, 0))} held-out customers; needs "
            f"{MIN_CAMPAIGNS} and {MIN_PER_ARM})",
        ), None
    n_test = max(1, len(campaigns) // 3)
    test_ids = set(campaigns[-n_test:])
    is_test = outcomes["campaign"].astype(str).isin(test_ids).to_numpy()
    train, test = outcomes.loc[~is_test], outcomes.loc[is_test]
    try:
        model = UpliftModel(seed).fit(train, train["retained"])
    except ValueError as exc:
        return RankingComparison(RISK, f"uplift model not fitted: {exc}"), None
    treated = test["group"].eq(CONTACT).to_numpy()
    retained = test["retained"].to_numpy()
    by_uplift = model.predict(test)
    by_risk = test["churn_probability"].to_numpy(dtype=float)
    measured = dict(
        qini_uplift=qini_coefficient(by_uplift, treated, retained),
        qini_risk=qini_coefficient(by_risk, treated, retained),
        uplift_at_k_uplift=uplift_at_k(by_uplift, treated, retained, k),
        uplift_at_k_risk=uplift_at_k(by_risk, treated, retained, k),
    )
    low = _qini_gain_lower_bound(by_uplift, by_risk, treated, retained, seed)
    # a better Qini by chance is not enough: the gain must hold across resamples
    wins = low > 0 and measured["uplift_at_k_uplift"] > measured["uplift_at_k_risk"]
    verdict = (
        f"on the {n_test} latest matured campaign(s), uplift ranking "
        f"{'beats' if wins else 'does not beat'} risk ranking "
        f"(Qini {measured['qini_uplift']:.4f} vs {measured['qini_risk']:.4f}, gain's 95% lower "
        f"bound {low:+.4f}; uplift in the top {k:.0%} {measured['uplift_at_k_uplift']:+.3f} vs "
        f"{measured['uplift_at_k_risk']:+.3f})"
    )
    if not wins:
        return RankingComparison(RISK, verdict, test_campaigns=n_test, **measured), None
    comparison = RankingComparison(UPLIFT, verdict, test_campaigns=n_test, **measured)
    return comparison, UpliftModel(seed).fit(outcomes, outcomes["retained"])
