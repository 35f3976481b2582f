"""The morning report for retention staff: one self-contained HTML page.

Who to call first and why, in the business's words: KPI tiles, the reason mix of the
call list against the documented shares, the ranked call list with drivers in plain
words and the playbook action, a driver chart for each of the top customers, and the
segment breakdown. Inline CSS and hand-drawn inline SVG only: no scripts, no fonts or
images from the network, so the file opens anywhere (mail attachment, shared drive).

Every value that comes from data passes through :func:`html.escape`.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

import pandas as pd

from features.kpis import (
    GRIEVANCE_RULE,
    LEAVE_ALONE_RULE,
    NEW_REVENUE_WARNING_SHARE,
    SEASONAL_GAP_RULE,
)
from features.segments import SEGMENTS
from models.reasons import REASON_SHARES, REASONS, ReasonMap, describe, load_reason_map

CALL_FIRST = 25
TABLE_ROWS = 50
DRIVER_CUSTOMERS = 20
DRIVERS_PER_CUSTOMER = 6

REQUIRED_COLUMNS = (
    "customer_id",
    "churn_probability",
    "expected_value",
    "value_at_risk",
    "segment",
    "top_reason",
    "top_drivers",
    "recommended_action",
    "action_rule",
)

REASON_LABELS = {
    "poor_interaction": "Poor interaction",
    "unidentified": "Unidentified",
    "competitor_offer": "Competitor offer",
    "business_change": "Business change",
    "relocation": "Relocation",
    "financial_distress": "Financial distress",
}
# What each reason means to someone on the phone (../shared/domain.md section 1).
REASON_MEANING = {
    "poor_interaction": "slow or unresolved issues, low satisfaction, little or no contact",
    "unidentified": "no specific cause; they are simply buying less and less often",
    "competitor_offer": "a better deal elsewhere (discount hunting, price complaints)",
    "business_change": "their needs changed (different products or order sizes)",
    "relocation": "they moved to another region or channel",
    "financial_distress": "money trouble (failed or late payments)",
}
# Okabe-Ito colours (safe for colour-blind readers); grey for "no clear cause".
REASON_COLOURS = {
    "poor_interaction": "#D55E00",
    "unidentified": "#7A7A7A",
    "competitor_offer": "#0072B2",
    "business_change": "#CC79A7",
    "relocation": "#009E73",
    "financial_distress": "#E69F00",
}
LOWERS_RISK_COLOUR = "#C9D1D9"
DOCUMENTED_COLOUR = "#D9DDE2"

SEGMENT_LABELS = {
    "seasonal": "Seasonal",
    "vip": "VIP",
    "fan": "Fan",
    "challenging": "Challenging",
    "regular": "Regular",
    "occasional": "Occasional",
}

# Short, value-free words for a feature, for charts and the summary. A feature missing
# here falls back to its name without underscores.
FEATURE_WORDS = {
    "days_since_last_purchase": "days since last purchase",
    "tenure_days": "time as a customer",
    "lifetime_purchases": "purchases in total",
    "purchases_30d": "purchases in the last 30 days",
    "purchases_90d": "purchases in the last 90 days",
    "purchases_prior_90d": "purchases in the 90 days before",
    "purchases_365d": "purchases in the last year",
    "spend_90d": "spend in the last 90 days",
    "spend_prior_90d": "spend in the 90 days before",
    "spend_365d": "spend in the last year",
    "avg_order_value": "average order value",
    "mean_gap_days": "usual time between purchases",
    "gap_std_days": "irregular buying",
    "max_gap_days": "longest gap between purchases",
    "overdue_ratio": "overdue against their own rhythm",
    "purchase_trend_90d": "fewer purchases than before",
    "spend_change_90d": "spend change",
    "purchases_same_season_last_year": "purchases this season last year",
    "peak_month_share": "seasonal buying",
    "discount_share_90d": "buying on discount",
    "discount_share_change_90d": "more buying on discount",
    "price_complaints_180d": "price complaints",
    "category_shift_90d": "changed what they buy",
    "new_category_share_90d": "buying in new categories",
    "quantity_change_90d": "order size change",
    "region_changed": "buying outside their region",
    "online_share_change_90d": "move to online orders",
    "failed_payments_180d": "failed payments",
    "late_payments_180d": "late payments",
    "refunds_180d": "refunds",
    "tickets_90d": "support tickets",
    "tickets_365d": "support tickets over the year",
    "complaints_90d": "complaints",
    "complaints_365d": "complaints over the year",
    "days_since_last_contact": "no contact for a long time",
    "unresolved_30d": "unresolved issues (30 days)",
    "unresolved_90d": "unresolved issues",
    "unresolved_share_90d": "share of issues unresolved",
    "mean_resolution_hours_180d": "slow issue resolution",
    "satisfaction_last": "low last satisfaction score",
    "satisfaction_mean_365d": "low satisfaction over the year",
    "satisfaction_trend": "falling satisfaction",
    "outreach_response_rate_180d": "not answering our contacts",
    "outreach_ignored_90d": "ignored our contacts",
}


# --- public API ---------------------------------------------------------------------


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

    Raises:
        ValueError: ``scored`` or ``listed`` lacks a required column.
    """
    for name, frame in (("scored", scored), ("listed", listed)):
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"render_report: `{name}` lacks columns {', '.join(missing)}")
    reason_map = reason_map if reason_map is not None else load_reason_map()
    fmt = _Formats(currency=str(meta.get("currency", "€")))
    score_date = _score_date(scored, meta)
    business = str(meta.get("business") or "")
    title = "Customers at risk of leaving" + (f": {business}" if business else "")
    sections = [
        _header(title, score_date, scored, listed, meta, fmt),
        _summary(listed, kpis, drivers, reason_map, meta, fmt, call_first),
        _kpi_tiles(kpis, fmt),
        '<div class="two-col">',
        _reason_mix(listed, fmt),
        _segments(scored, listed, fmt),
        "</div>",
        _top_customers(listed, fmt),
        _driver_charts(listed, drivers, features, reason_map, fmt),
        _win_back(win_back, fmt) if win_back is not None else "",
        _how_to_read(kpis, meta),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)} ({escape(score_date)})</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(sections)
        + "\n</main>\n</body>\n</html>\n"
    )


