"""SHAP drivers per customer, folded onto the documented loss reasons.

Contributions come from XGBoost's built-in TreeSHAP (``pred_contribs``): the same
values as ``shap.TreeExplainer`` on tree models (a test checks they agree), without
the extra pass through the shap package. Plain boosters take :mod:`models.treeshap`,
which gives XGBoost's values bit for bit at a fraction of the cost; every answer is
checked against XGBoost itself on a sample of its rows.
"""

from __future__ import annotations

import hashlib
import math
import string
import threading
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import xgboost as xgb

from models.reasons import REASONS, PhraseFormatter, ReasonMap, describe
from models.thresholds import MIN_REASON_CONFIDENCE, MIN_REASON_SCORE
from models.treeshap import PatternShap, Unsupported

REASON_COLUMNS = tuple(f"reason_{r}" for r in REASONS)
# rows of every answer that XGBoost recomputes to confirm the pattern path agrees
CHECK_ROWS = 16
# below this many rows XGBoost alone is quicker (the pattern path calls it once per tree)
PATTERN_MIN_ROWS = 1_000
_PATTERNS: dict[tuple[bytes, int], PatternShap | None] = {}  # the last few models
_PATTERNS_KEPT = 2
_PATTERNS_LOCK = threading.Lock()


def contributions(booster: xgb.Booster, features: pd.DataFrame) -> pd.DataFrame:
    """Per-customer SHAP contributions in log-odds, one column per feature (bias dropped)."""
    if features.empty:  # xgboost returns a flat array for zero rows
        return pd.DataFrame(0.0, index=features.index, columns=features.columns, dtype="float32")
    # explain the model that predicts: after early stopping, predict_proba uses only the
    # rounds up to the best iteration, so the contributions must too
    best = booster.attr("best_iteration")
    rounds = int(best) + 1 if best is not None else booster.num_boosted_rounds()
    many = len(features) >= PATTERN_MIN_ROWS
    rows = features.to_numpy(np.float32) if many and _plain_rows(booster, features) else None
    plain = rows is not None and not np.isinf(rows).any()
    explainer = _pattern_shap(booster, rounds) if plain else None
    if rows is None or explainer is None:  # XGBoost's own path, its own checks and errors
        values = xgboost_contributions(booster, features, rounds)
    else:
        values = explainer.contributions(rows)
        check = np.unique(np.linspace(0, len(features) - 1, CHECK_ROWS).astype(int))
        if not np.array_equal(
            values[check], xgboost_contributions(booster, features.iloc[check], rounds)
        ):
            warnings.warn(
                "fast TreeSHAP disagreed with XGBoost's pred_contribs; using XGBoost's",
                RuntimeWarning,
                stacklevel=2,
            )
            with _PATTERNS_LOCK:
                _PATTERNS[_model_key(booster, rounds)] = None
            values = xgboost_contributions(booster, features, rounds)
    return pd.DataFrame(values, index=features.index, columns=features.columns)


def xgboost_contributions(booster: xgb.Booster, features: pd.DataFrame, rounds: int) -> np.ndarray:
    """XGBoost's own ``pred_contribs`` for the first ``rounds`` rounds, bias dropped."""
    matrix = xgb.DMatrix(features, feature_names=list(features.columns))
    values = booster.predict(
        matrix, pred_contribs=True, validate_features=True, iteration_range=(0, rounds)
    )
    return values[:, :-1]


def _model_key(booster: xgb.Booster, rounds: int) -> tuple[bytes, int]:
    # the model's own bytes: a booster changed in place is a new model
    return hashlib.blake2b(bytes(booster.save_raw("ubj")), digest_size=16).digest(), rounds


def _plain_rows(booster: xgb.Booster, features: pd.DataFrame) -> bool:
    """Numeric columns, named and ordered as the model's: float32 as XGBoost reads them."""
    names = booster.feature_names
    return (
        names is not None
        and list(features.columns) == list(names)
        and all(isinstance(t, np.dtype) and t.kind in "biuf" for t in features.dtypes)
    )


