"""XGBoost's exact TreeSHAP, computed once per decision pattern instead of once per row.

TreeSHAP (``pred_contribs``) walks every node of every tree for every row, both branches
of each split, but reads the row only to learn which side of each split it falls on. So
a tree gives the same contributions, bit for bit, to every row that falls on the same
side of each of its splits. Per tree, rows are grouped by that pattern, XGBoost's own
``pred_contribs`` explains one row of each group on a one-tree slice of the booster, and
the per-tree values are added in XGBoost's order and precision (float32, tree by tree):
XGBoost's answer exactly, for a few hundred patterns per depth-4 tree instead of every
row. Patterns already explained are kept, so later chunks of a list cost less.

Only the plain case is taken this way (gbtree, one output, one tree per round, numeric
splits); :func:`models.explain.contributions` checks every answer on a sample of rows
against XGBoost and uses XGBoost alone when the model is not supported or disagrees.
"""

from __future__ import annotations

import threading

import numpy as np
import xgboost as xgb

# a pattern is a bit mask of the tree's splits (1 = right) held in an int64
MAX_SPLITS = 62
# up to this many splits a pattern indexes a lookup table directly (2^16 slots) instead
# of being sorted; the shipped depth-4 trees have at most 15
DENSE_SPLITS = 16

_UBJ_TYPES = {b"i": ">i1", b"U": ">u1", b"I": ">i2", b"l": ">i4", b"L": ">i8"}
_UBJ_TYPES |= {b"d": ">f4", b"D": ">f8"}


class Unsupported(ValueError):
    """The booster is of a kind the pattern path does not reproduce exactly."""


def read_ubjson(data: bytes) -> object:
    """Decode the Universal Binary JSON XGBoost saves (``save_raw("ubj")``).

    The binary form, unlike the text JSON, holds the split thresholds as the float32
    values the trees compare with, so no decimal round trip can move one.
    """
    view = memoryview(data)
    pos = 0

    def number(marker: bytes) -> np.generic:
        nonlocal pos
        dtype = np.dtype(_UBJ_TYPES[marker])
        value = np.frombuffer(view, dtype, 1, pos)[0]
        pos += dtype.itemsize
        return value

    def length() -> int:
        value = parse()
        if not isinstance(value, np.integer):
            raise Unsupported(f"a UBJSON length that is not an integer at byte {pos}")
        return int(value)

    def text() -> str:
        nonlocal pos
        n = length()
        out = bytes(view[pos : pos + n]).decode()
        pos += n
        return out

    def parse() -> object:
        nonlocal pos
        marker = bytes(view[pos : pos + 1])
        pos += 1
        if marker in _UBJ_TYPES:
            return number(marker)
        if marker == b"S":
            return text()
        if marker in (b"T", b"F", b"Z"):
            return {b"T": True, b"F": False, b"Z": None}[marker]
        if marker == b"{":
            mapping = {}
            while view[pos : pos + 1] != b"}":
                key = text()
                mapping[key] = parse()
            pos += 1
            return mapping
        if marker == b"[":
            kind = None
            if view[pos : pos + 1] == b"$":
                kind, pos = bytes(view[pos + 1 : pos + 2]), pos + 2
            if view[pos : pos + 1] == b"#":
                pos += 1
                count = length()
                if kind is None:
                    return [parse() for _ in range(count)]
                dtype = np.dtype(_UBJ_TYPES[kind])
                array = np.frombuffer(view, dtype, count, pos)
                pos += count * dtype.itemsize
                return array.astype(dtype.newbyteorder("="))
            items = []
            while view[pos : pos + 1] != b"]":
                items.append(parse())
            pos += 1
            return items
        raise Unsupported(f"unexpected UBJSON marker {marker!r} at byte {pos - 1}")

    return parse()


