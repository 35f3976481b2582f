"""A subscription business that records why customers cancelled: the nightly flow names a
lapsed subscriber's reason by their own answer, whole tables or batches alike."""

from __future__ import annotations

import pandas as pd
import pytest

from models.reasons import STATED_REASON_WORDS, stated_word
from models.reporting import TABLE_ROWS
from pipelines import api, catalog, flows
from pipelines.settings import InputPaths, ScoreSettings, TrainSettings

# the business's own words for a better price elsewhere, mapped in the settings file
OWN_WORD = "Found it cheaper at a rival"


@pytest.fixture(scope="module")
def subscribers(tmp_path_factory):  # noqa: ANN201
    from simulation.subscription import simulate_subscription

    sim = simulate_subscription(n_customers=500, seed=11, start="2023-01-01", end="2025-06-30")
    subscriptions = sim.subscriptions.assign(
        cancel_reason=sim.subscriptions["cancel_reason"].replace({"too_expensive": OWN_WORD})
    )
    frames = {
        "transactions": sim.transactions,
        "interactions": sim.interactions,
        "customers": sim.customers,
        "subscriptions": subscriptions,
    }
    return catalog.write_atomic(frames, tmp_path_factory.mktemp("subscribers")), subscriptions


@pytest.mark.usefixtures("prefect_harness")
def test_a_lapsed_subscribers_own_answer_is_their_reason(subscribers, tmp_path):
    paths, subscriptions = subscribers
    inputs = InputPaths(**paths)
    store = tmp_path / "store"
    flows.train(inputs, TrainSettings(data_dir=store, n_train_cutoffs=2))
    settings = ScoreSettings(data_dir=store, cancel_reasons={OWN_WORD: "competitor_offer"})
    whole = flows.nightly(inputs, tmp_path / "whole", settings)
    scores = pd.read_parquet(tmp_path / "whole" / catalog.OUTPUTS["scores"])

    # what each customer said when their last subscription ended before the score date
    cutoff = pd.Timestamp(whole.score_date)
    known = subscriptions.loc[subscriptions["start"] < cutoff].sort_values(["customer_id", "start"])
    last = known.groupby("customer_id").tail(1)
    said = last.loc[last["end"] < cutoff].set_index("customer_id")["cancel_reason"].dropna()
    words = STATED_REASON_WORDS | {stated_word(OWN_WORD): "competitor_offer"}
    expected = said.map(lambda answer: words[stated_word(answer)])
    expected = expected[expected.ne("unidentified")]

    stated = scores.loc[scores["reason_source"].eq("stated")].set_index("customer_id")
    assert len(stated) > 20 and set(stated["status"]) == {"lapsed"}
    # everyone named by their answer said that, and every lapsed one who named a cause is
    pd.testing.assert_series_equal(
        stated["top_reason"].astype(object).sort_index(),
        expected.reindex(stated.index).astype(object).sort_index(),
        check_names=False,
    )
    lapsed = scores.set_index("customer_id")["status"].eq("lapsed")
    assert set(expected.index[lapsed.reindex(expected.index, fill_value=False)]) == set(
        stated.index
    )
    assert "competitor_offer" in set(stated["top_reason"])  # the business's own words were read
    assert (stated["reason_confidence"] == 1.0).all()
    # the drivers' view stays beside it, and the share that agreed is a KPI
    agree = (stated["drivers_reason"] == stated["top_reason"]).mean()
    assert whole.kpis["stated_reasons"] == len(stated)
    assert whole.kpis["stated_reason_agreement"] == pytest.approx(agree, abs=1e-4)  # as reported
    drivers = scores.loc[scores["reason_source"].eq("drivers")]
    assert (drivers["drivers_reason"] == drivers["top_reason"]).all()
    win_back = pd.read_parquet(tmp_path / "whole" / catalog.OUTPUTS["win_back"])
    assert win_back["reason_source"].eq("stated").any()
    # the report's win-back table marks the reasons that are the customers' own words
    shown = win_back.head(TABLE_ROWS)["reason_source"].eq("stated").sum()
    report = (tmp_path / "whole" / catalog.OUTPUTS["report"]).read_text()
    assert report.count("their own words") == shown > 0
    # the Python API explains a customer as the night did
    disagreed = stated.index[stated["drivers_reason"] != stated["top_reason"]]
    customer = (disagreed if len(disagreed) else stated.index)[0]
    why = api.explain(customer, paths["transactions"].parent, whole.score_date, settings)
    assert (why.top_reason, why.reason_source, why.drivers_reason) == (
        stated.loc[customer, "top_reason"],
        "stated",
        stated.loc[customer, "drivers_reason"],
    )
    assert why.reason_confidence == 1.0

    batched = flows.nightly(
        inputs, tmp_path / "batches", settings.model_copy(update={"feature_batches": 3})
    )
    assert batched.kpis == whole.kpis
    for name in ("scores", "at_risk", "win_back"):
        file = catalog.OUTPUTS[name]
        a = pd.read_parquet(tmp_path / "whole" / file).drop(columns="scored_at")
        b = pd.read_parquet(tmp_path / "batches" / file).drop(columns="scored_at")
        pd.testing.assert_frame_equal(b, a, check_exact=True)
