"""Buying seasons of the retail scenario: the calendar, seasonal signups and purchases.

Season bounds are day offsets from ``start``, one row per season of ``SEASON_WINDOWS``
and one column per calendar year; the hazard scenario reads the same calendar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulation.business import SEASON_WINDOWS


def season_bounds(start: pd.Timestamp, end: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Day offsets [opens, closes) of every season in every year.

    Args:
        start: Day 0 of the simulation.
        end: Last instant of the period; every calendar year it touches gets a column.

    Returns:
        Open and close days, each of shape (season, year), seasons as in ``SEASON_WINDOWS``.
    """
    years = range(start.year, end.year + 1)
    opens = np.empty((len(SEASON_WINDOWS), len(years)))
    closes = np.empty_like(opens)
    for s, (first_month, last_month) in enumerate(SEASON_WINDOWS.values()):
        for y, year in enumerate(years):
            opens[s, y] = (pd.Timestamp(year, first_month, 1) - start).days
            closes[s, y] = (
                pd.Timestamp(year, first_month, 1)
                + pd.DateOffset(months=last_month - first_month + 1)
                - start
            ).days
    return opens, closes


def _season_in_row(
    opens: np.ndarray, closes: np.ndarray, candidate: np.ndarray, column: np.ndarray, n_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Open and close day of the season at ``column`` of each row that has a ``candidate``.

    Rows with none get ``n_days`` for both, i.e. an empty season at the end; a close past
    the end is cut at ``n_days``.
    """
    rows = np.arange(len(opens))
    found = candidate.any(axis=1)
    return (
        np.where(found, opens[rows, column], n_days),
        np.where(found, np.minimum(closes[rows, column], n_days), n_days),
    )


def _next_season(
    opens: np.ndarray, closes: np.ndarray, day: np.ndarray, n_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Open and close day of each row's first season (one row of years) closing after ``day``."""
    later = closes > day[:, None]
    return _season_in_row(opens, closes, later, np.argmax(later, axis=1), n_days)


def _last_season(
    opens: np.ndarray, closes: np.ndarray, n_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Open and close day of each row's last season opening inside [0, n_days)."""
    inside = (opens >= 0) & (opens < n_days)
    last = inside.shape[1] - 1 - np.argmax(inside[:, ::-1], axis=1)
    return _season_in_row(opens, closes, inside, last, n_days)


def align_seasonal_signups(
    rng: np.random.Generator,
    people: pd.DataFrame,
    season_opens: np.ndarray,
    season_closes: np.ndarray,
    n_days: int,
) -> pd.DataFrame:
    """New seasonal customers sign up in their season, with a first purchase that day.

    Also records when each seasonal customer's first season in the data closes, so churn
    can wait until they had a chance to buy.

    Args:
        rng: The simulator's generator.
        people: One row per customer with ``season_a``/``season_b`` (-1: none) and
            ``signup_day``.
        season_opens: Season open days, shape (season, year) (see ``season_bounds``).
        season_closes: Season close days, same shape.
        n_days: Length of the period in days.

    Returns:
        ``people`` with ``signup_day`` and ``active_start`` moved into the season, and
        ``buys_at_signup`` and ``first_season_close`` (NaN for non-seasonal customers).
    """
    n = len(people)
    seasonal = people["season_a"].to_numpy() >= 0
    season_a = np.maximum(people["season_a"].to_numpy(), 0)
    season_b = people["season_b"].to_numpy()
    signup = people["signup_day"].to_numpy()

    first_open, first_close = _next_season(
        season_opens[season_a], season_closes[season_a], np.maximum(signup, 0), n_days
    )
    earliest_signup = np.maximum(first_open, signup)
    room = first_close - earliest_signup
    # Arriving after the last season in the data: they joined in that season instead.
    last_open, last_close = _last_season(season_opens[season_a], season_closes[season_a], n_days)
    earliest_signup = np.where(room > 0, earliest_signup, last_open)
    room = np.where(room > 0, room, last_close - last_open)
    aligned = seasonal & (signup >= 0) & (room > 0)
    signup = np.where(aligned, np.floor(earliest_signup + rng.random(n) * room), signup)
    active_start = np.maximum(signup, 0.0)

    close_a = _next_season(season_opens[season_a], season_closes[season_a], active_start, n_days)[1]
    close_b = _next_season(
        season_opens[np.maximum(season_b, 0)],
        season_closes[np.maximum(season_b, 0)],
        active_start,
        n_days,
    )[1]
    first_season_close = np.where(season_b >= 0, np.minimum(close_a, close_b), close_a)
    return people.assign(
        signup_day=signup,
        active_start=active_start,
        buys_at_signup=aligned,
        first_season_close=np.where(seasonal, first_season_close, np.nan),
    )


def seasonal_purchases(
    rng: np.random.Generator, people: pd.DataFrame, opens: np.ndarray, closes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Several purchases inside each of a seasonal customer's windows, every year.

    Args:
        rng: The simulator's generator.
        people: Customers after ``align_seasonal_signups``.
        opens: Season open days, shape (season, year).
        closes: Season close days, same shape.

    Returns:
        Customer index and day of every seasonal purchase, the signup purchases last.
    """
    season_a, season_b = people["season_a"].to_numpy(), people["season_b"].to_numpy()
    customer = np.concatenate([np.flatnonzero(season_a >= 0), np.flatnonzero(season_b >= 0)])
    season = np.concatenate([season_a[season_a >= 0], season_b[season_b >= 0]])
    n_years = opens.shape[1]
    customer, season = np.repeat(customer, n_years), np.repeat(season, n_years)
    year = np.tile(np.arange(n_years), len(customer) // n_years)
    # Mostly 2-6 purchases a season; now and then a season is skipped.
    n_buys = np.where(rng.random(len(customer)) < 0.1, 0, 2 + rng.poisson(2, len(customer)))
    customer, season, year = (np.repeat(a, n_buys) for a in (customer, season, year))
    season_open, season_close = opens[season, year], closes[season, year]
    t = season_open + rng.random(len(customer)) * (season_close - season_open)
    # New seasonal customers signed up with a purchase (their signup lies in a season).
    signup_buyer = np.flatnonzero(people["buys_at_signup"].to_numpy())
    signup_t = people["signup_day"].to_numpy()[signup_buyer] + 0.5
    return np.concatenate([customer, signup_buyer]), np.concatenate([t, signup_t])
