"""Training sets read from customer batches equal the whole tables' sets exactly: every
cutoff's rows and labels, the lapsed customers' return rates, on odd batch counts, for a
shop (departure and classic labels) and a subscription business."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.usage import choose_usage_kinds
from models.train_stage import plan_training, training_sets, training_sets_by_batch
from models.training import LabelScheme
from pipelines import catalog, staged
from pipelines.settings import CommonSettings, InputPaths


def _business(kind: str):  # noqa: ANN202
    if kind == "subscription":
        from simulation.subscription import simulate_subscription

        return simulate_subscription(n_customers=400, seed=11, start="2023-01-01", end="2025-06-30")
    from simulation.retail import simulate

    return simulate(n_customers=400, seed=5)


@pytest.mark.parametrize(
    ("kind", "label", "batches"),
    [("retail", "departure", 3), ("retail", "classic", 7), ("subscription", "subscription", 5)],
)
def test_training_sets_by_batch_equal_the_whole_tables(tmp_path, kind, label, batches):
    sim = _business(kind)
    names = ("transactions", "interactions", "customers", "subscriptions")
    frames = {n: getattr(sim, n) for n in names if getattr(sim, n, None) is not None}
    paths = catalog.write_atomic(frames, tmp_path / "in")
    tables = catalog.read_tables(*(paths.get(n) for n in names))
    tx = tables.transactions
    asked = LabelScheme().with_subscriptions(tables.subscriptions)
    if label == "classic":
        asked = replace(asked, kind="classic")
    assert asked.kind == label
    plan = plan_training(tx["timestamp"].min(), tx["timestamp"].max(), asked, 90, 3, 30, 180)
    kinds = choose_usage_kinds(tables.interactions)
    build = partial(build_features, usage_kinds=kinds, subscription_table=tables.subscriptions)
    whole = training_sets(tables, plan, 365, build)

    with staged.stage(
        InputPaths(**paths), CommonSettings(data_dir=tmp_path / "d"), batches
    ) as source:
        assert source is not None
        by_batch = training_sets_by_batch(source, plan, 365, kinds)

    assert len(whole.y_train) > 300 and 0 < whole.y_train.mean() < 1  # a real set
    for name in ("x_train", "x_valid", "x_hold"):
        pd.testing.assert_frame_equal(getattr(by_batch, name), getattr(whole, name))
    for name in ("y_train", "y_valid", "y_hold"):
        pd.testing.assert_series_equal(getattr(by_batch, name), getattr(whole, name))
    np.testing.assert_array_equal(by_batch.lapsed_bands, whole.lapsed_bands)
    np.testing.assert_array_equal(by_batch.lapsed_returned, whole.lapsed_returned)
    if label != "classic":  # lapsed customers were left out of the rows and counted
        assert len(whole.lapsed_bands) > 20
