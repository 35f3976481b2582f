"""Recommended action per customer: the playbook table plus its override rules.

Checked in this order, the first that holds wins:

1. Do not fan the fire: an open grievance gets an apology and compensation first.
2. Renewal soon: a subscriber whose plan renews soon while their usage falls gets a
   call before the renewal, the one date they decide on (valuable or not: falling usage
   is a sign of decline, so "leave well alone" does not hold for them).
3. Leave well alone: a valuable customer with no sign of decline is not called.
4. Seasonal gap: a seasonal customer inside their normal off-season gap is not called.

A reason's action that assumes an open issue ("fix the open issue") is replaced by the
playbook's ``no_open_issue`` text when the customer has none: "no contact for 40 days"
asks for attention, not for a fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from features.kpis import (
    GRIEVANCE_RULE,
    LEAVE_ALONE_RULE,
    RENEWAL_SOON_RULE,
    SEASONAL_GAP_RULE,
)
from features.usage import usage_trend
from models.reasons import REASONS

# the override rules' action_rule values, declared once in features.kpis
GRIEVANCE = GRIEVANCE_RULE
LEAVE_ALONE = LEAVE_ALONE_RULE
SEASONAL_GAP = SEASONAL_GAP_RULE
RENEWAL_SOON = RENEWAL_SOON_RULE
# rules that keep a customer off the call list
NOT_CALLED = (LEAVE_ALONE, SEASONAL_GAP)
DEFAULT_WIN_BACK_ACTION = "Win-back contact: invite them back and ask why they stopped"
DEFAULT_SEASONAL_GAP_ACTION = (
    "Off-season: this gap is normal for them; reach out just before their season"
)
DEFAULT_RENEWAL_SOON_ACTION = (
    "Call before the renewal: ask how they use it, show what they are missing, agree the renewal"
)
# what makes an issue open: an unresolved one in 90 days (when resolution is recorded),
# else any ticket or complaint raised lately
_RAISED = ("tickets_90d", "complaints_90d", "price_complaints_180d")


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
    renewal_soon_action: str = DEFAULT_RENEWAL_SOON_ACTION
    max_days_to_renewal: float = 60.0
    max_usage_trend: float = -0.25
    renewal_annual_only: bool = True
    # per reason, the text when no issue is open (at risk / win-back); None: the table's
    no_open_issue_actions: dict[str, str] | None = None
    no_open_issue_win_back: dict[str, str] | None = None


def parse_playbook(data: object, source: str) -> Playbook:
    """Validate a parsed playbook document."""
    try:
        actions = dict(data["actions"])  # type: ignore[index]
        grievance = data["overrides"][GRIEVANCE]  # type: ignore[index]
        alone = data["overrides"][LEAVE_ALONE]  # type: ignore[index]
        seasonal = data["overrides"].get(SEASONAL_GAP) or {}  # type: ignore[index]
        renewal = data["overrides"].get(RENEWAL_SOON) or {}  # type: ignore[index]
        if not isinstance(renewal.get("annual_only", True), bool):
            raise PlaybookError(f"{source}: overrides.renewal_soon.annual_only must be true/false")
        win_back = data.get("win_back")  # type: ignore[attr-defined]
        no_issue = data.get("no_open_issue") or {}  # type: ignore[attr-defined]
        for section in ("actions", "win_back"):
            unknown = [r for r in no_issue.get(section) or {} if r not in REASONS]
            if unknown:
                raise PlaybookError(
                    f"{source}: no_open_issue.{section} names unknown reasons {unknown}"
                )
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
            renewal_soon_action=str(renewal.get("action", DEFAULT_RENEWAL_SOON_ACTION)),
            max_days_to_renewal=float(renewal.get("max_days_to_renewal", 60)),
            max_usage_trend=float(renewal.get("max_usage_trend", -0.25)),
            renewal_annual_only=renewal.get("annual_only", True),
            no_open_issue_actions=_texts(no_issue.get("actions")),
            no_open_issue_win_back=_texts(no_issue.get("win_back")),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, PlaybookError):
            raise
        raise PlaybookError(f"{source}: malformed playbook ({exc!r})") from exc


def _texts(table: dict | None) -> dict[str, str] | None:
    return None if table is None else {str(k): str(v) for k, v in table.items()}


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


def _open_issue(features: pd.DataFrame) -> pd.Series:
    """An issue is open: one unresolved in 90 days where resolution is recorded, else a
    ticket or complaint raised lately; nothing known means none."""
    if "unresolved_90d" in features:
        return features["unresolved_90d"].fillna(0.0) >= 1
    raised = pd.Series(0.0, index=features.index)
    for name in _RAISED:
        if name in features:
            raised += features[name].fillna(0.0)
    return raised >= 1


def _renewal_soon(features: pd.DataFrame, playbook: Playbook) -> pd.Series:
    """A running subscription renews within ``max_days_to_renewal`` days (an annual plan
    where ``renewal_annual_only``) and usage is down ``max_usage_trend`` or more."""
    nan = pd.Series(np.nan, index=features.index)
    soon = features.get("days_to_renewal", nan) <= playbook.max_days_to_renewal
    if playbook.renewal_annual_only:
        soon &= features.get("on_annual_plan", nan).eq(1.0)
    return soon & (usage_trend(features) <= playbook.max_usage_trend)


def _actions(
    rule: pd.Series, texts: dict[str, str], no_issue: dict[str, str] | None, open_issue: pd.Series
) -> pd.Series:
    """Each rule's text; a reason listed in ``no_issue`` takes that text without an issue."""
    actions = rule.map(texts)
    if no_issue:
        plain = rule.isin(list(no_issue)) & ~open_issue.to_numpy(bool)
        actions[plain] = rule[plain].map(no_issue)
    return actions


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
    f = features if features.index.equals(scored.index) else features.reindex(scored.index)
    rule = scored["top_reason"].astype(object).copy()
    rule[_grievance(f, playbook).to_numpy(bool)] = GRIEVANCE
    table = playbook.win_back_actions or {r: DEFAULT_WIN_BACK_ACTION for r in REASONS}
    texts = {**table, GRIEVANCE: playbook.grievance_action}
    actions = _actions(rule, texts, playbook.no_open_issue_win_back, _open_issue(f))
    return pd.DataFrame({"recommended_action": actions, "action_rule": rule}, index=scored.index)