def write_report(html: str, path: Path) -> Path:
    """Write the report atomically: a temp file in the same folder, then ``os.replace``.

    A reader (or a failed run) never sees a half-written report; the previous one stays
    until the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            handle.write(html)
            handle.flush()
            os.fsync(handle.fileno())
        # temp files are private (0600); the report is for staff to open
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return path


# --- formatting ---------------------------------------------------------------------


class _Formats:
    def __init__(self, currency: str) -> None:
        self.currency = currency

    def money(self, value: float) -> str:
        if value is None or not math.isfinite(value):
            return "n/a"
        return f"{self.currency}{value:,.0f}"

    @staticmethod
    def pct(value: float | None, digits: int = 0) -> str:
        if value is None or not math.isfinite(value):
            return "n/a"
        return f"{value * 100:.{digits}f}%"

    @staticmethod
    def prob(value: float) -> str:
        """A churn probability; never "100%" or "0%", which the model cannot know."""
        if value is None or not math.isfinite(value):
            return "n/a"
        if value >= 0.995:
            return ">99%"
        if value < 0.005:
            return "<1%"
        return f"{value * 100:.0f}%"

    @staticmethod
    def count(value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return "n/a"
        return f"{value:,.0f}"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _kpi(kpis: Mapping[str, float], key: str) -> float:
    value = kpis.get(key)
    return math.nan if value is None else float(value)


def _score_date(scored: pd.DataFrame, meta: Mapping[str, str]) -> str:
    if meta.get("score_date"):
        return str(meta["score_date"])
    if "score_date" in scored.columns and len(scored):
        return str(pd.Timestamp(scored["score_date"].iloc[0]).date())
    return "unknown date"


def _reason_chip(reason: str) -> str:
    colour = REASON_COLOURS.get(reason, REASON_COLOURS["unidentified"])
    label = REASON_LABELS.get(reason, reason.replace("_", " "))
    return f'<span class="chip" style="background:{colour}">{_e(label)}</span>'


def _segment_label(segment: str) -> str:
    return SEGMENT_LABELS.get(segment, segment)


def _feature_words(feature: str) -> str:
    return FEATURE_WORDS.get(feature, feature.replace("_", " "))


def _horizon_text(meta: Mapping[str, str]) -> str:
    horizon = meta.get("horizon_days")
    return f"over the next {int(float(horizon))} days" if horizon else "over the coming period"


# --- sections -----------------------------------------------------------------------


def _header(
    title: str,
    score_date: str,
    scored: pd.DataFrame,
    listed: pd.DataFrame,
    meta: Mapping[str, str],
    fmt: _Formats,
) -> str:
    model = " ".join(
        str(v) for v in (meta.get("model_name"), meta.get("model_version")) if v
    ).strip()
    facts = [f"Score date <strong>{_e(score_date)}</strong>"]
    if model:
        facts.append(f"model <strong>{_e(model)}</strong>")
    if meta.get("generated_at"):
        facts.append(f"generated {_e(meta['generated_at'])}")
    leave_alone = int((scored["action_rule"] == LEAVE_ALONE_RULE).sum())
    off_season = int((scored["action_rule"] == SEASONAL_GAP_RULE).sum())
    counts = (
        f"<strong>{len(scored):,}</strong> customers scored · "
        f"<strong>{len(listed):,}</strong> on the call list · "
        f"<strong>{fmt.money(float(listed['value_at_risk'].sum()))}</strong> at risk · "
        f"<strong>{leave_alone:,}</strong> left alone"
        + (f" · <strong>{off_season:,}</strong> off-season" if off_season else "")
    )
    return (
        '<header id="header">'
        f"<h1>{_e(title)}</h1>"
        f'<p class="meta">{" · ".join(facts)}</p>'
        f'<p class="counts">{counts}</p>'
        "</header>"
    )


def _main_features(
    drivers: pd.DataFrame, customer_ids: Sequence[str], reason: str, reason_map: ReasonMap
) -> list[str]:
    """The features that push these customers' risk up most, within one reason."""
    if drivers.empty:
        return []
    rows = drivers.loc[drivers.index.astype(str).isin([str(c) for c in customer_ids])]
    columns = [
        c for c in rows.columns if c in reason_map.features and reason_map.reason_of(c) == reason
    ]
    if rows.empty or not columns:
        return []
    push = rows[columns].clip(lower=0.0).sum(axis=0).sort_values(ascending=False, kind="stable")
    return [_feature_words(str(f)) for f in push.index[:3] if push[f] > 0]


