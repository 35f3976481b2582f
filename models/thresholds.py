"""The decision thresholds' defaults, each declared once.

``pipelines.settings`` reads them as its defaults and the model functions as theirs, so
a flag or settings file changes a threshold for a run without a second copy to drift.
Plain numbers with no imports: the settings (and the CLI that loads them) read this
module without paying for xgboost or pandas.
"""

from __future__ import annotations

# the at-risk list holds active customers at or above this departure probability; only
# they (and the lapsed) are explained by default (models.scoring)
RISK_THRESHOLD = 0.3
# a specific reason must add this much risk (log-odds) and hold this share of the risk
# the specific reasons add, else the top reason is `unidentified` (models.explain)
MIN_REASON_SCORE = 0.2
MIN_REASON_CONFIDENCE = 0.2
# a contact vs holdout difference needs at least this many customers in each group
# (models.campaign); below it the evaluation says "not enough data yet"
MIN_GROUP = 30
# the share of each list x action x risk band held out (not called), and the
# probability edges of the risk bands (models.campaign)
HOLDOUT_SHARE = 0.10
