"""Shared Markdown rendering and docs writing for the benchmark scripts.

Every benchmark renders its results as one Markdown section between its own markers in
``docs/benchmarks.md``: a "Produced by" line naming the command and the machine, tables,
and a targets table whose missed rows make the script exit with :data:`TARGET_MISSED`.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

DOC_TITLE = "# Benchmarks\n"
TARGET_MISSED = 3  # exit status of a benchmark whose reported target was missed
PASS, FAIL = "**pass**", "**FAIL**"
MET, NOT_MET = "**met**", "**not met**"


# --- numbers ----------------------------------------------------------------------------


def finite(value: object) -> bool:
    """True for an int or float that is neither NaN nor infinite."""
    return isinstance(value, int | float) and math.isfinite(value)


def fmt(value: object, digits: int = 3) -> str:
    """One table cell: ``n/a`` for a missing number, ints with thousands separators.

    Args:
        value: The number (or text) to show.
        digits: Decimals of a float.

    Returns:
        ``yes``/``no`` for a bool, ``1,234`` for an int, ``0.123`` for a float, ``n/a``
        for None, NaN or an infinite float, anything else as ``str``.
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"
    return str(value)


def pct(value: object) -> str:
    """A share as a percentage with one decimal (``12.3%``), ``n/a`` if not finite."""
    return f"{100 * value:.1f}%" if finite(value) else "n/a"  # type: ignore[operator]


def verdict(ok: bool, words: tuple[str, str] = (PASS, FAIL)) -> str:
    """The status cell of a target: ``words[0]`` if met, else ``words[1]``."""
    return words[0] if ok else words[1]


# --- tables -----------------------------------------------------------------------------


def markdown_table(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    cell: Callable[[object], str] = fmt,
    align: str = "",
) -> str:
    """A pipe table, one line per row, without a trailing newline.

    Args:
        header: Column titles.
        rows: Cells, each shown through ``cell``.
        cell: How a cell becomes text (``fmt`` by default, ``str`` for ready text).
        align: One letter per column, ``l`` or ``r`` (right-aligned numbers); empty
            leaves every column unaligned.

    Returns:
        The table as Markdown.
    """
    rule = "|" + "".join("---:|" if a == "r" else "---|" for a in align or "l" * len(header))
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def frame_table(frame: pd.DataFrame) -> str:
    """``frame`` (cells already formatted) as a pipe table, columns as the header."""
    return markdown_table([str(c) for c in frame.columns], frame.to_numpy(), cell=str)


# --- the header ----------------------------------------------------------------------------


def command_line(script: str, argv: Sequence[str] | None = None) -> str:
    """How to rerun this benchmark, as shown in its section: the module and its arguments.

    Args:
        script: The module's name inside ``benchmarks`` (``quality``).
        argv: The arguments; the process's own when None.
    """
    args = sys.argv[1:] if argv is None else argv
    return " ".join([".venv/bin/python", "-m", f"benchmarks.{script}", *args])


def machine() -> dict[str, Any]:
    """Cores, architecture, CPU model and Python version of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "cpu": cpu,
        "python": platform.python_version(),
    }


def run_meta(command: str) -> dict[str, Any]:
    """The command, the time now (``YYYY-MM-DD HH:MM``) and :func:`machine`."""
    return {"command": command, "date": datetime.now().strftime("%Y-%m-%d %H:%M"), **machine()}


def produced_line(meta: dict[str, Any], timing: str) -> str:
    """The first paragraph of a section: which command produced it, where and how fast.

    Args:
        meta: As from :func:`run_meta`.
        timing: How long it took, in words (``wall time 3.3 min``).
    """
    return (
        f"Produced by `{meta['command']}` on {meta['date']}, {meta['cores']} CPU cores "
        f"({meta['machine']}, Python {meta['python']}), {timing}. Do not edit by hand: "
        "rerun the command."
    )


# --- the document and the exit status -------------------------------------------------------


def write_section(doc: Path, section: str, start_marker: str, end_marker: str) -> None:
    """Replace one benchmark's section of ``doc``, keeping everything else.

    The section between ``start_marker`` and ``end_marker`` (markers included) is replaced
    by ``section``; if the markers are absent, ``section`` is appended. The file is
    replaced atomically so a crash never leaves half a document.

    Args:
        doc: The Markdown document, created (with a title) if missing.
        section: The new section, starting with ``start_marker`` and ending with
            ``end_marker``.
        start_marker: The line that opens this benchmark's section.
        end_marker: The line that closes it.
    """
    text = doc.read_text() if doc.exists() else DOC_TITLE
    if start_marker in text and end_marker in text:
        head, rest = text.split(start_marker, 1)
        _, tail = rest.split(end_marker, 1)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=doc.parent, delete=False, suffix=".tmp") as f:
        f.write(text)
    Path(f.name).replace(doc)


def add_target_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--no-fail-on-target`` (stored as ``args.fail_on_target``, True by default)."""
    parser.add_argument(
        "--no-fail-on-target",
        dest="fail_on_target",
        action="store_false",
        help=f"exit 0 even when a reported target is missed (else exit {TARGET_MISSED})",
    )


def target_status(missed: Sequence[str], fail_on_target: bool, err: TextIO | None = None) -> int:
    """List the missed targets on stderr; the exit status they call for.

    Call it after every output is written, so a missed target never loses the numbers.

    Args:
        missed: One line per missed target.
        fail_on_target: False keeps the old behaviour (exit 0 whatever the targets).
        err: Where to list them; stderr by default.

    Returns:
        :data:`TARGET_MISSED` if a target was missed and ``fail_on_target``, else 0.
    """
    stream = sys.stderr if err is None else err
    for line in missed:
        print(f"target missed: {line}", file=stream)
    return TARGET_MISSED if missed and fail_on_target else 0
