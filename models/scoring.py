"""From features and a trained model to the two ranked lists.

* ``at_risk``: customers still *active* (:mod:`features.status`) whose departure the
  retention model expects, ranked by value at risk: the retention call list.
* ``win_back``: *lapsed* customers worth a win-back attempt, ranked by the value they
  used to bring. Their reasons are read from the moment they were due back (their
  last purchase plus their usual gap), not from the silence since: silence is how
  every departure looks, not why it happened.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from xgboost import XGBClassifier

from features.segments import assign_segments
from features.status import ACTIVE, LAPSED
from models.champion import ChurnModel, model_contributions, model_feature_names
from models.explain import REASON_COLUMNS, reason_scores, top_drivers, top_reasons
from models.playbook import NOT_CALLED, Playbook, recommend, recommend_win_back
from models.progress import track
from models.reasons import STATED_REASON_WORDS, ReasonMap, stated_reasons
from models.thresholds import MIN_REASON_CONFIDENCE, MIN_REASON_SCORE, RISK_THRESHOLD
from models.value import expected_value, value_at_risk

# ``map``'s signature: fn and items in, fn's results out in the items' order
ChunkMap = Callable[[Callable[[pd.DataFrame], pd.DataFrame], Iterable[pd.DataFrame]], Iterable[Any]]

AT_RISK = "at_risk"
WIN_BACK = "win_back"

LIST_COLUMNS = (
    "customer_id",
    "list",
    "group",  # contact or holdout (models.campaign); empty off the lists
    "campaign",
    "risk_rank",
    "status",
    "days_since_last_purchase",
    "expected_gap_days",
    "plausible_gap_days",
    "churn_probability",
    "expected_value",
    "value_at_risk",
    "segment",
    "top_reason",
    "reason_confidence",
    "reason_source",  # drivers (the model's SHAP) or stated (the customer's own answer)
    "drivers_reason",  # what the drivers say: top_reason unless the customer said otherwise
    "reason_as_of",
    *REASON_COLUMNS,
    "top_drivers",
    "recommended_action",
    "action_rule",
    "model_version",
    "scored_at",
)


# customers below the risk threshold are not explained and get no retention action
NOT_AT_RISK = "not_at_risk"
NOT_AT_RISK_ACTION = "No retention action: below the risk threshold"


class FeatureMismatchError(ValueError):
    """The model needs features the current data cannot produce."""


def model_features(model: XGBClassifier | ChurnModel) -> list[str]:
    return model_feature_names(model)


def align_features(features: pd.DataFrame, model: XGBClassifier) -> pd.DataFrame:
    """The model's feature columns, in its order; refuse if the data lacks any."""
    needed = model_features(model)
    missing = [f for f in needed if f not in features.columns]
    if missing:
        raise FeatureMismatchError(
            f"the model was trained on features this data cannot produce: {', '.join(missing)} "
            "(a table or optional column it was trained with is missing); retrain on this data"
        )
    return features[needed]


