"""Buy-'til-you-die baselines: the BG/NBD purchase model and the Gamma-Gamma spend model.

These are the models a data team would reach for on transaction-only data, implemented
from the published likelihoods so the benchmark does not depend on an unmaintained
package at run time (``lifetimes`` is used only in tests, as a cross-check).

Sources:
    * BG/NBD: Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "'Counting Your
      Customers' the Easy Way: An Alternative to the Pareto/NBD Model", *Marketing
      Science* 24(2), 275-284. Likelihood: equation (6); conditional expectation:
      equation (10). P(alive): Fader, Hardie and Lee (2008), "Computing P(alive) Using
      the BG/NBD Model", note at brucehardie.com, equation (2).
    * Gamma-Gamma: Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "RFM and CLV:
      Using Iso-Value Curves for Customer Base Analysis", *Journal of Marketing
      Research* 42(4), 415-430; and Fader and Hardie (2013), "The Gamma-Gamma Model of
      Monetary Value", note at brucehardie.com, equations (1) and (5).

Notation (the papers'): for each customer, ``x`` = number of repeat purchases (here:
distinct purchase *days* after the first), ``t_x`` = time from the first to the last
purchase ("recency" in BTYD usage, not days since the last purchase), ``T`` = time
from the first purchase to the end of the observation period (the cutoff), all in one
time unit chosen by the caller (:func:`summarise_rfm`). A horizon ``t`` passed to the
prediction functions must be in the same unit.

Model: while alive, a customer buys as a Poisson process with rate
``lambda ~ Gamma(r, alpha)``; after each purchase they drop out with probability
``p ~ Beta(a, b)``. Because drop-out can only happen right after a purchase, an alive
customer who makes no purchase in ``(T, T + t]`` is still alive at ``T + t``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import OptimizeResult, minimize
from scipy.special import betaln, expit, gammaln, hyp2f1

from features.windows import as_cutoff

ArrayLike = npt.ArrayLike

SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")


@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD parameters; ``alpha`` is in the time unit of the fitting data."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float  # total over the fitted customers
    n_customers: int

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters (``gamma`` is ``v`` in lifetimes)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    n_customers: int

    def as_dict(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}

    @property
    def population_mean_spend(self) -> float:
        """E[spend per transaction] for a customer we know nothing about: p*gamma/(q-1)."""
        if self.q <= 1:
            return float("inf")
        return self.p * self.gamma / (self.q - 1)


def summarise_rfm(
    transactions: pd.DataFrame, cutoff: str | pd.Timestamp, time_unit_days: float = 7.0
) -> pd.DataFrame:
    """Per-customer BTYD summary from purchases strictly before the cutoff.

    A purchase is a row with ``amount > 0`` (refunds and $0 rows are not visits, as in
    :func:`features.rfm.purchases_only`); purchases are counted per calendar day, so two
    orders on one day are one purchase of their summed value.

    Args:
        transactions: validated transactions (rows on or after ``cutoff`` are ignored).
        cutoff: end of the observation period (midnight, exclusive).
        time_unit_days: length of the time unit of ``recency`` and ``T`` in days
            (7 = weeks, as in the published CDNOW analyses).

    Returns:
        One row per customer with a purchase before the cutoff (index ``customer_id``,
        sorted) with ``frequency`` (repeat purchase days: distinct days minus one),
        ``recency`` (first to last purchase day, ``t_x``), ``T`` (first purchase day to
        cutoff) and ``monetary_value`` (mean value of the repeat purchase days, the first
        day excluded as in the Gamma-Gamma note; 0 when there is no repeat purchase).
    """
    if time_unit_days <= 0:
        raise ValueError(f"time_unit_days must be positive, got {time_unit_days}")
    cutoff = as_cutoff(cutoff)
    rows = transactions.loc[(transactions["timestamp"] < cutoff) & (transactions["amount"] > 0)]
    days = (
        rows.assign(day=rows["timestamp"].dt.normalize())
        .groupby(["customer_id", "day"], sort=True)["amount"]
        .sum()
        .reset_index()
    )
    if days.empty:
        empty = pd.DataFrame(columns=list(SUMMARY_COLUMNS), dtype=float)
        return empty.rename_axis("customer_id")
    by_customer = days.groupby("customer_id", sort=True)
    first = by_customer["day"].min()
    last = by_customer["day"].max()
    n_days = by_customer.size()
    total = by_customer["amount"].sum()
    first_value = by_customer["amount"].first()  # days are sorted within a customer
    frequency = (n_days - 1).astype(float)
    repeat_value = total - first_value
    unit = pd.Timedelta(days=time_unit_days)
    summary = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last - first) / unit,
            "T": (cutoff - first) / unit,
            "monetary_value": np.where(
                frequency > 0, repeat_value / frequency.where(frequency > 0, 1.0), 0.0
            ),
        }
    )
    return summary.rename_axis("customer_id").astype(float)


# --- BG/NBD ----------------------------------------------------------------------------


def _arrays(*values: ArrayLike) -> tuple[np.ndarray, ...]:
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in values))
    return tuple(np.array(a, dtype=float) for a in arrays)


def _check_summary(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> None:
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(big_t).all()):
        raise ValueError("frequency, recency and T must be finite")
    if (x < 0).any() or (t_x < 0).any() or (t_x > big_t + 1e-9).any():
        raise ValueError("need frequency >= 0 and 0 <= recency <= T")
    if ((x > 0) & (t_x <= 0)).any():
        raise ValueError("a customer with repeat purchases must have recency > 0")


def bgnbd_log_likelihood(
    r: float,
    alpha: float,
    a: float,
    b: float,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood, Fader, Hardie and Lee (2005), equation (6).

    ``L = B(a, b+x)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
    + [x > 0] B(a+1, b+x-1)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x))``,
    evaluated in logs (``logaddexp``) so large ``x`` does not overflow.
    """
    x, t_x, big_t = _arrays(frequency, recency, T)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    still_alive = betaln(a, b + x) - (r + x) * np.log(alpha + big_t)
    # x = 0 has no "dropped out after the last purchase" term; keep its arguments valid
    x_repeat = np.maximum(x, 1.0)
    dropped_out = betaln(a + 1, b + x_repeat - 1) - (r + x) * np.log(alpha + t_x)
    dropped_out = np.where(x > 0, dropped_out, -np.inf)
    return common + np.logaddexp(still_alive, dropped_out)


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    initial: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
) -> BGNBDParams:
    """Maximum-likelihood BG/NBD parameters.

    The log-parameters are optimised (so all four stay positive) with L-BFGS-B, then
    polished with Nelder-Mead. Customers with identical ``(x, t_x, T)`` are collapsed
    into weighted rows first, which changes nothing but speed.

    Args:
        frequency: repeat purchases ``x`` per customer.
        recency: ``t_x`` per customer.
        T: ``T`` per customer.
        initial: starting ``(r, alpha, a, b)``; ``alpha`` is given per unit of
            ``max(T)`` (time is rescaled to ``[0, 1]`` while fitting, for conditioning).

    Returns:
        The parameters in the data's time unit and the maximised total log-likelihood.

    Raises:
        ValueError: invalid summaries, or the optimiser did not converge.
    """
    x, t_x, big_t = _arrays(frequency, recency, T)
    if x.size == 0:
        raise ValueError("no customers to fit")
    _check_summary(x, t_x, big_t)
    scale = float(big_t.max()) if big_t.max() > 0 else 1.0
    unique, weights = np.unique(
        np.column_stack([x, t_x / scale, big_t / scale]), axis=0, return_counts=True
    )
    ux, ut_x, ut = unique.T
    total = weights.sum()

    def negative_mean_ll(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(log_params)
        ll = bgnbd_log_likelihood(r, alpha, a, b, ux, ut_x, ut)
        value = -float(np.dot(weights, ll)) / total
        return value if np.isfinite(value) else 1e12

    result = _minimise(negative_mean_ll, np.log(np.asarray(initial, dtype=float)))
    r, alpha, a, b = np.exp(result.x)
    alpha = alpha * scale
    # the optimum's value is on the rescaled clock; report the likelihood on the data's own
    log_likelihood = float(bgnbd_log_likelihood(r, alpha, a, b, x, t_x, big_t).sum())
    return BGNBDParams(
        r=float(r),
        alpha=float(alpha),
        a=float(a),
        b=float(b),
        log_likelihood=log_likelihood,
        n_customers=int(total),
    )


def _minimise(objective: Callable[[np.ndarray], float], start: np.ndarray) -> OptimizeResult:
    first = minimize(objective, start, method="L-BFGS-B")
    polished = minimize(
        objective,
        first.x,
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 20_000, "maxfev": 20_000},
    )
    best = polished if polished.fun <= first.fun else first
    if not np.isfinite(best.fun) or best.fun >= 1e12 or not np.isfinite(best.x).all():
        raise ValueError(f"maximum-likelihood fit did not converge: {best.message}")
    return best


