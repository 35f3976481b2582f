"""The loss-reason taxonomy and the feature -> reason map.

Each reason is declared once, in :data:`LOSS_REASONS` (key, label, colour, documented
share, meaning). Each feature's default reason and phrase are declared once, in
:mod:`features.registry`; ``models/config/reason_map.yaml`` (or a business's own file)
only overrides them, so a business can re-assign a feature without touching code. The
map is validated: every override must name a known feature and every feature exactly
one known reason, or the pipeline refuses to start.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from features import registry
from features.build import observable_features, unobservable_features
from features.usage import USAGE_FEATURE, sanitise


@dataclass(frozen=True)
class LossReason:
    """One documented loss reason.

    Attributes:
        key: the name in data and config (``top_reason``, the playbook, the reason map).
        label: the name for people ("Poor interaction").
        colour: its colour in the report.
        share: the documented share of lost customers it explains.
        meaning: what it means to someone on the phone.
    """

    key: str
    label: str
    colour: str
    share: float
    meaning: str


# Documented shares of lost customers by reason (../shared/domain.md section 1); colours
# are Okabe-Ito (safe for colour-blind readers), grey for "no clear cause".
# fmt: off
LOSS_REASONS: dict[str, LossReason] = {r.key: r for r in (
    LossReason("poor_interaction", "Poor interaction", "#D55E00", 0.68,
               "slow or unresolved issues, low satisfaction, little or no contact"),
    LossReason("unidentified", "Unidentified", "#7A7A7A", 0.14,
               "no specific cause; they are simply buying less and less often"),
    LossReason("competitor_offer", "Competitor offer", "#0072B2", 0.09,
               "a better deal elsewhere (discount hunting, price complaints)"),
    LossReason("business_change", "Business change", "#CC79A7", 0.05,
               "their needs changed (different products or order sizes)"),
    LossReason("relocation", "Relocation", "#009E73", 0.03,
               "they moved to another region or channel"),
    LossReason("financial_distress", "Financial distress", "#E69F00", 0.01,
               "money trouble (failed or late payments)"),
)}
# fmt: on
REASONS: tuple[str, ...] = tuple(LOSS_REASONS)
REASON_SHARES: dict[str, float] = {key: r.share for key, r in LOSS_REASONS.items()}
REASON_LABELS: dict[str, str] = {key: r.label for key, r in LOSS_REASONS.items()}
REASON_COLOURS: dict[str, str] = {key: r.colour for key, r in LOSS_REASONS.items()}
REASON_MEANINGS: dict[str, str] = {key: r.meaning for key, r in LOSS_REASONS.items()}


def stated_word(text: str) -> str:
    """A recorded answer as a word of :data:`STATED_REASON_WORDS`: lower case, every run
    of other characters one ``_`` ("Can't afford" -> ``can_t_afford``)."""
    return "_".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


# What businesses record when a customer cancels (a subscription's ``cancel_reason``), as
# loss reasons: the reasons' keys and labels, and common answers of cancellation surveys
# (Stripe's cancellation feedback values among them). ``cancel_reasons:`` in the settings
# file adds a business's own words or overrides these.
# fmt: off
STATED_REASON_WORDS: dict[str, str] = {
    **{key: key for key in LOSS_REASONS},
    **{stated_word(r.label): key for key, r in LOSS_REASONS.items()},
    **dict.fromkeys((
        "customer_service", "bad_support", "poor_support", "bad_service", "poor_service",
        "low_quality", "poor_quality", "too_complex", "unhappy", "dissatisfied",
        "not_satisfied", "complaint"), "poor_interaction"),
    **dict.fromkeys((
        "too_expensive", "switched_service", "switched_provider", "competitor",
        "found_cheaper", "cheaper_elsewhere", "better_price", "better_offer",
        "better_deal", "price"), "competitor_offer"),
    **dict.fromkeys((
        "missing_features", "unused", "not_using", "no_longer_needed", "not_needed",
        "needs_changed", "business_closed"), "business_change"),
    **dict.fromkeys(("moving", "moved", "relocating", "moved_away"), "relocation"),
    **dict.fromkeys((
        "cannot_afford", "can_t_afford", "cant_afford", "budget", "financial_reasons",
        "financial_difficulties", "bankruptcy", "payment_failed"), "financial_distress"),
    **dict.fromkeys((
        "other", "unknown", "none", "no_reason", "prefer_not_to_say"), "unidentified"),
}
# fmt: on


def stated_words(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """:data:`STATED_REASON_WORDS` with a business's own words (the settings'
    ``cancel_reasons``), each of which must name a loss reason."""
    words = dict(STATED_REASON_WORDS)
    for word, reason in (overrides or {}).items():
        if reason not in LOSS_REASONS:
            raise ValueError(
                f"settings cancel_reasons: {word!r} -> {reason!r} is not a loss reason; "
                f"use one of {', '.join(LOSS_REASONS)}"
            )
        words[stated_word(str(word))] = reason
    return words


def stated_reasons(recorded: pd.Series, words: Mapping[str, str]) -> pd.Series:
    """Each customer's recorded cancellation reason as a loss reason (missing: none
    recorded, or an answer ``words`` does not hold)."""
    present = recorded.notna().to_numpy()
    out = pd.Series(None, index=recorded.index, dtype=object, name="stated_reason")
    answers = recorded[present].astype(str)
    # a survey has a handful of answers: each spelled out once, not once per customer
    known = {answer: words.get(stated_word(answer)) for answer in answers.unique()}
    out.iloc[np.flatnonzero(present)] = answers.map(known).to_numpy()
    return out


def unknown_stated_words(recorded: pd.Series, words: Mapping[str, str]) -> pd.Series:
    """How many customers gave each recorded answer that ``words`` does not map."""
    counts = recorded.dropna().astype(str).value_counts()
    return counts[[stated_word(answer) not in words for answer in counts.index]]


class ReasonMapError(ValueError):
    """The reason map is malformed or does not cover the model's features."""