def _summary(
    listed: pd.DataFrame,
    kpis: Mapping[str, float],
    drivers: pd.DataFrame,
    reason_map: ReasonMap,
    meta: Mapping[str, str],
    fmt: _Formats,
    call_first: int,
) -> str:
    heading = '<section id="summary"><h2>Who to call first, and why</h2>'
    if listed.empty:
        return heading + (
            "<p>Nobody is on the call list today: no customer is both likely to leave and "
            "worth a call. Keep an eye on the key figures below.</p></section>"
        )
    first = listed.head(call_first)
    n = len(first)
    at_risk_first = float(first["value_at_risk"].sum())
    at_risk_all = float(listed["value_at_risk"].sum())
    whole = ""
    if len(listed) > n and at_risk_all > 0:
        whole = (
            f" ({fmt.pct(at_risk_first / at_risk_all)} of the {fmt.money(at_risk_all)} at risk "
            f"on the whole list of {len(listed):,})"
        )
    who = "this customer" if n == 1 else f"these {n} customers"
    items = [
        f"<li><strong>Call {who} first</strong>, the top of the list below: "
        f"{'' if n == 1 else 'together '}<strong>{fmt.money(at_risk_first)}</strong> of expected "
        f"spend at risk {_e(_horizon_text(meta))}{whole}.</li>"
    ]

    reasons = first["top_reason"].astype(str).value_counts()
    main, main_count = str(reasons.index[0]), int(reasons.iloc[0])
    how_many = "Most" if main_count * 2 > n else "The largest group"
    how_many += f" ({main_count} of {n})"
    words = _main_features(drivers, first["customer_id"].tolist(), main, reason_map)
    detail = f"; above all: {_e(', '.join(words))}" if words else ""
    others = ", ".join(
        f"{int(c)} {_e(REASON_LABELS.get(str(r), str(r)))}" for r, c in reasons.iloc[1:].items()
    )
    lead = f"{how_many} leave because of " if n > 1 else ""
    items.append(
        f"<li><strong>Why:</strong> {lead}{_reason_chip(main)}: "
        f"{_e(REASON_MEANING.get(main, main))}{detail}."
        + (f" Others: {others}." if others else "")
        + "</li>"
    )

    grievances = int((first["action_rule"] == GRIEVANCE_RULE).sum())
    if grievances:
        them = "This customer has" if n == 1 else f"<strong>{grievances} of them</strong> have"
        items.append(
            f"<li><strong>Careful:</strong> {them} an open grievance (an unresolved issue or a "
            "very low satisfaction score): <strong>apologise and fix it before any offer or "
            "promotion</strong>.</li>"
        )
    top = first.iloc[0]
    items.append(
        f'<li class="first-call"><strong>Start with</strong> '
        f'<strong class="cid">{_e(top["customer_id"])}</strong> '
        f"({_e(_segment_label(str(top['segment'])))}, "
        f"{fmt.prob(float(top['churn_probability']))} likely to leave, "
        f"{fmt.money(float(top['value_at_risk']))} at risk): "
        f"{_e(top['top_drivers'] or 'no single driver stands out')}. "
        f"<strong>What to do:</strong> {_e(top['recommended_action'])}.</li>"
    )
    leave_alone = _kpi(kpis, "leave_alone_count")
    if math.isfinite(leave_alone) and leave_alone > 0:
        items.append(
            f'<li class="aside">{fmt.count(leave_alone)} valuable customers who show no sign of '
            "leaving are deliberately not on the list: leave them alone (at most a thank-you)."
            "</li>"
        )
    off_season = _kpi(kpis, "seasonal_gap_count")
    if math.isfinite(off_season) and off_season > 0:
        items.append(
            f'<li class="aside">{fmt.count(off_season)} seasonal customers are quiet only '
            "because it is their off-season: not on the list; reach out just before their "
            "season.</li>"
        )
    return heading + "<ul>" + "".join(items) + "</ul></section>"