def p_alive(
    params: BGNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """P(the customer is still alive at ``T``), Fader, Hardie and Lee (2008), eq. (2).

    ``1 / (1 + [x > 0] a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x))``; exactly 1 for a
    customer without repeat purchases (they cannot have dropped out: drop-out happens
    only right after a purchase).
    """
    x, t_x, big_t = _arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x_repeat = np.maximum(x, 1.0)
    log_odds_dead = (
        np.log(a)
        - np.log(b + x_repeat - 1)
        + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x))
    )
    return np.where(x > 0, expit(-log_odds_dead), 1.0)


def prob_no_purchase(
    params: BGNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, t: float
) -> np.ndarray:
    """P(no purchase in ``(T, T + t]`` | x, t_x, T): the BG/NBD churn-label probability.

    Derivation: a dead customer never buys; an alive one buys nothing in the next ``t``
    with probability ``exp(-lambda t)`` whatever ``p`` is. Given alive and the history,
    the likelihood in ``lambda`` is ``lambda^x exp(-lambda T)`` (from equation (3) of
    Fader, Hardie and Lee 2005), so the posterior of ``lambda`` is
    ``Gamma(r + x, alpha + T)`` and ``E[exp(-lambda t) | alive] =
    ((alpha + T)/(alpha + T + t))^(r + x)``. Hence::

        P(X(T, T+t) = 0) = 1 - P(alive) * (1 - ((alpha + T)/(alpha + T + t))^(r + x))

    Args:
        t: horizon length in the time unit of the fitting data.
    """
    if t < 0:
        raise ValueError(f"horizon t must not be negative, got {t}")
    x, t_x, big_t = _arrays(frequency, recency, T)
    alive = p_alive(params, x, t_x, big_t)
    no_purchase_if_alive = np.exp(
        (params.r + x) * (np.log(params.alpha + big_t) - np.log(params.alpha + big_t + t))
    )
    return 1.0 - alive * (1.0 - no_purchase_if_alive)


