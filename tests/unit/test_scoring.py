import numpy as np
import pandas as pd
import pytest
from xgboost import XGBClassifier

from features.build import build_features
from features.contracts import validate_table
from features.segments import SEGMENTS
from models.explain import REASON_COLUMNS
from models.playbook import GRIEVANCE, LEAVE_ALONE, NOT_CALLED, load_playbook
from models.reasons import REASONS, load_reason_map
from models.scoring import (
    LIST_COLUMNS,
    NOT_AT_RISK,
    NOT_AT_RISK_ACTION,
    FeatureMismatchError,
    align_features,
    at_risk_list,
    rank,
    rows_when_due,
    score_customers,
)
from models.thresholds import RISK_THRESHOLD
from pipelines.settings import ScoreSettings

# --- rank and at_risk_list ----------------------------------------------------------


def scored(rows: dict[str, tuple[float, float, str]]) -> pd.DataFrame:
    """A scored frame from ``id: (value_at_risk, churn_probability, action_rule)``."""
    frame = pd.DataFrame.from_dict(
        rows, orient="index", columns=["value_at_risk", "churn_probability", "action_rule"]
    )
    filler = {
        c: 0.0
        for c in LIST_COLUMNS
        if c not in frame.columns and c not in ("customer_id", "risk_rank")
    }
    return frame.assign(**filler)


RANKED_INPUT = scored(
    {
        "d": (50.0, 0.5, "unidentified"),
        "b": (80.0, 0.4, "poor_interaction"),
        "f": (10.0, 0.2, "relocation"),
        "c": (80.0, 0.8, "competitor_offer"),  # ties b on value: higher probability first
        "e": (100.0, 0.9, LEAVE_ALONE),  # most at stake, but not to be called
        "a": (50.0, 0.5, GRIEVANCE),  # ties d on value and probability: id order
    }
)


def test_rank_orders_by_value_at_risk_then_probability_then_id():
    result = rank(RANKED_INPUT, risk_threshold=0.0)

    assert list(result.columns) == list(LIST_COLUMNS)
    # the call list first: c 80 (p 0.8) > b 80 (p 0.4) | a 50 = d 50 at p 0.5, a < d | f 10;
    # then e (100 at stake, but left alone: off the list, no rank)
    assert result["customer_id"].tolist() == ["c", "b", "a", "d", "f", "e"]
    assert result["list"].tolist() == ["at_risk"] * 5 + [""]
    assert result["risk_rank"].tolist() == [1, 2, 3, 4, 5, pd.NA]
    assert str(result["risk_rank"].dtype) == "Int64"
    assert result.index.tolist() == [0, 1, 2, 3, 4, 5]


def test_rank_does_not_depend_on_input_order():
    expected = rank(RANKED_INPUT, risk_threshold=0.0)

    for seed in range(3):
        shuffled = RANKED_INPUT.sample(frac=1.0, random_state=seed)
        pd.testing.assert_frame_equal(rank(shuffled, risk_threshold=0.0), expected)


@pytest.mark.parametrize("ids", ["text", "numbers"])
def test_rank_of_rows_in_id_order_sorts_as_the_text_sort_does(ids):
    """Rows in id order are sorted by position (numpy); any other order by pandas' sort
    of the ids. Ties, missing values and lapsed customers come out the same."""
    rng = np.random.default_rng(7)
    n = 300
    index = [f"C{i:04d}" for i in range(n)] if ids == "text" else list(range(0, 3 * n, 3))
    frame = pd.DataFrame(
        {
            "value_at_risk": rng.choice([10.0, 50.0, 80.0, np.nan], n),
            "churn_probability": rng.choice([0.2, 0.4, 0.4, 0.9, np.nan], n),
            "expected_value": rng.choice([0.0, 5.0, 50.0, np.nan], n),
            "status": rng.choice(["active", "active", "lapsed"], n),
            "action_rule": rng.choice(["unidentified", LEAVE_ALONE], n),
        },
        index=pd.Index(index, dtype="str" if ids == "text" else "int64"),
    )
    frame = frame.assign(
        **{c: 0.0 for c in LIST_COLUMNS if c not in frame and c not in ("customer_id", "risk_rank")}
    )
    in_order = rank(frame, 0.3, 1.0)
    for seed in range(3):
        shuffled = frame.sample(frac=1.0, random_state=seed)
        pd.testing.assert_frame_equal(rank(shuffled, 0.3, 1.0), in_order, check_exact=True)
    assert in_order["list"].eq("win_back").any() and in_order["list"].eq("at_risk").any()


