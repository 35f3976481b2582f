"""The feature registry is the one declaration everything reads."""

from pathlib import Path

import pandas as pd
import pytest

from features import registry
from features.build import build_features
from features.contracts import validate_table
from models.classifier import build_classifier, classifier_params, monotone_constraints
from models.reasons import REASONS, load_reason_map

CUTOFF = pd.Timestamp("2024-07-01")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "features.md"

# every feature complete tables give, in build_features' order; usage for kinds "post"
# and "hide_post" (a negative kind, so the ratios are built too)
EVERY_FEATURE = [
    # rfm
    "days_since_last_purchase",
    "tenure_days",
    "lifetime_purchases",
    "purchases_30d",
    "purchases_90d",
    "purchases_prior_90d",
    "purchases_365d",
    "spend_90d",
    "spend_prior_90d",
    "spend_365d",
    "avg_order_value",
    "mean_gap_days",
    "gap_std_days",
    "max_gap_days",
    "overdue_ratio",
    "purchase_trend_90d",
    "spend_change_90d",
    "purchases_same_season_last_year",
    "peak_month_share",
    "purchase_days",
    # signals
    "discount_share_90d",
    "discount_share_change_90d",
    "category_shift_90d",
    "new_category_share_90d",
    "quantity_change_90d",
    "region_changed",
    "online_share_change_90d",
    "failed_payments_180d",
    "late_payments_180d",
    "refunds_180d",
    # interactions
    "tickets_90d",
    "tickets_365d",
    "complaints_90d",
    "complaints_365d",
    "price_complaints_180d",
    "days_since_last_contact",
    "unresolved_30d",
    "unresolved_90d",
    "unresolved_share_90d",
    "mean_resolution_hours_180d",
    "satisfaction_last",
    "satisfaction_mean_365d",
    "satisfaction_trend",
    "outreach_response_rate_180d",
    "outreach_ignored_90d",
    # usage (a pattern: one block per kind)
    "usage_post_30d",
    "usage_post_90d",
    "usage_post_trend_30d",
    "usage_post_days_since",
    "usage_post_active_days_90d",
    "usage_hide_post_30d",
    "usage_hide_post_90d",
    "usage_hide_post_trend_30d",
    "usage_hide_post_days_since",
    "usage_hide_post_active_days_90d",
    # usage ratios (declared by name)
    "negative_usage_share_30d",
    "negative_usage_share_90d",
    "negative_usage_share_change_30d",
    # subscriptions
    "subscription_tenure_days",
    "days_to_renewal",
    "periods_paid_in_plan",
    "on_annual_plan",
    "plan_changes_365d",
    "downgrades_365d",
    "price_change",
    "paused_days_365d",
]


def ago(days: float) -> pd.Timestamp:
    return CUTOFF - pd.Timedelta(days=days)


def complete_tables() -> dict[str, pd.DataFrame]:
    """Two customers in every table, with every optional column the features read."""
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "timestamp": [ago(200), ago(100), ago(10), ago(30)],
            "amount": [20.0, 30.0, 25.0, 40.0],
            "quantity": [1.0, 2.0, 1.0, 3.0],
            "category": ["tools", "paint", "tools", "tools"],
            "discount": [0.0, 5.0, 0.0, 0.0],
            "channel": ["store", "store", "online", "store"],
            "region": ["north", "north", "south", "east"],
            "payment_status": ["ok", "late", "ok", "failed"],
        }
    )
    ix = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b", "b"],
            "timestamp": [ago(20), ago(5), ago(8), ago(3), ago(2)],
            "kind": ["support_ticket", "post", "survey", "outreach", "hide_post"],
            "channel": ["phone", "app", "email", "email", "app"],
            "satisfaction": [None, None, 2.0, None, None],
            "resolved": [False, None, None, None, None],
            "resolution_hours": [None, None, None, None, None],
            "responded": [None, None, None, False, None],
        }
    )
    subs = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "start": [ago(300), ago(100)],
            "end": [None, None],
            "amount": [10.0, 99.0],
            "billing_period": ["monthly", "annual"],
        }
    )
    raw = {"transactions": tx, "interactions": ix, "subscriptions": subs}
    return {name: validate_table(frame, name, name).frame for name, frame in raw.items()}