def expected_purchases(
    params: BGNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, t: float
) -> np.ndarray:
    """E[purchases in ``(T, T + t]`` | x, t_x, T], Fader, Hardie and Lee (2005), eq. (10).

    ``(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1;
    t/(alpha+T+t))] / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``
    (defined for ``a != 1``).
    """
    if t < 0:
        raise ValueError(f"horizon t must not be negative, got {t}")
    x, t_x, big_t = _arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + big_t + t)
    c = a + b + x - 1
    hyp = hyp2f1(r + x, b + x, c, z)
    # Euler's transformation where the series is slow or overflows
    bad = ~np.isfinite(hyp)
    if bad.any():
        hyp = np.where(
            bad, (1 - z) ** (c - (r + x) - (b + x)) * hyp2f1(c - r - x, c - b - x, c, z), hyp
        )
    decay = np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t)))
    numerator = (a + b + x - 1) / (a - 1) * (1 - decay * hyp)
    return numerator * p_alive(params, x, t_x, big_t)


# --- Gamma-Gamma ---------------------------------------------------------------------


def gamma_gamma_log_likelihood(
    p: float, q: float, gamma: float, frequency: ArrayLike, monetary_value: ArrayLike
) -> np.ndarray:
    """Per-customer log-density of the mean spend ``m_x`` over ``x`` transactions.

    Fader and Hardie (2013), equation (5):
    ``Gamma(px+q)/(Gamma(px) Gamma(q)) * gamma^q m_x^(px-1) x^(px) / (gamma + m_x x)^(px+q)``.
    Only defined for ``x > 0`` and ``m_x > 0``.
    """
    x, m = _arrays(frequency, monetary_value)
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(gamma)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(gamma + m * x)
    )


