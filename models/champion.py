"""The served churn model: one of several candidate families, calibrated.

A data team will hold this pipeline against a `lifetimes` fit in a notebook, so XGBoost
is not assumed to win: the candidates compete on the same validation rows and the
leaderboard winner serves. Every candidate reads the pipeline's own feature table, so
all of them score exactly the same customers:

* ``xgboost``: gradient-boosted trees on every feature (explained with TreeSHAP);
* ``xgboost_btyd``: the same plus BG/NBD outputs (P(alive), expected purchases);
* ``logistic_rfm``: a regularised logistic regression on log-scaled RFM;
* ``bgnbd``: BG/NBD's P(no purchase over the label window) as a model of its own;
* ``blend``: the mean of the others' standardised log-odds (:func:`blend_of`).

Whatever the family, probabilities are calibrated (Platt) on the validation cutoff
before they multiply into value at risk, and :meth:`ChurnModel.contributions` gives
per-feature log-odds contributions so reasons and drivers work the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

from models import btyd
from models.baselines import RFM_COLUMNS, build_rfm_logistic
from models.classifier import build_classifier
from models.explain import contributions as tree_contributions
from models.fit_progress import fit_with_progress

CANDIDATES = ("xgboost", "xgboost_btyd", "logistic_rfm", "bgnbd")
# an equal-weight blend of the candidates' standardised log-odds; also on the leaderboard
BLEND = "blend"
# the project's own types inside a saved ChurnModel, for MLflow's skops format (which
# refuses to load unknown types): loading never unpickles arbitrary code
SKOPS_TRUSTED_TYPES = [
    "models.baselines.log1p_nonnegative",
    "models.btyd.BGNBDParams",
    "models.champion.ChurnModel",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
]
BTYD_FEATURES = ("btyd_p_alive", "btyd_expected_purchases")
# derived inputs are explained through the feature they are read from
_CONTRIBUTION_HOME = "days_since_last_purchase"
_WEEK = 7.0
BTYD_FIT_ROWS = 10_000
_EPS = 1e-6


def btyd_summary(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD's (x, t_x, T) in weeks, read from the feature table: repeat purchase days,
    first to last purchase, first purchase to the cutoff. Whole days, as purchases are
    counted per day (and identical rows collapse when fitting: much faster)."""
    tenure = np.floor(features["tenure_days"].to_numpy(float))
    silence = np.floor(features["days_since_last_purchase"].to_numpy(float))
    big_t = tenure / _WEEK
    t_x = np.clip(tenure - silence, 0, None) / _WEEK
    x = np.clip(features["purchase_days"].to_numpy(float) - 1.0, 0, None)
    return x, t_x, big_t


