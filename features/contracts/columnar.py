"""Memory-lean column helpers: factorised text, small categorical codes, Arrow kernels.

Validation cleans each distinct value once rather than each row, stores labels as
``category`` with the smallest integer codes that fit, and frees columns as it goes.
This is the only module under ``features/`` that uses pyarrow: Arrow-backed string
columns are checked, compared and looked up with Arrow's vectorised kernels.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _is_clean_text(values: pd.Series) -> bool:
    """True for an Arrow-backed ``str`` column with no missing, blank or unstripped value.

    Checked with vectorised Arrow kernels: cheaper than hashing millions of
    near-unique ids (order ids) to clean them one distinct value at a time.
    """
    if values.dtype != "str" or values.dtype.storage != "pyarrow" or values.hasnans:
        return False
    array = pa.array(values)
    stripped = pc.utf8_trim_whitespace(array)
    return bool(
        pc.all(pc.equal(stripped, array)).as_py() is not False
        and not pc.any(pc.equal(array, "")).as_py()
    )


def _factorize(values: pd.Series) -> tuple[np.ndarray, pd.Series] | None:
    """Codes (-1 for missing) and distinct values of a string or categorical column.

    None for other dtypes: an object column may hold 1, 1.0 and True, which hash as
    one value but convert differently, so those keep the value-by-value path.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), pd.Series(values.cat.categories)
    if isinstance(values.dtype, pd.StringDtype):
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        return codes, pd.Series(uniques)
    return None


def _expand(per_unique: np.ndarray, codes: np.ndarray, fill: object) -> np.ndarray:
    """Per-row values from per-distinct-value ones; code -1 (missing) gets ``fill``."""
    # Index -1 picks the appended fill value.
    return np.append(per_unique, np.array([fill], dtype=per_unique.dtype))[codes]


def _category_from_codes(codes: np.ndarray, text_u: pd.Series, index: pd.Index) -> pd.Series:
    """A categorical column from row codes into cleaned distinct strings (NaN: missing).

    Categories are the distinct cleaned strings in sorted order, so grouping and
    sorting by the column order rows as the plain strings would.
    """
    valid = text_u.notna().to_numpy()
    categories = pd.Index(text_u[valid].unique(), dtype="str").sort_values()
    positions = np.full(len(text_u), -1, dtype=np.intp)
    positions[valid] = categories.get_indexer(text_u[valid])
    n = len(categories)
    small = np.int8 if n < 2**7 else np.int16 if n < 2**15 else np.int32
    row_codes = _expand(positions.astype(small), codes, -1)
    categorical = pd.Categorical.from_codes(row_codes, dtype=pd.CategoricalDtype(categories))
    return pd.Series(categorical, index=index)


