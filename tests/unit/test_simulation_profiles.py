"""The customer-type tables (simulation/config/profiles.yaml) and their checks."""

from importlib import resources

import pytest
import yaml

from simulation.profiles import (
    CUSTOMER_TYPES,
    HAZARD_TYPES,
    HazardProfile,
    ProfileError,
    RetailProfile,
    load_profiles,
)

TYPES = ["regular", "occasional", "seasonal", "fan", "vip", "challenging"]


def _packaged() -> dict:
    text = resources.files("simulation").joinpath("config/profiles.yaml").read_text()
    return yaml.safe_load(text)


def test_packaged_tables_hold_the_six_types_in_order() -> None:
    assert list(CUSTOMER_TYPES) == TYPES
    assert list(HAZARD_TYPES) == TYPES
    assert all(isinstance(p, RetailProfile) for p in CUSTOMER_TYPES.values())
    assert all(isinstance(p, HazardProfile) for p in HAZARD_TYPES.values())


def test_values_are_read_as_floats_and_ranges() -> None:
    vip = CUSTOMER_TYPES["vip"]
    assert vip.value_multiplier == (3.0, 5.0)
    assert vip.mean_gap_days == (20.0, 30.0)
    assert vip.share == 0.08
    assert CUSTOMER_TYPES["seasonal"].mean_gap_days is None
    assert HAZARD_TYPES["challenging"].tickets_per_year == 6.0
    assert isinstance(HAZARD_TYPES["challenging"].tickets_per_year, float)


def test_a_missing_field_is_refused_naming_type_and_field() -> None:
    document = _packaged()
    del document["retail"]["fan"]["gap_shape"]
    with pytest.raises(ProfileError, match=r"retail\.fan: missing fields \['gap_shape'\]"):
        load_profiles(yaml.safe_dump(document, sort_keys=False))


def test_shares_that_do_not_sum_to_one_are_refused() -> None:
    document = _packaged()
    document["hazard"]["vip"]["share"] = 0.19
    with pytest.raises(ProfileError, match="hazard: shares must sum to 1"):
        load_profiles(yaml.safe_dump(document, sort_keys=False))


def test_scenarios_must_name_the_same_types_in_the_same_order() -> None:
    document = _packaged()
    document["hazard"] = dict(reversed(list(document["hazard"].items())))
    with pytest.raises(ProfileError, match="same types in the same order"):
        load_profiles(yaml.safe_dump(document, sort_keys=False))


def test_only_the_seasonal_type_may_lack_a_purchase_cadence() -> None:
    document = _packaged()
    document["retail"]["regular"]["mean_gap_days"] = None
    with pytest.raises(ProfileError, match=r"null for 'seasonal' only.*'regular', 'seasonal'"):
        load_profiles(yaml.safe_dump(document, sort_keys=False))


def test_a_range_with_low_above_high_is_refused() -> None:
    document = _packaged()
    document["retail"]["fan"]["satisfaction"] = [5.0, 4.5]
    with pytest.raises(ProfileError, match=r"retail\.fan\.satisfaction: range"):
        load_profiles(yaml.safe_dump(document, sort_keys=False))
