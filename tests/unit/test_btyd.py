import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from models import btyd

T = pd.Timestamp
CUTOFF = "2024-01-29"

# Parameters chosen so the formulas reduce to fractions by hand: B(1, b) = 1/b.
R, ALPHA, A, B = 2.0, 3.0, 1.0, 2.0


def _with_a(a: float) -> btyd.BGNBDParams:
    return btyd.BGNBDParams(r=R, alpha=ALPHA, a=a, b=B, log_likelihood=math.nan, n_customers=0)


HAND = _with_a(A)


@pytest.fixture
def transactions() -> pd.DataFrame:
    rows = [
        # a: three purchase days (two orders on Jan 1), a refund, one order on the cutoff
        ("a", "2024-01-01 09:00", 10.0),
        ("a", "2024-01-01 17:00", 5.0),
        ("a", "2024-01-08 12:00", 20.0),
        ("a", "2024-01-15 12:00", 30.0),
        ("a", "2024-01-16 12:00", -5.0),
        ("a", "2024-01-29 00:00", 99.0),
        # b: one purchase a week before the cutoff
        ("b", "2024-01-22 10:30", 40.0),
        # c: a $0 row (not a purchase), then two purchase days
        ("c", "2024-01-02 08:00", 0.0),
        ("c", "2024-01-08 11:00", 12.0),
        ("c", "2024-01-22 23:59", 8.0),
        # d: buys only after the cutoff; e: only a $0 row
        ("d", "2024-02-01 10:00", 15.0),
        ("e", "2024-01-03 10:00", 0.0),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    return frame.assign(timestamp=pd.to_datetime(frame["timestamp"]))


def test_summarise_rfm_in_weeks(transactions):
    summary = btyd.summarise_rfm(transactions, CUTOFF, time_unit_days=7)

    expected = pd.DataFrame(
        {
            # a: days Jan 1, 8, 15 -> 2 repeats; first to last 14 days; Jan 1 to cutoff 28
            # days; repeat days worth 20 and 30. c: Jan 8 and 22 -> 1 repeat worth 8.
            "frequency": [2.0, 0.0, 1.0],
            "recency": [2.0, 0.0, 2.0],
            "T": [4.0, 1.0, 3.0],
            "monetary_value": [25.0, 0.0, 8.0],
        },
        index=pd.Index(["a", "b", "c"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(summary, expected, check_index_type=False)


def test_summarise_rfm_in_days(transactions):
    summary = btyd.summarise_rfm(transactions, CUTOFF, time_unit_days=1)

    assert summary.loc["a", ["recency", "T"]].tolist() == [14.0, 28.0]
    assert summary.loc["c", ["recency", "T"]].tolist() == [14.0, 21.0]


def test_summarise_rfm_without_purchases_is_empty(transactions):
    summary = btyd.summarise_rfm(transactions, "2023-06-01")

    assert summary.empty
    assert list(summary.columns) == list(btyd.SUMMARY_COLUMNS)


def test_log_likelihood_by_hand():
    ll = btyd.bgnbd_log_likelihood(R, ALPHA, A, B, [0, 1], [0.0, 1.0], [1.0, 2.0])

    # x = 0, T = 1: only the "alive" term, (alpha / (alpha + T))^r = (3/4)^2
    # x = 1, t_x = 1, T = 2:
    #   alive: B(1, 3)/B(1, 2) * Gamma(3) 3^2 / (Gamma(2) 5^3) = (2/3) * 18/125 = 12/125
    #   dead:  B(2, 2)/B(1, 2) * Gamma(3) 3^2 / (Gamma(2) 4^3) = (1/3) * 18/64 = 3/32
    assert ll == pytest.approx(np.log([9 / 16, 12 / 125 + 3 / 32]))


def test_log_likelihood_integrates_the_model_over_its_priors():
    # eq. (6) is the individual likelihood averaged over lambda ~ Gamma(r, alpha) and
    # p ~ Beta(a, b); check it against that double integral at other parameters
    r, alpha, a, b, x, t_x, big_t = 1.5, 2.5, 0.8, 2.2, 3, 4.0, 6.0

    def integrand(p, lam):
        prior = stats.gamma.pdf(lam, r, scale=1 / alpha) * stats.beta.pdf(p, a, b)
        alive = lam**x * np.exp(-lam * big_t) * (1 - p) ** x
        dead = lam**x * np.exp(-lam * t_x) * p * (1 - p) ** (x - 1)
        return prior * (alive + dead)

    expected = integrate.dblquad(integrand, 0, np.inf, 0, 1)[0]

    assert np.exp(btyd.bgnbd_log_likelihood(r, alpha, a, b, x, t_x, big_t)) == pytest.approx(
        expected, rel=1e-6
    )


def test_p_alive_without_repeat_purchases_is_one():
    assert btyd.p_alive(HAND, [0, 0], [0.0, 0.0], [1.0, 50.0]).tolist() == [1.0, 1.0]


def test_p_alive_by_hand():
    # 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)) = 1 / (1 + 1/2 (5/4)^3) = 128/253
    assert btyd.p_alive(HAND, 1, 1.0, 2.0) == pytest.approx(128 / 253)


def test_prob_no_purchase_by_hand():
    # 1 - P(alive) (1 - ((alpha+T)/(alpha+T+t))^(r+x)) with t = 3:
    # 1 - 128/253 * (1 - (5/8)^3) = 625/1012
    assert btyd.prob_no_purchase(HAND, 1, 1.0, 2.0, 3.0) == pytest.approx(625 / 1012)
    # no repeat purchase: alive for sure, ((alpha+T)/(alpha+T+t))^r = (4/7)^2
    assert btyd.prob_no_purchase(HAND, 0, 0.0, 1.0, 3.0) == pytest.approx(16 / 49)
    assert btyd.prob_no_purchase(HAND, 1, 1.0, 2.0, 0.0) == pytest.approx(1.0)


@pytest.mark.parametrize(("x", "t_x", "big_t", "t"), [(1, 1.0, 2.0, 3.0), (4, 3.0, 10.0, 5.0)])
def test_prob_no_purchase_matches_the_model_integrated_numerically(x, t_x, big_t, t):
    # P(no purchase in (T, T+t] | history) from the joint posterior of (lambda, p),
    # independently of the closed form: a dead customer never buys, an alive one
    # buys nothing in t with probability exp(-lambda t)
    def weight(p, lam, future):
        prior = stats.gamma.pdf(lam, R, scale=1 / ALPHA) * stats.beta.pdf(p, A, B)
        alive = lam**x * np.exp(-lam * big_t) * (1 - p) ** x
        dead = lam**x * np.exp(-lam * t_x) * p * (1 - p) ** (x - 1)
        return prior * (alive * future(lam) + dead)

    numerator = integrate.dblquad(
        lambda p, lam: weight(p, lam, lambda v: np.exp(-v * t)), 0, np.inf, 0, 1
    )[0]
    denominator = integrate.dblquad(lambda p, lam: weight(p, lam, lambda v: 1.0), 0, np.inf, 0, 1)[
        0
    ]

    assert btyd.prob_no_purchase(HAND, x, t_x, big_t, t) == pytest.approx(
        numerator / denominator, rel=1e-6
    )


def test_expected_purchases_start_at_the_alive_customers_rate():
    # d/dt E[Y(t)] at t = 0 is P(alive) * E[lambda | alive] = P(alive) (r + x)/(alpha + T)
    params = _with_a(2.0)  # the expectation needs a != 1
    alive = btyd.p_alive(params, 1, 1.0, 2.0)
    t = 1e-6

    assert btyd.expected_purchases(params, 1, 1.0, 2.0, 0.0) == pytest.approx(0.0)
    assert btyd.expected_purchases(params, 1, 1.0, 2.0, t) / t == pytest.approx(
        alive * 3 / 5, rel=1e-5
    )


def test_expected_purchases_grow_with_the_horizon():
    values = [btyd.expected_purchases(_with_a(0.8), 2, 3.0, 5.0, t) for t in (1.0, 5.0, 20.0)]

    assert values[0] < values[1] < values[2]


def test_fit_bgnbd_recovers_simulated_parameters():
    # 4,000 customers drawn from the model itself, observed for 52 weeks
    rng = np.random.default_rng(7)
    n, big_t = 4000, 52.0
    true = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 3.0}
    lam = rng.gamma(true["r"], 1 / true["alpha"], n)
    p = rng.beta(true["a"], true["b"], n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > big_t:
                break
            x[i], t_x[i] = x[i] + 1, t
            if rng.random() < p[i]:
                break

    fit = btyd.fit_bgnbd(x, t_x, np.full(n, big_t))

    assert fit.n_customers == n
    assert fit.as_dict() == pytest.approx(true, rel=0.25)
    assert fit.log_likelihood == pytest.approx(
        btyd.bgnbd_log_likelihood(fit.r, fit.alpha, fit.a, fit.b, x, t_x, big_t).sum()
    )
    # a maximum: nudging any parameter lowers the likelihood
    for name in ("r", "alpha", "a", "b"):
        nudged = {**fit.as_dict(), name: getattr(fit, name) * 1.05}
        ll = btyd.bgnbd_log_likelihood(*nudged.values(), x, t_x, big_t).sum()
        assert ll < fit.log_likelihood


@pytest.mark.parametrize(
    ("x", "t_x", "big_t"),
    [([1], [3.0], [2.0]), ([-1], [0.0], [2.0]), ([2], [0.0], [2.0]), ([np.nan], [1.0], [2.0])],
)
def test_fit_bgnbd_rejects_impossible_summaries(x, t_x, big_t):
    with pytest.raises(ValueError):
        btyd.fit_bgnbd(x, t_x, big_t)


def test_gamma_gamma_log_likelihood_by_hand():
    # p=1, q=2, gamma=3, x=1, m=2:
    # Gamma(3)/(Gamma(1) Gamma(2)) 3^2 2^0 1^1 / (3 + 2)^3 = 18/125
    assert btyd.gamma_gamma_log_likelihood(1.0, 2.0, 3.0, 1, 2.0) == pytest.approx(np.log(18 / 125))


def test_expected_spend_by_hand():
    params = btyd.GammaGammaParams(p=1.0, q=2.0, gamma=3.0, log_likelihood=0.0, n_customers=0)

    # (gamma + m x) p / (p x + q - 1): (3 + 2)/2 = 2.5; (3 + 3*10)/(3 + 1) = 8.25;
    # no repeat purchase -> population mean p gamma/(q - 1) = 3
    assert btyd.expected_spend(params, [1, 3, 0], [2.0, 10.0, 0.0]) == pytest.approx(
        [2.5, 8.25, 3.0]
    )
    assert params.population_mean_spend == 3.0


def test_fit_gamma_gamma_ignores_customers_without_repeat_purchases():
    frequency = [1, 2, 3, 1, 5, 2, 0, 0]
    spend = [10.0, 12.0, 30.0, 8.0, 20.0, 15.0, 0.0, 0.0]

    fit = btyd.fit_gamma_gamma(frequency, spend)
    alone = btyd.fit_gamma_gamma(frequency[:6], spend[:6])

    assert fit.n_customers == 6
    assert fit.as_dict() == pytest.approx(alone.as_dict())
    assert fit.log_likelihood == pytest.approx(
        btyd.gamma_gamma_log_likelihood(fit.p, fit.q, fit.gamma, frequency[:6], spend[:6]).sum()
    )


def test_expected_horizon_spend_is_purchases_times_spend(transactions):
    summary = btyd.summarise_rfm(transactions, CUTOFF)
    purchases = _with_a(0.8)
    spend = btyd.GammaGammaParams(p=2.0, q=3.0, gamma=10.0, log_likelihood=0.0, n_customers=0)

    result = btyd.expected_horizon_spend(purchases, spend, summary, 4.0)

    expected = btyd.expected_purchases(
        purchases, summary["frequency"], summary["recency"], summary["T"], 4.0
    ) * btyd.expected_spend(spend, summary["frequency"], summary["monetary_value"])
    assert result.index.equals(summary.index)
    assert result.to_numpy() == pytest.approx(expected)


def test_expected_spend_without_repeats_needs_a_finite_population_mean():
    heavy_tail = btyd.GammaGammaParams(p=1.0, q=0.9, gamma=3.0, log_likelihood=0.0, n_customers=0)

    assert btyd.expected_spend(heavy_tail, [2], [10.0]) == pytest.approx([(3 + 20) / 1.9])
    with pytest.raises(ValueError, match="q = 0.900"):
        btyd.expected_spend(heavy_tail, [0], [0.0])
