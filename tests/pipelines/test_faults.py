"""Faults that must not lose yesterday's list: a killed write, a second concurrent run."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from pipelines.catalog import OutputBusy, output_lock, write_atomic


def good_outputs(out: Path) -> dict[str, bytes]:
    small = pd.DataFrame({"customer_id": ["a", "b"], "churn_probability": [0.9, 0.8]})
    write_atomic({"at_risk_csv": small, "at_risk": small, "scores": small}, out)
    return {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}


def test_a_run_killed_mid_write_leaves_the_previous_list_intact(tmp_path):
    out = tmp_path / "out"
    before = good_outputs(out)
    # a child writes a large list into the same folder; we kill it once it is mid-write
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import numpy as np, pandas as pd
                from pathlib import Path
                from pipelines.catalog import output_lock, write_atomic
                n = 3_000_000
                big = pd.DataFrame({{"customer_id": np.arange(n).astype(str),
                                    "churn_probability": np.random.default_rng(0).random(n)}})
                with output_lock(Path({str(out)!r})):
                    write_atomic({{"at_risk_csv": big, "at_risk": big, "scores": big}},
                                 Path({str(out)!r}))
                """
            ),
        ]
    )
    deadline = time.monotonic() + 120
    while not list(out.glob(".*.tmp*")):
        assert child.poll() is None, "the writer finished before it could be killed"
        assert time.monotonic() < deadline, "the writer never started writing"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()

    after = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert after == before
    assert len(pd.read_csv(out / "at_risk.csv")) == 2  # still readable
    assert list(out.glob(".*.tmp*"))  # the killed run's debris is there...

    with output_lock(out):  # ...until the next run takes the folder
        assert not list(out.glob(".*.tmp*"))
        fresh = pd.DataFrame({"customer_id": ["c"], "churn_probability": [0.7]})
        write_atomic({"at_risk": fresh}, out)
    assert pd.read_parquet(out / "at_risk.parquet")["customer_id"].tolist() == ["c"]


def test_a_second_run_on_the_same_folder_exits_clearly(tmp_path):
    out = tmp_path / "out"
    with output_lock(out):
        with pytest.raises(OutputBusy, match="another run is writing this folder"):
            with output_lock(out):
                pass
    with output_lock(out):  # released: the next night can run
        pass


def test_a_write_that_fails_leaves_no_partial_files(tmp_path):
    out = tmp_path / "out"
    before = good_outputs(out)

    class Unwritable:
        """Not a frame: the second dataset fails after the first was staged."""

    ok = pd.DataFrame({"customer_id": ["z"]})
    with pytest.raises(AttributeError):
        write_atomic({"at_risk": ok, "scores": Unwritable()}, out)  # type: ignore[dict-item]
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # at_risk.parquet was not replaced; no temp files left


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder holding yesterday's list that cannot be written, even by root.

    Root ignores permission bits, so as root the folder is bind-mounted read-only (the
    way a full or remounted disk behaves); otherwise its write bits are removed.
    """
    import os

    out = tmp_path / "out"
    before = good_outputs(out)
    (out / ".churn.lock").touch()
    if os.geteuid() == 0:
        for command in (
            ["mount", "--bind", str(out), str(out)],
            ["mount", "-o", "remount,bind,ro", str(out)],
        ):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                pytest.fail(f"cannot make a read-only folder: {' '.join(command)}: {done.stderr}")
        yield out, before
        subprocess.run(["umount", str(out)], check=True)
    else:
        out.chmod(0o555)
        yield out, before
        out.chmod(0o755)


def test_a_read_only_output_folder_fails_clearly_and_keeps_the_list(read_only_folder):
    from pipelines.catalog import OutputNotWritable

    out, before = read_only_folder
    fresh = pd.DataFrame({"customer_id": ["z"], "churn_probability": [0.5]})
    with pytest.raises(OutputNotWritable, match="cannot write"):
        with output_lock(out):
            write_atomic({"at_risk_csv": fresh, "at_risk": fresh}, out)
    after = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert after == before
