"""Every model feature, declared once: family, table and columns, reason, words, direction.

Everything else reads this table: each family's feature list (:mod:`features.rfm`,
:mod:`features.signals`, :mod:`features.interactions`, :mod:`features.subscriptions`),
the classifier's monotone constraints (:mod:`models.classifier`), the reason map's
defaults and validation (:mod:`models.reasons`; ``models/config/reason_map.yaml`` only
overrides), the report's wording and ``docs/features.md`` (:func:`markdown_table`).

A feature's ``reason`` is a key of :data:`models.reasons.LOSS_REASONS` (``features/``
may not import ``models/``; a unit test and the reason map's loader check the keys).
``phrase`` is the plain-words driver, formatted with the customer's feature values
(``{name:.0f}``, or the ``updown`` / ``points`` specs of :func:`models.reasons.describe`);
``label`` is short, value-free words for charts. ``monotone`` is the risk direction the business
knows for certain: +1 (more never makes a customer safer), -1 (more never riskier), 0.

Adding a feature: compute it in its family's module, declare it here in the order the
family produces it, and regenerate ``docs/features.md`` (see :func:`markdown_table`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

RFM = "rfm"
SIGNALS = "signals"
INTERACTIONS = "interactions"
USAGE = "usage"
SUBSCRIPTIONS = "subscriptions"
# the order build_features puts the families in
FAMILIES = (RFM, SIGNALS, INTERACTIONS, USAGE, SUBSCRIPTIONS)
TABLE_OF = {
    RFM: "transactions",
    SIGNALS: "transactions",
    INTERACTIONS: "interactions",
    USAGE: "interactions",
    SUBSCRIPTIONS: "subscriptions",
}


@dataclass(frozen=True)
class Feature:
    """One model feature.

    Attributes:
        name: the column name.
        family: one of :data:`FAMILIES`; gives the table it is built from.
        columns: optional columns of that table it needs (the table's required
            columns are always there).
        reason: default loss reason (a business overrides it in the reason map).
        phrase: default plain-words driver, formatted with feature values.
        label: short, value-free words; empty means the name without underscores.
        monotone: known risk direction, +1, -1 or 0 (none).
    """

    name: str
    family: str
    columns: tuple[str, ...]
    reason: str
    phrase: str
    label: str = ""
    monotone: int = 0

    @property
    def table(self) -> str:
        return TABLE_OF[self.family]

    @property
    def words(self) -> str:
        return self.label or self.name.replace("_", " ")


@dataclass(frozen=True)
class FeaturePattern:
    """A family of features named after the business's own values (usage kinds).

    Attributes:
        family: one of :data:`FAMILIES`.
        template: the name as shown to people, ``usage_<kind>_<metric>``.
        pattern: matches every name of the family, with ``kind`` and ``metric`` groups.
        reason: default loss reason of every kind (the reason map overrides per kind).
        phrases: per metric, the driver phrase; ``{feature}`` is the feature's name and
            ``{kind}`` the kind in words, so ``{{{feature}:.0f}}`` becomes its value.
        monotone: known risk direction of every name, 0 = none.
    """

    family: str
    template: str
    pattern: re.Pattern[str]
    reason: str
    phrases: dict[str, str] = field(default_factory=dict)
    monotone: int = 0

    @property
    def table(self) -> str:
        return TABLE_OF[self.family]

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.phrases)

    def matches(self, name: str) -> bool:
        return self.pattern.fullmatch(name) is not None


def _rfm(name: str, label: str, phrase: str) -> Feature:
    # timing, volume and spend: how every departure looks, not why (unidentified)
    return Feature(name, RFM, (), "unidentified", phrase, label)


def _signal(
    name: str, needs: str, reason: str, label: str, phrase: str, monotone: int = 0
) -> Feature:
    return Feature(name, SIGNALS, (needs,) if needs else (), reason, phrase, label, monotone)


def _contact(
    name: str,
    needs: str,
    label: str,
    phrase: str,
    monotone: int = 0,
    reason: str = "poor_interaction",
) -> Feature:
    return Feature(name, INTERACTIONS, (needs,) if needs else (), reason, phrase, label, monotone)


def _usage_ratio(name: str, label: str, phrase: str) -> Feature:
    return Feature(name, USAGE, (), "poor_interaction", phrase, label)


def _plan(name: str, needs: str, reason: str, phrase: str) -> Feature:
    return Feature(name, SUBSCRIPTIONS, (needs,) if needs else (), reason, phrase)


# fmt: off
FEATURES: tuple[Feature, ...] = (
    # --- rfm: features/rfm.py (transactions) --------------------------------------
    _rfm("days_since_last_purchase", "days since last purchase",
         "no purchase for {days_since_last_purchase:.0f} days"),
    _rfm("tenure_days", "time as a customer",
         "customer for {tenure_days:.0f} days"),
    _rfm("lifetime_purchases", "purchases in total",
         "{lifetime_purchases:.0f} purchases in total"),
    _rfm("purchases_30d", "purchases in the last 30 days",
         "{purchases_30d:.0f} purchases in the last 30 days"),
    _rfm("purchases_90d", "purchases in the last 90 days",
         "{purchases_90d:.0f} purchases in the last 90 days"),
    _rfm("purchases_prior_90d", "purchases in the 90 days before",
         "{purchases_prior_90d:.0f} purchases in the 90 days before that"),
    _rfm("purchases_365d", "purchases in the last year",
         "{purchases_365d:.0f} purchases in the last year"),
    _rfm("spend_90d", "spend in the last 90 days",
         "spent {spend_90d:,.0f} in the last 90 days"),
    _rfm("spend_prior_90d", "spend in the 90 days before",
         "spent {spend_prior_90d:,.0f} in the 90 days before that"),
    _rfm("spend_365d", "spend in the last year",
         "spent {spend_365d:,.0f} in the last year"),
    _rfm("avg_order_value", "average order value",
         "average order {avg_order_value:,.0f}"),
    _rfm("mean_gap_days", "usual time between purchases",
         "usually buys every {mean_gap_days:.0f} days"),
    _rfm("gap_std_days", "irregular buying",
         "irregular buying (gaps vary by {gap_std_days:.0f} days)"),
    _rfm("max_gap_days", "longest gap between purchases",
         "longest gap between purchases {max_gap_days:.0f} days"),
    _rfm("overdue_ratio", "overdue against their own rhythm",
         "no purchase for {days_since_last_purchase:.0f} days, "
         "{overdue_ratio:.1f}x longer than usual"),
    _rfm("purchase_trend_90d", "fewer purchases than before",
         "{purchases_90d:.0f} purchases in the last 90 days vs {purchases_prior_90d:.0f} before"),
    _rfm("spend_change_90d", "spend change",
         "spend in the last 90 days changed {spend_change_90d:+.0%} on the 90 days before"),
    _rfm("purchases_same_season_last_year", "purchases this season last year",
         "{purchases_same_season_last_year:.0f} purchases in the coming season last year"),
    _rfm("peak_month_share", "seasonal buying",
         "{peak_month_share:.0%} of purchases in two calendar months"),
    _rfm("purchase_days", "",
         "bought on {purchase_days:.0f} different days"),
    # --- signals: features/signals.py (transactions, optional columns) ------------
    _signal("discount_share_90d", "discount", "competitor_offer", "buying on discount",
            "{discount_share_90d:.0%} of recent spend was discounted"),
    _signal("discount_share_change_90d", "discount", "competitor_offer", "more buying on discount",
            "discount share up {discount_share_change_90d:+.0%} on before"),
    _signal("category_shift_90d", "category", "business_change", "changed what they buy",
            "what they buy changed ({category_shift_90d:.0%} different mix)"),
    _signal("new_category_share_90d", "category", "business_change", "buying in new categories",
            "{new_category_share_90d:.0%} of recent orders in categories new to them"),
    _signal("quantity_change_90d", "quantity", "business_change", "order size change",
            "order size changed {quantity_change_90d:+.1f} (log ratio) on before"),
    _signal("region_changed", "region", "relocation", "buying outside their region",
            "last purchase outside their home region"),
    _signal("online_share_change_90d", "channel", "relocation", "move to online orders",
            "online share of orders changed {online_share_change_90d:+.0%}"),
    _signal("failed_payments_180d", "payment_status", "financial_distress", "failed payments",
            "{failed_payments_180d:.0f} failed payments in 6 months", monotone=1),
    _signal("late_payments_180d", "payment_status", "financial_distress", "late payments",
            "{late_payments_180d:.0f} late payments in 6 months", monotone=1),
    _signal("refunds_180d", "", "poor_interaction", "refunds",
            "{refunds_180d:.0f} refunds in 6 months"),
    # --- interactions: features/interactions.py -----------------------------------
    _contact("tickets_90d", "", "support tickets",
             "{tickets_90d:.0f} support tickets in 90 days"),
    _contact("tickets_365d", "", "support tickets over the year",
             "{tickets_365d:.0f} support tickets in a year"),
    _contact("complaints_90d", "", "complaints",
             "{complaints_90d:.0f} complaints in 90 days", monotone=1),
    _contact("complaints_365d", "", "complaints over the year",
             "{complaints_365d:.0f} complaints in a year"),
    _contact("price_complaints_180d", "", "price complaints",
             "{price_complaints_180d:.0f} price complaints in 6 months",
             monotone=1, reason="competitor_offer"),
    _contact("days_since_last_contact", "", "no contact for a long time",
             "no contact for {days_since_last_contact:.0f} days"),
    _contact("unresolved_30d", "resolved", "unresolved issues (30 days)",
             "{unresolved_30d:.0f} unresolved issues in the last 30 days", monotone=1),
    _contact("unresolved_90d", "resolved", "unresolved issues",
             "{unresolved_90d:.0f} unresolved tickets or complaints in 90 days", monotone=1),
    _contact("unresolved_share_90d", "resolved", "share of issues unresolved",
             "{unresolved_share_90d:.0%} of recent issues unresolved", monotone=1),
    _contact("mean_resolution_hours_180d", "resolution_hours", "slow issue resolution",
             "issues took {mean_resolution_hours_180d:.0f} hours to resolve"),
    _contact("satisfaction_last", "satisfaction", "low last satisfaction score",
             "last satisfaction score {satisfaction_last:.0f}/5", monotone=-1),
    _contact("satisfaction_mean_365d", "satisfaction", "low satisfaction over the year",
             "satisfaction {satisfaction_mean_365d:.1f}/5 over the year", monotone=-1),
    _contact("satisfaction_trend", "satisfaction", "falling satisfaction",
             "satisfaction changed {satisfaction_trend:+.1f} points"),
    _contact("outreach_response_rate_180d", "responded", "not answering our contacts",
             "answered {outreach_response_rate_180d:.0%} of our contacts in 6 months"),
    _contact("outreach_ignored_90d", "responded", "ignored our contacts",
             "ignored {outreach_ignored_90d:.0f} of our contacts in 90 days", monotone=1),
    # --- usage ratios: features/usage.py, built only when the chosen usage kinds hold
    # both a negative-sounding kind (NEGATIVE_WORDS) and another; hides, reports, errors
    # and unsubscribes are the product's own complaints, so poor_interaction
    _usage_ratio("negative_usage_share_30d", "negative usage events",
                 "{negative_usage_share_30d:.0%} of usage events in the last 30 days "
                 "were negative (hide, report, error, unsubscribe...)"),
    _usage_ratio("negative_usage_share_90d", "negative usage events over 90 days",
                 "{negative_usage_share_90d:.0%} of usage events in the last 90 days "
                 "were negative"),
    _usage_ratio("negative_usage_share_change_30d", "more negative usage events",
                 "share of negative usage events {negative_usage_share_change_30d:points} "
                 "on the month before"),
    # --- subscriptions: features/subscriptions.py (timing is no cause; plans are) --
    _plan("subscription_tenure_days", "", "unidentified",
          "subscriber for {subscription_tenure_days:.0f} days"),
    _plan("days_to_renewal", "", "unidentified",
          "next renewal in {days_to_renewal:.0f} days"),
    _plan("periods_paid_in_plan", "", "unidentified",
          "{periods_paid_in_plan:.0f} billing periods on the current plan"),
    _plan("on_annual_plan", "billing_period", "unidentified",
          "annual plan: {on_annual_plan:.0f} (1 = yes)"),
    _plan("plan_changes_365d", "", "business_change",
          "{plan_changes_365d:.0f} plan changes in a year"),
    _plan("downgrades_365d", "amount", "business_change",
          "{downgrades_365d:.0f} downgrades in a year"),
    _plan("price_change", "amount", "competitor_offer",
          "pays {price_change:+.0%} per month against their first plan"),
    _plan("paused_days_365d", "", "business_change",
          "subscription paused {paused_days_365d:.0f} days in the last year"),
)
# fmt: on

# Usage events of the business's own kinds (features/usage.py). Declining usage is how
# every departure looks, not why it happens, so the default reason is `unidentified`;
# mapping it to poor_interaction would send "fix the open issue" to customers with no
# issue. A business whose kind does name a cause (support_chat, refund_request) gives
# it its own reason under `families: usage: kinds:` in the reason map.
_USAGE_PHRASES = {
    "30d": "{{{feature}:.0f}} {kind} events in the last 30 days",
    "90d": "{{{feature}:.0f}} {kind} events in the last 90 days",
    "trend_30d": "{kind} events {{{feature}:updown}} on the month before",
    "days_since": "no {kind} event for {{{feature}:.0f}} days",
    "active_days_90d": "{kind} on {{{feature}:.0%}} of the last 90 days",
}
USAGE_FEATURES = FeaturePattern(
    family=USAGE,
    template="usage_<kind>_<metric>",
    pattern=re.compile(r"usage_(?P<kind>[a-z0-9_]+?)_(?P<metric>" + "|".join(_USAGE_PHRASES) + ")"),
    reason="unidentified",
    phrases=_USAGE_PHRASES,
)
PATTERNS: tuple[FeaturePattern, ...] = (USAGE_FEATURES,)

BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}


def names(family: str) -> tuple[str, ...]:
    """The declared features of one family, in the order the family produces them."""
    return tuple(f.name for f in FEATURES if f.family == family)


def needs(family: str) -> dict[str, tuple[str, ...]]:
    """Feature -> the optional columns it needs, for one family, in its order."""
    return {f.name: f.columns for f in FEATURES if f.family == family}


def is_declared(name: str) -> bool:
    """True for a declared feature or a name one of :data:`PATTERNS` matches."""
    return name in BY_NAME or any(p.matches(name) for p in PATTERNS)


def label(name: str) -> str:
    """Short, value-free words for a feature; a name not declared one by one (a usage
    feature) in words without underscores."""
    feature = BY_NAME.get(name)
    return feature.words if feature is not None else name.replace("_", " ")


def monotone_directions() -> dict[str, int]:
    """Feature -> its known risk direction, for the features that have one."""
    return {f.name: f.monotone for f in FEATURES if f.monotone}


def markdown_table() -> str:
    """``docs/features.md``: every feature and pattern as a Markdown table.

    Regenerate the file after changing the registry with
    ``python -c "from features.registry import markdown_table as t; print(t(), end='')"
    > docs/features.md``; a unit test fails while the two differ.
    """
    lines = [
        "# Features",
        "",
        "Generated from `features/registry.py` (do not edit by hand). `reason` and",
        "`driver phrase` are defaults: `models/config/reason_map.yaml` overrides them per",
        "business. `needs` lists optional columns beyond the table's required ones;",
        "`direction` is the monotone constraint the classifier gets (+1: more never",
        "lowers risk, -1: more never raises it).",
        "",
        "| feature | family | table | needs | reason | direction | driver phrase |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in FEATURES:
        needed = ", ".join(f"`{c}`" for c in f.columns)
        direction = f"{f.monotone:+d}" if f.monotone else ""
        lines.append(
            f"| `{f.name}` | {f.family} | {f.table} | {needed} | {f.reason} "
            f"| {direction} | {f.phrase} |"
        )
    for p in PATTERNS:
        metrics = ", ".join(f"`{m}`" for m in p.metrics)
        lines.append(
            f"| `{p.template}` ({metrics}) | {p.family} | {p.table} |  | {p.reason} |  "
            '| per metric, e.g. "no post event for 12 days" |'
        )
    return "\n".join(lines) + "\n"
