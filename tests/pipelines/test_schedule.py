"""The nightly deployment: prefect.yaml must point at the real flow with valid parameters."""

from __future__ import annotations

import importlib
from pathlib import Path

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
