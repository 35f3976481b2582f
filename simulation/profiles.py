"""The customer types of the simulated businesses, read from ``config/profiles.yaml``.

The profiles are data: one table per scenario, one entry per type, shipped with the
package. This module turns the tables into frozen dataclasses and refuses a table a
simulator could not use (a missing or unknown field, a share that does not add up,
type names that differ between scenarios).
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any, TypeVar

import yaml

_Range = tuple[float, float]


class ProfileError(ValueError):
    """The customer-type tables are malformed."""


@dataclass(frozen=True)
class RetailProfile:
    """How one customer type behaves in the retail scenario (fields: ``profiles.yaml``)."""

    share: float
    churn_probability: float
    mean_gap_days: _Range | None  # None: buys in seasons, not on a cadence
    gap_shape: float
    value_multiplier: _Range
    satisfaction: _Range
    outreach_response: _Range
    ticket_multiplier: float
    complaints_per_year: float


@dataclass(frozen=True)
class HazardProfile:
    """How one customer type behaves in the hazard scenario (fields: ``profiles.yaml``)."""

    share: float
    median_gap_days: _Range | None  # None: buys in its seasons only
    gap_sigma: float
    value_multiplier: _Range
    satisfaction: _Range
    tolerance: float
    outreach_response: _Range
    tickets_per_year: float
    price_sensitivity: float
    hazard_multiplier: float


_Profile = TypeVar("_Profile", RetailProfile, HazardProfile)
# The one type that buys in seasons; its gap field, and only its, is null.
SEASONAL = "seasonal"


def load_profiles(
    text: str | None = None,
) -> tuple[dict[str, RetailProfile], dict[str, HazardProfile]]:
    """Read and check the customer-type tables.

    Args:
        text: YAML with a ``retail`` and a ``hazard`` table; by default the packaged
            ``simulation/config/profiles.yaml``.

    Returns:
        The retail and the hazard profiles, each by type name in file order.

    Raises:
        ProfileError: A table is missing, a type lacks a field or has an unknown one, a
            value has the wrong form, the shares do not sum to 1, the two tables name
            different types, or a gap is null for a type other than ``seasonal``.
    """
    if text is None:
        text = resources.files("simulation").joinpath("config/profiles.yaml").read_text()
    document = yaml.safe_load(text)
    if not isinstance(document, dict) or set(document) != {"retail", "hazard"}:
        raise ProfileError("profiles must hold exactly two tables, 'retail' and 'hazard'")
    retail = _table(document["retail"], "retail", RetailProfile, "mean_gap_days")
    hazard = _table(document["hazard"], "hazard", HazardProfile, "median_gap_days")
    if list(retail) != list(hazard):
        raise ProfileError(
            f"the retail and hazard tables must name the same types in the same order: "
            f"{', '.join(retail)} vs {', '.join(hazard)}"
        )
    return retail, hazard


def _table(raw: Any, scenario: str, profile: type[_Profile], gap_field: str) -> dict[str, _Profile]:
    """One scenario's table as profiles, checked field by field."""
    if not isinstance(raw, dict) or not raw:
        raise ProfileError(f"{scenario}: expected a mapping of customer types")
    hints = typing.get_type_hints(profile)
    expected = [field.name for field in fields(profile)]
    table: dict[str, _Profile] = {}
    for name, entry in raw.items():
        where = f"{scenario}.{name}"
        if not isinstance(entry, dict):
            raise ProfileError(f"{where}: expected a mapping of fields")
        missing = [key for key in expected if key not in entry]
        unknown = [key for key in entry if key not in expected]
        if missing or unknown:
            raise ProfileError(f"{where}: missing fields {missing}, unknown fields {unknown}")
        table[str(name)] = profile(
            **{key: _value(entry[key], hints[key], f"{where}.{key}") for key in expected}
        )
    total = sum(entry.share for entry in table.values())
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        raise ProfileError(f"{scenario}: shares must sum to 1, got {total}")
    no_cadence = [name for name, entry in table.items() if getattr(entry, gap_field) is None]
    if no_cadence != [SEASONAL]:
        raise ProfileError(
            f"{scenario}: {gap_field} must be null for '{SEASONAL}' only, got {no_cadence}"
        )
    return table


def _value(raw: Any, hint: Any, where: str) -> float | _Range | None:
    """A number, a [low, high] range or null, as the field's annotation asks."""

    def number(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProfileError(f"{where}: expected a number, got {value!r}")
        return float(value)

    if hint is float:
        return number(raw)
    if raw is None and hint == (_Range | None):
        return None
    if not isinstance(raw, list) or len(raw) != 2:
        raise ProfileError(f"{where}: expected a range [low, high], got {raw!r}")
    low, high = number(raw[0]), number(raw[1])
    if low > high:
        raise ProfileError(f"{where}: range [{low}, {high}] has low above high")
    return low, high


CUSTOMER_TYPES, HAZARD_TYPES = load_profiles()