def _pattern_shap(booster: xgb.Booster, rounds: int) -> PatternShap | None:
    """The (kept) pattern explainer of this model; ``None`` if it is not of the plain kind."""
    key = _model_key(booster, rounds)
    with _PATTERNS_LOCK:
        if key not in _PATTERNS:
            try:
                _PATTERNS[key] = PatternShap(booster, rounds)
            except Unsupported:
                _PATTERNS[key] = None
        _PATTERNS[key] = _PATTERNS.pop(key)  # most recently used last
        while len(_PATTERNS) > _PATTERNS_KEPT:
            del _PATTERNS[next(iter(_PATTERNS))]
        return _PATTERNS[key]


def reason_scores(contribs: pd.DataFrame, reason_map: ReasonMap) -> pd.DataFrame:
    """Per reason, the sum of that reason's positive (risk-raising) contributions."""
    reason_map.check_covers(contribs.columns)
    positive = contribs.clip(lower=0.0)
    reasons = np.array([reason_map.reason_of(c) for c in contribs.columns])
    scores = {
        f"reason_{r}": positive.loc[:, reasons == r].sum(axis=1) if (reasons == r).any() else 0.0
        for r in REASONS
    }
    return pd.DataFrame(scores, index=contribs.index)


def top_reasons(
    scores: pd.DataFrame,
    min_score: float = MIN_REASON_SCORE,
    min_confidence: float = MIN_REASON_CONFIDENCE,
) -> pd.DataFrame:
    """Top reason per customer, and how clearly it beats the runner-up.

    Only the *specific* reasons (every one but ``unidentified``) compete. Silence,
    recency and falling frequency are how every departure looks, not why it happened,
    so they never outvote a cause that shows: the strongest specific reason is named
    when it adds at least ``min_score`` log-odds of risk and holds at least
    ``min_confidence`` of the risk the specific reasons add together. Otherwise no
    cause shows, and the answer is ``unidentified``.

    ``reason_confidence`` is the winner's margin over the runner-up, as a share of the
    winner: 1 = no rival cause at all, 0 = a tie. For ``unidentified`` it is how far
    the strongest cause stays below ``min_score``: 1 = no cause shows at all.
    """
    values = scores[list(REASON_COLUMNS)].to_numpy(float)
    specific = [i for i, r in enumerate(REASONS) if r != "unidentified"]
    causes = np.clip(values[:, specific], 0.0, None)
    ranked = np.sort(causes, axis=1)
    best_value, runner_up = ranked[:, -1], ranked[:, -2]
    best = np.asarray(specific)[causes.argmax(axis=1)]
    total = causes.sum(axis=1)
    share = np.divide(best_value, total, out=np.zeros_like(total), where=total > 0)
    reason = np.array(REASONS, dtype=object)[best]
    # a reason with no risk-raising contribution at all is never named, even at 0 thresholds
    vague = (best_value <= 0) | (best_value < min_score) | (share < min_confidence)
    reason[vague] = "unidentified"
    margin = np.divide(
        best_value - runner_up, best_value, out=np.zeros_like(total), where=best_value > 0
    )
    if min_score > 0:
        nothing_shows = 1.0 - np.clip(best_value / min_score, 0.0, 1.0)
    else:
        nothing_shows = (best_value <= 0).astype(float)
    confidence = np.where(vague, nothing_shows, margin)
    return pd.DataFrame({"top_reason": reason, "reason_confidence": confidence}, index=scores.index)


