"""A pass's per-customer keyword frames reach each customer batch as that batch's rows."""

from __future__ import annotations

from functools import partial

import pandas as pd

from features.batches import customer_batch, rows_by_batch, split_keywords


def _pass(tables: object, features: pd.DataFrame, history: pd.DataFrame, weights: pd.Series,
          cutoff: str) -> None:  # fmt: skip
    return None


def test_per_customer_frames_are_split_by_the_batch_hash_and_others_kept_whole():
    ids = [f"C{i:03d}" for i in range(40)]
    features = pd.DataFrame({"x": range(40)}, index=pd.Index(ids, name="customer_id"))
    history = pd.DataFrame({"customer_id": ids[::-1] * 2, "n": range(80)})
    weights = pd.Series([0.5, 0.5], index=["a", "b"])  # not per customer
    fn = partial(_pass, features=features, history=history, weights=weights, cutoff="2025-01-01")

    func, split, shared = split_keywords(fn, 3)

    assert isinstance(func, partial) and func.keywords == {"cutoff": "2025-01-01"}
    assert set(split) == {"features", "history"} and list(shared) == ["weights"]
    number = customer_batch(pd.Series(ids), 3)
    for batch in range(3):
        mine = {i for i, n in zip(ids, number, strict=True) if n == batch}
        assert set(split["features"][batch].index) == mine
        assert set(split["history"][batch]["customer_id"]) == mine
        # each piece keeps the frame's own order
        assert split["history"][batch]["n"].is_monotonic_increasing
    assert sum(len(p) for p in split["history"]) == len(history)


def test_a_frame_without_customer_ids_is_not_per_customer():
    assert rows_by_batch(pd.DataFrame({"x": [1, 2]}), 2) is None
    plain = lambda tables: tables  # noqa: E731
    assert split_keywords(plain, 2) == (plain, {}, {})
