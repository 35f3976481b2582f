"""Customer batches give the whole-table results exactly: features, lists, KPIs, drift,
and bad input reported as the whole file reports it, with nothing written."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.batches import build_features_by_batch, customer_batch
from features.build import build_features
from features.contracts import InputError
from features.usage import choose_usage_kinds
from pipelines import catalog, flows
from pipelines.one_shot import feature_file
from pipelines.settings import CommonSettings, InputPaths, ScoreSettings, TrainSettings

BATCHES = 7  # odd, and uneven for 300 customers


@pytest.fixture(scope="module")
def business(tmp_path_factory) -> dict[str, Path]:
    """300 simulated customers as Parquet, and their transactions as CSV too."""
    from simulation.retail import simulate

    out = tmp_path_factory.mktemp("business")
    tables = simulate(n_customers=300, seed=5)
    paths = catalog.write_atomic(
        {
            "transactions": tables.transactions,
            "interactions": tables.interactions,
            "customers": tables.customers,
        },
        out,
    )
    paths["transactions_csv"] = out / "transactions.csv"
    tables.transactions.to_csv(paths["transactions_csv"], index=False)
    return paths


def test_batched_features_equal_the_whole_table(business):
    tables = catalog.read_tables(
        business["transactions"], business["interactions"], business["customers"]
    )
    kinds = choose_usage_kinds(tables.interactions)
    last = tables.transactions["timestamp"].max().normalize()
    first = tables.transactions["timestamp"].min().normalize()
    # the second cutoff is under a year into the data: "same season last year" unknown
    for cutoff in (last, first + pd.Timedelta(days=200)):
        whole = build_features(
            tables.transactions, cutoff, tables.interactions, tables.customers, 365, None, kinds
        )
        batched = build_features_by_batch(
            tables.transactions,
            cutoff,
            tables.interactions,
            tables.customers,
            365,
            kinds,
            batches=BATCHES,
        )
        assert len(whole) > 100
        pd.testing.assert_frame_equal(batched, whole, check_exact=True)


def test_feature_file_from_csv_by_batch_equals_the_whole_file(business, tmp_path):
    tx = pd.read_csv(business["transactions_csv"], dtype=str)
    # two exact duplicates and a refund above all purchases: repairs counted over batches
    tx = pd.concat([tx, tx.iloc[[3, 40]]], ignore_index=True)
    refund = tx.iloc[[10]].assign(amount="-100000")
    tx = pd.concat([tx, refund], ignore_index=True)
    path = tmp_path / "transactions.csv"
    tx.to_csv(path, index=False)
    inputs = InputPaths(
        transactions=path, interactions=business["interactions"], customers=business["customers"]
    )
    said: dict[str, list[str]] = {"whole": [], "batches": []}
    for name, engine in (("whole", None), ("batches", _batches(tmp_path))):
        feature_file(inputs, "2025-06-01", tmp_path / name, engine=engine, say=_into(said[name]))
    whole = pd.read_parquet(tmp_path / "whole" / "features.parquet")
    batched = pd.read_parquet(tmp_path / "batches" / "features.parquet")
    pd.testing.assert_frame_equal(batched, whole, check_exact=True)
    assert said["batches"][:-1] == said["whole"][:-1]  # the last line names the folder
    assert any("capped 1 refunds" in line for line in said["whole"])
    assert any("kept 2 rows" in line or "dropped 2 exact" in line for line in said["whole"])


def test_bad_input_in_the_third_batch_is_reported_with_its_file_rows(business, tmp_path):
    tx = pd.read_csv(business["transactions_csv"], dtype=str)
    third = np.flatnonzero(customer_batch(tx["customer_id"], BATCHES) == 2)
    bad = third[[5, 17]]  # two rows well inside the file, both in batch 2
    tx.loc[bad, "amount"] = "twelve"
    path = tmp_path / "transactions.csv"
    tx.to_csv(path, index=False)
    out = tmp_path / "out"
    catalog.write_atomic({"features": pd.DataFrame({"customer_id": ["kept"]})}, out)
    inputs = InputPaths(transactions=path, interactions=business["interactions"])

    with pytest.raises(InputError) as whole:
        feature_file(inputs, "2025-06-01", tmp_path / "whole")
    with pytest.raises(InputError) as batched:
        feature_file(inputs, "2025-06-01", out, engine=_batches(tmp_path))

    assert batched.value.rows == [int(row) + 1 for row in bad]  # 1-based data rows
    assert str(batched.value) == str(whole.value)
    first, second = (int(row) + 1 for row in bad)
    assert str(batched.value) == (
        f"transactions.csv: column 'amount' has 2 non-numeric values, first rows {first} "
        f"(value 'twelve'), {second} (value 'twelve')"
    )
    kept = pd.read_parquet(out / "features.parquet")
    assert kept["customer_id"].tolist() == ["kept"]  # yesterday's file untouched


@pytest.mark.usefixtures("prefect_harness")
def test_score_by_batch_gives_the_whole_table_lists_kpis_and_drift(business, tmp_path):
    inputs = InputPaths(
        transactions=business["transactions"],
        interactions=business["interactions"],
        customers=business["customers"],
    )
    store = tmp_path / "store"
    flows.train(inputs, TrainSettings(data_dir=store, n_train_cutoffs=2))
    whole = flows.nightly(inputs, tmp_path / "whole", ScoreSettings(data_dir=store))
    batched = flows.nightly(
        inputs, tmp_path / "batches", ScoreSettings(data_dir=store, feature_batches=BATCHES)
    )
    assert batched.kpis == whole.kpis
    assert batched.reason_mix == whole.reason_mix
    assert batched.drifting_features == whole.drifting_features
    assert batched.customers_listed == whole.customers_listed > 0
    for name in ("features", "scores", "at_risk", "win_back"):
        file = catalog.OUTPUTS[name]
        # the clock time of each run is the one column allowed to differ
        a = pd.read_parquet(tmp_path / "whole" / file).drop(columns="scored_at", errors="ignore")
        b = pd.read_parquet(tmp_path / "batches" / file).drop(columns="scored_at", errors="ignore")
        pd.testing.assert_frame_equal(b, a, check_exact=True)


def _batches(tmp_path: Path) -> CommonSettings:
    return CommonSettings(feature_batches=BATCHES, data_dir=tmp_path / "data")


def _into(lines: list[str]):  # noqa: ANN202
    return lambda line, warning: lines.append(line)


@pytest.mark.parametrize(("batches", "processes"), [(3, 1), (7, 2)])
def test_night_facts_by_batch_equal_the_whole_tables(tmp_path, batches, processes):
    """Features, status, due-day features, KPI counts and matured outcomes, with
    subscriptions and a list history, on odd batch counts, batch after batch in this
    process and by a pool of batch processes."""
    from models.night_facts import WholeTables, night_facts
    from pipelines import staged
    from simulation.subscription import simulate_subscription

    sim = simulate_subscription(n_customers=400, seed=11, start="2024-01-01", end="2025-06-30")
    paths = catalog.write_atomic(
        {
            "transactions": sim.transactions,
            "interactions": sim.interactions,
            "customers": sim.customers,
            "subscriptions": sim.subscriptions,
        },
        tmp_path / "in",
    )
    inputs = InputPaths(**{kind: paths[kind] for kind in paths})
    tables = catalog.read_tables(
        paths["transactions"], paths["interactions"], paths["customers"], paths["subscriptions"]
    )
    cutoff = pd.Timestamp("2025-07-01")
    kinds = choose_usage_kinds(tables.interactions)
    # listings of 150 and 30 days ago: the first has matured, the second has not
    ids = tables.transactions["customer_id"].drop_duplicates().iloc[:120].astype(str)
    history = pd.DataFrame(
        {
            "campaign": "c",
            "customer_id": ids.to_numpy(),
            "score_date": [str((cutoff - pd.Timedelta(days=d)).date()) for d in [150, 30] * 60],
            "list": "at_risk",
            "action_rule": "apology",
            "group": ["contact", "holdout"] * 60,
            "expected_value": 10.0,
        }
    )
    args = (cutoff, 365, 90, 0.05, kinds, history)
    whole = night_facts(WholeTables(tables), *args)
    settings = CommonSettings(data_dir=tmp_path / "data", batch_processes=processes)
    with staged.stage(inputs, settings, batches) as source:
        assert source is not None
        assert (source.pool is not None) == (processes > 1)
        assert source.schema.warnings == tables.warnings
        assert source.schema.rows_read == tables.rows_read
        assert source.history_start == tables.transactions["timestamp"].min()
        by_batch = night_facts(source, *args)
    assert not list((tmp_path / "data" / "interim" / "batches").glob("run-*"))  # cleaned up
    assert whole.status["status"].eq("lapsed").sum() > 10 and len(whole.due_features) > 10
    assert whole.status["cancel_reason"].notna().sum() > 10  # what cancelled subscribers said
    for name in ("features", "status", "due_features", "outcomes"):
        pd.testing.assert_frame_equal(getattr(by_batch, name), getattr(whole, name))
    assert whole.outcomes is not None and len(whole.outcomes) == 60
    assert by_batch.retention == pytest.approx(whole.retention, rel=1e-12)


@pytest.mark.usefixtures("prefect_harness")
def test_bad_input_in_a_batch_of_a_night_stops_it_before_anything_is_written(business, tmp_path):
    tx = pd.read_csv(business["transactions_csv"], dtype=str)
    third = np.flatnonzero(customer_batch(tx["customer_id"], BATCHES) == 2)
    tx.loc[third[9], "timestamp"] = "not a date"
    path = tmp_path / "transactions.csv"
    tx.to_csv(path, index=False)
    inputs = InputPaths(transactions=path, interactions=business["interactions"])
    out = tmp_path / "out"
    catalog.write_atomic({"at_risk": pd.DataFrame({"customer_id": ["kept"]})}, out)
    settings = ScoreSettings(data_dir=tmp_path / "store", feature_batches=BATCHES)

    with pytest.raises(InputError) as batched:
        flows.nightly(inputs, out, settings)

    assert batched.value.rows == [int(third[9]) + 1]  # the row as numbered in the file
    assert "transactions.csv: column 'timestamp'" in str(batched.value)
    assert pd.read_parquet(out / catalog.OUTPUTS["at_risk"])["customer_id"].tolist() == ["kept"]
    assert not (out / catalog.OUTPUTS["scores"]).exists()


def test_batches_with_no_rows_of_a_table_are_empty_not_an_error(tmp_path):
    """A few customers in many batches: some batches hold none of a table's rows, which
    is no empty table (the file has rows), so the features are the whole file's."""
    from simulation.retail import simulate

    tables = simulate(n_customers=4, seed=2)
    paths = catalog.write_atomic(
        {
            "transactions": tables.transactions,
            "interactions": tables.interactions,
            "customers": tables.customers,
        },
        tmp_path / "in",
    )
    held = [
        set(customer_batch(t["customer_id"], BATCHES))
        for t in tables.__dict__.values()
        if isinstance(t, pd.DataFrame)
    ]
    assert all(len(h) < BATCHES for h in held)  # every table misses some batch
    inputs = InputPaths(**{k: paths[k] for k in ("transactions", "interactions", "customers")})
    for name, engine in (("whole", None), ("batches", _batches(tmp_path))):
        feature_file(inputs, "2025-06-01", tmp_path / name, engine=engine, say=_into([]))
    whole = pd.read_parquet(tmp_path / "whole" / "features.parquet")
    batched = pd.read_parquet(tmp_path / "batches" / "features.parquet")
    pd.testing.assert_frame_equal(batched, whole, check_exact=True)