def _as_category(text: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    return _category_from_codes(codes, pd.Series(uniques, dtype="str"), text.index)


def _take_rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """``frame.take(positions)``, emptying ``frame`` column by column as it goes.

    Only for frames nothing else holds: each column's old copy is released before the
    next one is copied, so the peak is one column more than the result, not two frames.
    """
    # One index for all columns (Series.take would build one per column); validated
    # frames have a RangeIndex, so the taken labels are the positions themselves.
    if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1:
        index = pd.Index(positions, copy=False)
    else:
        index = frame.index.take(positions)
    taken = {}
    for name in list(frame.columns):
        column = frame.pop(name)
        if isinstance(column.dtype, np.dtype):
            values = column.to_numpy().take(positions)
        else:
            values = column.array.take(positions)
        del column
        taken[name] = pd.Series(values, index=index, copy=False)
    return pd.DataFrame(taken, copy=False)


def _without_unused_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop categories no row uses any more, so categories stay the values present."""
    replaced = {}
    for name in frame.columns:
        column = frame[name]
        if not isinstance(column.dtype, pd.CategoricalDtype):
            continue
        codes = column.cat.codes.to_numpy()
        used = np.bincount(codes.astype(np.intp) + 1, minlength=len(column.cat.categories) + 1)
        in_use = used[1:] > 0
        if in_use.all():
            continue
        remap = (np.cumsum(in_use) - 1).astype(codes.dtype)
        remap[~in_use] = -1
        categorical = pd.Categorical.from_codes(
            _expand(remap, codes, -1),
            dtype=pd.CategoricalDtype(column.cat.categories[in_use]),
        )
        replaced[name] = pd.Series(categorical, index=frame.index)
    return frame.assign(**replaced) if replaced else frame


def _duplicated_rows(frame: pd.DataFrame) -> np.ndarray:
    """``frame.duplicated(keep="first")`` without hashing every row of every column.

    Exact duplicates share customer_id and time, so only rows whose (id, time) pair
    repeats are compared in full. In data ordered by customer then time (the usual
    export) repeats are neighbours and one pass finds them; otherwise one sort of
    integer keys does.
    """
    n = len(frame)
    if n < 2:
        return np.zeros(n, dtype=bool)
    time_column = next(
        (c for c in ("timestamp", "signup_date", "start") if c in frame.columns), None
    )
    times = None
    if time_column is not None:
        times = frame[time_column].to_numpy(dtype="datetime64[ns]").view(np.int64)
    same_id, ordered = _id_runs(frame["customer_id"])
    if ordered and times is not None:
        ordered = bool((~same_id | (times[1:] >= times[:-1])).all())
    if ordered:
        repeats = same_id if times is None else same_id & (times[1:] == times[:-1])
        candidates = np.zeros(n, dtype=bool)
        candidates[1:] |= repeats
        candidates[:-1] |= repeats
    else:
        codes, _ = pd.factorize(frame["customer_id"], use_na_sentinel=True)
        keys = codes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        if times is not None:
            keys ^= times.view(np.uint64)
        del codes
        # Sorting values (not arg-sorting) is fast; equal keys are then neighbours.
        ordered_keys = np.sort(keys)
        repeated = np.unique(ordered_keys[1:][ordered_keys[1:] == ordered_keys[:-1]])
        del ordered_keys
        where = np.searchsorted(repeated, keys).clip(max=max(len(repeated) - 1, 0))
        candidates = repeated[where] == keys if len(repeated) else np.zeros(n, dtype=bool)
    positions = np.flatnonzero(candidates)
    duplicated = np.zeros(n, dtype=bool)
    if len(positions):
        subset = frame.take(positions)
        duplicated[positions[subset.duplicated(keep="first").to_numpy()]] = True
    return duplicated


def _id_runs(ids: pd.Series) -> tuple[np.ndarray, bool]:
    """Whether each id equals the one before it, and whether the ids are sorted.

    Sorted ids mean each customer's rows are contiguous, so runs of equal ids are the
    customers. Computed on the Arrow strings directly (no factorising).
    """
    if ids.dtype == "str" and ids.dtype.storage == "pyarrow" and not ids.hasnans:
        array = pa.array(ids)
        head, tail = array[:-1], array[1:]
        same = pc.equal(tail, head).to_numpy(zero_copy_only=False)
        ordered = bool(pc.all(pc.less_equal(head, tail)).as_py() is not False)
        return same.astype(bool, copy=False), ordered
    values = ids.to_numpy()
    same = np.asarray(values[1:] == values[:-1], dtype=bool)
    return same, bool(ids.is_monotonic_increasing)


def is_in(values: pd.Series | pd.Index | np.ndarray, candidates: Iterable) -> np.ndarray:
    """Per element of ``values``: is it among ``candidates`` (missing matches missing, as
    in ``isin``); a boolean array in ``values``' order.

    A hash lookup in Arrow: pandas' ``isin`` on Arrow-backed text (pandas 3's ``str``)
    turns every candidate into a Python object first, ~0.5 s for a batch's 60k ids.
    """
    if isinstance(candidates, set | frozenset | dict):
        candidates = list(candidates)
    try:
        found = pc.is_in(pa.array(values), value_set=pc.unique(pa.array(candidates)))
        return found.to_numpy(zero_copy_only=False).astype(bool, copy=False)
    except (pa.ArrowException, TypeError, ValueError):  # e.g. text against numbers
        return pd.Index(values).isin(pd.Index(candidates)).astype(bool, copy=False)