def _tile(label: str, value: str, note: str, warn: str = "") -> str:
    css = "tile warn" if warn else "tile"
    warning = f'<div class="warning">{_e(warn)}</div>' if warn else ""
    return (
        f'<div class="{css}"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div>{warning}<div class="note">{_e(note)}</div></div>'
    )


def _kpi_tiles(kpis: Mapping[str, float], fmt: _Formats) -> str:
    days = _kpi(kpis, "period_days")
    period = f"{days:.0f} days" if math.isfinite(days) else "period"
    new_share = _kpi(kpis, "new_customer_revenue_share")
    warn = ""
    if _kpi(kpis, "new_revenue_warning") >= 1.0 or new_share > NEW_REVENUE_WARNING_SHARE:
        warn = (
            f"Warning: over {NEW_REVENUE_WARNING_SHARE:.0%} of revenue comes from new customers; "
            "existing customers are not coming back."
        )
    tiles = [
        _tile(
            "Retention rate",
            fmt.pct(_kpi(kpis, "retention_rate")),
            f"customers who bought in the last {period}, minus new ones, per customer of the "
            f"{period} before ({fmt.count(_kpi(kpis, 'customers_at_start'))})",
        ),
        _tile(
            "Churn rate",
            fmt.pct(_kpi(kpis, "churn_rate")),
            f"of the customers of the {period} before, bought nothing in the last {period}",
        ),
        _tile(
            "Repeat-purchase rate",
            fmt.pct(_kpi(kpis, "repeat_purchase_rate")),
            f"of the last {period}' buyers bought on two or more days",
        ),
        _tile(
            "Revenue from new customers",
            fmt.pct(new_share, 1),
            f"of the last {period}' revenue ({fmt.money(_kpi(kpis, 'revenue'))}) came from "
            f"first-time buyers; a warning sign above {NEW_REVENUE_WARNING_SHARE:.0%}",
            warn,
        ),
        _tile(
            "Customers at risk",
            fmt.count(_kpi(kpis, "customers_at_risk")),
            f"on today's call list, of {fmt.count(_kpi(kpis, 'customers_scored'))} scored",
        ),
        _tile(
            "Revenue at risk",
            fmt.money(_kpi(kpis, "revenue_at_risk")),
            "expected spend of the call list, times each customer's chance of leaving",
        ),
        _tile(
            "Left alone",
            fmt.count(_kpi(kpis, "leave_alone_count")),
            "valuable customers with no sign of leaving: no campaign, at most a thank-you",
        ),
        _tile(
            "Open grievances",
            fmt.count(_kpi(kpis, "grievance_count")),
            "customers with an unresolved issue or very low satisfaction: apologise first",
        ),
    ]
    return (
        '<section id="kpis"><h2>Key figures</h2><div class="tiles">'
        + "".join(tiles)
        + ("</div></section>")
    )