@dataclass(frozen=True)
class FeatureReason:
    reason: str
    phrase: str


# Usage features (features.usage) are named after the business's own event kinds, so
# they cannot be listed one by one; the registry declares them as a pattern, with its
# default reason and phrases, and the `families: usage:` entry of the map overrides the
# reason (per kind under `kinds:`).
DEFAULT_USAGE_REASON: str = registry.USAGE_FEATURES.reason
USAGE_PHRASES: dict[str, str] = registry.USAGE_FEATURES.phrases


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


def registry_entries() -> dict[str, dict[str, str]]:
    """Every declared feature's default reason and phrase (:mod:`features.registry`)."""
    return {f.name: {"reason": f.reason, "phrase": f.phrase} for f in registry.FEATURES}


def parse_reason_map(data: object, source: str, over_registry: bool = False) -> ReasonMap:
    """Validate a parsed reason-map document.

    Args:
        data: the parsed YAML: ``version``, ``features`` (feature -> ``reason`` and
            ``phrase``) and optionally ``families: usage:``.
        source: names the document in error messages.
        over_registry: the document overrides the registry's defaults
            (:func:`registry_entries`): every feature it names must be declared there,
            an entry may give only a reason or only a phrase, and ``features:`` may be
            left out. ``False``: the document is the whole map.
    """
    given = data.get("features") if isinstance(data, dict) else None
    if given is None and over_registry and isinstance(data, dict):
        given = {}  # overrides of the families only
    if not isinstance(data, dict) or not isinstance(given, dict):
        raise ReasonMapError(f"{source}: expected a mapping with a `features:` mapping")
    problems = []
    entries: dict[str, Any] = dict(given)
    if over_registry:
        entries = registry_entries()  # the defaults, in the registry's order
        for name, entry in given.items():
            if not registry.is_declared(str(name)):
                problems.append(f"{name}: not a feature the pipeline builds (features/registry.py)")
            elif isinstance(entry, dict) and name in entries:
                entries[name] = {**entries[name], **entry}
            else:
                entries[name] = entry
    features: dict[str, FeatureReason] = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or "reason" not in entry:
            problems.append(f"{name}: needs `reason:`")
            continue
        reason = entry["reason"]
        if reason not in REASON_SHARES:
            problems.append(f"{name}: unknown reason {reason!r}")
            continue
        phrase = str(entry.get("phrase", name.replace("_", " ") + " {" + name + "}"))
        fields = {f for _, f, _, _ in string.Formatter().parse(phrase) if f}
        unknown_fields = fields - set(entries)
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
    """The registry's reasons and phrases with a reason-map file's overrides, validated.

    Args:
        path: the business's overrides; ``None`` reads the packaged
            ``models/config/reason_map.yaml``.
    """
    if path is None:
        text = resources.files("models").joinpath("config/reason_map.yaml").read_text()
        source = "models/config/reason_map.yaml"
    else:
        text, source = Path(path).read_text(), str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ReasonMapError(f"{source}: not valid YAML: {exc}") from exc
    return parse_reason_map(data, source, over_registry=True)


def describe(reason_map: ReasonMap, feature: str, values: Mapping[str, float]) -> str:
    """The feature's plain-words phrase filled with one customer's values."""
    phrase = reason_map.features[feature].phrase
    fields = [f for _, f, _, _ in string.Formatter().parse(phrase) if f]
    if any(values.get(f) is None or math.isnan(values[f]) for f in fields):
        return f"{feature.replace('_', ' ')}: unknown"
    return PhraseFormatter().format(phrase, **{f: values[f] for f in fields})


class PhraseFormatter(string.Formatter):
    """``str.format`` plus two specs: ``updown``, a relative change as "down 60%",
    "up 25%" or "unchanged"; ``points``, a change of a share as "up 15 points",
    "down 5 points" or "unchanged"."""

    def format_field(self, value: object, format_spec: str) -> str:
        if format_spec in ("updown", "points"):
            change = float(value)  # type: ignore[arg-type]
            size = f"{abs(change):.0%}"
            if format_spec == "points":
                size = size.removesuffix("%") + " points"
            if change <= -0.005:
                return f"down {size}"
            return f"up {size}" if change >= 0.005 else "unchanged"
        return super().format_field(value, format_spec)


def blind_spots(
    transaction_columns: Iterable[str],
    interaction_columns: Iterable[str] | None,
    reason_map: ReasonMap,
) -> tuple[list[str], list[str]]:
    """The features these tables' columns cannot show, and the loss reasons left with no
    signal at all (every feature that would point to them is unobservable).

    Raises:
        ReasonMapError: ``reason_map`` does not cover an observable feature.
    """
    tx, ix = set(transaction_columns), None
    if interaction_columns is not None:
        ix = set(interaction_columns)
    have = observable_features(tx, ix)
    reason_map.check_covers(have)
    seen = {reason_map.reason_of(f) for f in have} - {"unidentified"}
    blind = [r for r in REASONS if r != "unidentified" and r not in seen]
    return unobservable_features(tx, ix), blind
