"""Several nights against a real PostgreSQL: day-by-day feeds in, one list per day out,
re-runs replace a day's rows, and each night's model version and KPIs are in MLflow."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.tracking import local_store

pytestmark = pytest.mark.usefixtures("prefect_harness")
KINDS = ("transactions", "interactions", "customers")
NIGHTS = ["2025-12-01", "2025-12-02", "2025-12-03"]


def feed(engine: sa.Engine, frames: dict[str, pd.DataFrame], start, end) -> None:
    """Append what the business recorded in [start, end) to its database tables."""
    for kind in ("transactions", "interactions"):
        ts = frames[kind]["timestamp"]
        rows = frames[kind].loc[(ts >= start) & (ts < end)] if start else frames[kind].loc[ts < end]
        rows.to_sql(kind, engine, if_exists="append", index=False, chunksize=10_000)


def test_nightly_over_several_days_against_postgresql(
    postgres_server, demo_tables, tmp_path, monkeypatch
):
    url = postgres_server.create_database("shop")
    engine = sa.create_engine(url)
    frames = {kind: pd.read_parquet(demo_tables[kind]) for kind in KINDS}
    frames["customers"].to_sql("customers", engine, index=False)
    monkeypatch.setenv("CHURN_DATABASE_URL", url)
    runner = CliRunner()
    tables = [
        "--transactions",
        "transactions",
        "--interactions",
        "interactions",
        "--customers",
        "customers",
    ]
    data_dir, out = tmp_path / "data", tmp_path / "out"

    feed(engine, frames, None, pd.Timestamp(NIGHTS[0]))
    result = runner.invoke(app, ["train", *tables, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output

    listed: dict[str, int] = {}
    previous = None
    for night in NIGHTS:
        feed(engine, frames, previous, pd.Timestamp(night))
        previous = pd.Timestamp(night)
        args = [
            "nightly",
            *tables,
            "--score-date",
            night,
            "--out",
            str(out / night),
            "--out-table",
            "at_risk",
            "--data-dir",
            str(data_dir),
        ]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        # both lists go to the table, told apart by `list`
        listed[night] = len(pd.read_parquet(out / night / "at_risk.parquet")) + len(
            pd.read_parquet(out / night / "win_back.parquet")
        )
        if night == NIGHTS[1]:  # the operator re-runs a night: its rows are replaced
            result = runner.invoke(app, args)
            assert result.exit_code == 0, result.output

    with engine.connect() as conn:
        per_day = pd.read_sql(
            "SELECT score_date, count(*) AS n, count(DISTINCT customer_id) AS ids, "
            "min(model_version) AS version FROM at_risk GROUP BY score_date ORDER BY score_date",
            conn,
        )
    assert [str(d) for d in per_day["score_date"]] == NIGHTS
    assert per_day["n"].tolist() == per_day["ids"].tolist() == [listed[n] for n in NIGHTS]
    assert set(per_day["version"]) == {"1"}
    with engine.connect() as conn:
        lists = pd.read_sql("SELECT DISTINCT list, status FROM at_risk ORDER BY list", conn)
    assert lists.to_dict("list") == {
        "list": ["at_risk", "win_back"],
        "status": ["active", "lapsed"],
    }

    client = MlflowClient(local_store(data_dir)[0])
    experiment = client.get_experiment_by_name("churn")
    runs = client.search_runs([experiment.experiment_id], "tags.kind = 'score'")
    by_night = pd.Series([r.data.tags["score_date"] for r in runs]).value_counts()
    assert by_night.to_dict() == {NIGHTS[0]: 1, NIGHTS[1]: 2, NIGHTS[2]: 1}
    assert all(r.data.tags["model_version"] == "1" for r in runs)
    assert all("retention_rate" in r.data.metrics for r in runs)
    engine.dispose()


def test_an_unreachable_database_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURN_DATABASE_URL", "postgresql+psycopg://u:secret@127.0.0.1:9/none")
    from pipelines import flows

    fast = flows.load_tables.with_options(retries=0)
    monkeypatch.setattr(flows, "load_tables", fast)  # no 42 s of retries in a test
    result = CliRunner().invoke(
        app,
        [
            "features",
            "--transactions",
            "transactions",
            "--cutoff",
            "2025-01-01",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "PostgreSQL at 127.0.0.1:9/none is unavailable" in result.output
    assert "secret" not in result.output


def test_an_unreachable_database_is_one_clear_line_in_a_real_process(tmp_path):
    """What a user at a terminal sees: no password, no traceback wall (retries included)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "CHURN_DATABASE_URL": "postgresql+psycopg://u:secret@127.0.0.1:9/none"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "features",
            "--transactions",
            "transactions",
            "--cutoff",
            "2025-01-01",
            "--out",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    # said once: Prefect's banner, retries and ERROR lines are in the run log, not here
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: PostgreSQL at 127.0.0.1:9/none is unavailable")
    assert "secret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr + done.stdout
    log = (tmp_path / "data" / "logs" / "churn.log").read_text()
    assert "Retry 3/3" in log and "Traceback" in log and "secret" not in log