def _reason_mix_svg(mix: pd.Series) -> str:
    """Grouped horizontal bars: share of the list per reason next to the documented share."""
    label_w, bar_w, row_h, top = 150, 330, 44, 26
    width, height = label_w + bar_w + 60, top + row_h * len(mix) + 6
    scale = max(max(mix.max(), max(REASON_SHARES.values())), 1e-9)
    out = [
        f'<svg viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="Reason mix of the call list">',
        f'<rect x="{label_w}" y="4" width="12" height="12" fill="#555"/>'
        f'<text x="{label_w + 16}" y="14" class="svg-small">this call list</text>'
        f'<rect x="{label_w + 120}" y="4" width="12" height="12" fill="{DOCUMENTED_COLOUR}" '
        f'stroke="#8a9099"/><text x="{label_w + 136}" y="14" class="svg-small">'
        "documented share of lost customers</text>",
    ]
    for i, (reason, share) in enumerate(mix.items()):
        y = top + i * row_h
        documented = REASON_SHARES.get(str(reason), 0.0)
        colour = REASON_COLOURS.get(str(reason), REASON_COLOURS["unidentified"])
        w_list, w_doc = bar_w * share / scale, bar_w * documented / scale
        label = REASON_LABELS.get(str(reason), str(reason))
        out.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" class="svg-label">'
            f"{_e(label)}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{w_list:.1f}" height="16" fill="{colour}">'
            f"<title>{_e(label)}: {share:.0%} of the call list</title></rect>"
            f'<text x="{label_w + w_list + 5:.1f}" y="{y + 17}" class="svg-value">'
            f"{share:.0%}</text>"
            f'<rect x="{label_w}" y="{y + 22}" width="{w_doc:.1f}" height="10" '
            f'fill="{DOCUMENTED_COLOUR}" stroke="#8a9099" stroke-width="0.5">'
            f"<title>documented: {documented:.0%}</title></rect>"
            f'<text x="{label_w + w_doc + 5:.1f}" y="{y + 31}" class="svg-small">'
            f"{documented:.0%}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _reason_mix(listed: pd.DataFrame, fmt: _Formats) -> str:
    reasons = list(REASONS) + sorted(set(listed["top_reason"].astype(str)) - set(REASONS))
    counts = listed["top_reason"].astype(str).value_counts().reindex(reasons, fill_value=0)
    value = listed.groupby(listed["top_reason"].astype(str))["value_at_risk"].sum()
    n = int(counts.sum())
    mix = counts / n if n else counts.astype(float)
    rows = "".join(
        f"<tr><td>{_reason_chip(r)}</td><td class='num'>{int(counts[r]):,}</td>"
        f"<td class='num'>{fmt.pct(float(mix[r])) if n else 'n/a'}</td>"
        f"<td class='num'>{fmt.pct(REASON_SHARES[r]) if r in REASON_SHARES else 'n/a'}</td>"
        f"<td class='num'>{fmt.money(float(value.get(r, 0.0)))}</td></tr>"
        for r in reasons
    )
    return (
        '<section id="reason-mix"><h2>Why they are leaving</h2>'
        f"<p class='lead'>Main reason of each of the {n:,} customers on the call list, next to "
        "how lost customers usually split across the documented reasons.</p>"
        + _reason_mix_svg(mix)
        + "<table class='compact'><thead><tr><th>Reason</th><th class='num'>Customers</th>"
        "<th class='num'>Share of list</th><th class='num'>Documented share</th>"
        "<th class='num'>Value at risk</th></tr></thead><tbody>"
        + rows
        + "</tbody></table></section>"
    )


def _segments(scored: pd.DataFrame, listed: pd.DataFrame, fmt: _Formats) -> str:
    order = list(SEGMENTS) + sorted(set(scored["segment"].astype(str)) - set(SEGMENTS))
    scored_seg = scored["segment"].astype(str)
    listed_seg = listed["segment"].astype(str)
    table = pd.DataFrame(
        {
            "customers": scored_seg.value_counts(),
            "at_risk": listed_seg.value_counts(),
            "value_at_risk": listed.groupby(listed_seg)["value_at_risk"].sum(),
            "left_alone": (scored["action_rule"] == LEAVE_ALONE_RULE).groupby(scored_seg).sum(),
            "off_season": (scored["action_rule"] == SEASONAL_GAP_RULE).groupby(scored_seg).sum(),
        }
    ).reindex(order)
    table = table.loc[table["customers"].fillna(0) > 0].fillna(0.0)
    table = table.sort_values("value_at_risk", ascending=False, kind="stable")
    rows = "".join(
        f"<tr><td>{_e(_segment_label(str(seg)))}</td>"
        f"<td class='num'>{fmt.count(r.customers)}</td>"
        f"<td class='num'>{fmt.count(r.at_risk)}</td>"
        f"<td class='num'>{fmt.pct(r.at_risk / r.customers)}</td>"
        f"<td class='num'>{fmt.money(r.value_at_risk)}</td>"
        f"<td class='num'>{fmt.count(r.left_alone)}</td>"
        f"<td class='num'>{fmt.count(r.off_season)}</td></tr>"
        for seg, r in table.iterrows()
    )
    total = (
        f"<tr class='total'><td>All</td><td class='num'>{len(scored):,}</td>"
        f"<td class='num'>{len(listed):,}</td>"
        f"<td class='num'>{fmt.pct(len(listed) / len(scored) if len(scored) else math.nan)}</td>"
        f"<td class='num'>{fmt.money(float(listed['value_at_risk'].sum()))}</td>"
        f"<td class='num'>{int((scored['action_rule'] == LEAVE_ALONE_RULE).sum()):,}</td>"
        f"<td class='num'>{int((scored['action_rule'] == SEASONAL_GAP_RULE).sum()):,}</td></tr>"
    )
    return (
        '<section id="segments"><h2>By customer type</h2>'
        "<p class='lead'>Where the value at risk sits. Not called: <em>left alone</em> "
        "(valuable, no sign of decline) and <em>off-season</em> (seasonal customers inside "
        "their normal gap).</p>"
        "<table class='compact'><thead><tr><th>Type</th><th class='num'>Customers</th>"
        "<th class='num'>On call list</th><th class='num'>Share</th>"
        "<th class='num'>Value at risk</th><th class='num'>Left alone</th>"
        "<th class='num'>Off-season</th></tr></thead><tbody>"
        + rows
        + total
        + "</tbody></table></section>"
    )


