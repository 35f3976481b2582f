"""Champion / challenger: a new model replaces the champion only when it is better.

Both are scored on the same held-out cutoff. The challenger must beat the champion on
the configured metric and must not fall behind on calibration (Brier score), so a model
that ranks a little better but whose probabilities are off does not slip through.
"""

from __future__ import annotations

from dataclasses import dataclass

HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "top_decile_lift": True, "brier": False}


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    metric: str = "pr_auc",
    brier_tolerance: float = 0.002,
    force: bool = False,
) -> Decision:
    """Whether the challenger becomes champion.

    Args:
        challenger: the new model's metrics on the holdout cutoff.
        champion: the current champion's metrics on the same rows, or None if there is
            no champion (or it cannot be evaluated on this data).
        metric: the deciding metric (a key of ``HIGHER_IS_BETTER``).
        brier_tolerance: how much worse the Brier score may be and still count as
            "not behind on calibration".
        force: promote regardless (the decision says so, for the log).
    """
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(
            f"unknown promotion metric {metric!r}; use one of {sorted(HIGHER_IS_BETTER)}"
        )
    if force:
        return Decision(True, "forced promotion (--force)")
    if champion is None:
        return Decision(True, "no champion that can be evaluated on this data")
    new, old = challenger[metric], champion[metric]
    better = new > old if HIGHER_IS_BETTER[metric] else new < old
    if not better:
        return Decision(False, f"{metric} {new:.4f} does not beat the champion's {old:.4f}")
    if challenger["brier"] > champion["brier"] + brier_tolerance:
        return Decision(
            False,
            f"{metric} {new:.4f} beats {old:.4f} but Brier {challenger['brier']:.4f} is worse "
            f"than the champion's {champion['brier']:.4f} by more than {brier_tolerance}",
        )
    return Decision(True, f"{metric} {new:.4f} beats the champion's {old:.4f}")
