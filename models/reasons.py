"""The loss-reason taxonomy and the feature -> reason map.

The map is data (``models/config/reason_map.yaml``) so a business can re-assign a
feature without touching code, but it is validated: every model feature must have
exactly one known reason, or the pipeline refuses to start.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

# Documented shares of lost customers by reason (../shared/domain.md section 1).
REASON_SHARES: dict[str, float] = {
    "poor_interaction": 0.68,
    "unidentified": 0.14,
    "competitor_offer": 0.09,
    "business_change": 0.05,
    "relocation": 0.03,
    "financial_distress": 0.01,
}
REASONS: tuple[str, ...] = tuple(REASON_SHARES)


class ReasonMapError(ValueError):
    """The reason map is malformed or does not cover the model's features."""


@dataclass(frozen=True)
class FeatureReason:
    reason: str
    phrase: str


@dataclass(frozen=True)
class ReasonMap:
    version: int
    features: Mapping[str, FeatureReason]
    source: str

    def reason_of(self, feature: str) -> str:
        return self.features[feature].reason

    def check_covers(self, feature_names: Iterable[str]) -> None:
        """Raise if any model feature has no reason."""
        missing = [f for f in feature_names if f not in self.features]
        if missing:
            raise ReasonMapError(
                f"{self.source}: features without a loss reason: {', '.join(missing)}. "
                f"Add each under `features:` with one of: {', '.join(REASONS)}"
            )

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "features": {
                name: {"reason": fr.reason, "phrase": fr.phrase}
                for name, fr in self.features.items()
            },
        }


def parse_reason_map(data: object, source: str) -> ReasonMap:
    """Validate a parsed reason-map document."""
    if not isinstance(data, dict) or not isinstance(data.get("features"), dict):
        raise ReasonMapError(f"{source}: expected a mapping with a `features:` mapping")
    features: dict[str, FeatureReason] = {}
    problems = []
    for name, entry in data["features"].items():
        if not isinstance(entry, dict) or "reason" not in entry:
            problems.append(f"{name}: needs `reason:`")
            continue
        reason = entry["reason"]
        if reason not in REASON_SHARES:
            problems.append(f"{name}: unknown reason {reason!r}")
            continue
        phrase = str(entry.get("phrase", name.replace("_", " ") + " {" + name + "}"))
        fields = {f for _, f, _, _ in string.Formatter().parse(phrase) if f}
        unknown_fields = fields - set(data["features"])
        if unknown_fields:
            problems.append(f"{name}: phrase uses unknown features {sorted(unknown_fields)}")
            continue
        features[name] = FeatureReason(reason=reason, phrase=phrase)
    if problems:
        raise ReasonMapError(
            f"{source}: " + "; ".join(problems) + f" (allowed reasons: {', '.join(REASONS)})"
        )
    return ReasonMap(version=int(data.get("version", 1)), features=features, source=source)


def load_reason_map(path: str | Path | None = None) -> ReasonMap:
    """Load and validate the reason map (the packaged default if ``path`` is None)."""
    if path is None:
        text = resources.files("models").joinpath("config/reason_map.yaml").read_text()
        source = "models/config/reason_map.yaml"
    else:
        text, source = Path(path).read_text(), str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ReasonMapError(f"{source}: not valid YAML: {exc}") from exc
    return parse_reason_map(data, source)


def describe(reason_map: ReasonMap, feature: str, values: Mapping[str, float]) -> str:
    """The feature's plain-words phrase filled with one customer's values."""
    phrase = reason_map.features[feature].phrase
    fields = [f for _, f, _, _ in string.Formatter().parse(phrase) if f]
    if any(values.get(f) is None or math.isnan(values[f]) for f in fields):
        return f"{feature.replace('_', ' ')}: unknown"
    return phrase.format(**{f: values[f] for f in fields})