def test_build_features_produces_exactly_the_declared_features():
    tables = complete_tables()

    result = build_features(
        tables["transactions"],
        CUTOFF,
        tables["interactions"],
        usage_kinds=("post", "hide_post"),
        subscription_table=tables["subscriptions"],
    )

    assert list(result.columns) == EVERY_FEATURE
    # every column is declared, by name or by a pattern...
    assert [c for c in result.columns if not registry.is_declared(c)] == []
    # ...and every declaration is built, in the registry's order
    declared = [f.name for f in registry.FEATURES]
    assert [c for c in result.columns if c in registry.BY_NAME] == declared
    usage = [c for c in result.columns if registry.USAGE_FEATURES.matches(c)]
    metrics = registry.USAGE_FEATURES.metrics
    assert usage == [f"usage_{k}_{m}" for k in ("post", "hide_post") for m in metrics]
    # the ratios are usage features declared by name, so no kind pattern reads them
    assert registry.names(registry.USAGE) == tuple(EVERY_FEATURE[55:58])
    assert not any(registry.USAGE_FEATURES.matches(n) for n in registry.names(registry.USAGE))


def test_labels_are_short_words_with_the_name_as_fallback():
    assert registry.label("days_since_last_purchase") == "days since last purchase"
    assert registry.label("satisfaction_last") == "low last satisfaction score"
    assert registry.label("purchase_days") == "purchase days"  # no label declared
    assert registry.label("usage_post_30d") == "usage post 30d"


def test_is_declared_refuses_a_name_nothing_builds():
    assert registry.is_declared("usage_app_open_days_since")
    assert not registry.is_declared("usage_post_31d")
    assert not registry.is_declared("tickets_91d")


def test_families_read_their_features_and_columns_from_the_registry():
    assert registry.names(registry.SUBSCRIPTIONS) == tuple(EVERY_FEATURE[-8:])
    assert registry.needs(registry.SUBSCRIPTIONS) == {
        "subscription_tenure_days": (),
        "days_to_renewal": (),
        "periods_paid_in_plan": (),
        "on_annual_plan": ("billing_period",),
        "plan_changes_365d": (),
        "downgrades_365d": ("amount",),
        "price_change": ("amount",),
        "paused_days_365d": (),
    }
    assert registry.BY_NAME["unresolved_30d"].table == "interactions"
    assert registry.BY_NAME["refunds_180d"].table == "transactions"


def test_every_declared_reason_is_a_documented_one():
    reasons = {f.reason for f in registry.FEATURES} | {p.reason for p in registry.PATTERNS}
    assert reasons <= set(REASONS)
    assert {f.monotone for f in registry.FEATURES} <= {-1, 0, 1}


def test_the_packaged_reason_map_is_the_registrys_defaults():
    reason_map = load_reason_map()

    assert {name: (fr.reason, fr.phrase) for name, fr in reason_map.features.items()} == {
        f.name: (f.reason, f.phrase) for f in registry.FEATURES
    }


def test_the_classifier_takes_its_monotone_directions_from_the_registry():
    names = EVERY_FEATURE

    assert monotone_constraints(names) == {
        "failed_payments_180d": 1,
        "late_payments_180d": 1,
        "complaints_90d": 1,
        "price_complaints_180d": 1,
        "unresolved_30d": 1,
        "unresolved_90d": 1,
        "unresolved_share_90d": 1,
        "satisfaction_last": -1,
        "satisfaction_mean_365d": -1,
        "outreach_ignored_90d": 1,
    }
    assert build_classifier(names).get_params()["monotone_constraints"] == (
        monotone_constraints(names)
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {"satisfaction_last": -1}),
        ({"monotone_constraints": {}}, {}),  # the caller's own wins, even empty
        ({"max_depth": 2}, {"satisfaction_last": -1}),
    ],
)
def test_classifier_params_merge_defaults_directions_and_overrides(overrides, expected):
    params = classifier_params(["tenure_days", "satisfaction_last"], **overrides)

    assert params.get("monotone_constraints") == expected
    assert params["max_depth"] == overrides.get("max_depth", 4)
    assert params["n_estimators"] == 200
    assert classifier_params(["tenure_days"]).get("monotone_constraints") is None


def test_docs_features_md_is_the_registry_rendered():
    assert DOCS.read_text() == registry.markdown_table(), (
        "docs/features.md is out of date; regenerate it as features.registry.markdown_table says"
    )
