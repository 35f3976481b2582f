"""Usage events of any kind as features: the business's own vocabulary, not noise.

Interaction kinds the contract does not read (``login``, ``post``, ``ad_view``, ...)
are product usage. The ``k`` most frequent of them (ties by name, so the choice is
deterministic) each get the metric families the churn literature uses:

* ``usage_<kind>_30d`` / ``usage_<kind>_90d``: events in the last 30 / 90 days;
* ``usage_<kind>_trend_30d``: the last 30 days against the 30 before, as a relative
  change ((recent - prior) / max(prior, 1)): -0.6 is "down 60% on the month before";
* ``usage_<kind>_days_since``: days since the kind was last seen (missing: never);
* ``usage_<kind>_active_days_90d``: share of the last 90 days with at least one.

One ratio family reads the chosen kinds together: the share of their events that are
negative-sounding (a kind whose sanitised name contains one of :data:`NEGATIVE_WORDS`:
``hide_post``, ``report_user``, ``app_error``, ...), as ``negative_usage_share_30d`` /
``_90d`` (missing without usage events in the window) and
``negative_usage_share_change_30d`` (the last 30 days' share minus the 30 days'
before, in share points). They exist only when the chosen kinds hold a negative kind
and another one; otherwise the share could only be missing, 0 or 1 everywhere.

The kinds are chosen once, when a model is trained (:func:`choose_usage_kinds`), and
found again at scoring from the model's feature names (:func:`kinds_in_features`), so
the feature set is bounded (5 per kind, 3 ratios) and the same at every cutoff.
``<kind>`` is the kind sanitised to lower-case letters, digits and underscores
(:func:`sanitise`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from features import registry
from features.interactions import CONTRACT_KINDS
from features.registry import USAGE_FEATURES
from features.windows import (
    count_per_customer,
    customer_positions,
    equals_mask,
    latest_per_customer,
    values_at,
    window_mask,
)

# kinds the interaction-quality features already read (features.interactions)
# the usage_<kind>_<metric> names, declared as a pattern in features/registry.py
USAGE_METRICS: tuple[str, ...] = USAGE_FEATURES.metrics
USAGE_FEATURE: re.Pattern[str] = USAGE_FEATURES.pattern
# the ratio features, declared one by one in features/registry.py (fixed names)
USAGE_RATIOS: tuple[str, ...] = registry.names(registry.USAGE)
# a kind is negative when its sanitised name contains one of these (a business whose
# vocabulary differs passes its own words)
NEGATIVE_WORDS: tuple[str, ...] = (
    "unsubscribe",
    "cancel",
    "complaint",
    "error",
    "report",
    "block",
    "downgrade",
    "dislike",
    "hide",
)
DEFAULT_TOP_KINDS = 5
_MAX_NAME = 40


def sanitise(kind: str) -> str:
    """A kind as a feature-name part: lower case, runs of other characters as ``_``."""
    name = re.sub(r"[^a-z0-9]+", "_", str(kind).lower()).strip("_")[:_MAX_NAME]
    return name or "kind"


def negative_kinds(
    kinds: Iterable[str], negative_words: Iterable[str] = NEGATIVE_WORDS
) -> tuple[str, ...]:
    """The kinds whose sanitised name contains one of ``negative_words``, in order."""
    words = [sanitise(w) for w in negative_words]
    return tuple(k for k in kinds if any(w in sanitise(k) for w in words))


def has_ratios(kinds: Iterable[str], negative_words: Iterable[str] = NEGATIVE_WORDS) -> bool:
    """True when the kinds hold a negative kind and another: the ratios can vary."""
    kinds = list(dict.fromkeys(kinds))
    return 0 < len(negative_kinds(kinds, negative_words)) < len(kinds)


def usage_feature_names(
    kinds: Iterable[str], negative_words: Iterable[str] = NEGATIVE_WORDS
) -> list[str]:
    """Feature names for these kinds, kind by kind, in :data:`USAGE_METRICS` order, then
    :data:`USAGE_RATIOS` when :func:`has_ratios`."""
    kinds = list(kinds)
    names = [f"usage_{sanitise(k)}_{metric}" for k in kinds for metric in USAGE_METRICS]
    if has_ratios(kinds, negative_words):
        names += USAGE_RATIOS
    return names


def kind_counts(interactions: pd.DataFrame | None) -> pd.Series:
    """Rows per kind, most frequent first, ties by name (a deterministic order)."""
    if interactions is None or interactions.empty:
        return pd.Series(dtype=float, name="rows")
    # counted as they are held: a validated kind is categorical, counted from its codes
    # (as text, 16 batches of a 1M-customer business spent 2.6 s of a core on it)
    counts = interactions["kind"].value_counts()
    counts = counts[counts > 0]
    frame = pd.DataFrame({"kind": counts.index.astype(str), "rows": counts.to_numpy()})
    frame = frame.sort_values(["rows", "kind"], ascending=[False, True], kind="stable")
    return frame.set_index("kind")["rows"]


def add_kind_counts(parts: Iterable[pd.Series]) -> pd.Series:
    """Rows per kind of several customer batches as one table's :func:`kind_counts`."""
    found = [part for part in parts if len(part)]
    if not found:
        return pd.Series(dtype=float, name="rows")
    total = pd.concat(found).groupby(level=0).sum()
    frame = pd.DataFrame({"kind": total.index.astype(str), "rows": total.to_numpy()})
    frame = frame.sort_values(["rows", "kind"], ascending=[False, True], kind="stable")
    return frame.set_index("kind")["rows"]


