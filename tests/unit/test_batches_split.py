"""A pass's per-customer keyword frames reach each customer batch as that batch's rows."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest

from features.batches import batch_order, customer_batch, rows_by_batch, split_keywords


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


@pytest.mark.parametrize("batches", [1, 7, 256, 257, 70_000])
def test_batch_order_is_each_batch_in_row_order(batches):
    numbers = np.random.default_rng(batches).integers(0, batches, 5_000)
    order, bounds = batch_order(numbers, batches)
    assert len(bounds) == batches + 1
    for b in range(batches):
        assert order[bounds[b] : bounds[b + 1]].tolist() == np.flatnonzero(numbers == b).tolist()


def test_frames_with_the_same_ids_are_hashed_once_and_split_alike():
    ids = pd.Index([f"C{i:03d}" for i in range(60)], name="customer_id")
    features = pd.DataFrame({"x": range(60)}, index=ids)
    status = pd.DataFrame({"s": range(60)}, index=pd.Index(list(ids), name="customer_id"))
    known: list = []
    by_features = rows_by_batch(features, 4, known)
    by_status = rows_by_batch(status, 4, known)
    assert len(known) == 1  # the status's ids equal the features': not hashed again
    for f, s in zip(by_features, by_status, strict=True):
        assert list(f.index) == list(s.index) and list(s["s"]) == list(f["x"])


def test_the_same_numbers_in_another_dtype_are_hashed_as_their_own_text():
    whole = pd.DataFrame({"x": range(30)}, index=pd.Index(range(30), name="customer_id"))
    floats = whole.set_axis(whole.index.astype(float))  # hashed as "1.0", not "1"
    known: list = []
    rows_by_batch(whole, 3, known)
    pieces = rows_by_batch(floats, 3, known)
    assert len(known) == 2
    number = customer_batch(floats.index.to_series(), 3)
    for batch, piece in enumerate(pieces):
        assert list(piece.index) == list(floats.index[number == batch])