@pytest.mark.usefixtures("prefect_harness")
def test_train_by_batch_gives_the_whole_tables_model(business, tmp_path):
    """The same rows in the same order: the same leaderboard and metrics, exactly."""
    inputs = InputPaths(
        transactions=business["transactions_csv"],
        interactions=business["interactions"],
        customers=business["customers"],
    )
    whole = flows.train(inputs, TrainSettings(data_dir=tmp_path / "whole", n_train_cutoffs=2))
    settings = TrainSettings(data_dir=tmp_path / "batches", n_train_cutoffs=2, feature_batches=5)
    batched = flows.train(inputs, settings)
    assert batched.cutoffs == whole.cutoffs
    assert batched.metrics == whole.metrics
    assert batched.leaderboard == whole.leaderboard
    assert not list((tmp_path / "batches" / "interim" / "batches").glob("run-*"))  # cleaned


def test_a_parquet_files_row_groups_converted_in_pieces_give_the_same_batches(business, tmp_path):
    """Two processes convert halves of a file's row groups: every batch holds the same
    rows, in the file's order, as one process converting it whole."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines import batch_read
    from pipelines.processes import batch_pool

    frame = pd.read_parquet(business["interactions"])
    path = tmp_path / "interactions.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=997)
    pieces = batch_read.pieces(path, 2)
    assert len(pieces) == 2 and pieces[1].offset == 997 * len(pieces[0].row_groups)
    one = batch_read.build_cache(path, "interactions", BATCHES, tmp_path / "one")
    with batch_pool(2) as pool:
        two = batch_read.build_cache(path, "interactions", BATCHES, tmp_path / "two", pool, 2)
    assert one is not None and two is not None
    assert len(list(two.glob("part-*.arrow"))) == 2 * len(list(one.glob("part-*.arrow")))
    for batch in range(BATCHES):
        pd.testing.assert_frame_equal(
            batch_read.read_batch(two, batch), batch_read.read_batch(one, batch)
        )
    rows = sum(len(batch_read.read_batch(one, b)) for b in range(BATCHES))
    assert rows == len(frame)
    # pieces found in another order still give the source's row order
    first, second = (batch_read.part_path(two, 0, piece) for piece in (0, 1))
    expected = batch_read.read_batch(two, 0)
    first.rename(tmp_path / "swap")
    second.rename(first)
    (tmp_path / "swap").rename(second)
    pd.testing.assert_frame_equal(batch_read.read_batch(two, 0), expected)


def test_large_csv_files_written_by_processes_are_the_same_bytes_and_all_or_nothing(tmp_path):
    from simulation.retail import simulate

    tables = simulate(n_customers=200, seed=3)
    n = len(tables.transactions)
    # every dtype a list carries (handed to the writing process as an Arrow file), and a
    # column of mixed Python objects Arrow cannot hold (written by this process)
    listed = tables.transactions.assign(
        rank=pd.array([None if i % 7 == 0 else i for i in range(n)], dtype="Int64"),
        reason=pd.Series(["poor_interaction", None] * (n // 2) + ["x"] * (n % 2), dtype="str"),
        due=pd.Series(pd.NaT, index=tables.transactions.index, dtype="datetime64[ns]"),
        scored_at=pd.Timestamp("2026-12-03 04:00", tz="UTC"),
        vip=[i % 3 == 0 for i in range(n)],
        segment=pd.Categorical(["vip", "fan"] * (n // 2) + ["fan"] * (n % 2)),
        probability=[float("nan") if i % 5 == 0 else i / 3 for i in range(n)],
    )
    mixed = tables.interactions.assign(
        note=[1 if i % 2 else "one" for i in range(len(tables.interactions))]
    )
    assert catalog._hand_over(listed, tmp_path / "listed.arrow")  # via an Arrow file
    assert catalog._hand_over(mixed, tmp_path / "mixed.arrow") is None
    frames = {
        "at_risk_csv": listed,
        "win_back_csv": mixed,
        "call_sheet": tables.interactions,
        "at_risk": tables.transactions,
        "report": "<html></html>",
    }
    catalog.write_atomic(frames, tmp_path / "one", parallel_csv_rows=10**9)
    catalog.write_atomic(frames, tmp_path / "side", parallel_csv_rows=0)
    names = ("at_risk.csv", "win_back.csv", "call_sheet.csv", "at_risk.parquet", "report.html")
    for name in names:
        assert (tmp_path / "side" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "side").iterdir()) == sorted(names)  # no leftovers

    def refuse() -> None:
        raise RuntimeError("the list table refused the rows")

    before = {p.name: p.read_bytes() for p in (tmp_path / "side").iterdir()}
    smaller = {**frames, "at_risk_csv": tables.transactions.iloc[:5]}
    with pytest.raises(RuntimeError, match="refused"):
        catalog.write_atomic(smaller, tmp_path / "side", refuse, parallel_csv_rows=0)
    assert {p.name: p.read_bytes() for p in (tmp_path / "side").iterdir()} == before

    # inside a run's batch pool, its processes write the files: no second pool starts
    import psutil

    from pipelines.processes import batch_pool

    with batch_pool(2) as pool:
        for started in [pool.submit(time.sleep, 0.5) for _ in range(2)]:  # both processes up
            started.result()
        family = {p.pid for p in psutil.Process().children(recursive=True)}
        catalog.write_atomic(frames, tmp_path / "joined", parallel_csv_rows=0)
        assert {p.pid for p in psutil.Process().children(recursive=True)} == family
        with pytest.raises(RuntimeError, match="refused"):
            catalog.write_atomic(smaller, tmp_path / "joined", refuse, parallel_csv_rows=0)
        assert pool.submit(int, "7").result() == 7  # the run's pool goes on
    for name in names:
        assert (tmp_path / "joined" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "joined").iterdir()) == sorted(names)


@pytest.mark.parametrize("side", [False, True])
def test_a_csv_of_other_csvs_rows_holds_their_text_row_for_row(tmp_path, side):
    """The call sheet's rows are copied from the lists' files, quoted line breaks too."""
    n = 300
    lists = {
        name: pd.DataFrame(
            {
                "customer_id": [f"{name[0]}{i}" for i in range(n)],
                "top_drivers": [f'said "no",\nthen\r\nleft {i}' if i % 4 else "" for i in range(n)],
                "value_at_risk": [i / 7 for i in range(n)],
                "risk_rank": pd.array([None if i % 9 == 0 else i for i in range(n)], "Int64"),
            }
        )
        for name in ("at_risk_csv", "win_back_csv")
    }
    keep = {name: np.arange(n) % 3 == 0 for name in lists}
    frames = {**lists, "call_sheet": catalog.CsvRows(tuple(keep.items()))}
    paths = catalog.write_atomic(frames, tmp_path, parallel_csv_rows=0 if side else 10**9)
    assert list(paths) == ["at_risk_csv", "win_back_csv", "call_sheet"]
    expected = pd.concat([lists[name].loc[keep[name]] for name in lists]).to_csv(index=False)
    assert paths["call_sheet"].read_bytes() == expected.encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["at_risk.csv", "win_back.csv", "call_sheet.csv"]
    )

    wrong = {**frames, "call_sheet": catalog.CsvRows((("at_risk_csv", keep["at_risk_csv"][:-1]),))}
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match="more rows than the 299 given"):
        catalog.write_atomic(wrong, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
