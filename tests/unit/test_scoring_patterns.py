"""The list is the same whichever TreeSHAP path explained it (pattern or XGBoost's)."""

import numpy as np
import pandas as pd
import pytest
from xgboost import XGBClassifier

from features.build import build_features
from features.contracts import validate_table
from features.status import LAPSED, customer_status
from models import explain
from models.explain import PATTERN_MIN_ROWS
from models.night_facts import dated_status
from models.playbook import load_playbook
from models.reasons import load_reason_map
from models.scoring import score_customers
from simulation.retail import simulate

CUTOFF = pd.Timestamp("2025-10-01")


@pytest.fixture(scope="module")
def business():
    simulated = simulate(1_500, seed=5, start="2024-01-01", end="2025-12-31")
    tables = {
        t: validate_table(getattr(simulated, t), t, source=t).frame
        for t in ("transactions", "interactions", "customers")
    }
    features = build_features(
        tables["transactions"], CUTOFF, tables["interactions"], tables["customers"]
    )
    later = tables["transactions"]
    later = later.loc[
        (later["timestamp"] >= CUTOFF) & (later["timestamp"] < CUTOFF + pd.Timedelta(days=90))
    ]
    churned = (~features.index.isin(later["customer_id"])).astype(int)
    model = XGBClassifier(n_estimators=40, max_depth=4, random_state=0, n_jobs=2)
    return model.fit(features, churned), features


@pytest.mark.filterwarnings(
    "error::RuntimeWarning"
)  # a disagreement would be hidden by the fallback
def test_the_list_does_not_depend_on_the_treeshap_path(business):
    model, features = business
    assert len(features) > PATTERN_MIN_ROWS
    status = dated_status(customer_status(features), features, None, CUTOFF)
    lapsed = status["status"].eq(LAPSED)
    assert 0 < lapsed.sum() < len(features)
    # the lapsed are explained as of when they were due back: other rows, other patterns
    due = features.loc[lapsed].assign(
        days_since_last_purchase=features.loc[lapsed, "days_since_last_purchase"] / 2
    )
    args = (model, features, load_reason_map(), load_playbook(), 90, "v1", CUTOFF)
    options = dict(explain_all=True, status=status, due_features=due, min_win_back_value=5.0)
    explain._PATTERNS.clear()

    one_chunk = score_customers(*args, chunk_rows=len(features), **options)
    assert any(e is not None for e in explain._PATTERNS.values())  # the pattern path ran
    # chunks below PATTERN_MIN_ROWS go to XGBoost's pred_contribs alone
    xgboost_only = score_customers(*args, chunk_rows=PATTERN_MIN_ROWS // 3, **options)

    pd.testing.assert_frame_equal(one_chunk, xgboost_only, check_exact=True)
    assert one_chunk["top_drivers"].str.len().gt(0).mean() > 0.5  # drivers were said
    assert set(one_chunk["list"]) >= {"at_risk", "win_back"}
    assert np.isfinite(one_chunk["reason_poor_interaction"]).all()


def test_the_list_is_the_same_explained_in_batch_processes(business):
    """Explanation chunks mapped by a pool of 2 processes (each with its own pattern
    cache) give the list one process gives."""
    from pipelines.processes import batch_pool, ordered_map

    model, features = business
    status = dated_status(customer_status(features), features, None, CUTOFF)
    args = (model, features, load_reason_map(), load_playbook(), 90, "v1", CUTOFF)
    # two chunks: the first takes the pattern path, the rest XGBoost's
    options = dict(status=status, explain_all=True, chunk_rows=PATTERN_MIN_ROWS)
    here = score_customers(*args, **options)
    with batch_pool(2) as pool:
        assert pool is not None
        spread = score_customers(*args, map_chunks=ordered_map(pool, 2, least_each=1), **options)
    pd.testing.assert_frame_equal(here, spread, check_exact=True)
    assert len(features) > PATTERN_MIN_ROWS and here["top_drivers"].str.len().gt(0).any()