def test_rank_cuts_the_at_risk_list_at_the_shipped_risk_threshold():
    result = rank(RANKED_INPUT)

    # the same default as the CLI's (pipelines.settings reads it): p >= 0.3 and not left
    # alone, so f (p 0.2) falls off the list and joins e among the unranked
    assert RISK_THRESHOLD == ScoreSettings().risk_threshold == 0.3
    assert result["customer_id"].tolist() == ["c", "b", "a", "d", "e", "f"]
    assert result["list"].tolist() == ["at_risk"] * 4 + ["", ""]
    assert at_risk_list(result)["customer_id"].tolist() == ["c", "b", "a", "d"]


def test_rank_with_everyone_left_alone():
    result = rank(scored({"a": (5.0, 0.1, LEAVE_ALONE), "b": (9.0, 0.1, LEAVE_ALONE)}))

    assert result["customer_id"].tolist() == ["b", "a"]
    assert result["list"].tolist() == ["", ""]
    assert result["risk_rank"].isna().all()


def test_at_risk_list_threshold_is_inclusive_and_skips_the_unranked():
    ranked = rank(RANKED_INPUT, risk_threshold=0.0)

    # p >= 0.5 and ranked: c 0.8, a 0.5, d 0.5 (e 0.9 is left alone; b 0.4, f 0.2 below)
    assert at_risk_list(ranked, threshold=0.5)["customer_id"].tolist() == ["c", "a", "d"]
    # p >= 0.45: the same three, b (0.4) is still out
    assert at_risk_list(ranked, threshold=0.45)["customer_id"].tolist() == ["c", "a", "d"]
    assert at_risk_list(ranked, threshold=0.0)["customer_id"].tolist() == ["c", "b", "a", "d", "f"]


def test_at_risk_list_top_cuts_the_ranked_list():
    ranked = rank(RANKED_INPUT, risk_threshold=0.0)

    assert at_risk_list(ranked, threshold=0.0, top=2)["customer_id"].tolist() == ["c", "b"]
    assert at_risk_list(ranked, threshold=0.5, top=10)["customer_id"].tolist() == ["c", "a", "d"]


# --- a real model on real feature columns -------------------------------------------

CUTOFF = pd.Timestamp("2024-07-01")


def ago(days: float) -> pd.Timestamp:
    return CUTOFF - pd.Timedelta(days=days)


def transactions() -> pd.DataFrame:
    rows = [("a", ago(d), 30.0) for d in range(360, 0, -30)]  # monthly, 12 x 30
    rows += [("b", ago(d), 50.0) for d in (300, 240, 200)]  # lapsed 200 days ago
    rows += [("c", ago(10), 60.0)]  # brand new
    rows += [("d", ago(170), 500.0), ("d", ago(100), 400.0), ("d", ago(20), 100.0)]
    rows += [("e", ago(50), 40.0), ("e", ago(40), -40.0)]  # bought, then refunded
    rows += [("f", ago(80), 20.0), ("f", ago(60), 20.0), ("f", ago(5), 20.0)]
    rows += [("g", ago(350), 100.0), ("g", ago(340), 100.0), ("g", ago(5), 100.0)]
    rows += [("h", ago(400), 70.0), ("h", ago(100), 70.0)]  # lapsed 100 days ago
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    return validate_table(frame, "transactions", "test transactions").frame


def interactions() -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            ("a", ago(60), "survey", 5.0, True),
            ("b", ago(150), "survey", 2.0, True),  # last score 2/5: a grievance
            ("d", ago(10), "complaint", np.nan, False),  # open complaint: a grievance
            ("f", ago(200), "support_ticket", 4.0, True),
        ],
        columns=["customer_id", "timestamp", "kind", "satisfaction", "resolved"],
    )
    return validate_table(frame, "interactions", "test interactions").frame


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_features(transactions(), CUTOFF, interactions())


