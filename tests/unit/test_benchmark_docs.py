"""The benchmarks' shared Markdown renderer, docs writer and target exit status."""

from __future__ import annotations

import argparse
import io
import math

import pandas as pd
import pytest

from benchmarks import _docs


def test_write_section_replaces_only_its_own(tmp_path):
    start, end = "<!-- early-warning:start -->", "<!-- early-warning:end -->"
    doc = tmp_path / "b.md"
    doc.write_text(
        "# Benchmarks\n\n<!-- quality:start -->\nQ\n<!-- quality:end -->\n\n"
        f"{start}\nold\n{end}\n\ntail\n"
    )
    _docs.write_section(doc, f"{start}\nnew\n{end}\n", start, end)
    assert doc.read_text() == (
        "# Benchmarks\n\n<!-- quality:start -->\nQ\n<!-- quality:end -->\n\n"
        f"{start}\nnew\n{end}\n\ntail\n"
    )
    fresh = tmp_path / "c.md"
    fresh.write_text("# Benchmarks\n\nother\n")
    _docs.write_section(fresh, f"{start}\nx\n{end}\n", start, end)
    assert fresh.read_text() == f"# Benchmarks\n\nother\n\n{start}\nx\n{end}\n"


def test_write_section_creates_a_missing_document_with_its_title(tmp_path):
    doc = tmp_path / "docs" / "benchmarks.md"
    _docs.write_section(doc, "<!-- a -->\nA\n<!-- /a -->\n", "<!-- a -->", "<!-- /a -->")
    assert doc.read_text() == "# Benchmarks\n\n<!-- a -->\nA\n<!-- /a -->\n"
    assert [p.name for p in doc.parent.iterdir()] == ["benchmarks.md"]  # no temporary left


@pytest.mark.parametrize(
    "value, digits, shown",
    [
        (0.12345, 3, "0.123"),
        (0.12345, 1, "0.1"),
        (1234, 3, "1,234"),
        (True, 3, "yes"),
        (False, 3, "no"),
        (math.nan, 3, "n/a"),
        (math.inf, 3, "n/a"),
        (None, 3, "n/a"),
        ("text", 3, "text"),
    ],
)
def test_fmt(value, digits, shown):
    assert _docs.fmt(value, digits) == shown


def test_pct():
    assert [_docs.pct(v) for v in (0.1234, 1, math.nan, "x")] == ["12.3%", "100.0%", "n/a", "n/a"]


def test_markdown_table_formats_cells_and_aligns_columns():
    table = _docs.markdown_table(("run", "n", "share"), [["a", 1500, 0.5], ["b", 2, math.nan]])
    assert table == "| run | n | share |\n|---|---|---|\n| a | 1,500 | 0.500 |\n| b | 2 | n/a |"
    right = _docs.markdown_table(("x", "y"), [["1", "2"]], cell=str, align="lr")
    assert right == "| x | y |\n|---|---:|\n| 1 | 2 |"


def test_frame_table_shows_cells_as_they_are():
    frame = pd.DataFrame({"seed": ["0", "1"], "n": [1500, 2], "share": ["12%", "- (0)"]})
    assert _docs.frame_table(frame) == (
        "| seed | n | share |\n|---|---|---|\n| 0 | 1500 | 12% |\n| 1 | 2 | - (0) |"
    )


def test_produced_line_names_command_machine_and_timing():
    meta = {"command": "c", "date": "2026-01-02 03:04", "cores": 2, "machine": "m", "python": "3"}
    assert _docs.produced_line(meta, "wall time 1.0 min") == (
        "Produced by `c` on 2026-01-02 03:04, 2 CPU cores (m, Python 3), wall time 1.0 min. "
        "Do not edit by hand: rerun the command."
    )


def test_command_line_runs_the_module():
    shown = _docs.command_line("speed", ["--quick"])
    assert shown == ".venv/bin/python -m benchmarks.speed --quick"


def test_target_status_lists_missed_targets_and_fails_unless_told_not_to():
    err = io.StringIO()
    assert _docs.target_status(["a: 0.8 < 0.9", "b"], True, err) == _docs.TARGET_MISSED == 3
    assert err.getvalue() == "target missed: a: 0.8 < 0.9\ntarget missed: b\n"
    assert _docs.target_status(["a"], False, io.StringIO()) == 0
    assert _docs.target_status([], True, io.StringIO()) == 0


def test_no_fail_on_target_flag():
    parser = argparse.ArgumentParser()
    _docs.add_target_flag(parser)
    assert parser.parse_args([]).fail_on_target is True
    assert parser.parse_args(["--no-fail-on-target"]).fail_on_target is False
