"""Evaluation figures logged with every training run (matplotlib, no file I/O here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Figures are built without pyplot, so importing this module picks no GUI backend and
# changes no global state: flows run on servers and in CI, notebooks keep their own backend.
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_curve

from models.metrics import lift_curve


def roc_figure(y_true: np.ndarray, y_score: np.ndarray, auc: float) -> Figure:
    fpr, tpr, _ = roc_curve(y_true, y_score)
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot(fpr, tpr, label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, holdout cutoff")
    ax.legend(loc="lower right")
    return fig


def lift_figure(y_true: np.ndarray, y_score: np.ndarray) -> Figure:
    curve = lift_curve(y_true, y_score)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.bar(curve["decile"], curve["lift"])
    ax.axhline(1.0, color="grey", linestyle="--")
    ax.set(
        xlabel="risk decile (1 = highest)",
        ylabel="lift over base churn rate",
        title="Lift by decile, holdout cutoff",
    )
    return fig


def calibration_figure(y_true: np.ndarray, y_score: np.ndarray) -> Figure:
    observed, predicted = calibration_curve(y_true, y_score, n_bins=10, strategy="quantile")
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot(predicted, observed, "o-", label="model")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.set(
        xlabel="predicted churn probability",
        ylabel="observed churn rate",
        title="Calibration, holdout cutoff",
    )
    ax.legend(loc="upper left")
    return fig


def shap_summary_figure(contribs: pd.DataFrame, features: pd.DataFrame) -> Figure:
    import matplotlib.pyplot as plt  # shap draws on pyplot's current figure
    import shap  # heavy import, only when plotting

    shap.summary_plot(contribs.to_numpy(), features, show=False, max_display=20)
    fig = plt.gcf()
    fig.suptitle("SHAP summary, holdout cutoff")
    return fig
