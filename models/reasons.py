"""The loss-reason taxonomy and the feature -> reason map.

The map is data (``models/config/reason_map.yaml``) so a business can re-assign a
feature without touching code, but it is validated: every model feature must have
exactly one known reason, or the pipeline refuses to start.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from features.usage import USAGE_FEATURE, sanitise

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


# Usage features (features.usage) are named after the business's own event kinds, so
# they cannot be listed one by one; they are covered by the `families: usage:` entry of
# the map, with these phrases. The default reason is `unidentified`: declining usage is
# how every departure looks, not why it happens (domain.md section 7), and mapping it
# to poor_interaction would send "fix the open issue" to customers with no issue. A
# business whose kind does name a cause (support_chat, refund_request) overrides it
# per kind under `kinds:`.
DEFAULT_USAGE_REASON = "unidentified"
USAGE_PHRASES: dict[str, str] = {
    "30d": "{{{feature}:.0f}} {kind} events in the last 30 days",
    "90d": "{{{feature}:.0f}} {kind} events in the last 90 days",
    "trend_30d": "{kind} events {{{feature}:updown}} on the month before",
    "days_since": "no {kind} event for {{{feature}:.0f}} days",
    "active_days_90d": "{kind} on {{{feature}:.0%}} of the last 90 days",
}


class FeatureReasons(Mapping[str, "FeatureReason"]):
    """The declared features, and any usage feature resolved by its family.

    Iterating yields the declared features only; membership and lookup also accept
    every name :data:`features.usage.USAGE_FEATURE` matches, so validation still
    refuses any other undeclared feature.
    """

    def __init__(
        self,
        declared: Mapping[str, FeatureReason],
        usage_reason: str = DEFAULT_USAGE_REASON,
        usage_kinds: Mapping[str, str] | None = None,
    ) -> None:
        self.declared = dict(declared)
        self.usage_reason = usage_reason
        self.usage_kinds = dict(usage_kinds or {})

    def __getitem__(self, name: str) -> FeatureReason:
        if name in self.declared:
            return self.declared[name]
        match = USAGE_FEATURE.fullmatch(str(name))
        if match is None:
            raise KeyError(name)
        kind = match.group("kind")
        phrase = USAGE_PHRASES[match.group("metric")].format(
            feature=name, kind=kind.replace("_", " ")
        )
        return FeatureReason(self.usage_kinds.get(kind, self.usage_reason), phrase)

    def __contains__(self, name: object) -> bool:
        return name in self.declared or bool(USAGE_FEATURE.fullmatch(str(name)))

    def __iter__(self) -> Iterator[str]:
        return iter(self.declared)

    def __len__(self) -> int:
        return len(self.declared)


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
        data: dict = {
            "version": self.version,
            "features": {
                name: {"reason": fr.reason, "phrase": fr.phrase}
                for name, fr in self.features.items()
            },
        }
        if isinstance(self.features, FeatureReasons):
            data["families"] = {
                "usage": {"reason": self.features.usage_reason, "kinds": self.features.usage_kinds}
            }
        return data


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
    usage = (data.get("families") or {}).get("usage") or {}
    if not isinstance(usage, dict):
        problems.append("families.usage: expected a mapping with `reason:` and `kinds:`")
        usage = {}
    usage_reason = usage.get("reason", DEFAULT_USAGE_REASON)
    usage_kinds = usage.get("kinds") or {}
    if usage_reason not in REASON_SHARES:
        problems.append(f"families.usage: unknown reason {usage_reason!r}")
    if not isinstance(usage_kinds, dict):
        problems.append("families.usage.kinds: expected kind: reason pairs")
        usage_kinds = {}
    for kind, reason in usage_kinds.items():
        if reason not in REASON_SHARES:
            problems.append(f"families.usage.kinds.{kind}: unknown reason {reason!r}")
    if problems:
        raise ReasonMapError(
            f"{source}: " + "; ".join(problems) + f" (allowed reasons: {', '.join(REASONS)})"
        )
    return ReasonMap(
        version=int(data.get("version", 1)),
        features=FeatureReasons(
            features, usage_reason, {sanitise(k): str(v) for k, v in usage_kinds.items()}
        ),
        source=source,
    )


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
    return _PhraseFormatter().format(phrase, **{f: values[f] for f in fields})


class _PhraseFormatter(string.Formatter):
    """``str.format`` plus the ``updown`` spec: a relative change as "down 60%",
    "up 25%" or "unchanged"."""

    def format_field(self, value: object, format_spec: str) -> str:
        if format_spec == "updown":
            change = float(value)  # type: ignore[arg-type]
            if change <= -0.005:
                return f"down {-change:.0%}"
            return f"up {change:.0%}" if change >= 0.005 else "unchanged"
        return super().format_field(value, format_spec)