@pytest.fixture(scope="module")
def model(features) -> XGBClassifier:
    # made-up label: gone quiet for more than 60 days (b, h); each row repeated so that
    # trees can split under the default min_child_weight
    label = (features["days_since_last_purchase"] > 60).astype(int)
    x, y = pd.concat([features] * 20), pd.concat([label] * 20)
    return XGBClassifier(n_estimators=20, max_depth=3, random_state=0, n_jobs=1).fit(x, y)


def score(model, features, **options) -> pd.DataFrame:
    return score_customers(
        model,
        features,
        load_reason_map(),
        load_playbook(),
        horizon_days=90,
        model_version="7",
        scored_at=pd.Timestamp("2024-07-02 06:00", tz="UTC"),
        **options,
    )


def test_align_features_reorders_columns_to_the_models_order(features, model):
    shuffled = features[list(reversed(features.columns))].assign(unused=1.0)

    result = align_features(shuffled, model)

    assert list(result.columns) == list(features.columns)
    pd.testing.assert_frame_equal(result, features)


def test_align_features_names_the_missing_features(features, model):
    transactions_only = features.drop(columns=["unresolved_30d", "satisfaction_last"])

    with pytest.raises(FeatureMismatchError) as err:
        align_features(transactions_only, model)

    assert str(err.value).startswith(
        "the model was trained on features this data cannot produce: "
        "unresolved_30d, satisfaction_last ("
    )


def test_score_customers_end_to_end(features, model):
    result = score(model, features).set_index("customer_id")

    assert list(result.reset_index().columns) == list(LIST_COLUMNS)
    assert sorted(result.index) == list("abcdefgh")
    probability = pd.Series(model.predict_proba(features)[:, 1], index=features.index)
    pd.testing.assert_series_equal(
        result["churn_probability"],
        probability.reindex(result.index),
        check_names=False,
        check_dtype=False,
    )
    assert result["churn_probability"].between(0.0, 1.0).all()
    # the model learned the made-up label
    assert result.loc[["b", "h"], "churn_probability"].min() > 0.5
    assert result.loc[["a", "c", "g"], "churn_probability"].max() < 0.5
    # a: 360 spent over 360 days -> 1 a day x 90 = 90; c: 60 over (10 -> 30) days x 90
    # = 180; e: 40 - 40 = 0
    assert result.loc[["a", "c", "e"], "expected_value"].tolist() == pytest.approx([90, 180, 0])
    np.testing.assert_allclose(
        result["value_at_risk"], result["churn_probability"] * result["expected_value"]
    )
    assert set(result["segment"]) <= set(SEGMENTS)
    # only customers who can reach the call list are explained (SHAP is the costly step)
    at_risk = result["churn_probability"] >= RISK_THRESHOLD
    explained = result.loc[at_risk]
    assert (explained[list(REASON_COLUMNS)] >= 0).all().all()
    assert explained["reason_confidence"].between(0.0, 1.0).all()
    assert set(explained["top_reason"]) <= set(REASONS)
    assert result.loc[~at_risk, [*REASON_COLUMNS, "top_reason", "top_drivers"]].isna().all().all()
    # b: last satisfaction 2/5; d: a complaint unresolved 10 days ago
    assert result.loc[["b", "d"], "action_rule"].tolist() == [GRIEVANCE, GRIEVANCE]
    # c: expected values sorted 0, 17.3, 45, 67.5, 77.1, 90, 180, 529.4 put the 0.8
    # quantile at position 5.6: 90 + 0.6 x (180 - 90) = 144 <= 180; low risk, spend up
    # (new customer), no cadence to be overdue on
    assert result.loc["c", "action_rule"] == LEAVE_ALONE
    assert pd.isna(result.loc["c", "risk_rank"])
    # the churners' risk is explained in words
    assert (result.loc[["b", "h"], "top_drivers"].str.len() > 0).all()
    assert (result["recommended_action"].str.len() > 0).all()
    assert (result["model_version"] == "7").all()
    assert (result["scored_at"] == pd.Timestamp("2024-07-02 06:00", tz="UTC")).all()


