"""The batched nights' stages, read from a run log's timestamps (benchmarks.batched_scale)."""

from __future__ import annotations

from datetime import datetime

import pytest

from benchmarks.batched_scale import STAGES, night_stages, render_stages

_NIGHT = """\
2026-12-03 10:00:00,000 | INFO    | Flow run 'a-b' - Beginning flow run 'a-b' for flow 'nightly'
2026-12-03 10:00:00,040 | INFO    | Task run 'check-0f0' - Finished in state Completed()
{checked}2026-12-03 10:00:20,500 | INFO    | Flow run 'a-b' - rows read: {{'transactions': 10}}
2026-12-03 10:00:22,000 | INFO    | Task run 'load_champion-e74' - Finished in state Completed()
2026-12-03 10:00:40,000 | INFO    | Task run 'night_facts-75b' - Finished in state Completed()
2026-12-03 10:00:50,250 | INFO    | Task run 'score_night-ed0' - Finished in state Completed()
2026-12-03 10:00:55,000 | INFO    | Task run 'write_outputs-15f' - Finished in state Completed()
2026-12-03 10:00:56,000 | INFO    | Task run 'log_scoring_run-d33' - Finished in state Completed()
2026-12-03 10:00:57,500 | INFO    | Flow run 'a-b' - Finished in state Completed()
"""
_CHECKED = (
    "2026-12-03 10:00:20,000 | INFO    | churn.progress - reading and checking inputs: "
    "4 batches done in 12 s\n"
)


def test_a_batched_nights_stages_are_read_from_its_run_log():
    whole = _NIGHT.format(checked="")
    batched = _NIGHT.format(checked=_CHECKED).replace("10:00:", "11:00:")
    runs = night_stages(whole + "a line of a traceback\n" + batched)
    seconds = [20.5, 19.5, 10.25, 4.75, 1.0, 57.5]
    assert runs == [dict(zip([name for name, _ in STAGES], seconds, strict=True))]
    assert night_stages(batched, since=datetime(2026, 12, 3, 11, 1)) == []
    assert night_stages(whole + batched, until=datetime(2026, 12, 3, 11, 0, 57)) == []


def test_growth_exponents_hold_the_data_stages_to_the_target():
    small = {name: 10.0 for name, _ in STAGES}
    large = {**small, STAGES[0][0]: 10.0 * 2**1.3, STAGES[-1][0]: 10.0 * 2**2}
    meta = {"command": "c", "date": "d", "cores": 2, "machine": "m", "python": "3"}
    section, missed = render_stages({100: small, 200: large}, {100: 3, 200: 3}, meta, "t")
    assert missed == [f"{STAGES[0][0]}: growth exponent 1.30 (target <= 1.1)"]
    assert "| 1.30 | **not met** |" in section and "| 2.00 | - |" in section
    assert section.count("| 0.00 | **met** |") == 3


@pytest.mark.parametrize("sizes", [[300_000, 1_000_000]])
def test_the_stage_table_has_a_column_per_size(sizes):
    stages = {n: {name: 1.0 for name, _ in STAGES} for n in sizes}
    meta = {"command": "c", "date": "d", "cores": 2, "machine": "m", "python": "3"}
    section, _ = render_stages(stages, dict.fromkeys(sizes, 1), meta, "t")
    assert "| stage | 300,000 s | 1,000,000 s | growth exponent | <= 1.1 |" in section