def choose_usage_kinds(
    interactions: pd.DataFrame | pd.Series | None, k: int = DEFAULT_TOP_KINDS
) -> tuple[str, ...]:
    """The ``k`` most frequent kinds the contract does not read (ties by name); kinds
    whose sanitised names clash keep only the more frequent. ``interactions`` may be
    their rows per kind, as for :func:`kinds_in_features`."""
    chosen: list[str] = []
    names: set[str] = set()
    counts = interactions if isinstance(interactions, pd.Series) else kind_counts(interactions)
    for kind in counts.index:
        if kind in CONTRACT_KINDS or sanitise(kind) in names:
            continue
        if len(chosen) >= k:
            break
        chosen.append(kind)
        names.add(sanitise(kind))
    return tuple(chosen)


def kinds_in_features(
    feature_names: Iterable[str], interactions: pd.DataFrame | pd.Series | None
) -> tuple[str, ...]:
    """The kinds of ``interactions`` whose usage features are in ``feature_names`` (a
    trained model's), in the model's order; what scoring must build again.

    ``interactions`` may also be their rows per kind (:func:`kind_counts`, e.g. summed
    over customer batches by :func:`add_kind_counts`).
    """
    wanted = [str(m.group("kind")) for m in map(USAGE_FEATURE.fullmatch, feature_names) if m]
    order = list(dict.fromkeys(wanted))
    counts = interactions if isinstance(interactions, pd.Series) else kind_counts(interactions)
    by_name = {sanitise(k): k for k in counts.index[::-1]}
    return tuple(by_name.get(name, name) for name in order)


def kind_report(
    interactions: pd.DataFrame | pd.Series | None, usage_kinds: Iterable[str]
) -> dict[str, dict[str, int]]:
    """Rows per kind, split into those some feature reads and those none does
    (``interactions`` may be their rows per kind, as for :func:`choose_usage_kinds`)."""
    counts = interactions if isinstance(interactions, pd.Series) else kind_counts(interactions)
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
    negative_words: Iterable[str] = NEGATIVE_WORDS,
) -> pd.DataFrame:
    """The usage metric families per customer for each kind (zero counts and a missing
    "days since" for customers who never showed the kind), then the ratios.

    Args:
        interactions: validated interactions, all rows before ``cutoff``.
        cutoff: the cutoff (midnight).
        customers: the customer ids to produce rows for.
        kinds: interaction kinds as they appear in ``kind``.
        negative_words: what makes a kind negative (:func:`negative_kinds`).

    Returns:
        Frame indexed like ``customers`` with :func:`usage_feature_names` columns.
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
    negative = set(negative_kinds(kinds, negative_words))
    used = np.zeros(len(ts), dtype=bool)
    bad = np.zeros(len(ts), dtype=bool)
    for kind in kinds:
        rows = equals_mask(interactions["kind"], kind) & (pos >= 0)
        used |= rows
        if kind in negative:
            bad |= rows
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
    if has_ratios(kinds, negative_words):
        share = {
            window: _share(
                count_per_customer(pos, n, bad & mask), count_per_customer(pos, n, used & mask)
            )
            for window, mask in (("30d", last_30), ("90d", last_90), ("prior", prior_30))
        }
        out["negative_usage_share_30d"] = share["30d"]
        out["negative_usage_share_90d"] = share["90d"]
        out["negative_usage_share_change_30d"] = share["30d"] - share["prior"]
    return out


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """``part / whole``, missing where ``whole`` is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(whole > 0, part / whole, np.nan)


def usage_trend(features: pd.DataFrame) -> pd.Series:
    """Each customer's usage trend over every kind the features hold: the kinds'
    ``usage_<kind>_trend_30d`` averaged with their ``usage_<kind>_90d`` counts as
    weights, so the kinds they use most count most. Each trend is capped at +1 (usage
    doubled): a kind rising from next to nothing ((5 - 0) / 1 = +5) must not hide the
    fall of the others. Missing for customers with no usage event in 90 days, and for
    everyone when the features hold no usage kind.
    """
    kinds = [
        m.group("kind")
        for m in map(USAGE_FEATURE.fullmatch, features.columns)
        if m and m.group("metric") == "trend_30d"
    ]
    kinds = [k for k in kinds if f"usage_{k}_90d" in features]
    if not kinds:
        return pd.Series(np.nan, index=features.index, name="usage_trend")
    weights = features[[f"usage_{k}_90d" for k in kinds]].fillna(0.0).to_numpy(float)
    trends = features[[f"usage_{k}_trend_30d" for k in kinds]].fillna(0.0).to_numpy(float)
    trends = np.minimum(trends, 1.0)
    total = weights.sum(axis=1)
    trend = _share((weights * trends).sum(axis=1), total)
    return pd.Series(trend, index=features.index, name="usage_trend")
