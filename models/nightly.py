"""One scoring night as pure functions: from the night's facts (:mod:`models.night_facts`:
features, status, due-day features and KPI counts, read batch by batch) and the champion
model to every customer's score, both ranked lists (with their control groups), the KPIs
and the drift against training.

No I/O here: the flow (``pipelines.score_flow``) reads the tables, the model and the
list history, runs :func:`score_night` as a task and writes what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.kpis import kpis_from_counts, risk_kpis
from features.status import LAPSED, customer_status
from features.usage import kinds_in_features
from models.campaign import CONTACT, assign_groups, campaign_id
from models.champion import model_contributions
from models.monitoring import drift
from models.night_facts import NightFacts, dated_status
from models.playbook import Playbook
from models.progress import announce
from models.reasons import REASONS, ReasonMap, stated_words, unknown_stated_words
from models.scoring import (
    ChunkMap,
    align_features,
    at_risk_list,
    model_features,
    score_customers,
    stated_reason_kpis,
    win_back_list,
)
from models.uplift import UpliftModel, order_by_saved_value
from models.win_back import lapsed_churn_probability


@dataclass(frozen=True)
class Champion:
    """The served model, its registry version and its training run's reference profile."""

    model: Any  # a models.champion.ChurnModel, or an XGBClassifier of an older version
    version: str
    profile: dict = field(repr=False)

    def usage_kinds(self, kinds: pd.DataFrame | pd.Series | None) -> tuple[str, ...]:
        """The interaction kinds the model was trained on, found again by feature name
        among ``kinds`` (the interactions, or their rows per kind)."""
        return kinds_in_features(model_features(self.model), kinds)

    @property
    def return_rates(self) -> list[float]:
        """How often lapsed customers came back, per overdue band (zeros if not logged)."""
        return self.profile.get("win_back_return_rates", [0.0, 0.0, 0.0])


@dataclass(frozen=True)
class NightOptions:
    """The settings values a night reads (``pipelines.settings.ScoreSettings`` holds the
    defaults; ``pipelines.score_flow.night_options`` copies them here)."""

    horizon_days: int
    lookback_days: int
    status_tail: float
    risk_threshold: float
    min_reason_score: float
    min_reason_confidence: float
    explain_all: bool
    explain_everyone_up_to: int
    contact_cost: float
    list_capacity: int | None
    win_back_top: int | None
    campaign: str | None
    campaign_period: str
    holdout_share: float
    holdout_risk_bands: tuple[float, ...]
    cancel_reasons: Mapping[str, str]  # a business's cancellation answers -> loss reasons


@dataclass(frozen=True)
class Night:
    """What one night produced: every customer scored, both lists and the KPIs."""

    cutoff: pd.Timestamp
    features: pd.DataFrame
    scored: pd.DataFrame  # every customer, ranked, with list, group and campaign
    at_risk: pd.DataFrame
    win_back: pd.DataFrame
    lapsed: pd.Series  # per customer of ``features``
    kpis: dict[str, float]

    @property
    def reason_mix(self) -> pd.Series:
        """Share of each reason among the at-risk list's top reasons (every reason)."""
        mix = self.at_risk["top_reason"].value_counts(normalize=True)
        return mix.reindex(list(REASONS), fill_value=0.0)

    @property
    def called(self) -> tuple[np.ndarray, np.ndarray]:
        """Which rows of the at-risk and of the win-back list are on the call sheet (the
        contact group of both lists)."""
        return (
            self.at_risk["group"].eq(CONTACT).to_numpy(bool),
            self.win_back["group"].eq(CONTACT).to_numpy(bool),
        )

    @property
    def active_probability(self) -> pd.Series:
        """The active customers' churn probability (the model was trained on active
        customers: drift is judged on the same population); one column copied, not the
        scored table's ~35."""
        return self.scored.loc[self.scored["status"].ne(LAPSED).to_numpy(), "churn_probability"]