def top_drivers(
    contribs: pd.DataFrame, features: pd.DataFrame, reason_map: ReasonMap, k: int = 3
) -> pd.Series:
    """The ``k`` largest risk-raising drivers per customer, in plain words, ``; ``-joined.

    A phrase already said by a stronger driver ("no purchase for 160 days" inside "no
    purchase for 160 days, 5x longer than usual") is skipped, and so is a driver whose
    value is missing: staff cannot act on "unknown". The next driver takes its place.
    """
    values = contribs.to_numpy(float)
    order = np.argsort(-values, axis=1, kind="stable")[:, : 3 * k]
    # the candidates are sorted: each row stops at its first that does not raise risk
    stops = np.take_along_axis(values, order, axis=1) <= 0
    raising = np.where(stops.any(axis=1), stops.argmax(axis=1), order.shape[1])
    names = list(contribs.columns)
    phrases = _Phrases(reason_map, names, features)
    drivers = []
    for i, (row, count) in enumerate(zip(order.tolist(), raising.tolist(), strict=True)):
        said: list[str] = []
        for j in row[:count]:
            if len(said) == k:
                break
            phrase = phrases.say(j, i)
            if phrase.endswith(": unknown") or any(phrase in p for p in said):
                continue
            # a weaker driver that says more replaces the stronger one it contains
            covered = [n for n, p in enumerate(said) if p in phrase]
            if covered:
                said[covered[0]] = phrase
            else:
                said.append(phrase)
        drivers.append("; ".join(said))
    return pd.Series(drivers, index=contribs.index, name="top_drivers")


class _Phrases:
    """Each feature's phrase parsed once and filled per row, as :func:`describe` fills it
    from the row's values (a phrase it cannot take apart goes through describe itself)."""

    def __init__(self, reason_map: ReasonMap, names: list[str], features: pd.DataFrame) -> None:
        self.reason_map, self.names, self.features = reason_map, names, features
        self.formatter = PhraseFormatter()
        self._fill: dict[int, Callable[[int], str]] = {}
        self._columns: dict[str, list | None] = {}
        self._records: list[dict] | None = None

    def say(self, feature: int, row: int) -> str:
        if feature not in self._fill:
            self._fill[feature] = self._compile(self.names[feature])
        return self._fill[feature](row)

    def column(self, name: str) -> list | None:
        """The column's values as the row records of ``to_dict`` hold them (``None``:
        not a column, so the value is missing)."""
        if name not in self._columns:
            series = self.features.get(name)
            if not isinstance(series, pd.Series):
                self._columns[name] = None
            elif isinstance(series.dtype, np.dtype) and series.dtype.kind in "biuf":
                self._columns[name] = series.to_numpy().tolist()  # native, as records are
            else:
                self._columns[name] = list(series)
        return self._columns[name]

    def _compile(self, feature: str) -> Callable[[int], str]:
        phrase = self.reason_map.features[feature].phrase
        parts = list(string.Formatter().parse(phrase))
        simple = all(
            f is None
            or (f.isidentifier() and "{" not in (spec or "") and conv in (None, "r", "s", "a"))
            for _, f, spec, conv in parts
        )
        fields = [f for _, f, _, _ in parts if f]
        # to_dict boxes the values of object columns its own way: leave those to describe
        plain = simple and self.features.columns.is_unique
        plain = plain and all(
            self.features[f].dtype != object for f in fields if f in self.features
        )
        if not plain:
            return lambda row: describe(self.reason_map, feature, self._record(row))
        unknown = f"{feature.replace('_', ' ')}: unknown"
        columns = [self.column(f) for f in fields]
        # (literal text, then the field's column, if any): a missing column is caught above
        pieces = [
            (text, self.column(f) if f else None, spec or "", conv) for text, f, spec, conv in parts
        ]
        fmt, convert = self.formatter.format_field, self.formatter.convert_field

        def fill(row: int) -> str:
            for column in columns:
                value = None if column is None else column[row]
                if value is None or math.isnan(value):
                    return unknown
            out = []
            for text, column, spec, conv in pieces:
                out.append(text)
                if column is not None:
                    out.append(fmt(convert(column[row], conv), spec))
            return "".join(out)

        return fill

    def _record(self, row: int) -> dict:
        if self._records is None:
            self._records = self.features.to_dict(orient="records")
        return self._records[row]
