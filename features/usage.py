"""Usage events of any kind as features: the business's own vocabulary, not noise.

Interaction kinds the contract does not read (``login``, ``post``, ``ad_view``, ...)
are product usage. The ``k`` most frequent of them (ties by name, so the choice is
deterministic) each get the metric families the churn literature uses:

* ``usage_<kind>_30d`` / ``usage_<kind>_90d``: events in the last 30 / 90 days;
* ``usage_<kind>_trend_30d``: the last 30 days against the 30 before, as a relative
  change ((recent - prior) / max(prior, 1)): -0.6 is "down 60% on the month before";
* ``usage_<kind>_days_since``: days since the kind was last seen (missing: never);
* ``usage_<kind>_active_days_90d``: share of the last 90 days with at least one.

The kinds are chosen once, when a model is trained (:func:`choose_usage_kinds`), and
found again at scoring from the model's feature names (:func:`kinds_in_features`), so
the feature set is bounded (5 per kind) and the same at every cutoff. ``<kind>`` is the
kind sanitised to lower-case letters, digits and underscores (:func:`sanitise`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from features.interactions import GRIEVANCE_KINDS
from features.windows import (
    count_per_customer,
    customer_positions,
    equals_mask,
    latest_per_customer,
    values_at,
    window_mask,
)

# kinds the interaction-quality features already read (features.interactions)
CONTRACT_KINDS = (*GRIEVANCE_KINDS, "outreach", "survey")
USAGE_METRICS = ("30d", "90d", "trend_30d", "days_since", "active_days_90d")
DEFAULT_TOP_KINDS = 5
USAGE_FEATURE = re.compile(
    r"usage_(?P<kind>[a-z0-9_]+?)_(?P<metric>" + "|".join(USAGE_METRICS) + ")"
)
_MAX_NAME = 40


def sanitise(kind: str) -> str:
    """A kind as a feature-name part: lower case, runs of other characters as ``_``."""
    name = re.sub(r"[^a-z0-9]+", "_", str(kind).lower()).strip("_")[:_MAX_NAME]
    return name or "kind"


def usage_feature_names(kinds: Iterable[str]) -> list[str]:
    """Feature names for these kinds, kind by kind, in :data:`USAGE_METRICS` order."""
    return [f"usage_{sanitise(k)}_{metric}" for k in kinds for metric in USAGE_METRICS]


def kind_counts(interactions: pd.DataFrame | None) -> pd.Series:
    """Rows per kind, most frequent first, ties by name (a deterministic order)."""
    if interactions is None or interactions.empty:
        return pd.Series(dtype=float, name="rows")
    counts = interactions["kind"].astype(object).value_counts()
    counts = counts[counts > 0]
    frame = pd.DataFrame({"kind": counts.index.astype(str), "rows": counts.to_numpy()})
    frame = frame.sort_values(["rows", "kind"], ascending=[False, True], kind="stable")
    return frame.set_index("kind")["rows"]


def choose_usage_kinds(
    interactions: pd.DataFrame | None, k: int = DEFAULT_TOP_KINDS
) -> tuple[str, ...]:
    """The ``k`` most frequent kinds the contract does not read (ties by name); kinds
    whose sanitised names clash keep only the more frequent."""
    chosen: list[str] = []
    names: set[str] = set()
    for kind in kind_counts(interactions).index:
        if kind in CONTRACT_KINDS or sanitise(kind) in names:
            continue
        if len(chosen) >= k:
            break
        chosen.append(kind)
        names.add(sanitise(kind))
    return tuple(chosen)


def kinds_in_features(
    feature_names: Iterable[str], interactions: pd.DataFrame | None
) -> tuple[str, ...]:
    """The kinds of ``interactions`` whose usage features are in ``feature_names`` (a
    trained model's), in the model's order; what scoring must build again."""
    wanted = [m.group("kind") for m in map(USAGE_FEATURE.fullmatch, feature_names) if m]
    order = list(dict.fromkeys(wanted))
    by_name = {sanitise(k): k for k in kind_counts(interactions).index[::-1]}
    return tuple(by_name.get(name, name) for name in order)


def kind_report(
    interactions: pd.DataFrame | None, usage_kinds: Iterable[str]
) -> dict[str, dict[str, int]]:
    """Rows per kind, split into those some feature reads and those none does."""
    counts = kind_counts(interactions)
    used = set(CONTRACT_KINDS) | set(usage_kinds)
    return {
        "kinds_used": {k: int(n) for k, n in counts.items() if k in used},
        "kinds_ignored": {k: int(n) for k, n in counts.items() if k not in used},
    }


def map_kinds(interactions: pd.DataFrame, mapping: Mapping[str, str]) -> tuple[pd.DataFrame, int]:
    """Rename interaction kinds by the business's mapping (``ticket: support_ticket``).

    Matching ignores case, as the contract lower-cases kinds. Returns the table and how
    many rows were renamed.
    """
    lower = {str(k).strip().lower(): str(v).strip().lower() for k, v in mapping.items()}
    if not lower or interactions is None:
        return interactions, 0
    kind = interactions["kind"]
    if not isinstance(kind.dtype, pd.CategoricalDtype):
        kind = kind.astype("category")
    old = [str(c) for c in kind.cat.categories]
    new = [lower.get(c, c) for c in old]
    renamed = int(kind.isin([c for c in old if c in lower]).sum())
    if not renamed:
        return interactions, 0
    codes, uniques = pd.factorize(pd.Index(new))
    categories = pd.Index(uniques, dtype="str")
    order = np.argsort(np.asarray(categories, dtype=object), kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    remap = np.append(rank[codes], -1)
    row_codes = remap[kind.cat.codes.to_numpy().astype(np.intp)]
    mapped = pd.Categorical.from_codes(row_codes, categories=categories[order])
    return interactions.assign(kind=pd.Series(mapped, index=interactions.index)), renamed


def usage_features(
    interactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    customers: pd.Index,
    kinds: Iterable[str],
) -> pd.DataFrame:
    """The usage metric families per customer for each kind (zero counts and a missing
    "days since" for customers who never showed the kind).

    Args:
        interactions: validated interactions, all rows before ``cutoff``.
        cutoff: the cutoff (midnight).
        customers: the customer ids to produce rows for.
        kinds: interaction kinds as they appear in ``kind``.
    """
    kinds = list(kinds)
    n = len(customers)
    out = pd.DataFrame(index=customers)
    if not kinds:
        return out
    pos = customer_positions(interactions["customer_id"], customers)
    ts = interactions["timestamp"].to_numpy()
    last_30, last_90 = window_mask(ts, cutoff, 30), window_mask(ts, cutoff, 90)
    prior_30 = window_mask(ts, cutoff, 60, end_days_ago=30)
    day_before = np.floor((cutoff.to_datetime64() - ts) / np.timedelta64(1, "D")).astype(np.int64)
    for kind in kinds:
        rows = equals_mask(interactions["kind"], kind) & (pos >= 0)
        name = f"usage_{sanitise(kind)}"
        recent = count_per_customer(pos, n, rows & last_30)
        prior = count_per_customer(pos, n, rows & prior_30)
        out[f"{name}_30d"] = recent
        out[f"{name}_90d"] = count_per_customer(pos, n, rows & last_90)
        out[f"{name}_trend_30d"] = (recent - prior) / np.maximum(prior, 1.0)
        mine = np.flatnonzero(rows)
        last = values_at(ts[mine], latest_per_customer(pos[mine], ts[mine], n))
        out[f"{name}_days_since"] = (cutoff.to_datetime64() - last) / np.timedelta64(1, "D")
        days = np.flatnonzero(rows & last_90)
        pairs = np.unique(pos[days] * 90 + day_before[days])
        out[f"{name}_active_days_90d"] = count_per_customer(pairs // 90, n) / 90.0
    return out