def _top_customers(listed: pd.DataFrame, fmt: _Formats) -> str:
    head = (
        '<section id="top-customers"><h2>The call list</h2>'
        f"<p class='lead'>In call order: highest value at risk first (chance of leaving × "
        f"expected spend). Showing {min(TABLE_ROWS, len(listed)):,} of {len(listed):,}; the "
        "full list is in at_risk.csv.</p>"
    )
    if listed.empty:
        return head + "<p>No customers on the call list.</p></section>"
    rows = []
    for position, (_, r) in enumerate(listed.head(TABLE_ROWS).iterrows(), start=1):
        probability = float(r["churn_probability"])
        drivers = [d for d in str(r["top_drivers"] or "").split("; ") if d]
        grievance = r["action_rule"] == GRIEVANCE_RULE
        badge = '<span class="badge">Apology first</span> ' if grievance else ""
        rows.append(
            f"<tr{' class=grievance' if grievance else ''}>"
            f"<td class='num rank'>{position}</td>"
            f"<td class='cid'>{_e(r['customer_id'])}</td>"
            f"<td>{_e(_segment_label(str(r['segment'])))}</td>"
            f"<td class='num'><div class='prob'><span style='width:{probability * 100:.0f}%'>"
            f"</span></div>{fmt.prob(probability)}</td>"
            f"<td class='num'>{fmt.money(float(r['value_at_risk']))}</td>"
            f"<td>{_reason_chip(str(r['top_reason']))}</td>"
            f"<td class='drivers'>{'<br>'.join(_e(d) for d in drivers) or '–'}</td>"
            f"<td class='action'>{badge}{_e(r['recommended_action'])}</td></tr>"
        )
    return (
        head + "<table class='list'><thead><tr><th class='num'>#</th><th>Customer</th><th>Type</th>"
        "<th class='num'>Chance of leaving</th><th class='num'>Value at risk</th>"
        "<th>Main reason</th><th>What we see</th><th>What to do</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _win_back(win_back: pd.DataFrame, fmt: _Formats) -> str:
    """Lapsed customers worth a win-back: most valuable first, reason as of when they
    went quiet."""
    head = (
        '<section id="win-back"><h2>Win-back: customers who have already lapsed</h2>'
        "<p class='lead'>Past their own buying rhythm, so most have already left: a "
        "win-back offer, not a retention call. Most valuable first (what they used to "
        f"spend over the horizon). Showing {min(TABLE_ROWS, len(win_back)):,} of "
        f"{len(win_back):,}; the full list is in win_back.csv.</p>"
    )
    if win_back.empty:
        return head + "<p>No lapsed customers worth a win-back.</p></section>"
    rows = []
    for position, (_, r) in enumerate(win_back.head(TABLE_ROWS).iterrows(), start=1):
        drivers = [d for d in str(r["top_drivers"] or "").split("; ") if d]
        as_of = pd.Timestamp(r["reason_as_of"]) if pd.notna(r["reason_as_of"]) else None
        rows.append(
            f"<tr><td class='num rank'>{position}</td>"
            f"<td class='cid'>{_e(r['customer_id'])}</td>"
            f"<td class='num'>{float(r['days_since_last_purchase']):.0f}</td>"
            f"<td class='num'>{fmt.money(float(r['expected_value']))}</td>"
            f"<td>{_reason_chip(str(r['top_reason']))}"
            f"{f'<br><small>as of {as_of.date()}</small>' if as_of is not None else ''}</td>"
            f"<td class='drivers'>{'<br>'.join(_e(d) for d in drivers) or '–'}</td>"
            f"<td class='action'>{_e(r['recommended_action'])}</td></tr>"
        )
    return (
        head + "<table class='list'><thead><tr><th class='num'>#</th><th>Customer</th>"
        "<th class='num'>Days quiet</th><th class='num'>Used to spend</th>"
        "<th>Why they left</th><th>What we saw then</th><th>What to do</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _driver_label(
    feature: str, customer_id: str, features: pd.DataFrame | None, reason_map: ReasonMap
) -> str:
    if features is not None and feature in reason_map.features:
        try:
            row = features.loc[customer_id]
        except KeyError:
            return _feature_words(feature)
        try:
            return describe(reason_map, feature, row.to_dict())
        except (KeyError, TypeError, ValueError):
            return _feature_words(feature)
    return _feature_words(feature)


def _driver_svg(
    contributions: pd.Series, customer_id: str, features: pd.DataFrame | None, reason_map: ReasonMap
) -> str:
    """Small diverging bar chart: what pushes this customer's risk up (right) or down."""
    shown = contributions.loc[contributions.abs().sort_values(ascending=False, kind="stable").index]
    shown = shown.loc[shown.abs() > 0].head(DRIVERS_PER_CUSTOMER)
    label_w, area_w, row_h = 330, 250, 24
    width, height = label_w + area_w + 10, row_h * max(len(shown), 1) + 8
    if shown.empty:
        return "<p class='muted'>No driver stands out for this customer.</p>"
    up = float(shown.clip(lower=0).max())
    down = float(-shown.clip(upper=0).min())
    zero = label_w + area_w * down / (up + down)
    scale = area_w / (up + down)
    out = [
        f'<svg viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="Drivers of risk for {_e(customer_id)}">'
    ]
    for i, (feature, value) in enumerate(shown.items()):
        y = 4 + i * row_h
        reason = (
            reason_map.reason_of(str(feature))
            if str(feature) in reason_map.features
            else "unidentified"
        )
        colour = REASON_COLOURS[reason] if value > 0 else LOWERS_RISK_COLOUR
        label = _driver_label(str(feature), customer_id, features, reason_map)
        short = label if len(label) <= 50 else label[:49] + "…"
        x = zero if value > 0 else zero - abs(value) * scale
        effect = "raises" if value > 0 else "lowers"
        out.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" class="svg-label">'
            f"<title>{_e(label)}</title>{_e(short)}</text>"
            f'<rect x="{x:.1f}" y="{y + 3}" width="{max(abs(value) * scale, 1.0):.1f}" '
            f'height="16" fill="{colour}"><title>{_e(label)}: {effect} risk '
            f"({_e(REASON_LABELS.get(reason, reason))}, {value:+.2f} log-odds)</title></rect>"
        )
    out.append(
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="2" y2="{height - 2}" stroke="#333" '
        'stroke-width="1"/></svg>'
    )
    return "".join(out)


