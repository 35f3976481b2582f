"""Recommended action per customer: the playbook table plus its two override rules.

1. Do not fan the fire: an open grievance gets an apology and compensation first.
2. Leave well alone: a valuable customer with no sign of decline is not called.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from models.reasons import REASONS

GRIEVANCE = "grievance"
LEAVE_ALONE = "leave_alone"
SEASONAL_GAP = "seasonal_gap"
# rules that keep a customer off the call list
NOT_CALLED = (LEAVE_ALONE, SEASONAL_GAP)
DEFAULT_WIN_BACK_ACTION = "Win-back contact: invite them back and ask why they stopped"
DEFAULT_SEASONAL_GAP_ACTION = (
    "Off-season: this gap is normal for them; reach out just before their season"
)


class PlaybookError(ValueError):
    """The playbook file is malformed."""


@dataclass(frozen=True)
class Playbook:
    actions: dict[str, str]
    grievance_action: str
    min_unresolved_30d: float
    max_satisfaction_last: float
    leave_alone_action: str
    min_expected_value_quantile: float
    max_churn_probability: float
    min_spend_change_90d: float
    max_overdue_ratio: float
    seasonal_gap_action: str = DEFAULT_SEASONAL_GAP_ACTION
    seasonal_gap_slack: float = 1.1
    # per reason, for lapsed customers; empty in older playbooks (then DEFAULT_WIN_BACK)
    win_back_actions: dict[str, str] | None = None


def parse_playbook(data: object, source: str) -> Playbook:
    """Validate a parsed playbook document."""
    try:
        actions = dict(data["actions"])  # type: ignore[index]
        grievance = data["overrides"][GRIEVANCE]  # type: ignore[index]
        alone = data["overrides"][LEAVE_ALONE]  # type: ignore[index]
        seasonal = data["overrides"].get(SEASONAL_GAP) or {}  # type: ignore[index]
        win_back = data.get("win_back")  # type: ignore[union-attr]
        for section, table in (("actions", actions), ("win_back", win_back or {})):
            if section == "win_back" and win_back is None:
                continue  # optional in older playbooks
            missing = [r for r in REASONS if r not in table]
            unknown = [r for r in table if r not in REASONS]
            if missing or unknown:
                raise PlaybookError(
                    f"{source}: {section} must name each reason once; "
                    f"missing {missing}, unknown {unknown}"
                )
        return Playbook(
            actions={k: str(v) for k, v in actions.items()},
            grievance_action=str(grievance["action"]),
            min_unresolved_30d=float(grievance["min_unresolved_30d"]),
            max_satisfaction_last=float(grievance["max_satisfaction_last"]),
            leave_alone_action=str(alone["action"]),
            min_expected_value_quantile=float(alone["min_expected_value_quantile"]),
            max_churn_probability=float(alone["max_churn_probability"]),
            min_spend_change_90d=float(alone["min_spend_change_90d"]),
            max_overdue_ratio=float(alone["max_overdue_ratio"]),
            # optional in older playbooks: defaults keep them loading
            seasonal_gap_action=str(seasonal.get("action", DEFAULT_SEASONAL_GAP_ACTION)),
            seasonal_gap_slack=float(seasonal.get("gap_slack", 1.1)),
            win_back_actions=None if win_back is None else {k: str(v) for k, v in win_back.items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, PlaybookError):
            raise
        raise PlaybookError(f"{source}: malformed playbook ({exc!r})") from exc


def load_playbook(path: str | Path | None = None) -> Playbook:
    """Load the playbook (the packaged default if ``path`` is None)."""
    if path is None:
        text = resources.files("models").joinpath("config/playbook.yaml").read_text()
        source = "models/config/playbook.yaml"
    else:
        text, source = Path(path).read_text(), str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{source}: not valid YAML: {exc}") from exc
    return parse_playbook(data, source)


def _grievance(features: pd.DataFrame, playbook: Playbook) -> pd.Series:
    """An open grievance: an unresolved issue lately, or a bad latest survey."""
    nan = pd.Series(np.nan, index=features.index)
    return (features.get("unresolved_30d", nan) >= playbook.min_unresolved_30d) | (
        features.get("satisfaction_last", nan) <= playbook.max_satisfaction_last
    )


def recommend_win_back(
    scored: pd.DataFrame, features: pd.DataFrame, playbook: Playbook
) -> pd.DataFrame:
    """Win-back action per lapsed customer: the win-back table by reason, except that
    an open grievance when they went quiet gets the apology first (do not fan the fire).

    Args:
        scored: indexed by customer, with ``top_reason``.
        features: the same customers' features as of the day they were due back.
        playbook: the loaded playbook.
    """
    f = features.reindex(scored.index)
    rule = scored["top_reason"].astype(object).copy()
    rule[_grievance(f, playbook).to_numpy(bool)] = GRIEVANCE
    table = playbook.win_back_actions or {r: DEFAULT_WIN_BACK_ACTION for r in REASONS}
    texts = {**table, GRIEVANCE: playbook.grievance_action}
    return pd.DataFrame(
        {"recommended_action": rule.map(texts), "action_rule": rule}, index=scored.index
    )


def recommend(scored: pd.DataFrame, features: pd.DataFrame, playbook: Playbook) -> pd.DataFrame:
    """Action per customer.

    Args:
        scored: indexed by customer, with ``top_reason``, ``churn_probability`` and
            ``expected_value``.
        features: the same customers' features (grievance and decline signals).
        playbook: the loaded playbook.

    Returns:
        Frame with ``recommended_action`` and ``action_rule`` (the reason key, or
        ``grievance`` / ``leave_alone`` / ``seasonal_gap`` when an override fired).

    A seasonal customer whose only risk is the gap itself (top reason ``unidentified``)
    and who is still inside their longest normal gap is not at risk: they are waiting
    for their season.
    """
    f = features.reindex(scored.index)
    nan = pd.Series(np.nan, index=f.index)
    grievance = _grievance(f, playbook)
    valuable = scored["expected_value"] >= scored["expected_value"].quantile(
        playbook.min_expected_value_quantile
    )
    no_decline = (
        (scored["churn_probability"] <= playbook.max_churn_probability)
        & (f["spend_change_90d"] >= playbook.min_spend_change_90d)
        & ~(f["overdue_ratio"] > playbook.max_overdue_ratio)
    )
    leave_alone = valuable & no_decline & ~grievance
    segment = scored["segment"] if "segment" in scored else pd.Series("", index=f.index)
    within_normal_gap = f.get("days_since_last_purchase", nan) <= (
        f.get("max_gap_days", nan) * playbook.seasonal_gap_slack
    )
    seasonal_gap = (
        segment.eq("seasonal").fillna(False)
        & scored["top_reason"].eq("unidentified").fillna(False)
        & within_normal_gap
        & ~grievance
    )

    rule = scored["top_reason"].astype(object).copy()
    rule[seasonal_gap] = SEASONAL_GAP
    rule[leave_alone] = LEAVE_ALONE
    rule[grievance] = GRIEVANCE
    texts = {
        **playbook.actions,
        GRIEVANCE: playbook.grievance_action,
        LEAVE_ALONE: playbook.leave_alone_action,
        SEASONAL_GAP: playbook.seasonal_gap_action,
    }
    return pd.DataFrame(
        {"recommended_action": rule.map(texts), "action_rule": rule}, index=scored.index
    )