def score_customers(
    model: XGBClassifier,
    features: pd.DataFrame,
    reason_map: ReasonMap,
    playbook: Playbook,
    horizon_days: int,
    model_version: str,
    scored_at: pd.Timestamp,
    min_reason_score: float = MIN_REASON_SCORE,
    min_reason_confidence: float = MIN_REASON_CONFIDENCE,
    risk_threshold: float = RISK_THRESHOLD,
    explain_all: bool = False,
    chunk_rows: int = 50_000,
    status: pd.DataFrame | None = None,
    due_features: pd.DataFrame | None = None,
    min_win_back_value: float = 0.0,
    lapsed_probability: pd.Series | None = None,
    map_chunks: ChunkMap = map,
    stated_words: Mapping[str, str] = STATED_REASON_WORDS,
) -> pd.DataFrame:
    """Every customer scored, valued, given a status, a list and an action, ranked.

    Args:
        status: :func:`features.status.customer_status` of ``features`` (``None``:
            everyone is active).
        due_features: features of the lapsed customers as of the day each was due
            back (:func:`features.build.build_features_as_of`); their reasons, drivers,
            segment and value are read there. ``None``: from ``features``.
        min_win_back_value: a lapsed customer goes on the win-back list only if they
            used to bring more than this over a horizon (the cost of a contact).
        lapsed_probability: churn probability of the lapsed customers
            (:func:`models.win_back.lapsed_churn_probability`); the retention model,
            trained on active customers, is not asked about them. ``None``: the model's.
        map_chunks: how the explanation chunks are done, as ``map`` does them (results
            in order): this process, or processes beside it
            (``pipelines.processes.ordered_map``). The result is the same.
        stated_words: the answers of a cancellation survey as loss reasons
            (:func:`models.reasons.stated_words`), for the ``cancel_reason`` column of
            ``status`` (:func:`features.subscriptions.subscription_status`).

    ``risk_rank`` orders each list (1 = first): the at-risk list by value at risk, the
    win-back list by the value the customer used to bring. Customers the playbook keeps
    off the call list (leave alone, seasonal gap) get no rank.

    SHAP is by far the costliest step (about 1,000x a prediction), so by default only
    customers who can reach a list are explained: the active at or above
    ``risk_threshold`` and the lapsed; the others get ``not_at_risk`` and empty
    reasons. ``explain_all`` explains everyone.

    The explanations stream through ``chunk_rows`` rows at a time, so the contribution
    matrix never exists for more than one chunk; the population steps (VIP and value
    quantiles, ranking) run once on the small per-row output. The result does not
    depend on ``chunk_rows``.
    """
    # the model's columns are taken chunk by chunk: a whole aligned copy would stay
    # alive (~0.3 GB at 1M customers) through every later step
    reason_map.check_covers(align_features(features.head(0), model).columns)
    if status is None:
        status = pd.DataFrame(
            {"status": ACTIVE, "expected_gap_days": np.nan, "plausible_gap_days": np.nan},
            index=features.index,
        )
    if not status.index.equals(features.index):  # a reindex by text id costs ~1 s at 1M
        status = status.reindex(features.index)
    due_dates = status["due_date"] if "due_date" in status else None
    recorded = status["cancel_reason"] if "cancel_reason" in status else None
    status = status[["status", "expected_gap_days", "plausible_gap_days"]]
    lapsed = status["status"].eq(LAPSED).to_numpy()
    # what each customer is explained and valued on: today, or when a lapsed one was due
    basis = features
    if due_features is not None and lapsed.any():
        basis = rows_when_due(features, due_features, lapsed)
    step = max(1, chunk_rows)
    chunks = range(0, max(len(features), 1), step)  # one (empty) chunk for no customers
    probability = (
        pd.concat(
            pd.Series(
                model.predict_proba(align_features(features.iloc[i : i + step], model))[:, 1],
                index=features.index[i : i + step],
            )
            for i in chunks
        )
        .rename("churn_probability")
        .astype(float)
    )
    if lapsed_probability is not None and lapsed.any():
        probability.iloc[lapsed] = lapsed_probability.reindex(features.index[lapsed]).to_numpy()
    explain = (
        np.ones(len(features), dtype=bool)
        if explain_all
        else ((probability.to_numpy() >= risk_threshold) | lapsed)
    )
    chosen = basis.index[explain]
    explain_chunk = partial(
        _explain_chunk,
        model,
        reason_map=reason_map,
        min_reason_score=min_reason_score,
        min_reason_confidence=min_reason_confidence,
    )
    explained = pd.concat(
        track(
            map_chunks(explain_chunk, RowChunks(basis, chosen, step)),
            "explaining customers (SHAP)",
            unit="chunks",
        )
    )
    # the chunks hold the chosen rows in order: placed by position, not looked up by id
    positions = np.flatnonzero(explain)
    explained = (
        explained.set_axis(positions).reindex(np.arange(len(features))).set_axis(features.index)
    )
    # one text dtype whatever each chunk held (an all-unexplained chunk is all-missing)
    explained = explained.astype({"top_reason": "str", "top_drivers": "str"})
    explained = with_stated_reasons(explained, recorded, stated_words, lapsed)
    expected = expected_value(basis, horizon_days)
    scored = pd.concat(
        [
            status,
            features["days_since_last_purchase"],
            probability,
            expected,
            value_at_risk(probability, expected),
            assign_segments(basis),
            explained,
        ],
        axis=1,
    )
    win_back_basis = basis.loc[lapsed]
    del basis  # the lapsed rows are all the rest reads (a whole copy when due_features)
    due = pd.Series(pd.NaT, index=features.index, dtype="datetime64[ns]", name="reason_as_of")
    if due_features is not None and due_dates is not None:
        # by position: status (and so due_dates) is aligned with features above
        where = np.flatnonzero(lapsed)
        due.iloc[where] = due_dates.iloc[where].to_numpy()
    scored["reason_as_of"] = due
    actions = in_order(
        [
            recommend(scored.loc[~lapsed], features.loc[~lapsed], playbook),
            recommend_win_back(scored.loc[lapsed], win_back_basis, playbook),
        ],
        [np.flatnonzero(~lapsed), np.flatnonzero(lapsed)],
        features.index,
    )
    scored = scored.join(actions)
    unexplained = scored["action_rule"].isna()
    scored.loc[unexplained, "action_rule"] = NOT_AT_RISK
    scored.loc[unexplained, "recommended_action"] = NOT_AT_RISK_ACTION
    scored["model_version"] = str(model_version)
    scored["scored_at"] = scored_at
    return rank(scored, risk_threshold, min_win_back_value)


