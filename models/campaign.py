"""Control groups on the lists, and the measured effect of a contact.

A random, reproducible share of each list is held out (not contacted). The effect of
the calls is the retention of contacted customers minus that of held-out ones (domain
section 8). Assignment is a pure function of the campaign id and the customer id, so a
re-run gives the same groups, and a customer keeps the group they got earlier in the
same campaign.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from models.thresholds import HOLDOUT_SHARE, MIN_GROUP

CONTACT = "contact"
HOLDOUT = "holdout"
RISK_BAND = "risk_band"
DEFAULT_STRATA = ("list", "action_rule", RISK_BAND)
NOT_ENOUGH = "not enough data yet"
MEASURED = "measured"
OVERALL = "overall"

EVALUATION_COLUMNS = (
    "list",
    "action_rule",
    "n_contact",
    "n_holdout",
    "retention_contact",
    "retention_holdout",
    "difference",
    "ci_low",
    "ci_high",
    "mean_expected_value",
    "value_saved",
    "reach_rate",
    "effect_if_reached",
    "holdout_contacted",
    "status",
)
_Z95 = NormalDist().inv_cdf(0.975)


def campaign_id(score_date: pd.Timestamp | str, period: str = "week") -> str:
    """The campaign a score date belongs to: its ISO week (``2025-W23``) or month (``2025-06``)."""
    day = pd.Timestamp(score_date)
    if period == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year:04d}-W{week:02d}"
    raise ValueError(f"campaign period must be 'week' or 'month', not {period!r}")


def assignment_hash(campaign: str, customer_ids: pd.Series) -> np.ndarray:
    """A uniform number in [0, 1) per customer, fixed by (campaign, customer id)."""
    keys = (f"{campaign}\x1f{customer}".encode() for customer in customer_ids.astype(str))
    return np.array(
        [int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 for key in keys],
        dtype=float,
    )


def risk_bands(probability: pd.Series, edges: Sequence[float] = (0.5, 0.7)) -> pd.Series:
    """Band of churn probability: ``<0.5``, ``0.5-0.7``, ``>=0.7`` for the default edges."""
    bounds = [-math.inf, *edges, math.inf]
    labels = [
        f"<{edges[0]:g}",
        *(f"{lo:g}-{hi:g}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)),
        f">={edges[-1]:g}",
    ]
    bands = pd.cut(probability.astype(float), bounds, right=False, labels=labels)
    return bands.astype(str).where(probability.notna(), "unknown")


def _holdout_targets(sizes: pd.Series, share: float, campaign: str) -> pd.Series:
    """Holdouts per stratum: floor or ceil of share x size, summing to round(share x total).

    Largest remainders get the ceiling (ties by a hash of the stratum), so each stratum is
    within rounding of the share and the list as a whole is as close as rounding allows.
    """
    exact = sizes.astype(float) * share
    base = np.floor(exact)
    remainder = exact - base
    total = int(math.floor(float(exact.sum()) + 0.5))
    extra = total - int(base.sum())
    tie = assignment_hash(campaign, pd.Series([str(key) for key in sizes.index]))
    order = np.lexsort((tie, -remainder.to_numpy()))
    bump = np.zeros(len(sizes))
    bump[order[: max(extra, 0)]] = 1
    return (base + bump).astype(int)


def assign_groups(
    listed: pd.DataFrame,
    campaign: str,
    holdout_share: float = HOLDOUT_SHARE,
    strata: Sequence[str] = DEFAULT_STRATA,
    earlier: pd.DataFrame | None = None,
    bands: Sequence[float] = (0.5, 0.7),
) -> pd.DataFrame:
    """The list with ``campaign`` and ``group`` (contact or holdout) columns.

    Args:
        listed: listed customers: ``customer_id``, ``churn_probability`` and the strata
            columns (``risk_band`` is derived from the probability).
        campaign: the campaign id (see :func:`campaign_id`); it seeds the hash.
        holdout_share: the share of each stratum held out.
        strata: columns whose combinations are balanced separately.
        earlier: ``customer_id``, ``group`` of customers assigned earlier in this
            campaign; they keep that group and count toward their stratum's share.
        bands: churn probability edges of the risk bands.

    Returns:
        A new frame, rows and order as ``listed``.
    """
    if not 0.0 <= holdout_share < 1.0:
        raise ValueError(f"holdout share must be in [0, 1), not {holdout_share}")
    if listed.empty:
        return listed.assign(campaign=pd.Series(dtype=object), group=pd.Series(dtype=object))
    # positions, not labels: the caller's index may repeat
    work = pd.DataFrame({"customer_id": listed["customer_id"].astype(str).to_numpy()})
    for column in strata:
        if column == RISK_BAND:
            work[column] = risk_bands(listed["churn_probability"], bands).to_numpy()
        else:
            work[column] = listed[column].astype(str).to_numpy()
    work["_hash"] = assignment_hash(campaign, work["customer_id"])
    known: dict[str, str] = {}
    if earlier is not None and len(earlier):
        first = earlier.drop_duplicates("customer_id", keep="first")
        known = dict(zip(first["customer_id"].astype(str), first["group"], strict=True))
    work["group"] = work["customer_id"].map(known).astype(object)
    if strata:
        stratum_of = work.groupby(list(strata), sort=True).ngroup().to_numpy()
        names = work.groupby(list(strata), sort=True).size().index
    else:
        stratum_of = np.zeros(len(work), dtype=int)
        names = pd.Index([""])
    sizes = pd.Series(np.bincount(stratum_of, minlength=len(names)), index=names)
    targets = _holdout_targets(sizes, holdout_share, campaign).to_numpy()
    for number, target in enumerate(targets):
        stratum = work.loc[stratum_of == number]
        need = int(target) - int(stratum["group"].eq(HOLDOUT).sum())
        new = stratum.loc[stratum["group"].isna()].sort_values(["_hash", "customer_id"])
        work.loc[new.index, "group"] = CONTACT
        work.loc[new.index[: max(need, 0)], "group"] = HOLDOUT
    return listed.assign(campaign=campaign, group=work["group"].to_numpy())


def retention_outcomes(
    history: pd.DataFrame,
    transactions: pd.DataFrame,
    horizon_days: int,
    data_end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One row per customer listing that opens a horizon, and whether they came back.

    A customer listed night after night is measured once per horizon: from the first
    listing, the next one counted is at least a horizon later (overlapping windows would
    count one purchase several times and make the interval too narrow). A listing is
    measured once its horizon has passed in the data (``score_date +
    horizon <= data_end``; default: the day after the last transaction). Retained = a
    purchase (positive amount) in ``[score_date, score_date + horizon)``.
    """
    if history.empty:
        columns = ["campaign", "customer_id", "score_date", "list", "action_rule", "group"]
        return pd.DataFrame(columns=[*columns, "expected_value", "retained"])
    if data_end is None:
        data_end = transactions["timestamp"].max().normalize() + pd.Timedelta(days=1)
    horizon = pd.Timedelta(days=horizon_days)
    listings = history.assign(
        score_date=pd.to_datetime(history["score_date"]),
        customer_id=history["customer_id"].astype(str),
    ).sort_values(["score_date", "customer_id"], kind="stable")
    listings = listings.loc[once_per_horizon(listings, horizon)]
    listings = listings.loc[listings["score_date"] + horizon <= data_end].reset_index(drop=True)
    purchases = transactions.loc[transactions["amount"] > 0, ["customer_id", "timestamp"]].astype(
        {"customer_id": str}
    )
    joined = listings[["customer_id", "score_date"]].reset_index().merge(purchases, "inner")
    inside = (joined["timestamp"] >= joined["score_date"]) & (
        joined["timestamp"] < joined["score_date"] + horizon
    )
    retained = np.zeros(len(listings), dtype=bool)
    retained[joined.loc[inside, "index"].unique()] = True
    return listings.assign(retained=retained)


