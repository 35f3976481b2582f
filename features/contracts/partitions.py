"""One table's contract findings in parts (Dask partitions) told as the whole table tells them.

Validation stops at a table's first failing check, in a fixed order: the columns' names,
then each column's conversion (its missing and invalid values, its bounds, its time
zones) in the contract's column order, then the checks across columns (future events,
repeated customer rows, subscription periods). A part stops at its own first failing
check, so the whole table's first failing check is the earliest any part reached, and
the parts that failed there hold every one of its bad values: their counts add up and
their first rows are the whole table's. Mixed time zones are a property of the whole
column, told from every part's counts (:class:`~features.contracts.messages.ZoneCounts`).
The parts' rows must already be numbered as the source numbers them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from features.contracts.columns import COLUMNS, OPTIONAL, REQUIRED
from features.contracts.messages import (
    _MAX_ROWS_SHOWN,
    Finding,
    InputError,
    ZoneCounts,
    bad_values_error,
    mixed_zones_error,
    repeated_ids_hint,
)

_BOUNDS = frozenset(c.bounds.problem for c in COLUMNS if c.bounds is not None)
# checks across columns, in validation's order; "future (after ...)" comes first
_ACROSS = {"repeated": 1, "before-start": 1, "overlapping": 2}
_MISSING = "missing"


def _stage(error: InputError, table: str) -> tuple[int, int, int]:
    """Where in validation's order ``error``'s check runs (smaller: earlier)."""
    finding = error.finding
    if finding is None:
        return (0, 0, 0)  # names and shape: every part says the same
    if finding.problem.startswith("future") or finding.problem in _ACROSS:
        return (2, _ACROSS.get(finding.problem, 0), 0)
    columns = REQUIRED[table] + OPTIONAL[table]
    return (1, columns.index(finding.column), 1 if finding.problem in _BOUNDS else 0)


def _zone_stage(column: str, table: str) -> tuple[int, int, int]:
    return (1, (REQUIRED[table] + OPTIONAL[table]).index(column), 2)


def whole_table_error(
    table: str,
    source: str,
    errors: Sequence[InputError],
    zones: Sequence[Mapping[str, ZoneCounts]] = (),
) -> InputError | None:
    """The error validating the whole table would raise, from its parts' errors.

    Args:
        table: which contract table.
        source: the label messages start with.
        errors: each failed part's error (rows numbered as in the source).
        zones: each part's time zone counts per column (parts that reached that check).

    Returns:
        The whole table's error; None when neither the parts nor the zones fail.
    """
    candidates: list[tuple[tuple[int, int, int], InputError | str]] = [
        (_stage(error, table), error)
        for error in errors
        if error.finding is not None or not error.rows  # a part's mixed zones: see below
    ]
    for column in dict.fromkeys(c for part in zones for c in part):
        counts = [part[column] for part in zones if column in part]
        if sum(c.with_offset for c in counts) and sum(c.without_offset for c in counts):
            candidates.append((_zone_stage(column, table), column))
    if not candidates:
        return None
    first = min(stage for stage, _ in candidates)
    found = [item for stage, item in candidates if stage == first]
    if isinstance(found[0], str):
        column = found[0]
        return _mixed_zones(source, column, [part[column] for part in zones if column in part])
    errors = [item for item in found if isinstance(item, InputError)]
    findings = [error.finding for error in errors if error.finding is not None]
    if not findings:
        return errors[0]
    return bad_values_error(source, merge_findings(findings))


def merge_findings(findings: Sequence[Finding]) -> Finding:
    """Several parts' findings of one check as one: counts summed, the first rows kept."""
    if len(findings) == 1:
        return findings[0]
    shown = sorted(pair for f in findings for pair in zip(f.rows, f.shown, strict=True))
    shown = shown[:_MAX_ROWS_SHOWN]
    problem, hint = _problem_and_hint(findings)
    hint_args: tuple[int | str, ...] = ()
    if findings[0].hint_args:
        # customers counted (each in one part) and the smallest example id, as sorted
        customers = sum(int(f.hint_args[0]) for f in findings)
        examples = [str(f.hint_args[1]) for f in findings if len(f.hint_args) > 1]
        hint_args = (customers, min(examples)) if examples else (customers,)
        hint = _hint(findings[0].problem, hint_args)
    return Finding(
        findings[0].column,
        sum(f.count for f in findings),
        problem,
        tuple(row for row, _ in shown),
        tuple(text for _, text in shown),
        hint,
        hint_args,
    )


def _problem_and_hint(findings: Sequence[Finding]) -> tuple[str, str | None]:
    """The missing / invalid label of the whole column, and the hint invalid values bring.

    A conversion labels its values "missing", "<problem>" or "missing or <problem>", with
    the hint only when some are invalid.
    """
    missing, invalid, hint = False, None, None
    for finding in findings:
        label = finding.problem
        if label == _MISSING or label.startswith(f"{_MISSING} or "):
            missing = True
            label = label.removeprefix(_MISSING).removeprefix(" or ")
        if label:
            invalid, hint = label, hint or finding.hint
    if invalid is None:
        return _MISSING, None
    return (f"{_MISSING} or {invalid}" if missing else invalid), hint


def _hint(problem: str, args: tuple[int | str, ...]) -> str | None:
    if problem == "repeated":
        return repeated_ids_hint(int(args[0]))
    if problem == "overlapping":
        from features.subscription_checks import overlap_hint

        return overlap_hint(int(args[0]), str(args[1]))
    return None


def _mixed_zones(source: str, column: str, counts: Sequence[ZoneCounts]) -> InputError:
    n_with = sum(c.with_offset for c in counts)
    n_without = sum(c.without_offset for c in counts)
    groups = [c.first_with if n_with <= n_without else c.first_without for c in counts]
    shown = tuple(sorted(pair for group in groups for pair in group)[:_MAX_ROWS_SHOWN])
    return mixed_zones_error(source, column, n_with, n_without, shown)
