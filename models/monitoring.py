"""Drift between the data a model was trained on and the data it scores tonight.

Population stability index (PSI) per feature over the training deciles:
``sum((p_now - p_ref) * ln(p_now / p_ref))``. Rules of thumb: < 0.1 stable, 0.1-0.2
moderate, > 0.2 a real shift worth a look.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MISSING = "missing"
EPSILON = 1e-4  # floor for empty bins, so one empty bin does not make PSI infinite


def reference_profile(frame: pd.DataFrame, bins: int = 10) -> dict[str, dict]:
    """Bin edges (training quantiles) and the training share per bin, per column.

    Missing values get their own bin: a feature going missing is drift too.
    """
    profile = {}
    for column in frame.columns:
        values = _floats(frame[column])
        present = values[~np.isnan(values)]
        edges: list[float] = (
            np.unique(np.quantile(present, np.linspace(0, 1, bins + 1))).tolist()
            if len(present)
            else []
        )
        profile[column] = {
            "edges": [float(e) for e in edges],
            "shares": _shares(values, list(edges)),
        }
    return profile


def _shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Shares per inner bin (open-ended at both ends), then the missing share last."""
    n = len(values)
    if n == 0:
        return []
    missing = np.isnan(values)
    inner = edges[1:-1]
    counts = np.bincount(
        np.searchsorted(inner, values[~missing], side="right"), minlength=len(inner) + 1
    )
    return [float(c) / n for c in counts] + [float(missing.sum()) / n]


def _floats(column: pd.Series) -> np.ndarray:
    """A column as floats, missing as NaN. Plain arrays, not Series: a Series of a million
    text-indexed rows rebuilds its index's hash table in ``dropna`` (seconds per column)."""
    return column.to_numpy(float, na_value=np.nan)


def _column(frame: pd.DataFrame, column: str, rows: np.ndarray | None) -> np.ndarray:
    values = _floats(frame[column])
    return values if rows is None else values[rows]


def psi(reference_shares: list[float], current_shares: list[float]) -> float:
    """Population stability index of two binned distributions."""
    ref = np.maximum(np.asarray(reference_shares, float), EPSILON)
    cur = np.maximum(np.asarray(current_shares, float), EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def drift(
    profile: dict[str, dict], frame: pd.DataFrame, rows: np.ndarray | None = None
) -> pd.Series:
    """PSI per column of ``frame`` (its ``rows``, a boolean mask, if given) against its
    training profile (columns in both); a column at a time, never a copy of the frame."""
    values = {
        column: psi(ref["shares"], _shares(_column(frame, column, rows), ref["edges"]))
        for column, ref in profile.items()
        if column in frame.columns and ref["shares"]
    }
    return pd.Series(values, name="psi", dtype=float)