def night_status(
    features: pd.DataFrame,
    subscriptions: pd.DataFrame | None,
    cutoff: pd.Timestamp,
    status_tail: float,
) -> pd.DataFrame:
    """Each customer's status and the day their reasons are read as of (``due_date``)."""
    return dated_status(customer_status(features, status_tail), features, subscriptions, cutoff)


def score_night(
    facts: NightFacts,
    champion: Champion,
    reason_map: ReasonMap,
    playbook: Playbook,
    cutoff: pd.Timestamp,
    scored_at: pd.Timestamp,
    options: NightOptions,
    earlier: pd.DataFrame | None = None,
    uplift: UpliftModel | None = None,
    map_chunks: ChunkMap = map,
) -> Night:
    """Score, explain, list and group every customer of ``facts`` (read at ``cutoff``).

    Args:
        earlier: the list history before ``cutoff`` (any campaign); customers listed
            earlier in this night's campaign or within the horizon keep their group.
        uplift: when given (it beat risk ranking on matured campaigns), the at-risk list
            is ordered by expected saved value (uplift x value - contact cost) before it
            is cut to capacity; else by value at risk.
        map_chunks: how the explanation chunks are done (see
            :func:`models.scoring.score_customers`).

    Raises:
        FeatureMismatchError: the model needs features these tables cannot produce.
    """
    features, status, due_features = facts.features, facts.status, facts.due_features
    words = stated_words(options.cancel_reasons)
    if "cancel_reason" in status:
        announce_stated_answers(status.loc[status["status"].eq(LAPSED), "cancel_reason"], words)
    lapsed = status["status"].eq(LAPSED)
    reason_map.check_covers(model_features(champion.model))
    scored = score_customers(
        champion.model,
        features,
        reason_map,
        playbook,
        options.horizon_days,
        champion.version,
        scored_at,
        min_reason_score=options.min_reason_score,
        min_reason_confidence=options.min_reason_confidence,
        risk_threshold=options.risk_threshold,
        explain_all=options.explain_all or len(features) <= options.explain_everyone_up_to,
        status=status,
        due_features=due_features,
        min_win_back_value=options.contact_cost,
        lapsed_probability=lapsed_churn_probability(
            status.loc[lapsed],
            features.loc[lapsed, "days_since_last_purchase"],
            champion.return_rates,
        ),
        map_chunks=map_chunks,
        stated_words=words,
    )
    scored.insert(1, "score_date", cutoff)
    listed = at_risk_list(scored, options.risk_threshold)
    if uplift is not None:
        listed = order_by_saved_value(listed, uplift, options.contact_cost)
    if options.list_capacity is not None:
        listed = listed.head(options.list_capacity)
    win_back = win_back_list(scored, options.win_back_top)
    campaign = options.campaign or campaign_id(cutoff, options.campaign_period)
    listed, win_back, scored = with_groups(
        listed,
        win_back,
        scored,
        campaign,
        options.holdout_share,
        options.holdout_risk_bands,
        earlier,
        since=cutoff - pd.Timedelta(days=options.horizon_days),
    )
    kpis = (
        kpis_from_counts(facts.retention, options.horizon_days)
        | risk_kpis(scored, listed)
        | stated_reason_kpis(scored)
    )
    return Night(cutoff, features, scored, listed, win_back, lapsed, kpis)


def announce_stated_answers(recorded: pd.Series, words: Mapping[str, str]) -> None:
    """One log line on the lapsed customers' recorded cancellation answers: how many,
    and those no loss reason is known for (the settings' ``cancel_reasons`` maps them)."""
    given = int(recorded.notna().sum())
    if not given:
        return
    unknown = unknown_stated_words(recorded, words)
    line = f"cancellation reasons recorded for {given:,} lapsed customers"
    if len(unknown):
        shown = ", ".join(f"{word!r} ({count:,})" for word, count in unknown.head(5).items())
        line += (
            f"; {int(unknown.sum()):,} gave answers no loss reason is known for: {shown}"
            "; map them with cancel_reasons: in the settings file"
        )
    announce(line)