def _driver_charts(
    listed: pd.DataFrame,
    drivers: pd.DataFrame,
    features: pd.DataFrame | None,
    reason_map: ReasonMap,
    fmt: _Formats,
) -> str:
    legend = "".join(
        f'<span class="key"><i style="background:{REASON_COLOURS[r]}"></i>'
        f"{_e(REASON_LABELS[r])}</span>"
        for r in REASONS
    ) + (f'<span class="key"><i style="background:{LOWERS_RISK_COLOUR}"></i>lowers risk</span>')
    head = (
        '<section id="drivers"><h2>What drives each top customer\'s risk</h2>'
        "<p class='lead'>For each of the top customers, the facts that move their risk most. "
        "Bars to the right of the line raise the risk (coloured by reason), bars to the left "
        "lower it; longer means stronger, scaled per customer.</p>"
        f"<div class='legend'>{legend}</div>"
    )
    drivers = drivers.copy()
    drivers.index = drivers.index.astype(str)
    if features is not None:
        features = features.copy()
        features.index = features.index.astype(str)
    # position on today's list (risk_rank also counts callable customers under the threshold)
    positioned = listed.assign(position=range(1, len(listed) + 1))
    chosen = positioned.loc[positioned["customer_id"].astype(str).isin(drivers.index)].head(
        DRIVER_CUSTOMERS
    )
    if chosen.empty:
        return head + "<p>No driver details for this list.</p></section>"
    cards = []
    for _, r in chosen.iterrows():
        cid = str(r["customer_id"])
        cards.append(
            f'<div class="card" data-customer="{_e(cid)}">'
            f"<div class='card-head'><span class='rank'>#{int(r['position'])}</span> "
            f"<strong class='cid'>{_e(cid)}</strong> · "
            f"{_e(_segment_label(str(r['segment'])))} · "
            f"{fmt.prob(float(r['churn_probability']))} likely to leave · "
            f"{fmt.money(float(r['value_at_risk']))} at risk "
            f"{_reason_chip(str(r['top_reason']))}</div>"
            + _driver_svg(drivers.loc[cid].astype(float), cid, features, reason_map)
            + f"<div class='card-action'><em>What to do:</em> {_e(r['recommended_action'])}"
            "</div></div>"
        )
    return head + "<div class='cards'>" + "".join(cards) + "</div></section>"