def with_stated_reasons(
    explained: pd.DataFrame,
    recorded: pd.Series | None,
    words: Mapping[str, str],
    lapsed: np.ndarray,
) -> pd.DataFrame:
    """The explanations, with what a lapsed customer said when they cancelled where it
    names a cause.

    A customer who told the business why they left is not second-guessed by their
    drivers: ``top_reason`` is their answer, ``reason_confidence`` 1 and
    ``reason_source`` ``stated``. An answer that names no cause ("other") or that
    ``words`` does not hold leaves the drivers' reason (``reason_source`` ``drivers``).
    ``drivers_reason`` keeps what the drivers say for every explained customer, so the
    reason map can be checked against the customers' own words.
    """
    top = explained["top_reason"]
    source = pd.Series("drivers", index=top.index, dtype="str").where(top.notna())
    explained = explained.assign(drivers_reason=top, reason_source=source)
    if recorded is None:
        return explained
    stated = stated_reasons(recorded, words).to_numpy()
    own = np.flatnonzero(lapsed & pd.notna(stated) & (stated != "unidentified") & top.notna())
    if len(own):
        explained.iloc[own, explained.columns.get_loc("top_reason")] = stated[own]
        explained.iloc[own, explained.columns.get_loc("reason_confidence")] = 1.0
        explained.iloc[own, explained.columns.get_loc("reason_source")] = "stated"
    return explained


def stated_reason_kpis(scored: pd.DataFrame) -> dict[str, float]:
    """How many customers' reason is their own answer, and the share of them whose
    drivers named the same reason (the reason map checked against their words); empty
    when nobody's is."""
    own = scored["reason_source"].eq("stated")
    if not own.any():
        return {}
    agree = scored.loc[own, "drivers_reason"].eq(scored.loc[own, "top_reason"])
    return {"stated_reasons": float(own.sum()), "stated_reason_agreement": float(agree.mean())}


def rows_when_due(
    features: pd.DataFrame, due_features: pd.DataFrame, lapsed: np.ndarray
) -> pd.DataFrame:
    """``features`` with each ``lapsed`` row replaced by that customer's row of
    ``due_features`` (missing there: all missing), in ``features``' order."""
    due = due_features.reindex(features.index[lapsed])
    same = due.columns.equals(features.columns) and due.dtypes.equals(features.dtypes)
    numeric = all(isinstance(d, np.dtype) and d.kind in "biufM" for d in features.dtypes)
    if not (same and numeric):
        basis = pd.concat([features.loc[~lapsed], due])
        return basis.reindex(features.index)
    # column by column into copies, by position: the concatenation and reindex by text
    # id above cost ~2 s of the list stage at 1M customers, the result the same
    where = np.flatnonzero(lapsed)
    columns = {}
    for name in features.columns:
        values = features[name].to_numpy(copy=True)
        values[where] = due[name].to_numpy()
        columns[name] = values
    return pd.DataFrame(columns, index=features.index).set_axis(features.columns, axis=1)


def in_order(
    parts: Sequence[pd.DataFrame], positions: Sequence[np.ndarray], index: pd.Index
) -> pd.DataFrame:
    """``parts`` (the rows at ``positions`` of ``index``, in that order) as one frame
    indexed by ``index``: placed by position, as a reindex by the text ids would (~1 s
    at 1M customers) when each part's index is those ids."""
    frame = pd.concat(parts)
    where = np.concatenate(positions)
    if len(where) != len(index) or not frame.index.equals(index[where]):
        return frame.reindex(index)  # rows missing or repeated: looked up by id
    back = np.empty(len(where), dtype=np.intp)
    back[where] = np.arange(len(where))
    return frame.iloc[back].set_axis(index)