def with_groups(
    listed: pd.DataFrame,
    win_back: pd.DataFrame,
    scored: pd.DataFrame,
    campaign: str,
    holdout_share: float,
    bands: Sequence[float],
    earlier: pd.DataFrame | None = None,
    since: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Both lists and the scores with ``campaign`` and ``group``.

    Customers listed earlier (``earlier``, the list history) in the same campaign, or on
    or after ``since`` (the start of the horizon still being measured), keep their group:
    a held-out customer is not called while their outcome is being measured.
    """
    if earlier is not None and len(earlier):
        same = earlier["campaign"].astype(str).eq(campaign)
        if since is not None:
            same |= pd.to_datetime(earlier["score_date"]) >= since
        earlier = earlier.loc[same]
    both = assign_groups(
        pd.concat([listed, win_back]),
        campaign,
        holdout_share,
        earlier=earlier if earlier is not None and len(earlier) else None,
        bands=bands,
    )
    listed = both.iloc[: len(listed)]
    win_back = both.iloc[len(listed) :]
    rows = _rows_in(scored, both)
    if rows is None:  # not rows of ``scored``: looked up by id
        groups = both.set_index(both["customer_id"].astype(str))[["campaign", "group"]]
        ids = scored["customer_id"].astype(str)
        rows = groups.index.get_indexer(ids)
        both = groups
    # what a lookup by id gives (missing: ""), taken by position
    scored = scored.assign(
        campaign=_taken(both["campaign"], rows, scored.index),
        group=_taken(both["group"], rows, scored.index),
    )
    return listed, win_back, scored


def _rows_in(scored: pd.DataFrame, listed: pd.DataFrame) -> np.ndarray | None:
    """For each row of ``scored``, the position of its row in ``listed`` (-1: none), when
    ``listed``'s rows are rows of ``scored`` (its labels, a range, and the same ids)."""
    if not isinstance(scored.index, pd.RangeIndex) or not scored.index.equals(
        pd.RangeIndex(len(scored))
    ):
        return None
    labels = listed.index.to_numpy()
    if labels.dtype.kind not in "iu" or not listed.index.is_unique:
        return None
    if len(labels) and (labels.min() < 0 or labels.max() >= len(scored)):
        return None
    same = scored["customer_id"].to_numpy()[labels] == listed["customer_id"].to_numpy()
    if not bool(np.asarray(same, dtype=bool).all()):
        return None
    rows = np.full(len(scored), -1, dtype=np.intp)
    rows[labels] = np.arange(len(labels))
    return rows


def _taken(values: pd.Series, rows: np.ndarray, index: pd.Index) -> pd.Series:
    # as Series.map with a Series does it: a take with missing for -1
    array = values.to_numpy() if isinstance(values.dtype, np.dtype) else values.array
    taken = pd.Series(pd.api.extensions.take(array, rows, allow_fill=True), index=index)
    return taken.fillna("")


def report_drivers(night: Night, model: Any, customers: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The features and per-feature contributions of the first ``customers`` at risk."""
    top = night.features.loc[night.at_risk["customer_id"].head(customers)]
    return top, model_contributions(model, align_features(top, model))


@dataclass(frozen=True)
class Drift:
    """PSI of each feature (and of the score, as ``score``) against training."""

    psi: pd.Series
    drifting: list[str]  # above the threshold, sorted


def score_drift(night: Night, profile: dict, threshold: float) -> Drift:
    """The active customers' features and scores against the training reference."""
    lapsed = night.lapsed
    if not lapsed.index.equals(night.features.index):
        lapsed = lapsed.reindex(night.features.index, fill_value=False)
    psi = drift(profile["features"], night.features, rows=~lapsed.to_numpy(bool))
    scores = night.active_probability.to_frame("score")
    psi["score"] = drift({"score": profile["score"]}, scores)["score"]
    return Drift(psi, sorted(psi.index[psi > threshold]))
