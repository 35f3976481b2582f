"""The morning report for retention staff: one self-contained HTML page.

Who to call first and why, in the business's words: KPI tiles, the reason mix of the
call list against the documented shares, the ranked call list with drivers in plain
words and the playbook action, a driver chart for each of the top customers, and the
segment breakdown.

The content is plain tables from :mod:`models.reporting` and :mod:`models.report_charts`;
the page is ``templates/report.html.j2`` with ``templates/report.css`` inlined, rendered
with autoescaping, so every value that comes from data is escaped. The flows write it
with the other outputs through :func:`pipelines.catalog.write_atomic` (dataset
``"report"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache

import jinja2
import pandas as pd

from features.kpis import NEW_REVENUE_WARNING_SHARE
from models.reasons import REASONS, ReasonMap, load_reason_map
from models.report_charts import (
    DOCUMENTED_COLOUR,
    LOWERS_RISK_COLOUR,
    driver_cards,
    reason_mix_chart,
)
from models.reporting import (
    CALL_FIRST,
    DRIVER_CUSTOMERS,
    REQUIRED_COLUMNS,
    TABLE_ROWS,
    call_first_summary,
    call_list,
    campaign_rows,
    check_columns,
    header_counts,
    kpi_figures,
    reason_meaning,
    reason_mix,
    reason_style,
    score_date_of,
    segment_label,
    segment_table,
    segment_totals,
    win_back_table,
)
from models.thresholds import MIN_GROUP

__all__ = ["CALL_FIRST", "DRIVER_CUSTOMERS", "REQUIRED_COLUMNS", "TABLE_ROWS", "render_report"]

TEMPLATE = "report.html.j2"


def render_report(
    scored: pd.DataFrame,
    listed: pd.DataFrame,
    kpis: Mapping[str, float],
    drivers: pd.DataFrame,
    meta: Mapping[str, str],
    *,
    features: pd.DataFrame | None = None,
    reason_map: ReasonMap | None = None,
    call_first: int = CALL_FIRST,
    win_back: pd.DataFrame | None = None,
    campaign: pd.DataFrame | None = None,
    min_group: int = MIN_GROUP,
) -> str:
    """The report as one self-contained HTML document.

    Args:
        scored: every scored customer, columns of ``models.scoring.LIST_COLUMNS``.
        listed: the call list cut from ``scored`` (same columns), in call order.
        kpis: :func:`features.kpis.retention_kpis` merged with
            :func:`features.kpis.risk_kpis`; missing keys show as "n/a".
        drivers: SHAP contributions (log-odds) of the top listed customers, indexed by
            ``customer_id``, one column per model feature.
        meta: ``score_date``, ``model_name``, ``model_version``, ``generated_at``,
            ``business``; optionally ``currency`` (default "€") and ``horizon_days``.
        features: the scoring features (indexed by ``customer_id``); when given, driver
            charts are labelled with the customer's own values ("no purchase for 157
            days") instead of generic words.
        reason_map: colours each driver by its loss reason; the packaged map if None.
        call_first: how many customers the "who to call first" summary covers (drawn
            from the at-risk list only: a win-back is not a retention call).
        win_back: the win-back list (lapsed customers, same columns), or None.
        campaign: the evaluation of the matured listings
            (:func:`models.campaign.evaluate_campaigns`), or None before any history.
        min_group: the group size below which the evaluation says "not enough data yet".

    Raises:
        ValueError: ``scored`` or ``listed`` lacks a required column.
    """
    check_columns(scored, listed)
    reason_map = reason_map if reason_map is not None else load_reason_map()
    business = str(meta.get("business") or "")
    horizon = meta.get("horizon_days")
    mix = reason_mix(listed)
    return _template().render(
        title="Customers at risk of leaving" + (f": {business}" if business else ""),
        score_date=score_date_of(scored, meta),
        meta=meta,
        currency=str(meta.get("currency", "€")),
        horizon_days=int(float(horizon)) if horizon else None,
        counts=header_counts(scored, listed),
        summary=call_first_summary(listed, drivers, reason_map, call_first),
        kpi=kpi_figures(kpis),
        new_revenue_warning_share=NEW_REVENUE_WARNING_SHARE,
        mix=mix.to_dict("records"),
        mix_chart=reason_mix_chart(mix),
        segments=segment_table(scored, listed).to_dict("records"),
        segment_totals=segment_totals(scored, listed),
        call_list=call_list(listed, TABLE_ROWS),
        listed_total=len(listed),
        cards=driver_cards(listed, drivers, features, reason_map, DRIVER_CUSTOMERS),
        win_back=None if win_back is None else win_back_table(win_back, TABLE_ROWS),
        win_back_total=0 if win_back is None else len(win_back),
        campaign=campaign_rows(campaign),
        min_group=min_group,
        reasons=REASONS,
        lowers_risk_colour=LOWERS_RISK_COLOUR,
        documented_colour=DOCUMENTED_COLOUR,
    )


# --- the template and its number formats --------------------------------------------


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@jinja2.pass_context
def _money(context: jinja2.runtime.Context, value: float) -> str:
    if not _finite(value):
        return "n/a"
    return f"{context['currency']}{value:,.0f}"


def _pct(value: float | None, digits: int = 0) -> str:
    if not _finite(value):
        return "n/a"
    return f"{value * 100:.{digits}f}%"


def _prob(value: float) -> str:
    """A churn probability; never "100%" or "0%", which the model cannot know."""
    if not _finite(value):
        return "n/a"
    if value >= 0.995:
        return ">99%"
    if value < 0.005:
        return "<1%"
    return f"{value * 100:.0f}%"


def _number(value: float | None) -> str:
    return f"{value:,.0f}" if _finite(value) else "n/a"


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("pipelines", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        undefined=jinja2.StrictUndefined,  # a misspelt table name fails, not renders blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        money=_money, pct=_pct, prob=_prob, number=_number, thousands=lambda n: f"{int(n):,}"
    )
    environment.tests["finite"] = _finite
    environment.globals.update(
        reason_style=reason_style, reason_meaning=reason_meaning, segment_label=segment_label
    )
    return environment.get_template(TEMPLATE)
