"""``models.btyd`` on the real CDNOW data, against the published fit and ``lifetimes``.

``lifetimes`` (dev extra) is imported here only as an independent implementation to
compare with; the pipeline never imports it.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contracts import validate_table
from models import btyd
from simulation import cdnow

CALIBRATION_END = "1997-10-01"  # 39 weeks after 1997-01-01, as in the BG/NBD paper
WEEK = 7.0

# Fader, Hardie and Lee (2005), section 4: the 2,357-customer CDNOW sample, weeks.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_LL = -9582.4


def _lifetimes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns on import under current pandas
        import lifetimes

    return lifetimes


def _dataset(name: str) -> Path:
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / name


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return validate_table(cdnow.load_cdnow(), "transactions", source=cdnow.FILE_NAME).frame


@pytest.fixture(scope="module")
def summary(transactions: pd.DataFrame) -> pd.DataFrame:
    return btyd.summarise_rfm(transactions, CALIBRATION_END, WEEK)


@pytest.fixture(scope="module")
def fitted(summary: pd.DataFrame) -> btyd.BGNBDParams:
    return btyd.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])


def test_fit_on_the_published_sample_reproduces_the_paper() -> None:
    sample = pd.read_csv(_dataset("cdnow_customers_summary.csv"))
    assert len(sample) == 2357

    fit = btyd.fit_bgnbd(sample["frequency"], sample["recency"], sample["T"])

    assert fit.as_dict() == pytest.approx(PUBLISHED, abs=1e-3)
    assert fit.log_likelihood == pytest.approx(PUBLISHED_LL, abs=0.1)


def test_summary_matches_lifetimes(transactions: pd.DataFrame, summary: pd.DataFrame) -> None:
    utils = _lifetimes().utils
    cutoff = pd.Timestamp(CALIBRATION_END)
    before = transactions.loc[
        (transactions["timestamp"] < cutoff) & (transactions["amount"] > 0)
    ].assign(customer_id=lambda f: f["customer_id"].astype(object))
    # lifetimes keeps rows up to and including its period end and counts T to it
    theirs = utils.summary_data_from_transaction_data(
        before,
        "customer_id",
        "timestamp",
        monetary_value_col="amount",
        observation_period_end=cutoff,
        freq="D",
    )
    theirs = theirs.reindex(summary.index)

    assert len(summary) == 23_500  # 70 customers have only $0 rows before the cutoff
    np.testing.assert_array_equal(summary["frequency"], theirs["frequency"])
    np.testing.assert_allclose(summary["recency"] * WEEK, theirs["recency"])
    np.testing.assert_allclose(summary["T"] * WEEK, theirs["T"])
    np.testing.assert_allclose(summary["monetary_value"], theirs["monetary_value"], rtol=1e-9)


def test_full_log_fit_matches_lifetimes_and_the_published_order(
    summary: pd.DataFrame, fitted: btyd.BGNBDParams
) -> None:
    theirs = (
        _lifetimes().BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    )

    assert fitted.as_dict() == pytest.approx(theirs.params_.to_dict(), rel=1e-3)
    # same order as the 1-in-10 sample's published values
    for name, value in PUBLISHED.items():
        assert 0.5 * value < getattr(fitted, name) < 2 * value, name


def test_predictions_match_lifetimes(summary: pd.DataFrame, fitted: btyd.BGNBDParams) -> None:
    theirs = _lifetimes().BetaGeoFitter()
    theirs.params_ = pd.Series(fitted.as_dict())
    args = (summary["frequency"], summary["recency"], summary["T"])

    np.testing.assert_allclose(
        btyd.p_alive(fitted, *args), theirs.conditional_probability_alive(*args), atol=1e-9
    )
    np.testing.assert_allclose(
        btyd.expected_purchases(fitted, *args, 13.0),
        theirs.conditional_expected_number_of_purchases_up_to_time(13.0, *args),
        rtol=1e-6,
    )


def test_gamma_gamma_matches_lifetimes(summary: pd.DataFrame) -> None:
    repeat = summary.loc[summary["frequency"] > 0]
    theirs = _lifetimes().GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])

    fit = btyd.fit_gamma_gamma(summary["frequency"], summary["monetary_value"])

    params = theirs.params_
    assert fit.as_dict() == pytest.approx(
        {"p": params["p"], "q": params["q"], "gamma": params["v"]}, rel=1e-3
    )
    np.testing.assert_allclose(
        btyd.expected_spend(fit, repeat["frequency"], repeat["monetary_value"]),
        theirs.conditional_expected_average_profit(repeat["frequency"], repeat["monetary_value"]),
        rtol=1e-3,
    )
