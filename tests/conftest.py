"""Shared fixtures: one Prefect test harness and one small simulated business per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Keep Prefect's state out of the user's home even before the harness starts.
os.environ.setdefault("PREFECT_HOME", str(Path(__file__).resolve().parents[1] / ".prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# XGBoost threads yield instead of busy-waiting when the test processes share 2 cores
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Tests use their own throw-away MLflow stores, never a server the user points at.
os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="session")
def prefect_harness():
    """Prefect's real ephemeral API on loopback, started once (it costs ~10-20 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def demo_tables(tmp_path_factory) -> dict[str, Path]:
    """A small simulated business written as Parquet, plus its ground truth."""
    from pipelines.catalog import write_atomic
    from simulation.retail import simulate

    out = tmp_path_factory.mktemp("demo")
    business = simulate(n_customers=1500, seed=3)
    return write_atomic(
        {
            "transactions": business.transactions,
            "interactions": business.interactions,
            "customers": business.customers,
            "truth": business.truth,
        },
        out,
    )


@pytest.fixture(autouse=True)
def no_tracking_uri_leaks():
    """mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI; a test that calls it must
    not point every later test at its store (the flows read that variable as the user's
    choice)."""
    yield
    os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(autouse=True)
def no_database_env_leaks():
    """`churn --db URL` exports CHURN_DATABASE_URL for the flows (in process, under
    CliRunner too); a later test's subprocess would read it as its --db default."""
    names = ("CHURN_DATABASE_URL", "PGPASSFILE", "PGPASSWORD")
    before = {name: os.environ.get(name) for name in names}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