class ChurnModel(ClassifierMixin, BaseEstimator):
    """A churn classifier of one candidate family, with a probability calibrator.

    Args:
        kind: one of :data:`CANDIDATES`.
        xgb_params: XGBoost parameter overrides (the tree families).
        horizon_days: the label's horizon (BG/NBD's expected purchases look this far).
        label_days: how far past the cutoff the label reads (BG/NBD's window).
    """

    def __init__(
        self,
        kind: str = "xgboost",
        xgb_params: dict | None = None,
        horizon_days: int = 90,
        label_days: int = 180,
    ) -> None:
        self.kind = kind
        self.xgb_params = xgb_params
        self.horizon_days = horizon_days
        self.label_days = label_days

    # --- fitting ------------------------------------------------------------------

    def fit(
        self,
        x: pd.DataFrame,
        y: pd.Series,
        x_valid: pd.DataFrame | None = None,
        y_valid: pd.Series | None = None,
        fit_trees: Callable[..., XGBClassifier] | None = None,
    ) -> ChurnModel:
        """Fit on ``x``; trees early-stop on ``(x_valid, y_valid)`` when given, else
        grow the configured number (a refit with the selected count).

        ``fit_trees(x, y, x_valid, y_valid, **params)`` fits the trees elsewhere (a
        Dask cluster); default in process.
        """
        if self.kind == BLEND:
            # refit every component with its own configuration, then re-standardise
            for part in self.components_:
                part.fit(x, y, fit_trees=fit_trees)
            self._standardise(x)
            self.feature_names_in_ = np.asarray(x.columns, dtype=object)
            self.classes_ = np.array([0, 1])
            return self
        if self.kind not in CANDIDATES:
            raise ValueError(f"unknown model kind {self.kind!r}; use one of {CANDIDATES}")
        self.feature_names_in_ = np.asarray(x.columns, dtype=object)
        self.calibrator_ = None
        if self.kind in ("bgnbd", "xgboost_btyd"):
            # four parameters: a sample pins them as well as every row, at a fraction
            sample = x if len(x) <= BTYD_FIT_ROWS else x.sample(BTYD_FIT_ROWS, random_state=0)
            self.bgnbd_ = btyd.fit_bgnbd(*btyd_summary(sample))
        if self.kind == "logistic_rfm":
            self.estimator_ = build_rfm_logistic(C=1.0).fit(x, y)
        elif self.kind.startswith("xgboost"):
            params = dict(self.xgb_params or {})
            xt = self._tree_inputs(x)
            if x_valid is None:
                params["early_stopping_rounds"] = None
            if fit_trees is not None:
                xv = None if x_valid is None else self._tree_inputs(x_valid)
                self.estimator_ = fit_trees(xt, y, xv, y_valid, **params)
            else:
                trees = build_classifier(xt.columns, **params)
                stop_on = None if x_valid is None else [(self._tree_inputs(x_valid), y_valid)]
                self.estimator_ = fit_with_progress(
                    trees, self.kind, xt, y, eval_set=stop_on, verbose=False
                )
        self.classes_ = np.array([0, 1])
        return self

    def calibrate(self, x: pd.DataFrame, y: pd.Series) -> ChurnModel:
        """Fit the map from raw to calibrated probability on these rows.

        Platt scaling on the raw log-odds: strictly increasing, so the ranking (who is
        called first) is exactly the model's; an isotonic step function would tie whole
        bands of customers and cost ROC-AUC on the list.
        """
        raw = self.raw_probability(x)
        labels = np.asarray(y, dtype=int)
        if 0 < labels.sum() < len(labels):
            platt = LogisticRegression(C=1e6, max_iter=1000)
            self.calibrator_ = platt.fit(_log_odds(raw), labels)
        return self

    def _standardise(self, x: pd.DataFrame) -> None:
        logits = [logit(np.clip(p.raw_probability(x), _EPS, 1 - _EPS)) for p in self.components_]
        self.scales_ = [(float(v.mean()), float(v.std()) or 1.0) for v in logits]

    @property
    def n_trees(self) -> int | None:
        """Trees the model predicts with (after early stopping), for a refit."""
        if not self.kind.startswith("xgboost"):
            return None
        best = getattr(self.estimator_, "best_iteration", None)
        return int(best) + 1 if best is not None else int(self.estimator_.n_estimators)

    # --- predicting ---------------------------------------------------------------

    def raw_probability(self, x: pd.DataFrame) -> np.ndarray:
        """The family's own churn probability, before calibration."""
        x = x[list(self.feature_names_in_)]
        if self.kind == BLEND:
            z = [
                (logit(np.clip(p.raw_probability(x), _EPS, 1 - _EPS)) - m) / sd
                for p, (m, sd) in zip(self.components_, self.scales_, strict=True)
            ]
            return expit(np.mean(z, axis=0)) if len(x) else np.zeros(0)
        if self.kind == "bgnbd":
            return btyd.prob_no_purchase(self.bgnbd_, *btyd_summary(x), self.label_days / _WEEK)
        if self.kind == "logistic_rfm":
            return self.estimator_.predict_proba(x)[:, 1]
        if len(x) == 0:
            return np.zeros(0)
        return self.estimator_.predict_proba(self._tree_inputs(x))[:, 1]

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        raw = self.raw_probability(x)
        if self.calibrator_ is None or len(raw) == 0:
            p = raw
        else:
            p = self.calibrator_.predict_proba(_log_odds(raw))[:, 1]
        p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] >= 0.5).astype(int)

    def contributions(self, x: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions to the raw log-odds, one column per input feature.

        Trees: TreeSHAP (derived BG/NBD inputs fold into ``days_since_last_purchase``).
        Logistic regression: coefficient x (standardised value - its training mean),
        exact for a linear model. BG/NBD: the whole departure from the average log-odds
        is recency and frequency, told as ``days_since_last_purchase``.
        """
        x = x[list(self.feature_names_in_)]
        out = pd.DataFrame(0.0, index=x.index, columns=x.columns)
        if self.kind == BLEND:
            # each component's contributions in the blend's standardised log-odds
            for part, (_, sd) in zip(self.components_, self.scales_, strict=True):
                out += part.contributions(x) / (sd * len(self.components_))
            return out
        if self.kind.startswith("xgboost"):
            shap = tree_contributions(self.estimator_.get_booster(), self._tree_inputs(x))
            for column in shap.columns:
                home = column if column in out.columns else _CONTRIBUTION_HOME
                out[home] += shap[column].to_numpy(float)
        elif self.kind == "logistic_rfm":
            transform = self.estimator_.named_steps["features"]
            coef = self.estimator_.named_steps["classifier"].coef_[0]
            z = transform.transform(x)
            for column, weight in zip(RFM_COLUMNS, coef, strict=True):
                # standardised columns have training mean 0
                out[column] = weight * z[column].to_numpy(float)
        else:
            p = np.clip(self.raw_probability(x), _EPS, 1 - _EPS)
            out[_CONTRIBUTION_HOME] = logit(p) - float(np.mean(logit(p))) if len(p) else 0.0
        return out

    def _tree_inputs(self, x: pd.DataFrame) -> pd.DataFrame:
        if self.kind != "xgboost_btyd":
            return x
        x_, t_x, big_t = btyd_summary(x)
        horizon = self.horizon_days / _WEEK
        return x.assign(
            btyd_p_alive=btyd.p_alive(self.bgnbd_, x_, t_x, big_t),
            btyd_expected_purchases=btyd.expected_purchases(self.bgnbd_, x_, t_x, big_t, horizon),
        )


def _log_odds(p: np.ndarray) -> np.ndarray:
    return logit(np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)).reshape(-1, 1)


def blend_of(components: list[ChurnModel], x_train: pd.DataFrame) -> ChurnModel:
    """An equal-weight blend of fitted candidates; each one's log-odds standardised on the
    training rows so no family dominates by its scale."""
    blend = ChurnModel(BLEND, horizon_days=components[0].horizon_days)
    blend.label_days = components[0].label_days
    blend.components_ = [copy.copy(c) for c in components]
    for part in blend.components_:
        part.calibrator_ = None  # the blend reads raw scores and is calibrated as a whole
    blend._standardise(x_train)
    blend.feature_names_in_ = np.asarray(x_train.columns, dtype=object)
    blend.classes_ = np.array([0, 1])
    blend.calibrator_ = None
    return blend


def model_feature_names(model: object) -> list[str]:
    """The input features a served model needs, whatever its type."""
    if isinstance(model, ChurnModel):
        return list(model.feature_names_in_)
    return list(model.get_booster().feature_names or [])  # type: ignore[attr-defined]


def model_contributions(model: object, features: pd.DataFrame) -> pd.DataFrame:
    """Per-feature log-odds contributions of a served model (ChurnModel or XGBoost)."""
    if isinstance(model, ChurnModel):
        return model.contributions(features)
    return tree_contributions(model.get_booster(), features)  # type: ignore[attr-defined]
