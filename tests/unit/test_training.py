import pandas as pd
import pytest

from models.training import Cutoffs, choose_cutoffs

T = pd.Timestamp
FIRST = T("2023-01-01")
LAST = T("2024-12-31")


def test_choose_cutoffs_exact_dates():
    cutoffs = choose_cutoffs(FIRST, LAST, horizon_days=90, n_train=4, step_days=30)

    # holdout  = 2025-01-01 - 90 days = 2024-10-03 (Dec 31 + Nov 30 + Oct 29 days back)
    # validation = 2024-10-03 - 90 days = 2024-07-05 (Sep 30 + Aug 31 + Jul 29)
    # train[0] = 2024-07-05 - 90 days = 2024-04-06 (Jun 30 + May 31 + Apr 29)
    # then 30 days apart: 03-07 (31-day March), 02-06 (leap February), 01-07
    # earliest allowed = 2023-01-01 + 180 days = 2023-06-30, so all four stay
    assert cutoffs == Cutoffs(
        train=(T("2024-01-07"), T("2024-02-06"), T("2024-03-07"), T("2024-04-06")),
        validation=T("2024-07-05"),
        holdout=T("2024-10-03"),
    )
    assert cutoffs.as_params() == {
        "train_cutoffs": "2024-01-07,2024-02-06,2024-03-07,2024-04-06",
        "validation_cutoff": "2024-07-05",
        "holdout_cutoff": "2024-10-03",
    }


def test_choose_cutoffs_ignores_the_time_of_day():
    # the last transaction late on Dec 31 still means the data ends on Dec 31
    cutoffs = choose_cutoffs(T("2023-01-01 13:30"), T("2024-12-31 23:59:59"))

    assert cutoffs.holdout == T("2024-10-03")
    assert cutoffs.train[0] == T("2024-01-07")


def test_choose_cutoffs_other_horizon_and_step():
    cutoffs = choose_cutoffs(FIRST, LAST, horizon_days=30, n_train=2, step_days=7)

    # holdout = 2025-01-01 - 30 = 2024-12-02; validation = 2024-11-02;
    # train = 2024-11-02 - 30 = 2024-10-03 and 7 days before that, 2024-09-26
    assert cutoffs.holdout == T("2024-12-02")
    assert cutoffs.validation == T("2024-11-02")
    assert cutoffs.train == (T("2024-09-26"), T("2024-10-03"))


@pytest.mark.parametrize(
    ("min_history_days", "train"),
    [
        # 2023-10-01 + 158 days = 2024-03-07 (30 + 30 + 31 + 31 + 29 + 7): kept, on the edge
        (158, (T("2024-03-07"), T("2024-04-06"))),
        # + 159 days = 2024-03-08: 2024-03-07 has one day too little history
        (159, (T("2024-04-06"),)),
    ],
)
def test_choose_cutoffs_keeps_only_cutoffs_with_enough_history(min_history_days, train):
    cutoffs = choose_cutoffs(T("2023-10-01"), LAST, min_history_days=min_history_days)

    assert cutoffs.train == train
    assert cutoffs.validation == T("2024-07-05")


def test_choose_cutoffs_shortest_data_that_works():
    # needs 180 + 3 x 90 = 450 days: 2023-10-09 .. 2024-12-31 is 84 + 366 = 450 days,
    # and 2023-10-09 + 180 days = 2024-04-06, exactly the one training cutoff
    cutoffs = choose_cutoffs(T("2023-10-09"), LAST)

    assert cutoffs.train == (T("2024-04-06"),)


def test_choose_cutoffs_short_data_overlaps_training_labels_with_validation():
    # 449 days: one short of the full scheme. Validation stays one span before the
    # holdout; training cutoffs step back from one step before validation, with history
    # shortened to one horizon: 2023-10-10 + 90 days = 2024-01-08
    cutoffs = choose_cutoffs(T("2023-10-10"), LAST)

    assert cutoffs.scheme == "overlapping"
    assert cutoffs.holdout == T("2024-10-03")
    assert cutoffs.validation == T("2024-07-05")
    assert cutoffs.train == (T("2024-03-07"), T("2024-04-06"), T("2024-05-06"), T("2024-06-05"))
    # training labels never reach the holdout cutoff
    assert cutoffs.train[-1] + pd.Timedelta(days=90) <= cutoffs.holdout
    assert cutoffs.as_params()["cutoff_scheme"] == "overlapping"


def test_choose_cutoffs_shorter_still_lets_validation_double_as_holdout():
    # 180-day labels from 2023-09-20: holdout 2024-07-05, validation 2024-01-07; an
    # overlapping training cutoff 30 days before it (2023-12-08) lacks the 90 days of
    # history (2023-12-19), but holdout - 180 days = 2024-01-07 has them
    cutoffs = choose_cutoffs(T("2023-09-20"), LAST, label_days=180, n_train=2)

    assert cutoffs.scheme == "validation_is_holdout"
    assert cutoffs.validation == cutoffs.holdout == T("2024-07-05")
    assert cutoffs.train == (T("2024-01-07"),)


@pytest.mark.parametrize(
    ("first_day", "span"),
    [
        ("2024-05-01", 245),  # 90 days of history + 2 x 90-day labels needs 270
        ("2024-10-01", 92),
    ],
)
def test_choose_cutoffs_refuses_too_short_data(first_day, span):
    with pytest.raises(ValueError) as err:
        choose_cutoffs(T(first_day), LAST)

    assert str(err.value) == (
        f"transactions span {span} days ({first_day} to 2024-12-31); "
        "time-based training with a 90-day horizon and 90-day labels needs at least 270"
    )


@pytest.mark.parametrize(
    ("first_day", "horizon_days", "n_train", "step_days"),
    [
        ("2023-01-01", 90, 4, 30),
        ("2022-03-15", 60, 6, 14),
        ("2023-01-01", 30, 3, 45),
        ("2021-06-30", 180, 2, 90),
    ],
)
def test_label_windows_never_reach_a_later_cutoff(first_day, horizon_days, n_train, step_days):
    cutoffs = choose_cutoffs(T(first_day), LAST, horizon_days, n_train, step_days)
    horizon = pd.Timedelta(days=horizon_days)

    assert list(cutoffs.train) == sorted(set(cutoffs.train))
    # a cutoff's label window is [cutoff, cutoff + horizon)
    assert cutoffs.train[-1] + horizon <= cutoffs.validation
    assert cutoffs.validation + horizon <= cutoffs.holdout
    # the holdout label window is the last full one: it ends the day after the data
    assert cutoffs.holdout + horizon == LAST + pd.Timedelta(days=1)