@dataclass(frozen=True)
class RowChunks:
    """The rows ``labels`` of ``frame``, ``size`` at a time, each chunk taken only when
    it is reached; one (empty) chunk for no labels."""

    frame: pd.DataFrame
    labels: pd.Index
    size: int

    def __len__(self) -> int:
        return max(1, math.ceil(len(self.labels) / self.size))

    def __iter__(self) -> Iterator[pd.DataFrame]:
        for start in range(0, len(self) * self.size, self.size):
            yield self.frame.loc[self.labels[start : start + self.size]]


def _explain_chunk(
    model: XGBClassifier,
    rows: pd.DataFrame,
    *,
    reason_map: ReasonMap,
    min_reason_score: float,
    min_reason_confidence: float,
) -> pd.DataFrame:
    """Reason scores, top reason and drivers for these rows (all of their features)."""
    contribs = model_contributions(model, align_features(rows, model))
    reasons = reason_scores(contribs, reason_map)
    parts = [
        top_reasons(reasons, min_reason_score, min_reason_confidence),
        reasons,
        top_drivers(contribs, rows, reason_map),
    ]
    return pd.concat(parts, axis=1)


def rank(
    scored: pd.DataFrame, risk_threshold: float = RISK_THRESHOLD, min_win_back_value: float = 0.0
) -> pd.DataFrame:
    """Sort and number both lists.

    The at-risk list (active customers at or above the risk threshold, not kept off it
    by the playbook) is ordered by value at risk, ties by probability, then id. The
    win-back list (lapsed customers who used to bring more than ``min_win_back_value``
    over a horizon) is ordered by that value, ties by id. The file lists at-risk
    customers first, then win-back, then everyone else.
    """
    frame = scored.rename_axis("customer_id").reset_index()
    lapsed = frame["status"].eq(LAPSED) if "status" in frame else pd.Series(False, frame.index)
    at_risk = (
        ~lapsed
        & ~frame["action_rule"].isin(NOT_CALLED)
        & (frame["churn_probability"] >= risk_threshold)
    )
    win_back = lapsed & (frame["expected_value"] > min_win_back_value)
    frame["list"] = np.select([at_risk, win_back], [AT_RISK, WIN_BACK], "")
    # control groups are assigned once the lists are cut (models.campaign)
    for column in ("group", "campaign"):
        if column not in frame:
            frame[column] = ""
    group = np.select([at_risk, win_back], [0, 1], 2)
    # at-risk by value at risk, win-back by the value they used to bring
    frame["_order"] = np.where(lapsed, frame["expected_value"], frame["value_at_risk"])
    frame["_group"] = group
    if _ascending(frame["customer_id"]):
        # the features' usual order, by id: a row's position is then its id's place, and
        # numpy sorts the numbers (pandas' sort of 1M text ids and floats takes ~1.3 s);
        # descending as negated, missing last either way, ties in order (stable)
        order = np.lexsort(
            (
                np.arange(len(frame)),
                -frame["churn_probability"].to_numpy(dtype=float),
                -frame["_order"].to_numpy(dtype=float),
                group,
            )
        )
        ordered = frame.iloc[order]
    else:
        ordered = frame.sort_values(
            ["_group", "_order", "churn_probability", "customer_id"],
            ascending=[True, False, False, True],
            kind="stable",
        )
    ordered["risk_rank"] = pd.array([pd.NA] * len(ordered), dtype="Int64")
    for name in (AT_RISK, WIN_BACK):
        on = ordered["list"].eq(name).to_numpy()
        ordered.loc[on, "risk_rank"] = range(1, int(on.sum()) + 1)
    return ordered[list(LIST_COLUMNS)].reset_index(drop=True)


def _ascending(values: pd.Series) -> bool:
    """Whether ``values`` strictly ascend, as sorting them would order them."""
    if len(values) < 2:
        return True
    try:
        later = np.asarray(values.array[1:] > values.array[:-1], dtype=bool)
    except (TypeError, ValueError):  # missing or mixed values: not known to ascend
        return False
    return bool(later.all())


def at_risk_list(
    scored: pd.DataFrame, threshold: float = RISK_THRESHOLD, top: int | None = None
) -> pd.DataFrame:
    """The retention call list: ranked active customers at or above the threshold."""
    on = scored["list"].eq(AT_RISK) if "list" in scored else scored["risk_rank"].notna()
    listed = scored.loc[
        on & scored["risk_rank"].notna() & (scored["churn_probability"] >= threshold)
    ]
    return listed.head(top) if top is not None else listed


def win_back_list(scored: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """The win-back list: ranked lapsed customers, most valuable first."""
    listed = scored.loc[scored["list"].eq(WIN_BACK)]
    return listed.head(top) if top is not None else listed