def recommend(scored: pd.DataFrame, features: pd.DataFrame, playbook: Playbook) -> pd.DataFrame:
    """Action per customer.

    Args:
        scored: indexed by customer, with ``top_reason``, ``churn_probability`` and
            ``expected_value``.
        features: the same customers' features (grievance and decline signals).
        playbook: the loaded playbook.

    Returns:
        Frame with ``recommended_action`` and ``action_rule`` (the reason key, or
        ``grievance`` / ``renewal_soon`` / ``leave_alone`` / ``seasonal_gap`` when an
        override fired, in that order of precedence).

    A seasonal customer whose only risk is the gap itself (top reason ``unidentified``)
    and who is still inside their longest normal gap is not at risk: they are waiting
    for their season.
    """
    f = features if features.index.equals(scored.index) else features.reindex(scored.index)
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

    renewal_soon = _renewal_soon(f, playbook)

    # later assignments win: the reverse of the order of precedence
    rule = scored["top_reason"].astype(object).copy()
    rule[seasonal_gap] = SEASONAL_GAP
    rule[leave_alone] = LEAVE_ALONE
    rule[renewal_soon.to_numpy(bool)] = RENEWAL_SOON
    rule[grievance] = GRIEVANCE
    texts = {
        **playbook.actions,
        GRIEVANCE: playbook.grievance_action,
        RENEWAL_SOON: playbook.renewal_soon_action,
        LEAVE_ALONE: playbook.leave_alone_action,
        SEASONAL_GAP: playbook.seasonal_gap_action,
    }
    actions = _actions(rule, texts, playbook.no_open_issue_actions, _open_issue(f))
    return pd.DataFrame({"recommended_action": actions, "action_rule": rule}, index=scored.index)