def matured_outcomes(
    history: pd.DataFrame, transactions: pd.DataFrame, horizon_days: int, cutoff: pd.Timestamp
) -> pd.DataFrame:
    """The listings whose horizon ended by ``cutoff``, judged on transactions before it.

    What a night scored at ``cutoff`` may know of its earlier lists: a night scored in
    the past never learns from what came after it.
    """
    before = transactions.loc[transactions["timestamp"] < cutoff]
    return retention_outcomes(history, before, horizon_days, data_end=cutoff)


def once_per_horizon(listings: pd.DataFrame, horizon: pd.Timedelta) -> np.ndarray:
    """Mask of the listings that open a new horizon for their customer (sorted by date)."""
    keep = np.zeros(len(listings), dtype=bool)
    last: dict[str, pd.Timestamp] = {}
    for position, (customer, day) in enumerate(
        zip(listings["customer_id"], listings["score_date"], strict=True)
    ):
        if customer not in last or day >= last[customer] + horizon:
            keep[position] = True
            last[customer] = day
    return keep


def with_reach(outcomes: pd.DataFrame, contacts: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """Outcomes with ``reached``: the CRM shows the customer reached inside the listing's
    horizon (a contact row whose ``reached`` is not False).

    For the contact group it tells "assigned a call" from "actually called"; a held-out
    customer who was reached anyway is a leak in the control group, counted in the
    evaluation.
    """
    if outcomes.empty:
        return outcomes.assign(reached=pd.Series(dtype=bool))
    made = contacts
    if "reached" in made:
        made = made.loc[made["reached"].fillna(True).astype(bool)]
    made = made[["customer_id", "timestamp"]].astype({"customer_id": str})
    horizon = pd.Timedelta(days=horizon_days)
    joined = (
        outcomes[["customer_id", "score_date"]]
        .astype({"customer_id": str})
        .reset_index()
        .merge(made, on="customer_id")
    )
    inside = (joined["timestamp"] >= joined["score_date"]) & (
        joined["timestamp"] < joined["score_date"] + horizon
    )
    reached = np.zeros(len(outcomes), dtype=bool)
    reached[joined.loc[inside, "index"].unique()] = True
    return outcomes.assign(reached=reached)


def _stratified_difference(rows: pd.DataFrame) -> tuple[float, float, float]:
    """Contact and holdout retention compared within each stratum, then averaged.

    Holdouts are drawn per list x action x risk band, and rounding gives small strata
    more or fewer than the share: pooling the groups would compare different mixes of
    customers. Each stratum's difference is weighted by its contacted customers (the
    effect among those called); strata without both groups drop out. Returns the
    weighted contact and holdout retention and the difference's variance.
    """
    keys = [c for c in ("list", "action_rule") if c in rows]
    work = rows.assign(retained=rows["retained"].astype(float))
    if "churn_probability" in rows:
        work[RISK_BAND] = risk_bands(rows["churn_probability"]).to_numpy()
        keys.append(RISK_BAND)
    if not keys:
        work["_all"], keys = 0, ["_all"]
    arms = work.groupby([*keys, "group"], sort=True, observed=True)["retained"].agg(
        ["mean", "count"]
    )
    table = arms.unstack("group")
    both = table.dropna(subset=[("count", CONTACT), ("count", HOLDOUT)])
    n1, n0 = both[("count", CONTACT)], both[("count", HOLDOUT)]
    p1, p0 = both[("mean", CONTACT)], both[("mean", HOLDOUT)]
    weight = n1 / n1.sum()
    variance = (weight**2 * (p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)).sum()
    return float((weight * p1).sum()), float((weight * p0).sum()), float(variance)


def _effect(rows: pd.DataFrame, min_group: int) -> dict[str, object]:
    contact = rows.loc[rows["group"].eq(CONTACT)]
    holdout = rows.loc[rows["group"].eq(HOLDOUT)]
    n1, n0 = len(contact), len(holdout)
    p1 = float(contact["retained"].mean()) if n1 else math.nan
    p0 = float(holdout["retained"].mean()) if n0 else math.nan
    value = float(contact["expected_value"].mean()) if n1 else math.nan
    row: dict[str, object] = {
        "n_contact": n1,
        "n_holdout": n0,
        "retention_contact": p1,
        "retention_holdout": p0,
        "difference": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "mean_expected_value": value,
        "value_saved": math.nan,
        "reach_rate": math.nan,
        "effect_if_reached": math.nan,
        "holdout_contacted": math.nan,
        "status": NOT_ENOUGH,
    }
    if "reached" in rows:
        row["reach_rate"] = float(contact["reached"].mean()) if n1 else math.nan
        row["holdout_contacted"] = float(holdout["reached"].sum())
    if min(n1, n0) < min_group:
        return row
    p1, p0, variance = _stratified_difference(rows)
    difference = p1 - p0
    half = _Z95 * math.sqrt(variance)
    reach = float(row["reach_rate"])  # type: ignore[arg-type]
    return row | {
        "retention_contact": p1,
        "retention_holdout": p0,
        "difference": difference,
        "ci_low": difference - half,
        "ci_high": difference + half,
        "value_saved": difference * n1 * value,
        # the effect of a call that happened: the assignment's effect over the share of
        # the contact group actually reached (nobody held out is reached by the campaign)
        "effect_if_reached": difference / reach if reach > 0 else math.nan,
        "status": MEASURED,
    }


def evaluate_campaigns(outcomes: pd.DataFrame, min_group: int = MIN_GROUP) -> pd.DataFrame:
    """Retention of contacted vs held-out customers, overall and per list x action rule.

    The difference (contact - holdout) is compared within each stratum the holdouts were
    drawn in (list x action rule x risk band) and averaged over the contacted; it has a
    95% normal-approximation interval (the strata's differences of proportions), and
    once measured the retention columns are those stratum-weighted rates. Value saved =
    difference x contacted x mean expected value of the contacted. Groups smaller than
    ``min_group`` give "not enough data yet". With a ``reached`` column (:func:`with_reach`),
    also the share of the contact group reached, the effect of a call that was made
    (difference / reach rate) and the held-out customers reached anyway.

    Args:
        outcomes: from :func:`retention_outcomes`: ``list``, ``action_rule``, ``group``,
            ``expected_value``, ``retained``.
    """
    rows = [{"list": OVERALL, "action_rule": OVERALL, **_effect(outcomes, min_group)}]
    for (name, rule), part in outcomes.groupby(["list", "action_rule"], sort=True):
        rows.append({"list": name, "action_rule": rule, **_effect(part, min_group)})
    return pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS))
