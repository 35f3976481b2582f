import pytest

from models.promotion import decide

CHAMP = {"pr_auc": 0.80, "roc_auc": 0.90, "top_decile_lift": 2.0, "brier": 0.100}


def test_no_champion_promotes():
    assert decide({**CHAMP}, None).promote


def test_better_metric_and_calibration_promotes():
    d = decide({**CHAMP, "pr_auc": 0.81, "brier": 0.101}, CHAMP)  # 0.101 <= 0.100 + 0.002
    assert d.promote and d.reason == "pr_auc 0.8100 beats the champion's 0.8000"


def test_equal_metric_does_not_promote():
    d = decide({**CHAMP}, CHAMP)
    assert not d.promote and d.reason == "pr_auc 0.8000 does not beat the champion's 0.8000"


def test_better_ranking_but_worse_calibration_does_not_promote():
    d = decide({**CHAMP, "pr_auc": 0.85, "brier": 0.1021}, CHAMP)  # 0.1021 > 0.102
    assert not d.promote and "Brier 0.1021 is worse" in d.reason


def test_lower_is_better_for_brier_as_the_metric():
    assert decide({**CHAMP, "brier": 0.09}, CHAMP, metric="brier").promote
    assert not decide({**CHAMP, "brier": 0.11}, CHAMP, metric="brier").promote


def test_force_always_promotes_and_says_so():
    d = decide({**CHAMP, "pr_auc": 0.1}, CHAMP, force=True)
    assert d.promote and d.reason == "forced promotion (--force)"


def test_unknown_metric_is_rejected():
    with pytest.raises(ValueError, match="unknown promotion metric 'auc'"):
        decide(CHAMP, CHAMP, metric="auc")
