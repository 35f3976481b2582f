"""The nightly deployment: prefect.yaml must point at the real flow with valid parameters."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.schedules import Cron

ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_deploys_the_nightly_flow_with_valid_parameters():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = spec["deployments"]
    module_path, attribute = deployment["entrypoint"].split(":")
    module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
    nightly = getattr(module, attribute)
    assert isinstance(nightly, Flow) and nightly.name == "nightly"
    validated = nightly.validate_parameters(deployment["parameters"])
    assert validated["inputs"].transactions == Path("data/raw/business/transactions.parquet")
    assert deployment["concurrency_limit"] == 1
    Cron(deployment["schedules"][0]["cron"], timezone=deployment["schedules"][0]["timezone"])


def test_churn_schedule_serves_nightly_until_stopped(demo_tables, tmp_path):
    """A real `churn schedule` process: it registers the cron deployment, then stops cleanly."""
    import os
    import signal
    import subprocess
    import sys
    import time

    command = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "schedule",
        "--transactions",
        str(demo_tables["transactions"]),
        "--out",
        str(tmp_path / "out"),
        "--cron",
        "0 2 * * *",
        "--timezone",
        "Europe/Berlin",
    ]
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    seen, deadline = [], time.monotonic() + 240
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            seen.append(line)
            if "prefect deployment run 'nightly/nightly'" in line:
                break
            assert time.monotonic() < deadline, "".join(seen)
        else:
            pytest.fail("churn schedule exited early:\n" + "".join(seen))
        output = "".join(seen)
        assert "serving 'nightly' on cron '0 2 * * *' (Europe/Berlin)" in output
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    # stopping the service stops its Prefect API server too (none left orphaned)
    assert _servers_using(env["PREFECT_HOME"]) == []


def _servers_using(prefect_home: str) -> list[int]:
    """Live processes started with this PREFECT_HOME (the ephemeral API server's uvicorn)."""
    import time
    from pathlib import Path

    found: list[int] = []
    for _ in range(50):  # exit handlers get a few seconds to stop the server
        found = []
        for proc in Path("/proc").iterdir():
            try:
                environ = (proc / "environ").read_bytes().split(b"\0")
            except (OSError, ValueError):
                continue
            if f"PREFECT_HOME={prefect_home}".encode() in environ and proc.name.isdigit():
                found.append(int(proc.name))
        if not found:
            break
        time.sleep(0.2)
    return found