def test_score_customers_ranks_the_call_list(features, model):
    result = score(model, features)

    # the call list: probability >= the threshold and not kept off it by the playbook
    called = ~result["action_rule"].isin(NOT_CALLED) & (
        result["churn_probability"] >= RISK_THRESHOLD
    )
    assert result.loc[called, "risk_rank"].tolist() == list(range(1, called.sum() + 1))
    assert result.loc[~called, "risk_rank"].isna().all()
    assert result.loc[called, "value_at_risk"].is_monotonic_decreasing
    assert result.loc[~called, "value_at_risk"].is_monotonic_decreasing


def test_score_customers_does_not_depend_on_row_order(features, model):
    expected = score(model, features)

    for seed in range(2):
        shuffled = features.sample(frac=1.0, random_state=seed)
        assert not shuffled.index.equals(features.index)
        pd.testing.assert_frame_equal(score(model, shuffled), expected)


def test_score_customers_explain_all_explains_everyone_the_same_way(features, model):
    default = score(model, features).set_index("customer_id")
    everyone = score(model, features, explain_all=True).set_index("customer_id")

    assert everyone[[*REASON_COLUMNS, "top_reason"]].notna().all().all()
    assert NOT_AT_RISK not in set(everyone["action_rule"])
    # the at-risk rows are explained identically either way
    at_risk = default.index[default["churn_probability"] >= RISK_THRESHOLD]
    assert len(at_risk) > 0
    pd.testing.assert_frame_equal(default.loc[at_risk], everyone.loc[at_risk])
    # below the threshold: no action unless an override rule speaks
    low = default.loc[default["churn_probability"] < RISK_THRESHOLD]
    plain = low["action_rule"] == NOT_AT_RISK
    assert plain.any()
    assert (low.loc[plain, "recommended_action"] == NOT_AT_RISK_ACTION).all()
    assert set(low.loc[~plain, "action_rule"]) <= {GRIEVANCE, LEAVE_ALONE}


@pytest.mark.parametrize("chunk_rows", [1, 3, 100])
def test_score_customers_does_not_depend_on_chunk_size(features, model, chunk_rows):
    expected = score(model, features)
    chunked = score(model, features, chunk_rows=chunk_rows)
    pd.testing.assert_frame_equal(chunked, expected)


@pytest.mark.parametrize(
    "kind", ["numbers", "an integer column", "a text column", "a customer missing"]
)
def test_rows_when_due_are_the_lapsed_rows_read_as_of_their_due_day(kind):
    rng = np.random.default_rng(3)
    ids = pd.Index([f"C{i:03d}" for i in range(40)], name="customer_id", dtype="str")
    features = pd.DataFrame(rng.normal(size=(40, 3)), index=ids, columns=["a", "b", "c"])
    lapsed = rng.random(40) < 0.4
    due = features.loc[lapsed] * 10
    due = due.iloc[::-1]  # in another order than the features
    if kind == "an integer column":
        features["b"] = np.arange(40)
        due["b"] = -np.arange(len(due))
    if kind == "a text column":
        features["b"] = "today"
        due["b"] = "when due"
    if kind == "a customer missing":
        due = due.iloc[1:]
    # what each lapsed customer is explained on: their due-day row, by id
    expected = pd.concat([features.loc[~lapsed], due.reindex(ids[lapsed])]).reindex(ids)
    got = rows_when_due(features, due, lapsed)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert (got.loc[~lapsed] == features.loc[~lapsed]).all().all()


@pytest.mark.parametrize("missing", [False, True])
def test_parts_placed_in_order_are_what_a_reindex_by_id_gives(missing):
    from models.scoring import in_order

    ids = pd.Index([f"C{i:02d}" for i in range(30)], dtype="str")
    frame = pd.DataFrame({"x": np.arange(30.0), "y": [f"t{i}" for i in range(30)]}, index=ids)
    odd = np.arange(30) % 3 == 0
    parts = [frame.loc[~odd], frame.loc[odd]]
    positions = [np.flatnonzero(~odd), np.flatnonzero(odd)]
    if missing:  # a part without one of its rows: looked up by id, the row missing
        parts[1] = parts[1].iloc[1:]
    expected = pd.concat(parts).reindex(ids)
    pd.testing.assert_frame_equal(in_order(parts, positions, ids), expected, check_exact=True)