def fit_gamma_gamma(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    initial: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from customers with repeat purchases.

    Customers with ``frequency == 0`` (or no positive mean spend) carry no information
    on spend per repeat transaction and are left out, as in the note.

    Args:
        frequency: repeat purchases ``x`` per customer.
        monetary_value: mean value of those repeat purchases ``m_x``.
        initial: starting ``(p, q, gamma)``; ``gamma`` per unit of the median spend.
    """
    x, m = _arrays(frequency, monetary_value)
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    if not keep.any():
        raise ValueError("no customer with a repeat purchase to fit spend on")
    x, m = x[keep], m[keep]
    scale = float(np.median(m))
    m_scaled = m / scale

    def negative_mean_ll(log_params: np.ndarray) -> float:
        p, q, gamma = np.exp(log_params)
        value = -float(np.mean(gamma_gamma_log_likelihood(p, q, gamma, x, m_scaled)))
        return value if np.isfinite(value) else 1e12

    result = _minimise(negative_mean_ll, np.log(np.asarray(initial, dtype=float)))
    p, q, gamma = np.exp(result.x)
    # spend was divided by `scale` while fitting; gamma is in spend units
    gamma = gamma * scale
    log_likelihood = float(gamma_gamma_log_likelihood(p, q, gamma, x, m).sum())
    return GammaGammaParams(
        p=float(p),
        q=float(q),
        gamma=float(gamma),
        log_likelihood=log_likelihood,
        n_customers=int(len(x)),
    )


def expected_spend(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> np.ndarray:
    """E[spend per transaction | x, m_x], Fader and Hardie (2013), equation (6).

    ``(gamma + m_x x) p / (p x + q - 1)``: a weighted average of the population mean
    ``p gamma/(q-1)`` and the customer's own mean, weighted towards the customer as
    ``x`` grows. A customer with ``x = 0`` gets the population mean.

    Raises:
        ValueError: a customer has ``x = 0`` but ``q <= 1``, where the population mean
            spend is infinite.
    """
    x, m = _arrays(frequency, monetary_value)
    p, q, gamma = params.p, params.q, params.gamma
    if q <= 1 and (x == 0).any():
        raise ValueError(
            f"q = {q:.3f} <= 1: the mean spend of a customer without repeats is infinite"
        )
    m = np.where(x > 0, m, 0.0)
    return (gamma + m * x) * p / (p * x + q - 1)


def expected_horizon_spend(
    purchase_params: BGNBDParams,
    spend_params: GammaGammaParams,
    summary: pd.DataFrame,
    t: float,
) -> pd.Series:
    """Expected spend in ``(T, T + t]``: expected purchases times expected spend each.

    Args:
        summary: output of :func:`summarise_rfm`.
        t: horizon in the summary's time unit.
    """
    purchases = expected_purchases(
        purchase_params, summary["frequency"], summary["recency"], summary["T"], t
    )
    each = expected_spend(spend_params, summary["frequency"], summary["monetary_value"])
    return pd.Series(purchases * each, index=summary.index, name="expected_spend")
