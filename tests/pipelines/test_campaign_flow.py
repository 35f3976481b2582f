"""Control groups in the nightly lists, the list history, and `churn campaign`, for real."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from pandas.testing import assert_frame_equal
from typer.testing import CliRunner

from models.campaign import CONTACT, HOLDOUT, MEASURED, NOT_ENOUGH
from models.scoring import LIST_COLUMNS
from pipelines import flows
from pipelines.cli import app
from pipelines.settings import InputPaths, ScoreSettings, TrainSettings

pytestmark = pytest.mark.usefixtures("prefect_harness")

# a Monday and the Tuesday after (ISO week 2025-W32), both > 90 days before the data ends
MONDAY, TUESDAY = "2025-08-04", "2025-08-05"
KEY = ["customer_id", "list", "risk_rank", "group", "campaign"]


@pytest.fixture(scope="module")
def nights(demo_tables, tmp_path_factory) -> dict[str, object]:
    """Train once; score Monday, Tuesday, then Monday again into one output folder."""
    store, out = tmp_path_factory.mktemp("store"), tmp_path_factory.mktemp("out")
    inputs = InputPaths(
        transactions=demo_tables["transactions"],
        interactions=demo_tables["interactions"],
        customers=demo_tables["customers"],
    )
    flows.train(inputs, TrainSettings(data_dir=store))
    settings = ScoreSettings(data_dir=store, risk_threshold=0.2)
    read = {}
    for label, day in (("monday", MONDAY), ("tuesday", TUESDAY), ("rerun", MONDAY)):
        flows.score(inputs, out, settings, day)
        read[label] = {
            "at_risk": pd.read_csv(out / "at_risk.csv"),
            "win_back": pd.read_csv(out / "win_back.csv"),
            "call_sheet": pd.read_csv(out / "call_sheet.csv"),
            "history": pd.read_parquet(out / "history" / day / "at_risk.parquet"),
            "history_win_back": pd.read_parquet(out / "history" / day / "win_back.parquet"),
        }
    return {"out": out, "store": store, "read": read, "tables": demo_tables}


def test_lists_carry_groups_and_the_call_sheet_holds_the_contact_group(nights):
    monday = nights["read"]["monday"]
    both = pd.concat([monday["at_risk"], monday["win_back"]])
    assert set(LIST_COLUMNS) <= set(both.columns)
    assert set(both["group"]) == {CONTACT, HOLDOUT}
    assert set(both["campaign"]) == {"2025-W32"}
    held = both["group"].eq(HOLDOUT).mean()
    assert 0.05 <= held <= 0.15
    contacted = both.loc[both["group"].eq(CONTACT), "customer_id"]
    assert sorted(monday["call_sheet"]["customer_id"]) == sorted(contacted)
    assert set(monday["call_sheet"]["group"]) == {CONTACT}
    # the history of the night is the night's lists
    history = pd.concat([monday["history"], monday["history_win_back"]])
    # (the CSV reads ranks as int64, the Parquet keeps Int64)
    assert_frame_equal(
        history[KEY].reset_index(drop=True), both[KEY].reset_index(drop=True), check_dtype=False
    )


def test_a_customer_keeps_their_group_through_the_campaign(nights):
    monday, tuesday = nights["read"]["monday"], nights["read"]["tuesday"]
    lists = [pd.concat([night["at_risk"], night["win_back"]]) for night in (monday, tuesday)]
    again = lists[0].merge(lists[1], on="customer_id", suffixes=("_mon", "_tue"))
    assert len(again) > 0
    assert (again["group_mon"] == again["group_tue"]).all()


def test_a_rerun_of_a_night_replaces_its_history_exactly(nights):
    read, out = nights["read"], nights["out"]
    first, rerun = read["monday"], read["rerun"]
    assert_frame_equal(rerun["history"][KEY], first["history"][KEY])
    assert_frame_equal(rerun["history_win_back"][KEY], first["history_win_back"][KEY])
    assert sorted(p.name for p in (out / "history").iterdir()) == [MONDAY, TUESDAY]
    assert sorted(p.name for p in (out / "history" / MONDAY).iterdir()) == [
        "at_risk.parquet",
        "win_back.parquet",
    ]


def test_churn_campaign_measures_the_matured_listings(nights):
    out, store = nights["out"], nights["store"]
    transactions: Path = nights["tables"]["transactions"]
    result = CliRunner().invoke(
        app,
        [
            "campaign",
            "--transactions",
            str(transactions),
            "--out",
            str(out),
            "--horizon-days",
            "90",
            "--data-dir",
            str(store),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"campaign: {out / 'campaign.csv'}" in result.output
    evaluation = pd.read_csv(out / "campaign.csv")
    overall = evaluation.iloc[0]
    assert (overall["list"], overall["action_rule"]) == ("overall", "overall")
    # one unit per customer and campaign: Monday's and Tuesday's lists, each customer once
    read = nights["read"]
    listed = pd.concat(
        [read[night][name] for night in ("rerun", "tuesday") for name in ("at_risk", "win_back")]
    ).drop_duplicates("customer_id")
    counts = listed["group"].value_counts()
    assert overall["n_contact"] == counts[CONTACT] and overall["n_holdout"] == counts[HOLDOUT]
    assert evaluation.loc[1:, "n_contact"].sum() == overall["n_contact"]
    enough = evaluation[["n_contact", "n_holdout"]].min(axis=1) >= 30
    assert (evaluation["status"] == enough.map({True: MEASURED, False: NOT_ENOUGH})).all()
    assert evaluation.loc[enough, "ci_low"].le(evaluation.loc[enough, "difference"]).all()
    # bought within 90 days of being listed, from the transactions themselves
    sales = pd.read_parquet(transactions)
    sales = sales.loc[sales["amount"] > 0].astype({"customer_id": str})
    first_day = pd.Timestamp(MONDAY)
    monday_contact = read["rerun"]["at_risk"].query("group == 'contact'")["customer_id"]
    bought = sales.loc[
        sales["customer_id"].isin(monday_contact.astype(str))
        & sales["timestamp"].ge(first_day)
        & sales["timestamp"].lt(first_day + pd.Timedelta(days=90)),
        "customer_id",
    ].nunique()
    assert 0 < bought <= overall["retention_contact"] * overall["n_contact"]

    client = MlflowClient(f"sqlite:///{(store / 'mlflow' / 'mlflow.db').resolve()}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, "tags.kind = 'campaign'")
    assert len(runs) == 1
    assert runs[0].data.metrics["n_contact"] == overall["n_contact"]
    assert runs[0].data.tags["status"] == overall["status"]
