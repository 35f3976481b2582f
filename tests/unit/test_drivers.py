"""top_drivers fills each phrase once parsed; the words must be describe's, exactly."""

import numpy as np
import pandas as pd

from models.explain import top_drivers
from models.reasons import describe, load_reason_map, parse_reason_map

REASON_MAP = parse_reason_map(
    {
        "features": {
            "orders": {"reason": "unidentified", "phrase": "{orders} orders"},
            "change": {"reason": "unidentified", "phrase": "spend {change:updown}"},
            "share": {"reason": "competitor_offer", "phrase": "discounts {share:points}"},
            "ratio": {"reason": "poor_interaction", "phrase": "ratio {ratio!r}, {orders:.1f}"},
            "ghost": {"reason": "relocation", "phrase": "moved {elsewhere:.0f} km"},
            "elsewhere": {"reason": "relocation", "phrase": "{elsewhere} km"},
            "label": {"reason": "business_change", "phrase": "plan {label}"},
        }
    },
    "test map",
)


def test_phrases_are_filled_as_describe_fills_them():
    features = pd.DataFrame(
        {
            "orders": np.array([3, 12], dtype=np.int64),  # an int prints as an int
            "change": [-0.6, 0.001],
            "share": [0.15, np.nan],
            "ratio": [0.5, 0.25],
            "ghost": [1.0, 1.0],
            "label": pd.Series([np.float64(2.5), 7], dtype=object),  # through describe
        }
    )
    contribs = pd.DataFrame(
        {
            "orders": [0.9, 0.1],
            "change": [0.8, 0.7],
            "share": [0.7, 0.9],  # missing for the second: skipped
            "ratio": [0.6, 0.05],
            "ghost": [1.0, 1.0],  # its phrase reads a column the frame lacks: skipped
            "label": [0.5, 0.8],
        }
    )

    result = top_drivers(contribs, features, REASON_MAP, k=5)

    assert result.tolist() == [
        "3 orders; spend down 60%; discounts up 15 points; ratio 0.5, 3.0; plan 2.5",
        "plan 7; spend unchanged; 12 orders; ratio 0.25, 12.0",
    ]


def reference_drivers(contribs, features, reason_map, k=3):
    """The per-row loop top_drivers replaced: every phrase through describe."""
    values = contribs.to_numpy(float)
    order = np.argsort(-values, axis=1, kind="stable")[:, : 3 * k]
    names = np.asarray(contribs.columns)
    out = []
    for i, row in enumerate(features.to_dict(orient="records")):
        said = []
        for j in order[i]:
            if values[i, j] <= 0 or len(said) == k:
                break
            phrase = describe(reason_map, names[j], row)
            if phrase.endswith(": unknown") or any(phrase in p for p in said):
                continue
            covered = [n for n, p in enumerate(said) if p in phrase]
            if covered:
                said[covered[0]] = phrase
            else:
                said.append(phrase)
        out.append("; ".join(said))
    return out


def test_the_shipped_phrases_match_describe_on_varied_rows():
    reason_map = load_reason_map()
    names = list(reason_map.features)
    rng = np.random.default_rng(11)
    rows = 300
    features = pd.DataFrame(
        rng.choice([0.0, 1.0, 2.5, 30.0, 160.0, -0.4, 0.07, 1234.5, np.nan], (rows, len(names))),
        columns=names,
    )
    # ties and zeros as the trees give them: equal contributions, none raising risk
    contribs = pd.DataFrame(
        rng.choice([-0.5, 0.0, 0.125, 0.25, 0.5, 1.0], (rows, len(names))), columns=names
    ).astype("float32")

    for k in (1, 3, 5):
        assert top_drivers(contribs, features, reason_map, k).tolist() == reference_drivers(
            contribs, features, reason_map, k
        )