def _how_to_read(kpis: Mapping[str, float], meta: Mapping[str, str]) -> str:
    days = _kpi(kpis, "period_days")
    period = f"{days:.0f}" if math.isfinite(days) else "N"
    return (
        '<footer id="how-to-read"><h2>How to read this report</h2><ul>'
        "<li><strong>Chance of leaving</strong>: the model's probability that the customer "
        f"buys nothing {_e(_horizon_text(meta))}.</li>"
        "<li><strong>Value at risk</strong>: chance of leaving × what the customer is expected "
        "to spend if they stay, from their own last year. The list is ranked by it.</li>"
        "<li><strong>Main reason</strong>: the documented loss reason that the customer's "
        "warning signs point to; <em>Unidentified</em> when nothing specific stands out "
        "beyond buying less often.</li>"
        "<li><strong>Apology first</strong>: an unresolved issue or a very low satisfaction "
        "score. Fix it before any offer: a promotion on top of a grievance backfires.</li>"
        f"<li><strong>Retention rate</strong> = (customers who bought in the last {period} days "
        f"− new customers among them) ÷ customers who bought in the {period} days before. "
        "Customers who return after a pause count as retained, so it can be higher than "
        "100% − churn rate.</li>"
        "</ul></footer>"
    )


_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#1f2328;
font:14px/1.45 "DejaVu Sans",system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1340px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:18px;margin:0 0 8px}
header{margin-bottom:14px}
header .meta{color:#57606a;margin:0}
header .counts{margin:6px 0 0;font-size:15px}
section,footer{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:16px 18px;
margin-bottom:16px}
#summary{border-left:6px solid #D55E00;font-size:15.5px}
#summary p{margin:0 0 8px}
#summary .first-call{background:#fff6ef;border-radius:6px;padding:8px 10px}
#summary .aside{color:#57606a;font-size:14px;margin:0}
.lead{color:#57606a;margin:0 0 10px}
.muted{color:#57606a}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:12px}
.tile{border:1px solid #d8dee4;border-radius:8px;padding:10px 12px;background:#fafbfc}
.tile .label{font-size:13px;color:#57606a;font-weight:bold;text-transform:uppercase;
letter-spacing:.02em}
.tile .value{font-size:28px;font-weight:bold;margin:2px 0}
.tile .note{font-size:12.5px;color:#57606a}
.tile.warn{border:2px solid #cf222e;background:#fff0f0}
.tile .warning{color:#cf222e;font-weight:bold;font-size:13px;margin-bottom:4px}
.two-col{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:16px;
align-items:start}
.two-col section{margin-bottom:16px;min-width:0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e6e9ed;vertical-align:top}
th{font-size:12.5px;color:#57606a;background:#f6f8fa;border-bottom:1px solid #d8dee4}
td.num,th.num{text-align:right}
td.num{white-space:nowrap}
tr.total td{font-weight:bold;border-top:2px solid #d8dee4}
table.compact{margin-top:8px}
table.list td{font-size:13px}
table.list td.rank{font-weight:bold}
table.list td.drivers{color:#30363d;max-width:380px}
table.list td.action{max-width:300px}
table.list tr.grievance td.action{color:#82071e}
.cid{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;white-space:nowrap}
.chip{display:inline-block;color:#fff;border-radius:10px;padding:1px 8px;font-size:12px;
white-space:nowrap;font-weight:bold}
.badge{display:inline-block;background:#cf222e;color:#fff;border-radius:4px;padding:0 5px;
font-size:11.5px;font-weight:bold;white-space:nowrap}
.prob{display:inline-block;width:46px;height:8px;background:#eaeef2;border-radius:4px;
margin-right:6px;vertical-align:middle;overflow:hidden}
.prob span{display:block;height:100%;background:#cf222e}
.legend{margin:0 0 10px}
.key{display:inline-block;margin-right:14px;font-size:12.5px}
.key i{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-1px;
border-radius:2px}
.cards{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.card{border:1px solid #d8dee4;border-radius:8px;padding:10px 12px;break-inside:avoid}
.card-head{margin-bottom:6px}
.card-head .rank{font-weight:bold;color:#57606a}
.card-action{font-size:13px;color:#30363d;margin-top:4px}
footer ul{margin:0;padding-left:20px}
footer li{margin-bottom:4px}
svg .svg-label{font-size:12.5px;fill:#1f2328}
svg .svg-value{font-size:12px;font-weight:bold;fill:#1f2328}
svg .svg-small{font-size:11px;fill:#57606a}
svg text{font-family:"DejaVu Sans",system-ui,sans-serif}
@media print{body{background:#fff}section,footer{break-inside:avoid}}
"""
