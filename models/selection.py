"""Select, then refit: candidates compete on validation rows only; the winner is refit
on the latest labelled windows and serves.

The validation cutoff's customers are split in two halves by a hash of their id: trees
early-stop on one half, and every candidate is ranked (and calibrated) on the other,
so XGBoost's early stopping cannot flatter it against the classical models. The holdout
cutoff only reports: it never selects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.champion import BLEND, ChurnModel, blend_of
from models.metrics import evaluate
from models.progress import announce, track

SELECT_BY = "roc_auc"


@dataclass(frozen=True)
class Selection:
    """What was measured: every candidate on the same rows, and the winner."""

    winner: str
    models: dict[str, ChurnModel]
    leaderboard: pd.DataFrame  # one row per candidate, indexed by name

    @property
    def model(self) -> ChurnModel:
        return self.models[self.winner]


def validation_halves(index: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(stop, select) masks: a stable split of the validation customers by id hash."""
    hashed = pd.util.hash_pandas_object(pd.Series(index.astype(str)), index=False).to_numpy()
    select = (hashed % 2).astype(bool)
    return ~select, select


def select_champion(
    x_train: pd.DataFrame,
    y_train: pd.Series,
    x_valid: pd.DataFrame,
    y_valid: pd.Series,
    x_hold: pd.DataFrame,
    y_hold: pd.Series,
    candidates: Sequence[str],
    xgb_params: dict | None = None,
    horizon_days: int = 90,
    label_days: int = 180,
    fit_trees: Callable | None = None,
    blend: bool = True,
) -> Selection:
    """Fit every candidate on the training cutoffs and rank them on validation rows.

    With ``blend`` (and two or more candidates), their equal-weight blend competes too.

    Returns:
        The leaderboard (validation and holdout metrics of every candidate, calibrated
        on the validation half it was ranked on) and the fitted, calibrated models.
    """
    stop, select = validation_halves(x_valid.index)
    if y_valid[select].nunique() < 2 or y_valid[stop].nunique() < 2:
        stop = select = np.ones(len(x_valid), dtype=bool)  # too few rows to split
    models: dict[str, ChurnModel] = {}
    rows = {}
    names = list(candidates) + ([BLEND] if blend and len(candidates) > 1 else [])
    for number, name in enumerate(track(names, "selection", unit="candidates"), 1):
        announce(f"candidate {number} of {len(names)}: {name}")
        if name == BLEND:
            model = blend_of([models[c] for c in candidates], x_train)
        else:
            model = ChurnModel(name, xgb_params, horizon_days, label_days)
            model.fit(x_train, y_train, x_valid[stop], y_valid[stop], fit_trees=fit_trees)
        ranked_on = model.raw_probability(x_valid[select])
        valid = evaluate(y_valid[select], np.clip(ranked_on, 0.0, 1.0))
        model.calibrate(x_valid[select], y_valid[select])
        hold = evaluate(y_hold, model.predict_proba(x_hold)[:, 1])
        models[name] = model
        rows[name] = {
            **{f"validation_{k}": v for k, v in valid.items() if k != "n"},
            **{f"holdout_{k}": v for k, v in hold.items() if k != "n"},
            "trees": model.n_trees,
        }
    board = pd.DataFrame.from_dict(rows, orient="index").rename_axis("candidate")
    winner = str(board[f"validation_{SELECT_BY}"].fillna(-np.inf).idxmax())
    board["serves"] = board.index == winner
    return Selection(winner, models, board)


def refit(
    selection: Selection,
    x: pd.DataFrame,
    y: pd.Series,
    fit_trees: Callable | None = None,
) -> ChurnModel:
    """The winner's configuration fitted on ``(x, y)`` (the latest labelled windows),
    with the selected number of trees and the selection model's calibration."""
    chosen = selection.model
    if chosen.kind == BLEND:
        parts = [_unfitted_copy(part) for part in chosen.components_]
        served = ChurnModel(BLEND, None, chosen.horizon_days, chosen.label_days)
        served.components_ = parts
    else:
        served = _unfitted_copy(chosen)
    announce(f"refit: {chosen.kind} on {len(x):,} rows")
    served.fit(x, y, fit_trees=fit_trees)
    served.calibrator_ = chosen.calibrator_
    return served


def _unfitted_copy(model: ChurnModel) -> ChurnModel:
    """The same configuration, with the selected number of trees and no early stopping."""
    params = dict(model.xgb_params or {})
    if model.n_trees is not None:
        params["n_estimators"] = model.n_trees
    return ChurnModel(model.kind, params, model.horizon_days, model.label_days)