class _Tree:
    """One tree's splits, and the contributions of the patterns explained so far."""

    def __init__(self, tree: dict) -> None:
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        split = np.flatnonzero(left >= 0)
        if len(split) > MAX_SPLITS:
            raise Unsupported(f"a tree with {len(split)} splits (at most {MAX_SPLITS})")
        if np.any(np.asarray(tree["split_type"])[split] != 0):
            raise Unsupported("categorical splits")
        # XGBoost steps to left + 1 for the right branch; the pattern assumes the same
        if np.any(right[split] != left[split] + 1):
            raise Unsupported("a right child that is not next to its left sibling")
        self.feature = np.asarray(tree["split_indices"], dtype=np.int64)[split]
        self.threshold = np.asarray(tree["split_conditions"], dtype=np.float32)[split]
        self.default_left = np.asarray(tree["default_left"], dtype=bool)[split]
        self.used = np.unique(self.feature)
        # few splits: the slot of every possible pattern (-1: not yet explained); more:
        # the explained patterns, sorted
        dense = len(split) <= DENSE_SPLITS
        self.slot = np.full(1 << len(split), -1, dtype=np.int32) if dense else None
        self.known = np.zeros(0, dtype=np.int64)
        self.values = np.zeros((len(self.used), 0), dtype=np.float32)  # used x slots

    def patterns(self, columns: np.ndarray, missing: dict[int, np.ndarray]) -> np.ndarray:
        """Each row's side of every split, as a bit mask (XGBoost's rule: ``x < t`` goes
        left, a missing value takes the default branch)."""
        code = np.zeros(columns.shape[1], dtype=np.int64)
        for bit, (feature, threshold, default_left) in enumerate(
            zip(self.feature, self.threshold, self.default_left, strict=True)
        ):
            right = ~(columns[feature] < threshold)  # NaN compares False: right
            if default_left and feature in missing:
                right &= ~missing[feature]
            code |= right.astype(np.int64) << bit
        return code

    def lookup(self, code: np.ndarray) -> np.ndarray:
        """Each row's slot in :attr:`values` (-1: its pattern is not explained yet)."""
        if self.slot is not None:
            return self.slot[code]
        if not len(self.known):
            return np.full(len(code), -1, dtype=np.int64)
        where = np.minimum(np.searchsorted(self.known, code), len(self.known) - 1)
        return np.where(self.known[where] == code, where, -1)

    def remember(self, new: np.ndarray, values: np.ndarray) -> None:
        """Keep the contributions (patterns x used features) of newly explained patterns."""
        start = self.values.shape[1]
        self.values = np.concatenate([self.values, values.T], axis=1)
        if self.slot is not None:
            self.slot[new] = np.arange(start, start + len(new))
            return
        keys = np.concatenate([self.known, new])
        order = np.argsort(keys, kind="stable")
        self.known, self.values = keys[order], self.values[:, order]


class PatternShap:
    """Exact ``pred_contribs`` of one booster (its first ``rounds`` rounds), per pattern.

    Raises:
        Unsupported: the booster is not of the plain kind (see the module docstring).
    """

    def __init__(self, booster: xgb.Booster, rounds: int) -> None:
        learner = read_ubjson(bytes(booster.save_raw("ubj")))["learner"]  # type: ignore[index]
        gbm = learner["gradient_booster"]
        params = learner["learner_model_param"]
        if gbm["name"] != "gbtree":
            raise Unsupported(f"booster {gbm['name']!r}")
        if int(gbm["model"]["gbtree_model_param"]["num_parallel_tree"]) != 1:
            raise Unsupported("several trees per round")
        if int(params["num_class"]) > 1 or int(params.get("num_target", 1)) > 1:
            raise Unsupported("several outputs")
        trees = gbm["model"]["trees"][:rounds]
        if any(int(t["tree_param"].get("size_leaf_vector", 1)) > 1 for t in trees):
            raise Unsupported("vector leaves")
        self.booster = booster
        self.n_features = int(params["num_feature"])
        self.trees = [_Tree(t) for t in trees]
        self._slices: dict[int, xgb.Booster] = {}
        self._lock = threading.Lock()

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-row, per-feature contributions (no bias column) of float32 rows ``x``."""
        with self._lock:
            return self._contributions(np.ascontiguousarray(x, dtype=np.float32))

    def _contributions(self, x: np.ndarray) -> np.ndarray:
        columns = np.ascontiguousarray(x.T)  # one contiguous array per feature
        nan = np.isnan(columns)
        missing = {int(f): nan[f] for f in np.flatnonzero(nan.any(axis=1))}
        total = np.zeros((self.n_features, len(x)), dtype=np.float32)
        for number, tree in enumerate(self.trees):
            code = tree.patterns(columns, missing)
            slot = tree.lookup(code)
            unknown = np.flatnonzero(slot < 0)
            if len(unknown):
                new, first = np.unique(code[unknown], return_index=True)
                explained = self._explain(number, x[unknown[first]])
                tree.remember(new, explained[:, tree.used])
                slot = tree.lookup(code)
            for position, feature in enumerate(tree.used):
                # float32 adds, tree after tree: XGBoost's own order and rounding
                total[feature] += tree.values[position][slot]
        return total.T

    def _explain(self, number: int, rows: np.ndarray) -> np.ndarray:
        if number not in self._slices:
            self._slices[number] = self.booster[number : number + 1]
            # one tree, a few hundred rows at most: threads would cost more than they save
            self._slices[number].set_param({"nthread": 1})
        matrix = xgb.DMatrix(rows, feature_names=self.booster.feature_names, nthread=1)
        return self._slices[number].predict(matrix, pred_contribs=True, validate_features=False)
